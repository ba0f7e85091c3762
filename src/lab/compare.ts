/**
 * Comparing runs: any number side by side (one column each), and run sets — runs whose
 * settings differ only in the seed — reduced to mean and spread (sample standard
 * deviation) per measure, so a difference can be told from noise.
 */
import { PAGE_SIZE } from '../mm/constants.js';
import type { RunConfig, RunResult } from '../experiment/types.js';
import { verdictOf } from './verdict.js';
import { describeConfig } from './view.js';

interface Measure {
  label: string;
  text: (r: RunResult) => string;
  /** A number for the run set's mean and spread; null: not numeric or not measured. */
  value?: (r: RunResult) => number | null;
}

const num = (f: (r: RunResult) => number | null): Pick<Measure, 'value' | 'text'> => ({
  value: f, text: (r) => { const v = f(r); return v === null ? '—' : Number.isInteger(v) ? String(v) : v.toFixed(2); },
});

export const MEASURES: readonly Measure[] = [
  { label: 'configuration', text: (r) => describeConfig(r.config) },
  { label: 'status', text: (r) => verdictOf(r).text },
  { label: 'batches', ...num((r) => r.totals.batches) },
  { label: 'faults fetched', ...num((r) => r.totals.fetched) },
  { label: 'duplicates', ...num((r) => r.totals.duplicates) },
  { label: 'unique faults', ...num((r) => r.totals.unique) },
  { label: 'range-fault calls', ...num((r) => r.totals.rangeFaults) },
  { label: 'coalescing factor', ...num((r) => (r.totals.rangeFaults > 0 ? r.totals.unique / r.totals.rangeFaults : null)) },
  { label: 'retries', ...num((r) => r.totals.retries) },
  { label: 'EBUSYs', ...num((r) => r.totals.ebusy) },
  { label: 'storm ops', ...num((r) => r.storm.ops) },
  { label: 'invalidations', ...num((r) => r.lab?.invalidations ?? null) },
  { label: 'stale pfns', ...num((r) => r.stalePfns ?? null) },
  { label: 'migration policy', text: (r) => (r.policy ? `${r.policy.policy}, oversub ${r.config.oversub ?? 1}` : 'none') },
  { label: 'migrations to device', ...num((r) => (r.policy ? r.policy.bytesToDevice / PAGE_SIZE : 0)) },
  { label: 'migrations home', ...num((r) => (r.policy ? r.policy.bytesToHost / PAGE_SIZE : 0)) },
  { label: 'thrashing events', ...num((r) => r.policy?.thrashingEvents ?? 0) },
  { label: 'service µs/fault', ...num((r) => (r.totals.unique > 0 ? (r.totals.serviceMs * 1000) / r.totals.unique : null)) },
  { label: 'simulated ms (cost model)', ...num((r) => (r.lab ? r.lab.simNs / 1e6 : r.policy ? r.policy.simTimeNs / 1e6 : null)) },
  { label: 'wall ms', ...num((r) => Math.round(r.wallMs)) },
  { label: 'words verified / wrong', text: (r) => `${r.verify.checked} / ${r.verify.mismatches}` },
];

/** The comparison's rows: [label, one value per run]. */
export function compareRows(runs: readonly RunResult[]): string[][] {
  return MEASURES.map((m) => [m.label, ...runs.map((r) => m.text(r))]);
}

/** A run's settings without its seed: the key of its run set. */
export function setKey(c: RunConfig): string {
  const { seed: _seed, preset: _preset, ...rest } = c;
  return JSON.stringify(rest, Object.keys(rest).sort());
}

export interface RunSet {
  config: RunConfig;
  seeds: number[];
  /** Per numeric measure: its label, mean and sample standard deviation (0 for one run). */
  stats: { label: string; mean: number; sd: number; n: number }[];
}

export function meanSd(xs: readonly number[]): { mean: number; sd: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd };
}

/** Groups runs into run sets (same settings but the seed), in first-seen order. */
export function runSets(runs: readonly RunResult[]): RunSet[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of runs) {
    const k = setKey(r.config);
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  return [...groups.values()].map((g) => ({
    config: g[0].config,
    seeds: g.map((r) => r.config.seed),
    stats: MEASURES.filter((m) => m.value).flatMap((m) => {
      const xs = g.map((r) => m.value!(r)).filter((v): v is number => v !== null && Number.isFinite(v));
      return xs.length === 0 ? [] : [{ label: m.label, ...meanSd(xs), n: xs.length }];
    }),
  }));
}
