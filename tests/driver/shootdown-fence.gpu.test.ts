/**
 * The shootdown's order (MirrorPt.shootdown, dmirror_interval_invalidate → dmirror_do_update):
 * the fence may be taken before the zap is pushed to the GPU and the bookkeeping done while
 * it is pending, but (1) the zapped entry is on the GPU before the callback waits, so a kernel
 * submitted meanwhile — one that pushes nothing itself — faults instead of reading through
 * the old slot, and (2) the slot is released for reuse only once the fence resolved. The
 * fence is held open by the test (a kernel "in flight" for as long as it likes), so nothing
 * here depends on timing.
 */
import { describe, expect } from 'vitest';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { mirrorTest } from '../support/mirror.js';
import { pagesOf, WORDS } from './pages.js';

describe('shootdown: fence, zap and release', () => {
  mirrorTest('a kernel submitted while the fence is pending sees the zap (its own flush pushes it); the slot is released only after the fence', async ({ proc, mirror }) => {
    const a = await proc.mmap(0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    await proc.write(a, pagesOf(2, (p) => 0x5100 + p));
    await mirror.read(a, 2); // both pages mapped through aperture slots
    const e = mirror.engine;
    const page = a / PAGE_SIZE;
    const old = e.pt.lookup(page);
    expect(old).not.toBeNull();
    const free = mirror.aperture.freeSlots;

    // The fence forced (as when a round may be running) and held until `open()`.
    let reached!: () => void;
    const atFence = new Promise<void>((r) => { reached = r; });
    let open!: () => void;
    const gate = new Promise<void>((r) => { open = r; });
    const syncWalkers = e.syncWalkers.bind(e);
    e.syncWalkers = () => {
      const fence = e.fence();
      reached();
      return gate.then(() => fence);
    };
    let settled = false;
    try {
      const dn = proc.madvise(a, PAGE_SIZE, MADV_DONTNEED).then(() => { settled = true; });
      await atFence;
      await Promise.resolve(); // (the shootdown's synchronous part, after the fence was taken)
      expect(e.pt.lookup(page)).toBeNull();
      expect(mirror.aperture.freeSlots, 'slot released before the fence resolved').toBe(free);
      expect(mirror.aperture.pfnOf(old!.slot)).toBeDefined();

      // The zap is not on the GPU yet (the shootdown pushes no table write: the next
      // dispatch's flush does, MirrorPt.shootdown)...
      const pushed = e.pt.stats.flushes;
      expect(e.pt.stats.dirtyEntries).toBeGreaterThan(0);
      // ...and a kernel submitted now, while the fence is pending, pushes it with its own
      // submission: the zapped page faults, its neighbour still reads.
      const cmd = e.createCommand({ op: 'read', page, npages: 2, data: new Uint32Array(2 * WORDS).fill(0xdead) });
      try {
        const r = await e.runRound(cmd);
        expect(e.pt.stats.flushes).toBe(pushed + 1);
        expect(e.pt.stats.dirtyEntries).toBe(0);
        expect(r.faults.map((f) => f.page)).toContain(page);
        expect(r.faults.every((f) => f.page === page), 'only the zapped page faults').toBe(true);
        const out = await cmd.readOutput();
        expect(out.subarray(0, WORDS).every((w) => w === 0xdead), 'read through the zapped entry').toBe(true);
        expect(out.subarray(WORDS).every((w) => w === 0x5101)).toBe(true);
      } finally {
        cmd.destroy();
      }
      expect(settled, 'the invalidation returned before its fence').toBe(false);
      expect(mirror.aperture.freeSlots).toBe(free);

      open();
      await dn;
      expect(mirror.aperture.freeSlots, 'slot released once the fence resolved').toBe(free + 1);
    } finally {
      open();
      e.syncWalkers = syncWalkers;
    }
    // The page faults back in with the zero page MADV_DONTNEED left.
    const { data } = await mirror.read(a, 2);
    const back = new Uint32Array(data.buffer, data.byteOffset, data.byteLength / 4);
    expect(back[0]).toBe(0);
    expect(back[WORDS]).toBe(0x5101);
  });
});
