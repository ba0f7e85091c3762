/**
 * Page pools (aperture / device memory) and the fault buffer on their own.
 */
import { describe, expect } from 'vitest';
import { words } from '../../src/device/abi.js';
import { FaultQueue } from '../../src/device/fault-queue.js';
import { PagePool, runs } from '../../src/device/page-pool.js';
import { gpuTest as test } from '../support/gpu.js';
import { expectAllEqual, patternPage } from './mirror-helpers.js';


describe('PagePool', () => {
  test('alloc / free / ENOMEM / double free', ({ gpu }) => {
    const pool = new PagePool(gpu.device, { slots: 70, label: 'p' });
    try {
      const got = Array.from({ length: 70 }, () => pool.alloc());
      expect(got).toEqual(Array.from({ length: 70 }, (_, i) => i));
      expect(() => pool.alloc()).toThrowErrno('ENOMEM');
      pool.free(33);
      pool.free(5);
      expect(pool.alloc()).toBe(5); // lowest first
      expect(pool.alloc()).toBe(33);
      pool.free(69);
      expect(() => pool.free(69)).toThrowErrno('EINVAL');
      expect(() => pool.free(70)).toThrowErrno('EINVAL');
      expect(pool.stats).toMatchObject({ slots: 70, used: 69 });
    } finally {
      pool.destroy();
    }
  });

  test('huge blocks: aligned, from the top, freed whole', ({ gpu }) => {
    const pool = new PagePool(gpu.device, { slots: 1600 }); // 3 whole 512-blocks + a tail
    try {
      const small = pool.alloc();
      expect(small).toBe(0);
      expect(pool.allocHuge()).toBe(1024);
      expect(pool.allocHuge()).toBe(512);
      expect(() => pool.allocHuge()).toThrowErrno('ENOMEM'); // block 0 holds `small`
      expect(() => pool.free(600)).toThrowErrno('EINVAL'); // part of a huge block
      expect(() => pool.freeHuge(513)).toThrowErrno('EINVAL');
      pool.freeHuge(512);
      expect(pool.freeSlots).toBe(1600 - 1 - 512);
      pool.free(small);
      expect(pool.allocHuge()).toBe(512);
      expect(pool.allocHuge()).toBe(0);
      expect(pool.alloc()).toBe(1536); // the tail, past the huge blocks
    } finally {
      pool.destroy();
    }
  });

  test('upload + readback, one copy per contiguous run, bytes checked word by word', async ({ gpu }) => {
    const pool = new PagePool(gpu.device, { slots: 32 });
    try {
      pool.uploadPages([3, 4, 5, 9, 10, 20].map((s) => ({ slot: s, data: patternPage(s) })));
      expect(pool.stats.uploadWrites).toBe(3); // [3..5], [9..10], [20]
      const order = [9, 10, 3, 4, 5, 20, 20];
      const copies = pool.stats.copies;
      const got = await pool.readback(order);
      expect(pool.stats.copies - copies).toBe(4); // [9,10] [3,4,5] [20] [20]
      expect([...runs(order)]).toEqual([[0, 2], [2, 3], [5, 1], [6, 1]]);
      order.forEach((s, k) => expectAllEqual(words(got.subarray(k * 4096, (k + 1) * 4096)), words(patternPage(s)), `slot ${s}`));
      // upload of several pages at once
      const two = new Uint8Array(8192);
      two.set(patternPage(100), 0);
      two.set(patternPage(101), 4096);
      pool.upload(30, two);
      const back = await pool.readback([31, 30]);
      expectAllEqual(words(back.subarray(0, 4096)), words(patternPage(101)), 'slot 31');
      expectAllEqual(words(back.subarray(4096)), words(patternPage(100)), 'slot 30');
      expect(() => pool.upload(31, two)).toThrowErrno('EINVAL'); // past the end
      expect(() => pool.upload(0, new Uint8Array(100))).toThrowErrno('EINVAL');
    } finally {
      pool.destroy();
    }
  });

  test('copy between pools (migration) and within one; zero', async ({ gpu }) => {
    const sys = new PagePool(gpu.device, { slots: 16, label: 'aperture' });
    const vram = new PagePool(gpu.device, { slots: 16, label: 'vram' });
    try {
      sys.uploadPages([0, 1, 2].map((s) => ({ slot: s, data: patternPage(1000 + s) })));
      sys.copy(0, vram, 7, 3);
      vram.copy(8, vram, 12, 2); // overlapping pools: through a bounce buffer
      vram.zero(7);
      const got = await vram.readback([7, 8, 9, 12, 13]);
      expectAllEqual(words(got.subarray(0, 4096)), new Uint32Array(1024), 'zeroed');
      expectAllEqual(words(got.subarray(4096, 8192)), words(patternPage(1001)), 'copied 8');
      expectAllEqual(words(got.subarray(8192, 12288)), words(patternPage(1002)), 'copied 9');
      expectAllEqual(words(got.subarray(12288, 16384)), words(patternPage(1001)), 'copied 12');
      expectAllEqual(words(got.subarray(16384)), words(patternPage(1002)), 'copied 13');
      expect(() => sys.copy(15, vram, 0, 2)).toThrowErrno('EINVAL');
    } finally {
      sys.destroy();
      vram.destroy();
    }
  });

  test('sizes are bounded by maxStorageBufferBindingSize', ({ gpu }) => {
    const max = Math.floor(gpu.limits.maxStorageBufferBindingSize / 4096);
    expect(() => new PagePool(gpu.device, { slots: max + 1 })).toThrowErrno('EINVAL');
    expect(() => new PagePool(gpu.device, { slots: 0 })).toThrowErrno('EINVAL');
  });
});

describe('FaultQueue', () => {
  test('an empty ring drains to nothing; a hand-written one decodes, incl. high words', async ({ gpu }) => {
    const q = new FaultQueue(gpu.device, 4);
    try {
      expect(await q.fetch()).toEqual({ records: [], overflow: false });
      // put = 6 > capacity 4: 4 records, overflow.
      const ring = new Uint32Array(4 + 4 * 4);
      ring.set([6, 1, 0, 0]);
      ring.set([0xfffffffe, 7, 1, 0], 4);
      ring.set([5, 0, 2 | 0x100, 3], 8);
      ring.set([6, 1, 3, 7], 12);
      ring.set([7, 0, 1, 1], 16);
      gpu.device.queue.writeBuffer(q.buffer, 0, ring);
      const b = await q.fetch();
      expect(b.overflow).toBe(true);
      expect(b.records).toEqual([
        { page: 7 * 2 ** 32 + 0xfffffffe, access: 'read', source: 0, protection: false },
        { page: 5, access: 'write', source: 3, protection: true },
        { page: 2 ** 32 + 6, access: 'atomic', source: 7, protection: false },
        { page: 7, access: 'read', source: 1, protection: false },
      ]);
      // fetch reset put/overflow.
      expect(await q.fetch()).toEqual({ records: [], overflow: false });
      expect(q.stats).toMatchObject({ drains: 3, records: 4, overflows: 1 });
    } finally {
      q.destroy();
    }
  });
});
