/**
 * The lab's pure parts (no GPU): settings bounds and the URL, the controller's gate, the
 * view model's folding and export/import.
 */
import { describe, expect, it } from 'vitest';
import { emptyRecord } from '../../src/driver/records.js';
import { checkSettings, DEFAULT_SETTINGS, fromRunConfig, LIMITS, settingsFromQuery, settingsToQuery, toRunConfig } from '../../src/lab/config.js';
import { PausableScheduler, RunController } from '../../src/lab/controller.js';
import { exportJson, importJson, labReport, LiveRun } from '../../src/lab/view.js';
import type { RunResult } from '../../src/experiment/types.js';
import { totals } from '../../src/driver/records.js';

describe('lab settings', () => {
  it('refuses out-of-bounds values with a message naming the field and the bound', () => {
    const r = checkSettings({ ...DEFAULT_SETTINGS, stormRate: 1_000_000, sizeMiB: 64, batchSize: 0, protocol: 'nope' });
    expect(r.settings).toBeNull();
    const by = Object.fromEntries(r.errors.map((e) => [e.field, e.message]));
    expect(by.stormRate).toMatch(`from 0 to ${LIMITS.stormRate.max}`);
    expect(by.sizeMiB).toMatch(`to ${LIMITS.sizeMiB.max}`);
    expect(by.batchSize).toMatch(/whole number from 1/);
    expect(by.protocol).toMatch(/seq, valid-flag, lock-fallback/);
    expect(checkSettings({ ...DEFAULT_SETTINGS, sizeMiB: 0.3 }).errors[0]?.field).toBe('sizeMiB');
  });

  it('round-trips through the URL, only non-defaults written', () => {
    const s = { ...DEFAULT_SETTINGS, protocol: 'valid-flag' as const, window: 'amd' as const, coalesce: false, stormRate: 250 };
    const q = settingsToQuery(s);
    expect(q).toBe('window=amd&protocol=valid-flag&coalesce=off&stormRate=250');
    expect(settingsFromQuery(q).settings).toEqual(s);
    expect(settingsFromQuery('').settings).toEqual(DEFAULT_SETTINGS);
    expect(settingsFromQuery('stormRate=9999999').settings).toBeNull();
  });

  it('a migration policy and oversubscription: bounded, in the URL and the run config, re-imported', () => {
    const s = { ...DEFAULT_SETTINGS, policy: 'first-touch+tree', oversub: 1.5 };
    const q = settingsToQuery(s);
    expect(q).toBe('policy=first-touch%2Btree&oversub=1.5');
    expect(settingsFromQuery(q).settings).toEqual(s);
    const cfg = toRunConfig(s);
    expect(cfg).toMatchObject({ policy: 'first-touch+tree', oversub: 1.5 });
    expect(fromRunConfig(cfg)).toEqual(s);
    // none: the run config has no policy keys (the runner's no-policy path, as before).
    const none = toRunConfig(DEFAULT_SETTINGS);
    expect('policy' in none || 'oversub' in none).toBe(false);
    expect(fromRunConfig(none)).toEqual(DEFAULT_SETTINGS);
    // A user's module is named by its file (plain JavaScript only).
    expect(settingsFromQuery('policy=my-policy.mjs&oversub=2').settings).toMatchObject({ policy: 'my-policy.mjs', oversub: 2 });
    expect(settingsFromQuery('policy=first-touch&oversub=9').settings).toBeNull();
  });

  it.for([
    [{ policy: 'first-touch', oversub: 4 }, 'oversub', 'oversubscription must be from 1 to 3'],
    [{ policy: 'first-touch', oversub: 0.5 }, 'oversub', 'from 1 to 3'],
    [{ policy: 'first-touch', oversub: 'x' }, 'oversub', 'from 1 to 3'],
    [{ policy: 'none', oversub: 2 }, 'oversub', 'needs a migration policy'],
    [{ policy: 'nope' }, 'policy', 'first-touch'],
    [{ policy: 'my-policy.ts' }, 'policy', '.js, .mjs'],
  ] as const)('refuses %j: the %s field says "%s"', ([raw, field, msg]) => {
    const r = checkSettings({ ...DEFAULT_SETTINGS, ...raw });
    expect(r.settings).toBeNull();
    expect(r.errors.find((e) => e.field === field)?.message).toMatch(msg);
  });
});

describe('run controller', () => {
  it('holds at the gate while paused, steps one batch, throws EINTR once stopped', async () => {
    const c = new RunController(true);
    let passed = 0;
    const gate = (): Promise<void> => c.gate().then(() => { passed++; });
    const g1 = gate();
    await Promise.resolve();
    expect(c.held).toBe(true);
    expect(c.sched.paused).toBe(true);
    c.step();
    await g1;
    expect(passed).toBe(1);
    expect(c.sched.paused).toBe(false);
    c.noteBatch();
    const g2 = gate(); // one batch done since the step: hold again
    await Promise.resolve();
    expect(c.held).toBe(true);
    c.stop();
    await expect(g2).rejects.toBeErrno('EINTR');
    await expect(c.gate()).rejects.toBeErrno('EINTR');
  });

  it('the pausable clock leaves paused time out', async () => {
    const s = new PausableScheduler();
    s.pause();
    const a = s.now();
    await new Promise((r) => setTimeout(r, 20));
    expect(s.now()).toBe(a); // the clock stands still while paused, exactly
    s.resume();
    let slept = false;
    s.pause();
    const sleeping = s.sleep(0, 'test').then(() => { slept = true; });
    await new Promise((r) => setTimeout(r, 20));
    expect(slept).toBe(false); // no sleep ends while paused
    s.resume();
    await sleeping;
    expect(slept).toBe(true);
  });
});

describe('view model', () => {
  it('folds batches into counters and columns; export re-imports', () => {
    const cfg = toRunConfig(DEFAULT_SETTINGS);
    const live = new LiveRun(cfg);
    const recs = [0, 1].map((i) => ({ ...emptyRecord(i, i * 10, i + 1), fetched: 8, duplicates: 2, unique: 6, rangeFaults: 3, retries: i }));
    live.apply([{ kind: 'begin', config: cfg, start: 0x40000000, pages: 256 }, ...recs.map((rec) => ({ kind: 'batch' as const, rec, wallMs: 1, simMs: 0.1 }))]);
    expect(live.counters).toMatchObject({ batches: 2, fetched: 16, duplicates: 4, unique: 12, retries: 1 });
    expect(live.series.coalescing).toEqual([2, 2]);
    expect(live.series.retriesTotal).toEqual([0, 1]);
    const result: RunResult = {
      config: { ...cfg, batchSize: Infinity }, ok: true, error: null, wallMs: 5, rounds: 3, faultRounds: 2, totals: totals(recs), records: recs,
      storm: { ops: 0, byKind: {} }, verify: { checked: 10, mismatches: 0 }, faultsPerSec: 1, stalePfns: 0,
    };
    const back = importJson(exportJson(labReport([result], 'gpu', 'ua')));
    expect(back.runs[0]).toEqual(result);
    expect(() => importJson('{"runs":[{}]}')).toThrow(/not a run result/);
    expect(() => importJson('[]')).toThrow(/no "runs"/);
  });
});
