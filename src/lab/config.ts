/**
 * The lab's settings: what the form holds, its bounds, and its place in the URL. Pure (no
 * DOM, no GPU), so Node tests it and the page and the worker share it.
 *
 * Every input is bounded so that no setting can freeze the tab or run for minutes on a
 * software GPU: a bad value is refused with a message naming the field and the bound
 * (EINVAL, as the driver's ioctls answer), never clamped silently.
 */
import type { WindowPolicy } from '../driver/coalesce.js';
import { err } from '../errors.js';
import { RETRY_PROTOCOLS, type RetryProtocol } from '../driver/retry.js';
import { REPLAY_POLICIES, type ReplayPolicy } from '../driver/servicer.js';
import type { RunConfig } from '../experiment/types.js';
import { WORKLOADS, type WorkloadName } from '../workloads/names.js';

export const LAB_PRESET = 'lab';

/** The bounds, in one place (the form's min/max attributes come from here too). */
export const LIMITS = {
  /** MiB: 16 MiB is 4096 pages; a software GPU services that in tens of seconds. */
  sizeMiB: { min: 0.25, max: 16, step: 0.25 },
  batchSize: { min: 1, max: 4096 },
  /** Invalidations per second: above a few thousand the storm is all the CPU does. */
  stormRate: { min: 0, max: 5000 },
  writeFraction: { min: 0, max: 1 },
  seed: { min: 0, max: 2 ** 31 - 1 },
  /** Working set / device memory: 3 is the policy lab's widest sweep (README, --oversub). */
  oversub: { min: 1, max: 3, step: 0.25 },
} as const;

/** No migration policy: the mirror maps system pages through the aperture (no moves). */
export const NO_POLICY = 'none';

/**
 * The migration policies the form offers: the built-ins (src/policy/loader.ts
 * BUILTIN_POLICIES) and a few of their +tree / eviction variants. Kept as a list here, not
 * read from the loader, so the page does not pull the loader's Node imports.
 */
export const LAB_POLICIES: readonly string[] = [
  NO_POLICY, 'remote-only', 'first-touch', 'first-touch+tree', 'first-touch+fifo', 'first-touch+tree+lfu',
  'access-counters', 'access-counters-ipdps20', 'thrashing', 'thrashing+tree', 'min-lifetime', 'backoff',
];

/**
 * A user's policy module, named by its file: plain JavaScript (an ES module), since the
 * worker imports it as is from a Blob URL; TypeScript policies run with the CLI.
 */
export function isPolicyModuleName(v: string): boolean {
  return /^[^\\/]{1,200}\.m?js$/.test(v);
}

export const WINDOWS: readonly { value: WindowPolicy; label: string }[] = [
  { value: 4096, label: '4k' }, { value: 65536, label: '64k' }, { value: 2097152, label: '2m' }, { value: 'amd', label: 'amd' },
];

/** The run settings the lab's form holds: a RunConfig's, a built-in workload only. */
export type LabSettings = Pick<RunConfig, 'sizeMiB' | 'writeFraction' | 'window' | 'batchSize' | 'replay' | 'protocol' | 'coalesce' | 'stormRate' | 'seed'> & {
  workload: WorkloadName;
  /** NO_POLICY, one of LAB_POLICIES, or a user module's file name (isPolicyModuleName). */
  policy: string;
  /** Working set / device memory, LIMITS.oversub; 1 without a policy. */
  oversub: number;
};

/**
 * The first run a newcomer makes: random accesses over 256 pages in batches of 16 give
 * tens of batches, a 64 KiB window coalesces neighbours, and a light storm (500/s) brings
 * invalidations and seq's retries, all within seconds on a software GPU.
 */
export const DEFAULT_SETTINGS: Readonly<LabSettings> = Object.freeze({
  workload: 'random', sizeMiB: 1, writeFraction: 0.25, window: 65536, batchSize: 16, replay: 'batch-flush',
  protocol: 'seq', coalesce: true, stormRate: 500, seed: 1, policy: NO_POLICY, oversub: 1,
});

export interface SettingsError {
  field: keyof LabSettings;
  message: string;
}

function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return Number.NaN;
}

function windowOf(v: unknown): WindowPolicy | null {
  const s = String(v);
  const w = WINDOWS.find((x) => x.label === s || String(x.value) === s);
  return w ? w.value : null;
}

/**
 * Checks raw values (form strings or JSON) against the bounds: the settings, or the list of
 * what is wrong (one message per field, naming the bound).
 */
export function checkSettings(raw: Partial<Record<keyof LabSettings, unknown>>): { settings: LabSettings; errors: [] } | { settings: null; errors: SettingsError[] } {
  const errors: SettingsError[] = [];
  const bad = (field: keyof LabSettings, message: string): void => { errors.push({ field, message }); };
  const pick = <T extends string>(field: keyof LabSettings, list: readonly T[], fallback: T): T => {
    const v = raw[field] ?? fallback;
    if (!list.includes(v as T)) bad(field, `${field} must be one of ${list.join(', ')} (got ${String(v)})`);
    return v as T;
  };
  const ranged = (field: 'sizeMiB' | 'batchSize' | 'stormRate' | 'writeFraction' | 'seed' | 'oversub', integer: boolean, what: string): number => {
    const v = num(raw[field] ?? DEFAULT_SETTINGS[field]);
    const { min, max } = LIMITS[field];
    if (!Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
      bad(field, `${what} must be ${integer ? 'a whole number ' : ''}from ${min} to ${max} (got ${String(raw[field])})`);
    }
    return v;
  };
  const workload = pick('workload', WORKLOADS, DEFAULT_SETTINGS.workload);
  const sizeMiB = ranged('sizeMiB', false, 'size (MiB)');
  if (Number.isFinite(sizeMiB) && !Number.isInteger(sizeMiB * 256)) bad('sizeMiB', `size (MiB) must be a whole number of 4 KiB pages (a multiple of 1/256; got ${sizeMiB})`);
  else if (Number.isFinite(sizeMiB) && !Number.isInteger(sizeMiB / LIMITS.sizeMiB.step)) bad('sizeMiB', `size (MiB) must be a multiple of ${LIMITS.sizeMiB.step}`);
  const writeFraction = ranged('writeFraction', false, 'writes');
  const window = windowOf(raw.window ?? DEFAULT_SETTINGS.window);
  if (window === null) bad('window', `window must be one of ${WINDOWS.map((w) => w.label).join(', ')} (got ${String(raw.window)})`);
  const batchSize = ranged('batchSize', true, 'batch size');
  const replay = pick('replay', REPLAY_POLICIES, DEFAULT_SETTINGS.replay);
  const protocol = pick('protocol', RETRY_PROTOCOLS, DEFAULT_SETTINGS.protocol);
  const c = raw.coalesce ?? DEFAULT_SETTINGS.coalesce;
  const coalesce = c === true || c === 'on' || c === 'true';
  if (!coalesce && !(c === false || c === 'off' || c === 'false')) bad('coalesce', `coalescing must be on or off (got ${String(c)})`);
  const stormRate = ranged('stormRate', true, 'storm rate (/s)');
  const seed = ranged('seed', true, 'seed');
  const policy = String(raw.policy ?? DEFAULT_SETTINGS.policy);
  if (!LAB_POLICIES.includes(policy) && !isPolicyModuleName(policy)) {
    bad('policy', `migration policy must be one of ${LAB_POLICIES.join(', ')} or a JavaScript module file (.js, .mjs) (got ${policy})`);
  }
  const oversub = ranged('oversub', false, 'oversubscription');
  if (policy === NO_POLICY && oversub !== 1 && Number.isFinite(oversub)) bad('oversub', `oversubscription needs a migration policy (with none it must be 1; got ${oversub})`);
  if (errors.length > 0) return { settings: null, errors };
  return {
    settings: { workload, sizeMiB, writeFraction, window: window as WindowPolicy, batchSize, replay, protocol, coalesce, stormRate, seed, policy, oversub },
    errors: [],
  };
}

/** The runner's config: without a policy, no policy/oversub keys (a run as before the policy lab). */
export function toRunConfig(s: LabSettings): RunConfig {
  const { policy, oversub, ...rest } = s;
  return policy === NO_POLICY ? { preset: LAB_PRESET, ...rest } : { preset: LAB_PRESET, ...rest, policy, oversub };
}

export function fromRunConfig(c: RunConfig): LabSettings {
  const workload = c.workload;
  if (workload.startsWith('trace:')) throw err('EINVAL', `the lab cannot run a trace workload (${workload}): replay it with npm run experiment -- --workload ${workload}`);
  return {
    workload: workload as LabSettings['workload'], sizeMiB: c.sizeMiB, writeFraction: c.writeFraction, window: c.window, batchSize: c.batchSize,
    replay: c.replay, protocol: c.protocol, coalesce: c.coalesce, stormRate: c.stormRate, seed: c.seed,
    policy: c.policy ?? NO_POLICY, oversub: c.oversub ?? 1,
  };
}

const URL_KEYS: readonly (keyof LabSettings)[] = [
  'workload', 'sizeMiB', 'writeFraction', 'window', 'batchSize', 'replay', 'protocol', 'coalesce', 'stormRate', 'seed', 'policy', 'oversub',
];

/** The settings as a query string (only what differs from the defaults), for a shareable URL. */
export function settingsToQuery(s: LabSettings): string {
  const q = new URLSearchParams();
  for (const k of URL_KEYS) {
    if (s[k] === DEFAULT_SETTINGS[k]) continue;
    const v = s[k];
    q.set(k, k === 'window' ? (WINDOWS.find((w) => w.value === v)?.label ?? String(v)) : k === 'coalesce' ? (v ? 'on' : 'off') : String(v));
  }
  return q.toString();
}

/** Settings from a query string; unknown keys are ignored, bad values reported. */
export function settingsFromQuery(query: string): ReturnType<typeof checkSettings> {
  const q = new URLSearchParams(query);
  const raw: Partial<Record<keyof LabSettings, unknown>> = {};
  for (const k of URL_KEYS) {
    const v = q.get(k);
    if (v !== null) raw[k] = v;
  }
  return checkSettings(raw);
}
