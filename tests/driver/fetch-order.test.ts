/**
 * Which faults a batch fetches (src/driver/fetch-order.ts): the oldest first, as UVM's
 * fetch_fault_buffer_entries reads from GET, in an order that does not depend on the GPU's
 * race on the ring. Pure: no GPU.
 */
import { describe, expect } from 'vitest';
import { fc, it } from '@fast-check/vitest';
import type { FaultRecord } from '../../src/device/fault-queue.js';
import { byAddress, FaultAges } from '../../src/driver/fetch-order.js';

const rec = (page: number, source = 0): FaultRecord => ({ page, access: 'read', source, protection: false });

/**
 * BATCH_FLUSH passes: each round the GPU faults on `faulting(round)` (every page a waiting
 * invocation needs); the service fetches one batch, the rest is flushed. Returns the round
 * each page was first fetched in.
 */
function passes(rounds: number, batch: number, faulting: (round: number, fetched: ReadonlySet<number>) => number[]): Map<number, number> {
  const ages = new FaultAges();
  const first = new Map<number, number>();
  const everFetched = new Set<number>();
  for (let round = 1; round <= rounds; round++) {
    const buffer = faulting(round, everFetched).flatMap((p) => [rec(p, p % 3), rec(p, (p + 1) % 3)]);
    ages.order(buffer, round);
    const fetched = buffer.splice(0, batch).sort(byAddress);
    ages.fetched(fetched);
    for (const f of fetched) {
      everFetched.add(f.page);
      if (!first.has(f.page)) first.set(f.page, round);
    }
  }
  return first;
}

describe('fetch order (fetch_fault_buffer_entries: oldest first)', () => {
  it('a page that keeps faulting behind many lower ones is fetched within (older faults / batch) passes', () => {
    // backprop's weight update at 110 %: every invocation reads hidden_delta, the buffer's
    // last page; 1,000 lower pages fault every round because the eviction keeps taking them
    // back (here: they never stop faulting). Ordered by address the last page never made a
    // batch; oldest first it is fetched once the faults that were there with it are.
    const lows = Array.from({ length: 1000 }, (_, i) => i);
    const first = passes(20, 256, () => [...lows, 4608]);
    // 2,002 records a round (two uTLBs a page), 256 a batch: the round-1 faults take 8 passes.
    expect(first.get(4608)).toBe(Math.ceil(2002 / 256));
    expect(first.get(4608)).toBeLessThanOrEqual(8);
  });

  it('new faults queue behind the waiting ones (FIFO), ties by address', () => {
    const first = passes(6, 4, (round, done) => {
      const pages = round === 1 ? [10, 11, 12, 13, 14, 15] : [0, 1, 2, 3, 10, 11, 12, 13, 14, 15];
      return pages.filter((p) => !done.has(p));
    });
    // Round 1: 10, 11 (2 records each); round 2: the waiting 12, 13 before the new 0-3.
    expect(first.get(10)).toBe(1);
    expect(first.get(12)).toBe(2);
    expect(first.get(14)).toBe(3);
    expect(first.get(0)).toBe(4);
  });

  it('the order does not depend on the order the GPU wrote the ring in', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ page: fc.integer({ min: 0, max: 40 }), source: fc.integer({ min: 0, max: 7 }) }), { maxLength: 60 }),
      fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 20 }),
      fc.integer(), (raw, waiting, seed) => {
        const records = raw.map((r) => rec(r.page, r.source));
        const shuffled = fc.sample(fc.shuffledSubarray(records, { minLength: records.length, maxLength: records.length }), { seed, numRuns: 1 })[0];
        const a = new FaultAges();
        const b = new FaultAges();
        // The same history (pages waiting since round 1), then the round's buffer in two orders.
        a.order(waiting.map((p) => rec(p)), 1);
        b.order(waiting.map((p) => rec(p)), 1);
        expect(b.order(shuffled.slice(), 2)).toEqual(a.order(records.slice(), 2));
      },
    ));
  });

  it('a fetched page forgets its age; a page that stopped faulting does too', () => {
    const ages = new FaultAges();
    ages.order([rec(1), rec(2), rec(3)], 1);
    ages.fetched([rec(1)]);
    expect(ages.since(1)).toBeUndefined();
    expect(ages.since(2)).toBe(1);
    ages.order([rec(2), rec(1)], 2);
    expect(ages.since(1)).toBe(2);
    expect(ages.since(3)).toBeUndefined(); // no longer faulting: serviced another way
  });
});
