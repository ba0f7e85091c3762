/** The service pass as uvm_parent_gpu_service_replayable_faults steps it (pure). */
import { describe, expect, it } from 'vitest';
import { ServicePass, uvmParams, UVM_VERSIONS } from '../../src/policy/index.js';

const limits = (replayPolicy: 'batch-flush' | 'batch' | 'once' | 'block' = 'batch-flush') => ({ ...uvmParams(), replayPolicy });

describe('ServicePass', () => {
  it('fetches 20 batches a pass, not a 21st', () => {
    const p = new ServicePass(limits());
    let n = 0;
    while (p.canFetch()) {
      p.batchDone({ fetched: 256, duplicates: 0, throttled: false });
      n++;
    }
    expect(n).toBe(20);
  });
  it('stops after the 5th batch with throttled faults', () => {
    const p = new ServicePass(limits());
    for (let i = 0; i < 4; i++) p.batchDone({ fetched: 10, duplicates: 0, throttled: true });
    expect(p.canFetch()).toBe(true);
    p.batchDone({ fetched: 10, duplicates: 0, throttled: false });
    expect(p.canFetch()).toBe(true); // a batch without throttled faults does not count
    p.batchDone({ fetched: 10, duplicates: 0, throttled: true });
    expect(p.canFetch()).toBe(false);
    expect(p.batches).toBe(6);
  });
  it('re-reads PUT only above 50 % duplicates (num_duplicate_faults * 100 > num_cached_faults * 50)', () => {
    const p = new ServicePass(limits());
    expect(p.batchDone({ fetched: 256, duplicates: 128, throttled: false })).toEqual({ replay: true, flush: 'cached-put' });
    expect(p.batchDone({ fetched: 256, duplicates: 129, throttled: false })).toEqual({ replay: true, flush: 'update-put' });
  });
  it('ONCE replays at the end of the pass; a pass without replays issues one', () => {
    const once = new ServicePass(limits('once'));
    expect(once.batchDone({ fetched: 1, duplicates: 0, throttled: false }).replay).toBe(false);
    expect(once.end()).toBe(true);
    const batch = new ServicePass(limits('batch'));
    expect(batch.batchDone({ fetched: 1, duplicates: 0, throttled: false })).toEqual({ replay: true, flush: 'none' });
    expect(batch.end()).toBe(false);
  });
});

describe('uvmParams', () => {
  it('names the driver: 590 by default, 575 on request, with NVIDIA\'s defaults', () => {
    expect(UVM_VERSIONS).toEqual(['575', '590']);
    expect(uvmParams().version).toBe('590');
    const p = uvmParams('575');
    expect(p).toMatchObject({ faultBatchCount: 256, maxBatchesPerService: 20, maxThrottlePerService: 5, replayUpdatePutRatio: 50, prefetchThreshold: 51, bigPagePages: 16, cpuFaultPages: 16 });
    expect(p.accessCounters).toMatchObject({ migrationEnabled: false, granularityPages: 512, threshold: 256 });
    expect(p.thrashing).toMatchObject({ threshold: 3, pinThreshold: 10, lapseNs: 500_000, maxResets: 4 });
  });
  it('an unknown version is an error naming it', () => {
    expect(() => uvmParams('560')).toThrow(/'560' does not exist/);
  });
});
