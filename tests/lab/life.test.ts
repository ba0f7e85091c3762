/**
 * The lab's pure parts added for issue 18: one run-life state machine, one verdict per
 * run, the log ring, comparison of several runs and run sets, the slow-run estimate, the
 * scenario gallery's settings.
 */
import { describe, expect, it } from 'vitest';
import { emptyRecord, totals } from '../../src/driver/records.js';
import type { RunResult } from '../../src/experiment/types.js';
import { compareRows, runSets } from '../../src/lab/compare.js';
import { checkSettings, DEFAULT_SETTINGS, toRunConfig } from '../../src/lab/config.js';
import { runEstimate } from '../../src/lab/estimate.js';
import { SCENARIOS } from '../../src/lab/gallery.js';
import { controls, next, RunLife, type LifeEvent, type Phase } from '../../src/lab/lifecycle.js';
import { verdictOf } from '../../src/lab/verdict.js';
import { LiveRun, LogRing } from '../../src/lab/view.js';

function result(over: Partial<RunResult> = {}): RunResult {
  const recs = [0, 1].map((i) => ({ ...emptyRecord(i, i, i + 1), fetched: 4, unique: 4, rangeFaults: 2 }));
  return {
    config: toRunConfig(DEFAULT_SETTINGS), ok: true, error: null, wallMs: 12.4, rounds: 3, faultRounds: 2, totals: totals(recs), records: recs,
    storm: { ops: 0, byKind: {} }, verify: { checked: 100, mismatches: 0 }, faultsPerSec: 1, ...over,
  };
}

describe('one verdict per run', () => {
  it.for([
    [{}, 'done', 'ok'],
    [{ verify: { checked: 1_440_000, mismatches: 7852 } }, 'failed', 'WRONG: 7852 of 1440000 words wrong'],
    [{ ok: false, error: 'EBUSY: retry timeout' }, 'failed', 'error: EBUSY: retry timeout'],
    [{ ok: false, error: 'EINTR: stopped by the user' }, 'stopped', 'stopped (EINTR: stopped by the user)'],
  ] as const)('%j → %s', ([over, state, text]) => {
    const v = verdictOf(result(over));
    expect(v.state).toBe(state);
    expect(v.text).toBe(text);
  });

  it('a run whose data is wrong ends failed, in the log line and the comparison too', () => {
    const r = result({ verify: { checked: 1000, mismatches: 3 } });
    const live = LiveRun.fromResult(r);
    expect(live.status).toBe('failed');
    expect(live.log.at(live.log.length - 1)).toMatch(/^end: WRONG: 3 of 1000 words wrong/);
    expect(compareRows([r, result()]).find((x) => x[0] === 'status')).toEqual(['status', 'WRONG: 3 of 1000 words wrong', 'ok']);
  });

  it('finish is once: a second result (the worker\'s end after the page ended a stopped run) changes nothing', () => {
    const live = new LiveRun(toRunConfig(DEFAULT_SETTINGS));
    live.finish(result({ ok: false, error: 'EINTR: stopped (the worker was ended)' }));
    live.apply([{ kind: 'end', result: result({ ok: false, error: 'EINTR: stopped by the user' }), pausedMs: 0 }]);
    expect(live.log.toArray().filter((l) => l.startsWith('end:'))).toHaveLength(1);
    expect(live.result?.error).toBe('EINTR: stopped (the worker was ended)');
  });

  it('a hold before any batch is not "after batch -1"', () => {
    const live = new LiveRun(toRunConfig(DEFAULT_SETTINGS));
    live.apply([{ kind: 'state', mode: 'paused', held: true }]);
    expect(live.log.toArray()).toEqual(['held before the first batch']);
  });

  it('the live wall and simulated ms end on the run\'s own figures', () => {
    const live = new LiveRun(toRunConfig(DEFAULT_SETTINGS));
    live.apply([{ kind: 'batch', rec: emptyRecord(0, 0, 1), wallMs: 999, simMs: 0.05 }]);
    live.finish(result({ lab: { simNs: 345_000, cost: 'uvm-smart', invalidations: 7 } }));
    expect(live.counters.wallMs).toBe(12.4);
    expect(live.counters.simMs).toBe(0.345);
    expect(live.counters.invalidations).toBe(7);
  });
});

describe('the log ring', () => {
  it('keeps the newest lines, counts all, and the end line is the last', () => {
    const ring = new LogRing(400);
    for (let i = 0; i < 1000; i++) ring.push(`batch ${i}`);
    ring.push('end: ok');
    expect(ring.length).toBe(400);
    expect(ring.total).toBe(1001);
    expect(ring.at(0)).toBe('batch 601');
    expect(ring.at(399)).toBe('end: ok');
    expect(ring.toArray().at(-2)).toBe('batch 999');
  });
});

describe('the run\'s life', () => {
  const walk = (events: LifeEvent[]): (Phase | null)[] => {
    const life = new RunLife();
    return events.map((e) => (life.send(e) ? life.phase : null));
  };

  it('run, pause (worker holds), step, stop, end', () => {
    expect(walk([
      { type: 'start', step: false }, { type: 'pause' }, { type: 'worker', mode: 'paused', held: true }, { type: 'step' },
      { type: 'worker', mode: 'paused', held: true }, { type: 'stop' }, { type: 'worker', mode: 'running', held: false }, { type: 'end', state: 'stopped' },
      { type: 'end', state: 'done' }, { type: 'start', step: true },
    ])).toEqual(['running', 'paused', 'paused', 'stepping', 'paused', 'stopping', null, 'stopped', null, 'stepping']);
  });

  it('refuses what a phase does not allow, and the buttons follow the phase', () => {
    expect(next('idle', { type: 'stop' })).toBeNull();
    expect(next('running', { type: 'start', step: false })).toBeNull();
    expect(next('done', { type: 'worker', mode: 'running', held: false })).toBeNull();
    expect(next('stopping', { type: 'reset' })).toBe('idle');
    expect(controls('idle')).toEqual({ run: true, resume: false, pause: false, step: true, stop: false, ended: false });
    expect(controls('running')).toEqual({ run: false, resume: false, pause: true, step: true, stop: true, ended: false });
    expect(controls('paused')).toEqual({ run: false, resume: true, pause: false, step: true, stop: true, ended: false });
    expect(controls('stopping')).toEqual({ run: false, resume: false, pause: false, step: false, stop: false, ended: false });
    expect(controls('failed')).toEqual({ run: true, resume: false, pause: false, step: true, stop: false, ended: true });
  });
});

describe('comparing runs', () => {
  it('any number of columns; seeds make a run set with mean and spread', () => {
    const cfg = toRunConfig(DEFAULT_SETTINGS);
    const rs = [1, 2, 3].map((seed, i) => result({ config: { ...cfg, seed }, wallMs: 10 * (i + 1) }));
    const other = result({ config: { ...cfg, protocol: 'valid-flag' } });
    const rows = compareRows([...rs, other]);
    expect(rows.every((r) => r.length === 5)).toBe(true);
    const sets = runSets([...rs, other]);
    expect(sets.map((s) => s.seeds)).toEqual([[1, 2, 3], [1]]);
    const wall = sets[0].stats.find((s) => s.label === 'wall ms');
    expect(wall).toMatchObject({ mean: 20, sd: 10, n: 3 });
  });
});

describe('defaults, scenarios and the slow-run warning', () => {
  it('the default run is one of tens of batches with a storm; every scenario is within the bounds', () => {
    expect(DEFAULT_SETTINGS.sizeMiB * 256 / DEFAULT_SETTINGS.batchSize).toBeGreaterThanOrEqual(10);
    expect(DEFAULT_SETTINGS.stormRate).toBeGreaterThan(0);
    for (const s of SCENARIOS) for (const r of s.runs) expect(checkSettings(r).errors).toEqual([]);
    expect(runEstimate(DEFAULT_SETTINGS).slow).toBe(false);
  });

  it('block replay under a storm over 16 MiB says it takes minutes', () => {
    const e = runEstimate({ ...DEFAULT_SETTINGS, sizeMiB: 16, replay: 'block', stormRate: 5000, batchSize: 16 });
    expect(e.slow).toBe(true);
    expect(e.message).toMatch(/minutes/);
    expect(e.message).toMatch(/block replays the kernel after every batch of 16 faults/);
  });
});
