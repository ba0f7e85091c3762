/**
 * Residency.touchDeviceRange (a command end's touches in one loop) against touchDevice page by
 * page: the same outcomes, stats, hit chunks (in order), lapsed remote mappings and round
 * counts, from states with device pages, prefetched pages, remote mappings with and without an
 * end, and pins with and without an end.
 */
import { describe, expect, it } from 'vitest';
import { CPU, PageList, Residency, TOUCH_FAULT, TOUCH_LOCAL, TOUCH_REMOTE } from '../../src/policy/index.js';
import { mulberry32 } from '../../src/sched/seeded.js';

const PAGES = 600;

/** Two residencies built by the same seeded moves, mappings and pins. */
function twins(seed: number): [Residency, Residency] {
  const make = (): Residency => {
    const rnd = mulberry32(seed);
    const r = new Residency({ pages: PAGES, devices: 2, capacityPages: PAGES, chunkPages: 64 });
    const toDev: number[] = [];
    const pre: number[] = [];
    for (let p = 0; p < PAGES; p++) {
      const x = rnd();
      if (x < 0.25) toDev.push(p);
      else if (x < 0.35) pre.push(p);
    }
    r.recordToDevice(0, toDev, 'fault', 0);
    r.recordToDevice(0, pre, 'prefetch', 0);
    r.recordToDevice(1, [1, 2, 3].filter((p) => r.location(p) === CPU), 'fault', 0);
    for (let p = 0; p < PAGES; p++) {
      if (r.location(p) !== CPU) continue;
      const x = rnd();
      if (x < 0.3) r.mapRemote(0, p, 0);
      else if (x < 0.5) r.mapRemote(0, p, 500 + Math.floor(rnd() * 1000));
      else if (x < 0.55) r.pin(p, 0, 0);
      else if (x < 0.6) r.pin(p, 500 + Math.floor(rnd() * 1000), rnd() < 0.5 ? 0 : -1);
      else if (x < 0.65) r.mapRemote(1, p, 0);
    }
    return r;
  };
  return [make(), make()];
}

describe('touchDeviceRange', () => {
  it('touches as touchDevice does, page by page', () => {
    let lapses = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const [a, b] = twins(seed);
      for (const [first, end, now] of [[0, PAGES, 1000], [37, 411, 1200], [100, 100, 1300], [0, PAGES, 5000]]) {
        // Page by page, as the command end did: the lapsed ones were remote before the touch and fault now.
        const hitsA: number[] = [];
        const lapsedA: number[] = [];
        let remoteA = 0;
        for (let p = first; p < end; p++) {
          const was = a.location(p) === CPU && a.mappedRemote(0, p);
          const t = a.touchDevice(0, p, now);
          if (t === TOUCH_REMOTE) remoteA++;
          else if (t === TOUCH_LOCAL) {
            const c = Math.floor(p / a.chunkPages);
            if (!hitsA.includes(c)) hitsA.push(c);
          } else if (t === TOUCH_FAULT && was) lapsedA.push(p);
        }
        const hits = new PageList(4);
        const lapsed = new PageList(4);
        const remoteB = b.touchDeviceRange(0, first, end, now, hits, lapsed);
        expect(remoteB).toBe(remoteA);
        expect(Array.from(hits.pages.subarray(0, hits.length))).toEqual(hitsA);
        expect(Array.from(lapsed.pages.subarray(0, lapsed.length))).toEqual(lapsedA);
        expect(b.stats).toEqual(a.stats);
        for (let p = 0; p < PAGES; p++) {
          expect([b.mappedRemote(0, p), b.remoteUntil(p), b.pinnedUntil(p), b.remoteAccesses(p)])
            .toEqual([a.mappedRemote(0, p), a.remoteUntil(p), a.pinnedUntil(p), a.remoteAccesses(p)]);
        }
        const take = (r: Residency): [number[], number[]] => {
          const pages = new PageList(4);
          const counts = { buf: new Uint32Array(4) };
          const n = r.takeRoundCounts(pages, counts);
          return [Array.from(pages.pages.subarray(0, n)), Array.from(counts.buf.subarray(0, n))];
        };
        expect(take(b)).toEqual(take(a));
        lapses += lapsedA.length;
      }
    }
    expect(lapses).toBeGreaterThan(0);
  });

  it('without round counts: the remote touches count, the round stays empty', () => {
    const [a, b] = twins(7);
    const hits = new PageList(4);
    const lapsed = new PageList(4);
    const withCounts = a.touchDeviceRange(0, 0, PAGES, 1000, hits, lapsed);
    hits.clear();
    lapsed.clear();
    expect(b.touchDeviceRange(0, 0, PAGES, 1000, hits, lapsed, false)).toBe(withCounts);
    expect(b.stats).toEqual(a.stats);
    const pages = new PageList(4);
    expect(b.takeRoundCounts(pages, { buf: new Uint32Array(4) })).toBe(0);
    expect(a.takeRoundCounts(pages, { buf: new Uint32Array(4) })).toBe(withCounts);
    // dropRoundCounts forgets a round as takeRoundCounts would, without handing it over.
    a.touchDeviceRange(0, 0, PAGES, 1100, hits, lapsed);
    a.dropRoundCounts();
    expect(a.takeRoundCounts(pages, { buf: new Uint32Array(4) })).toBe(0);
  });
});
