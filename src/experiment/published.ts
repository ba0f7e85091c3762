/**
 * UVM_Smart's published table (issue 15): GPGPU-Sim UVM_Smart's raw result logs
 * (DebashisGanguly/gpgpu-sim_UVMSmart, benchmarks/Results/Eviction_Prefetcher_Interplay/
 * output_logs/*, as read into ../shared/reference/anchors.md): far faults =
 * `Total_memory_access_page_fault`, simulated time = `Tot_kernel_exec_time_and_fault_time`,
 * config GeForceGTX1080Ti; working sets from benchmarks/benchmark_workingset.txt.
 *
 * The `published` preset runs each cell's configuration here and the report prints our far
 * faults and simulated time beside theirs, with the ratio.
 */
import type { WorkloadName } from '../workloads/names.js';
import { isAppWorkload, WORKLOADS } from '../workloads/names.js';
import { appProgram, oversubLeavesEnough } from '../workloads/apps/index.js';
import type { RunConfig, RunResult } from './types.js';
import { barChart, escapeXml } from './svg-plot.js';

/**
 * UVM_Smart's clock, for every cell unless the command line says otherwise (`--cost`): its own
 * accounting of the time it logs (src/policy/cost.ts UVM_SMART_SERIAL: gpu-sim.cc
 * calculate_sim_prof, 45 µs per far fault, serially), not NVIDIA's per-batch service.
 */
export const PUBLISHED_SETTINGS = { cost: 'uvm-smart-serial' } as const satisfies Partial<RunConfig>;

/**
 * UVM_Smart's GPU issues misses as a stalling unit does: its shader.cc ldst_unit::access_cycle
 * sends a TLB miss to the GMMU and marks the access stall_far_fetch, and until the GMMU hands
 * that warp's fetch back (m_gmmu_cu_queue) it returns false, so ldst_unit::cycle returns before
 * any other access: one far fetch outstanding per SM's memory pipeline. Ours: each uTLB keeps
 * one fault a round (utlbFaults 1, src/driver/utlb-issue.ts). The TBN cells that fit run so:
 * there the order decides how many pages a fault event counts. The others do not:
 * - on-demand: a page faults once whatever the order and the serial clock charges per far
 *   fault, so neither figure moves (tests/experiment/published.test.ts shows it);
 * - oversubscribed: since each uTLB's queue is FIFO (utlb-issue.ts) the stall no longer
 *   livelocks there, but it models UVM_Smart's cells worse, measured at the preset's sizes (one
 *   run a cell, 7 December 2026, far faults with the stall / without / UVM_Smart's): TBN + LRU-2M
 *   stops thrashing (bfs 272 / 2,293 / 5,419 at 110 %, 622 / 4,495 / 10,057 at 125 %; fdtd
 *   189 / 3,312 / 5,951), only backprop comes nearer (117 / 2,311 / 347); four faults a uTLB
 *   (28 SMs over 8 uTLBs) still does not thrash (bfs 674, fdtd 726, backprop 466). The random-4K
 *   and SL-64K cells prefetch nothing once full (tree-fits), so a stalled round brings a few
 *   pages (hotspot random-4K: 7,809 rounds, 237 s of wall time, against 158 rounds and 5.7 s).
 */
export const PUBLISHED_STALLING_ISSUE = 1;

/** UVM_Smart's configurations (prefetcher + eviction at an oversubscription). */
export interface PublishedConfig {
  id: string;
  label: string;
  policy: string;
  oversub: number;
  /** The run's utlbFaults (PUBLISHED_STALLING_ISSUE); absent: no limit. */
  utlbFaults?: number;
}

/**
 * Each as UVM_Smart's logs ran it (their option dumps): the random-4K and SL-64K runs
 * (EvictionPolicies/Random, /SL) have `-hardware_prefetch 1 -hwprefetch_oversub 0`, TBN until the
 * device is first oversubscribed and none after (tree-fits); the LRU-2MB runs (LPEviction/2MB_110,
 * 2MB_125) `-hwprefetch_oversub 1`, TBN throughout (tree).
 */
export const PUBLISHED_CONFIGS: readonly PublishedConfig[] = [
  { id: 'on-demand', label: 'on-demand, fits', policy: 'first-touch', oversub: 1 },
  { id: 'tbn', label: 'TBN prefetch, fits', policy: 'first-touch+tree', oversub: 1, utlbFaults: PUBLISHED_STALLING_ISSUE },
  { id: 'tbn-lru2m-110', label: 'TBN + LRU-2M, 110 %', policy: 'first-touch+tree+lru', oversub: 1.1 },
  { id: 'tbn-random4k-110', label: 'TBN + random-4K, 110 %', policy: 'first-touch+tree-fits+random4k', oversub: 1.1 },
  { id: 'tbn-sl64k-110', label: 'TBN + SL-64K, 110 %', policy: 'first-touch+tree-fits+sl64k', oversub: 1.1 },
  { id: 'tbn-lru2m-125', label: 'TBN + LRU-2M, 125 %', policy: 'first-touch+tree+lru', oversub: 1.25 },
];

export interface PublishedBenchmark {
  name: string;
  /** Working set, MiB (benchmark_workingset.txt). */
  sizeMiB: number;
  /** Our WGSL port's --workload name, and the stand-in used while the port is not in. */
  workload: string;
  standIn: WorkloadName;
  /** Logged cells: config id -> [far faults, simulated ms]; null = no comparable log. */
  cells: Readonly<Record<string, readonly [number, number] | null>>;
}

export const PUBLISHED: readonly PublishedBenchmark[] = [
  {
    name: 'backprop', sizeMiB: 17.5625, workload: 'backprop', standIn: 'stream',
    cells: { 'on-demand': [6785, 317.3], tbn: [100, 7.3], 'tbn-lru2m-110': [347, 18.8], 'tbn-random4k-110': [347, 18.8], 'tbn-sl64k-110': [347, 18.8], 'tbn-lru2m-125': null },
  },
  {
    name: 'bfs', sizeMiB: 9.75, workload: 'bfs', standIn: 'gather',
    cells: { 'on-demand': [2491, 116.9], tbn: [53, 3.8], 'tbn-lru2m-110': [5419, 254.6], 'tbn-random4k-110': [2364, 111.7], 'tbn-sl64k-110': [4075, 191.5], 'tbn-lru2m-125': [10057, 471] },
  },
  {
    name: 'fdtd', sizeMiB: 18.0625, workload: 'fdtd-2d', standIn: 'stencil',
    cells: { 'on-demand': [4224, 198.2], tbn: [58, 4.9], 'tbn-lru2m-110': [5951, 280.0], 'tbn-random4k-110': [3784, 178.6], 'tbn-sl64k-110': [5849, 275.4], 'tbn-lru2m-125': null },
  },
  {
    // Hotspot's 110 % LRU column is logged with TBN eviction (3,363 / 158.9 ms), not LRU-2M.
    name: 'hotspot', sizeMiB: 12, workload: 'hotspot', standIn: 'stencil',
    cells: { 'on-demand': [3072, 144.2], tbn: [36, 3.4], 'tbn-lru2m-110': null, 'tbn-random4k-110': [1908, 90.4], 'tbn-sl64k-110': [2083, 98.9], 'tbn-lru2m-125': null },
  },
];

/** UVM_Smart's own speed, from the same logs: far faults per wall second (0.2-0.5). */
export const UVM_SMART_FAULTS_PER_WALL_SEC = { low: 0.2, high: 0.5, example: { run: 'backprop on-demand', farFaults: 6785, wallSec: 21_207 } } as const;

/** The workload a benchmark runs as: its port when one is registered, else the stand-in. */
export function publishedWorkload(b: PublishedBenchmark, known: readonly string[] = WORKLOADS): { workload: string; standIn: boolean } {
  return known.includes(b.workload) ? { workload: b.workload, standIn: false } : { workload: b.standIn, standIn: true };
}

/** The preset's runs: every benchmark × every configuration with a logged cell. */
export function publishedRuns(base: Omit<RunConfig, 'preset'>, known: readonly string[] = WORKLOADS): RunConfig[] {
  const out: RunConfig[] = [];
  for (const b of PUBLISHED) {
    const { workload } = publishedWorkload(b, known);
    for (const c of PUBLISHED_CONFIGS) {
      if (b.cells[c.id] === null || b.cells[c.id] === undefined) continue;
      out.push({
        ...base, ...PUBLISHED_SETTINGS, preset: 'published', workload: workload as RunConfig['workload'], sizeMiB: b.sizeMiB, policy: c.policy, oversub: c.oversub,
        ...(c.utlbFaults !== undefined ? { utlbFaults: c.utlbFaults } : {}),
      });
    }
  }
  return out;
}

export interface PublishedRow {
  benchmark: string;
  config: string;
  workload: string;
  standIn: boolean;
  theirs: { farFaults: number; simMs: number };
  ours: { farFaults: number; simMs: number } | null;
  /** The cell's runs in the report (0: not run: another shard's, or refused below). */
  runs: number;
  /** Not run because at the size the benchmark ran at its oversubscribed device memory is too small (oversubLeavesEnough). */
  tooLittleMemory: boolean;
  /** ours / theirs (null when our run failed). */
  faultRatio: number | null;
  timeRatio: number | null;
}

/** A benchmark's pages at a size (0 when it cannot be that size: nothing to refuse for memory). */
function pagesOf(workload: string, sizeMiB: number): number {
  try {
    return appProgram(workload, sizeMiB, 1).pages;
  } catch {
    return 0;
  }
}

/** Match the report's published runs to the logged cells. */
export function publishedRows(runs: readonly RunResult[], known: readonly string[] = WORKLOADS): PublishedRow[] {
  const rows: PublishedRow[] = [];
  for (const b of PUBLISHED) {
    const { workload, standIn } = publishedWorkload(b, known);
    for (const c of PUBLISHED_CONFIGS) {
      const cell = b.cells[c.id];
      if (cell === null || cell === undefined) continue;
      // Every run of the cell (--seeds N runs it N times): their mean; a failed one fails the cell.
      const cellRuns = runs.filter((r) => r.config.preset === 'published' && r.config.workload === workload && r.config.policy === c.policy &&
        (r.config.oversub ?? 1) === c.oversub);
      const ok = cellRuns.length > 0 && cellRuns.every((r) => r.ok && r.policy !== undefined);
      const mean = (f: (r: RunResult) => number): number => cellRuns.reduce((a, r) => a + f(r), 0) / cellRuns.length;
      // The size the benchmark's other cells ran at (--size), else the preset's.
      const size = runs.find((r) => r.config.preset === 'published' && r.config.workload === workload)?.config.sizeMiB ?? b.sizeMiB;
      const tooLittleMemory = cellRuns.length === 0 && isAppWorkload(workload) && !oversubLeavesEnough(pagesOf(workload, size), c.oversub);
      const ours = ok ? { farFaults: mean((r) => r.policy!.farFaults), simMs: mean((r) => r.policy!.simTimeNs / 1e6) } : null;
      rows.push({
        benchmark: b.name, config: c.label, workload, standIn, theirs: { farFaults: cell[0], simMs: cell[1] }, ours, runs: cellRuns.length, tooLittleMemory,
        faultRatio: ours ? ours.farFaults / cell[0] : null, timeRatio: ours ? ours.simMs / cell[1] : null,
      });
    }
  }
  return rows;
}

const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const ratio = (r: number | null): string => (r === null ? '—' : `${r.toFixed(2)}x`);
const missing = (r: PublishedRow): string => (r.runs === 0 ? 'not run' : 'failed');

/** The README's "Published results" table (markdown). */
export function publishedTable(rows: readonly PublishedRow[]): string {
  const lines = [
    '| benchmark | configuration | UVM_Smart far faults | ours | ratio | UVM_Smart sim. ms | ours | ratio |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const name = r.standIn ? `${r.benchmark} (stand-in: ${r.workload})` : r.benchmark;
    lines.push(`| ${name} | ${r.config} | ${fmt(r.theirs.farFaults)} | ${r.ours ? fmt(r.ours.farFaults) : missing(r)} | ${ratio(r.faultRatio)} | ` +
      `${fmt(r.theirs.simMs, 1)} | ${r.ours ? fmt(r.ours.simMs, 1) : missing(r)} | ${ratio(r.timeRatio)} |`);
  }
  return lines.join('\n');
}

/**
 * Ours beside theirs as a bar chart, for report.html: a pair of bars per cell (far faults,
 * simulated time), each log10(ours / theirs), so 1x is the axis, 10x one step up and 0.1x one
 * step down (the cells span 0.02x to 190x: on a linear axis most bars would be invisible).
 * A cell not run or failed has its category and "n/a".
 */
export function publishedFigure(rows: readonly PublishedRow[], standalone = false): string {
  const categories = rows.map((r) => `${r.benchmark} ${r.config.replace(/,? fits$/, '')}`);
  const log = (v: number | null): number | null => (v === null || !(v > 0) ? null : Math.log10(v));
  return barChart({
    xLabel: 'benchmark, configuration', yLabel: 'ours / UVM_Smart (log10; 0 = same)',
    categories,
    series: [
      { name: 'far faults: ours / theirs', values: rows.map((r) => log(r.faultRatio)) },
      { name: 'simulated time: ours / theirs', values: rows.map((r) => log(r.timeRatio)) },
    ],
    format: (v) => { const x = 10 ** v; return `${x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2)}x`; },
    valueLabels: true,
  }, {
    title: 'UVM_Smart\'s published cells reproduced (1x = their logged figure)', standalone, id: 'figure-published',
    caption: 'Bars: log10 of our far faults and simulated time over UVM_Smart\'s logged ones (GeForceGTX1080Ti config); n/a: not run or failed.',
    width: Math.max(640, 70 * categories.length),
  });
}

/** The published section of report.html ('' when the preset did not run). */
export function htmlPublished(runs: readonly RunResult[]): string {
  const rows = publishedRows(runs);
  if (!rows.some((r) => r.ours !== null)) return '';
  const cells = rows.map((r) => `<tr><td>${escapeXml(r.benchmark)}${r.standIn ? ` (stand-in: ${escapeXml(r.workload)})` : ''}</td><td>${escapeXml(r.config)}</td>` +
    `<td>${fmt(r.theirs.farFaults)}</td><td>${r.ours ? fmt(r.ours.farFaults) : missing(r)}</td><td>${ratio(r.faultRatio)}</td>` +
    `<td>${fmt(r.theirs.simMs, 1)}</td><td>${r.ours ? fmt(r.ours.simMs, 1) : missing(r)}</td><td>${ratio(r.timeRatio)}</td></tr>`);
  return ['<h2>Published results (UVM_Smart)</h2>', '<table><thead><tr><th>benchmark</th><th>configuration</th><th>UVM_Smart far faults</th><th>ours</th><th>ratio</th>' +
    '<th>UVM_Smart sim. ms</th><th>ours</th><th>ratio</th></tr></thead><tbody>', ...cells, '</tbody></table>',
  `<figure>${publishedFigure(rows)}</figure>`].join('\n');
}

/**
 * The benchmark row: our simulated far faults per wall second over the published runs, beside
 * UVM_Smart's logged rate (far faults / wall seconds of its own runs).
 */
export function publishedSpeed(runs: readonly RunResult[]): { farFaults: number; wallSec: number; perWallSec: number; vsUvmSmart: number } | null {
  let farFaults = 0;
  let wallMs = 0;
  for (const r of runs) {
    if (r.config.preset !== 'published' || !r.ok || r.policy === undefined || r.reusedFrom !== undefined) continue;
    farFaults += r.policy.farFaults;
    wallMs += r.wallMs;
  }
  if (wallMs <= 0) return null;
  const perWallSec = farFaults / (wallMs / 1000);
  const theirs = UVM_SMART_FAULTS_PER_WALL_SEC.example.farFaults / UVM_SMART_FAULTS_PER_WALL_SEC.example.wallSec;
  return { farFaults, wallSec: wallMs / 1000, perWallSec, vsUvmSmart: perWallSec / theirs };
}
