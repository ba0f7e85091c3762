/**
 * Device-private THP at its edges (issue 17; mm/migrate_device.c and lib/test_hmm.c of the
 * device-private THP series): a 2 MiB anonymous folio migrates whole into a 2 MiB run of
 * VRAM behind one device-private PMD, comes home whole on one CPU fault, falls back to 4 KiB
 * pages (splitting the source) when no 2 MiB run or frame is free or FAIL_ALLOC says so, is
 * split by partial munmap / mprotect / fork, and no frame or device page is left behind on
 * any path (the fixture's teardown recounts every frame; each test checks VRAM too).
 */
import { describe, expect } from 'vitest';
import {
  checkFrameAccounting, HMM_DMIRROR_FLAG_FAIL_ALLOC, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_WRITE, HmmError, MADV_DONTNEED, MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE,
  MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Machine, type Process,
} from '../../src/index.js';
import { isDevicePrivate, pmdIndex } from '../../src/mm/page-table.js';
import { mirrorTest } from '../support/mirror.js';
import { expectCpuInts, expectInts, expectNoLeak, expectProt, ints, isPmdMapped, vram } from './hmm-tests.helpers.js';

const RW = PROT_READ | PROT_WRITE;
const PRIV_ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const THP = 2 << 20;
const NPAGES = THP / PAGE_SIZE;
const LOCAL_W = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE;
const LOCAL_W_PMD = LOCAL_W | HMM_DMIRROR_PROT_PMD;
const SLOW = 120_000;

/** `n` THP-enabled, 2 MiB-aligned bytes filled with int i at index i (a THP per 2 MiB). */
async function thpBuffer(proc: Process, n: number, fill = true): Promise<{ ptr: number; free: () => Promise<void> }> {
  const raw = await proc.mmap(0, n + THP, RW, PRIV_ANON);
  const ptr = Math.ceil(raw / THP) * THP;
  await proc.madvise(ptr, n, MADV_HUGEPAGE);
  if (fill) {
    await proc.write(ptr, ints(n, (i) => i));
    for (let a = ptr; a < ptr + n; a += THP) expect(isPmdMapped(proc, a), 'THP before migration').toBe(true);
  }
  return { ptr, free: () => proc.munmap(raw, n + THP) };
}

/** The CPU page table's PMD entry at addr is a device-private THP. */
function isDevicePmd(proc: Process, addr: number): boolean {
  const pmd = proc.mm.pgtable.pmd(addr, false);
  const i = pmdIndex(addr);
  return pmd !== null && pmd.isHuge(i) && isDevicePrivate(pmd.flags[i]);
}

const cpuFaults = (m: Machine): number => m.devices[0].devmem.cpuFaults;

describe('device-private THP', () => {
  mirrorTest.override('machineOptions', { systemPages: 8192, devicePages: 2048 });

  mirrorTest('a THP migrates whole: one 2 MiB VRAM run, a device-private PMD, SNAPSHOT LOCAL|WRITE|PMD; one CPU fault brings it home whole', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc, THP);
    const r = await mirror.migrateToDevice(b.ptr, NPAGES);
    expect(r.cpages).toBe(NPAGES);
    expectInts(r.data, (i) => i, 'device copy');
    expect(isDevicePmd(proc, b.ptr), 'device-private PMD').toBe(true);
    expect(vram(machine)).toEqual({ slots: NPAGES, refs: NPAGES, huge: 1 });
    expectProt(await mirror.snapshot(b.ptr, NPAGES), LOCAL_W_PMD, 'snapshot');
    checkFrameAccounting(machine);

    const before = cpuFaults(machine);
    await expectCpuInts(proc, b.ptr + 7 * PAGE_SIZE, 4, (i) => i, 'one int', 7 * 1024);
    expect(cpuFaults(machine) - before, 'CPU faults to bring 2 MiB home').toBe(1);
    expect(isPmdMapped(proc, b.ptr), 'home as a THP again').toBe(true);
    expect(vram(machine)).toEqual({ slots: 0, refs: 0, huge: 0 });
    await expectCpuInts(proc, b.ptr, THP, (i) => i, 'after the fault');
    await b.free();
    expectNoLeak(machine);
  });

  mirrorTest('an untouched THP-enabled block is one compound hole: a zeroed 2 MiB device folio behind a PMD', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc, THP, false);
    const r = await mirror.migrateToDevice(b.ptr, NPAGES);
    expect(r.cpages).toBe(NPAGES);
    expectInts(r.data, () => 0, 'device copy');
    expect(isDevicePmd(proc, b.ptr)).toBe(true);
    expect(vram(machine).huge).toBe(1);
    expectProt(await mirror.snapshot(b.ptr, NPAGES), LOCAL_W_PMD, 'snapshot');
    await mirror.migrateToSystem(b.ptr, NPAGES);
    expect(isPmdMapped(proc, b.ptr), 'MIGRATE_TO_SYS brings the folio home whole').toBe(true);
    await expectCpuInts(proc, b.ptr, THP, () => 0, 'zeros');
    await b.free();
    expectNoLeak(machine);
  });

  mirrorTest('the huge zero page is one compound hole (is_huge_zero_pmd): a zeroed device folio replaces it; with FAIL_ALLOC it splits into 512 holes', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc, 2 * THP, false);
    await proc.read(b.ptr, 4);
    await proc.read(b.ptr + THP, 4);
    expect(proc.mm.pgtable.pmd(b.ptr, false)!.pfn[pmdIndex(b.ptr)]).toBe(machine.ram.hugeZero);
    const r = await mirror.migrateToDevice(b.ptr, NPAGES);
    expect(r.cpages).toBe(NPAGES);
    expectInts(r.data, () => 0, 'device copy');
    expect(isDevicePmd(proc, b.ptr)).toBe(true);
    expectProt(await mirror.snapshot(b.ptr, NPAGES), LOCAL_W_PMD, 'snapshot');

    await mirror.setFlags(HMM_DMIRROR_FLAG_FAIL_ALLOC);
    await mirror.migrateToDevice(b.ptr + THP, NPAGES);
    expect(isDevicePmd(proc, b.ptr + THP)).toBe(false);
    expectProt(await mirror.snapshot(b.ptr + THP, NPAGES), LOCAL_W, 'fallback: order-0 device pages');
    expect(machine.ram.hugeZero, 'no mapping of the huge zero page is left').toBe(-1);
    expect(vram(machine)).toEqual({ slots: 2 * NPAGES, refs: 2 * NPAGES, huge: 1 });
    checkFrameAccounting(machine);
    await expectCpuInts(proc, b.ptr, 2 * THP, () => 0, 'zeros');
    await b.free();
    expectNoLeak(machine);
  });

  mirrorTest('FAIL_ALLOC half way: of two THPs the first falls back to 4 KiB device pages (source split), the second goes whole', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc, 2 * THP);
    await mirror.setFlags(HMM_DMIRROR_FLAG_FAIL_ALLOC);
    const r = await mirror.migrateToDevice(b.ptr, 2 * NPAGES);
    expect(r.cpages).toBe(2 * NPAGES);
    expectInts(r.data, (i) => i, 'device copy');
    const snap = await mirror.snapshot(b.ptr, 2 * NPAGES);
    expectProt(snap, LOCAL_W, 'first THP: order-0 device pages', 0, NPAGES);
    expectProt(snap, LOCAL_W_PMD, 'second THP: whole', NPAGES, 2 * NPAGES);
    expect(isDevicePmd(proc, b.ptr)).toBe(false);
    expect(isDevicePmd(proc, b.ptr + THP)).toBe(true);
    expect(vram(machine)).toEqual({ slots: 2 * NPAGES, refs: 2 * NPAGES, huge: 1 });
    checkFrameAccounting(machine);

    // A CPU fault on the split half brings one page home; on the whole half, the folio.
    let f = cpuFaults(machine);
    await expectCpuInts(proc, b.ptr + 5 * PAGE_SIZE, PAGE_SIZE, (i) => i, 'page 5', 5 * 1024);
    expect(cpuFaults(machine) - f).toBe(1);
    expect(vram(machine).slots).toBe(2 * NPAGES - 1);
    f = cpuFaults(machine);
    await expectCpuInts(proc, b.ptr, 2 * THP, (i) => i, 'everything');
    expect(cpuFaults(machine) - f, '511 order-0 faults, then one for the THP').toBe(NPAGES - 1 + 1);
    expect(isPmdMapped(proc, b.ptr + THP)).toBe(true);
    await b.free();
    expectNoLeak(machine);
  }, SLOW);

  mirrorTest('FAIL_ALLOC on the way home: MIGRATE_TO_SYS and a CPU fault fall back to 512 order-0 frames, every byte intact', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc, 2 * THP);
    await mirror.migrateToDevice(b.ptr, 2 * NPAGES);
    expect(isDevicePmd(proc, b.ptr) && isDevicePmd(proc, b.ptr + THP)).toBe(true);

    await mirror.setFlags(HMM_DMIRROR_FLAG_FAIL_ALLOC);
    const r = await mirror.migrateToSystem(b.ptr, NPAGES);
    expect(r.cpages).toBe(NPAGES);
    expect(isPmdMapped(proc, b.ptr), 'order-0 frames, not a THP').toBe(false);
    expect(proc.mm.pgtable.pteTable(b.ptr, false)?.used).toBe(NPAGES);

    await mirror.setFlags(HMM_DMIRROR_FLAG_FAIL_ALLOC);
    const f = cpuFaults(machine);
    await expectCpuInts(proc, b.ptr + THP + 100 * PAGE_SIZE, 4, (i) => i, 'one int', (NPAGES + 100) * 1024);
    expect(cpuFaults(machine) - f, 'one fault brings the whole folio, split').toBe(1);
    expect(isPmdMapped(proc, b.ptr + THP)).toBe(false);
    expect(vram(machine)).toEqual({ slots: 0, refs: 0, huge: 0 });
    await expectCpuInts(proc, b.ptr, 2 * THP, (i) => i, 'everything');
    await b.free();
    expectNoLeak(machine);
  });

  mirrorTest('partial munmap splits the device-private PMD: the unmapped half frees its device pages, the rest stays and faults home page by page', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc, THP);
    await mirror.migrateToDevice(b.ptr, NPAGES);
    await proc.munmap(b.ptr + THP / 4, THP / 2);
    expect(isDevicePmd(proc, b.ptr)).toBe(false);
    expect(vram(machine)).toEqual({ slots: NPAGES / 2, refs: NPAGES / 2, huge: 0 });
    const snap = await mirror.snapshot(b.ptr, NPAGES / 4);
    expectProt(snap, LOCAL_W, 'kept quarter');
    checkFrameAccounting(machine);
    await expectCpuInts(proc, b.ptr, THP / 4, (i) => i, 'first quarter');
    await expectCpuInts(proc, b.ptr + (3 * THP) / 4, THP / 4, (i) => i, 'last quarter', (3 * THP) / 16);
    await b.free();
    expectNoLeak(machine);
  });

  mirrorTest('mprotect of half splits the PMD: that half turns read-only on the device side, the other keeps WRITE', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc, THP);
    await mirror.migrateToDevice(b.ptr, NPAGES);
    await proc.mprotect(b.ptr, THP / 2, PROT_READ);
    const snap = await mirror.snapshot(b.ptr, NPAGES);
    expectProt(snap, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_READ, 'read-only half', 0, NPAGES / 2);
    expectProt(snap, LOCAL_W, 'writable half', NPAGES / 2, NPAGES);
    checkFrameAccounting(machine);
    await expectCpuInts(proc, b.ptr, THP, (i) => i, 'data');
    await b.free();
    expectNoLeak(machine);
  });

  mirrorTest('MADV_DONTNEED of the whole THP frees the 2 MiB device folio at once; fork of a device THP keeps both sides\' data', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc, 2 * THP);
    await mirror.migrateToDevice(b.ptr, 2 * NPAGES);
    await proc.madvise(b.ptr, THP, MADV_DONTNEED);
    expect(vram(machine)).toEqual({ slots: NPAGES, refs: NPAGES, huge: 1 });
    await expectCpuInts(proc, b.ptr, PAGE_SIZE, () => 0, 'zapped: zeros');

    const child = await proc.fork();
    checkFrameAccounting(machine);
    await expectCpuInts(child, b.ptr + THP, THP, (i) => i, 'child', NPAGES * 1024);
    await proc.write(b.ptr + THP, ints(PAGE_SIZE, () => -1));
    await expectCpuInts(child, b.ptr + THP, PAGE_SIZE, (i) => i, 'child after the parent\'s write', NPAGES * 1024);
    await expectCpuInts(proc, b.ptr + THP, PAGE_SIZE, () => -1, 'parent');
    await child.exit();
    await b.free();
    expectNoLeak(machine);
  });

  mirrorTest('mremap moves a device-private PMD whole to an aligned address (move_huge_pmd) and splits it for an unaligned one', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc, 2 * THP);
    await mirror.migrateToDevice(b.ptr, 2 * NPAGES);
    const dst = await proc.mmap(0, 5 * THP, PROT_READ, PRIV_ANON);
    const to = Math.ceil(dst / THP) * THP;
    await proc.mremap(b.ptr, THP, THP, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    expect(isDevicePmd(proc, to), 'moved whole').toBe(true);
    expectProt(await mirror.snapshot(to, NPAGES), LOCAL_W_PMD, 'at the new address');
    await proc.mremap(b.ptr + THP, THP, THP, MREMAP_MAYMOVE | MREMAP_FIXED, to + 2 * THP + 16 * PAGE_SIZE);
    expect(isDevicePmd(proc, to + 2 * THP), 'unaligned: split').toBe(false);
    expectProt(await mirror.snapshot(to + 2 * THP + 16 * PAGE_SIZE, NPAGES), LOCAL_W, 'split, still on the device');
    expect(vram(machine).slots).toBe(2 * NPAGES);
    checkFrameAccounting(machine);
    await expectCpuInts(proc, to, THP, (i) => i, 'first, moved');
    await expectCpuInts(proc, to + 2 * THP + 16 * PAGE_SIZE, THP, (i) => i, 'second, moved', NPAGES * 1024);
    await proc.munmap(to, THP);
    await proc.munmap(to + 2 * THP + 16 * PAGE_SIZE, THP);
    await proc.munmap(dst, 5 * THP);
    await b.free();
    expectNoLeak(machine);
  });

  mirrorTest('a long-term pin of one page of a device THP brings the folio home and keeps it there: the next MIGRATE_TO_DEV moves none of it', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc, THP);
    await mirror.migrateToDevice(b.ptr, NPAGES);
    const pins = await proc.pinUserPages(b.ptr + 3 * PAGE_SIZE, 1, { write: true, longterm: true });
    try {
      expect(isDevicePmd(proc, b.ptr)).toBe(false);
      expect(vram(machine)).toEqual({ slots: 0, refs: 0, huge: 0 });
      await expect(mirror.migrateToDevice(b.ptr, NPAGES)).rejects.toSatisfy((e) => e instanceof HmmError && e.code === 'ENOENT');
      expect(vram(machine).slots, 'the pinned folio stayed in system memory').toBe(0);
      checkFrameAccounting(machine);
    } finally {
      pins.release();
    }
    await expectCpuInts(proc, b.ptr, THP, (i) => i, 'data');
    await b.free();
    expectNoLeak(machine);
  });

  mirrorTest('HMM_DMIRROR_FLAGS with an unknown bit: EINVAL, and the next migration is not affected', async ({ machine, proc, mirror }) => {
    await expect(mirror.setFlags(2)).rejects.toSatisfy((e) => e instanceof HmmError && e.code === 'EINVAL');
    await expect(mirror.setFlags(-1)).rejects.toSatisfy((e) => e instanceof HmmError && e.code === 'EINVAL');
    const b = await thpBuffer(proc, THP);
    await mirror.migrateToDevice(b.ptr, NPAGES);
    expect(isDevicePmd(proc, b.ptr)).toBe(true);
    await b.free();
    expectNoLeak(machine);
  });
});

describe('device-private THP with no free 2 MiB of VRAM', () => {
  // 512 + 100 device pages: one 2 MiB run, then 100 single pages.
  mirrorTest.override('machineOptions', { systemPages: 8192, devicePages: NPAGES + 100 });

  mirrorTest('the second THP falls back to 4 KiB pages and runs out half way: 100 pages move, 412 stay home; nothing leaks', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc, 2 * THP);
    // dmirror_do_read after the migration finds pages the device does not hold: ENOENT, as
    // test_hmm answers a partial migration.
    await expect(mirror.migrateToDevice(b.ptr, 2 * NPAGES)).rejects.toSatisfy((e) => e instanceof HmmError && e.code === 'ENOENT');
    const snap = await mirror.snapshot(b.ptr, 2 * NPAGES);
    expectProt(snap, LOCAL_W_PMD, 'first THP whole', 0, NPAGES);
    expectProt(snap, LOCAL_W, 'second THP: the 100 pages that fit', NPAGES, NPAGES + 100);
    expectProt(snap, HMM_DMIRROR_PROT_WRITE, 'second THP: the rest, in system memory', NPAGES + 100, 2 * NPAGES);
    expect(vram(machine)).toEqual({ slots: NPAGES + 100, refs: NPAGES + 100, huge: 1 });
    checkFrameAccounting(machine);
    await expectCpuInts(proc, b.ptr, 2 * THP, (i) => i, 'everything');
    expect(vram(machine)).toEqual({ slots: 0, refs: 0, huge: 0 });
    await b.free();
    expectNoLeak(machine);
  });
});

describe('device-private THP seen from another device', () => {
  mirrorTest.override('machineOptions', { devices: 2, systemPages: 8192, devicePages: 2048 });

  mirrorTest('a READ through another device faults the THP home whole (hmm_range_fault → do_huge_pmd_device_private), then that device maps it', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc, THP);
    await mirror.migrateToDevice(b.ptr, NPAGES);
    expect(isDevicePmd(proc, b.ptr)).toBe(true);
    const other = await machine.devices[1].open(proc);
    try {
      const f = cpuFaults(machine);
      const r = await other.read(b.ptr + 9 * PAGE_SIZE, 2);
      expectInts(r.data, (i) => i + 9 * 1024, 'other device read');
      expect(cpuFaults(machine) - f, 'one migrate_to_ram for the folio').toBe(1);
      expect(isPmdMapped(proc, b.ptr)).toBe(true);
      expect(vram(machine)).toEqual({ slots: 0, refs: 0, huge: 0 });
      const snap = await other.snapshot(b.ptr, NPAGES);
      expectProt(snap, HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD, 'system THP, PMD-mapped');
    } finally {
      await other.close();
    }
    await b.free();
    expectNoLeak(machine);
  });
});
