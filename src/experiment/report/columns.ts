/**
 * The columns of the run table (markdown, HTML, runs.csv) and of batches.csv: a header, a
 * human cell and a machine cell for each, so every format shows the same numbers.
 */
import type { BatchRecord } from '../../driver/records.js';
import { formatNumber } from '../svg-plot.js';
import { AXIS_ORDER, axisDef, axisRaw, axisText, type AxisKey } from '../schema.js';
import type { RunConfig, RunResult } from '../types.js';
import { statusText, type RunSummary } from './summary.js';

function fixed(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : String(v);
}

export interface Column {
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

/** A setting's table column, as the run schema describes it (none for a CSV-only axis). */
function settingColumn(k: AxisKey): Column[] {
  const d = axisDef(k);
  const col = d.column;
  if (col === undefined) return [];
  const show = col.text;
  return [{
    head: col.head, csv: d.csv, numeric: col.numeric,
    text: (s) => (show !== undefined && s.config[k] !== undefined ? show(s.config[k]) : axisText(k, s.config)), raw: (s) => axisRaw(k, s.config),
  }];
}

/** The per-run columns, shared by the markdown table, the HTML table and runs.csv. */
export const RUN_COLUMNS: readonly Column[] = [
  { head: '#', csv: 'run', text: (s) => String(s.run), raw: (s) => s.run, numeric: true },
  { head: 'preset', csv: 'preset', text: (s) => s.config.preset, raw: (s) => s.config.preset },
  ...AXIS_ORDER.flatMap((k) => settingColumn(k)),
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
  {
    head: 'service µs/fault', csv: 'service_us_per_fault', numeric: true,
    text: (s) => (s.serviceUsPerFault === null ? '—' : fixed(s.serviceUsPerFault, 1)), raw: (s) => s.serviceUsPerFault ?? '',
  },
  { head: 'wall ms', csv: 'wall_ms', text: (s) => fixed(s.wallMs, 0), raw: (s) => s.wallMs, numeric: true },
  { head: 'storm ops', csv: 'storm_ops', text: (s) => String(s.stormOps), raw: (s) => s.stormOps, numeric: true },
  {
    head: 'stale pfns', csv: 'stale_pfns', numeric: true,
    text: (s) => (s.stalePfns === null ? '—' : String(s.stalePfns)), raw: (s) => s.stalePfns ?? '',
  },
  {
    head: 'bytes moved', csv: 'bytes_moved', numeric: true,
    text: (s) => (s.bytesMoved === null ? '—' : formatNumber(s.bytesMoved)), raw: (s) => s.bytesMoved ?? '',
  },
  { head: 'ok/error', csv: 'status', text: statusText, raw: (s) => s.status },
];

/** Columns runs.csv adds after RUN_COLUMNS (everything else an analysis may want). */
export const RUN_EXTRA: readonly { csv: string; raw(r: RunResult): string | number | boolean | null }[] = [
  { csv: 'error', raw: (r) => r.error },
  // The settings without a table column (the run schema's CSV-only axes).
  ...AXIS_ORDER.filter((k) => axisDef(k).column === undefined).map((k) => ({ csv: axisDef(k).csv, raw: (r: RunResult) => axisRaw(k, r.config) })),
  { csv: 'faults_per_sec_of_service', raw: (r) => r.faultsPerSec },
  { csv: 'rounds', raw: (r) => r.rounds },
  { csv: 'fault_rounds', raw: (r) => r.faultRounds },
  { csv: 'batches', raw: (r) => r.totals.batches },
  { csv: 'duplicates', raw: (r) => r.totals.duplicates },
  { csv: 'stale', raw: (r) => r.totals.stale },
  { csv: 'recent', raw: (r) => r.totals.recent },
  { csv: 'groups', raw: (r) => r.totals.groups },
  { csv: 'mmap_lock_wait_ms', raw: (r) => r.totals.mmapLockWaitMs },
  { csv: 'mmap_lock_hold_ms', raw: (r) => r.totals.mmapLockHoldMs },
  { csv: 'verify_checked', raw: (r) => r.verify.checked },
  { csv: 'verify_mismatches', raw: (r) => r.verify.mismatches },
  { csv: 'reused_from_run', raw: (r) => (r.reusedFrom === undefined ? null : r.reusedFrom + 1) },
  { csv: 'sim_time_ns', raw: (r) => r.policy?.simTimeNs ?? null },
  // Did the fault ring overflow? Its fault counts then follow GPU thread timing, not the seed.
  { csv: 'ring_overflows', raw: (r) => r.ringOverflows ?? null },
];


export const RECORD_FIELDS: readonly Exclude<keyof BatchRecord, 'spans' | 'phaseMs'>[] = [
  'index', 't', 'round', 'fetched', 'duplicates', 'stale', 'recent', 'unique', 'groups', 'rangeFaults', 'retries', 'ebusy',
  'fallbacks', 'mirrorWrites', 'mmapLockWaitMs', 'mmapLockHoldMs', 'serviceMs',
];

/** batches.csv's run key: the preset and every setting. */
export const RUN_KEY: readonly { csv: string; raw(c: RunConfig): string | number }[] = [
  { csv: 'preset', raw: (c) => c.preset },
  ...AXIS_ORDER.map((k) => ({ csv: axisDef(k).csv, raw: (c: RunConfig) => axisRaw(k, c) })),
];
