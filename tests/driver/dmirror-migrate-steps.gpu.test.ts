/**
 * HMM_DMIRROR_MIGRATE_TO_DEV / _TO_SYS migrate in PTRS_PER_PTE (512-page) steps, as test_hmm's
 * dmirror_migrate_to_device/_to_system loops do since the device-private THP series: one
 * migrate_vma_setup — one MIGRATE invalidation — per step, cut again at VMA ends. And what a
 * GUP pin does to them: migrate_vma_check_page leaves a pinned page where it is.
 */
import { describe, expect } from 'vitest';
import { HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_WRITE, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE } from '../../src/index.js';
import { checkFrameAccounting } from '../../src/mm/accounting.js';
import { ANON, RW } from './machines.js';
import { mirrorTest } from '../support/mirror.js';
import { firstDiff } from './pages.js';


describe('migration steps', () => {
  mirrorTest('2,000 pages: 4 MIGRATE invalidations each way (512 + 512 + 512 + 464), data intact', async ({ machines }) => {
    const m = await machines({ devices: 1, systemPages: 8192, devicePages: 4096 });
    const p = m.spawn();
    const fd = await m.devices[0].open(p);
    const n = 2000;
    const buf = await p.mmap(0, n * PAGE_SIZE, RW, ANON);
    const data = new Uint8Array(n * PAGE_SIZE);
    for (let i = 0; i < data.length; i += 4) data[i] = (i / 4) % 251;
    await p.write(buf, data);
    const starts: { start: number; end: number }[] = [];
    p.mm.notifiers.register({
      invalidateRangeStart(r) {
        if (r.event === 'MIGRATE' && r.owner === m.devices[0]) starts.push({ start: r.start, end: r.end });
        return true;
      },
      invalidateRangeEnd() {},
    });
    const r = await fd.migrateToDevice(buf, n);
    expect(r.cpages).toBe(n);
    expect(firstDiff(r.data, data)).toBeNull();
    const want = [0, 512, 1024, 1536].map((k) => ({ start: buf + k * PAGE_SIZE, end: buf + Math.min(n, k + 512) * PAGE_SIZE }));
    expect(starts).toEqual(want);
    starts.length = 0;
    expect((await fd.migrateToSystem(buf, n)).cpages).toBe(n);
    expect(starts).toEqual(want);
    expect(firstDiff(await p.read(buf, n * PAGE_SIZE), data)).toBeNull();
    checkFrameAccounting(m);
    await fd.close();
  }, 120_000);

  mirrorTest('a step whose migrate_vma_setup fails (a VM_MIXEDMAP VMA) ends MIGRATE_TO_DEV with EINVAL after the steps before it moved', async ({ machines }) => {
    // test_hmm's dmirror_migrate_to_device returns migrate_vma_setup's error from the step
    // that failed; the steps before it have migrated and are mapped.
    const m = await machines({ devices: 1, systemPages: 8192, devicePages: 2048 });
    const p = m.spawn();
    const fd = await m.devices[0].open(p);
    const special = await fd.mmap(4 * PAGE_SIZE, RW, MAP_PRIVATE); // VM_MIXEDMAP
    const n = 600; // two steps of anonymous memory (512 + 88) right below it
    const buf = await p.mmap(special - n * PAGE_SIZE, n * PAGE_SIZE, RW, ANON | MAP_FIXED);
    expect(buf).toBe(special - n * PAGE_SIZE);
    const data = new Uint8Array(n * PAGE_SIZE).map((_, i) => (i * 13) & 0xff);
    await p.write(buf, data);
    await expect(fd.migrateToDevice(buf, n + 4)).rejects.toBeErrno('EINVAL');
    const snap = await fd.snapshot(buf, n);
    expect(snap.every((s) => s === (HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE))).toBe(true);
    expect(firstDiff((await fd.read(buf, n)).data, data)).toBeNull();
    expect(firstDiff(await p.read(buf, n * PAGE_SIZE), data)).toBeNull();
    checkFrameAccounting(m);
    await fd.close();
  }, 120_000);

  mirrorTest('a long-term pin keeps its page out of MIGRATE_TO_DEV (ENOENT, as test_hmm reads it back); after unpin it moves', async ({ machines }) => {
    const m = await machines({ devices: 1, systemPages: 4096, devicePages: 64 });
    const p = m.spawn();
    const fd = await m.devices[0].open(p);
    const n = 4;
    const buf = await p.mmap(0, n * PAGE_SIZE, RW, ANON);
    const data = new Uint8Array(n * PAGE_SIZE).map((_, i) => (i * 7) & 0xff);
    await p.write(buf, data);
    const pin = await p.pinUserPages(buf + PAGE_SIZE, 1, { write: true, longterm: true });
    await expect(fd.migrateToDevice(buf, n)).rejects.toBeErrno('ENOENT');
    const snap = await fd.snapshot(buf, n);
    expect([...snap]).toEqual([
      HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_WRITE,
      HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE,
    ]);
    // The pinned page is the one the process maps: a store through the pin reaches the CPU.
    pin.data(0)[5] = 0xee;
    const want = data.slice();
    want[PAGE_SIZE + 5] = 0xee;
    expect(firstDiff(await p.read(buf, n * PAGE_SIZE), want)).toBeNull();
    pin.release();
    const r = await fd.migrateToDevice(buf, n);
    expect(r.cpages).toBe(n);
    expect(firstDiff(r.data, want)).toBeNull();
    checkFrameAccounting(m);
    await fd.close();
  }, 120_000);
});
