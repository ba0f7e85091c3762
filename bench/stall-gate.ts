/**
 * npm run bench:stall-gate — the stall gate (shaders/mirror-gate.wgsl) A/B on the published
 * preset's cells: each cell run twice in one process, on the same adapter, once with every
 * round re-running every workgroup not done (skipStalled false: the code before the gate) and
 * once gated, in alternating order. Prints wall time, rounds, far faults and simulated time of
 * each, the workgroups the gate did not run, and the wall-time ratio. The far faults and the
 * simulated time must not depend on the gate beyond the ring-order race the published table
 * already shows (the README's random-4K note); every run checks every output word.
 *
 *   --workload NAME[,NAME]   (default hotspot)   --config ID[,ID] (default on-demand)
 *   --size MiB               (default the published working set)
 */
import { parseArgs } from 'node:util';
import { BASE_CONFIG } from '../src/experiment/cli.js';
import { publishedRuns } from '../src/experiment/published.js';
import { openExperiment, runOne } from '../src/experiment/runner.js';
import type { RunConfig, RunResult } from '../src/experiment/types.js';

const { values } = parseArgs({
  options: {
    workload: { type: 'string', default: 'hotspot' },
    config: { type: 'string', default: 'on-demand' },
    size: { type: 'string' },
  },
});
const workloads = values.workload.split(',');
const configs = values.config.split(',');
const policyOf: Record<string, string> = {
  'on-demand': 'first-touch|1', tbn: 'first-touch+tree|1', 'tbn-lru2m-110': 'first-touch+tree+lru|1.1',
  'tbn-random4k-110': 'first-touch+tree-fits+random4k|1.1', 'tbn-sl64k-110': 'first-touch+tree-fits+sl64k|1.1',
  'tbn-lru2m-125': 'first-touch+tree+lru|1.25',
};
const cells: RunConfig[] = publishedRuns(BASE_CONFIG).filter((c) => workloads.includes(c.workload)
  && configs.some((id) => policyOf[id] === `${c.policy}|${c.oversub}`))
  .map((c) => (values.size !== undefined ? { ...c, sizeMiB: Number(values.size) } : c));

const exp = await openExperiment();
console.log(`adapter: ${exp.adapter}`);
const farFaults = (r: RunResult): number => r.policy?.farFaults ?? r.totals.unique;
const line = (r: RunResult, gated: boolean): string => `${gated ? 'gated  ' : 'ungated'} ${(r.wallMs / 1000).toFixed(2)} s, ${r.rounds} rounds, far faults ${farFaults(r)}, sim ${((r.policy?.simTimeNs ?? 0) / 1e6).toFixed(2)} ms, verify ${r.verify.mismatches}/${r.verify.checked}${r.ok ? '' : `, FAILED ${r.error}`}`;
try {
  for (const c of cells) {
    console.log(`\n${c.workload} ${c.sizeMiB} MiB, ${c.policy} at ${c.oversub}`);
    const wall: Record<string, number> = {};
    for (const gated of [false, true, true, false]) {
      const r = await runOne(c, { skipStalled: gated, watchdog: null });
      console.log(`  ${line(r, gated)}`);
      wall[String(gated)] = (wall[String(gated)] ?? 0) + r.wallMs;
    }
    console.log(`  wall, gated / ungated (sum of two each): ${(wall.true / wall.false).toFixed(3)}x`);
  }
} finally {
  await exp.close();
}
