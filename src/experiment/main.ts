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
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { totals } from '../driver/records.js';
import {
  CliError, configKey, describeCommon, describeConfig, expandPresets, parseArgs, resolvePresets, shardOf, USAGE, varyingAxes, wantsMm,
  type CliOptions,
} from './cli.js';
import { loadPolicy } from '../policy/loader.js';
import { checkAppRun } from '../workloads/apps/index.js';
import { isAppWorkload } from '../workloads/names.js';
import { formatTrace, type TraceRecord } from '../policy/trace.js';
import { ADAPTER_ENV } from '../device/gpu.js';
import { EXIT_CODES_HELP, EXIT_GPU, EXIT_MERGE_REFUSED, EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE } from './exit-codes.js';
import { mergeCommand } from './merge.js';
import { mmTour, type MmTourOptions, type SchemeResult } from './mm-tour.js';
import { checkOutDir, defaultOutDir, publishedReport, showPath, writeFileAtomic, writeOutputs } from './outputs.js';
import { policyOptions } from './schema.js';
import { sweepIdentity } from './sweep-id.js';
import { DEFAULT_WATCHDOG, type WatchdogBounds } from './watchdog.js';
import { traceLayout, TRACE_PREFIX } from './trace-run.js';
import {
  csvField, FIGURES, figureHasData, policyTable, summarizeRun, statusText, toBatchCsv, toCsv, toHtml, toJson, toPolicyCsv, toSvgFigure,
  toTable,
} from './report.js';
import { cellTables } from './report/cells.js';
import { AXES } from './schema.js';
import type { ExperimentReport, RunConfig, RunResult } from './types.js';
import { toPerfetto } from '../trace/perfetto.js';

export { defaultOutDir, publishedReport, writeOutputs } from './outputs.js';
export { mergeCommand, mergeReports } from './merge.js';

/** The runner's contract (runner.ts). */
export interface Runner {
  openExperiment(): Promise<{ adapter: string; close(): Promise<void> }>;
  runOne(config: RunConfig, ctx: { onProgress?: (msg: string) => void; recordTrace?: TraceRecord[]; watchdog?: WatchdogBounds | null }): Promise<RunResult>;
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
  /** The runs' no-progress watchdog (default: the runner's). */
  watchdog?: WatchdogBounds;
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
        result = await runner.runOne(config, {
          onProgress, ...(opts.recordTrace ? { recordTrace: opts.recordTrace } : {}), ...(opts.watchdog ? { watchdog: opts.watchdog } : {}),
        });
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

/**
 * What is refused before anything runs (exit EXIT_USAGE): a policy or trace that does not
 * load, a policy under valid-flag (the policy path needs a protocol that rechecks the
 * notifier sequence: under the v5.2 valid flag it would silently not run), --record-trace
 * over more than one run, an application workload at a size it cannot run at.
 */
async function preflight(opts: CliOptions, all: readonly RunConfig[], runner: Runner | undefined): Promise<string | null> {
  // A module whose top-level await never settles would leave node to exit 13 without a word.
  const loadMs = Math.min(opts.watchdog?.wallMs ?? DEFAULT_WATCHDOG.wallMs, 2 ** 31 - 1);
  const withOpts = new Map(all.filter((c) => c.policy !== undefined).map((c) => [`${c.policy}\n${c.policyOpt ?? ''}`, c] as const));
  for (const c of withOpts.values()) {
    const spec = c.policy!;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([loadPolicy(spec, { seed: c.seed, ...policyOptions(c.policyOpt) }), new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not finish loading in ${(loadMs / 1000).toFixed(1)} s (a top-level await that never settles?)`)), loadMs);
      })]);
    } catch (e) {
      return `${AXES.policy.flag} ${spec}: ${e instanceof Error ? e.message : String(e)}`;
    } finally {
      clearTimeout(timer);
    }
  }
  const vf = all.find((c) => c.policy !== undefined && c.protocol === 'valid-flag');
  if (vf !== undefined) {
    return `${AXES.policy.flag} ${vf.policy} with ${AXES.protocol.flag} valid-flag: the policy path services faults under seq or lock-fallback only (valid-flag has no sequence to recheck a migration against); drop one of them`;
  }
  for (const t of new Set(all.map((c) => c.workload).filter((w) => w.startsWith(TRACE_PREFIX)))) {
    try {
      traceLayout(await (await import('../trace/load.js')).loadAnyTrace(t));
    } catch (e) {
      return `${AXES.workload.flag} ${t}: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  if (opts.recordTrace !== null && (all.length !== 1 || all[0].policy === undefined)) {
    return `--record-trace records one run with a policy; this sweep has ${all.length} run(s)${all.length === 1 ? ' without a policy' : ''}`;
  }
  // An application workload that cannot run at its size (too small, more than the device
  // binds, too little device memory oversubscribed).
  const apps = all.filter((c) => isAppWorkload(c.workload));
  if (apps.length > 0) {
    const limit = runner !== undefined ? runner.maxBufferBytes : (await import('./runner.js')).maxBufferBytes;
    const maxBufferBytes = limit !== undefined ? await limit() : Infinity;
    for (const c of apps) {
      try {
        checkAppRun(c.workload, c.sizeMiB, c.seed, { oversub: c.policy === undefined ? 1 : c.oversub, maxBufferBytes });
      } catch (e) {
        return `${AXES.workload.flag} ${c.workload} ${AXES.sizeMiB.flag} ${c.sizeMiB}: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
  }
  return null;
}

/** The command: returns the exit status (exit-codes.ts). */
export async function main(argv: readonly string[], runner?: Runner): Promise<number> {
  if (argv[0] === 'merge') return mergeCommand(argv.slice(1));
  let opts: CliOptions;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    if (e instanceof CliError) {
      console.error(`error: ${e.message}`);
      console.error('usage: npm run experiment -- [--preset NAME[,NAME]] [options]   (--help for all)');
      return EXIT_USAGE;
    }
    throw e;
  }
  if (opts.help) {
    console.log(`${USAGE.trimEnd()}\n\n${EXIT_CODES_HELP}`);
    return EXIT_OK;
  }
  // Before anything opens the GPU (the preflight asks it for its binding limit): the one
  // place a Node run picks its adapter (requestGpuDevice reads it), as the benchmarks' --adapter.
  if (opts.adapter !== null) process.env[ADAPTER_ENV] = opts.adapter;
  const all = expandPresets(opts);
  const refused = await preflight(opts, all, runner);
  if (refused !== null) {
    console.error(`error: ${refused}`);
    return EXIT_USAGE;
  }
  if (all.some((c) => c.protocol === 'valid-flag')) console.error(VALID_FLAG_WARNING);
  const outDir = opts.out ?? defaultOutDir();
  const badOut = checkOutDir(outDir) ?? (opts.json !== null ? checkOutDir(dirname(resolve(opts.json)), '--json') : null);
  if (badOut !== null) {
    console.error(`error: ${badOut}`);
    return EXIT_USAGE;
  }
  if (opts.jobs > 1 && opts.shard === null && runner === undefined) return runJobs(argv, opts, all.length);
  const picked = shardOf(all, opts.shard);
  const configs = picked.map((x) => x.config);
  const mm = wantsMm(opts) && (opts.shard === null || opts.shard.k === 1);
  if (configs.length === 0 && !mm) {
    console.error('error: nothing to run');
    return EXIT_USAGE;
  }
  const seed = opts.overrides.seed?.[0] ?? 1;
  const mmOptions = wantsMm(opts) ? { pages: opts.mmPages, rounds: opts.mmRounds, seed } : null;
  if (!opts.quiet) console.log(`${plan(opts, configs, mm)}\n`);
  let report: ExperimentReport;
  let gpuFailed = false;
  const recorded: TraceRecord[] | null = opts.recordTrace !== null ? [] : null;
  try {
    const r: Runner = runner ?? (configs.length > 0 ? await import('./runner.js') : NO_RUNNER);
    report = await runExperiment(configs, r, {
      presets: resolvePresets(opts.presets), quiet: opts.quiet, ...(recorded ? { recordTrace: recorded } : {}),
      mm: mm ? mmOptions : null, ...(opts.watchdog !== null ? { watchdog: opts.watchdog } : {}),
    });
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    if (!(e instanceof ExperimentError)) return EXIT_RUN_FAILED;
    report = e.report;
    gpuFailed = true;
  }
  report.sweep = sweepIdentity(all, mmOptions, argv);
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
    writeFileAtomic(opts.recordTrace, formatTrace(recorded, opts.recordTrace.toLowerCase().endsWith('.csv') ? 'csv' : 'jsonl'));
    console.log(`recorded ${recorded.length} faults to ${showPath(opts.recordTrace)}`);
  }
  if (opts.perfetto !== null) {
    mkdirSync(dirname(resolve(opts.perfetto)), { recursive: true });
    writeFileAtomic(opts.perfetto, JSON.stringify(toPerfetto(report.runs.map((result) => ({ result })), 'wall')));
    console.log(`wrote ${report.runs.length} run(s) for Perfetto to ${showPath(opts.perfetto)} (open it in ui.perfetto.dev)`);
  }
  console.log(`wrote to ${showPath(outDir)}/: ${written.join(', ')}`);
  if (opts.json !== null) console.log(`wrote ${showPath(opts.json)}`);
  console.log(`open ${showPath(join(outDir, 'report.html'))} for the plots`);
  const sums = report.runs.map(summarizeRun);
  const wrong = sums.filter((s) => s.status === 'mismatch');
  const failed = sums.filter((s) => s.status === 'error');
  if (wrong.length > 0) console.error(`error: ${wrong.length} run(s) read wrong data from the mirror: ${wrong.map((s) => `#${s.run}`).join(', ')}`);
  if (failed.length > 0) console.error(`error: ${failed.length} run(s) failed: ${failed.map((s) => `#${s.run} (${s.error ?? 'failed'})`).join(', ')}`);
  if (gpuFailed) return EXIT_GPU;
  return wrong.length > 0 || failed.length > 0 ? EXIT_RUN_FAILED : EXIT_OK;
}

/** Said on stderr whenever a run uses valid-flag (issue 19; the soak's 2 cases). */
export const VALID_FLAG_WARNING = `warning: ${AXES.protocol.flag} valid-flag is the v5.2 API kept for comparison: its flag can go false and back to true around an invalidation (A-B-A), so a device may write into a frame the CPU has freed (the soak finds such cases); use seq for results you rely on`;

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
  // The children share this run's sweep identity: the command without the part options.
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
  const merged = await mergeCommand([...dirs, '--out', outDir, ...(opts.json !== null ? ['--json', opts.json] : [])]);
  // A child that could not open the GPU (3) or failed a run (1) decides unless merge refused.
  return merged === EXIT_MERGE_REFUSED || merged === EXIT_USAGE ? merged : Math.max(merged, ...codes);
}

const NO_RUNNER: Runner = {
  openExperiment: () => Promise.reject(new Error('no runner')),
  runOne: () => Promise.reject(new Error('no runner')),
};

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  process.exitCode = await main(process.argv.slice(2));
}
