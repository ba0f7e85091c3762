/**
 * npm run experiment — the project's main job, headless: parse the options (cli.ts), print
 * what will run, run the CPU-side mm preset (mm-tour.ts) if chosen, then every GPU run
 * through the runner (runner.ts: openExperiment + runOne), one progress line per run;
 * print the table and write report.json, runs.csv, batches.csv, report.html and
 * figure-*.svg. `npm run experiment -- --help` lists the options.
 *
 * The core, runExperiment(), takes the runner as a parameter so tests can inject a fake one;
 * main() imports the real runner lazily (only when there are GPU runs).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { totals } from '../driver/records.js';
import {
  CliError, configKey, describeCommon, describeConfig, expandPresets, parseArgs, resolvePresets, shardOf, USAGE, varyingAxes, wantsMm,
  type CliOptions,
} from './cli.js';
import { loadPolicy } from '../policy/loader.js';
import { checkAppRun } from '../workloads/apps/index.js';
import { isAppWorkload } from '../workloads/names.js';
import { publishedRows, publishedSpeed, publishedTable, UVM_SMART_FAULTS_PER_WALL_SEC } from './published.js';
import { formatTrace, type TraceRecord } from '../policy/trace.js';
import { mmTour, type MmTourOptions, type SchemeResult } from './mm-tour.js';
import {
  csvField, FIGURES, figureHasData, policyTable, summarizeRun, statusText, toBatchCsv, toCsv, toHtml, toJson, toPolicyCsv, toSvgFigure,
  toTable,
} from './report.js';
import { cellTables, toCellsCsv } from './report/cells.js';
import { AXES } from './schema.js';
import type { ExperimentReport, RunConfig, RunResult } from './types.js';
import { toPerfetto } from '../trace/perfetto.js';

/** The runner's contract (runner.ts). */
export interface Runner {
  openExperiment(): Promise<{ adapter: string; close(): Promise<void> }>;
  runOne(config: RunConfig, ctx: { onProgress?: (msg: string) => void; recordTrace?: TraceRecord[] }): Promise<RunResult>;
  /** The largest buffer one command binds (application workloads are checked against it before anything runs). */
  maxBufferBytes?(): Promise<number>;
}

export interface ExperimentOptions {
  /** Preset names for the report (as given). */
  presets: string[];
  /** No per-run progress and no runner messages. */
  quiet?: boolean;
  /** Raw output for progress (default: process.stdout.write). */
  write?: (s: string) => void;
  /** Run the mm preset first with these options (null/undefined: don't). */
  mm?: MmTourOptions | null;
  /** The mm preset's implementation (tests inject a fake). */
  mmTour?: (o: MmTourOptions) => Promise<SchemeResult[]>;
  /** Record the (single) run's faults here. */
  recordTrace?: TraceRecord[];
  /** Wall clock in ms (default performance.now). */
  now?: () => number;
  generatedAt?: string;
}

/** The experiment could not go on; `report` holds what was measured before (e.g. the mm preset). */
export class ExperimentError extends Error {
  override name = 'ExperimentError';
  readonly report: ExperimentReport;
  constructor(message: string, report: ExperimentReport, cause?: unknown) {
    super(message, { cause });
    this.report = report;
  }
}

/** Error prefix of a run whose runner call threw (a bug, unlike an EBUSY the runner reports). */
export const RUNNER_THREW = 'runner threw: ';

/** A RunResult for a run whose runner call threw (the runner reports expected failures itself). */
export function failedResult(config: RunConfig, error: unknown, wallMs: number): RunResult {
  const msg = error instanceof Error ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}` : String(error);
  return {
    config, ok: false, error: `${RUNNER_THREW}${msg}`, wallMs, rounds: 0, faultRounds: 0, totals: totals([]), records: [],
    storm: { ops: 0, byKind: {} }, verify: { checked: 0, mismatches: 0 }, faultsPerSec: 0,
  };
}

export function mmTable(results: readonly SchemeResult[]): string {
  const lines = ['| retry protocol | faults committed | retries | stale pfns committed | time (ms) |', '|---|---:|---:|---:|---:|'];
  for (const r of results) lines.push(`| ${r.scheme} | ${r.committed} | ${r.retries} | ${r.stalePfnsCommitted} | ${r.ms.toFixed(0)} |`);
  return lines.join('\n');
}

/**
 * Run the configs through `runner` (and the mm preset if asked) and collect the report.
 * A runner call that throws becomes a failed run (ok: false, its message as the error); the
 * other runs go on. A config equal to an earlier one except for the preset reuses that
 * run's result (marked with reusedFrom) instead of measuring again.
 */
export async function runExperiment(configs: readonly RunConfig[], runner: Runner, opts: ExperimentOptions): Promise<ExperimentReport> {
  const write = opts.write ?? ((s: string) => void process.stdout.write(s));
  const now = opts.now ?? (() => performance.now());
  const quiet = opts.quiet ?? false;
  const report: ExperimentReport = {
    generatedAt: opts.generatedAt ?? new Date().toISOString(),
    adapter: 'none (no GPU runs)',
    node: typeof process !== 'undefined' ? process.version : 'unknown',
    presets: [...opts.presets],
    runs: [],
  };

  if (opts.mm) {
    if (!quiet) write(`mm preset: ${opts.mm.rounds} device faults over ${opts.mm.pages} pages, half of them raced by a CPU invalidation (seed ${opts.mm.seed})\n`);
    const tour = opts.mmTour ?? mmTour;
    report.mm = await tour({ ...opts.mm, log: quiet ? undefined : (l) => write(`${l}\n`) });
    report.mmOptions = { pages: opts.mm.pages, rounds: opts.mm.rounds, seed: opts.mm.seed };
    write(`\n${mmTable(report.mm)}\n\n`);
  }
  if (configs.length === 0) return report;

  let session: Awaited<ReturnType<Runner['openExperiment']>>;
  try {
    session = await runner.openExperiment();
  } catch (e) {
    throw new ExperimentError(`could not open the GPU: ${e instanceof Error ? e.message : String(e)}`, report, e);
  }
  report.adapter = session.adapter;
  if (!quiet) write(`GPU: ${session.adapter}\n`);
  const axes = varyingAxes(configs);
  const width = String(configs.length).length;
  const measured = new Map<string, number>();
  try {
    for (let i = 0; i < configs.length; i++) {
      const config = configs[i];
      const tag = `[${String(i + 1).padStart(width)}/${configs.length}]`;
      const label = `${tag} ${describeConfig(config, axes)}`;
      const same = measured.get(configKey(config, false));
      if (same !== undefined) {
        report.runs.push({ ...report.runs[same], config, reusedFrom: same });
        if (!quiet) write(`${label} ... same as run ${same + 1}, result reused\n`);
        continue;
      }
      let open = !quiet;
      if (!quiet) write(`${label} ... `);
      const onProgress = quiet ? undefined : (msg: string): void => {
        if (open) write('\n');
        open = false;
        write(`      ${msg}\n`);
      };
      const t0 = now();
      let result: RunResult;
      try {
        result = await runner.runOne(config, { onProgress, ...(opts.recordTrace ? { recordTrace: opts.recordTrace } : {}) });
      } catch (e) {
        result = failedResult(config, e, now() - t0);
      }
      const secs = ((now() - t0) / 1000).toFixed(1);
      report.runs.push(result);
      measured.set(configKey(config, false), report.runs.length - 1);
      if (!quiet) {
        const s = summarizeRun(result, report.runs.length - 1);
        const tail = s.status === 'ok' ? '' : `  ${statusText(s)}`;
        write(open ? `${secs} s${tail}\n` : `${tag} done in ${secs} s${tail}\n`);
      }
    }
  } finally {
    try {
      await session.close();
    } catch (e) {
      write(`warning: closing the GPU failed: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }
  return report;
}

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
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  if (json !== null) {
    mkdirSync(dirname(resolve(json)), { recursive: true });
    writeFileSync(json, files[0][1]);
  }
  return files.map(([name]) => name);
}

function plan(opts: CliOptions, configs: readonly RunConfig[], mm: boolean): string {
  const presets = resolvePresets(opts.presets).join(', ');
  const lines = [`mirrorlab experiment — presets: ${presets}${opts.presetGiven ? '' : ' (the default; see --help)'}`];
  if (mm) lines.push(`  mm: seq vs valid-flag on the CPU side, ${opts.mmRounds} faults over ${opts.mmPages} pages`);
  if (configs.length > 0) {
    lines.push(`  ${configs.length} GPU run${configs.length === 1 ? '' : 's'}; all with ${describeCommon(configs)}`);
    const axes = varyingAxes(configs);
    configs.forEach((c, i) => lines.push(`  ${String(i + 1).padStart(String(configs.length).length)}. ${describeConfig(c, axes)}`));
  }
  return lines.join('\n');
}

/** A path relative to the working directory when it is below it. */
function showPath(p: string): string {
  const r = relative(process.cwd(), resolve(p));
  return r !== '' && !r.startsWith('..') ? r : resolve(p);
}

/** The command: returns the exit status (0 ok, 1 a run went wrong or the GPU failed, 2 bad options). */
export async function main(argv: readonly string[], runner?: Runner): Promise<number> {
  if (argv[0] === 'merge') return mergeCommand(argv.slice(1));
  let opts: CliOptions;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    if (e instanceof CliError) {
      console.error(`error: ${e.message}`);
      console.error('usage: npm run experiment -- [--preset NAME[,NAME]] [options]   (--help for all)');
      return 2;
    }
    throw e;
  }
  if (opts.help) {
    console.log(USAGE.trimEnd());
    return 0;
  }
  const all = expandPresets(opts);
  // A policy that does not load is a usage error, before anything runs.
  for (const spec of new Set(all.map((c) => c.policy).filter((x): x is string => x !== undefined))) {
    try {
      await loadPolicy(spec);
    } catch (e) {
      console.error(`error: ${AXES.policy.flag} ${spec}: ${e instanceof Error ? e.message : String(e)}`);
      return 2;
    }
  }
  // An application workload that cannot run at its size (too small, more than the device
  // binds, too little device memory oversubscribed) is a usage error, before anything runs.
  const apps = all.filter((c) => isAppWorkload(c.workload));
  if (apps.length > 0) {
    const limit = runner !== undefined ? runner.maxBufferBytes : (await import('./runner.js')).maxBufferBytes;
    const maxBufferBytes = limit !== undefined ? await limit() : Infinity;
    for (const c of apps) {
      try {
        checkAppRun(c.workload, c.sizeMiB, c.seed, { oversub: c.policy === undefined ? 1 : c.oversub, maxBufferBytes });
      } catch (e) {
        console.error(`error: ${AXES.workload.flag} ${c.workload} ${AXES.sizeMiB.flag} ${c.sizeMiB}: ${e instanceof Error ? e.message : String(e)}`);
        return 2;
      }
    }
  }
  if (opts.recordTrace !== null && (all.length !== 1 || all[0].policy === undefined)) {
    console.error(`error: --record-trace records one run with a policy; this sweep has ${all.length} run(s)${all.length === 1 ? ' without a policy' : ''}`);
    return 2;
  }
  if (opts.jobs > 1 && opts.shard === null && runner === undefined) return runJobs(argv, opts, all.length);
  const picked = shardOf(all, opts.shard);
  const configs = picked.map((x) => x.config);
  const mm = wantsMm(opts) && (opts.shard === null || opts.shard.k === 1);
  if (configs.length === 0 && !mm) {
    console.error('error: nothing to run');
    return 2;
  }
  const seed = opts.overrides.seed?.[0] ?? 1;
  if (!opts.quiet) console.log(`${plan(opts, configs, mm)}\n`);
  const outDir = opts.out ?? defaultOutDir();
  let report: ExperimentReport;
  let failed = false;
  const recorded: TraceRecord[] | null = opts.recordTrace !== null ? [] : null;
  try {
    const r: Runner = runner ?? (configs.length > 0 ? await import('./runner.js') : NO_RUNNER);
    report = await runExperiment(configs, r, {
      presets: resolvePresets(opts.presets), quiet: opts.quiet, ...(recorded ? { recordTrace: recorded } : {}),
      mm: mm ? { pages: opts.mmPages, rounds: opts.mmRounds, seed } : null,
    });
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    if (!(e instanceof ExperimentError)) return 1;
    report = e.report;
    failed = true;
  }
  if (opts.shard !== null) {
    report.shard = { ...opts.shard, total: all.length };
    report.runs.forEach((r, i) => { r.sweepIndex = picked[i].index; });
  }
  if (report.runs.length > 0) console.log(`\n${toTable(report)}\n`);
  const pt = policyTable(report);
  if (pt !== '') console.log(`Migration policies (simulated time: the cost model's virtual clock)\n\n${pt}\n`);
  const ct = cellTables(report);
  if (ct !== '') console.log(`${ct}\n`);
  const published = publishedReport(report, argv);
  if (published !== '') console.log(`${published}\n`);
  const written = writeOutputs(report, outDir, opts.json);
  if (recorded !== null && opts.recordTrace !== null) {
    mkdirSync(dirname(resolve(opts.recordTrace)), { recursive: true });
    writeFileSync(opts.recordTrace, formatTrace(recorded, opts.recordTrace.toLowerCase().endsWith('.csv') ? 'csv' : 'jsonl'));
    console.log(`recorded ${recorded.length} faults to ${showPath(opts.recordTrace)}`);
  }
  if (opts.perfetto !== null) {
    mkdirSync(dirname(resolve(opts.perfetto)), { recursive: true });
    writeFileSync(opts.perfetto, JSON.stringify(toPerfetto(report.runs.map((result) => ({ result })), 'wall')));
    console.log(`wrote ${report.runs.length} run(s) for Perfetto to ${showPath(opts.perfetto)} (open it in ui.perfetto.dev)`);
  }
  console.log(`wrote to ${showPath(outDir)}/: ${written.join(', ')}`);
  if (opts.json !== null) console.log(`wrote ${showPath(opts.json)}`);
  console.log(`open ${showPath(join(outDir, 'report.html'))} for the plots`);
  const sums = report.runs.map(summarizeRun);
  const wrong = sums.filter((s) => s.status === 'mismatch');
  const crashed = sums.filter((s) => s.status === 'error' && s.error?.startsWith(RUNNER_THREW));
  if (wrong.length > 0) console.error(`error: ${wrong.length} run(s) read wrong data from the mirror: ${wrong.map((s) => `#${s.run}`).join(', ')}`);
  if (crashed.length > 0) console.error(`error: the runner threw in ${crashed.length} run(s): ${crashed.map((s) => `#${s.run}`).join(', ')}`);
  return failed || wrong.length > 0 || crashed.length > 0 ? 1 : 0;
}

/**
 * `experiment merge DIR... [--out DIR]`: the shards' report.json joined into one report, runs
 * in sweep order (each shard's reusedFrom renumbered), then the usual outputs.
 */
export async function mergeCommand(argv: readonly string[]): Promise<number> {
  const dirs: string[] = [];
  let out: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') out = argv[++i] ?? null;
    else dirs.push(argv[i]);
  }
  if (dirs.length === 0 || out === null && argv.includes('--out')) {
    console.error('usage: npm run experiment -- merge DIR... [--out DIR]');
    return 2;
  }
  let merged: ExperimentReport;
  try {
    merged = mergeReports(dirs.map((d) => JSON.parse(readFileSync(join(d, 'report.json'), 'utf8')) as ExperimentReport));
  } catch (e) {
    console.error(`error: merge: ${e instanceof Error ? e.message : String(e)}`);
    return 2;
  }
  const dir = out ?? defaultOutDir();
  if (merged.runs.length > 0) console.log(`\n${toTable(merged)}\n`);
  const pt = policyTable(merged);
  if (pt !== '') console.log(`${pt}\n`);
  const ct = cellTables(merged);
  if (ct !== '') console.log(`${ct}\n`);
  const written = writeOutputs(merged, dir);
  console.log(`merged ${dirs.length} part(s), ${merged.runs.length} run(s); wrote to ${showPath(dir)}/: ${written.join(', ')}`);
  return merged.runs.some((r) => r.verify.mismatches > 0) ? 1 : 0;
}

/** Join shard reports: every run once, in sweep order. */
export function mergeReports(parts: readonly ExperimentReport[]): ExperimentReport {
  if (parts.length === 0) throw new Error('nothing to merge');
  const runs: RunResult[] = [];
  const seen = new Set<number>();
  for (const p of parts) {
    const base = runs.length;
    p.runs.forEach((r, i) => {
      const idx = r.sweepIndex ?? base + i;
      if (seen.has(idx)) throw new Error(`run ${idx + 1} of the sweep appears in two parts`);
      seen.add(idx);
      runs.push({ ...r, sweepIndex: idx, ...(r.reusedFrom !== undefined ? { reusedFrom: p.runs[r.reusedFrom].sweepIndex ?? base + r.reusedFrom } : {}) });
    });
  }
  const total = parts[0].shard?.total;
  if (total !== undefined && seen.size !== total) throw new Error(`the parts hold ${seen.size} of the sweep's ${total} runs`);
  runs.sort((a, b) => a.sweepIndex! - b.sweepIndex!);
  const pos = new Map(runs.map((r, i) => [r.sweepIndex!, i]));
  for (const r of runs) if (r.reusedFrom !== undefined) r.reusedFrom = pos.get(r.reusedFrom);
  const mmPart = parts.find((p) => p.mm !== undefined);
  return {
    generatedAt: parts.map((p) => p.generatedAt).sort()[0], adapter: [...new Set(parts.map((p) => p.adapter))].join(' / '),
    node: parts[0].node, presets: [...new Set(parts.flatMap((p) => p.presets))], runs,
    ...(mmPart?.mm ? { mm: mmPart.mm, ...(mmPart.mmOptions ? { mmOptions: mmPart.mmOptions } : {}) } : {}),
  };
}

/**
 * --jobs N on one machine: N child processes, each `--shard k/N` into OUT/shard-k (Dawn
 * cannot live in worker threads), one progress line from their per-run lines, then merge.
 */
async function runJobs(argv: readonly string[], opts: CliOptions, total: number): Promise<number> {
  const outDir = opts.out ?? defaultOutDir();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--jobs' || a === '--out' || a === '--json') i++;
    else if (!a.startsWith('--jobs=') && !a.startsWith('--out=') && !a.startsWith('--json=') && a !== '--quiet') rest.push(a);
  }
  const n = Math.min(opts.jobs, Math.max(1, total));
  let done = 0;
  const tty = process.stdout.isTTY === true;
  const progress = (): void => {
    const line = `shards: ${n} processes, ${done}/${total} runs done`;
    if (tty) process.stdout.write(`\r${line}`);
    else console.log(line);
  };
  progress();
  const dirs = Array.from({ length: n }, (_, k) => join(outDir, `shard-${k + 1}`));
  const codes = await Promise.all(dirs.map((dir, k) => new Promise<number>((res) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...rest, '--shard', `${k + 1}/${n}`, '--out', dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        if (/^\[\s*\d+\/\d+\] .*( \d+\.\d s|done in|result reused)/.test(l)) {
          done++;
          progress();
        }
      }
    });
    child.on('close', (code) => res(code ?? 1));
  })));
  if (tty) process.stdout.write('\n');
  const merged = await mergeCommand([...dirs, '--out', outDir]);
  return Math.max(merged, ...codes);
}

const NO_RUNNER: Runner = {
  openExperiment: () => Promise.reject(new Error('no runner')),
  runOne: () => Promise.reject(new Error('no runner')),
};

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  process.exitCode = await main(process.argv.slice(2));
}
