/**
 * Short names for run settings and runs, one definition each: the table's cells, the CSV
 * keys, the CLI's progress lines and the plots' legends all use these.
 */
import { AXIS_ORDER, axisDef } from '../schema.js';
import type { ExperimentReport, RunConfig } from '../types.js';

type Axis = { key: keyof RunConfig; label(c: RunConfig): string };
/** The preset, then each axis of the run schema with its short label. */
const AXES: readonly Axis[] = [
  { key: 'preset', label: (c) => c.preset },
  ...AXIS_ORDER.map((k): Axis => ({ key: k, label: (c) => axisDef(k).short(c[k]) })),
];

/**
 * Short labels telling the configs apart: the `always` axes (the workload) plus every axis
 * whose value differs among them (e.g. "random 64k", "stream per-fault"). `except` leaves
 * axes out.
 */
export function configLabels(
  configs: readonly RunConfig[], except: readonly (keyof RunConfig)[] = [], always: readonly (keyof RunConfig)[] = ['workload'],
): string[] {
  const varying = AXES.filter((a) => !except.includes(a.key)
    && (always.includes(a.key) || new Set(configs.map((c) => String(c[a.key]))).size > 1));
  return configs.map((c) => varying.map((a) => a.label(c)).join(' '));
}

/**
 * Labels for runs: "#3 random 64k" — the number, then what tells the run apart from the
 * others of its preset (with the preset's name first when several presets are shown).
 */
export function runLabels(report: ExperimentReport, indices: readonly number[]): string[] {
  const presets = new Set(indices.map((i) => report.runs[i].config.preset));
  const out = new Map<number, string>();
  for (const p of presets) {
    const mine = indices.filter((i) => report.runs[i].config.preset === p);
    const labels = configLabels(mine.map((i) => report.runs[i].config), ['preset']);
    mine.forEach((i, k) => out.set(i, [`#${i + 1}`, presets.size > 1 ? p : '', labels[k]].filter((x) => x !== '').join(' ')));
  }
  return indices.map((i) => out.get(i) ?? `#${i + 1}`);
}
