/**
 * Cells: runs that differ only in an axis an expansion varied (--seeds: the seed) folded into
 * one row, each numeric column as its mean and the half-width of a 95 % confidence interval
 * for the mean (Student's t with n − 1 degrees of freedom: mean ± t·s/√n). The run schema
 * (schema.ts cellKey) says which runs share a cell; the columns are the tables' own.
 */
import { cellKey } from '../schema.js';
import type { ExperimentReport } from '../types.js';
import { RUN_COLUMNS } from './columns.js';
import { POLICY_COLUMNS, policyRows, type PolicyRow } from './policy.js';
import { summarizeRun, type RunSummary } from './summary.js';

/** t(0.975, df) for df 1..30 (two-sided 95 %). */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** The 97.5 % quantile of Student's t with df degrees of freedom (above 30: the Cornish–Fisher expansion). */
export function tQuantile975(df: number): number {
  if (!(df >= 1)) return Number.NaN;
  if (df <= 30) return T975[Math.floor(df) - 1];
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2);
}

export interface Interval {
  n: number;
  mean: number;
  /** Half-width of the 95 % interval (NaN with one value). */
  half: number;
}

export function interval(values: readonly number[]): Interval {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, half: Number.NaN };
  const s2 = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  return { n, mean, half: tQuantile975(n - 1) * Math.sqrt(s2 / n) };
}

const sig = (v: number): string => (Number.isFinite(v) ? String(Number(v.toPrecision(4))) : '—');

interface CellColumn<R> {
  head: string;
  csv: string;
  numeric?: boolean;
  text(r: R): string;
  raw(r: R): string | number;
}

/** Columns that name a run or the varied axis show their range, not a mean. */
const RANGE_COLUMNS = new Set(['run', 'seed']);

function cells<R>(rows: readonly R[], keys: readonly (string | null)[]): R[][] {
  const groups = new Map<string, R[]>();
  rows.forEach((r, i) => {
    const k = keys[i];
    if (k === null) return;
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  });
  return [...groups.values()];
}

function cellText<R>(c: CellColumn<R>, g: readonly R[]): { text: string; mean: number | string; half: number | string } {
  const raws = g.map((r) => c.raw(r));
  if (RANGE_COLUMNS.has(c.csv)) {
    const t = `${c.text(g[0])}–${c.text(g[g.length - 1])}`;
    return { text: t, mean: t, half: '' };
  }
  const nums = raws.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (!c.numeric || nums.length === 0) {
    const same = new Set(g.map((r) => c.text(r)));
    const t = same.size === 1 ? c.text(g[0]) : [...same].join(' / ');
    return { text: t, mean: t, half: '' };
  }
  const iv = interval(nums);
  return { text: Number.isNaN(iv.half) ? sig(iv.mean) : `${sig(iv.mean)} ± ${sig(iv.half)}`, mean: iv.mean, half: Number.isNaN(iv.half) ? '' : iv.half };
}

function markdown<R>(cols: readonly CellColumn<R>[], groups: readonly R[][]): string {
  const lines = [`| n | ${cols.map((c) => c.head).join(' | ')} |`, `|---:|${cols.map((c) => (c.numeric ? '---:' : '---')).join('|')}|`];
  for (const g of groups) lines.push(`| ${g.length} | ${cols.map((c) => cellText(c, g).text.replace(/\|/g, '\\|')).join(' | ')} |`);
  return lines.join('\n');
}

function csv<R>(cols: readonly CellColumn<R>[], groups: readonly R[][], field: (v: string | number) => string): string {
  const head = ['n', ...cols.flatMap((c) => (c.numeric && !RANGE_COLUMNS.has(c.csv) ? [`${c.csv}_mean`, `${c.csv}_ci95`] : [c.csv]))];
  const lines = [head.join(',')];
  for (const g of groups) {
    lines.push([String(g.length), ...cols.flatMap((c) => {
      const t = cellText(c, g);
      return c.numeric && !RANGE_COLUMNS.has(c.csv) ? [field(t.mean), field(t.half)] : [field(t.mean)];
    })].join(','));
  }
  return `${lines.join('\n')}\n`;
}

function runGroups(report: ExperimentReport): RunSummary[][] {
  return cells(report.runs.map(summarizeRun), report.runs.map((r) => cellKey(r.config)));
}

function policyGroups(report: ExperimentReport): PolicyRow[][] {
  const rows = policyRows(report);
  return cells(rows, rows.map((r) => cellKey(report.runs[r.run - 1].config)));
}

/** The cells' tables (markdown): the policy table's cells, then the run table's; '' without cells. */
export function cellTables(report: ExperimentReport): string {
  const out: string[] = [];
  const pg = policyGroups(report);
  if (pg.length > 0) out.push(`Migration policies, mean ± 95 % interval over each cell's seeds\n\n${markdown(POLICY_COLUMNS, pg)}`);
  const rg = runGroups(report);
  if (rg.length > 0) out.push(`Runs, mean ± 95 % interval over each cell's seeds\n\n${markdown(RUN_COLUMNS, rg)}`);
  return out.join('\n\n');
}

/** cells.csv: one row per cell, each numeric column as its mean and 95 % half-width ('' without cells). */
export function toCellsCsv(report: ExperimentReport, field: (v: string | number) => string): string {
  const pg = policyGroups(report);
  if (pg.length > 0) return csv(POLICY_COLUMNS, pg, field);
  const rg = runGroups(report);
  return rg.length > 0 ? csv(RUN_COLUMNS, rg, field) : '';
}
