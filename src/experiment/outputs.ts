/**
 * Where a report goes: the output directory (checked before a sweep starts, so a typo does
 * not cost the sweep), and the files written into it, each atomically (a temporary file in
 * the same directory, then rename(2)), so a batch task killed or retried mid-write leaves
 * either its old part or its new one, never half a report.json beside another task's.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import {
  csvField, FIGURES, figureHasData, toBatchCsv, toCsv, toHtml, toJson, toPolicyCsv, toSvgFigure,
} from './report.js';
import type { ExperimentReport } from './types.js';

/** out/experiment-2025-01-31T12-00-00 */
export function defaultOutDir(date = new Date()): string {
  return join('out', `experiment-${date.toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-')}`);
}

/** Write `text` to `file` by a temporary file renamed over it (atomic on one filesystem). */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = join(dirname(file), `.${Date.now().toString(36)}-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
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
  const policies = toPolicyCsv(report, csvField);
  if (policies !== '') files.push(['policies.csv', policies]);
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
