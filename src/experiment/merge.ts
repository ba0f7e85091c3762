/**
 * `npm run experiment -- merge DIR... [--out DIR]`: the shards of one sweep (`--shard K/N`,
 * or `--jobs N`'s children) joined into one report, runs in sweep order, then the usual
 * outputs. A part is refused, with both sides named, when it does not belong:
 *   - another sweep (a different plan hash: policy, oversubscription, seed, presets, ...),
 *     another project version, another command (sweep-id.ts);
 *   - another adapter (unless --allow-mixed-adapters: the timings are then not comparable,
 *     the simulated figures are);
 *   - a run index outside the sweep or not of the part's K/N, a shard twice, runs missing.
 * A part that is not a report (no report.json, not JSON, not of this shape) is a message
 * naming it, not a stack trace. --out may not be one of the parts (it would overwrite it)
 * and is checked writable before anything is read.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs as tokenize } from 'node:util';
import { EXIT_MERGE_REFUSED, EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE } from './exit-codes.js';
import { checkOutDir, defaultOutDir, showPath, writeOutputs } from './outputs.js';
import { policyTable, summarizeRun, toTable } from './report.js';
import { cellTables } from './report/cells.js';
import type { ExperimentReport, RunResult } from './types.js';

export const MERGE_USAGE = `Usage: npm run experiment -- merge DIR... [--out DIR] [--json FILE] [--allow-mixed-adapters]

Joins the report.json of each DIR (the parts of one sweep: --shard K/N or --jobs N) into one
report, runs in sweep order, and writes the usual outputs into --out (default
out/experiment-<timestamp>/).

Refused (exit ${EXIT_MERGE_REFUSED}), naming both sides: parts of different sweeps (a different plan:
policy, oversubscription, seed, workload, ...), project versions or commands; parts from
different adapters (unless --allow-mixed-adapters); a shard given twice, runs missing, a run
index outside the sweep or not of its part. A DIR without a readable report.json, or bad
options: exit ${EXIT_USAGE}. --out may not be one of the parts. A merged report with a failed run:
exit ${EXIT_RUN_FAILED}.

Options:
  --out DIR                 where the merged outputs go
  --json FILE               also write the merged JSON report to FILE
  --allow-mixed-adapters    join parts measured on different GPUs
  -h, --help                this text
`;

/** The parts do not belong together (exit EXIT_MERGE_REFUSED). */
export class MergeRefused extends Error {
  override name = 'MergeRefused';
}

/** A part is not a report (exit EXIT_USAGE). */
export class MalformedPart extends Error {
  override name = 'MalformedPart';
}

export interface MergeOptions {
  /** What to call each part in messages (its directory). */
  names?: readonly string[];
  allowMixedAdapters?: boolean;
}

/** Read DIR/report.json and check its shape; a MalformedPart naming DIR otherwise. */
export function readPart(dir: string): ExperimentReport {
  const file = join(dir, 'report.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MalformedPart(`part ${dir}: ${code === 'ENOENT' ? 'no report.json (did its task finish?)' : `cannot read report.json (${code ?? String(e)})`}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new MalformedPart(`part ${dir}: report.json is not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const problem = shapeProblem(data);
  if (problem !== null) throw new MalformedPart(`part ${dir}: report.json is not an experiment report (${problem})`);
  return data as ExperimentReport;
}

function shapeProblem(d: unknown): string | null {
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return 'not an object';
  const o = d as Record<string, unknown>;
  if (typeof o.adapter !== 'string') return 'no adapter';
  if (typeof o.generatedAt !== 'string') return 'no generatedAt';
  if (!Array.isArray(o.runs)) return 'no runs';
  if (!Array.isArray(o.presets)) return 'no presets';
  for (const [i, r] of (o.runs as unknown[]).entries()) {
    if (typeof r !== 'object' || r === null) return `run ${i} is not an object`;
    const run = r as Record<string, unknown>;
    if (typeof run.config !== 'object' || run.config === null) return `run ${i} has no config`;
    if (typeof run.ok !== 'boolean') return `run ${i} has no ok`;
    if (typeof run.verify !== 'object' || run.verify === null) return `run ${i} has no verify`;
  }
  if (o.sweep !== undefined) {
    const s = o.sweep as Record<string, unknown>;
    if (typeof s !== 'object' || s === null || typeof s.hash !== 'string' || typeof s.version !== 'string'
      || typeof s.command !== 'string' || !Number.isSafeInteger(s.total)) return 'a malformed sweep identity';
  }
  return null;
}

/** Join shard reports: every run once, in sweep order; refuses what does not belong. */
export function mergeReports(parts: readonly ExperimentReport[], opts: MergeOptions = {}): ExperimentReport {
  if (parts.length === 0) throw new MergeRefused('nothing to merge');
  const name = (i: number): string => opts.names?.[i] ?? `part ${i + 1}`;
  for (const [i, p] of parts.entries()) {
    if (p.sweep === undefined) throw new MergeRefused(`${name(i)} names no sweep (not written by experiment --shard, or by an older mirrorlab): run it again`);
  }
  const first = parts[0].sweep!;
  for (const [i, p] of parts.entries()) {
    const s = p.sweep!;
    const vs = (what: string, a: string, b: string): MergeRefused =>
      new MergeRefused(`${name(i)} is of ${what} ${b}, ${name(0)} of ${a}: not one sweep`);
    if (s.hash !== first.hash) throw vs('sweep', `${first.hash} (${first.command || 'no options'})`, `${s.hash} (${s.command || 'no options'})`);
    if (s.version !== first.version) throw vs('mirrorlab', first.version, s.version);
    if (s.command !== first.command) throw vs('command', `'${first.command}'`, `'${s.command}'`);
    if (p.adapter !== parts[0].adapter && opts.allowMixedAdapters !== true) {
      throw new MergeRefused(`${name(i)} ran on '${p.adapter}', ${name(0)} on '${parts[0].adapter}' (--allow-mixed-adapters joins them; their timings are then not comparable)`);
    }
  }
  const total = first.total;
  const shardN = parts[0].shard?.n ?? 1;
  const ks = new Map<number, number>();
  const runs: RunResult[] = [];
  const seen = new Map<number, number>();
  for (const [pi, p] of parts.entries()) {
    const shard = p.shard ?? { k: 1, n: 1, total };
    if (shard.n !== shardN || shard.total !== total) {
      throw new MergeRefused(`${name(pi)} is shard ${shard.k}/${shard.n} of ${shard.total} runs, ${name(0)} of a split into ${shardN} of ${total}`);
    }
    const twin = ks.get(shard.k);
    if (twin !== undefined) throw new MergeRefused(`${name(pi)} and ${name(twin)} are both shard ${shard.k}/${shard.n}`);
    ks.set(shard.k, pi);
    p.runs.forEach((r, i) => {
      const idx = p.shard === undefined ? (r.sweepIndex ?? i) : r.sweepIndex;
      if (idx === undefined || !Number.isSafeInteger(idx) || idx < 0 || idx >= total) {
        throw new MergeRefused(`${name(pi)}: run ${i + 1} has index ${String(idx)}, outside the sweep's 0 .. ${total - 1}`);
      }
      if (idx % shard.n !== shard.k - 1) throw new MergeRefused(`${name(pi)}: run index ${idx} is not of shard ${shard.k}/${shard.n}`);
      const other = seen.get(idx);
      if (other !== undefined) throw new MergeRefused(`run ${idx + 1} of the sweep appears in two parts (${name(other)}, ${name(pi)})`);
      seen.set(idx, pi);
      let reused: number | undefined;
      if (r.reusedFrom !== undefined) {
        const src = p.runs[r.reusedFrom];
        if (!Number.isSafeInteger(r.reusedFrom) || src === undefined) throw new MergeRefused(`${name(pi)}: run ${i + 1} reuses run ${r.reusedFrom}, not in the part`);
        reused = p.shard === undefined ? (src.sweepIndex ?? r.reusedFrom) : src.sweepIndex;
      }
      runs.push({ ...r, sweepIndex: idx, ...(reused !== undefined ? { reusedFrom: reused } : {}) });
    });
  }
  if (seen.size !== total) {
    const missing = Array.from({ length: total }, (_, i) => i).filter((i) => !seen.has(i));
    const shards = [...new Set(missing.map((i) => (i % shardN) + 1))];
    throw new MergeRefused(`the parts hold ${seen.size} of the sweep's ${total} runs (missing shard${shards.length === 1 ? '' : 's'} ${shards.map((k) => `${k}/${shardN}`).join(', ')})`);
  }
  runs.sort((a, b) => a.sweepIndex! - b.sweepIndex!);
  const pos = new Map(runs.map((r, i) => [r.sweepIndex!, i]));
  for (const r of runs) if (r.reusedFrom !== undefined) r.reusedFrom = pos.get(r.reusedFrom);
  const mmPart = parts.find((p) => p.mm !== undefined);
  return {
    generatedAt: parts.map((p) => p.generatedAt).sort()[0], adapter: [...new Set(parts.map((p) => p.adapter))].join(' / '),
    node: parts[0].node, presets: [...new Set(parts.flatMap((p) => p.presets))], runs, sweep: first,
    ...(mmPart?.mm ? { mm: mmPart.mm, ...(mmPart.mmOptions ? { mmOptions: mmPart.mmOptions } : {}) } : {}),
  };
}

function same(a: string, b: string): boolean {
  const real = (p: string): string => (existsSync(p) ? realpathSync(p) : resolve(p));
  return real(a) === real(b);
}

/** The merge command; returns the exit status. */
export async function mergeCommand(argv: readonly string[]): Promise<number> {
  let dirs: string[];
  let out: string | null;
  let json: string | null;
  let allowMixed: boolean;
  try {
    const { values, positionals } = tokenize({
      args: [...argv], allowPositionals: true, strict: true,
      options: { out: { type: 'string' }, json: { type: 'string' }, 'allow-mixed-adapters': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help === true) {
      console.log(MERGE_USAGE.trimEnd());
      return EXIT_OK;
    }
    dirs = positionals;
    out = values.out ?? null;
    json = values.json ?? null;
    allowMixed = values['allow-mixed-adapters'] === true;
  } catch (e) {
    console.error(`error: merge: ${e instanceof Error ? e.message : String(e)}`);
    console.error('usage: npm run experiment -- merge DIR... [--out DIR]   (merge --help for all)');
    return EXIT_USAGE;
  }
  if (dirs.length === 0) {
    console.error('error: merge: no parts given\nusage: npm run experiment -- merge DIR... [--out DIR]   (merge --help for all)');
    return EXIT_USAGE;
  }
  const dir = out ?? defaultOutDir();
  const clash = dirs.find((d) => same(d, dir));
  if (clash !== undefined) {
    console.error(`error: merge: --out ${dir} is the part ${clash}: merging would overwrite it; name another directory`);
    return EXIT_USAGE;
  }
  const bad = checkOutDir(dir);
  if (bad !== null) {
    console.error(`error: merge: ${bad}`);
    return EXIT_USAGE;
  }
  let merged: ExperimentReport;
  try {
    merged = mergeReports(dirs.map(readPart), { names: dirs.map((d) => `part ${d}`), allowMixedAdapters: allowMixed });
  } catch (e) {
    if (!(e instanceof MergeRefused || e instanceof MalformedPart)) throw e;
    console.error(`error: merge: ${e.message}`);
    return e instanceof MergeRefused ? EXIT_MERGE_REFUSED : EXIT_USAGE;
  }
  if (merged.runs.length > 0) console.log(`\n${toTable(merged)}\n`);
  const pt = policyTable(merged);
  if (pt !== '') console.log(`${pt}\n`);
  const ct = cellTables(merged);
  if (ct !== '') console.log(`${ct}\n`);
  const written = writeOutputs(merged, dir, json);
  console.log(`merged ${dirs.length} part(s), ${merged.runs.length} run(s); wrote to ${showPath(dir)}/: ${written.join(', ')}`);
  if (json !== null) console.log(`wrote ${showPath(json)}`);
  const failed = merged.runs.map(summarizeRun).filter((s) => s.status !== 'ok');
  if (failed.length > 0) console.error(`error: ${failed.length} run(s) failed: ${failed.map((s) => `#${s.run}`).join(', ')}`);
  return failed.length > 0 ? EXIT_RUN_FAILED : EXIT_OK;
}
