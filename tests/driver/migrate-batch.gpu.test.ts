/**
 * The batched migration paths (h16/mig) held to the kernel's outcome:
 *  - migrate_vma_collect skips the rmap walk (folio_trylock's stand-in) only for a page
 *    whose one reference is the entry it collects; a page fork shares, or one another
 *    device holds, still takes the slow paths (try_to_migrate over every mm, the owner check);
 *  - the migrating mirror maps a run of its new device pages in one pass only over nothing
 *    mapped; pages it maps already go page by page (MirrorPt.doFault);
 *  - the read-back copies the VRAM slots only when every page is this device's (one leaf walk).
 */
import { describe, expect } from 'vitest';
import { checkFrameAccounting, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, PAGE_SIZE } from '../../src/index.js';
import { mirrorTest } from '../support/mirror.js';
import { ANON, RW } from './machines.js';
import { firstDiff, pagesOf } from './pages.js';

const tag = (p: number, g: number): number => ((g << 20) | p) >>> 0;

describe('migration batched per run', () => {
  mirrorTest('fork-shared, COW-broken and another device\'s pages across 512-page steps keep their slow paths', async ({ machines }) => {
    const m = await machines({ devices: 2, systemPages: 8192, devicePages: 2048, aperturePages: 2048 });
    const proc = m.spawn();
    const fd0 = await m.devices[0].open(proc);
    const fd1 = await m.devices[1].open(proc);
    const n = 1280; // two and a half of test_hmm's 512-page steps
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, ANON);
    const first = pagesOf(n, (p) => tag(p, 1));
    await proc.write(buf, first);
    expect((await fd1.migrateToDevice(buf + 100 * PAGE_SIZE, 50)).cpages).toBe(50); // another owner's pages
    const child = await proc.fork(); // every page shared (refcount 2): collected through the rmap
    await child.write(buf + 600 * PAGE_SIZE, pagesOf(10, (k) => tag(600 + k, 2))); // COW: the parent's 10 are its own again
    // The other device's 50 pages do not move, so test_hmm's read-back (no faulting) fails.
    await expect(fd0.migrateToDevice(buf, n)).rejects.toBeErrno('ENOENT');
    expect((await fd0.audit(buf, n)).stale).toEqual([]);
    checkFrameAccounting(m);
    expect(firstDiff((await fd0.read(buf, n)).data, first), 'device read').toBeNull();
    // What comes home is what the snapshot shows in our memory: most of the range (not the
    // other device's 50, which that read's faults brought home).
    const snap = await fd0.snapshot(buf, n);
    const local = snap.filter((v) => (v & 0x70) === HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL).length;
    expect(local).toBeGreaterThan(n - 100);
    expect((await fd0.migrateToSystem(buf, n)).cpages).toBe(local);
    expect(firstDiff(await proc.read(buf, n * PAGE_SIZE), first), 'parent').toBeNull();
    const want = pagesOf(n, (p) => tag(p, p >= 600 && p < 610 ? 2 : 1));
    expect(firstDiff(await child.read(buf, n * PAGE_SIZE), want), 'child').toBeNull();
    checkFrameAccounting(m);
    await fd0.close();
    await fd1.close();
  });

  mirrorTest('pages the mirror maps already are mapped page by page; every word survives', async ({ machines }) => {
    const m = await machines({ systemPages: 8192, devicePages: 2048, aperturePages: 2048 });
    const proc = m.spawn();
    const fd = await m.devices[0].open(proc);
    const n = 1024;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, ANON);
    const first = pagesOf(n, (p) => tag(p, 1));
    await proc.write(buf, first);
    expect(firstDiff((await fd.read(buf, n)).data, first)).toBeNull(); // mapped through the aperture
    expect(firstDiff((await fd.migrateToDevice(buf, n)).data, first)).toBeNull();
    // Again: nothing moves, the mirror's device entries stay.
    expect(firstDiff((await fd.migrateToDevice(buf, n)).data, first)).toBeNull();
    // The CPU takes pages 5 and 700 home and rewrites them; the device's next read faults them
    // back in around device pages it maps already.
    await proc.write(buf + 5 * PAGE_SIZE, pagesOf(1, () => tag(5, 3)));
    await proc.write(buf + 700 * PAGE_SIZE, pagesOf(1, () => tag(700, 3)));
    const want = pagesOf(n, (p) => tag(p, p === 5 || p === 700 ? 3 : 1));
    expect(firstDiff((await fd.read(buf, n)).data, want), 'device read').toBeNull();
    expect((await fd.audit(buf, n)).stale).toEqual([]);
    expect(firstDiff((await fd.migrateToDevice(buf, n)).data, want), 'migrated again').toBeNull();
    expect((await fd.migrateToSystem(buf, n)).cpages).toBe(n);
    expect(firstDiff(await proc.read(buf, n * PAGE_SIZE), want), 'CPU').toBeNull();
    checkFrameAccounting(m);
    await fd.close();
  });
});
