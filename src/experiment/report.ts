/**
 * The experiment's presentation: an ExperimentReport rendered as a markdown table, CSV (one
 * row per run, and one row per batch record), JSON, a self-contained HTML page (inline CSS
 * and inline SVG plots, no scripts, no external URLs) and standalone SVG figures.
 *
 * Pure functions over the data — no node: imports — so the same code renders the report in
 * the browser demo.
 *
 * Derived numbers (one definition each, used by every format):
 *   duplicate ratio     duplicates / fetched            (share of fetched faults dropped as duplicates)
 *   coalescing factor   unique / rangeFaults            (unique faults serviced per hmm_range_fault call;
 *                                                        null when the run made no call)
 */
import type { WindowPolicy } from '../driver/coalesce.js';
import { histogram, type BatchRecord } from '../driver/records.js';
import { escapeXml, figure, formatNumber, PALETTE, type BarSeries, type LineSeries, type Panel } from './svg-plot.js';
import type { ExperimentReport, RunConfig, RunResult } from './types.js';

// ---------------------------------------------------------------------------------------------
// Labels and per-run summaries

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

export type RunStatus = 'ok' | 'error' | 'mismatch';

export interface RunSummary {
  /** 1-based run number, as in the table. */
  run: number;
  preset: string;
  workload: string;
  window: string;
  batch: string;
  replay: string;
  protocol: string;
  coalescing: boolean;
  stormRate: number;
  fetched: number;
  duplicates: number;
  duplicateRatio: number;
  unique: number;
  rangeFaults: number;
  /** unique / rangeFaults; null when no hmm_range_fault call was made. */
  coalescingFactor: number | null;
  retries: number;
  ebusy: number;
  fallbacks: number;
  mirrorWrites: number;
  serviceMs: number;
  faultsPerSec: number;
  status: RunStatus;
  error: string | null;
}

export function summarizeRun(r: RunResult, index: number): RunSummary {
  const t = r.totals;
  const c = r.config;
  const mismatch = r.verify.mismatches > 0;
  return {
    run: index + 1,
    preset: c.preset,
    workload: c.workload,
    window: windowLabel(c.window),
    batch: batchLabel(c.batchSize),
    replay: c.replay,
    protocol: c.protocol,
    coalescing: c.coalesce,
    stormRate: c.stormRate,
    fetched: t.fetched,
    duplicates: t.duplicates,
    duplicateRatio: t.fetched > 0 ? t.duplicates / t.fetched : 0,
    unique: t.unique,
    rangeFaults: t.rangeFaults,
    coalescingFactor: t.rangeFaults > 0 ? t.unique / t.rangeFaults : null,
    retries: t.retries,
    ebusy: t.ebusy,
    fallbacks: t.fallbacks,
    mirrorWrites: t.mirrorWrites,
    serviceMs: t.serviceMs,
    faultsPerSec: r.faultsPerSec,
    status: !r.ok || r.error !== null ? 'error' : mismatch ? 'mismatch' : 'ok',
    error: r.error ?? (!r.ok ? 'failed' : mismatch ? `${r.verify.mismatches} of ${r.verify.checked} words wrong` : null),
  };
}

/** 'ok', 'error: <message>' or 'WRONG: <n> of <m> words wrong'. */
export function statusText(s: RunSummary): string {
  if (s.status === 'ok') return 'ok';
  if (s.status === 'mismatch') return `WRONG: ${s.error}`;
  return `error: ${s.error ?? 'failed'}`;
}

function fixed(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : String(v);
}

interface Column {
  /** Markdown/HTML header. */
  head: string;
  /** CSV header. */
  csv: string;
  /** Human-formatted cell (markdown, HTML). */
  text(s: RunSummary): string;
  /** Machine cell (CSV): full precision, '' for none. */
  raw(s: RunSummary): string | number;
  numeric?: boolean;
}

/** The per-run columns, shared by the markdown table, the HTML table and runs.csv. */
export const RUN_COLUMNS: readonly Column[] = [
  { head: '#', csv: 'run', text: (s) => String(s.run), raw: (s) => s.run, numeric: true },
  { head: 'preset', csv: 'preset', text: (s) => s.preset, raw: (s) => s.preset },
  { head: 'workload', csv: 'workload', text: (s) => s.workload, raw: (s) => s.workload },
  { head: 'window', csv: 'window', text: (s) => s.window, raw: (s) => s.window },
  { head: 'batch', csv: 'batch', text: (s) => s.batch, raw: (s) => s.batch, numeric: true },
  { head: 'replay', csv: 'replay', text: (s) => s.replay, raw: (s) => s.replay },
  { head: 'protocol', csv: 'protocol', text: (s) => s.protocol, raw: (s) => s.protocol },
  { head: 'coalescing', csv: 'coalescing', text: (s) => (s.coalescing ? 'on' : 'off'), raw: (s) => (s.coalescing ? 'on' : 'off') },
  { head: 'storm rate (/s)', csv: 'storm_rate', text: (s) => formatNumber(s.stormRate), raw: (s) => s.stormRate, numeric: true },
  { head: 'faults fetched', csv: 'faults_fetched', text: (s) => String(s.fetched), raw: (s) => s.fetched, numeric: true },
  { head: 'duplicate ratio', csv: 'duplicate_ratio', text: (s) => fixed(s.duplicateRatio, 3), raw: (s) => s.duplicateRatio, numeric: true },
  { head: 'unique faults', csv: 'unique_faults', text: (s) => String(s.unique), raw: (s) => s.unique, numeric: true },
  { head: 'range-fault calls', csv: 'range_fault_calls', text: (s) => String(s.rangeFaults), raw: (s) => s.rangeFaults, numeric: true },
  {
    head: 'coalescing factor', csv: 'coalescing_factor', numeric: true,
    text: (s) => (s.coalescingFactor === null ? '—' : fixed(s.coalescingFactor, 2)), raw: (s) => s.coalescingFactor ?? '',
  },
  { head: 'retries', csv: 'retries', text: (s) => String(s.retries), raw: (s) => s.retries, numeric: true },
  { head: 'EBUSYs', csv: 'ebusy', text: (s) => String(s.ebusy), raw: (s) => s.ebusy, numeric: true },
  { head: 'fallbacks', csv: 'fallbacks', text: (s) => String(s.fallbacks), raw: (s) => s.fallbacks, numeric: true },
  { head: 'mirror writes', csv: 'mirror_writes', text: (s) => String(s.mirrorWrites), raw: (s) => s.mirrorWrites, numeric: true },
  { head: 'service ms', csv: 'service_ms', text: (s) => fixed(s.serviceMs, 1), raw: (s) => s.serviceMs, numeric: true },
  { head: 'faults/s', csv: 'faults_per_sec', text: (s) => String(Math.round(s.faultsPerSec)), raw: (s) => s.faultsPerSec, numeric: true },
  { head: 'ok/error', csv: 'status', text: statusText, raw: (s) => s.status },
];

// ---------------------------------------------------------------------------------------------
// Markdown, CSV, JSON

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** Markdown table, one row per run. */
export function toTable(report: ExperimentReport): string {
  const rows = report.runs.map(summarizeRun);
  const lines = [
    `| ${RUN_COLUMNS.map((c) => c.head).join(' | ')} |`,
    `|${RUN_COLUMNS.map((c) => (c.numeric ? '---:' : '---')).join('|')}|`,
  ];
  for (const s of rows) lines.push(`| ${RUN_COLUMNS.map((c) => mdCell(c.text(s))).join(' | ')} |`);
  return lines.join('\n');
}

export function csvField(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' && !Number.isFinite(v) ? String(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvLine(fields: readonly (string | number | boolean | null | undefined)[]): string {
  return fields.map(csvField).join(',');
}

/** Columns runs.csv adds after RUN_COLUMNS (everything else an analysis may want). */
const RUN_EXTRA: readonly { csv: string; raw(r: RunResult): string | number | boolean | null }[] = [
  { csv: 'error', raw: (r) => r.error },
  { csv: 'size_mib', raw: (r) => r.config.sizeMiB },
  { csv: 'write_fraction', raw: (r) => r.config.writeFraction },
  { csv: 'seed', raw: (r) => r.config.seed },
  { csv: 'wall_ms', raw: (r) => r.wallMs },
  { csv: 'rounds', raw: (r) => r.rounds },
  { csv: 'fault_rounds', raw: (r) => r.faultRounds },
  { csv: 'batches', raw: (r) => r.totals.batches },
  { csv: 'duplicates', raw: (r) => r.totals.duplicates },
  { csv: 'stale', raw: (r) => r.totals.stale },
  { csv: 'recent', raw: (r) => r.totals.recent },
  { csv: 'groups', raw: (r) => r.totals.groups },
  { csv: 'mmap_lock_wait_ms', raw: (r) => r.totals.mmapLockWaitMs },
  { csv: 'mmap_lock_hold_ms', raw: (r) => r.totals.mmapLockHoldMs },
  { csv: 'storm_ops', raw: (r) => r.storm.ops },
  { csv: 'verify_checked', raw: (r) => r.verify.checked },
  { csv: 'verify_mismatches', raw: (r) => r.verify.mismatches },
  { csv: 'reused_from_run', raw: (r) => (r.reusedFrom === undefined ? null : r.reusedFrom + 1) },
];

/** runs.csv: one row per run — the table's columns (machine precision), then the rest. */
export function toCsv(report: ExperimentReport): string {
  const lines = [csvLine([...RUN_COLUMNS.map((c) => c.csv), ...RUN_EXTRA.map((c) => c.csv)])];
  report.runs.forEach((r, i) => {
    const s = summarizeRun(r, i);
    lines.push(csvLine([...RUN_COLUMNS.map((c) => c.raw(s)), ...RUN_EXTRA.map((c) => c.raw(r))]));
  });
  return `${lines.join('\n')}\n`;
}

const RECORD_FIELDS: readonly (keyof BatchRecord)[] = [
  'index', 't', 'round', 'fetched', 'duplicates', 'stale', 'recent', 'unique', 'groups', 'rangeFaults', 'retries', 'ebusy',
  'fallbacks', 'mirrorWrites', 'mmapLockWaitMs', 'mmapLockHoldMs', 'serviceMs',
];

const RUN_KEY: readonly { csv: string; raw(c: RunConfig): string | number }[] = [
  { csv: 'preset', raw: (c) => c.preset },
  { csv: 'workload', raw: (c) => c.workload },
  { csv: 'size_mib', raw: (c) => c.sizeMiB },
  { csv: 'write_fraction', raw: (c) => c.writeFraction },
  { csv: 'window', raw: (c) => windowLabel(c.window) },
  { csv: 'batch', raw: (c) => batchLabel(c.batchSize) },
  { csv: 'replay', raw: (c) => c.replay },
  { csv: 'protocol', raw: (c) => c.protocol },
  { csv: 'coalescing', raw: (c) => (c.coalesce ? 'on' : 'off') },
  { csv: 'storm_rate', raw: (c) => c.stormRate },
  { csv: 'seed', raw: (c) => c.seed },
];

function snake(s: string): string {
  return s.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);
}

/** batches.csv: one row per batch record, keyed by the run (number and config). */
export function toBatchCsv(report: ExperimentReport): string {
  const lines = [csvLine(['run', ...RUN_KEY.map((k) => k.csv), ...RECORD_FIELDS.map((f) => snake(f))])];
  report.runs.forEach((r, i) => {
    const key = [i + 1, ...RUN_KEY.map((k) => k.raw(r.config))];
    for (const rec of r.records) lines.push(csvLine([...key, ...RECORD_FIELDS.map((f) => rec[f])]));
  });
  return `${lines.join('\n')}\n`;
}

/** The report as JSON (non-finite numbers, e.g. an unbounded batch, as strings). */
export function toJson(report: ExperimentReport): string {
  return `${JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2)}\n`;
}

// ---------------------------------------------------------------------------------------------
// Plots

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

function retriesSpec(report: ExperimentReport): FigureSpec {
  const idx = protocolRuns(report);
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
  const empty = "no runs of the 'protocols' preset in this report";
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
    case 'retries': return protocolRuns(report).length > 0;
    case 'duplicates':
    case 'coalescing': return report.runs.length > 0;
    default: return report.runs.some((r) => r.records.length > 0);
  }
}

function renderFigure(report: ExperimentReport, which: FigureName, opts: ReportOptions, standalone: boolean): string {
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

// ---------------------------------------------------------------------------------------------
// HTML

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#111;margin:24px auto;max-width:1400px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;margin:0 0 12px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d8d8d8;padding:3px 6px;white-space:nowrap}
th{background:#f3f3f3;position:sticky;top:0}
td.num{text-align:right}
tr.error td{background:#fff1f0}tr.mismatch td{background:#ffe0e0;font-weight:600}
tr.reused td{color:#666}
figure{margin:18px 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;font-size:13px}dt{font-weight:600}dd{margin:0}
.note{color:#555;font-size:13px}
`;

const GLOSSARY: readonly [string, string][] = [
  ['window', 'coalescing window: faults are grouped per window-aligned block clipped to the VMA (4k, 64k, 2m; amd = 2 MiB plus AMD\'s drop of faults on ranges validated in the last 2 ms)'],
  ['batch', 'fault records fetched from the fault buffer per batch (uvm_perf_fault_batch_count)'],
  ['replay', 'when the kernel is replayed: block (after each group), batch, batch-flush (after each batch, dropping the rest of the buffer; UVM\'s default), once (after the whole buffer)'],
  ['protocol', 'retry protocol: seq (mmu_interval_read_begin/retry, upstream), valid-flag (v5.2 range->valid), lock-fallback (seq, then the mmap lock for write)'],
  ['coalescing', 'off = the per-fault baseline: one hmm_range_fault and one mirror write per fault, duplicates included'],
  ['storm rate', 'CPU-side invalidations per second while the workload runs'],
  ['duplicate ratio', 'duplicates / faults fetched'],
  ['coalescing factor', 'unique faults / hmm_range_fault calls'],
  ['retries', 'protocol loop retries (sequence moved, range invalid, EAGAIN)'],
  ['EBUSYs', 'groups that gave up after the retry timeout'],
  ['fallbacks', 'lock-fallback: times the mmap lock was taken for write'],
  ['mirror writes', 'contiguous runs written into the GPU page table'],
  ['service ms', 'time spent servicing batches (scheduler ms)'],
  ['faults/s', 'unique faults serviced per second of service time'],
];

function htmlRunsTable(report: ExperimentReport): string {
  const out = ['<div class="scroll"><table class="runs">', '<thead><tr>'];
  for (const c of RUN_COLUMNS) out.push(`<th>${escapeXml(c.head)}</th>`);
  out.push('</tr></thead>', '<tbody>');
  report.runs.forEach((r, i) => {
    const s = summarizeRun(r, i);
    const cls = [s.status !== 'ok' ? s.status : '', r.reusedFrom !== undefined ? 'reused' : ''].filter(Boolean).join(' ');
    const title = r.reusedFrom !== undefined ? ` title="same configuration as run #${r.reusedFrom + 1}: its result, not a new measurement"` : '';
    out.push(`<tr${cls ? ` class="${cls}"` : ''}${title}>`);
    for (const c of RUN_COLUMNS) out.push(`<td${c.numeric ? ' class="num"' : ''}>${escapeXml(c.text(s))}</td>`);
    out.push('</tr>');
  });
  out.push('</tbody></table></div>');
  return out.join('');
}

function htmlMmTable(report: ExperimentReport): string {
  if (!report.mm || report.mm.length === 0) return '';
  const o = report.mmOptions;
  const out = [
    "<h2>mm preset: retry protocols on the CPU side</h2>",
    `<p class="note">A driver services device faults with hmm_range_fault while the CPU invalidates half of them between the fault and the driver's final check${o ? ` (${o.rounds} faults over ${o.pages} pages, seed ${o.seed})` : ''}. No GPU involved.</p>`,
    '<table><thead><tr><th>retry protocol</th><th>faults committed</th><th>retries</th><th>stale pfns committed</th><th>time (ms)</th></tr></thead><tbody>',
  ];
  for (const r of report.mm) {
    out.push(`<tr><td>${escapeXml(r.scheme)}</td><td class="num">${r.committed}</td><td class="num">${r.retries}</td><td class="num">${r.stalePfnsCommitted}</td><td class="num">${r.ms.toFixed(0)}</td></tr>`);
  }
  out.push('</tbody></table>');
  return out.join('');
}

/** One self-contained HTML page: summary table and inline SVG plots; no scripts, no external URLs. */
export function toHtml(report: ExperimentReport, opts: ReportOptions = {}): string {
  const title = `mirrorlab experiment — ${report.generatedAt}`;
  const failed = report.runs.filter((r, i) => summarizeRun(r, i).status !== 'ok').length;
  const reused = report.runs.filter((r) => r.reusedFrom !== undefined).length;
  const body: string[] = [
    '<h1>mirrorlab experiment</h1>',
    `<p class="meta">${escapeXml(report.generatedAt)} · adapter: ${escapeXml(report.adapter)} · node ${escapeXml(report.node)} · presets: ${escapeXml(report.presets.join(', '))} · ${report.runs.length} run${report.runs.length === 1 ? '' : 's'}${failed ? ` (${failed} not ok)` : ''}</p>`,
  ];
  if (report.runs.length > 0) {
    body.push('<h2>Runs</h2>', htmlRunsTable(report));
    if (reused > 0) body.push(`<p class="note">${reused} run${reused === 1 ? '' : 's'} (grey) had the same configuration as an earlier run of another preset and show${reused === 1 ? 's' : ''} its result.</p>`);
    body.push('<h2>Plots</h2>');
    for (const f of FIGURES) body.push(`<figure>${renderFigure(report, f, opts, false)}</figure>`);
  }
  body.push(htmlMmTable(report));
  if (report.runs.length > 0) {
    body.push('<h2>Columns</h2><dl>');
    for (const [k, v] of GLOSSARY) body.push(`<dt>${escapeXml(k)}</dt><dd>${escapeXml(v)}</dd>`);
    body.push('</dl>');
  }
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeXml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    ...body.filter((b) => b !== ''),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
