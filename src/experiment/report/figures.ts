/**
 * The report's figures: which runs each plots and how (a FigureSpec), drawn by svg-plot.ts
 * into an inline SVG (for the HTML page) or a standalone .svg file.
 */
import { histogram, type BatchRecord } from '../../driver/records.js';
import { figure, formatNumber, PALETTE, type BarSeries, type LineSeries, type Panel } from '../svg-plot.js';
import type { ExperimentReport } from '../types.js';
import { batchLabel } from '../schema.js';
import { configLabels, runLabels } from './labels.js';
import { summarizeRun } from './summary.js';

export type FigureName = 'batches' | 'duplicates' | 'coalescing' | 'retries' | 'histogram';
export const FIGURES: readonly FigureName[] = ['batches', 'duplicates', 'coalescing', 'retries', 'histogram'];

export const FIGURE_TITLES: Record<FigureName, string> = {
  batches: 'Batch sizes over time',
  duplicates: 'Duplicate ratio per run',
  coalescing: 'Coalescing factor per run',
  retries: 'Retries and EBUSYs against invalidation rate',
  histogram: 'Histogram of batch sizes',
};

export interface ReportOptions {
  /** Runs (0-based indices) to draw in the batch-size plot; default: selectBatchRuns(). */
  batchRuns?: readonly number[];
}

/** At most this many lines in the batch-size plot. */
export const MAX_BATCH_LINES = 8;

/**
 * Runs for the batch-size plot: all of them when there are few; otherwise the first preset
 * present among batches, coalescing, windows, protocols (at most MAX_BATCH_LINES runs).
 */
export function selectBatchRuns(report: ExperimentReport): number[] {
  const idx = report.runs.map((_, i) => i).filter((i) => report.runs[i].records.length > 0);
  if (idx.length <= MAX_BATCH_LINES) return idx;
  for (const p of ['batches', 'coalescing', 'windows', 'protocols']) {
    const s = idx.filter((i) => report.runs[i].config.preset === p);
    if (s.length > 0) return s.slice(0, MAX_BATCH_LINES);
  }
  return idx.slice(0, MAX_BATCH_LINES);
}

/** One colour per preset, in order of appearance; null when there is only one preset. */
function presetColors(report: ExperimentReport): { colors: string[]; legend: { name: string; color: string }[] } | null {
  const presets = [...new Set(report.runs.map((r) => r.config.preset))];
  if (presets.length < 2) return null;
  const color = (p: string): string => PALETTE[presets.indexOf(p) % PALETTE.length];
  return { colors: report.runs.map((r) => color(r.config.preset)), legend: presets.map((p) => ({ name: p, color: color(p) })) };
}

interface FigureSpec {
  title: string;
  caption: string;
  panels: Panel[];
  panelWidth?: number;
  panelHeight?: number;
  legend?: { name: string; color: string; dash?: string }[];
}

function batchesSpec(report: ExperimentReport, opts: ReportOptions): FigureSpec {
  const chosen = (opts.batchRuns ?? selectBatchRuns(report)).filter((i) => i >= 0 && i < report.runs.length);
  const labels = runLabels(report, chosen);
  const series: LineSeries[] = chosen.map((i, k) => ({
    name: labels[k],
    points: report.runs[i].records.map((r) => [r.t, r.fetched] as [number, number]),
  }));
  const total = report.runs.length;
  const which = chosen.length === total ? `all ${total} runs` : `${chosen.length} of ${total} runs`;
  return {
    title: FIGURE_TITLES.batches,
    caption: `Faults fetched per batch against time since the run started, one line per run (${which}).`,
    panels: [{ kind: 'line', xLabel: 'time since the run started (ms)', yLabel: 'faults fetched per batch', series, emptyMessage: 'no batch records' }],
  };
}

function perRunBarSpec(report: ExperimentReport, which: 'duplicates' | 'coalescing'): FigureSpec {
  const idx = report.runs.map((_, i) => i);
  const cats = runLabels(report, idx);
  const sums = report.runs.map(summarizeRun);
  const byPreset = presetColors(report);
  const coloured = byPreset ? ' (colour: preset)' : '';
  if (which === 'duplicates') {
    return {
      title: FIGURE_TITLES.duplicates,
      caption: `Share of fetched faults that were duplicates of a fault already in the batch (duplicates / fetched), one bar per run${coloured}.`,
      legend: byPreset?.legend,
      panels: [{
        kind: 'bar', xLabel: 'run', yLabel: 'duplicate ratio', categories: cats,
        series: [{ name: 'duplicate ratio', values: sums.map((s) => s.duplicateRatio), color: PALETTE[0], colors: byPreset?.colors }],
        format: (v) => v.toFixed(2), emptyMessage: 'no runs',
      }],
    };
  }
  return {
    title: FIGURE_TITLES.coalescing,
    caption: `Unique faults serviced per hmm_range_fault call (unique / range-fault calls), one bar per run${coloured}; 1 = no coalescing.`,
    legend: byPreset?.legend,
    panels: [{
      kind: 'bar', xLabel: 'run', yLabel: 'unique faults per range-fault call', categories: cats,
      series: [{ name: 'coalescing factor', values: sums.map((s) => s.coalescingFactor), color: PALETTE[2], colors: byPreset?.colors }],
      format: (v) => formatNumber(Number(v.toFixed(1))), emptyMessage: 'no runs',
    }],
  };
}

/** Runs of the 'protocols' preset. */
export function protocolRuns(report: ExperimentReport): number[] {
  return report.runs.map((_, i) => i).filter((i) => report.runs[i].config.preset === 'protocols');
}

/**
 * Runs the retries figure plots: the 'protocols' preset's when the report has it (the
 * experiment's sweep), otherwise every run (the lab's and the demo's runs).
 */
export function retryRuns(report: ExperimentReport): number[] {
  const p = protocolRuns(report);
  return p.length > 0 ? p : report.runs.map((_, i) => i);
}

function retriesSpec(report: ExperimentReport): FigureSpec {
  const idx = retryRuns(report);
  const runs = idx.map((i) => report.runs[i]);
  const rates = [...new Set(runs.map((r) => r.config.stormRate))].sort((a, b) => a - b);
  const cats = rates.map((r) => formatNumber(r));
  // One group (line) per protocol — and per any other axis that varies among these runs.
  const others = configLabels(runs.map((r) => r.config), ['stormRate', 'preset', 'protocol'], []);
  const workloads = new Set(runs.map((r) => r.config.workload));
  const keyOf = (k: number): string => [runs[k].config.protocol, others[k]].filter((x) => x !== '').join(' ');
  const groups = new Map<string, number[]>();
  runs.forEach((_, k) => {
    const key = keyOf(k);
    groups.set(key, [...(groups.get(key) ?? []), k]);
  });
  const metric = (name: 'retries' | 'ebusy' | 'fallbacks'): LineSeries[] => [...groups.entries()].map(([g, ks], gi) => {
    const points = rates.flatMap((rate, x) => {
      const at = ks.filter((k) => runs[k].config.stormRate === rate);
      if (at.length === 0) return [];
      const y = at.reduce((a, k) => a + runs[k].totals[name], 0) / at.length;
      return [{ x, y, cross: at.some((k) => !runs[k].ok) }];
    });
    return { name: g, points, color: PALETTE[gi % PALETTE.length] };
  });
  const wl = [...workloads].join(', ');
  const empty = 'no runs in this report';
  return {
    title: FIGURE_TITLES.retries,
    caption: `Retries, EBUSYs and mmap write-lock fallbacks per run against the CPU invalidation rate, one line per retry protocol${wl ? ` (${wl})` : ''}; ✕ = the run ended in an error.`,
    panelWidth: 400,
    panels: [
      { kind: 'line', heading: 'retries', xLabel: 'invalidations per second', yLabel: 'retries', xCategories: cats, series: metric('retries'), markers: true, emptyMessage: empty },
      { kind: 'line', heading: 'EBUSYs', xLabel: 'invalidations per second', yLabel: 'EBUSYs', xCategories: cats, series: metric('ebusy'), markers: true, emptyMessage: empty },
      { kind: 'line', heading: 'write-lock fallbacks', xLabel: 'invalidations per second', yLabel: 'fallbacks', xCategories: cats, series: metric('fallbacks'), markers: true, emptyMessage: empty },
    ],
  };
}

function histogramSpec(report: ExperimentReport): FigureSpec {
  const caps = [...new Set(report.runs.filter((r) => r.records.length > 0).map((r) => r.config.batchSize))].sort((a, b) => a - b);
  const split = caps.length >= 2 && caps.length <= 6;
  const groups: { name: string; records: BatchRecord[] }[] = split
    ? caps.map((b) => ({ name: `batch cap ${batchLabel(b)}`, records: report.runs.filter((r) => r.config.batchSize === b).flatMap((r) => r.records) }))
    : [{ name: 'all runs', records: report.runs.flatMap((r) => r.records) }];
  const hists = groups.map((g) => histogram(g.records.map((r) => r.fetched)));
  const buckets = [...new Map(hists.flat().map((h) => [h.lo, h.hi])).entries()].sort((a, b) => a[0] - b[0]);
  const cats = buckets.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}–${hi}`));
  const series: BarSeries[] = hists.map((h, gi) => ({
    name: groups[gi].name,
    values: buckets.map(([lo]) => h.find((b) => b.lo === lo)?.count ?? 0),
    color: PALETTE[gi % PALETTE.length],
  }));
  return {
    title: FIGURE_TITLES.histogram,
    caption: `Number of batches by faults fetched (power-of-two buckets), ${split ? 'one series per batch-size cap' : 'all runs together'}.`,
    panels: [{ kind: 'bar', xLabel: 'faults fetched per batch', yLabel: 'batches', categories: cats, series, emptyMessage: 'no batch records' }],
  };
}

function spec(report: ExperimentReport, which: FigureName, opts: ReportOptions): FigureSpec {
  switch (which) {
    case 'batches': return batchesSpec(report, opts);
    case 'duplicates': return perRunBarSpec(report, 'duplicates');
    case 'coalescing': return perRunBarSpec(report, 'coalescing');
    case 'retries': return retriesSpec(report);
    case 'histogram': return histogramSpec(report);
    default: throw new Error(`unknown figure '${String(which)}' (one of ${FIGURES.join(', ')})`);
  }
}

/** Is there anything to draw in this figure? (main.ts writes figure files only for these.) */
export function figureHasData(report: ExperimentReport, which: FigureName): boolean {
  switch (which) {
    case 'retries': return retryRuns(report).length > 0;
    case 'duplicates':
    case 'coalescing': return report.runs.length > 0;
    default: return report.runs.some((r) => r.records.length > 0);
  }
}

export function renderFigure(report: ExperimentReport, which: FigureName, opts: ReportOptions, standalone: boolean): string {
  const s = spec(report, which, opts);
  return figure(s.panels, {
    title: s.title, caption: s.caption, standalone, id: standalone ? undefined : `fig-${which}`,
    panelWidth: s.panelWidth, panelHeight: s.panelHeight, legend: s.legend,
  });
}

/** A standalone SVG document (with xmlns) of one figure, e.g. for the README. */
export function toSvgFigure(report: ExperimentReport, which: FigureName, opts: ReportOptions = {}): string {
  return `${renderFigure(report, which, opts, true)}\n`;
}
