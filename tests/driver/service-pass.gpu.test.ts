/**
 * NVIDIA UVM's service-loop limits on the real fault path (uvm_gpu_replayable_faults.c,
 * uvm_parent_gpu_service_replayable_faults): a pass services at most 20 batches (and stops
 * after 5 with throttled faults); what is left waits in the fault buffer for the next pass.
 */
import { describe, expect } from 'vitest';
import { PAGE_SIZE } from '../../src/index.js';
import { mirrorTest } from '../support/mirror.js';
import { ANON, RW } from './machines.js';
import { pagesOf, WORDS } from './pages.js';

describe('service pass limits (replay once: one replay a pass)', () => {
  mirrorTest.override('machineOptions', { systemPages: 8192, aperturePages: 1024, devicePages: 512 });

  mirrorTest('the 21st batch waits for the next pass; every word still reads right', async ({ mirror, proc }) => {
    const n = 64;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, ANON);
    await proc.write(buf, pagesOf(n, (p) => 0x100 + p));
    // Batches of 2 faults: the first round's faults (at least one a page) need > 20 batches.
    mirror.setServicer({ batchSize: 2, replay: 'once', window: 4096 });
    const r = await mirror.read(buf, n);
    const got = new Uint32Array(r.data.buffer);
    for (let p = 0; p < n; p++) {
      expect(got[p * WORDS]).toBe(0x100 + p);
      expect(got[p * WORDS + WORDS - 1]).toBe(0x100 + p);
    }
    const recs = mirror.servicer.records;
    const byPass = new Map<number, number>();
    for (const rec of recs) byPass.set(rec.pass!, (byPass.get(rec.pass!) ?? 0) + 1);
    const first = Math.min(...byPass.keys());
    expect(byPass.get(first)).toBe(20); // the pass stopped at uvm_perf_fault_max_batches_per_service
    expect(recs[20].pass).toBe(first + 1); // the 21st batch: the next pass
    expect(recs[20].round).toBe(recs[19].round + 1); // after the pass's replay
    for (const c of byPass.values()) expect(c).toBeLessThanOrEqual(20);
  });

  mirrorTest('a limit of 21 batches services the 21st in the same pass', async ({ mirror, proc }) => {
    const n = 64;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, ANON);
    await proc.write(buf, pagesOf(n, (p) => p));
    mirror.setServicer({ batchSize: 2, replay: 'once', window: 4096, maxBatchesPerService: 21 });
    await mirror.read(buf, n);
    const recs = mirror.servicer.records;
    expect(recs[20].pass).toBe(recs[0].pass);
  });
});
