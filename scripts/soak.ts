/**
 * npm run soak: the concurrency search (tests/search/harness.ts) at a hundred times the cases
 * `npm test` runs, per retry protocol, with a progress line; at the end the cases, schedules
 * (scheduler steps) and violations by protocol, and for each protocol that had one, its first
 * violating case shrunk by fast-check, with the seed and path that replay it:
 *   SEARCH_SEED=<seed> SEARCH_PATH=<path> npx vitest run --project node tests/search
 * Environment: SOAK_RUNS (cases per protocol, default 100 × 250), SOAK_SEED (default: random,
 * printed), SOAK_PROTOCOLS (comma-separated, default all three).
 */
import { soakSettings, SOAK_USAGE } from './soak-args.js';

const settings = soakSettings(process.argv.slice(2), process.env);
if (settings.kind === 'help') {
  console.log(SOAK_USAGE);
  process.exit(0);
}
if (settings.kind === 'error') {
  console.error(`error: ${settings.message}\n${SOAK_USAGE}`);
  process.exit(2);
}
const { runs, seed, protocols } = settings;
// Loaded only once it is clear the soak runs (--help must not start it).
const fc = (await import('fast-check')).default;
const { caseArb, kindsOf, runCase, showCase } = await import('../tests/search/harness.js');
type Case = import('../tests/search/harness.js').Case;
type Protocol = import('../tests/search/harness.js').Protocol;

interface Tally { cases: number; steps: number; violating: number; byKind: Record<string, number>; firstPath: number | null; ms: number; reached: Record<string, number> }
const tallies = new Map<Protocol, Tally>();
const t00 = performance.now();
console.log(`soak: ${runs} cases per protocol (${protocols.join(', ')}), fast-check seed ${seed}`);

for (const protocol of protocols) {
  const t: Tally = { cases: 0, steps: 0, violating: 0, byKind: {}, firstPath: null, ms: 0, reached: {} };
  tallies.set(protocol, t);
  const t0 = performance.now();
  await fc.check(fc.asyncProperty(caseArb, async (c: Case) => {
    const r = await runCase(c, { protocol });
    t.steps += r.steps;
    for (const [k, v] of Object.entries(r.reached)) if (v > 0) t.reached[k] = (t.reached[k] ?? 0) + 1;
    if (r.violations.length > 0) {
      t.violating++;
      for (const k of kindsOf(r)) t.byKind[k] = (t.byKind[k] ?? 0) + 1;
      t.firstPath ??= t.cases;
    }
    t.cases++;
    if (t.cases % 50 === 0 || t.cases === runs) {
      const el = (performance.now() - t0) / 1000;
      process.stdout.write(`\r${protocol}: ${t.cases}/${runs} cases, ${t.violating} violating ${JSON.stringify(t.byKind)}, ${el.toFixed(0)} s, ~${((runs - t.cases) * el / t.cases).toFixed(0)} s left   `);
    }
    return true;
  }), { numRuns: runs, seed });
  t.ms = performance.now() - t0;
  process.stdout.write('\n');
}

console.log('\nprotocol       cases   schedule steps   violating cases   by kind                          time');
for (const [p, t] of tallies) {
  console.log(`${p.padEnd(14)} ${String(t.cases).padStart(6)}   ${String(t.steps).padStart(14)}   ${String(t.violating).padStart(15)}   ${JSON.stringify(t.byKind).padEnd(32)} ${(t.ms / 1000).toFixed(0)} s`);
}
console.log(`total ${((performance.now() - t00) / 1000).toFixed(0)} s`);
// The policy path (a third of the cases): how many cases reached each part of it.
console.log('\ncases reaching the policy path\'s parts:');
for (const [p, t] of tallies) console.log(`${p.padEnd(14)} ${JSON.stringify(t.reached)}`);

// Shrink each protocol's first violating case (fast-check replays it from its path).
for (const [protocol, t] of tallies) {
  if (t.firstPath === null) continue;
  const out = await fc.check(fc.asyncProperty(caseArb, async (c: Case) => (await runCase(c, { protocol })).violations.length === 0),
    { seed, path: String(t.firstPath), numRuns: runs });
  if (!out.failed || out.counterexample === null) { console.log(`\n${protocol}: case ${t.firstPath} did not fail again (nondeterminism?)`); continue; }
  const c = out.counterexample[0];
  const r = await runCase(c, { protocol });
  console.log(`\n${protocol}: first violation, shrunk (${out.numShrinks} shrinks) — replay: SEARCH_SEED=${seed} SEARCH_PATH=${out.counterexamplePath}\n  ${showCase(c)}\n  ${r.violations.map((v) => `${v.kind}: ${v.detail}`).join('\n  ')}`);
}
process.exit(0);
