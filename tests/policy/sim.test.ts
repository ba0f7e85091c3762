/**
 * Known results reproduced on small sizes with the pure simulator, and determinism.
 * Figures printed by these tests are the honest numbers of this model (see the report).
 */
import { describe, expect, it } from 'vitest';
import { fc, test as fcTest } from '@fast-check/vitest';
import {
  BUILTIN_POLICIES, COST_MODELS, computeNs, DEFAULT_COST, FLAT, GTX1080, MEASURED, PAGE_SIZE, TRACE_BASE, transferRunsNs, UVM_SMART, builtinPolicy, makeCost, pingPong,
  randomTouch, simulate, streaming, transferNs, type SimResult, type TraceRecord,
} from '../../src/policy/index.js';

function run(name: string, trace: TraceRecord[], oversubscription = 1): SimResult {
  return simulate(trace, { policy: builtinPolicy(name)!, oversubscription });
}

describe('cost model', () => {
  it('names its sources\' numbers: 45 µs fault, 16 GB/s, 150 µs launch; 12 µs a group on a GTX 1080', () => {
    expect(UVM_SMART).toMatchObject({ faultGroupNs: 45_000, bandwidthBytesPerSec: 16_000_000_000, launchNs: 150_000, transfer: 'curve', curveA: 12, curveB: 0.07292 });
    expect(GTX1080.faultGroupNs).toBe(12_000);
    expect(DEFAULT_COST).toBe(UVM_SMART);
    // The flat model stays by name: 4096 B at 16 B/ns.
    expect(COST_MODELS.flat).toBe(FLAT);
    expect(transferNs(FLAT, PAGE_SIZE)).toBe(256);
    expect(transferNs(FLAT, 2 * 1024 * 1024)).toBe(131_072);
  });
  it('charges UVM_Smart\'s size curve (calculate_transfer_time): 4 KB ≈ 2.2 GB/s, 64 KB ≈ 10.4, 256 KB ≈ 11.6, halved from 2 MB', () => {
    const gibps = (bytes: number) => bytes / transferNs(UVM_SMART, bytes) / 1.073741824; // B/ns -> GiB/s
    expect(gibps(4096)).toBeCloseTo(2.17, 1);
    expect(gibps(64 * 1024)).toBeCloseTo(10.4, 1);
    expect(gibps(256 * 1024)).toBeCloseTo(11.6, 1);
    expect(gibps(2 * 1024 * 1024 - 4096)).toBeGreaterThan(11.9);
    expect(gibps(2 * 1024 * 1024)).toBeCloseTo(gibps(2 * 1024 * 1024 - 4096) / 2, 1);
    // (2a/π·atan(0.07292·4) GiB/s for 4096 B, by hand)
    expect(transferNs(UVM_SMART, 4096)).toBe(Math.ceil(4096 / ((24 / Math.PI) * Math.atan(0.07292 * 4) * 1.073741824)));
  });
  it('charges one transfer per contiguous run: 16 scattered pages cost more than one 16-page run', () => {
    const run16 = Float64Array.from({ length: 16 }, (_, i) => i);
    const scattered = Float64Array.from({ length: 16 }, (_, i) => i * 2);
    expect(transferRunsNs(UVM_SMART, run16, 16)).toBe(transferNs(UVM_SMART, 16 * PAGE_SIZE));
    expect(transferRunsNs(UVM_SMART, scattered, 16)).toBe(16 * transferNs(UVM_SMART, PAGE_SIZE));
    expect(transferRunsNs(UVM_SMART, scattered, 16)).toBeGreaterThan(4 * transferRunsNs(UVM_SMART, run16, 16));
    // Order does not matter; the flat model charges bytes alone.
    expect(transferRunsNs(UVM_SMART, run16.slice().reverse(), 16)).toBe(transferRunsNs(UVM_SMART, run16, 16));
    expect(transferRunsNs(FLAT, scattered, 16)).toBe(transferRunsNs(FLAT, run16, 16));
  });
  it('the measured model is a per-batch plus per-fault line through nvprof\'s groups (2 faults 40 µs, 27 faults 69 µs)', () => {
    const at = (n: number) => MEASURED.faultGroupNs + n * MEASURED.faultNs;
    expect(at(2)).toBe(40_000);
    expect(at(27)).toBe(69_000);
  });
  it('a roofline kernel charge at the GTX 1080 Ti\'s 484 GB/s', () => {
    expect(computeNs(UVM_SMART, 484_000)).toBe(1_000);
    expect(computeNs(makeCost(UVM_SMART, { gpuMemBytesPerSec: 0 }), 1 << 20)).toBe(0);
  });
  it('refuses non-integer ns', () => {
    expect(() => makeCost(UVM_SMART, { faultGroupNs: 1.5 })).toThrow(RangeError);
  });
  it('charges a far fault group, its copy and a launch to the virtual clock, exactly', () => {
    // One device read of one page: launch 150 µs, fault group 45 µs, one 4 KiB transfer.
    const r = run('first-touch', [{ time: 0, addr: TRACE_BASE, access: 0, proc: 0 }]);
    expect(r.simTimeNs).toBe(150_000 + 45_000 + transferNs(UVM_SMART, PAGE_SIZE));
    expect(r.bytesToDevice).toBe(PAGE_SIZE);
  });
});

describe('known result: CPU/device ping-pong', () => {
  const trace = pingPong(2000, { intervalNs: 10_000 });
  const ft = run('first-touch', trace);
  const thrash = run('thrashing', trace);
  const minLife = run('min-lifetime', trace);
  const backoff = run('backoff', trace);

  it('thrashes under first touch', () => {
    expect(ft.thrashingEvents).toBeGreaterThan(1000);
    expect(ft.migrationsToDevice).toBeGreaterThan(500);
  });
  it('does not under NVIDIA thrashing detection: throttles, pins after 10, then maps remotely', () => {
    expect(thrash.thrashingEvents).toBeLessThan(ft.thrashingEvents / 50);
    expect(thrash.policyStats.pins).toBe(1);
    // procfs num_throttle counts every throttled fault: the device's later accesses to the
    // page fault again while it naps (they are not held behind it), so at least the 10 new
    // throttles that lead to the pin.
    expect(thrash.policyStats.throttles).toBeGreaterThanOrEqual(10);
    expect(thrash.bytesToDevice).toBeLessThan(ft.bytesToDevice / 25);
  });
  it('does not under the minimum lifetime (nor the backoff)', () => {
    expect(minLife.thrashingEvents).toBe(0);
    expect(backoff.thrashingEvents).toBe(0);
    expect(minLife.migrationsToDevice).toBeLessThan(ft.migrationsToDevice / 10);
  });
});

describe('known result: tree prefetch on streaming', () => {
  it.for([100, 1_000])('cuts far faults by at least half against first touch (a page every %s ns)', (gapNs) => {
    const trace = streaming(8192, { gapNs });
    const ft = run('first-touch', trace);
    const tree = run('first-touch+tree', trace);
    expect(tree.farFaults * 2).toBeLessThanOrEqual(ft.farFaults);
    expect(tree.bytesToDevice).toBe(ft.bytesToDevice); // nothing wasted on a pure stream
    expect(tree.prefetchHits).toBe(tree.prefetchedPages);
  });
});

describe('finding: a burst of block-aligned 256-fault batches', () => {
  it('gets nothing from the tree: 256 of 512 leaves is 50 %, not > 51 %', () => {
    const trace = streaming(4096, { gapNs: 0 }); // every access due at once: batches of 256
    const ft = run('first-touch', trace);
    const tree = run('first-touch+tree', trace);
    expect(ft.faultGroups).toBe(16);
    expect(tree.farFaults).toBe(ft.farFaults);
    expect(tree.prefetchedPages).toBe(0);
  });
});

/** 3 of every 4 big pages (64 KiB) touched, `passes` times: dense enough to trigger the tree. */
function sparseStream(pages: number, passes: number, gapNs = 1_000): TraceRecord[] {
  const out: TraceRecord[] = [];
  let k = 0;
  for (let p = 0; p < passes; p++) {
    for (let i = 0; i < pages; i++) {
      if (Math.floor(i / 16) % 4 !== 3) out.push({ time: k++ * gapNs, addr: TRACE_BASE + i * PAGE_SIZE, access: 0, proc: 0 });
    }
  }
  return out;
}

describe('known result: prefetch and LRU eviction under 1.5x oversubscription', () => {
  it('a stream evicts as much with prefetch as without; prefetch only removes faults', () => {
    const trace = streaming(8192, { passes: 2 });
    const lru = run('first-touch+lru', trace, 1.5);
    const tree = run('first-touch+tree+lru', trace, 1.5);
    expect(lru.evictions).toBeGreaterThan(0);
    expect(tree.evictions).toBe(lru.evictions);
    expect(tree.bytesToHost).toBe(lru.bytesToHost);
    expect(tree.farFaults).toBeLessThan(lru.farFaults);
  });
  it('a sparse stream: prefetch brings pages never used, which costs evictions of used ones', () => {
    const trace = sparseStream(8192, 2);
    const lru = run('first-touch+lru', trace, 1.5);
    const tree = run('first-touch+tree+lru', trace, 1.5);
    expect(tree.bytesToDevice).toBeGreaterThan(lru.bytesToDevice);
    expect(tree.evictedPages).toBeGreaterThan(lru.evictedPages);
    expect(tree.prefetchHits).toBeLessThan(tree.prefetchedPages); // wasted prefetches
    // Even at 1x the unused prefetches force evictions that first touch never needs.
    expect(run('first-touch+tree+lru', trace, 1).evictions).toBeGreaterThan(0);
    expect(run('first-touch+lru', trace, 1).evictions).toBe(0);
  });
});

describe('determinism', () => {
  it('same seed, same simulated results (every built-in)', () => {
    for (const name of Object.keys(BUILTIN_POLICIES)) {
      const a = simulate(randomTouch(7, 2048, 4000), { policy: builtinPolicy(`${name}+tree+lru`)!, oversubscription: 2 });
      const b = simulate(randomTouch(7, 2048, 4000), { policy: builtinPolicy(`${name}+tree+lru`)!, oversubscription: 2 });
      expect(b).toEqual(a);
    }
  });
  it('the same policy object gives the same results when rerun (reset)', () => {
    const p = builtinPolicy('thrashing+tree')!;
    const trace = randomTouch(3, 1024, 3000, { cpuShare: 0.4 });
    expect(simulate(trace, { policy: p })).toEqual(simulate(trace, { policy: p }));
  });

  const names = Object.keys(BUILTIN_POLICIES);
  fcTest.prop([
    fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    fc.constantFrom(...names),
    fc.constantFrom('', '+tree', '+lfu', '+tree+mru', '+fifo'),
    fc.constantFrom(1, 1.5, 2, 3),
  ], { numRuns: 40 })('any seed, policy, oversubscription: replays exactly and respects capacity',
    (seed, name, mods, over) => {
      const trace = randomTouch(seed, 1500, 1500, { cpuShare: 0.3 });
      const a = simulate(trace, { policy: builtinPolicy(name + mods)!, oversubscription: over });
      const b = simulate(trace, { policy: builtinPolicy(name + mods)!, oversubscription: over });
      expect(b).toEqual(a);
      const resident = (a.bytesToDevice - a.bytesToHost) / PAGE_SIZE;
      expect(resident).toBeGreaterThanOrEqual(0);
      expect(resident).toBeLessThanOrEqual(a.capacityPages);
      expect(Number.isSafeInteger(a.simTimeNs)).toBe(true);
      expect(a.prefetchHits).toBeLessThanOrEqual(a.prefetchedPages);
    });
});

describe('simulator input', () => {
  it('refuses an empty trace and a processor beyond the devices', () => {
    expect(() => simulate([], { policy: builtinPolicy('first-touch')! })).toThrow(/EINVAL/);
    expect(() => simulate([{ time: 0, addr: 0, access: 0, proc: 1 }], { policy: builtinPolicy('first-touch')!, devices: 1 }))
      .toThrow(/EINVAL/);
  });
});
