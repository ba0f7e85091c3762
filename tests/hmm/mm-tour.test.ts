import { describe, expect, it } from 'vitest';
import { mmTour } from '../../src/experiment/mm-tour.js';

describe('experiment: retry protocols under CPU invalidations (mm preset)', () => {
  it('seq never commits a stale pfn; the v5.2 valid flag commits one for every raced fault', async () => {
    const [seq, valid] = await mmTour({ pages: 64, rounds: 200, seed: 3 });
    expect(seq.scheme).toBe('seq');
    expect(seq.committed).toBe(200);
    expect(seq.stalePfnsCommitted).toBe(0);
    expect(seq.retries).toBeGreaterThan(50); // every raced fault is retried
    expect(valid.committed).toBe(200);
    expect(valid.stalePfnsCommitted).toBe(seq.retries); // the same races, all missed (A-B-A)
  });
});
