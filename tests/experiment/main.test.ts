import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { expandPresets, parseArgs } from '../../src/experiment/cli.js';
import { defaultOutDir, ExperimentError, main, RUNNER_THREW, runExperiment } from '../../src/experiment/main.js';
import type { SchemeResult } from '../../src/experiment/mm-tour.js';
import type { ExperimentReport } from '../../src/experiment/types.js';
import { fakeRunner } from './fixtures.js';
import { xmlProblem } from './xml.js';
import { captureConsole } from '../support/console.js';

function capture(): { lines: () => string[]; write: (s: string) => void } {
  let buf = '';
  return { write: (s) => { buf += s; }, lines: () => buf.split('\n').filter((l) => l !== '') };
}

const fakeTour = async (o: { rounds: number }): Promise<SchemeResult[]> => [
  { scheme: 'seq', rounds: o.rounds, committed: o.rounds, retries: 3, stalePfnsCommitted: 0, ms: 1 },
  { scheme: 'valid-flag', rounds: o.rounds, committed: o.rounds, retries: 0, stalePfnsCommitted: 3, ms: 1 },
];

describe('runExperiment (fake runner)', () => {
  it('runs every config in order, one progress line each, and collects the report', async () => {
    const configs = expandPresets(parseArgs(['--preset', 'protocols']));
    const runner = fakeRunner();
    const out = capture();
    let clock = 0;
    const report = await runExperiment(configs, runner, { presets: ['protocols'], write: out.write, now: () => (clock += 600) });
    expect(runner.calls).toEqual(configs);
    expect(runner.opened).toBe(1);
    expect(runner.closed).toBe(1);
    expect(report.adapter).toBe('fake adapter');
    expect(report.runs.map((r) => r.config)).toEqual(configs);
    const progress = out.lines().filter((l) => l.startsWith('['));
    expect(progress).toHaveLength(12);
    expect(progress[0]).toBe('[ 1/12] protocols stream protocol=seq storm=0/s ... 0.6 s');
    expect(progress[9]).toMatch(/^\[10\/12\] protocols stream protocol=lock-fallback storm=100\/s \.\.\. 0\.6 s$/);
    // valid-flag under storms: the fake runner reports EBUSY; the line says so
    expect(progress.find((l) => l.includes('valid-flag storm=1000/s'))).toMatch(/0\.6 s {2}error: EBUSY/);
  });

  it('reuses the result of an identical config from another preset instead of measuring again', async () => {
    const configs = expandPresets(parseArgs([])); // quick: run 5 (protocols seq 0/s) = run 1 (coalescing stream on)
    const runner = fakeRunner();
    const out = capture();
    const report = await runExperiment(configs, runner, { presets: ['quick'], write: out.write });
    expect(configs).toHaveLength(13);
    expect(runner.calls).toHaveLength(12);
    expect(report.runs).toHaveLength(13);
    expect(report.runs[4].reusedFrom).toBe(0);
    expect(report.runs[4].config.preset).toBe('protocols');
    expect(report.runs[4].totals).toEqual(report.runs[0].totals);
    expect(out.lines()).toContain('[ 5/13] protocols stream protocol=seq coalesce=on storm=0/s ... same as run 1, result reused');
  });

  it('a runner that throws fails that run only; progress messages go on their own lines', async () => {
    const configs = expandPresets(parseArgs(['--preset', 'windows']));
    const runner = fakeRunner({ throwOn: (c) => c.window === 65536 && c.workload === 'random', progress: true });
    const out = capture();
    const report = await runExperiment(configs, runner, { presets: ['windows'], write: out.write });
    expect(report.runs).toHaveLength(8);
    const bad = report.runs.filter((r) => !r.ok);
    expect(bad).toHaveLength(1);
    expect(bad[0].error).toBe(`${RUNNER_THREW}TypeError: boom`);
    expect(bad[0].records).toEqual([]);
    expect(out.lines()).toContain('      round 1 of stream');
    expect(out.lines().some((l) => /^\[6\/8\] done in \d+\.\d s {2}error: runner threw: TypeError: boom$/.test(l))).toBe(true);
    expect(runner.closed).toBe(1);
  });

  it('quiet: no progress; the mm preset runs first and lands in the report', async () => {
    const out = capture();
    const report = await runExperiment(expandPresets(parseArgs(['--preset', 'batches'])), fakeRunner(), {
      presets: ['batches', 'mm'], quiet: true, write: out.write, mm: { pages: 8, rounds: 5, seed: 1 }, mmTour: fakeTour,
    });
    expect(report.mm?.map((r) => r.scheme)).toEqual(['seq', 'valid-flag']);
    expect(report.mmOptions).toEqual({ pages: 8, rounds: 5, seed: 1 });
    expect(out.lines().some((l) => l.startsWith('['))).toBe(false);
    expect(out.lines()).toContain('| valid-flag | 5 | 0 | 3 | 1 |');
    expect(report.runs).toHaveLength(8);
  });

  it('no GPU: an ExperimentError that keeps what was measured (the mm preset)', async () => {
    const p = runExperiment(expandPresets(parseArgs([])), fakeRunner({ failOpen: true }), {
      presets: ['quick', 'mm'], write: () => {}, mm: { pages: 8, rounds: 5, seed: 1 }, mmTour: fakeTour,
    });
    const e = await p.then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(ExperimentError);
    expect((e as ExperimentError).message).toBe('could not open the GPU: no adapter');
    const report: ExperimentReport = (e as ExperimentError).report;
    expect(report.mm).toHaveLength(2);
    expect(report.runs).toEqual([]);
  });

  it('no GPU runs: the runner is never opened', async () => {
    const runner = fakeRunner();
    const report = await runExperiment([], runner, { presets: ['mm'], write: () => {}, mm: { pages: 8, rounds: 5, seed: 1 }, mmTour: fakeTour });
    expect(runner.opened).toBe(0);
    expect(report.runs).toEqual([]);
  });
});

describe('main (fake runner)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    vi.restoreAllMocks();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('writes report.json, runs.csv, batches.csv, report.html and the figures; prints the table and the paths', async () => {
    const c = captureConsole();
    const dir = mkdtempSync(join(tmpdir(), 'mirrorlab-exp-'));
    dirs.push(dir);
    const json = join(dir, 'extra', 'r.json');
    const code = await main(['--preset', 'protocols,batches', '--out', dir, '--json', json, '--size', '1'], fakeRunner());
    expect(code).toBe(1); // the fake's valid-flag runs under storms fail with EBUSY: failed runs fail the job
    expect(readdirSync(dir).sort()).toEqual([
      'batches.csv', 'extra', 'figure-batches.svg', 'figure-coalescing.svg', 'figure-duplicates.svg', 'figure-histogram.svg',
      'figure-retries.svg', 'report.html', 'report.json', 'runs.csv',
    ]);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as ExperimentReport;
    expect(report.runs).toHaveLength(20);
    expect(report.presets).toEqual(['protocols', 'batches']);
    expect(JSON.parse(readFileSync(json, 'utf8'))).toEqual(report);
    expect(readFileSync(join(dir, 'runs.csv'), 'utf8').trim().split('\n')).toHaveLength(21);
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.svg'))) expect(xmlProblem(readFileSync(join(dir, f), 'utf8')), f).toBeNull();
    const out = c.log.join('\n');
    expect(out).toContain('20 GPU runs');
    expect(out).toMatch(/\| # \| preset \| workload \|/);
    expect(out).toContain(`wrote to ${dir}/: report.json, runs.csv, batches.csv, report.html, figure-batches.svg`);
  });

  it('the default: the quick set plus the mm preset (real mm tour, small)', async () => {
    const c = captureConsole();
    const dir = mkdtempSync(join(tmpdir(), 'mirrorlab-exp-'));
    dirs.push(dir);
    const code = await main(['--out', dir, '--pages', '16', '--rounds', '20', '--quiet'], fakeRunner());
    expect(code).toBe(1); // (the fake's EBUSY under valid-flag)
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as ExperimentReport;
    expect(report.presets).toEqual(['quick', 'mm']);
    expect(report.runs).toHaveLength(13);
    expect(report.mm?.map((r) => r.committed)).toEqual([20, 20]);
    expect(c.out.join('')).toContain('| retry protocol | faults committed |');
  });

  it('bad options: exit 2 with the message, nothing run', async () => {
    const c = captureConsole();
    const runner = fakeRunner();
    expect(await main(['--window', '3m'], runner)).toBe(2);
    expect(c.err[0]).toBe("error: --window: '3m' is not a window (one of 4k, 64k, 2m, amd)");
    expect(runner.opened).toBe(0);
    expect(await main(['--help'], runner)).toBe(0);
    expect(c.log.join('\n')).toContain('Usage: npm run experiment');
  });

  it('--adapter reaches MIRRORLAB_ADAPTER before anything opens the GPU; a bad one exits 2 and leaves it', async () => {
    const c = captureConsole();
    const before = process.env.MIRRORLAB_ADAPTER;
    try {
      process.env.MIRRORLAB_ADAPTER = 'auto';
      const dir = join(mkdtempSync(join(tmpdir(), 'mirrorlab-exp-')), 'out');
      dirs.push(dirname(dir));
      let seen: string | undefined;
      const runner = Object.assign(fakeRunner(), {
        maxBufferBytes: async () => { seen = process.env.MIRRORLAB_ADAPTER; return 2 ** 30; },
      });
      expect(await main(['--adapter', 'metal', '--workload', 'bfs', '--out', dir], runner)).toBe(2);
      expect(c.err[0]).toBe("error: --adapter: 'metal' is not an adapter (one of auto, opengles, vulkan)");
      expect(process.env.MIRRORLAB_ADAPTER).toBe('auto');
      expect(runner.opened).toBe(0);
      expect(await main(['--adapter', 'vulkan', '--preset', 'policies', '--workload', 'bfs', '--policy', 'first-touch', '--oversub', '1', '--out', dir, '--quiet'], runner)).toBe(0);
      expect(seen).toBe('vulkan'); // the preflight's limit query came after it was set
      expect(process.env.MIRRORLAB_ADAPTER).toBe('vulkan');
    } finally {
      if (before === undefined) delete process.env.MIRRORLAB_ADAPTER;
      else process.env.MIRRORLAB_ADAPTER = before;
    }
  });

  it.for([
    [['--workload', 'kmeans'], /^error: --workload: 'kmeans' is not a workload/],
    [['--workload', 'pathfinder', '--size', '0.0078125'], /^error: --workload pathfinder --size 0.0078125: EINVAL: pathfinder: 0.0078125 MiB is too small/],
    [['--workload', 'pathfinder'], /^error: --workload pathfinder --size 38.5: EINVAL: pathfinder at 38.5 MiB \(50000 columns .*\) needs 38.46 MiB; this device binds at most 32 MiB in one buffer/],
    [['--workload', 'bfs', '--size', '40'], /^error: --workload bfs --size 40: EINVAL: bfs at 40 MiB \(graph of 1072591 nodes, 6435546 edges\) needs 40.03 MiB; this device binds at most 32 MiB/],
    [['--preset', 'policies', '--workload', 'gemm', '--policy', 'first-touch+tree+lru', '--oversub', '1.5'], /gemm at 3 MiB oversubscribed 1.5x leaves 2.00 MiB of device memory; an application workload needs at least 3 chunks/],
  ] as const)('application workloads: %j is refused with exit 2, naming it, nothing run or written', async ([args, message]) => {
    const c = captureConsole();
    const dir = join(mkdtempSync(join(tmpdir(), 'mirrorlab-exp-')), 'out');
    dirs.push(dirname(dir));
    const runner = Object.assign(fakeRunner(), { maxBufferBytes: async () => 32 * 2 ** 20 });
    expect(await main([...args, '--out', dir], runner)).toBe(2);
    expect(c.err[0]).toMatch(message);
    expect(runner.opened).toBe(0);
    expect(existsSync(dir)).toBe(false);
  });

  it('exit 1 when the runner threw, 3 when the GPU could not be opened (outputs still written)', async () => {
    captureConsole();
    const dir = mkdtempSync(join(tmpdir(), 'mirrorlab-exp-'));
    dirs.push(dir);
    expect(await main(['--preset', 'windows', '--out', dir, '--quiet'], fakeRunner({ throwOn: (c) => c.window === 'amd' }))).toBe(1);
    expect(await main(['--preset', 'windows', '--out', dir, '--quiet'], fakeRunner({ failOpen: true }))).toBe(3);
    expect(readdirSync(dir)).toContain('report.html');
  });

  it('default output directory: out/experiment-<timestamp>', () => {
    expect(defaultOutDir(new Date('2025-01-31T12:34:56.789Z'))).toBe(join('out', 'experiment-2025-01-31T12-34-56'));
  });
});

describe('experiment merge (issue 9)', () => {
  it('joins shard reports in sweep order, renumbering reused runs; refuses overlaps and gaps', async () => {
    const { mergeReports } = await import('../../src/experiment/main.js');
    const { syntheticReport } = await import('./fixtures.js');
    const base = { ...syntheticReport(), sweep: { hash: 'h', version: 'v', command: '', total: 3 } };
    const [a, b, c] = base.runs;
    const part1 = { ...base, shard: { k: 1, n: 2, total: 3 }, runs: [{ ...a, sweepIndex: 0 }, { ...c, sweepIndex: 2, reusedFrom: 0 }] };
    const part2 = { ...base, shard: { k: 2, n: 2, total: 3 }, runs: [{ ...b, sweepIndex: 1 }] };
    const m = mergeReports([part2, part1]);
    expect(m.runs.map((r) => r.sweepIndex)).toEqual([0, 1, 2]);
    expect(m.runs[1].config).toEqual(b.config);
    expect(m.runs[2].reusedFrom).toBe(0);
    expect(() => mergeReports([part1, part1])).toThrow(/part 2 and part 1 are both shard 1\/2/);
    expect(() => mergeReports([part1])).toThrow(/hold 2 of the sweep's 3 runs/);
  });
});
