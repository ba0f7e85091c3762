/**
 * Access-counter delayed migration: NVIDIA (256 per 2 MiB region,
 * UVM_PERF_ACCESS_COUNTER_THRESHOLD_DEFAULT) and UVM_Smart/IPDPS'20 (8 per 64 KiB, scaled by
 * the region's round trips).
 */
import { describe, expect, it } from 'vitest';
import {
  ACCESS_READ, CPU, IPDPS20_ACCESS_COUNTERS, NVIDIA_ACCESS_COUNTERS, PolicyEngine, accessCounters,
  type MigrationPolicy,
} from '../../src/policy/index.js';

function engineFor(policy: MigrationPolicy): PolicyEngine {
  return new PolicyEngine(policy, { pages: 1024, capacityPages: 1024 });
}

/** One device fault on `page` (mapped remotely by the policy), then `n - 1` more remote reads,
 * each its own round with the counters read after it. The replayed fault counts as access 1. */
function access(e: PolicyEngine, page: number, n: number, t0 = 0): void {
  const pages = new Float64Array([page]);
  let t = t0;
  for (let i = 0; i < n; i++, t += 1000) {
    const touch = e.residency.touchDevice(0, page, t);
    if (touch === 2) {
      e.commit(e.serviceGroup(0, pages, new Uint8Array([ACCESS_READ]), 1, 1, t).plan); // the moves done as planned
      expect(e.residency.touchDevice(0, page, t)).toBe(1); // replay: remote
    }
    e.commit(e.serviceAccessCounters(0, t).plan);
  }
}

describe('access counters: NVIDIA, 256 per 2 MiB', () => {
  it('parameters', () => {
    expect(NVIDIA_ACCESS_COUNTERS).toEqual({ regionPages: 512, threshold: 256, scaleByRoundTrips: false, subregionPages: 16 });
  });

  it('migrates the region on the 256th access, not the 255th', () => {
    const e = engineFor(accessCounters(NVIDIA_ACCESS_COUNTERS));
    access(e, 3, 255);
    expect(e.residency.location(3)).toBe(CPU);
    expect(e.stats.accessCounterMigrations).toBe(0);
    access(e, 3, 1, 1_000_000);
    expect(e.residency.location(3)).toBe(0);
    // The notified region's accessed 64 KiB sub-region came (uvm_gpu_access_counters.c), not
    // the whole 2 MiB, nor anything of the next region.
    expect(e.stats.accessCounterMigrations).toBe(16);
    expect(e.residency.location(15)).toBe(0);
    expect(e.residency.location(16)).toBe(CPU);
    expect(e.residency.location(511)).toBe(CPU);
    expect(e.residency.location(512)).toBe(CPU);
  });

  it('counts the region, not the page: 128 + 128 accesses on two pages of it', () => {
    const e = engineFor(accessCounters(NVIDIA_ACCESS_COUNTERS));
    access(e, 10, 128);
    access(e, 20, 127, 1_000_000);
    expect(e.residency.location(10)).toBe(CPU);
    access(e, 20, 1, 2_000_000);
    expect(e.residency.location(10)).toBe(0);
  });

  it('a notification migrates each accessed 64 KiB sub-region of the 2 MiB region, and only those', () => {
    const e = engineFor(accessCounters(NVIDIA_ACCESS_COUNTERS));
    access(e, 5, 100); // sub-region 0
    access(e, 300, 156, 1_000_000); // sub-region 18 (pages 288..303): the 256th access
    const home = (p: number) => e.residency.location(p) === CPU;
    expect(home(5) || home(0) || home(15) || home(288) || home(303)).toBe(false);
    expect(home(16) && home(100) && home(287) && home(304) && home(511)).toBe(true);
    expect(e.stats.accessCounterMigrations).toBe(32);
  });
});

describe('access counters: IPDPS\'20, 8 per 64 KiB scaled by round trips', () => {
  it('parameters', () => {
    expect(IPDPS20_ACCESS_COUNTERS).toEqual({ regionPages: 16, threshold: 8, scaleByRoundTrips: true, subregionPages: 16 });
  });

  it('migrates 64 KiB on the 8th access, then needs 16 after one round trip', () => {
    const e = engineFor(accessCounters(IPDPS20_ACCESS_COUNTERS));
    access(e, 40, 7);
    expect(e.residency.location(40)).toBe(CPU);
    access(e, 40, 1, 100_000);
    expect(e.residency.location(40)).toBe(0);
    expect(e.stats.accessCounterMigrations).toBe(16);
    expect(e.residency.location(47)).toBe(0);
    expect(e.residency.location(48)).toBe(CPU);
    // Send the region home (one round trip), then it takes 8 x (1 + 1) = 16.
    const region = Array.from({ length: 16 }, (_, i) => 32 + i);
    e.residency.recordHome(region, 200_000);
    access(e, 40, 15, 300_000);
    expect(e.residency.location(40)).toBe(CPU);
    access(e, 40, 1, 400_000);
    expect(e.residency.location(40)).toBe(0);
  });
});
