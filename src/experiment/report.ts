/**
 * The experiment's presentation: an ExperimentReport rendered as a markdown table, CSV (one
 * row per run, and one row per batch record), JSON, a self-contained HTML page (inline CSS
 * and inline SVG plots, no scripts, no external URLs) and standalone SVG figures.
 *
 * Pure functions over the data — no node: imports — so the same code renders the report in
 * the browser demo. One module per job, under report/:
 *   labels.ts    short names for runs (legend labels, from the run schema)
 *   summary.ts   a run reduced to its numbers, the derived ratios defined once
 *   columns.ts   the table's and the CSVs' columns (header, human cell, machine cell)
 *   tables.ts    markdown, runs.csv, batches.csv, JSON
 *   figures.ts   what each figure plots (drawn by svg-plot.ts)
 *   html.ts      the HTML page
 */
export { configLabels, runLabels } from './report/labels.js';
export { statusText, summarizeRun, type RunStatus, type RunSummary } from './report/summary.js';
export { RUN_COLUMNS } from './report/columns.js';
export { csvField, toBatchCsv, toCsv, toJson, toTable } from './report/tables.js';
export {
  FIGURE_TITLES, FIGURES, figureHasData, MAX_BATCH_LINES, protocolRuns, retryRuns, selectBatchRuns, toSvgFigure,
  type FigureName, type ReportOptions,
} from './report/figures.js';
export { toHtml } from './report/html.js';
export { POLICY_COLUMNS, htmlPolicyTable, policyRows, policyTable, share, toPolicyCsv, type PolicyRow } from './report/policy.js';
