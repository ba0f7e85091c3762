/**
 * npm run bench:stall-gate — the stall gate (shaders/mirror-gate.wgsl) A/B on the published
 * preset's cells: each cell run four times in one process, on the same adapter, alternating
 * every round re-running every workgroup not done (skipStalled false: the code before the
 * gate) and gated. Prints for each run its wall time, rounds, far faults, simulated time and
 * check; where its rounds went (the first, those that faulted, those after the last fault,
 * each timed from an idle queue, with the fault rounds' process CPU time and the mean of those
 * that completed nothing; and the rest of the run: the fault service and the host); the
 * workgroups the gate did not run; and the wall-time ratio. Far faults and simulated time do
 * not depend on the gate where the fault ring never overflows (README: which records an
 * overflowing ring keeps is the threads' race). Exits 1 if a run failed or a word was wrong,
 * 2 on a --config, --workload or --size it cannot run.
 *
 *   --workload NAME[,NAME]   (default hotspot)
 *   --config ID[,ID]         PUBLISHED_CONFIGS ids (default on-demand)
 *   --size MiB               (default the published working set)
 */
import { parseArgs } from 'node:util';
import { BASE_CONFIG } from '../src/experiment/cli.js';
import { PUBLISHED_CONFIGS, publishedRuns } from '../src/experiment/published.js';
import { openExperiment, runOne, type RunObserver } from '../src/experiment/runner.js';
import type { RunConfig, RunResult } from '../src/experiment/types.js';
import type { MirrorEngine } from '../src/device/mirror-engine.js';

const { values } = parseArgs({
  options: {
    workload: { type: 'string', default: 'hotspot' },
    config: { type: 'string', default: 'on-demand' },
    size: { type: 'string' },
  },
});
const workloads = values.workload.split(',');
const configs = values.config.split(',').map((id) => {
  const c = PUBLISHED_CONFIGS.find((x) => x.id === id);
  if (c === undefined) {
    console.error(`bench:stall-gate: unknown --config ${id} (${PUBLISHED_CONFIGS.map((x) => x.id).join(', ')})`);
    process.exit(2);
  }
  return c;
});
const cells: RunConfig[] = publishedRuns(BASE_CONFIG)
  .filter((c) => workloads.includes(c.workload) && configs.some((p) => p.policy === c.policy && p.oversub === c.oversub))
  .map((c) => (values.size !== undefined ? { ...c, sizeMiB: Number(values.size) } : c));
// A workload with no published cell, or a size that is not a positive number, runs nothing:
// refused like an unknown --config, not a run that did nothing and exits 0.
for (const w of workloads) {
  if (!cells.some((c) => c.workload === w)) {
    console.error(`bench:stall-gate: no published cell for --workload ${w} (${[...new Set(publishedRuns(BASE_CONFIG).map((c) => c.workload))].join(', ')})`);
    process.exit(2);
  }
}
if (values.size !== undefined && !(Number(values.size) > 0)) {
  console.error(`bench:stall-gate: --size ${values.size} is not a positive number of MiB`);
  process.exit(2);
}

/**
 * Each round of the run's engine, timed from an idle queue: ms, the process CPU time (the GL
 * backend runs the kernels on llvmpipe's threads: CPU time is the work, whatever the load),
 * whether it missed and whether it completed any invocation.
 */
interface Round { ms: number; cpuMs: number; missed: boolean; completed: boolean }
function timedRounds(engines: MirrorEngine[], rounds: Round[]): RunObserver {
  return {
    onMirror(mirror) {
      const e = mirror.engine;
      engines.push(e);
      const run = e.runRound.bind(e);
      e.runRound = async (cmd) => {
        await e.device.queue.onSubmittedWorkDone();
        const t = performance.now();
        const c0 = process.cpuUsage();
        const r = await run(cmd);
        const c = process.cpuUsage(c0);
        rounds.push({ ms: performance.now() - t, cpuMs: (c.user + c.system) / 1000, missed: r.missed > 0, completed: r.completed > 0 });
        return r;
      };
    },
  };
}

const ms = (x: number): string => (x >= 100 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`);
function where(r: RunResult, rounds: readonly Round[], engines: readonly MirrorEngine[]): string {
  let lastMiss = rounds.length - 1;
  while (lastMiss >= 0 && !rounds[lastMiss].missed) lastMiss--;
  const faulting = rounds.slice(1, lastMiss + 1);
  const after = rounds.slice(lastMiss + 1);
  const sum = (xs: readonly Round[], of: (x: Round) => number = (x) => x.ms): number => xs.reduce((a, x) => a + of(x), 0);
  const mean = (xs: readonly Round[]): string => ms(sum(xs) / Math.max(1, xs.length));
  // Fault rounds that completed nothing: with the gate, the rounds where it woke nobody (or
  // only workgroups that missed again): what the gate and the round itself cost.
  const idle = faulting.filter((x) => !x.completed);
  const stalled = engines.reduce((a, e) => a + e.stats.stalledWorkgroups, 0);
  return `rounds ${ms(sum(rounds))}: first ${ms(rounds[0]?.ms ?? 0)}, ${faulting.length} more that faulted ${ms(sum(faulting))} `
    + `(mean ${mean(faulting)}; process CPU ${ms(sum(faulting, (x) => x.cpuMs))}; ${idle.length} that completed nothing, mean ${mean(idle)}), `
    + `${after.length} after the last fault ${ms(sum(after))}; the rest ${ms(r.wallMs - sum(rounds))}; workgroups not re-run ${stalled}`;
}

const exp = await openExperiment();
console.log(`adapter: ${exp.adapter}`);
let bad = 0;
try {
  for (const c of cells) {
    console.log(`\n${c.workload} ${c.sizeMiB} MiB, ${c.policy} at ${c.oversub}`);
    const wall = { gated: 0, ungated: 0 };
    for (const gated of [false, true, true, false]) {
      const rounds: Round[] = [];
      const engines: MirrorEngine[] = [];
      const r = await runOne(c, { skipStalled: gated, watchdog: null, observer: timedRounds(engines, rounds) });
      if (!r.ok || r.verify.mismatches > 0) bad++;
      console.log(`  ${gated ? 'gated  ' : 'ungated'} ${(r.wallMs / 1000).toFixed(2)} s, ${r.rounds} rounds, far faults ${r.policy?.farFaults ?? r.totals.unique}, `
        + `sim ${((r.policy?.simTimeNs ?? 0) / 1e6).toFixed(2)} ms, verify ${r.verify.mismatches}/${r.verify.checked}${r.ok ? '' : `, FAILED ${r.error}`}`);
      console.log(`          ${where(r, rounds, engines)}`);
      wall[gated ? 'gated' : 'ungated'] += r.wallMs;
    }
    console.log(`  wall, gated / ungated (sum of two each): ${(wall.gated / wall.ungated).toFixed(3)}x`);
  }
} finally {
  await exp.close();
}
if (bad > 0) {
  console.error(`bench:stall-gate: ${bad} run(s) failed or read a wrong word`);
  process.exitCode = 1;
}
