/**
 * Device-coherent THP (issue 17; mm/migrate_device.c of the device-private THP series, and
 * test_hmm handing out large folios for its coherent zone too): a 2 MiB anonymous THP
 * migrates whole into a 2 MiB coherent folio mapped by one present PMD
 * (migrate_vma_insert_huge_pmd_page / remove_migration_pmd), the CPU reads and writes it in
 * place, SNAPSHOT says DEV_COHERENT_LOCAL|WRITE|PMD; MIGRATE_TO_SYS (DEVICE_COHERENT only)
 * splits it and brings 512 order-0 pages home (migrate_vma_collect_huge_pmd takes a present
 * PMD whole only with SELECT_SYSTEM); a FOLL_LONGTERM pin splits it and moves the pinned
 * pages out order-0 (migrate_device_coherent_folio takes small folios); a partial munmap
 * splits the PMD. No frame or device page is left behind.
 */
import { describe, expect } from 'vitest';
import {
  checkFrameAccounting, HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL, HMM_DMIRROR_PROT_PMD, HMM_DMIRROR_PROT_WRITE,
  MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Machine, type Process,
} from '../../src/index.js';
import { isPresent, pmdIndex } from '../../src/mm/page-table.js';
import { mirrorTest } from '../support/mirror.js';
import { expectCpuInts, expectInts, expectNoLeak, expectProt, ints, isPmdMapped, vram } from './hmm-tests.helpers.js';

const RW = PROT_READ | PROT_WRITE;
const PRIV_ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const THP = 2 << 20;
const NPAGES = THP / PAGE_SIZE;
const SLOW = 120_000;

async function thpBuffer(proc: Process): Promise<{ ptr: number; free: () => Promise<void> }> {
  const raw = await proc.mmap(0, 2 * THP, RW, PRIV_ANON);
  const ptr = Math.ceil(raw / THP) * THP;
  await proc.madvise(ptr, THP, MADV_HUGEPAGE);
  await proc.write(ptr, ints(THP, (i) => i));
  expect(isPmdMapped(proc, ptr), 'THP before migration').toBe(true);
  return { ptr, free: () => proc.munmap(raw, 2 * THP) };
}

/** The PMD at addr is a present leaf mapping a device-coherent folio of device 0. */
function isCoherentPmd(m: Machine, proc: Process, addr: number): boolean {
  const pmd = proc.mm.pgtable.pmd(addr, false);
  const i = pmdIndex(addr);
  if (pmd === null || !pmd.isHuge(i) || !isPresent(pmd.flags[i])) return false;
  const pfn = pmd.pfn[i];
  return m.devices[0].pagemap.contains(pfn) && m.core.isDeviceCoherent(pfn);
}

describe('device-coherent THP', () => {
  mirrorTest.override('machineOptions', { systemPages: 8192, devicePages: 2048, deviceMemory: 'coherent' });

  mirrorTest('a THP migrates whole to one present PMD of a coherent folio; the CPU reads and writes it in place; SNAPSHOT LOCAL|WRITE|PMD', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc);
    const r = await mirror.migrateToDevice(b.ptr, NPAGES);
    expect(r.cpages).toBe(NPAGES);
    expectInts(r.data, (i) => i, 'device copy');
    expect(isCoherentPmd(machine, proc, b.ptr), 'present PMD of a coherent folio').toBe(true);
    expect(vram(machine)).toEqual({ slots: NPAGES, refs: NPAGES, huge: 1 });
    expectProt(await mirror.snapshot(b.ptr, NPAGES), HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD, 'snapshot');
    checkFrameAccounting(machine);

    await expectCpuInts(proc, b.ptr, THP, (i) => i, 'CPU read in place');
    await proc.write(b.ptr + 5 * PAGE_SIZE, ints(PAGE_SIZE, (i) => 7 * i));
    expect(machine.devices[0].devmem.cpuFaults, 'no migrate_to_ram').toBe(0);
    expect(isCoherentPmd(machine, proc, b.ptr), 'still the coherent PMD after the CPU store').toBe(true);
    expectInts((await mirror.read(b.ptr + 5 * PAGE_SIZE, 1)).data, (i) => 7 * i, 'device sees the CPU store');
    await b.free();
    expectNoLeak(machine);
  }, SLOW);

  mirrorTest('MIGRATE_TO_SYS splits the PMD and brings all 512 pages home order-0, data intact', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc);
    expect((await mirror.migrateToDevice(b.ptr, NPAGES)).cpages).toBe(NPAGES);
    const back = await mirror.migrateToSystem(b.ptr, NPAGES);
    expect(back.cpages).toBe(NPAGES);
    expect(isPmdMapped(proc, b.ptr), 'not a PMD any more').toBe(false);
    for (let k = 0; k < NPAGES; k += 37) {
      const t = proc.mm.pgtable.pteTable(b.ptr + k * PAGE_SIZE, false)!;
      expect(machine.core.isSystemPfn(t.pfn[k % 512]), `page ${k} home`).toBe(true);
    }
    expect(vram(machine)).toEqual({ slots: 0, refs: 0, huge: 0 });
    await expectCpuInts(proc, b.ptr, THP, (i) => i, 'home');
    checkFrameAccounting(machine);
    await b.free();
    expectNoLeak(machine);
  }, SLOW);

  mirrorTest('a FOLL_LONGTERM pin splits the coherent THP and moves the pinned pages out order-0', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc);
    expect((await mirror.migrateToDevice(b.ptr, NPAGES)).cpages).toBe(NPAGES);
    const pins = await proc.pinUserPages(b.ptr + 3 * PAGE_SIZE, 2, { write: true, longterm: true });
    for (let k = 0; k < 2; k++) expect(machine.core.isSystemPfn(pins.pfns[k]), `pinned page ${k} in RAM`).toBe(true);
    expect(isCoherentPmd(machine, proc, b.ptr), 'split').toBe(false);
    expect(vram(machine).huge, 'no 2 MiB run held').toBe(0);
    expect(vram(machine).refs, 'the rest stay on the device').toBe(NPAGES - 2);
    await expectCpuInts(proc, b.ptr, THP, (i) => i, 'after the pin');
    pins.release();
    checkFrameAccounting(machine);
    await b.free();
    expectNoLeak(machine);
  }, SLOW);

  mirrorTest('a partial munmap splits the coherent PMD; the rest stays mapped with its data', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc);
    expect((await mirror.migrateToDevice(b.ptr, NPAGES)).cpages).toBe(NPAGES);
    await proc.munmap(b.ptr + THP / 2, PAGE_SIZE);
    expect(isCoherentPmd(machine, proc, b.ptr), 'split').toBe(false);
    expect(vram(machine).refs).toBe(NPAGES - 1);
    await expectCpuInts(proc, b.ptr, THP / 2, (i) => i, 'below the hole');
    await expectCpuInts(proc, b.ptr + THP / 2 + PAGE_SIZE, THP / 2 - PAGE_SIZE, (i) => i, 'above the hole', (THP / 2 + PAGE_SIZE) / 4);
    checkFrameAccounting(machine);
    await b.free();
    expectNoLeak(machine);
  }, SLOW);
  mirrorTest('fork splits the coherent PMD; parent and child each keep their own data after writes', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc);
    expect((await mirror.migrateToDevice(b.ptr, NPAGES)).cpages).toBe(NPAGES);
    const child = await proc.fork();
    expect(isCoherentPmd(machine, proc, b.ptr), 'split in the parent').toBe(false);
    await child.write(b.ptr, ints(PAGE_SIZE, (i) => -i));
    await proc.write(b.ptr + PAGE_SIZE, ints(PAGE_SIZE, (i) => 3 * i));
    await expectCpuInts(child, b.ptr, PAGE_SIZE, (i) => -i, 'child page 0');
    await expectCpuInts(child, b.ptr + PAGE_SIZE, THP - PAGE_SIZE, (i) => i, 'child rest', PAGE_SIZE / 4);
    await expectCpuInts(proc, b.ptr, PAGE_SIZE, (i) => i, 'parent page 0');
    await expectCpuInts(proc, b.ptr + PAGE_SIZE, PAGE_SIZE, (i) => 3 * (i - PAGE_SIZE / 4), 'parent page 1', PAGE_SIZE / 4);
    await child.exit();
    checkFrameAccounting(machine);
    await b.free();
    expectNoLeak(machine);
  }, SLOW);

  mirrorTest('mprotect of half the block splits the PMD; a write-protected whole PMD made writable again takes CPU writes', async ({ machine, proc, mirror }) => {
    const b = await thpBuffer(proc);
    expect((await mirror.migrateToDevice(b.ptr, NPAGES)).cpages).toBe(NPAGES);
    await proc.mprotect(b.ptr, THP, PROT_READ);
    await proc.mprotect(b.ptr, THP, RW);
    await proc.write(b.ptr + 9 * PAGE_SIZE, ints(PAGE_SIZE, (i) => 5 * i));
    await expectCpuInts(proc, b.ptr + 9 * PAGE_SIZE, PAGE_SIZE, (i) => 5 * (i - 9 * PAGE_SIZE / 4), 'written page', 9 * PAGE_SIZE / 4);
    await expectCpuInts(proc, b.ptr, 9 * PAGE_SIZE, (i) => i, 'below');
    // do_huge_pmd_wp_page(): an exclusive anonymous folio is reused, not copied.
    expect(isCoherentPmd(machine, proc, b.ptr), 'still the coherent PMD after the write fault').toBe(true);
    expect(vram(machine)).toEqual({ slots: NPAGES, refs: NPAGES, huge: 1 });
    checkFrameAccounting(machine);
    await proc.mprotect(b.ptr, THP / 2, PROT_READ);
    expect(isCoherentPmd(machine, proc, b.ptr), 'split').toBe(false);
    await expectCpuInts(proc, b.ptr + THP / 2, THP / 2, (i) => i, 'upper half', THP / 2 / 4);
    checkFrameAccounting(machine);
    await b.free();
    expectNoLeak(machine);
  }, SLOW);
});
