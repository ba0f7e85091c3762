/**
 * Short names for run settings and runs, one definition each: the table's cells, the CSV
 * keys, the CLI's progress lines and the plots' legends all use these.
 */
import type { WindowPolicy } from '../../driver/coalesce.js';
import { formatNumber } from '../svg-plot.js';
import type { ExperimentReport, RunConfig } from '../types.js';

export function windowLabel(w: WindowPolicy): string {
  switch (w) {
    case 4096: return '4k';
    case 65536: return '64k';
    case 2097152: return '2m';
    case 'amd': return 'amd';
    default: return String(w);
  }
}

export function batchLabel(b: number): string {
  return Number.isFinite(b) ? String(b) : 'all';
}

type Axis = { key: keyof RunConfig; label(c: RunConfig): string };
const AXES: readonly Axis[] = [
  { key: 'preset', label: (c) => c.preset },
  { key: 'workload', label: (c) => c.workload },
  { key: 'sizeMiB', label: (c) => `${c.sizeMiB}MiB` },
  { key: 'writeFraction', label: (c) => `w${c.writeFraction}` },
  { key: 'window', label: (c) => windowLabel(c.window) },
  { key: 'batchSize', label: (c) => `b${batchLabel(c.batchSize)}` },
  { key: 'replay', label: (c) => c.replay },
  { key: 'protocol', label: (c) => c.protocol },
  { key: 'coalesce', label: (c) => (c.coalesce ? 'coalesced' : 'per-fault') },
  { key: 'stormRate', label: (c) => `${formatNumber(c.stormRate)}/s` },
  { key: 'seed', label: (c) => `seed${c.seed}` },
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
