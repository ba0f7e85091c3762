/**
 * npm run experiment — the project's main job, headless. For now the mm/HMM preset:
 * the retry protocols under CPU-side invalidations (see mm-tour.ts). Options:
 *   --pages N   pages in the mirrored buffer (default 256)
 *   --rounds N  device faults to service per scheme (default 2000)
 *   --seed N    PRNG seed (default 1)
 *   --json FILE write the results as JSON
 */
import { writeFileSync } from 'node:fs';
import { mmTour } from './mm-tour.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer`);
  return v;
}

const pages = arg('pages', 256);
const rounds = arg('rounds', 2000);
const seed = arg('seed', 1);
console.log(`mirrorlab experiment: mm/HMM preset — ${rounds} device faults over ${pages} pages, half of them raced by a CPU invalidation (seed ${seed})`);
const results = await mmTour({ pages, rounds, seed, log: (l) => console.log(l) });
console.log('');
console.log('| retry protocol | faults committed | retries | stale pfns committed | time (ms) |');
console.log('|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.scheme} | ${r.committed} | ${r.retries} | ${r.stalePfnsCommitted} | ${r.ms.toFixed(0)} |`);
}
const j = process.argv.indexOf('--json');
if (j > 0) writeFileSync(process.argv[j + 1], JSON.stringify(results, null, 2));
