/**
 * The real runner on the GPU (Node only: it owns the process's default GPU): small runs of
 * the experiment's configs, measured through the fault service, verified word by word.
 */
import { describe, expect, it } from 'vitest';
import { BASE_CONFIG } from '../../src/experiment/cli.js';
import { openExperiment, runOne, stormKinds } from '../../src/experiment/runner.js';
import type { RunConfig } from '../../src/experiment/types.js';
import { SYNTHETIC_WORKLOADS } from '../../src/workloads/names.js';
import { RETRY_PROTOCOLS } from '../../src/driver/retry.js';

function config(c: Partial<RunConfig>): RunConfig {
  return { preset: 'test', ...BASE_CONFIG, sizeMiB: 0.5, ...c };
}

describe('experiment runner', () => {
  it('opens the GPU and names the adapter', async () => {
    const s = await openExperiment();
    expect(s.adapter.length).toBeGreaterThan(3);
    // close() would destroy the GPU the other tests of this file share: not here.
  });

  it('a run: per-batch records from the servicer, totals, verification clean', async () => {
    const r = await runOne(config({ workload: 'stream', writeFraction: 0.25 }), {});
    expect(r.error).toBeNull();
    expect(r.ok).toBe(true);
    expect(r.verify.mismatches).toBe(0);
    expect(r.verify.checked).toBeGreaterThan(128 * 1024);
    expect(r.records.length).toBeGreaterThan(0);
    expect(r.totals.batches).toBe(r.records.length);
    expect(r.totals.unique).toBeGreaterThan(0);
    expect(r.faultRounds).toBeGreaterThan(0);
    expect(r.rounds).toBe(r.faultRounds + 1);
    expect(r.faultsPerSec).toBeGreaterThan(0);
    expect(r.wallMs).toBeGreaterThan(0);
    expect(r.storm.ops).toBe(0);
  });

  it('the per-fault baseline services more range faults than coalescing', async () => {
    const on = await runOne(config({ workload: 'random', writeFraction: 0 }), {});
    const off = await runOne(config({ workload: 'random', writeFraction: 0, coalesce: false }), {});
    expect(on.ok && off.ok).toBe(true);
    expect(on.verify.mismatches + off.verify.mismatches).toBe(0);
    expect(off.totals.rangeFaults).toBeGreaterThan(on.totals.rangeFaults);
  });

  it('under a storm the workload still reads and writes only right values; protect only without writes', async () => {
    expect(stormKinds(config({ writeFraction: 0 }))).toContain('protect');
    expect(stormKinds(config({ writeFraction: 0.5 }))).not.toContain('protect');
    // reclaim and protect keep the contents whatever runs beside them (remap and cow race
    // with concurrent accessors: see the storm's notes), so the verification must be exact.
    const ro = await runOne(config({ workload: 'gather', writeFraction: 0, stormRate: 2000 }), { stormKinds: ['reclaim', 'protect'] });
    expect(ro.error).toBeNull();
    expect(ro.storm.ops).toBeGreaterThan(0);
    expect(ro.verify.mismatches).toBe(0);
    const rw = await runOne(config({ workload: 'random', writeFraction: 0.5, stormRate: 2000 }), { stormKinds: ['reclaim'] });
    expect(rw.error).toBeNull();
    expect(rw.storm.byKind.reclaim).toBeGreaterThan(0);
    expect(rw.verify.mismatches).toBe(0);
  });

  it('GPU writes and CPU stores to other words of the same pages both survive (per-word coherence) under a COW storm', async () => {
    // The storm's cow op stores a word back unchanged into pages the device is writing;
    // a refresh of the whole page would wipe the device's unwritten-back words.
    for (const workload of ['stream', 'random'] as const) {
      const r = await runOne(config({ workload, writeFraction: 0.5, stormRate: 5000, sizeMiB: 8 }), { stormKinds: ['cow'] });
      expect(r.error, workload).toBeNull();
      expect(r.storm.ops, workload).toBeGreaterThan(0);
      expect(r.verify.mismatches, workload).toBe(0);
    }
  });

  it('every workload is correct under every retry protocol (reads and writes, verified word by word)', async () => {
    // The synthetic ones (the application workloads are checked in tests/workloads/).
    for (const workload of SYNTHETIC_WORKLOADS) {
      for (const protocol of RETRY_PROTOCOLS) {
        const r = await runOne(config({ workload, protocol, writeFraction: 0.5, sizeMiB: 0.25 }), {});
        expect(r.error, `${workload}/${protocol}`).toBeNull();
        expect(r.verify.mismatches, `${workload}/${protocol}`).toBe(0);
        expect(r.verify.checked, `${workload}/${protocol}`).toBeGreaterThan(0);
        expect(r.totals.rangeFaults, `${workload}/${protocol}`).toBeGreaterThan(0);
      }
    }
  });
});
