/**
 * A failed run fails the job (issue 19): every failure is marked failed in every output and
 * the exit status says so; what cannot run is refused before anything runs (exit 2); --help
 * lists the exit codes. Fake runner: no GPU.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EXIT_GPU, EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE } from '../../src/experiment/exit-codes.js';
import { main, type Runner } from '../../src/experiment/main.js';
import type { PolicyRunResult, RunConfig, RunResult } from '../../src/experiment/types.js';
import { fakeResult, fakeRunner, type FakeRunner } from './fixtures.js';
import { captureConsole } from '../support/console.js';

const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'mirrorlab-exit-'));
  dirs.push(d);
  return d;
}

function policyFigures(name: string): PolicyRunResult {
  return {
    policy: name, devicePages: 8, simTimeNs: 1000, bytesToDevice: 0, bytesToHost: 0, farFaults: 3, faultRecords: 3, faultGroups: 1, cpuFaults: 0,
    thrashingEvents: 0, throttles: 0, pins: 0, evictions: 0, evictedPages: 0, prefetchedPages: 0, prefetchHits: 0, remotePages: 0,
    migratedIn: 0, evictedOut: 0, skipped: 0, mappedFrees: 0, faultServiceMs: 1, policyMs: 0, moveMs: 0, serviceMs: 0,
    simFaultsPerWallSec: 0, policyStats: {},
  };
}

/** A runner whose runs with a policy fail the way the real runner reports a policy error. */
function failingPolicyRunner(error: string): FakeRunner {
  const base = fakeRunner();
  return {
    ...base,
    openExperiment: base.openExperiment,
    async runOne(cfg: RunConfig, ctx) {
      const r: RunResult = await base.runOne(cfg, ctx);
      if (cfg.policy === undefined) return r;
      return { ...r, ok: false, error, verify: { checked: 0, mismatches: 0 }, policy: policyFigures(cfg.policy) };
    },
  };
}

describe('exit status', () => {
  it('--help lists the exit codes', async () => {
    const c = captureConsole();
    expect(await main(['--help'], fakeRunner())).toBe(EXIT_OK);
    const help = c.log.join('\n');
    expect(help).toMatch(/Exit status:\n {2}0 {2}every run ok/);
    for (const code of [1, 2, 3, 4]) expect(help).toMatch(new RegExp(`\\n {2}${code} {2}\\S`));
  });

  it('a run failed by its policy at run time: exit 1, and the policy table says FAILED, not "0 wrong"', async () => {
    const c = captureConsole();
    const out = tmp();
    const error = 'EINVAL: policy "first-touch": hook decide returned action 7 for entry 0';
    const code = await main(['--preset', 'policies', '--workload', 'stream', '--policy', 'first-touch', '--oversub', '1', '--out', out, '--quiet'],
      failingPolicyRunner(error));
    expect(code).toBe(EXIT_RUN_FAILED);
    const table = c.log.find((l) => l.includes('| verified |')) ?? '';
    expect(table).toContain('| FAILED |');
    expect(table).not.toContain('0 wrong');
    expect(readFileSync(join(out, 'policies.csv'), 'utf8')).toContain(error.replace(/"/g, '""'));
    expect(readFileSync(join(out, 'runs.csv'), 'utf8')).toMatch(/,error,/);
    expect(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).runs[0].ok).toBe(false);
    expect(c.err.join('\n')).toMatch(/2 run\(s\) failed: #1 \(EINVAL: policy "first-touch"/); // stream at 4 MiB and 8 pages
  });

  it('a run failing with a kernel error (EFAULT) exits 1 even though no word was wrong', async () => {
    captureConsole();
    const runner: Runner = {
      openExperiment: async () => ({ adapter: 'fake', close: async () => {} }),
      runOne: async (cfg) => ({ ...fakeResult(cfg), ok: false, error: 'EFAULT: bad address' }),
    };
    expect(await main(['--preset', 'batches', '--batch', '32', '--workload', 'stream', '--out', tmp(), '--quiet'], runner)).toBe(EXIT_RUN_FAILED);
  });

  it('no GPU: exit 3', async () => {
    captureConsole();
    expect(await main(['--preset', 'windows', '--out', tmp(), '--quiet'], fakeRunner({ failOpen: true }))).toBe(EXIT_GPU);
  });

  it('--policy with --protocol valid-flag is refused before anything runs (exit 2)', async () => {
    const c = captureConsole();
    const runner = fakeRunner();
    const code = await main(['--preset', 'policies', '--policy', 'first-touch', '--protocol', 'valid-flag', '--out', tmp()], runner);
    expect(code).toBe(EXIT_USAGE);
    expect(runner.opened).toBe(0);
    expect(c.err[0]).toMatch(/^error: --policy first-touch with --protocol valid-flag/);
  });

  it('choosing valid-flag says on stderr that it can let a device write into a freed frame', async () => {
    const c = captureConsole();
    await main(['--preset', 'protocols', '--protocol', 'valid-flag', '--storm', '0', '--out', tmp(), '--quiet'], fakeRunner());
    expect(c.err.some((l) => l.startsWith('warning: --protocol valid-flag') && l.includes('freed'))).toBe(true);
    const c2 = captureConsole();
    await main(['--preset', 'protocols', '--protocol', 'seq', '--storm', '0', '--out', tmp(), '--quiet'], fakeRunner());
    expect(c2.err.some((l) => l.startsWith('warning'))).toBe(false);
  });

  it('a trace that does not load is exit 2 before anything runs', async () => {
    const c = captureConsole();
    const d = tmp();
    writeFileSync(join(d, 'bad.csv'), 'time,address,access,processor\n0,zzz,read,0\n');
    const runner = fakeRunner();
    expect(await main(['--preset', 'policies', '--policy', 'first-touch', '--oversub', '1', '--workload', `trace:${join(d, 'bad.csv')}`, '--out', d], runner)).toBe(EXIT_USAGE);
    expect(await main(['--preset', 'policies', '--policy', 'first-touch', '--oversub', '1', '--workload', `trace:${join(d, 'none.csv')}`, '--out', d], runner)).toBe(EXIT_USAGE);
    expect(runner.opened).toBe(0);
    expect(c.err.filter((l) => l.startsWith('error: --workload trace:'))).toHaveLength(2);
  });

  it('--out is checked before the sweep: a file in the way is exit 2, nothing runs', async () => {
    const c = captureConsole();
    const d = tmp();
    writeFileSync(join(d, 'file'), 'x');
    const runner = fakeRunner();
    expect(await main(['--preset', 'windows', '--out', join(d, 'file', 'sub')], runner)).toBe(EXIT_USAGE);
    expect(runner.opened).toBe(0);
    expect(c.err[0]).toMatch(/^error: --out .*file\/sub: cannot write there \(ENOTDIR\)/);
  });

  it('a policy module that never settles is exit 2 with a message, within the watchdog\'s wall bound', async () => {
    const c = captureConsole();
    const runner = fakeRunner();
    const code = await main(['--preset', 'policies', '--policy', './tests/policy/fixtures/never-settles.ts', '--watchdog', 'off,0.2', '--out', tmp()], runner);
    expect(code).toBe(EXIT_USAGE);
    expect(runner.opened).toBe(0);
    expect(c.err[0]).toBe('error: --policy ./tests/policy/fixtures/never-settles.ts: did not finish loading in 0.2 s (a top-level await that never settles?)');
  });

  it('--watchdog takes SIM_S,WALL_S[,ROUNDS] (or off) and reaches every run', async () => {
    captureConsole();
    const seen: unknown[] = [];
    const base = fakeRunner();
    const runner: Runner = { openExperiment: base.openExperiment, runOne: async (cfg, ctx) => { seen.push(ctx.watchdog); return base.runOne(cfg, ctx); } };
    await main(['--preset', 'batches', '--workload', 'stream', '--batch', '32', '--watchdog', '2,off', '--out', tmp(), '--quiet'], runner);
    expect(seen).toEqual([{ simNs: 2e9, wallMs: Infinity, rounds: 500 }]);
    seen.length = 0;
    await main(['--preset', 'batches', '--workload', 'stream', '--batch', '32', '--watchdog', 'off,off,40', '--out', tmp(), '--quiet'], runner);
    expect(seen).toEqual([{ simNs: Infinity, wallMs: Infinity, rounds: 40 }]);
    const c = captureConsole();
    expect(await main(['--watchdog', '5'], fakeRunner())).toBe(EXIT_USAGE);
    expect(c.err[0]).toMatch(/--watchdog: '5' is not SIM_S,WALL_S\[,ROUNDS\]/);
    expect(await main(['--watchdog', '1,1,0.5'], fakeRunner())).toBe(EXIT_USAGE);
    expect(c.err.find((l) => l.includes("'1,1,0.5'"))).toMatch(/--watchdog: '1,1,0.5' is not .*ROUNDS a positive whole number/);
  });
});
