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
import { GpuState } from '../../src/lab/snapshot.js';
import { importPolicySource } from '../../src/lab/policy-module.js';
import type { RunConfig } from '../../src/experiment/types.js';

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
    const cfg = toRunConfig({ ...DEFAULT_SETTINGS, workload: 'random', sizeMiB: 0.25, window: 4096, batchSize: 8, writeFraction: 0, stormRate: 0 });
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

  /** Runs `cfg` in-thread; what the view folded, the device-resident cells of each snapshot, the result. */
  async function policyRun(cfg: RunConfig, opts: Parameters<typeof runLab>[3] = {}) {
    const live = new LiveRun(cfg);
    const device: number[] = [];
    let liveToDevice = 0;
    const r = await runLab(cfg, (ev) => {
      live.apply(ev);
      for (const e of ev) {
        if (e.kind === 'snapshot') device.push(e.snapshot.gpu.filter((x) => x === GpuState.device).length);
        if (e.kind === 'batch') liveToDevice += e.policy?.migrationsToDevice ?? 0;
      }
    }, new RunController(), opts);
    return { live, device, liveToDevice, r };
  }

  it('a migration policy migrates: device-resident pages on the strip, moves each way counted live; none moves nothing', async () => {
    const base = { ...DEFAULT_SETTINGS, workload: 'stream' as const, sizeMiB: 0.25, window: 4096 as const, batchSize: 4096, stormRate: 0 };
    const ft = await policyRun(toRunConfig({ ...base, policy: 'first-touch', oversub: 1 }));
    expect(ft.r.ok).toBe(true);
    expect(ft.r.verify.mismatches).toBe(0);
    expect(ft.r.policy?.bytesToDevice).toBeGreaterThan(0);
    expect(ft.liveToDevice).toBeGreaterThan(0); // per batch, before the end
    expect(Math.max(...ft.device)).toBeGreaterThan(0);
    expect(ft.live.counters.bytesToDevice).toBe(ft.r.policy?.bytesToDevice);
    expect(ft.live.counters.migrationsToDevice * 4096).toBe(ft.r.policy?.bytesToDevice);
    expect(ft.live.series.toDevice.length).toBe(ft.r.totals.batches);
    const none = await policyRun(toRunConfig(base));
    expect(none.r.ok).toBe(true);
    expect(none.r.policy).toBeUndefined();
    expect(none.liveToDevice).toBe(0);
    expect(Math.max(...none.device)).toBe(0);
    expect(none.live.counters).toMatchObject({ bytesToDevice: 0, bytesToHost: 0, migrationsToDevice: 0, thrashingEvents: 0 });
  });

  it("a user's policy module (plain JS text, as the page sends it) runs; a bad one is EINVAL naming the hook", async () => {
    const text = `export default { name: 'mine', decide() { /* prefilled MIGRATE: first touch */ } };`;
    const policy = await importPolicySource({ name: 'mine.mjs', text });
    expect(policy.name).toBe('mine');
    const cfg = toRunConfig({ ...DEFAULT_SETTINGS, workload: 'stream', sizeMiB: 0.25, window: 4096, batchSize: 4096, stormRate: 0, policy: 'mine.mjs', oversub: 2 });
    const run = await policyRun(cfg, { policy, snapshots: false });
    expect(run.r.ok).toBe(true);
    expect(run.r.policy?.policy).toBe('mine');
    expect(run.r.policy?.bytesToDevice).toBeGreaterThan(0);
    await expect(importPolicySource({ name: 'bad.js', text: 'export const policy = { name: "bad" };' })).rejects.toThrow(/missing hook decide/);
    await expect(importPolicySource({ name: 'p.ts', text: '' })).rejects.toThrow(/\.js, \.mjs/);
  });
});
