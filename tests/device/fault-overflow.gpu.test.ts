/**
 * Which records an overflowing fault ring keeps (FaultQueue's spill): the lowest by (uTLB,
 * page, access) of all the round wrote, the same every run, not whichever of the GPU's
 * threads reached the ring first — so an experiment whose rounds overflow replays from its
 * seed.
 */
import { describe, expect } from 'vitest';
import { FaultQueue, type FaultRecord } from '../../src/device/fault-queue.js';
import { faultSourceOf, MirrorEngine, WORDS_PER_PAGE } from '../../src/device/mirror-engine.js';
import { gpuTest as test } from '../support/gpu.js';

const order = (f: FaultRecord): [number, number] => [f.source, f.page];

describe('fault ring overflow', () => {
  test('a round that writes 48 records into a ring of 12 keeps the 12 lowest by (uTLB, page), in that order, every time', async ({ gpu }) => {
    const base = 2 ** 33 + 7;
    const n = 48;
    const sources = 3;
    // Every page misses; each reports through its workgroup's uTLB (8 pages a workgroup,
    // workgroup k as uTLB k % 3): uTLB 0 has pages 0-7 and 24-31, so the 12 kept are those
    // 8 and 24-27 — not the first 12 pages, which is what the first-written order gives.
    const all = Array.from({ length: n }, (_, p) => ({ source: faultSourceOf(p * WORDS_PER_PAGE, sources), page: base + p }));
    const want = all.sort((a, b) => a.source - b.source || a.page - b.page).slice(0, 12);
    expect(want.map((r) => r.page - base)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 24, 25, 26, 27]);
    for (let run = 0; run < 3; run++) {
      const e = await MirrorEngine.create(gpu.device, { apertureSlots: 256, deviceSlots: 64, faultCapacity: 12, faultSources: sources });
      try {
        const cmd = e.createCommand({ op: 'read', page: base, npages: n });
        const r = await e.runRound(cmd);
        expect(r.overflow).toBe(true);
        expect(r.faults.map(order)).toEqual(want.map((x) => [x.source, x.page]));
        expect(r.faults.every((f) => f.access === 'read' && !f.protection)).toBe(true);
        expect(e.faults.stats).toMatchObject({ overflows: 1, spills: 0 });
      } finally {
        e.destroy();
      }
    }
  });

  test('a hand-written ring: the lowest by (uTLB, page, access) of what was written; past spill × capacity, a spill', async ({ gpu }) => {
    const q = new FaultQueue(gpu.device, 3, 'fault buffer', undefined, 2); // 6 records held, 3 delivered
    try {
      expect(q.slots).toBe(6);
      const ring = new Uint32Array(4 + 6 * 4);
      ring.set([5, 0, 0, 0]); // put = 5: 5 written, 3 kept, overflow
      ring.set([9, 0, 1, 2], 4); // uTLB 2, page 9, read
      ring.set([4, 1, 2, 1], 8); // uTLB 1, page 2^32 + 4, write
      ring.set([8, 0, 2 | 0x100, 1], 12); // uTLB 1, page 8, write (protection)
      ring.set([8, 0, 1, 1], 16); // uTLB 1, page 8, read
      ring.set([3, 0, 3, 2], 20); // uTLB 2, page 3, atomic
      gpu.device.queue.writeBuffer(q.buffer, 0, ring);
      const b = await q.fetch();
      expect(b.overflow).toBe(true);
      expect(b.records).toEqual([
        { page: 8, access: 'read', source: 1, protection: false },
        { page: 8, access: 'write', source: 1, protection: true },
        { page: 2 ** 32 + 4, access: 'write', source: 1, protection: false },
      ]);
      expect(q.stats).toMatchObject({ drains: 1, records: 3, overflows: 1, spills: 0 });
      // put = 7 > 6 held: the kernels dropped one; the 3 kept come from the 6 there.
      ring.set([7, 1, 0, 0]);
      ring.set([1, 0, 1, 3], 24); // uTLB 3, page 1, read: the sixth held
      gpu.device.queue.writeBuffer(q.buffer, 0, ring);
      const c = await q.fetch();
      expect(c.records.map((f) => [f.source, f.page])).toEqual([[1, 8], [1, 8], [1, 2 ** 32 + 4]]);
      expect(q.stats).toMatchObject({ drains: 2, overflows: 2, spills: 1 });
    } finally {
      q.destroy();
    }
  });
});
