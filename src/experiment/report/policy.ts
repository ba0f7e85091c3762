/**
 * The policy lab's part of the report (issue 9): one row per run that had a migration
 * policy — simulated time (the virtual clock), bytes moved each way, far faults, thrashing
 * events, throttles, pins, evictions, prefetch hits — and each run's ratio to first touch on
 * the same workload, size, oversubscription and seed. Markdown, CSV (policies.csv) and an
 * HTML table share these columns.
 */
import { escapeXml } from '../svg-plot.js';
import { configKey } from '../schema.js';
import type { ExperimentReport, PolicyRunResult, RunConfig, RunResult } from '../types.js';

export interface PolicyRow {
  run: number;
  workload: string;
  sizeMiB: number;
  policy: string;
  oversub: number;
  seed: number;
  ok: boolean;
  /** The run's error when it failed. */
  error: string | null;
  p: PolicyRunResult;
  /** simTime / first touch's on the same workload, size, oversub and seed (null: none ran). */
  timeVsFirstTouch: number | null;
  bytesVsFirstTouch: number | null;
  wallMs: number;
  mismatches: number;
}

interface PolicyColumn {
  head: string;
  csv: string;
  text(r: PolicyRow): string;
  raw(r: PolicyRow): string | number;
  numeric?: boolean;
}

const ms = (ns: number): string => (ns / 1e6).toFixed(2);
const mib = (b: number): string => (b / 1048576).toFixed(2);
const ratio = (v: number | null): string => (v === null ? '—' : v.toFixed(2));

export const POLICY_COLUMNS: readonly PolicyColumn[] = [
  { head: '#', csv: 'run', text: (r) => String(r.run), raw: (r) => r.run, numeric: true },
  { head: 'workload', csv: 'workload', text: (r) => r.workload, raw: (r) => r.workload },
  { head: 'policy', csv: 'policy', text: (r) => r.policy, raw: (r) => r.policy },
  { head: 'oversub', csv: 'oversub', text: (r) => `${r.oversub}x`, raw: (r) => r.oversub, numeric: true },
  { head: 'seed', csv: 'seed', text: (r) => String(r.seed), raw: (r) => r.seed, numeric: true },
  { head: 'sim ms', csv: 'sim_time_ns', text: (r) => ms(r.p.simTimeNs), raw: (r) => r.p.simTimeNs, numeric: true },
  { head: 'vs first touch', csv: 'time_vs_first_touch', text: (r) => ratio(r.timeVsFirstTouch), raw: (r) => r.timeVsFirstTouch ?? '', numeric: true },
  { head: 'MiB to dev', csv: 'bytes_to_device', text: (r) => mib(r.p.bytesToDevice), raw: (r) => r.p.bytesToDevice, numeric: true },
  { head: 'MiB to host', csv: 'bytes_to_host', text: (r) => mib(r.p.bytesToHost), raw: (r) => r.p.bytesToHost, numeric: true },
  { head: 'bytes vs first touch', csv: 'bytes_vs_first_touch', text: (r) => ratio(r.bytesVsFirstTouch), raw: (r) => r.bytesVsFirstTouch ?? '', numeric: true },
  { head: 'far faults', csv: 'far_faults', text: (r) => String(r.p.farFaults), raw: (r) => r.p.farFaults, numeric: true },
  { head: 'fault records', csv: 'fault_records', text: (r) => String(r.p.faultRecords ?? ''), raw: (r) => r.p.faultRecords ?? '', numeric: true },
  { head: 'CPU faults', csv: 'cpu_faults', text: (r) => String(r.p.cpuFaults), raw: (r) => r.p.cpuFaults, numeric: true },
  { head: 'thrashing', csv: 'thrashing_events', text: (r) => String(r.p.thrashingEvents), raw: (r) => r.p.thrashingEvents, numeric: true },
  { head: 'throttles', csv: 'throttles', text: (r) => String(r.p.throttles), raw: (r) => r.p.throttles, numeric: true },
  { head: 'pins', csv: 'pins', text: (r) => String(r.p.pins), raw: (r) => r.p.pins, numeric: true },
  { head: 'evictions', csv: 'evictions', text: (r) => String(r.p.evictions), raw: (r) => r.p.evictions, numeric: true },
  { head: 'prefetched', csv: 'prefetched_pages', text: (r) => String(r.p.prefetchedPages), raw: (r) => r.p.prefetchedPages, numeric: true },
  { head: 'prefetch hits', csv: 'prefetch_hits', text: (r) => String(r.p.prefetchHits), raw: (r) => r.p.prefetchHits, numeric: true },
  { head: 'wall ms', csv: 'wall_ms', text: (r) => r.wallMs.toFixed(0), raw: (r) => r.wallMs, numeric: true },
  { head: 'policy share', csv: 'policy_share', text: (r) => `${(100 * share(r.p)).toFixed(1)} %`, raw: (r) => share(r.p), numeric: true },
  { head: 'sim faults/wall s', csv: 'sim_faults_per_wall_sec', text: (r) => String(Math.round(r.p.simFaultsPerWallSec)), raw: (r) => r.p.simFaultsPerWallSec, numeric: true },
  { head: 'verified', csv: 'verify_mismatches', text: verified, raw: (r) => r.mismatches },
  { head: 'error', csv: 'error', text: (r) => r.error ?? '', raw: (r) => r.error ?? '' },
  // The clock the sim times are on: the --cost preset with any --cost-opt knobs ("uvm-smart+faultGroupNs=20000").
  { head: 'cost model', csv: 'cost_model', text: (r) => r.p.cost ?? '', raw: (r) => r.p.cost ?? '' },
];

/** A failed run is FAILED whatever it read before it stopped (its "0 wrong" checked nothing). */
function verified(r: PolicyRow): string {
  if (!r.ok) return 'FAILED';
  return r.mismatches === 0 ? 'ok' : `${r.mismatches} wrong`;
}

/** The policy layer's share of fault-service wall time (the servicer's batches and the command-end work). */
export function share(p: PolicyRunResult): number {
  return p.faultServiceMs > 0 ? Math.min(1, p.policyMs / p.faultServiceMs) : 0;
}

/** The run's identity with first touch as its policy: the baseline its ratios are to (every other setting equal). */
function key(c: RunConfig): string {
  return configKey({ ...c, policy: 'first-touch', oversub: c.oversub ?? 1 }, false);
}

/** The runs that had a policy, with their ratios to first touch. */
export function policyRows(report: ExperimentReport): PolicyRow[] {
  const ft = new Map<string, PolicyRunResult>();
  for (const r of report.runs) if (r.policy && r.config.policy === 'first-touch' && r.ok) ft.set(key(r.config), r.policy);
  const rows: PolicyRow[] = [];
  report.runs.forEach((r: RunResult, i) => {
    if (!r.policy) return;
    const base = ft.get(key(r.config));
    const bytes = (p: PolicyRunResult): number => p.bytesToDevice + p.bytesToHost;
    rows.push({
      run: i + 1, workload: r.config.workload, sizeMiB: r.config.sizeMiB, policy: r.config.policy ?? r.policy.policy,
      oversub: r.config.oversub ?? 1, seed: r.config.seed, ok: r.ok, error: r.ok ? null : r.error ?? 'failed', p: r.policy, wallMs: r.wallMs, mismatches: r.verify.mismatches,
      timeVsFirstTouch: base && base.simTimeNs > 0 ? r.policy.simTimeNs / base.simTimeNs : null,
      bytesVsFirstTouch: base && bytes(base) > 0 ? bytes(r.policy) / bytes(base) : null,
    });
  });
  return rows;
}

export function policyTable(report: ExperimentReport): string {
  const rows = policyRows(report);
  if (rows.length === 0) return '';
  const lines = [
    `| ${POLICY_COLUMNS.map((c) => c.head).join(' | ')} |`,
    `|${POLICY_COLUMNS.map((c) => (c.numeric ? '---:' : '---')).join('|')}|`,
  ];
  for (const r of rows) lines.push(`| ${POLICY_COLUMNS.map((c) => c.text(r).replace(/\|/g, '\\|')).join(' | ')} |`);
  return lines.join('\n');
}

/** policies.csv ('' when no run had a policy). */
export function toPolicyCsv(report: ExperimentReport, field: (v: string | number) => string): string {
  const rows = policyRows(report);
  if (rows.length === 0) return '';
  const lines = [POLICY_COLUMNS.map((c) => c.csv).join(',')];
  for (const r of rows) lines.push(POLICY_COLUMNS.map((c) => field(c.raw(r))).join(','));
  return `${lines.join('\n')}\n`;
}

export function htmlPolicyTable(report: ExperimentReport): string {
  const rows = policyRows(report);
  if (rows.length === 0) return '';
  const out = [
    '<h2>Migration policies</h2>',
    '<p class="note">Simulated time is the cost model\'s virtual clock (identical for a seed); the pages really moved through migrate_vma on the GPU, and every run\'s data was verified word by word. Ratios are to first touch on the same workload, oversubscription and seed.</p>',
    '<div class="scroll"><table class="policies"><thead><tr>',
  ];
  for (const c of POLICY_COLUMNS) out.push(`<th>${escapeXml(c.head)}</th>`);
  out.push('</tr></thead><tbody>');
  for (const r of rows) {
    out.push(`<tr${r.ok && r.mismatches === 0 ? '' : ' class="mismatch"'}>`);
    for (const c of POLICY_COLUMNS) out.push(`<td${c.numeric ? ' class="num"' : ''}>${escapeXml(c.text(r))}</td>`);
    out.push('</tr>');
  }
  out.push('</tbody></table></div>');
  return out.join('');
}
