/**
 * MEMORY_DEVICE_COHERENT (mm/memremap.c, mm/migrate_device.c, mm/gup.c): device pages the
 * CPU maps with present PTEs and loads/stores in place (no migrate_to_ram), collected back
 * only by MIGRATE_VMA_SELECT_DEVICE_COHERENT of their owner, migrated out before a
 * FOLL_LONGTERM pin (folio_is_longterm_pinnable), copied on a COW break like any anonymous
 * page — with every device page accounted for (the fixture re-counts every reference, the
 * pagemaps' included, at teardown) and bad input refused with EINVAL.
 */
import { describe, expect } from 'vitest';
import { GUP_PIN_COUNTING_BIAS, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { isPresent, PTE_WRITE } from '../../src/mm/page-table.js';
import {
  MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migrateVmaSetup,
} from '../../src/mm/migrate.js';
import { machineTest } from '../support/machine.js';
import { FakeCoherentDevice } from './fake-coherent.js';
import { FakeDevice, withRead } from './fake-device.js';
import { account, entryAt, expectBytes, PG, pattern } from './helpers.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('device-coherent memory', () => {
  machineTest('migrated pages are mapped by present PTEs of device pfns; the CPU reads and writes them in place', async ({ machine: m }) => {
    const dev = new FakeCoherentDevice(m, 16);
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, pattern(4 * PG, 3));
    const framesBefore = m.ram.freePages;
    expect(await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 4 * PG))).toBe(4);
    expect(m.ram.freePages).toBe(framesBefore + 4); // the system frames went back
    const pfns: number[] = [];
    for (let i = 0; i < 4; i++) {
      const e = entryAt(p.mm, a + i * PG)!;
      expect(isPresent(e.flags)).toBe(true);
      expect(e.flags & PTE_WRITE).toBe(PTE_WRITE);
      expect(dev.pm.contains(e.pfn)).toBe(true);
      expect(m.core.isDeviceCoherent(e.pfn)).toBe(true);
      expect(m.core.refcount(e.pfn)).toBe(1);
      pfns.push(e.pfn);
    }
    expectBytes(await p.read(a, 4 * PG), pattern(4 * PG, 3));
    // A CPU store lands in the device page itself: the same pfn, one copy, no migration.
    const w = pattern(PG, 9);
    await p.write(a + 2 * PG + 100, w.subarray(0, 300));
    expect(entryAt(p.mm, a + 2 * PG)!.pfn).toBe(pfns[2]);
    expectBytes(dev.pm.data(pfns[2]).subarray(100, 400), w.subarray(0, 300));
    expect(m.ram.freePages).toBe(framesBefore + 4);
    account(m);
    await p.munmap(a, 4 * PG); // zap drops the last references: page_free for each
    expect(dev.freed).toBe(4);
    expect(dev.inUse).toBe(0);
  });

  machineTest('only SELECT_DEVICE_COHERENT of the owner collects them; the data comes home intact and the device pages are freed', async ({ machine: m }) => {
    const dev = new FakeCoherentDevice(m, 16);
    const other = new FakeCoherentDevice(m, 16, 'other');
    const priv = new FakeDevice(m, 16);
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, pattern(4 * PG, 5));
    await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 4 * PG));
    const pfns = [0, 1, 2, 3].map((i) => entryAt(p.mm, a + i * PG)!.pfn);
    // SELECT_SYSTEM (another device's migration to it), SELECT_DEVICE_PRIVATE, another owner: nothing.
    expect(await withRead(p.mm, () => other.toDevice(p.mm, a, a + 4 * PG))).toBe(0);
    expect(await withRead(p.mm, () => priv.toDevice(p.mm, a, a + 4 * PG))).toBe(0);
    expect(await withRead(p.mm, () => dev.toSystem(p.mm, a, a + 4 * PG, MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_SYSTEM))).toBe(0);
    expect(await withRead(p.mm, () => other.toSystem(p.mm, a, a + 4 * PG))).toBe(0);
    for (let i = 0; i < 4; i++) expect(entryAt(p.mm, a + i * PG)!.pfn).toBe(pfns[i]);
    account(m);
    // MIGRATE_TO_SYS of the owner: half, then the rest.
    expect(await withRead(p.mm, () => dev.toSystem(p.mm, a, a + 2 * PG))).toBe(2);
    expect(dev.freed).toBe(2);
    for (let i = 0; i < 4; i++) expect(m.core.isSystemPfn(entryAt(p.mm, a + i * PG)!.pfn)).toBe(i < 2);
    expect(await withRead(p.mm, () => dev.toSystem(p.mm, a, a + 4 * PG, MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_DEVICE_COHERENT))).toBe(2);
    expect(dev.inUse).toBe(0);
    expect(other.inUse).toBe(0);
    expect(priv.free.length).toBe(16);
    expectBytes(await p.read(a, 4 * PG), pattern(4 * PG, 5));
    for (let i = 0; i < 4; i++) expect(entryAt(p.mm, a + i * PG)!.flags & PTE_WRITE).toBe(PTE_WRITE);
    account(m);
  });

  machineTest('a FOLL_LONGTERM pin migrates coherent pages to system memory first; a short pin holds them where they are', async ({ machine: m }) => {
    const dev = new FakeCoherentDevice(m, 16);
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, pattern(4 * PG, 7));
    await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 4 * PG));
    const devPfn = entryAt(p.mm, a + PG)!.pfn;
    // A short-term pin takes the coherent page itself (it is pinnable, just not for long).
    for (const fast of [false, true]) {
      const pin = await p.pinUserPages(a + PG, 1, { write: true, fast });
      expect(pin.pfns[0]).toBe(devPfn);
      expect(m.core.refcount(devPfn)).toBe(1 + GUP_PIN_COUNTING_BIAS);
      expectBytes(pin.data(0), pattern(4 * PG, 7).subarray(PG, 2 * PG));
      // migrate_vma_check_page: a pinned coherent page stays.
      expect(await withRead(p.mm, () => dev.toSystem(p.mm, a + PG, a + 2 * PG))).toBe(0);
      expect(entryAt(p.mm, a + PG)!.pfn).toBe(devPfn);
      account(m);
      pin.release();
    }
    expect(m.core.refcount(devPfn)).toBe(1);
    // FOLL_LONGTERM: pages 1-2 move home (check_and_migrate_movable_pages), then pinned.
    const pins = await p.pinUserPages(a + PG, 2, { write: true, longterm: true });
    for (let i = 0; i < 2; i++) {
      expect(m.core.isSystemPfn(pins.pfns[i])).toBe(true);
      expect(entryAt(p.mm, a + (1 + i) * PG)!.pfn).toBe(pins.pfns[i]);
      expect(m.core.refcount(pins.pfns[i])).toBe(1 + GUP_PIN_COUNTING_BIAS);
      expectBytes(pins.data(i), pattern(4 * PG, 7).subarray((1 + i) * PG, (2 + i) * PG));
    }
    expect(dev.freed).toBe(2);
    expect(m.core.isDeviceCoherent(entryAt(p.mm, a)!.pfn)).toBe(true); // outside the pin: stays
    account(m);
    pins.release();
    expectBytes(await p.read(a, 4 * PG), pattern(4 * PG, 7));
    await p.munmap(a, 4 * PG);
    expect(dev.inUse).toBe(0);
  });

  machineTest('fork shares a coherent page copy-on-write: the writer gets a system copy of the device bytes', async ({ machine: m }) => {
    const dev = new FakeCoherentDevice(m, 16);
    const parent = m.spawn();
    const a = await parent.mmap(0, 2 * PG, RW, ANON);
    await parent.write(a, pattern(2 * PG, 11));
    await withRead(parent.mm, () => dev.toDevice(parent.mm, a, a + 2 * PG));
    const devPfn = entryAt(parent.mm, a)!.pfn;
    const child = await parent.fork();
    expect(entryAt(child.mm, a)!.pfn).toBe(devPfn);
    expect(m.core.refcount(devPfn)).toBe(2);
    await child.write(a, new Uint8Array([0xee]));
    const copy = entryAt(child.mm, a)!.pfn;
    expect(m.core.isSystemPfn(copy)).toBe(true);
    const want = pattern(2 * PG, 11);
    expectBytes(await parent.read(a, 2 * PG), want);
    want[0] = 0xee;
    expectBytes(await child.read(a, PG), want.subarray(0, PG));
    expect(m.core.refcount(devPfn)).toBe(1);
    account(m);
    await child.exit();
    await parent.munmap(a, 2 * PG);
    expect(dev.inUse).toBe(0);
  });

  machineTest('bad input: a coherent pagemap without page_free or owner, a coherent fault_page — EINVAL, nothing changed', async ({ machine: m }) => {
    expect(() => m.registerPagemap({ npages: 16, type: 'coherent', owner: {} })).toThrowErrno('EINVAL');
    expect(() => m.registerPagemap({ npages: 16, type: 'coherent', owner: null, pageFree: () => undefined })).toThrowErrno('EINVAL');
    expect(() => m.registerPagemap({ npages: 16, owner: {}, pageFree: () => undefined })).toThrowErrno('EINVAL'); // private: no migrate_to_ram
    const dev = new FakeCoherentDevice(m, 4);
    const p = m.spawn();
    const a = await p.mmap(0, PG, RW, ANON);
    await p.write(a, pattern(PG, 2));
    await withRead(p.mm, () => dev.toDevice(p.mm, a, a + PG));
    const pfn = entryAt(p.mm, a)!.pfn;
    await expect(withRead(p.mm, () => migrateVmaSetup(p.mm, {
      start: a, end: a + PG, flags: MIGRATE_VMA_SELECT_DEVICE_COHERENT, pgmapOwner: dev.owner, faultPage: pfn,
    }))).rejects.toBeErrno('EINVAL');
    expect(entryAt(p.mm, a)!.pfn).toBe(pfn);
    expect(isPresent(entryAt(p.mm, a)!.flags)).toBe(true);
    expectBytes(await p.read(a, PG), pattern(PG, 2));
    account(m);
    await p.munmap(a, PG);
  });
});
