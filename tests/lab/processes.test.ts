/**
 * Two processes on one device (the gallery's scenario): each process has its own buffer at
 * the same address of its own mm and its own mirror of the one dmirror device; their
 * workloads run at once, their batches reach the one driver interleaved, and they share the
 * device's memory (devmem), so under oversubscription the pages one process holds are pages
 * the other cannot get. In-thread in Node (Dawn), through the lab's session as the worker
 * runs it, and through the runner.
 */
import { describe, expect, it } from 'vitest';
import { runOne } from '../../src/experiment/runner.js';
import { checkSettings, DEFAULT_SETTINGS, toRunConfig } from '../../src/lab/config.js';
import { RunController } from '../../src/lab/controller.js';
import { SCENARIOS } from '../../src/lab/gallery.js';
import { runLab, type LabEvent } from '../../src/lab/session.js';
import { LiveRun } from '../../src/lab/view.js';
import { labPerfetto, labUvmEval } from '../../src/lab/trace-out.js';
import { checkTraceEvents } from '../../src/trace/perfetto.js';
import { parseUvmEval } from '../../src/trace/uvm-eval.js';

const scenario = SCENARIOS.find((s) => s.id === 'two-processes');

describe('two processes on one device', () => {
  it('the gallery has the scenario: one run of two processes sharing oversubscribed device memory, within the lab\'s bounds', () => {
    expect(scenario).toBeDefined();
    expect(scenario!.runs).toHaveLength(1);
    const s = scenario!.runs[0];
    expect(s.processes).toBe(2);
    expect(s.oversub).toBeGreaterThan(1);
    expect(checkSettings(s).errors).toEqual([]);
  });

  it('both processes make progress, each verified; every batch names its process; device memory is shared', async () => {
    const cfg = toRunConfig(scenario!.runs[0]);
    expect(cfg.processes).toBe(2);
    const events: LabEvent[] = [];
    const live = new LiveRun(cfg);
    const r = await runLab(cfg, (ev) => { events.push(...ev); live.apply(ev); }, new RunController(), { snapshots: true });
    expect(r.error).toBeNull();
    expect(r.ok).toBe(true);
    expect(r.processes).toHaveLength(2);
    const pages = cfg.sizeMiB * 256;
    for (const p of r.processes!) {
      expect(p.batches).toBeGreaterThan(0);
      expect(p.unique).toBeGreaterThan(0);
      expect(p.verify.mismatches).toBe(0);
      expect(p.verify.checked).toBeGreaterThan(0);
    }
    // Every record names its process; the records are the two servicers' together.
    expect(r.records.every((x) => x.proc === 0 || x.proc === 1)).toBe(true);
    expect(r.records.filter((x) => x.proc === 1).length).toBe(r.processes![1].batches);
    expect(r.totals.batches).toBe(r.processes![0].batches + r.processes![1].batches);
    expect(r.verify.mismatches).toBe(0);
    // One device's memory for both: what the policies moved in never exceeds it at once, so
    // with 1.5x oversubscription over both working sets not every page could come in.
    const device = Math.ceil((2 * pages) / (cfg.oversub ?? 1));
    expect(r.policy!.devicePages).toBe(device);
    expect(r.processes!.every((p) => (p.migratedIn ?? 0) > 0)).toBe(true);
    expect(r.policy!.mappedFrees).toBe(0);
    // The lab saw both: batch events of each process, its rounds' faults in its own half of
    // the strip (P1's pages from `pages` on), a strip of both buffers.
    const begin = events.find((e) => e.kind === 'begin');
    expect(begin).toMatchObject({ processes: 2, pages: 2 * pages });
    expect(live.perProcess.map((p) => p.batches)).toEqual(r.processes!.map((p) => p.batches));
    const rounds = events.filter((e): e is Extract<LabEvent, { kind: 'round' }> => e.kind === 'round');
    for (const proc of [0, 1]) {
      const mine = rounds.filter((e) => e.proc === proc).flatMap((e) => [...e.history.pages]);
      expect(mine.length).toBeGreaterThan(0);
      expect(mine.every((pg) => pg >= proc * pages && pg < (proc + 1) * pages)).toBe(true);
    }
    expect(live.snapshot!.gpu.length).toBe(2 * pages);
    expect(live.log.toArray().some((l) => l.startsWith('P1 batch'))).toBe(true);
    expect(r.lab!.batchSimNs).toHaveLength(r.records.length);
    // Perfetto: each process's batches on a thread of its own, nesting properly on both clocks.
    for (const axis of ['sim', 'wall'] as const) {
      const tf = labPerfetto([live], axis);
      expect(checkTraceEvents(tf)).toEqual([]);
      const tids = new Set(tf.traceEvents.filter((e) => e.ph === 'X' && e.name.startsWith('batch ')).map((e) => e.tid));
      expect(tids.size).toBe(2);
    }
    // uvm-eval: both processes' faults at their buffers' addresses (the same in each mm).
    const log = parseUvmEval(labUvmEval(live));
    expect(log.flatMap((b) => b.faults).every((f) => f.va >= 0x4000_0000 && f.va < 0x4000_0000 + pages * 4096)).toBe(true);
    // The batches interleave: P1's first batch comes before P0's last.
    const first1 = r.records.findIndex((x) => x.proc === 1);
    const last0 = r.records.map((x) => x.proc).lastIndexOf(0);
    expect(first1).toBeLessThan(last0);
  });

  it('the runner refuses two processes with an application workload or a handed-in policy object (EINVAL), running nothing', async () => {
    const base = toRunConfig({ ...DEFAULT_SETTINGS, processes: 2, stormRate: 0 });
    const app = await runOne({ ...base, workload: 'bfs' }, {});
    expect(app.ok).toBe(false);
    expect(app.error).toMatch(/^EINVAL: 2 processes run a synthetic workload each/);
    expect(app.records).toEqual([]);
    expect(checkSettings({ ...DEFAULT_SETTINGS, processes: 2, workload: 'bfs' }).errors.map((e) => e.field)).toEqual(['processes']);
    expect(checkSettings({ ...DEFAULT_SETTINGS, processes: 3 }).errors.map((e) => e.field)).toEqual(['processes']);
  });
});
