/**
 * npm run bench:policy — the migration-policy layer on the real fault path (issue 9):
 *  1. its share of fault-service wall time: the policy engine (decisions, residency,
 *     prefetch tree, eviction order, access-counter accounting) against all of fault
 *     servicing (the servicer's batches — coalescing, the policy, migrate_vma moves,
 *     hmm_range_fault, aperture mapping — and the policy's command-end work) — target < 5 % (issue 16);
 *  2. simulated faults serviced per second of wall time for each policy, beside the
 *     remote-only baseline and the servicer without any policy, in the same run.
 * Each configuration runs once to warm up (JIT, pipelines), then --reps times (default 3);
 * the figures are sums over the reps. Every run's data is verified word by word.
 * Options: --size MiB (default 8), --reps N, --json FILE, --adapter auto|opengles|vulkan (bench/gpu-baselines.ts).
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { defaultGpu } from '../src/driver/dmirror-device.js';
import { BASE_CONFIG } from '../src/experiment/cli.js';
import { runOne } from '../src/experiment/runner.js';
import type { RunConfig, RunResult } from '../src/experiment/types.js';
import type { WorkloadName } from '../src/workloads/names.js';
import { adapterOption } from './gpu-baselines.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const SIZE_MIB = arg('--size', 8);
const REPS = arg('--reps', 3);
const jsonAt = process.argv.indexOf('--json');
const JSON_FILE = jsonAt > 0 ? process.argv[jsonAt + 1] : null;

const POLICIES: readonly (string | null)[] = [null, 'remote-only', 'first-touch', 'first-touch+tree', 'thrashing', 'access-counters', 'first-touch+tree+lfu'];
const WORKLOADS: readonly WorkloadName[] = ['stream', 'random', 'pingpong'];

interface Row {
  workload: string;
  policy: string;
  wallMs: number;
  serviceMs: number;
  policyMs: number;
  share: number | null;
  farFaults: number;
  simMs: number;
  simFaultsPerWallSec: number;
  vsRemoteOnly: number | null;
}

async function measure(workload: WorkloadName, policy: string | null): Promise<Row> {
  const config: RunConfig = {
    preset: 'bench', ...BASE_CONFIG, workload, sizeMiB: workload === 'pingpong' ? Math.min(2, SIZE_MIB) : SIZE_MIB,
    ...(policy !== null ? { policy, oversub: 1 } : {}),
  };
  const check = (r: RunResult): RunResult => {
    if (!r.ok || r.verify.mismatches > 0) throw new Error(`${workload} ${policy}: ${r.error ?? `${r.verify.mismatches} wrong words`}`);
    return r;
  };
  check(await runOne(config, {})); // warm-up
  const row: Row = { workload, policy: policy ?? '(no policy)', wallMs: 0, serviceMs: 0, policyMs: 0, share: null, farFaults: 0, simMs: 0, simFaultsPerWallSec: 0, vsRemoteOnly: null };
  let pathMs = 0;
  for (let i = 0; i < REPS; i++) {
    const r = check(await runOne(config, {}));
    row.wallMs += r.wallMs;
    row.serviceMs += r.totals.serviceMs;
    if (r.policy) {
      row.policyMs += r.policy.policyMs;
      pathMs += r.policy.faultServiceMs;
      row.farFaults += r.policy.farFaults;
      row.simMs += r.policy.simTimeNs / 1e6;
    } else {
      row.farFaults += r.totals.fetched;
    }
  }
  row.share = policy === null ? null : pathMs > 0 ? row.policyMs / pathMs : 0;
  row.simFaultsPerWallSec = row.wallMs > 0 ? (row.farFaults / row.wallMs) * 1000 : 0;
  return row;
}

async function main(): Promise<void> {
  adapterOption();
  const gpu = await defaultGpu();
  console.log(`bench:policy — load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}, adapter ${gpu.adapterName}, ${SIZE_MIB} MiB (pingpong ${Math.min(2, SIZE_MIB)} MiB), ${REPS} reps after a warm-up\n`);
  const rows: Row[] = [];
  for (const w of WORKLOADS) {
    for (const p of POLICIES) {
      const row = await measure(w, p);
      rows.push(row);
      process.stdout.write(`  ${w} ${row.policy}: ${row.wallMs.toFixed(0)} ms\n`);
    }
    const base = rows.find((r) => r.workload === w && r.policy === 'remote-only')!;
    for (const r of rows) if (r.workload === w && r.policy !== '(no policy)') r.vsRemoteOnly = r.simFaultsPerWallSec / base.simFaultsPerWallSec;
  }
  const lines = [
    '| workload | policy | wall ms | policy ms | policy share | far faults | sim ms | sim faults / wall s | vs remote-only |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.workload} | ${r.policy} | ${r.wallMs.toFixed(0)} | ${r.policyMs.toFixed(1)} | ${r.share === null ? '—' : `${(100 * r.share).toFixed(1)} %`} | ${r.farFaults} | ${r.simMs.toFixed(2)} | ${Math.round(r.simFaultsPerWallSec)} | ${r.vsRemoteOnly === null ? '—' : `${r.vsRemoteOnly.toFixed(2)}x`} |`),
  ];
  console.log(`\n${lines.join('\n')}\n`);
  const withPolicy = rows.filter((r) => r.share !== null);
  const totalPolicy = withPolicy.reduce((a, r) => a + r.policyMs, 0);
  const totalPath = withPolicy.reduce((a, r) => a + r.policyMs / Math.max(r.share!, 1e-9), 0);
  const share = totalPath > 0 ? totalPolicy / totalPath : 0;
  const worst = withPolicy.reduce((a, r) => (r.share! > a.share! ? r : a));
  console.log(`policy layer share of fault-service time, all runs: ${(100 * share).toFixed(1)} % (target < 5 %: ${share < 0.05 ? 'met' : 'NOT met'}); worst: ${worst.workload} ${worst.policy} ${(100 * worst.share!).toFixed(1)} %`);
  if (JSON_FILE) writeFileSync(JSON_FILE, `${JSON.stringify({ adapter: gpu.adapterName, sizeMiB: SIZE_MIB, reps: REPS, share, rows }, null, 2)}\n`);
  console.log(`load average at the end ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  gpu.device.destroy();
}

await main();
