/**
 * The lab's run, in-thread in Node (Dawn): the same module the page's worker runs behind
 * comlink. Records stream while the run goes; Step advances exactly one batch; Stop ends
 * the run at the next boundary with EINTR; the scenario's counters match the committed
 * expectation that the browser e2e test compares its worker run against.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toRunConfig, DEFAULT_SETTINGS } from '../../src/lab/config.js';
import { RunController } from '../../src/lab/controller.js';
import { runLab, type LabEvent } from '../../src/lab/session.js';
import { LiveRun, runCounters } from '../../src/lab/view.js';
import { WORKER_SCENARIO } from '../../src/lab/scenario.js';

const expected = JSON.parse(readFileSync(new URL('./worker-scenario.expected.json', import.meta.url), 'utf8')) as Record<string, unknown>;

describe('lab session in-thread', () => {
  it('the worker scenario gives the committed counters; batches arrive before the end', async () => {
    const events: LabEvent[] = [];
    const live = new LiveRun(WORKER_SCENARIO);
    const r = await runLab(WORKER_SCENARIO, (ev) => { events.push(...ev); live.apply(ev); }, new RunController());
    expect(r.ok).toBe(true);
    expect(runCounters(r)).toEqual(expected);
    const firstBatch = events.findIndex((e) => e.kind === 'batch');
    const end = events.findIndex((e) => e.kind === 'end');
    expect(firstBatch).toBeGreaterThanOrEqual(0);
    expect(firstBatch).toBeLessThan(end);
    expect(end).toBe(events.length - 1);
    expect(live.counters.batches).toBe(r.totals.batches);
    expect(live.series.fetched).toEqual(r.records.map((x) => x.fetched));
    expect(events.some((e) => e.kind === 'snapshot')).toBe(true);
  });

  it('Step from a held start advances exactly one batch; Stop ends with EINTR, keeping the batches', async () => {
    const ctl = new RunController(true);
    const batches: number[] = [];
    let heldWaiters: (() => void)[] = [];
    const held = (): Promise<void> => new Promise((res) => { heldWaiters.push(res); });
    const cfg = toRunConfig({ ...DEFAULT_SETTINGS, workload: 'random', sizeMiB: 0.25, window: 4096, batchSize: 8, writeFraction: 0 });
    const done = runLab(cfg, (ev) => {
      for (const e of ev) {
        if (e.kind === 'batch') batches.push(e.rec.index);
        if ((e.kind === 'state' && e.held) || e.kind === 'end') { const w = heldWaiters; heldWaiters = []; w.forEach((f) => f()); }
      }
    }, ctl, { snapshots: false });
    await held();
    expect(batches).toEqual([]);
    ctl.step();
    await held();
    expect(batches).toEqual([0]);
    ctl.step();
    await held();
    expect(batches).toEqual([0, 1]);
    ctl.stop();
    const r = await done;
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/^EINTR/);
    expect(r.records.map((x) => x.index)).toEqual([0, 1]);
  });
});
