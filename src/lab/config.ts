/**
 * The lab's settings: what the form holds, its bounds, and its place in the URL, all derived
 * from the run schema (src/experiment/schema.ts: each axis's `lab` entry). Pure (no DOM, no
 * GPU), so Node tests it and the page and the worker share it.
 *
 * Every input is bounded so that no setting can freeze the tab or run for minutes on a
 * software GPU: a bad value is refused with a message naming the field and the bound
 * (EINVAL, as the driver's ioctls answer), never clamped silently.
 */
import type { WindowPolicy } from '../driver/coalesce.js';
import { err } from '../errors.js';
import { AXES, AXIS_ORDER, axisDef, type Axes, type AxisKey, type AxisValue, type LabField } from '../experiment/schema.js';
import type { RunConfig } from '../experiment/types.js';
import type { WorkloadName } from '../workloads/names.js';

export { isPolicyModuleName, LAB_POLICIES, NO_POLICY } from '../experiment/schema.js';

export const LAB_PRESET = 'lab';

/** The axes the lab's form offers (those with a `lab` entry), in the schema's order. */
type LabKey = { [K in AxisKey]: Axes[K] extends { lab: object } ? K : never }[AxisKey];
export const LAB_KEYS = AXIS_ORDER.filter((k): k is LabKey => axisDef(k).lab !== undefined);

function labOf(k: AxisKey): LabField<unknown> {
  return axisDef(k).lab!;
}

/** The run settings the lab's form holds: a value for each lab axis, a built-in workload only. */
export type LabSettings = { [K in LabKey]: NonNullable<AxisValue<K>> } & { workload: WorkloadName };

/** The bounds of the number fields (the form's min/max/step attributes come from here). */
export const LIMITS: Readonly<Record<string, { readonly min: number; readonly max: number; readonly step?: number }>> = Object.fromEntries(
  LAB_KEYS.flatMap((k) => {
    const n = labOf(k).number;
    return n === undefined ? [] : [[k, { min: n.min, max: n.max, ...(n.step !== undefined ? { step: n.step } : {}) }]];
  }),
);

export const WINDOWS: readonly { value: WindowPolicy; label: string }[] = (AXES.window.lab.options).map((value) => ({
  value, label: AXES.window.text(value),
}));

/** One field of the form: its name (the axis), label, and a number's bounds or a select's options. */
export interface FormField {
  key: LabKey;
  label: string;
  number?: { min: number; max: number; step?: number };
  options?: readonly { value: string; label: string }[];
}

/** The form, in order: the page builds and reads its inputs from this. */
export const LAB_FIELDS: readonly FormField[] = LAB_KEYS.map((k) => {
  const d = axisDef(k);
  const lab = labOf(k);
  return {
    key: k, label: lab.label,
    ...(lab.number ? { number: LIMITS[k] } : {}),
    ...(lab.options ? { options: lab.options.map((v) => ({ value: d.text(v), label: d.text(v) })) } : {}),
  };
});

export const DEFAULT_SETTINGS: Readonly<LabSettings> = Object.freeze(
  Object.fromEntries(LAB_KEYS.map((k) => [k, labOf(k).default])) as LabSettings,
);

/** The form's text for field k of s (a select's option value, a number as typed). */
export function formValue(s: LabSettings, k: LabKey): string {
  return axisDef(k).text(s[k]);
}

export interface SettingsError {
  field: keyof LabSettings;
  message: string;
}

function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return Number.NaN;
}

/** One field's value from raw input (form text or JSON), or the message saying what is wrong. */
function checkField(k: LabKey, raw: unknown): { value: unknown } | { message: string } {
  const d = axisDef(k);
  const lab = labOf(k);
  if (lab.number !== undefined) {
    const { min, max, integer } = lab.number;
    const v = num(raw);
    if (!Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
      return { message: `${lab.label} must be ${integer ? 'a whole number ' : ''}from ${min} to ${max} (got ${String(raw)})` };
    }
    return { value: v };
  }
  const options = lab.options ?? [];
  let v: unknown = raw;
  if (typeof raw === 'string') {
    try {
      v = d.parse(raw, k);
    } catch {
      v = raw;
    }
  }
  if (options.includes(v) || (typeof raw === 'string' && lab.accept?.test(raw.trim()))) return { value: typeof raw === 'string' && !options.includes(v) ? raw.trim() : v };
  const also = lab.accept ? ` or ${lab.accept.what}` : '';
  return { message: `${lab.label} must be one of ${options.map((o) => d.text(o)).join(', ')}${also} (got ${String(raw)})` };
}

/**
 * Checks raw values (form strings or JSON) against the bounds: the settings, or the list of
 * what is wrong (one message per field, naming the bound).
 */
export function checkSettings(raw: Partial<Record<keyof LabSettings, unknown>>): { settings: LabSettings; errors: [] } | { settings: null; errors: SettingsError[] } {
  const errors: SettingsError[] = [];
  const values: Record<string, unknown> = {};
  for (const k of LAB_KEYS) {
    const r = checkField(k, raw[k] ?? DEFAULT_SETTINGS[k]);
    if ('message' in r) errors.push({ field: k, message: r.message });
    else values[k] = r.value;
  }
  // Rules over the whole form (a size in whole pages, oversubscription only with a policy).
  for (const k of LAB_KEYS) {
    const refine = labOf(k).refine;
    const message = k in values && refine !== undefined ? refine(values[k], values) : null;
    if (message !== null) errors.push({ field: k, message });
  }
  if (errors.length > 0) return { settings: null, errors };
  return { settings: values as LabSettings, errors: [] };
}

/** The runner's config: an optional axis at its `unset` value (no policy) is left out. */
export function toRunConfig(s: LabSettings): RunConfig {
  const entries = LAB_KEYS.filter((k) => labOf(k).unset === undefined || s[k] !== labOf(k).unset).map((k) => [k, s[k]]);
  return { preset: LAB_PRESET, ...Object.fromEntries(entries) } as RunConfig;
}

export function fromRunConfig(c: RunConfig): LabSettings {
  const workload = c.workload;
  if (workload.startsWith('trace:')) {
    throw err('EINVAL', `the lab cannot run a trace workload (${workload}): replay it with npm run experiment -- ${AXES.workload.flag} ${workload}`);
  }
  return Object.fromEntries(LAB_KEYS.map((k) => [k, c[k] ?? labOf(k).unset ?? labOf(k).default])) as LabSettings;
}

/** The settings as a query string (only what differs from the defaults), for a shareable URL. */
export function settingsToQuery(s: LabSettings): string {
  const q = new URLSearchParams();
  for (const k of LAB_KEYS) if (s[k] !== DEFAULT_SETTINGS[k]) q.set(k, formValue(s, k));
  return q.toString();
}

/** Settings from a query string; unknown keys are ignored, bad values reported. */
export function settingsFromQuery(query: string): ReturnType<typeof checkSettings> {
  const q = new URLSearchParams(query);
  const raw: Partial<Record<keyof LabSettings, unknown>> = {};
  for (const k of LAB_KEYS) {
    const v = q.get(k);
    if (v !== null) raw[k] = v;
  }
  return checkSettings(raw);
}
