/** The report as text: a markdown table, runs.csv, batches.csv and JSON. */
import type { ExperimentReport } from '../types.js';
import { RECORD_FIELDS, RUN_COLUMNS, RUN_EXTRA, RUN_KEY } from './columns.js';
import { summarizeRun } from './summary.js';

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

/** runs.csv: one row per run — the table's columns (machine precision), then the rest. */
export function toCsv(report: ExperimentReport): string {
  const lines = [csvLine([...RUN_COLUMNS.map((c) => c.csv), ...RUN_EXTRA.map((c) => c.csv)])];
  report.runs.forEach((r, i) => {
    const s = summarizeRun(r, i);
    lines.push(csvLine([...RUN_COLUMNS.map((c) => c.raw(s)), ...RUN_EXTRA.map((c) => c.raw(r))]));
  });
  return `${lines.join('\n')}\n`;
}

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
