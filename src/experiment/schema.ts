/**
 * The run schema: every setting of a run (an axis), described once, as data. The RunConfig
 * type, the CLI's parsing and --help (cli.ts), the progress lines, the report's columns, CSV
 * keys and legend labels (report/), the lab's form, bounds and URL (src/lab/config.ts) and
 * the sweep's expansion are all derived from AXES. Adding a setting is one entry here.
 *
 * Pure (no Node, no DOM): the CLI, the report and the browser lab share it.
 */
import { MAX_STORM_RATE } from '../workloads/storm.js';
import type { WindowPolicy } from '../driver/coalesce.js';
import { RETRY_PROTOCOLS, type RetryProtocol } from '../driver/retry.js';
import { REPLAY_POLICIES, type ReplayPolicy } from '../driver/service-options.js';
import { isAppWorkload, WORKLOADS, type WorkloadName } from '../workloads/names.js';
import { formatNumber } from './svg-plot.js';
import { COST_KNOBS, COST_MODEL_NAMES, costWithKnobs, UVM_SMART } from '../policy/cost.js';
import { DEFAULT_UVM, UVM_VERSIONS } from '../policy/uvm-params.js';

/** A recorded or published access trace run as the workload (trace-run.ts). */
export type TraceWorkload = `trace:${string}`;

/** A bad command-line value: the message names the option. */
export class CliError extends Error {
  override name = 'CliError';
}

/** Parses one value of an option (`opt` as typed, for the message). */
export type Parser<T> = (raw: string, opt: string) => T;

/** The lab's form field for an axis (absent: the lab does not offer it). */
export interface LabField<T> {
  /** The form's label and the start of its messages. */
  label: string;
  /** The form's value when nothing is chosen; for an optional axis, `unset` means "absent". */
  default: T;
  unset?: T;
  /** A number input (bounded) or a select of these values. */
  number?: { min: number; max: number; step?: number; integer: boolean };
  options?: readonly T[];
  /** Values the select does not list but the lab accepts (a user's policy module), and what they are. */
  accept?: { test(raw: string): boolean; what: string };
  /** A further rule over the whole form (null: fine). */
  refine?(v: T, form: Readonly<Record<string, unknown>>): string | null;
}

export interface AxisDef<T> {
  /** The option, e.g. '--window'; a value option unless `flagSets` is given. */
  flag: `--${string}`;
  /** --help's name for the value ('' for a flag). */
  metavar: string;
  /** A flag without a value (--no-coalesce) sets the axis to this. */
  flagSets?: T;
  /** One value, not a comma list of values each run. */
  single?: boolean;
  /** The option repeats: each occurrence adds its value to every run's, joined with this (a cross product of lists). */
  joinRepeats?: string;
  /** --help's lines (the base value is appended when there is one). */
  help: readonly string[];
  parse: Parser<T>;
  /** Every run starts from this value (undefined: the axis is optional and absent). */
  base: T | undefined;
  optional: boolean;
  /** The value as text: the form's and the URL's, the table's cells, the CSV's non-numbers. */
  text(v: T): string;
  /** The progress line's "key=value" (v undefined: absent). */
  describe(v: T | undefined): string;
  /** The legend's short label. */
  short(v: T | undefined): string;
  /** runs.csv / batches.csv column. */
  csv: string;
  /** A column of the run table (markdown, HTML); absent: CSV only. */
  column?: { head: string; numeric?: boolean; text?(v: T): string };
  /**
   * One cell of the sweep run several times: the runs it becomes, each differing in the
   * `varies` axis; the report folds them into a mean and a 95 % interval (cells.ts).
   */
  expand?: { varies: string; configs(c: Readonly<Record<string, unknown>>): Record<string, unknown>[] };
  lab?: LabField<T>;
}

// ---- value parsers (messages name the option and what it must be) ----

export function bad(opt: string, raw: string, what: string): CliError {
  return new CliError(`${opt}: '${raw}' is not ${what}`);
}

export function oneOf<T extends string>(values: readonly T[], what: string): Parser<T> {
  return (raw, opt) => {
    const v = raw.trim().toLowerCase();
    const hit = values.find((x) => x === v);
    if (hit === undefined) throw bad(opt, raw, `${what} (one of ${values.join(', ')})`);
    return hit;
  };
}

function numberIn(what: string, ok: (v: number) => boolean): Parser<number> {
  return (raw, opt) => {
    const v = Number(raw);
    if (raw.trim() === '' || !ok(v)) throw bad(opt, raw, what);
    return v;
  };
}

export const positiveInt: Parser<number> = numberIn('a positive integer', (v) => Number.isSafeInteger(v) && v > 0);
const limitOrZero: Parser<number> = numberIn('a non-negative integer (0: no limit)', (v) => Number.isSafeInteger(v) && v >= 0);

const sizeParser: Parser<number> = (raw, opt) => {
  const v = numberIn('a size in MiB (a positive number)', (x) => Number.isFinite(x) && x > 0)(raw, opt);
  if (!Number.isInteger(v * 256)) throw bad(opt, raw, 'a whole number of 4 KiB pages (MiB in steps of 1/256)');
  return v;
};

/** A workload name, or trace:FILE (a .jsonl or .csv access trace, replayed on the real path). */
const workloadParser: Parser<WorkloadName | TraceWorkload> = (raw, opt) => {
  const v = raw.trim();
  if (v.startsWith('trace:')) {
    if (!/\.(jsonl|csv)$/i.test(v)) throw bad(opt, raw, 'a trace (trace:FILE.jsonl or trace:FILE.csv)');
    return v as TraceWorkload;
  }
  return oneOf(WORKLOADS, 'a workload')(raw, opt);
};

const WINDOW_LABELS: readonly { value: WindowPolicy; label: string; bytes: string }[] = [
  { value: 4096, label: '4k', bytes: '4096' }, { value: 65536, label: '64k', bytes: '65536' },
  { value: 2097152, label: '2m', bytes: '2097152' }, { value: 'amd', label: 'amd', bytes: 'amd' },
];

export function windowLabel(w: WindowPolicy): string {
  return WINDOW_LABELS.find((x) => x.value === w)?.label ?? String(w);
}

export function batchLabel(b: number): string {
  return Number.isFinite(b) ? String(b) : 'all';
}

const windowParser: Parser<WindowPolicy> = (raw, opt) => {
  const v = raw.trim().toLowerCase();
  const w = WINDOW_LABELS.find((x) => x.label === v || x.bytes === v);
  if (w === undefined) throw bad(opt, raw, 'a window (one of 4k, 64k, 2m, amd)');
  return w.value;
};

const onOff: Parser<boolean> = (raw, opt) => {
  const v = raw.trim().toLowerCase();
  if (v === 'on' || v === 'true') return true;
  if (v === 'off' || v === 'false') return false;
  throw bad(opt, raw, 'on or off');
};

/** The lab's "no migration policy": the mirror maps system pages through the aperture. */
export const NO_POLICY = 'none';

/**
 * The migration policies the lab's form offers: the built-ins (src/policy/loader.ts) and a
 * few of their +tree / eviction variants (kept here, not read from the loader, so the page
 * does not pull the loader's Node imports).
 */
export const LAB_POLICIES: readonly string[] = [
  NO_POLICY, 'remote-only', 'first-touch', 'first-touch+tree', 'first-touch+fifo', 'first-touch+tree+lfu',
  'access-counters', 'access-counters-ipdps20', 'thrashing', 'thrashing+tree', 'min-lifetime', 'backoff',
];

/** A user's policy module for the lab: plain JavaScript (the worker imports it from a Blob URL). */
export function isPolicyModuleName(v: string): boolean {
  return /^[^\\/]{1,200}\.m?js$/.test(v);
}

const str = (v: unknown): string => String(v);

/**
 * Builds an axis entry, keeping its literal shape (optional, lab) for the RunConfig type.
 * `T` is the axis's value type.
 */
const axis = <T>() => <D extends AxisDef<T>>(d: D): D => d;

/** THE axes, in the order of the CLI's --help, the progress lines, the tables and CSVs. */
export const AXES = {
  workload: axis<WorkloadName | TraceWorkload>()({
    flag: '--workload', metavar: 'NAME', optional: false, base: 'stream', parse: workloadParser, text: str,
    help: [`${WORKLOADS.join(' | ')} | trace:FILE.jsonl|csv (an access trace:`, 'time,address,access,processor)'],
    describe: (v) => String(v), short: (v) => String(v), csv: 'workload', column: { head: 'workload' },
    lab: { label: 'workload', default: 'stream', options: WORKLOADS },
  }),
  sizeMiB: axis<number>()({
    flag: '--size', metavar: 'MiB', optional: false, base: 8, parse: sizeParser, text: str,
    help: ['size of the mirrored buffer'], describe: (v) => `size=${v}MiB`, short: (v) => `${v}MiB`, csv: 'size_mib',
    lab: {
      // 16 MiB is 4096 pages: a software GPU services that in tens of seconds.
      label: 'size (MiB)', default: 1, number: { min: 0.25, max: 16, step: 0.25, integer: false },
      refine: (v) => (!Number.isInteger(v * 256) ? `size (MiB) must be a whole number of 4 KiB pages (a multiple of 1/256; got ${v})`
        : !Number.isInteger(v / 0.25) ? 'size (MiB) must be a multiple of 0.25' : null),
    },
  }),
  writeFraction: axis<number>()({
    flag: '--writes', metavar: 'F', optional: false, base: 0.25, text: str,
    parse: numberIn('a fraction between 0 and 1', (v) => Number.isFinite(v) && v >= 0 && v <= 1),
    help: ['fraction of accesses that write, 0..1'], describe: (v) => `writes=${v}`, short: (v) => `w${v}`, csv: 'write_fraction',
    lab: { label: 'writes', default: 0.25, number: { min: 0, max: 1, integer: false } },
  }),
  window: axis<WindowPolicy>()({
    flag: '--window', metavar: 'W', optional: false, base: 2097152, parse: windowParser, text: windowLabel,
    help: ['4k | 64k | 2m | amd'], describe: (v) => `window=${v === undefined ? '' : windowLabel(v)}`,
    short: (v) => (v === undefined ? '' : windowLabel(v)), csv: 'window', column: { head: 'window' },
    // The lab's first run (issue 18): stream 1 MiB, 64 KiB window, batches of 8, storm 200/s:
    // 16 batches, 2 unique faults per hmm_range_fault call, invalidations and retries, in seconds.
    lab: { label: 'window', default: 65536, options: WINDOW_LABELS.map((w) => w.value) },
  }),
  batchSize: axis<number>()({
    flag: '--batch', metavar: 'N', optional: false, base: 256, parse: positiveInt, text: batchLabel,
    help: ['faults fetched per batch'], describe: (v) => `batch=${batchLabel(v ?? 0)}`, short: (v) => `b${batchLabel(v ?? 0)}`,
    csv: 'batch', column: { head: 'batch', numeric: true },
    lab: { label: 'batch size', default: 8, number: { min: 1, max: 4096, integer: true } },
  }),
  replay: axis<ReplayPolicy>()({
    flag: '--replay', metavar: 'P', optional: false, base: 'batch-flush', parse: oneOf(REPLAY_POLICIES, 'a replay policy'), text: str,
    help: [REPLAY_POLICIES.join(' | ')], describe: (v) => `replay=${v}`, short: (v) => String(v), csv: 'replay', column: { head: 'replay' },
    lab: { label: 'replay', default: 'batch-flush', options: REPLAY_POLICIES },
  }),
  protocol: axis<RetryProtocol>()({
    flag: '--protocol', metavar: 'P', optional: false, base: 'seq', parse: oneOf(RETRY_PROTOCOLS, 'a retry protocol'), text: str,
    help: [RETRY_PROTOCOLS.join(' | ')], describe: (v) => `protocol=${v}`, short: (v) => String(v), csv: 'protocol',
    column: { head: 'protocol' },
    lab: { label: 'protocol', default: 'seq', options: RETRY_PROTOCOLS },
  }),
  coalesce: axis<boolean>()({
    flag: '--no-coalesce', metavar: '', flagSets: false, optional: false, base: true, parse: onOff, text: (v) => (v ? 'on' : 'off'),
    help: ['the per-fault baseline (no dedup, no window)'], describe: (v) => `coalesce=${v ? 'on' : 'off'}`,
    short: (v) => (v ? 'coalesced' : 'per-fault'), csv: 'coalescing', column: { head: 'coalescing' },
    lab: { label: 'coalescing', default: true, options: [true, false] },
  }),
  stormRate: axis<number>()({
    flag: '--storm', metavar: 'RATE', optional: false, base: 0, text: str,
    parse: numberIn(`a rate (invalidations per second, 0 to ${MAX_STORM_RATE})`, (v) => Number.isFinite(v) && v >= 0 && v <= MAX_STORM_RATE),
    help: ['CPU invalidations per second, 0 = none'], describe: (v) => `storm=${v}/s`, short: (v) => `${formatNumber(v ?? 0)}/s`,
    csv: 'storm_rate', column: { head: 'storm rate (/s)', numeric: true, text: formatNumber },
    // Above a few thousand invalidations per second the storm is all the CPU does.
    lab: { label: 'storm rate (/s)', default: 200, number: { min: 0, max: MAX_STORM_RATE, integer: true } },
  }),
  seed: axis<number>()({
    flag: '--seed', metavar: 'N', optional: false, base: 1, text: str,
    parse: numberIn('a seed (an integer 0..4294967295)', (v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff),
    help: ['PRNG seed, 0..4294967295 (also the mm preset\'s)'], describe: (v) => `seed=${v}`, short: (v) => `seed${v}`, csv: 'seed',
    lab: { label: 'seed', default: 1, number: { min: 0, max: 2 ** 31 - 1, integer: true } },
  }),
  policy: axis<string>()({
    flag: '--policy', metavar: 'P', optional: true, base: undefined, text: str,
    parse: (raw, opt) => {
      if (raw.trim() === '') throw bad(opt, raw, 'a policy (a built-in name or a module path)');
      return raw.trim();
    },
    help: [
      'a migration policy: a built-in (remote-only, first-touch, first-touch+tree, ...;',
      '+tree adds the tree prefetcher, +lru/+lfu/+fifo/+mru the eviction order)',
      'or a module path (./my-policy.ts)   (base: none: no policy, dmirror\'s remote mapping)',
    ],
    describe: (v) => `policy=${v ?? 'none'}`, short: (v) => v ?? 'no policy', csv: 'policy',
    lab: {
      label: 'migration policy', default: NO_POLICY, unset: NO_POLICY, options: LAB_POLICIES,
      accept: { test: isPolicyModuleName, what: 'a JavaScript module file (.js, .mjs)' },
    },
  }),
  oversub: axis<number>()({
    flag: '--oversub', metavar: 'X', optional: true, base: undefined, text: str,
    parse: numberIn('an oversubscription factor (1 to 16: 1, 1.5, 2, 3)', (v) => Number.isFinite(v) && v >= 1 && v <= 16),
    help: ['working set / device memory, ≥ 1 (1, 1.5, 2, 3; with a policy)   (base: 1)'],
    describe: (v) => `oversub=${v ?? 1}`, short: (v) => `${v ?? 1}x`, csv: 'oversub',
    lab: {
      // 3 is the policy lab's widest sweep (README, --oversub).
      label: 'oversubscription', default: 1, unset: 1, number: { min: 1, max: 3, step: 0.25, integer: false },
      refine: (v, form) => (form.policy === NO_POLICY && v !== 1 ? `oversubscription needs a migration policy (with none it must be 1; got ${v})` : null),
    },
  }),
  processes: axis<number>()({
    flag: '--processes', metavar: 'N', optional: true, base: undefined, text: str,
    parse: numberIn('a process count (1 or 2)', (v) => v === 1 || v === 2),
    help: ['processes on the one device, each with its own buffer and mirror, sharing', 'its memory (1 or 2; a synthetic workload each)   (base: 1)'],
    describe: (v) => `processes=${v ?? 1}`, short: (v) => `${v ?? 1}proc`, csv: 'processes',
    lab: {
      label: 'processes', default: 1, unset: 1, number: { min: 1, max: 2, integer: true },
      refine: (v, form) => (v === 1 ? null
        : typeof form.workload === 'string' && isAppWorkload(form.workload) ? `processes: two processes run a synthetic workload each, not ${form.workload}`
          : typeof form.policy === 'string' && isPolicyModuleName(form.policy) ? 'processes: two processes need a built-in policy (each mirror gets its own instance)' : null),
    },
  }),
  policyOpt: axis<string>()({
    flag: '--policy-opt', metavar: 'K=V[;K=V]', optional: true, base: undefined, text: str, joinRepeats: ';',
    parse: (raw, opt) => {
      const v = raw.trim();
      const bad1 = v.split(';').find((kv) => !/^[A-Za-z_$][\w$.]*=[^;=]*$/.test(kv.trim()));
      if (bad1 !== undefined) throw bad(opt, raw, `options KEY=VALUE (';' between two of one run; '${bad1}' is not one)`);
      return v.split(';').map((kv) => kv.trim()).join(';');
    },
    help: ['options for a policy module\'s factory, KEY=VALUE (a number, true/false or text);', 'repeat it or join with \';\' for one run, a comma list sweeps them'],
    describe: (v) => `opts=${v ?? 'none'}`, short: (v) => v ?? 'no opts', csv: 'policy_opt',
  }),
  utlbFaults: axis<number>()({
    flag: '--utlb-faults', metavar: 'N', optional: true, base: undefined, parse: limitOrZero, text: str,
    help: ['a uTLB stalls once it has N faults outstanding in a round (src/driver/utlb-issue.ts);', '0 or absent: no limit, every miss of the round is recorded (the published preset\'s TBN-fits cells: 1)'],
    describe: (v) => `utlbFaults=${v === undefined || v === 0 ? 'unlimited' : v}`,
    short: (v) => (v === undefined || v === 0 ? 'uTLB unlimited' : `uTLB ${v}`), csv: 'utlb_faults',
  }),
  uvm: axis<string>()({
    flag: '--uvm', metavar: 'V', optional: true, base: undefined, text: str,
    parse: (raw, opt) => {
      const v = raw.trim();
      if (!(UVM_VERSIONS as readonly string[]).includes(v)) throw bad(opt, raw, `a UVM version with a parameter set (one of ${UVM_VERSIONS.join(', ')})`);
      return v;
    },
    help: [`NVIDIA UVM parameter set the run models: ${UVM_VERSIONS.join(' | ')}   (base: ${DEFAULT_UVM})`],
    describe: (v) => `uvm=${v ?? DEFAULT_UVM}`, short: (v) => `uvm${v ?? DEFAULT_UVM}`, csv: 'uvm',
  }),
  cost: axis<string>()({
    flag: '--cost', metavar: 'NAME', optional: true, base: undefined, text: str,
    parse: (raw, opt) => {
      const v = raw.trim().toLowerCase();
      if (!COST_MODEL_NAMES.includes(v)) throw bad(opt, raw, `a cost model (one of ${COST_MODEL_NAMES.join(', ')})`);
      return v;
    },
    help: [
      `the simulated clock's cost model: ${COST_MODEL_NAMES.join(' | ')}   (base: uvm-smart:`,
      'UVM_Smart\'s transfer size curve; flat = every transfer at 16 GB/s; uvm-smart-serial =',
      'UVM_Smart\'s own accounting, 45 µs per far fault serially, the published preset\'s clock)',
    ],
    describe: (v) => `cost=${v ?? 'uvm-smart'}`, short: (v) => v ?? 'uvm-smart', csv: 'cost',
  }),
  costOpt: axis<string>()({
    flag: '--cost-opt', metavar: 'K=V[;K=V]', optional: true, base: undefined, text: str, joinRepeats: ';',
    parse: (raw, opt) => {
      const v = raw.trim();
      const bad1 = v.split(';').find((kv) => !/^[A-Za-z]\w*=[^;=]+$/.test(kv.trim()));
      if (bad1 !== undefined) throw bad(opt, raw, `cost knobs KEY=VALUE (';' between two of one run; '${bad1}' is not one)`);
      const text = v.split(';').map((kv) => kv.trim()).join(';');
      try {
        costWithKnobs(UVM_SMART, costKnobPairs(text)); // every knob known and its value in range
      } catch (e) {
        if (e instanceof RangeError) throw bad(opt, raw, `cost knobs KEY=VALUE: ${e.message}`);
        throw e;
      }
      return text;
    },
    help: [
      `a knob of the cost model (--cost's preset), KEY=VALUE: ${COST_KNOBS.join(', ')}`,
      '(times in integer ns, bandwidths in bytes/s); repeat it or join with \';\' for one run, a comma list sweeps them',
    ],
    describe: (v) => `costopt=${v ?? 'none'}`, short: (v) => v ?? 'preset knobs', csv: 'cost_opt',
  }),
  seeds: axis<number>()({
    flag: '--seeds', metavar: 'N', single: true, optional: true, base: undefined, parse: positiveInt, text: str,
    help: ['run each cell N times, seeds seed..seed+N-1; the tables add each cell\'s', 'mean and 95 % interval (t-distribution)   (base: 1)'],
    describe: (v) => `seeds=${v ?? 1}`, short: (v) => `×${v ?? 1}`, csv: 'seeds',
    expand: {
      varies: 'seed',
      configs: (c) => Array.from({ length: Number(c.seeds ?? 1) }, (_, i) => ({ ...c, seed: (Number(c.seed) + i) % 2 ** 32 })),
    },
  }),
};

export type Axes = typeof AXES;
export type AxisKey = keyof Axes;
type ValueOf<D> = D extends { parse: (raw: string, opt: string) => infer T } ? T : never;
type RequiredKeys = { [K in AxisKey]: Axes[K]['optional'] extends true ? never : K }[AxisKey];
type OptionalKeys = Exclude<AxisKey, RequiredKeys>;

/** One run's settings: the preset that produced it and a value for each axis (derived from AXES). */
export type RunConfig = { preset: string; /** pingpong: GPU/CPU hand-offs (a preset's shape, default 4). */ phases?: number }
  & { [K in RequiredKeys]: ValueOf<Axes[K]> } & { [K in OptionalKeys]?: ValueOf<Axes[K]> };

export type AxisValue<K extends AxisKey> = ValueOf<Axes[K]>;

/** The axes in order. */
export const AXIS_ORDER = Object.keys(AXES) as AxisKey[];

/** The entry of an axis, typed loosely enough to iterate over (its value as unknown). */
export function axisDef(k: AxisKey): AxisDef<unknown> {
  return AXES[k];
}

/** Every run starts from this; presets and options change some axes. */
export const BASE_CONFIG = Object.fromEntries(
  AXIS_ORDER.filter((k) => AXES[k].base !== undefined).map((k) => [k, AXES[k].base]),
) as Readonly<Omit<RunConfig, 'preset'>>;

/** Identity of a run: every axis (and the preset unless withPreset is false). */
export function configKey(c: RunConfig, withPreset = true): string {
  // phases shapes pingpong only: other workloads with and without it are the same run.
  return JSON.stringify([withPreset ? c.preset : '', ...AXIS_ORDER.map((a) => c[a] ?? null), c.workload === 'pingpong' ? c.phases ?? null : null]);
}

/** The runs a config becomes through the expanding axes (--seeds), in order. */
export function expandConfig(c: RunConfig): RunConfig[] {
  let out = [c];
  for (const k of AXIS_ORDER) {
    const e = axisDef(k).expand;
    if (e !== undefined && c[k] !== undefined) out = out.flatMap((x) => e.configs(x) as RunConfig[]);
  }
  return out;
}

/**
 * The cell a run belongs to: its identity with the axes an expansion varies left out, or
 * null when no expansion made it one of several (a lone run is its own row).
 */
export function cellKey(c: RunConfig): string | null {
  const varied = AXIS_ORDER.flatMap((k) => {
    const e = axisDef(k).expand;
    return e !== undefined && typeof c[k] === 'number' && (c[k] as number) > 1 ? [e.varies] : [];
  });
  if (varied.length === 0) return null;
  const blank = Object.fromEntries(varied.map((k) => [k, null]));
  return configKey({ ...c, ...blank } as RunConfig);
}

/** The value of axis k of c as the tables show it ('' when absent). */
export function axisText(k: AxisKey, c: RunConfig): string {
  const v = c[k];
  return v === undefined ? '' : axisDef(k).text(v);
}

/** The CSV cell: a number whose text is the number as is, anything else as text ('4k', 'all'), '' when absent. */
export function axisRaw(k: AxisKey, c: RunConfig): string | number {
  const v = c[k];
  if (v === undefined) return '';
  const text = axisDef(k).text(v);
  return typeof v === 'number' && text === String(v) ? v : text;
}

/** `--cost-opt` text as its (KEY, VALUE) pairs, in order (costWithKnobs applies them to the preset). */
export function costKnobPairs(text: string | undefined): [string, string][] {
  if (text === undefined || text === '') return [];
  return text.split(';').map((kv) => {
    const i = kv.indexOf('=');
    return [kv.slice(0, i).trim(), kv.slice(i + 1).trim()];
  });
}

/** `--policy-opt` text as the options a policy factory gets: numbers and booleans typed. */
export function policyOptions(text: string | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (text === undefined || text === '') return out;
  for (const kv of text.split(';')) {
    const i = kv.indexOf('=');
    const k = kv.slice(0, i).trim();
    const raw = kv.slice(i + 1).trim();
    out[k] = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return out;
}
