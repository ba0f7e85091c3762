/**
 * Eviction orders over 2 MiB-style chunks (here 4-page chunks): UVM's LRU and gpu_ext's FIFO,
 * MRU and LFU, each picking its own victim from one access history.
 */
import { describe, expect, it } from 'vitest';
import { commitPlan, CPU, EVICTIONS, Planner, Residency, type EvictionHooks } from '../../src/policy/index.js';

const CP = 4; // pages a chunk
const NONE = new Set<number>();

/** Plan moving `pages` into device 0 (evicting as needed), then commit it as done. */
function move(res: Residency, pages: number[], now: number, busy: ReadonlySet<number> = NONE, failed?: number[]): void {
  const planner = new Planner(res);
  planner.begin(0, now);
  planner.toDevice(0, pages, pages.length, 'fault', busy, failed ? { push: (p) => failed.push(p) } : null);
  commitPlan(res, planner.end());
}

/** Chunks A..D (0..3) fill the device; then uses A x3, D x2, B, A, C; then chunk 4 needs room. */
function victimOf(eviction: EvictionHooks | undefined): number {
  const res = new Residency({ pages: 5 * CP, capacityPages: 4 * CP, chunkPages: CP, ...(eviction ? { eviction } : {}) });
  let t = 0;
  for (let c = 0; c < 4; c++) {
    const pages = [0, 1, 2, 3].map((i) => c * CP + i);
    move(res, pages, t++);
  }
  for (const c of [0, 0, 0, 3, 3, 1, 0, 2]) res.chunkUsed(0, c, t++);
  move(res, [4 * CP], t++);
  const home = [0, 1, 2, 3].filter((c) => res.location(c * CP) === CPU);
  expect(home.length).toBe(1);
  expect(res.stats.evictions).toBe(1);
  expect(res.stats.evictedPages).toBe(CP);
  return home[0];
}

describe('eviction orders', () => {
  it('LRU (UVM default, no hooks) evicts the least recently used chunk: D', () => {
    expect(victimOf(undefined)).toBe(3);
    expect(victimOf(EVICTIONS.lru())).toBe(3);
  });
  it('FIFO evicts the first activated: A', () => {
    expect(victimOf(EVICTIONS.fifo())).toBe(0);
  });
  it('MRU evicts the most recently used: C', () => {
    expect(victimOf(EVICTIONS.mru())).toBe(2);
  });
  it('LFU evicts the least used, older first on ties: B', () => {
    // uses: A 1+4, B 1+1, C 1+1, D 1+2 -> B and C tie, B is older.
    expect(victimOf(EVICTIONS.lfu())).toBe(1);
  });

  it('never evicts a busy chunk; with nothing evictable the page fails over to the caller', () => {
    const res = new Residency({ pages: 2 * CP, capacityPages: CP, chunkPages: CP });
    move(res, [0, 1, 2, 3], 0);
    const failed: number[] = [];
    move(res, [CP], 1, new Set([0]), failed);
    expect(failed).toEqual([CP]);
    expect(res.stats.allocFailures).toBe(1);
    expect(res.usedPages(0)).toBe(CP);
  });

  it('refuses a victim the policy may not take (EINVAL naming the policy)', () => {
    const bad: EvictionHooks = { name: 'bad', pickVictim: () => 7 };
    const res = new Residency({ pages: 2 * CP, capacityPages: CP, chunkPages: CP, eviction: bad });
    move(res, [0, 1, 2, 3], 0);
    expect(() => move(res, [CP], 1)).toThrow(/EINVAL.*bad.*chunk 7/);
  });
});

describe('sub-chunk evictions (UVM_Smart random-4K, SL-64K)', () => {
  it('random-4K frees one page, SL-64K the LRU chunk\'s lowest 64 KiB block, LRU-2M the whole chunk', async () => {
    const { Residency } = await import('../../src/policy/residency.js');
    const { random4kEviction, sl64kEviction, lruEviction } = await import('../../src/policy/eviction.js');
    const run = (eviction: ReturnType<typeof lruEviction>) => {
      const r = new Residency({ pages: 1024, capacityPages: 512, eviction });
      move(r, Array.from({ length: 512 }, (_, i) => i), 0);
      move(r, [600], 1, new Set([1]));
      const home: number[] = [];
      for (let p = 0; p < 512; p++) if (r.location(p) !== 0) home.push(p);
      return { home, stats: r.stats };
    };
    expect(run(lruEviction()).home.length).toBe(512);
    expect(run(sl64kEviction()).home).toEqual(Array.from({ length: 16 }, (_, i) => i));
    const rnd = run(random4kEviction(7));
    expect(rnd.home.length).toBe(1);
    expect(run(random4kEviction(7)).home).toEqual(rnd.home); // seeded: the same page again
  });
});
