/**
 * The experiment's command line: option parsing (node:util's parseArgs splits the words;
 * the values are checked here, with messages that name the option) and the presets, which
 * expand into the list of RunConfigs the runner measures.
 *
 * Semantics: a preset sweeps some axes (coalescing on/off, the window, the batch size, the
 * retry protocol × storm rate); every other axis takes the base value (BASE_CONFIG). An
 * axis option (--workload, --size, --window, --batch, --replay, --protocol, --storm,
 * --seed, --writes, --no-coalesce) fixes that axis for every run of the chosen presets — a
 * comma list runs each value — and runs that become identical are merged. So
 * `--preset protocols --protocol seq` is seq under the rising storm rates, and
 * `--preset windows --workload random,gather` sweeps the windows on those two workloads.
 */
import { parseArgs as tokenize } from 'node:util';
import type { WindowPolicy } from '../driver/coalesce.js';
import { RETRY_PROTOCOLS } from '../driver/retry.js';
import { APPS, appProgram, MIN_OVERSUB_CHUNKS, oversubLeavesEnough } from '../workloads/apps/index.js';
import { APP_WORKLOADS, isAppWorkload, SYNTHETIC_WORKLOADS, type AppWorkload, type WorkloadName } from '../workloads/names.js';
import { DEFAULT_WATCHDOG, parseWatchdog, type WatchdogBounds } from './watchdog.js';
import { ADAPTER_CHOICES, ADAPTER_ENV, isAdapterChoice, type AdapterChoice } from '../device/gpu.js';
import { publishedRuns } from './published.js';
import {
  AXES, AXIS_ORDER, axisDef, bad, BASE_CONFIG, CliError, configKey, expandConfig, oneOf, positiveInt, type AxisKey, type AxisValue, type Parser,
  type RunConfig,
} from './schema.js';

export { BASE_CONFIG, CliError, configKey };

export const PRESET_NAMES = ['quick', 'coalescing', 'windows', 'batches', 'protocols', 'mm', 'policies', 'published', 'all'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];
/** What `all` means (quick is a subset of these). */
export const ALL_PRESETS: readonly PresetName[] = ['coalescing', 'windows', 'batches', 'protocols', 'mm'];
/** The presets run when --preset is not given: the README's main-job command. */
export const DEFAULT_PRESETS: readonly PresetName[] = ['quick', 'mm'];

export const WINDOWS: readonly WindowPolicy[] = [4096, 65536, 2097152, 'amd'];
export const PRESET_BATCH_SIZES: readonly number[] = [32, 64, 256, 1024];
export const PRESET_STORM_RATES: readonly number[] = [0, 100, 1000, 5000];
/** The quick set's storm rates (a subset of PRESET_STORM_RATES). */
export const QUICK_STORM_RATES: readonly number[] = [0, 1000, 5000];
/** Workloads of the windows and batches presets (and of quick's coalescing runs). */
export const SWEEP_WORKLOADS: readonly WorkloadName[] = ['stream', 'random'];
/** The one workload of the protocols preset. */
export const PROTOCOL_WORKLOAD: WorkloadName = 'stream';

/** The policies preset (issue 9): each built-in (prefetch and eviction as modifiers) ... */
export const PRESET_POLICIES: readonly string[] = [
  'remote-only', 'first-touch', 'first-touch+tree', 'access-counters', 'access-counters-ipdps20', 'thrashing', 'min-lifetime',
  'backoff', 'first-touch+tree+lfu', 'first-touch+tree+fifo', 'first-touch+tree+mru',
];
/** ... on these workloads, at these oversubscriptions (working set / device memory), this size. */
export const POLICY_WORKLOADS: readonly WorkloadName[] = ['stream', 'random', 'stencil', 'pingpong'];
export const PRESET_OVERSUBS: readonly number[] = [1, 1.5];
export const POLICY_SIZE_MIB = 4;
export const PINGPONG_SHAPE = { sizeMiB: 8 / 256, phases: 40 } as const;
/**
 * The policies preset's application workloads (each at its default size: UVM_Smart's input):
 * on-demand and tree prefetch when memory fits, tree + LRU at 125 % (UVM_Smart's
 * oversubscription) where that leaves at least MIN_OVERSUB_CHUNKS chunks of device memory.
 */
export const APP_POLICY_RUNS: readonly { policy: string; oversub: number }[] = [
  { policy: 'first-touch', oversub: 1 }, { policy: 'first-touch+tree', oversub: 1 }, { policy: 'first-touch+tree+lru', oversub: 1.25 },
];

/** An application workload's default size, MiB. */
export function appDefaultMiB(w: AppWorkload): number {
  return APPS[w].defaultMiB;
}

/** The policies preset's runs of an application workload. */
export function appPolicyRuns(w: AppWorkload): { policy: string; oversub: number }[] {
  const pages = appProgram(w, appDefaultMiB(w), BASE_CONFIG.seed).pages;
  return APP_POLICY_RUNS.filter((r) => oversubLeavesEnough(pages, r.oversub));
}

/** The axes an option can fix (the run schema's, schema.ts). */
export type AxisName = AxisKey;
export type AxisOverrides = { [K in AxisKey]?: NonNullable<AxisValue<K>>[] };

export interface CliOptions {
  /** As given (or DEFAULT_PRESETS); may contain 'all' and 'quick'. */
  presets: PresetName[];
  presetGiven: boolean;
  overrides: AxisOverrides;
  /** Output directory; null = out/experiment-<timestamp>/. */
  out: string | null;
  quiet: boolean;
  help: boolean;
  /** The mm preset (mm-tour.ts): pages in the buffer and device faults per scheme. */
  mmPages: number;
  mmRounds: number;
  /** Also write the JSON report here (the old --json FILE). */
  json: string | null;
  /** --shard K/N: run only the configs i with i % N === K - 1 (1-based K). */
  shard: { k: number; n: number } | null;
  /** --jobs N: run the sweep as N shards in child processes on this machine. */
  jobs: number;
  /** --record-trace FILE: the (single) run's faults as a trace (.jsonl or .csv). */
  recordTrace: string | null;
  /** --watchdog SIM_S,WALL_S[,ROUNDS]: time without progress (rounds without an invocation completing) before a run is ended (null: the default). */
  watchdog: WatchdogBounds | null;
  /** --perfetto FILE: the runs as Chrome trace-event JSON (ui.perfetto.dev opens it). */
  perfetto: string | null;
  /** --adapter auto|opengles|vulkan: the Node adapter every run shares (null: MIRRORLAB_ADAPTER, or auto). */
  adapter: AdapterChoice | null;
}

/** --help's lines for the run settings, from the run schema. */
function axisHelp(): string {
  const lines: string[] = [];
  for (const k of AXIS_ORDER) {
    const d = axisDef(k);
    const head = `  ${d.flag}${d.metavar ? ` ${d.metavar}` : ''}`;
    const help = [...d.help];
    if (d.base !== undefined && d.flagSets === undefined) help[help.length - 1] += `   (base: ${d.text(d.base)})`;
    help.forEach((h, i) => lines.push(`${(i === 0 ? head : '').padEnd(25)}${h}`));
  }
  return lines.join('\n');
}

export const USAGE = `Usage: npm run experiment -- [options]

Runs fault-servicing experiments on the GPU (and the CPU-side mm preset), prints a table
and writes report.json, runs.csv, batches.csv, report.html and figure-*.svg.

Presets:
  --preset NAME[,NAME]   quick | coalescing | windows | batches | protocols | policies | published | mm | all
                         (default: quick,mm)
      quick        coalescing on/off for stream and random, and the three retry
                   protocols under 0, 1000, 5000 invalidations/s on stream
      coalescing   coalescing on/off for each synthetic workload (${SYNTHETIC_WORKLOADS.join(', ')})
      windows      each window (4k, 64k, 2m, amd) for stream and random
      batches      batch sizes ${PRESET_BATCH_SIZES.join(', ')} (replay ${BASE_CONFIG.replay}) for stream and random
      protocols    seq, valid-flag, lock-fallback under ${PRESET_STORM_RATES.join(', ')} invalidations/s on ${PROTOCOL_WORKLOAD}
      policies     migration policies: ${PRESET_POLICIES.length} built-ins × ${POLICY_WORKLOADS.join(', ')}
                   × oversubscription ${PRESET_OVERSUBS.join(', ')} at ${POLICY_SIZE_MIB} MiB (pingpong: 8 pages, 40
                   hand-offs) — simulated time, bytes moved each way, faults, thrashing, evictions, ...;
                   and each application workload at its default size: ${APP_POLICY_RUNS.map((r) => `${r.policy}${r.oversub > 1 ? ` at ${r.oversub}x` : ''}`).join(', ')}
      published    UVM_Smart's published table: on-demand, TBN prefetch, TBN + LRU-2M / random-4K / SL-64K
                   eviction at 110 % and 125 % on backprop, bfs, fdtd, hotspot at UVM_Smart's working sets;
                   prints their far faults and simulated time beside ours, and the ratio
      mm           the CPU-side demo: seq vs valid-flag under CPU invalidations (no GPU)
      all          coalescing, windows, batches, protocols and mm

Run settings (fix that setting in every run of the presets; a comma list runs each value):
${axisHelp()}
  --record-trace FILE    record the run's device and CPU faults (virtual time) as a trace (.jsonl/.csv;
                         one run, with a policy); replay it with ${AXES.workload.flag} trace:FILE
                         (trace:FILE also reads Nsight Systems SQLite exports and uvm-eval .log files)
  --perfetto FILE        write the runs as Chrome trace-event JSON for ui.perfetto.dev (.json)

mm preset:
  --pages N              pages in the mirrored buffer   (default 256)
  --rounds N             device faults per retry protocol   (default 2000)

Unattended runs:
  --watchdog SIM_S,WALL_S[,ROUNDS]   end a run that makes no progress (nothing mapped, no command finished)
                         for SIM_S seconds of simulated time or WALL_S of wall time, or in which no
                         invocation completes for ROUNDS replay rounds (a thrashing livelock); 'off' for
                         none; the sweep goes on with the next run   (default ${DEFAULT_WATCHDOG.simNs / 1e9},${DEFAULT_WATCHDOG.wallMs / 1000},${DEFAULT_WATCHDOG.rounds})

Sweeps across processes and machines:
  --shard K/N            run only the K-th of N interleaved parts of the sweep (batch schedulers)
  --jobs N               run the sweep as N shards in child processes here, then merge them
  npm run experiment -- merge DIR... [--out DIR]   join shard outputs into one report

GPU:
  --adapter NAME         auto | opengles | vulkan: the Node adapter every run shares (sets ${ADAPTER_ENV};
                         auto, the default, takes a hardware GPU, then llvmpipe through OpenGL ES, then
                         SwiftShader through Vulkan); the table and report.json name the one that ran

Output:
  --out DIR              output directory (default out/experiment-<timestamp>/)
  --json FILE            also write the JSON report to FILE
  --quiet                no plan and no per-run progress; the table and paths still print
  -h, --help             this text

Examples:
  npm run experiment
  npm run experiment -- --preset protocols ${AXES.workload.flag} random ${AXES.stormRate.flag} 0,5000
  npm run experiment -- --preset policies ${AXES.sizeMiB.flag} 1 ${AXES.seeds.flag} 5
  npm run experiment -- --preset windows,batches ${AXES.sizeMiB.flag} 32 --out out/windows
`;

const shardParser = (raw: string, opt: string): { k: number; n: number } => {
  const m = /^(\d+)\/(\d+)$/.exec(raw.trim());
  const k = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!m || !(n >= 1) || !(k >= 1) || k > n) throw bad(opt, raw, 'a shard K/N with 1 ≤ K ≤ N');
  return { k, n };
};

function list<T>(p: Parser<T>): Parser<T[]> {
  return (raw, opt) => {
    const parts = raw.split(',');
    if (parts.some((x) => x.trim() === '')) throw new CliError(`${opt}: empty value in '${raw}'`);
    const out: T[] = [];
    for (const x of parts) {
      const v = p(x.trim(), opt);
      if (!out.includes(v)) out.push(v);
    }
    return out;
  };
}

/** The run schema's options by flag: value options parse a comma list (or one value), flags set a value. */
const AXIS_OPTIONS: ReadonlyMap<string, AxisKey> = new Map(AXIS_ORDER.map((k) => [AXES[k].flag, k]));
const axisFlags = (flag: boolean): string[] => AXIS_ORDER.filter((k) => (axisDef(k).flagSets !== undefined) === flag).map((k) => AXES[k].flag);

/**
 * What node:util's parseArgs is told: every value option a string, every flag a boolean.
 * It runs non-strict and hands back tokens, so that each mistake gets this file's message
 * (parseArgs' own strict errors would also refuse values such as '-4' before the value's
 * parser could say what is wrong with them).
 */
const TOKEN_OPTIONS = {
  preset: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'string' },
  pages: { type: 'string' },
  rounds: { type: 'string' },
  shard: { type: 'string' },
  jobs: { type: 'string' },
  'record-trace': { type: 'string' },
  watchdog: { type: 'string' },
  perfetto: { type: 'string' },
  adapter: { type: 'string' },
  ...Object.fromEntries(axisFlags(false).map((o) => [o.slice(2), { type: 'string' }] as const)),
  ...Object.fromEntries(axisFlags(true).map((o) => [o.slice(2), { type: 'boolean' }] as const)),
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} satisfies NonNullable<Parameters<typeof tokenize>[0]>['options'];

const VALUE_OPTIONS = ['--preset', '--out', '--json', '--pages', '--rounds', '--shard', '--jobs', '--record-trace', '--perfetto', '--watchdog', '--adapter', ...axisFlags(false)];
const FLAG_OPTIONS = [...axisFlags(true), '--quiet', '--help', '-h'];

function setOverride(o: AxisOverrides, axis: AxisKey, values: unknown[]): void {
  (o as Record<AxisKey, unknown[]>)[axis] = values;
}

/** Parse argv (without node and the script). Throws CliError with a message for the user. */
export function parseArgs(argv: readonly string[]): CliOptions {
  const o: CliOptions = {
    presets: [...DEFAULT_PRESETS], presetGiven: false, overrides: {}, out: null, quiet: false, help: false,
    mmPages: 256, mmRounds: 2000, json: null, shard: null, jobs: 1, recordTrace: null, perfetto: null, watchdog: null, adapter: null,
  };
  const { tokens } = tokenize({ args: [...argv], options: TOKEN_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind === 'positional') throw new CliError(`unexpected argument '${t.value}' (options start with --; see --help)`);
    if (t.kind === 'option-terminator') throw new CliError("unexpected argument '--' (options start with --; see --help)");
    const name = t.rawName; // as typed: '--batch', '-h'
    if (FLAG_OPTIONS.includes(name)) {
      if (t.value !== undefined) throw new CliError(`${name} takes no value`);
      const axis = AXIS_OPTIONS.get(name);
      if (axis !== undefined) setOverride(o.overrides, axis, [axisDef(axis).flagSets]);
      else if (name === '--quiet') o.quiet = true;
      else o.help = true;
      continue;
    }
    if (!VALUE_OPTIONS.includes(name)) {
      const near = [...VALUE_OPTIONS, ...FLAG_OPTIONS].find((x) => x.startsWith(name) || name.startsWith(x));
      throw new CliError(`unknown option '${name}'${near ? ` (did you mean ${near}?)` : ''}; see --help`);
    }
    // "--batch --quiet": parseArgs took the next option as the value; it was meant as an option.
    const value = t.value;
    if (value === undefined || value.trim() === '' || (!t.inlineValue && value.startsWith('--') && value.length > 2)) {
      throw new CliError(`${name} needs a value`);
    }
    switch (name) {
      case '--preset':
        o.presets = list(oneOf(PRESET_NAMES, 'a preset'))(value, name);
        o.presetGiven = true;
        break;
      case '--out':
        o.out = value;
        break;
      case '--json':
        o.json = value;
        break;
      case '--pages':
        o.mmPages = positiveInt(value, name);
        break;
      case '--rounds':
        o.mmRounds = positiveInt(value, name);
        break;
      case '--shard':
        o.shard = shardParser(value, name);
        break;
      case '--jobs':
        o.jobs = positiveInt(value, name);
        break;
      case '--watchdog': {
        const w = parseWatchdog(value);
        if (typeof w === 'string') throw bad(name, value, w);
        o.watchdog = w;
        break;
      }
      case '--record-trace':
        if (!/\.(jsonl|csv)$/i.test(value)) throw bad(name, value, 'a trace file name ending in .jsonl or .csv');
        o.recordTrace = value;
        break;
      case '--adapter':
        if (!isAdapterChoice(value)) throw bad(name, value, `an adapter (one of ${ADAPTER_CHOICES.join(', ')})`);
        o.adapter = value;
        break;
      case '--perfetto':
        if (!/\.json$/i.test(value)) throw bad(name, value, 'a file name ending in .json (Chrome trace-event JSON)');
        o.perfetto = value;
        break;
      default: {
        const axis = AXIS_OPTIONS.get(name)!;
        const d = axisDef(axis);
        let values: unknown[] = d.single ? [d.parse(value.trim(), name)] : list(d.parse)(value, name);
        const before = (o.overrides as Record<string, unknown[] | undefined>)[axis];
        // --policy-opt, --cost-opt repeat: each occurrence adds its options to every run's (a cross product of lists).
        const join = d.joinRepeats;
        if (join !== undefined && before !== undefined) values = before.flatMap((b) => values.map((v) => `${String(b)}${join}${String(v)}`));
        setOverride(o.overrides, axis, values);
      }
    }
  }
  return o;
}

/** The named presets with 'all' expanded, in order, without repeats. */
export function resolvePresets(presets: readonly PresetName[]): PresetName[] {
  const out: PresetName[] = [];
  for (const p of presets.flatMap((x) => (x === 'all' ? ALL_PRESETS : [x]))) if (!out.includes(p)) out.push(p);
  return out;
}

/** Does the preset list include the CPU-side mm preset? */
export function wantsMm(opts: Pick<CliOptions, 'presets'>): boolean {
  return resolvePresets(opts.presets).includes('mm');
}

function cfg(preset: string, c: Partial<Omit<RunConfig, 'preset'>>): RunConfig {
  return { preset, ...BASE_CONFIG, ...c } as RunConfig;
}

/** The runs of one preset before options apply. */
export function presetRuns(p: PresetName): RunConfig[] {
  switch (p) {
    case 'coalescing':
      return SYNTHETIC_WORKLOADS.flatMap((workload) => [true, false].map((coalesce) => cfg(p, { workload, coalesce })));
    case 'windows':
      return SWEEP_WORKLOADS.flatMap((workload) => WINDOWS.map((window) => cfg(p, { workload, window })));
    case 'batches':
      return SWEEP_WORKLOADS.flatMap((workload) => PRESET_BATCH_SIZES.map((batchSize) => cfg(p, { workload, batchSize })));
    case 'protocols':
      return RETRY_PROTOCOLS.flatMap((protocol) => PRESET_STORM_RATES.map((stormRate) => cfg(p, { workload: PROTOCOL_WORKLOAD, protocol, stormRate })));
    case 'quick':
      // A subset of coalescing and protocols, labelled with those presets so the plots use them.
      return [
        ...SWEEP_WORKLOADS.flatMap((workload) => [true, false].map((coalesce) => cfg('coalescing', { workload, coalesce }))),
        ...RETRY_PROTOCOLS.flatMap((protocol) => QUICK_STORM_RATES.map((stormRate) => cfg('protocols', { workload: PROTOCOL_WORKLOAD, protocol, stormRate }))),
      ];
    case 'policies':
      // pingpong hands 8 pages back and forth 40 times: each CPU phase (8 faults home) then
      // stays inside NVIDIA's 500 µs thrashing lapse, so the detector has something to see.
      return [
        ...POLICY_WORKLOADS.flatMap((workload) => PRESET_OVERSUBS.flatMap((oversub) => PRESET_POLICIES.map((policy) => cfg(p, {
          workload, oversub, policy, ...(workload === 'pingpong' ? PINGPONG_SHAPE : { sizeMiB: POLICY_SIZE_MIB }),
        })))),
        ...APP_WORKLOADS.flatMap((workload) => appPolicyRuns(workload).map((r) => cfg(p, { workload, sizeMiB: appDefaultMiB(workload), ...r }))),
      ];
    case 'published':
      // UVM_Smart's configurations on its benchmarks at its working sets (published.ts).
      return publishedRuns(BASE_CONFIG);
    case 'mm':
    case 'all':
      return [];
    default:
      throw new CliError(`unknown preset '${String(p)}'`);
  }
}

/** The K-th of N interleaved parts of a sweep (config i goes to shard i % N + 1). */
export function shardOf<T>(configs: readonly T[], shard: { k: number; n: number } | null): { index: number; config: T }[] {
  const all = configs.map((config, index) => ({ index, config }));
  return shard === null ? all : all.filter((x) => x.index % shard.n === shard.k - 1);
}

/**
 * The GPU runs of the chosen presets (the mm preset adds none: see wantsMm), with the
 * options' axis values applied (each listed value once), duplicates merged.
 */
export function expandPresets(opts: Pick<CliOptions, 'presets' | 'overrides'>): RunConfig[] {
  let runs = resolvePresets(opts.presets).flatMap(presetRuns);
  for (const axis of AXIS_ORDER) {
    const values = opts.overrides[axis];
    if (values === undefined || values.length === 0) continue;
    // A preset's run of an application workload is shaped for it (its size): another
    // --workload replaces the preset's other runs, not that one.
    runs = runs.flatMap((c) => values
      .filter((v) => axis !== 'workload' || !isAppWorkload(c.workload) || v === c.workload)
      .map((v) => ({ ...c, [axis]: v }) as RunConfig));
  }
  // --workload NAME of an application puts it in presets sized for the synthetic ones: it
  // runs at its own default size (UVM_Smart's input) unless --size says.
  if (opts.overrides.workload !== undefined && opts.overrides.sizeMiB === undefined) {
    runs = runs.map((c) => (isAppWorkload(c.workload) ? { ...c, sizeMiB: appDefaultMiB(c.workload) } : c));
  }
  runs = runs.flatMap(expandConfig).filter(publishedCellFits);
  const seen = new Set<string>();
  return runs.filter((c) => {
    const k = configKey(c);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * A published cell whose oversubscribed device memory would be under MIN_OVERSUB_CHUNKS
 * chunks at its size (bfs at 7 MiB and 125 % would leave 5.6 MiB) is left out of the preset (its
 * table row says "not run"), not a usage error that stops the other cells. A size the
 * workload cannot be at all stays in, for the usage check to name.
 */
function publishedCellFits(c: RunConfig): boolean {
  if (c.preset !== 'published' || !isAppWorkload(c.workload) || c.policy === undefined) return true;
  let pages: number;
  try {
    pages = appProgram(c.workload, c.sizeMiB, c.seed).pages;
  } catch {
    return true;
  }
  return oversubLeavesEnough(pages, c.oversub ?? 1);
}

/** Axes whose value differs among the configs (the workload always counts). */
export function varyingAxes(configs: readonly RunConfig[]): AxisName[] {
  return AXIS_ORDER.filter((a) => a === 'workload' || new Set(configs.map((c) => String(c[a] ?? ''))).size > 1);
}

/** "coalescing stream window=64k coalesce=off": the preset and the given axes (default: all). */
export function describeConfig(c: RunConfig, axes: readonly AxisName[] = AXIS_ORDER): string {
  return [c.preset, ...axes.map((a) => axisDef(a).describe(c[a]))].join(' ');
}

/** The settings every config shares, e.g. "size=8MiB writes=0.25 replay=batch-flush". */
export function describeCommon(configs: readonly RunConfig[]): string {
  if (configs.length === 0) return '';
  const varying = varyingAxes(configs);
  return AXIS_ORDER.filter((a) => !varying.includes(a) && (configs[0][a] !== undefined)).map((a) => axisDef(a).describe(configs[0][a])).join(' ');
}
