/**
 * Where a report goes: the output directory (checked before a sweep starts, so a typo does
 * not cost the sweep), and the files written into it, each atomically (a temporary file in
 * the same directory, then rename(2)), so a batch task killed or retried mid-write leaves
 * either its old part or its new one, never half a report.json beside another task's.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import {
  csvField, FIGURES, figureHasData, toBatchCsv, toCsv, toHtml, toJson, toPolicyCsv, toSvgFigure,
} from './report.js';
import { MIN_OVERSUB_CHUNKS } from '../workloads/apps/index.js';
import { publishedRows, publishedSpeed, publishedTable, UVM_SMART_FAULTS_PER_WALL_SEC } from './published.js';
import { toCellsCsv } from './report/cells.js';
import type { ExperimentReport } from './types.js';

/**
 * The published preset's comparison (published.ts) as markdown: the table, the command, the
 * adapter and the seeds, and the speed row; '' when the preset did not run.
 */
export function publishedReport(report: ExperimentReport, argv: readonly string[] | null): string {
  const rows = publishedRows(report.runs);
  if (!rows.some((r) => r.ours !== null)) return '';
  const seeds = [...new Set(report.runs.filter((r) => r.config.preset === 'published').map((r) => r.config.seed))].join(', ');
  const speed = publishedSpeed(report.runs);
  const lines = [
    'Published results: UVM_Smart (GPGPU-Sim, GeForceGTX1080Ti config, its logged output) beside ours',
    '',
    ...(argv !== null ? [`command: npm run experiment -- ${argv.join(' ')}`] : []),
    `adapter: ${report.adapter}; seeds: ${seeds}; generated ${report.generatedAt}`,
    '',
    publishedTable(rows),
  ];
  const notRun = rows.filter((r) => r.tooLittleMemory);
  if (notRun.length > 0) {
    lines.push('', `not run: ${notRun.map((r) => `${r.benchmark} ${r.config}`).join('; ')} (at this size the oversubscribed device ` +
      `memory would be under ${MIN_OVERSUB_CHUNKS} chunks of 2 MiB, the least an application run needs: src/workloads/apps/index.ts)`);
  }
  if (speed !== null) {
    lines.push('', `speed: ${Math.round(speed.perWallSec).toLocaleString('en-US')} simulated far faults per wall second ` +
      `(${speed.farFaults} far faults in ${speed.wallSec.toFixed(1)} s of runs) vs UVM_Smart's ` +
      `${(UVM_SMART_FAULTS_PER_WALL_SEC.example.farFaults / UVM_SMART_FAULTS_PER_WALL_SEC.example.wallSec).toFixed(2)} ` +
      `(${UVM_SMART_FAULTS_PER_WALL_SEC.example.run}: ${UVM_SMART_FAULTS_PER_WALL_SEC.example.farFaults} far faults in ` +
      `${UVM_SMART_FAULTS_PER_WALL_SEC.example.wallSec} s): ${Math.round(speed.vsUvmSmart).toLocaleString('en-US')}x`);
  }
  return lines.join('\n');
}

/** out/experiment-2025-01-31T12-00-00 */
export function defaultOutDir(date = new Date()): string {
  return join('out', `experiment-${date.toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-')}`);
}

/** Temporary files this process made so far (with the pid: a name no other writer uses at once). */
let tmpCount = 0;

/** Write `text` to `file` by a temporary file renamed over it (atomic on one filesystem). */
export function writeFileAtomic(file: string, text: string): void {
  // No randomness in src (the seed drives every random choice): the pid and a counter make it unique.
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}-${++tmpCount}.tmp`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Can `dir` take the outputs? Created if missing, probed with a temporary file; the message
 * says what is wrong (a file in the way, no permission) before anything runs.
 */
export function checkOutDir(dir: string, opt = '--out'): string | null {
  try {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, '.mirrorlab-probe'), '');
    rmSync(join(dir, '.mirrorlab-probe'), { force: true });
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return `${opt} ${dir}: cannot write there (${code ?? (e instanceof Error ? e.message : String(e))})`;
  }
}

/** Write every output file into `dir` (and the JSON to `json`); returns the file names written in dir. */
export function writeOutputs(report: ExperimentReport, dir: string, json: string | null = null): string[] {
  mkdirSync(dir, { recursive: true });
  const files: [string, string][] = [
    ['report.json', toJson(report)],
    ['runs.csv', toCsv(report)],
    ['batches.csv', toBatchCsv(report)],
    ['report.html', toHtml(report)],
  ];
  const published = publishedReport(report, null);
  if (published !== '') files.push(['published.md', `${published}\n`]);
  const policies = toPolicyCsv(report, csvField);
  if (policies !== '') files.push(['policies.csv', policies]);
  const cells = toCellsCsv(report, csvField);
  if (cells !== '') files.push(['cells.csv', cells]);
  for (const f of FIGURES) if (figureHasData(report, f)) files.push([`figure-${f}.svg`, toSvgFigure(report, f)]);
  // report.json last: its presence says the part is whole (merge reads only it).
  for (const [name, text] of [...files.slice(1), files[0]]) writeFileAtomic(join(dir, name), text);
  if (json !== null) {
    mkdirSync(dirname(resolve(json)), { recursive: true });
    writeFileAtomic(json, files[0][1]);
  }
  return files.map(([name]) => name);
}

/** A path relative to the working directory when it is below it. */
export function showPath(p: string): string {
  const r = relative(process.cwd(), resolve(p));
  return r !== '' && !r.startsWith('..') ? r : resolve(p);
}
