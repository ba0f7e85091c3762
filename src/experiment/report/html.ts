/**
 * One self-contained HTML page: the run table, the figures as inline SVG, the mm preset's
 * table and a glossary; inline CSS, no scripts, no external URLs.
 */
import { htmlPublished } from '../published.js';
import { escapeXml } from '../svg-plot.js';
import type { ExperimentReport } from '../types.js';
import { RUN_COLUMNS } from './columns.js';
import { FIGURES, renderFigure, type ReportOptions } from './figures.js';
import { htmlPolicyTable } from './policy.js';
import { summarizeRun } from './summary.js';

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#111;margin:24px auto;max-width:1400px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;margin:0 0 12px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d8d8d8;padding:3px 6px;white-space:nowrap;text-align:left}
th{background:#f3f3f3;position:sticky;top:0}
td.num,th.num{text-align:right}
tr.error td{background:#fff1f0;color:#8a0010}tr.error td:last-child{font-weight:600}
tr.mismatch td{background:#ffe0e0;font-weight:600}
tr.error td:first-child,tr.mismatch td:first-child{box-shadow:inset 4px 0 0 #b00020}
tr.reused td{color:#666}
figure{margin:18px 0;max-width:100%;overflow-x:auto}figure svg{display:block;max-width:100%;height:auto;border:1px solid #eee}
dl{display:grid;grid-template-columns:minmax(6em,max-content) minmax(0,1fr);gap:2px 14px;font-size:13px}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
.meta{overflow-wrap:anywhere}
@media (max-width:600px){body{margin:12px auto;padding:0 8px}dl{grid-template-columns:1fr}dd{margin-bottom:6px}}
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
  ['service µs/fault', 'service time per unique fault (service ms × 1000 / unique faults): lower is faster'],
  ['wall ms', 'wall-clock time of the workload\'s run (GPU commands, fault servicing, write-back)'],
  ['storm ops', 'CPU-side invalidating operations the storm applied during the run'],
  ['stale pfns', 'mirror entries that no longer reach the page the CPU maps, by the driver\'s audit at the end of the run (valid-flag\'s hazard)'],
  ['bytes moved', 'bytes migrated between system and device memory by the migration policy, both ways (— : no policy, nothing migrates)'],
];

function htmlRunsTable(report: ExperimentReport): string {
  const out = ['<div class="scroll"><table class="runs">', '<thead><tr>'];
  for (const c of RUN_COLUMNS) out.push(`<th scope="col"${c.numeric ? ' class="num"' : ''}>${escapeXml(c.head)}</th>`);
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
export const REPORT_CSS = CSS;

export function toHtml(report: ExperimentReport, opts: ReportOptions = {}): string {
  const title = `mirrorlab experiment — ${report.generatedAt}`;
  const failed = report.runs.filter((r, i) => summarizeRun(r, i).status !== 'ok').length;
  const reused = report.runs.filter((r) => r.reusedFrom !== undefined).length;
  const body: string[] = [
    '<h1>mirrorlab experiment</h1>',
    `<p class="meta">${escapeXml(report.generatedAt)} · adapter: ${escapeXml(report.adapter)} · node ${escapeXml(report.node)} · presets: ${escapeXml(report.presets.join(', '))} · ${report.runs.length} run${report.runs.length === 1 ? '' : 's'}${failed ? ` (${failed} not ok)` : ''}</p>`,
  ];
  if (report.runs.length > 0) {
    body.push(htmlPolicyTable(report));
    body.push(htmlPublished(report.runs));
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
