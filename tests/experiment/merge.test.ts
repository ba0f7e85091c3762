/**
 * experiment merge refuses what does not belong (issue 19): shards of another sweep, adapter,
 * version or command, bogus run indices, --out over an input, a malformed part; a shard
 * writes atomically. The shards come from main with --shard and a fake runner (no GPU).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EXIT_MERGE_REFUSED, EXIT_OK, EXIT_USAGE } from '../../src/experiment/exit-codes.js';
import { main } from '../../src/experiment/main.js';
import { mergeCommand } from '../../src/experiment/merge.js';
import { sweepCommand } from '../../src/experiment/sweep-id.js';
import type { ExperimentReport } from '../../src/experiment/types.js';
import { fakeRunner } from './fixtures.js';
import { captureConsole } from '../support/console.js';

const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function root(): string {
  const d = mkdtempSync(join(tmpdir(), 'mirrorlab-merge-'));
  dirs.push(d);
  return d;
}

const SWEEP = ['--preset', 'windows', '--quiet'];

async function shard(dir: string, k: number, n: number, extra: string[] = [], adapter = 'fake adapter'): Promise<string> {
  const out = join(dir, `part-${k}-${extra.join('')}-${adapter.length}`);
  const base = fakeRunner();
  const runner = { ...base, openExperiment: async () => ({ adapter, close: async () => {} }) };
  expect(await main([...SWEEP, ...extra, '--shard', `${k}/${n}`, '--out', out], runner)).toBe(EXIT_OK);
  return out;
}

function edit(dir: string, f: (r: ExperimentReport) => void): void {
  const file = join(dir, 'report.json');
  const r = JSON.parse(readFileSync(file, 'utf8')) as ExperimentReport;
  f(r);
  writeFileSync(file, JSON.stringify(r));
}

describe('experiment merge', () => {
  it('joins the shards of one sweep in sweep order (exit 0); each shard names its sweep', async () => {
    captureConsole();
    const d = root();
    const parts = [await shard(d, 1, 3), await shard(d, 2, 3), await shard(d, 3, 3)];
    const r1 = JSON.parse(readFileSync(join(parts[0], 'report.json'), 'utf8')) as ExperimentReport;
    expect(r1.sweep?.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(r1.sweep?.command).toBe('--preset windows');
    expect(r1.sweep?.total).toBe(8);
    expect(r1.sweep?.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(await mergeCommand([...parts, '--out', join(d, 'all')])).toBe(EXIT_OK);
    const m = JSON.parse(readFileSync(join(d, 'all', 'report.json'), 'utf8')) as ExperimentReport;
    expect(m.runs.map((r) => r.sweepIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(m.sweep?.hash).toBe(r1.sweep?.hash);
  });

  it('refuses shards of another sweep (a different seed), naming both sides: exit 4', async () => {
    const c = captureConsole();
    const d = root();
    const a = await shard(d, 1, 2, ['--seed', '1']);
    const b = await shard(d, 2, 2, ['--seed', '2']);
    expect(await mergeCommand([a, b, '--out', join(d, 'all')])).toBe(EXIT_MERGE_REFUSED);
    expect(c.err[0]).toMatch(new RegExp(`^error: merge: part ${b} is of sweep [0-9a-f]{16} \\(--preset windows --seed 2\\), part ${a} of [0-9a-f]{16} \\(--preset windows --seed 1\\)`));
    expect(existsSync(join(d, 'all', 'report.json'))).toBe(false);
  });

  it('refuses another adapter unless --allow-mixed-adapters; refuses another version or command', async () => {
    const c = captureConsole();
    const d = root();
    const a = await shard(d, 1, 2);
    const b = await shard(d, 2, 2, [], 'another GPU');
    expect(await mergeCommand([a, b, '--out', join(d, 'x')])).toBe(EXIT_MERGE_REFUSED);
    expect(c.err.at(-1)).toContain(`part ${b} ran on 'another GPU', part ${a} on 'fake adapter'`);
    expect(await mergeCommand([a, b, '--out', join(d, 'y'), '--allow-mixed-adapters'])).toBe(EXIT_OK);
    edit(b, (r) => { r.adapter = 'fake adapter'; r.sweep!.version = '0.0.1+deadbeef'; });
    expect(await mergeCommand([a, b, '--out', join(d, 'z')])).toBe(EXIT_MERGE_REFUSED);
    expect(c.err.at(-1)).toMatch(/is of mirrorlab 0\.0\.1\+deadbeef, part .* of /);
    edit(b, (r) => { r.sweep!.version = JSON.parse(readFileSync(join(a, 'report.json'), 'utf8')).sweep.version; r.sweep!.command = '--workload stream --preset windows'; });
    expect(await mergeCommand([a, b, '--out', join(d, 'w')])).toBe(EXIT_MERGE_REFUSED);
    expect(c.err.at(-1)).toMatch(/is of command '--workload stream --preset windows'/);
  });

  it('refuses bogus run indices, a shard twice, and missing shards', async () => {
    const c = captureConsole();
    const d = root();
    const a = await shard(d, 1, 2);
    const b = await shard(d, 2, 2);
    expect(await mergeCommand([a, a, b, '--out', join(d, 'x')])).toBe(EXIT_MERGE_REFUSED);
    expect(c.err.at(-1)).toMatch(/are both shard 1\/2/);
    expect(await mergeCommand([a, '--out', join(d, 'x')])).toBe(EXIT_MERGE_REFUSED);
    expect(c.err.at(-1)).toContain('the parts hold 4 of the sweep\'s 8 runs (missing shard 2/2)');
    for (const bogus of [99, -1, 1.5, 4, 3]) {
      edit(a, (r) => { r.runs[1].sweepIndex = bogus; });
      expect(await mergeCommand([a, b, '--out', join(d, 'x')]), String(bogus)).toBe(EXIT_MERGE_REFUSED);
    }
    expect(c.err.at(-1)).toMatch(/run index 3 is not of shard 1\/2/);
  });

  it('--out may not be an input (nothing overwritten: exit 2); a malformed part is a message, not a stack trace', async () => {
    const c = captureConsole();
    const d = root();
    const a = await shard(d, 1, 2);
    const b = await shard(d, 2, 2);
    const before = readFileSync(join(a, 'report.json'), 'utf8');
    expect(await mergeCommand([a, b, '--out', a])).toBe(EXIT_USAGE);
    expect(c.err.at(-1)).toMatch(/--out .* is the part .*: merging would overwrite it/);
    expect(readFileSync(join(a, 'report.json'), 'utf8')).toBe(before);
    writeFileSync(join(b, 'report.json'), '{"runs": [1, 2');
    expect(await mergeCommand([a, b, '--out', join(d, 'x')])).toBe(EXIT_USAGE);
    expect(c.err.at(-1)).toMatch(new RegExp(`^error: merge: part ${b}: report.json is not JSON`));
    writeFileSync(join(b, 'report.json'), '{"runs": 3}');
    expect(await mergeCommand([a, b, '--out', join(d, 'x')])).toBe(EXIT_USAGE);
    expect(c.err.at(-1)).toMatch(/is not an experiment report \(no adapter\)/);
    const empty = join(d, 'empty');
    mkdirSync(empty);
    expect(await mergeCommand([a, empty, '--out', join(d, 'x')])).toBe(EXIT_USAGE);
    expect(c.err.at(-1)).toContain(`part ${empty}: no report.json (did its task finish?)`);
    expect(c.err.join('\n')).not.toMatch(/\n\s+at /);
  });

  it('merge --help prints its usage (not read as a directory)', async () => {
    const c = captureConsole();
    expect(await main(['merge', '--help'])).toBe(EXIT_OK);
    expect(c.log.join('\n')).toMatch(/^Usage: npm run experiment -- merge DIR\.\.\./);
    expect(await mergeCommand(['--bogus'])).toBe(EXIT_USAGE);
  });

  it('a shard writes atomically: no temporary file left, a retried task replaces only its own files', async () => {
    captureConsole();
    const d = root();
    const a = await shard(d, 1, 2);
    const first = readFileSync(join(a, 'report.json'), 'utf8');
    await shard(d, 1, 2);
    expect(readdirSync(a).filter((f) => f.startsWith('.'))).toEqual([]);
    expect(JSON.parse(readFileSync(join(a, 'report.json'), 'utf8')).sweep).toEqual(JSON.parse(first).sweep);
  });

  it('--jobs keeps --json (the merged report is written there too)', async () => {
    const d = root();
    const json = join(d, 'j', 'merged.json');
    // The mm preset only: the child needs no GPU.
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', './scripts/wgsl-hooks.mjs', 'src/experiment/main.ts',
      '--preset', 'mm', '--pages', '8', '--rounds', '5', '--jobs', '2', '--out', join(d, 'o'), '--json', json], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(EXIT_OK);
    const m = JSON.parse(readFileSync(json, 'utf8')) as ExperimentReport;
    expect(m.mm).toHaveLength(2);
    expect(m.sweep?.command).toBe('--preset mm --pages 8 --rounds 5');
  }, 150_000);

  it('the sweep command leaves out only what says which part and where it goes', () => {
    expect(sweepCommand(['--preset', 'policies', '--shard', '2/8', '--out', 'o', '--json=x.json', '--quiet', '--jobs', '3', '--seed', '4']))
      .toEqual(['--preset', 'policies', '--seed', '4']);
  });
});
