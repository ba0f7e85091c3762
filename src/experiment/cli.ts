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
import { MIN_OVERSUB_CHUNKS } from '../workloads/apps/index.js';
import { REPLAY_POLICIES } from '../driver/servicer.js';
import { batchLabel, windowLabel } from './report/labels.js';
import { APPS } from '../workloads/apps/index.js';
import { APP_WORKLOADS, isAppWorkload, SYNTHETIC_WORKLOADS, WORKLOADS, type AppWorkload, type WorkloadName } from '../workloads/names.js';
import type { RunConfig } from './types.js';

export const PRESET_NAMES = ['quick', 'coalescing', 'windows', 'batches', 'protocols', 'mm', 'policies', 'all'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];
/** What `all` means (quick is a subset of these). */
export const ALL_PRESETS: readonly PresetName[] = ['coalescing', 'windows', 'batches', 'protocols', 'mm'];
/** The presets run when --preset is not given: the README's main-job command. */
export const DEFAULT_PRESETS: readonly PresetName[] = ['quick', 'mm'];

/** Every run starts from this; presets and options change some axes. */
export const BASE_CONFIG: Readonly<Omit<RunConfig, 'preset'>> = {
  workload: 'stream',
  sizeMiB: 8,
  writeFraction: 0.25,
  window: 2097152,
  batchSize: 256,
  replay: 'batch-flush',
  protocol: 'seq',
  coalesce: true,
  stormRate: 0,
  seed: 1,
};

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
export const OVERSUBS: readonly number[] = [1, 1.5, 2, 3];
/**
 * The policies preset's application workloads (each at its default size: UVM_Smart's input):
 * on-demand and tree-prefetch when memory fits, tree + LRU at 125 % (where the device memory
 * left is at least MIN_OVERSUB_CHUNKS chunks; UVM_Smart's oversubscription settings).
 */
export const APP_POLICY_RUNS: readonly { policy: string; oversub: number }[] = [
  { policy: 'first-touch', oversub: 1 }, { policy: 'first-touch+tree', oversub: 1 }, { policy: 'first-touch+tree+lru', oversub: 1.25 },
];

/** An application workload's default size, MiB. */
export function appDefaultMiB(w: AppWorkload): number {
  return APPS[w].defaultMiB;
}

/** The axes an option can fix. */
export type AxisName = 'workload' | 'sizeMiB' | 'writeFraction' | 'window' | 'batchSize' | 'replay' | 'protocol' | 'coalesce' | 'stormRate' | 'seed' | 'policy' | 'oversub';
export type AxisOverrides = { [K in AxisName]?: NonNullable<RunConfig[K]>[] };

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
}

export class CliError extends Error {
  override name = 'CliError';
}

export const USAGE = `Usage: npm run experiment -- [options]

Runs fault-servicing experiments on the GPU (and the CPU-side mm preset), prints a table
and writes report.json, runs.csv, batches.csv, report.html and figure-*.svg.

Presets:
  --preset NAME[,NAME]   quick | coalescing | windows | batches | protocols | mm | all
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
      mm           the CPU-side demo: seq vs valid-flag under CPU invalidations (no GPU)
      all          coalescing, windows, batches, protocols and mm

Run settings (fix that setting in every run of the presets; a comma list runs each value):
  --workload NAME        ${WORKLOADS.join(' | ')} | trace:FILE.jsonl|csv (an access trace:
                         time,address,access,processor)   (base: ${BASE_CONFIG.workload})
  --size MiB             size of the mirrored buffer   (base: ${BASE_CONFIG.sizeMiB}); an application workload
                         scales its input to about this footprint (default: its own, UVM_Smart's input:
                         ${APP_WORKLOADS.map((w) => `${w} ${appDefaultMiB(w)}`).join(', ')})
  --window W             4k | 64k | 2m | amd   (base: ${windowLabel(BASE_CONFIG.window)})
  --batch N              faults fetched per batch   (base: ${BASE_CONFIG.batchSize})
  --replay P             block | batch | batch-flush | once   (base: ${BASE_CONFIG.replay})
  --protocol P           seq | valid-flag | lock-fallback   (base: ${BASE_CONFIG.protocol})
  --no-coalesce          the per-fault baseline (no dedup, no window)
  --storm RATE           CPU invalidations per second, 0 = none   (base: ${BASE_CONFIG.stormRate})
  --writes F             fraction of accesses that write, 0..1   (base: ${BASE_CONFIG.writeFraction})
  --seed N               PRNG seed, 0..4294967295   (base: ${BASE_CONFIG.seed}; also the mm preset's)
  --policy P             a migration policy: a built-in (${PRESET_POLICIES.slice(0, 3).join(', ')}, ...;
                         +tree adds the tree prefetcher, +lru/+lfu/+fifo/+mru the eviction order)
                         or a module path (./my-policy.ts)   (base: none: no policy, dmirror's remote mapping)
  --oversub X            working set / device memory, ≥ 1 (1, 1.5, 2, 3; with a policy)   (base: 1)
  --record-trace FILE    record the run's device and CPU faults (virtual time) as a trace (.jsonl/.csv;
                         one run, with a policy); replay it with --workload trace:FILE

mm preset:
  --pages N              pages in the mirrored buffer   (default 256)
  --rounds N             device faults per retry protocol   (default 2000)

Sweeps across processes and machines:
  --shard K/N            run only the K-th of N interleaved parts of the sweep (batch schedulers)
  --jobs N               run the sweep as N shards in child processes here, then merge them
  npm run experiment -- merge DIR... [--out DIR]   join shard outputs into one report

Output:
  --out DIR              output directory (default out/experiment-<timestamp>/)
  --json FILE            also write the JSON report to FILE
  --quiet                no plan and no per-run progress; the table and paths still print
  -h, --help             this text

Examples:
  npm run experiment
  npm run experiment -- --preset protocols --workload random --storm 0,5000
  npm run experiment -- --preset windows,batches --size 32 --out out/windows
`;

type Parser<T> = (raw: string, opt: string) => T;

function bad(opt: string, raw: string, what: string): CliError {
  return new CliError(`${opt}: '${raw}' is not ${what}`);
}

function oneOf<T extends string>(values: readonly T[], what: string): Parser<T> {
  return (raw, opt) => {
    const v = raw.trim().toLowerCase();
    const hit = values.find((x) => x === v);
    if (hit === undefined) throw bad(opt, raw, `${what} (one of ${values.join(', ')})`);
    return hit;
  };
}

const positiveInt: Parser<number> = (raw, opt) => {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isSafeInteger(v) || v <= 0) throw bad(opt, raw, 'a positive integer');
  return v;
};

const seedParser: Parser<number> = (raw, opt) => {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad(opt, raw, 'a seed (an integer 0..4294967295)');
  return v;
};

const sizeParser: Parser<number> = (raw, opt) => {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v <= 0) throw bad(opt, raw, 'a size in MiB (a positive number)');
  if (!Number.isInteger(v * 256)) throw bad(opt, raw, 'a whole number of 4 KiB pages (MiB in steps of 1/256)');
  return v;
};

const rateParser: Parser<number> = (raw, opt) => {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < 0) throw bad(opt, raw, 'a rate (invalidations per second, ≥ 0)');
  return v;
};

const fractionParser: Parser<number> = (raw, opt) => {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < 0 || v > 1) throw bad(opt, raw, 'a fraction between 0 and 1');
  return v;
};

/** A workload name, or trace:FILE (a .jsonl or .csv access trace, replayed on the real path). */
const workloadParser: Parser<RunConfig['workload']> = (raw, opt) => {
  const v = raw.trim();
  if (v.startsWith('trace:')) {
    if (!/\.(jsonl|csv)$/i.test(v)) throw bad(opt, raw, 'a trace (trace:FILE.jsonl or trace:FILE.csv)');
    return v as `trace:${string}`;
  }
  return oneOf(WORKLOADS, 'a workload')(raw, opt);
};

const policyParser: Parser<string> = (raw, opt) => {
  const v = raw.trim();
  if (v === '') throw bad(opt, raw, 'a policy (a built-in name or a module path)');
  return v;
};

const oversubParser: Parser<number> = (raw, opt) => {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < 1 || v > 16) throw bad(opt, raw, 'an oversubscription factor (1 to 16: 1, 1.5, 2, 3)');
  return v;
};

const shardParser = (raw: string, opt: string): { k: number; n: number } => {
  const m = /^(\d+)\/(\d+)$/.exec(raw.trim());
  const k = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!m || !(n >= 1) || !(k >= 1) || k > n) throw bad(opt, raw, 'a shard K/N with 1 ≤ K ≤ N');
  return { k, n };
};

export const windowParser: Parser<WindowPolicy> = (raw, opt) => {
  const v = raw.trim().toLowerCase();
  const map: Record<string, WindowPolicy> = {
    '4k': 4096, '4096': 4096, '64k': 65536, '65536': 65536, '2m': 2097152, '2097152': 2097152, amd: 'amd',
  };
  const w = map[v];
  if (w === undefined) throw bad(opt, raw, 'a window (one of 4k, 64k, 2m, amd)');
  return w;
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

const AXIS_OPTIONS: Record<string, { axis: AxisName; parse: Parser<unknown[]> }> = {
  '--workload': { axis: 'workload', parse: list(workloadParser) },
  '--size': { axis: 'sizeMiB', parse: list(sizeParser) },
  '--writes': { axis: 'writeFraction', parse: list(fractionParser) },
  '--window': { axis: 'window', parse: list(windowParser) },
  '--batch': { axis: 'batchSize', parse: list(positiveInt) },
  '--replay': { axis: 'replay', parse: list(oneOf(REPLAY_POLICIES, 'a replay policy')) },
  '--protocol': { axis: 'protocol', parse: list(oneOf(RETRY_PROTOCOLS, 'a retry protocol')) },
  '--storm': { axis: 'stormRate', parse: list(rateParser) },
  '--seed': { axis: 'seed', parse: list(seedParser) },
  '--policy': { axis: 'policy', parse: list(policyParser) },
  '--oversub': { axis: 'oversub', parse: list(oversubParser) },
};

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
  ...Object.fromEntries(Object.keys(AXIS_OPTIONS).map((o) => [o.slice(2), { type: 'string' }] as const)),
  'no-coalesce': { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies NonNullable<Parameters<typeof tokenize>[0]>['options'];

const VALUE_OPTIONS = ['--preset', '--out', '--json', '--pages', '--rounds', '--shard', '--jobs', '--record-trace', ...Object.keys(AXIS_OPTIONS)];
const FLAG_OPTIONS = ['--no-coalesce', '--quiet', '--help', '-h'];

/** Parse argv (without node and the script). Throws CliError with a message for the user. */
export function parseArgs(argv: readonly string[]): CliOptions {
  const o: CliOptions = {
    presets: [...DEFAULT_PRESETS], presetGiven: false, overrides: {}, out: null, quiet: false, help: false,
    mmPages: 256, mmRounds: 2000, json: null, shard: null, jobs: 1, recordTrace: null,
  };
  const { tokens } = tokenize({ args: [...argv], options: TOKEN_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind === 'positional') throw new CliError(`unexpected argument '${t.value}' (options start with --; see --help)`);
    if (t.kind === 'option-terminator') throw new CliError("unexpected argument '--' (options start with --; see --help)");
    const name = t.rawName; // as typed: '--batch', '-h'
    if (FLAG_OPTIONS.includes(name)) {
      if (t.value !== undefined) throw new CliError(`${name} takes no value`);
      if (name === '--no-coalesce') o.overrides.coalesce = [false];
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
      case '--record-trace':
        if (!/\.(jsonl|csv)$/i.test(value)) throw bad(name, value, 'a trace file name ending in .jsonl or .csv');
        o.recordTrace = value;
        break;
      default: {
        const a = AXIS_OPTIONS[name];
        (o.overrides as Record<AxisName, unknown[]>)[a.axis] = a.parse(value, name);
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
  return { preset, ...BASE_CONFIG, ...c };
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
        ...APP_WORKLOADS.flatMap((workload) => APP_POLICY_RUNS
          .filter((r) => r.oversub === 1 || appDefaultMiB(workload) / r.oversub >= MIN_OVERSUB_CHUNKS * 2)
          .map((r) => cfg(p, { workload, sizeMiB: appDefaultMiB(workload), ...r }))),
      ];
    case 'mm':
    case 'all':
      return [];
    default:
      throw new CliError(`unknown preset '${String(p)}'`);
  }
}

const AXIS_ORDER: readonly AxisName[] = ['workload', 'sizeMiB', 'writeFraction', 'window', 'batchSize', 'replay', 'protocol', 'coalesce', 'stormRate', 'seed', 'policy', 'oversub'];

/** Identity of a run: every field, preset included. */
export function configKey(c: RunConfig, withPreset = true): string {
  // phases shapes pingpong only: other workloads with and without it are the same run.
  return JSON.stringify([withPreset ? c.preset : '', ...AXIS_ORDER.map((a) => c[a] ?? null), c.workload === 'pingpong' ? c.phases ?? null : null]);
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
    runs = runs.flatMap((c) => values.map((v) => ({ ...c, [axis]: v }) as RunConfig));
  }
  // An application workload runs at its own default size (UVM_Smart's input) unless --size says.
  if (opts.overrides.sizeMiB === undefined) {
    runs = runs.map((c) => (isAppWorkload(c.workload) ? { ...c, sizeMiB: appDefaultMiB(c.workload) } : c));
  }
  const seen = new Set<string>();
  return runs.filter((c) => {
    const k = configKey(c);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const DESCRIBE: Record<AxisName, (c: RunConfig) => string> = {
  workload: (c) => c.workload,
  sizeMiB: (c) => `size=${c.sizeMiB}MiB`,
  writeFraction: (c) => `writes=${c.writeFraction}`,
  window: (c) => `window=${windowLabel(c.window)}`,
  batchSize: (c) => `batch=${batchLabel(c.batchSize)}`,
  replay: (c) => `replay=${c.replay}`,
  protocol: (c) => `protocol=${c.protocol}`,
  coalesce: (c) => `coalesce=${c.coalesce ? 'on' : 'off'}`,
  stormRate: (c) => `storm=${c.stormRate}/s`,
  seed: (c) => `seed=${c.seed}`,
  policy: (c) => `policy=${c.policy ?? 'none'}`,
  oversub: (c) => `oversub=${c.oversub ?? 1}`,
};

/** Axes whose value differs among the configs (the workload always counts). */
export function varyingAxes(configs: readonly RunConfig[]): AxisName[] {
  return AXIS_ORDER.filter((a) => a === 'workload' || new Set(configs.map((c) => String(c[a] ?? ''))).size > 1);
}

/** "coalescing stream window=64k coalesce=off": the preset and the given axes (default: all). */
export function describeConfig(c: RunConfig, axes: readonly AxisName[] = AXIS_ORDER): string {
  return [c.preset, ...axes.map((a) => DESCRIBE[a](c))].join(' ');
}

/** The settings every config shares, e.g. "size=8MiB writes=0.25 replay=batch-flush". */
export function describeCommon(configs: readonly RunConfig[]): string {
  if (configs.length === 0) return '';
  const varying = varyingAxes(configs);
  return AXIS_ORDER.filter((a) => !varying.includes(a) && (configs[0][a] !== undefined)).map((a) => DESCRIBE[a](configs[0])).join(' ');
}
