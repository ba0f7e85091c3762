/**
 * What a report is a part of: the sweep (a hash of its plan: every run's config, in order,
 * and the mm preset's options), the project version that ran it and the command, without
 * the options that only say which part and where it goes (--shard, --jobs, --out, --json,
 * --quiet). merge (merge.ts) joins only parts that agree on all three (and on the adapter).
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunConfig } from './types.js';

export interface SweepIdentity {
  /** sha256 of the plan, first 16 hex digits. */
  hash: string;
  /** package.json's version and the git commit when there is one: "0.1.0+3a4b5c6". */
  version: string;
  /** The command's options, canonical: the part options removed. */
  command: string;
  /** Runs in the whole sweep. */
  total: number;
}

/** Options that say which part and where it goes, with the number of values each takes. */
const PART_OPTIONS: Readonly<Record<string, number>> = { '--shard': 1, '--jobs': 1, '--out': 1, '--json': 1, '--quiet': 0 };

/** argv without the part options (both `--out DIR` and `--out=DIR` forms). */
export function sweepCommand(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    const skip = PART_OPTIONS[name];
    if (skip === undefined) out.push(a);
    else if (eq < 0) i += skip;
  }
  return out;
}

export function planHash(configs: readonly RunConfig[], mm: unknown): string {
  return createHash('sha256').update(JSON.stringify({ configs, mm: mm ?? null })).digest('hex').slice(0, 16);
}

let version: string | null = null;

/** The project's version: package.json's, with the git commit of the checkout when git has one. */
export function projectVersion(): string {
  if (version !== null) return version;
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  let v = 'unknown';
  try {
    v = (JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch { /* not in a checkout */ }
  try {
    const sha = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    if (/^[0-9a-f]+$/.test(sha)) v += `+${sha}`;
  } catch { /* no git */ }
  version = v;
  return v;
}

export function sweepIdentity(all: readonly RunConfig[], mm: unknown, argv: readonly string[]): SweepIdentity {
  return { hash: planHash(all, mm), version: projectVersion(), command: sweepCommand(argv).join(' '), total: all.length };
}
