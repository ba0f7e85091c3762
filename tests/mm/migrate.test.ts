import { describe, expect, it } from 'vitest';
import { MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/index.js';
import {
  makeDeviceExclusive, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_SYSTEM, migratePfnFlags, migrateVmaFinalize, migrateVmaPages,
  migrateVmaSetup,
} from '../../src/mm/migrate.js';
import {
  isDeviceExclusive, isDevicePrivate, isMigration, PTE_WRITE, swpKind, SWP_DEVICE_READ, SWP_DEVICE_WRITE,
} from '../../src/mm/page-table.js';
import { FakeDevice, withRead } from './fake-device.js';
import { account, destroyAndCheckEmpty, entryAt, expectBytes, fill, HUGE, PG, pattern, recordEvents } from './helpers.js';
import { machineTest } from '../support/machine.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('device-private migration', () => {
  machineTest('migrates anon pages to device memory (MIGRATE with owner) and back on CPU touch', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 64);
    expect(dev.pm.basePfn).toBeGreaterThanOrEqual(m.ram.npages);
    expect(m.pagemapOf(dev.pm.basePfn)).toBe(dev.pm);
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    const d = pattern(3 * PG, 31);
    await p.write(a, d); // page 3 stays none
    let migrationEntriesAfterStart = -1;
    const rec = recordEvents(p.mm, (r) => {
      if (r.event === 'MIGRATE' && migrationEntriesAfterStart < 0) migrationEntriesAfterStart = [0, 1, 2].filter((i) => isMigration(entryAt(p.mm, a + i * PG)!.flags)).length;
    });
    const free = m.ram.freePages;
    const n = await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 4 * PG));
    expect(n).toBe(4);
    expect(migrationEntriesAfterStart).toBe(0); // the invalidation comes before the unmap
    const ev = rec.starts();
    expect(ev[0]).toMatchObject({ event: 'MIGRATE', start: a, end: a + 4 * PG, owner: dev.owner });
    expect(m.ram.freePages).toBe(free + 3);
    for (let i = 0; i < 4; i++) {
      const e = entryAt(p.mm, a + i * PG)!;
      expect(isDevicePrivate(e.flags)).toBe(true);
      expect(swpKind(e.flags)).toBe(SWP_DEVICE_WRITE);
      expect(dev.pm.refcount[e.pfn - dev.pm.basePfn]).toBe(1);
    }
    account(m);
    // A CPU load of a device-private page calls migrate_to_ram and retries.
    expectBytes(await p.read(a + PG, PG), d.subarray(PG, 2 * PG));
    expect(dev.migrationsToRam).toBe(1);
    expect(entryAt(p.mm, a + PG)!.flags & PTE_WRITE).toBe(PTE_WRITE);
    expect(dev.free).toHaveLength(64 - 3);
    account(m);
    expectBytes(await p.read(a, 3 * PG), d);
    expect((await p.read(a + 3 * PG, PG)).every((x) => x === 0)).toBe(true);
    expect(dev.free).toHaveLength(64);
    account(m);
  });

  machineTest('skips shared mappings; moves every mapping of a page shared after fork (try_to_migrate)', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 16);
    const p = m.spawn();
    const s = await p.mmap(0, 2 * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
    await p.write(s, fill(2 * PG, 1));
    expect(await withRead(p.mm, () => dev.toDevice(p.mm, s, s + 2 * PG))).toBe(0);
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await p.write(a, fill(2 * PG, 2));
    const c = await p.fork();
    await c.write(a, fill(1, 3)); // child COWs page 0: parent's page 0 is exclusive again
    const childEv = recordEvents(c.mm);
    const n = await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 2 * PG));
    expect(n).toBe(2);
    // Page 0 is the parent's alone again but fork write-protected it: a readable migration entry.
    expect(swpKind(entryAt(p.mm, a)!.flags)).toBe(SWP_DEVICE_READ);
    // Page 1 was shared read-only: both mms now map the same device page, read-only.
    const e1 = entryAt(p.mm, a + PG)!;
    expect(swpKind(e1.flags)).toBe(SWP_DEVICE_READ);
    expect(entryAt(c.mm, a + PG)).toEqual(e1);
    expect(dev.pm.refcount[e1.pfn - dev.pm.basePfn]).toBe(2);
    // The child's mapping went under a CLEAR invalidation of the child's mm.
    expect(childEv.starts()).toMatchObject([{ event: 'CLEAR', start: a + PG, end: a + 2 * PG }]);
    expect(entryAt(c.mm, a)!.flags & 1).toBe(1); // the child's own copy of page 0 stays
    account(m);
    expect((await c.read(a, 2 * PG)).subarray(1)).toEqual(new Uint8Array([...fill(PG - 1, 2), ...fill(PG, 2)]));
    expect(dev.migrationsToRam).toBe(1);
    // migrate_to_ram brought page 1 back for both, still shared read-only.
    const back = entryAt(c.mm, a + PG)!;
    expect(back.flags & (1 | PTE_WRITE)).toBe(1);
    expect(entryAt(p.mm, a + PG)).toEqual(back);
    expect(m.ram.refcount[back.pfn]).toBe(2);
    expect(dev.pm.refcount[e1.pfn - dev.pm.basePfn]).toBe(0);
    account(m);
  });

  machineTest('migrates the COW copies of a MAP_PRIVATE file mapping, not its page-cache pages', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 16);
    const p = m.spawn();
    const f = m.createFile(4 * PG);
    await f.pwrite(fill(4 * PG, 0x11), 0);
    const a = await p.mmap(0, 4 * PG, RW, MAP_PRIVATE, f, 0);
    const d = pattern(3 * PG, 40);
    await p.write(a, d); // pages 0-2: anonymous COW copies
    expect((await p.read(a + 3 * PG, 1))[0]).toBe(0x11); // page 3: the page-cache page
    const n = await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 4 * PG));
    expect(n).toBe(3);
    for (let i = 0; i < 3; i++) expect(swpKind(entryAt(p.mm, a + i * PG)!.flags)).toBe(SWP_DEVICE_WRITE);
    expect(entryAt(p.mm, a + 3 * PG)!.pfn).toBe(f.cache.get(3));
    account(m);
    expectBytes(await p.read(a, 3 * PG), d);
    expectBytes(await f.pread(4 * PG, 0), fill(4 * PG, 0x11)); // the file never changed
    account(m);
    await p.munmap(a, 4 * PG);
    f.close();
    await destroyAndCheckEmpty(m);
    expect(dev.free).toHaveLength(16);
  });

  machineTest.for([['omitted', false], ['passed', true]] as const)('a CPU touch of a device page shared after fork moves both mappings (faultPage %s)', async ([, passFaultPage], { machine: m }) => {
    const dev = new FakeDevice(m, 16, passFaultPage);
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    const d = pattern(4 * PG, 41);
    await p.write(a, d);
    expect(await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 4 * PG))).toBe(4);
    const c = await p.fork();
    const dpfn = entryAt(p.mm, a)!.pfn;
    expect(dev.pm.refcount[dpfn - dev.pm.basePfn]).toBe(2);
    const parentEv = recordEvents(p.mm);
    // The child reads page 0: do_swap_page → migrate_to_ram in the child's mm.
    expectBytes(await c.read(a, PG), d.subarray(0, PG));
    expect(dev.migrationsToRam).toBe(1);
    expect(parentEv.starts()).toMatchObject([{ event: 'CLEAR', start: a, end: a + PG }]);
    const e = entryAt(c.mm, a)!;
    expect(e.pfn).toBeLessThan(m.ram.npages);
    expect(e.flags & (1 | PTE_WRITE)).toBe(1);
    expect(entryAt(p.mm, a)).toEqual(e);
    expect(m.ram.refcount[e.pfn]).toBe(2);
    expect(dev.pm.refcount[dpfn - dev.pm.basePfn]).toBe(0);
    account(m);
    // The parent writes page 0 (COW copy), the child writes page 1 (migrate back, then COW).
    await p.write(a, fill(8, 0x77));
    await c.write(a + PG, fill(8, 0x66));
    expect(dev.migrationsToRam).toBe(2);
    expect(m.ram.refcount[e.pfn]).toBe(1);
    expect(entryAt(c.mm, a)!.pfn).toBe(e.pfn);
    account(m);
    expectBytes(await c.read(a, 4 * PG), new Uint8Array([...d.subarray(0, PG), ...fill(8, 0x66), ...d.subarray(PG + 8)]));
    expectBytes(await p.read(a, 4 * PG), new Uint8Array([...fill(8, 0x77), ...d.subarray(8)]));
    account(m);
    await c.exit();
    // The parent's page 1 now has one mapping: a write reuses it (do_wp_page, no copy).
    const p1 = entryAt(p.mm, a + PG)!.pfn;
    await p.write(a + PG, fill(1, 0x55));
    expect(entryAt(p.mm, a + PG)!.pfn).toBe(p1);
    account(m);
    await destroyAndCheckEmpty(m);
    expect(dev.free).toHaveLength(16);
  });

  machineTest('hmm_cow_in_device: a CPU write to a device page shared after fork ends writable in the writer', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 16);
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, pattern(4 * PG, 42));
    await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 4 * PG));
    const c = await p.fork();
    await p.write(a, pattern(4 * PG, 42));
    for (let i = 0; i < 4; i++) {
      const pe = entryAt(p.mm, a + i * PG)!;
      expect(pe.flags & (1 | PTE_WRITE)).toBe(1 | PTE_WRITE);
      const ce = entryAt(c.mm, a + i * PG)!;
      expect(ce.flags & (1 | PTE_WRITE)).toBe(1); // the child keeps the old page, read-only
      expect(ce.pfn).not.toBe(pe.pfn);
      expect(m.ram.refcount[ce.pfn]).toBe(1);
    }
    account(m);
    await c.exit();
    account(m);
    expectBytes(await p.read(a, 4 * PG), pattern(4 * PG, 42));
    await destroyAndCheckEmpty(m);
    expect(dev.free).toHaveLength(16);
  });

  machineTest('a pinned page (extra reference) is restored in every mm that mapped it', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 16);
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await p.write(a, pattern(2 * PG, 43));
    const c = await p.fork();
    const pinned = entryAt(p.mm, a)!.pfn;
    const pin = { reportRefs: (add: (pfn: number, n: number) => void) => add(pinned, 1) };
    m.core.getPage(pinned);
    m.core.refHolders.add(pin);
    expect(await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 2 * PG))).toBe(1);
    for (const mm of [p.mm, c.mm]) {
      expect(entryAt(mm, a)).toMatchObject({ pfn: pinned });
      expect(entryAt(mm, a)!.flags & (1 | PTE_WRITE)).toBe(1);
    }
    expect(m.ram.refcount[pinned]).toBe(3);
    expect(isDevicePrivate(entryAt(c.mm, a + PG)!.flags)).toBe(true);
    account(m);
    m.core.refHolders.delete(pin);
    m.core.putPage(pinned);
    expectBytes(await c.read(a, 2 * PG), pattern(2 * PG, 43));
    account(m);
  });

  machineTest('fork shares device-private pages read-only in both; munmap and exit drop them', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 16);
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await p.write(a, pattern(2 * PG, 32));
    await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 2 * PG));
    const c = await p.fork();
    const e = entryAt(c.mm, a)!;
    expect(swpKind(e.flags)).toBe(SWP_DEVICE_READ);
    expect(swpKind(entryAt(p.mm, a)!.flags)).toBe(SWP_DEVICE_READ);
    expect(dev.pm.refcount[e.pfn - dev.pm.basePfn]).toBe(2);
    account(m);
    await c.munmap(a, PG);
    expect(dev.pm.refcount[e.pfn - dev.pm.basePfn]).toBe(1);
    await c.exit();
    account(m);
    await destroyAndCheckEmpty(m);
    expect(dev.free).toHaveLength(16);
  });

  machineTest('splits a THP before collecting it', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 8);
    const p = m.spawn();
    const a = await p.mmap(0, HUGE, RW, ANON);
    await p.madvise(a, HUGE, MADV_HUGEPAGE);
    await p.write(a, pattern(HUGE, 33));
    expect(entryAt(p.mm, a)!.level).toBe('pmd');
    expect(await withRead(p.mm, () => dev.toDevice(p.mm, a + 8 * PG, a + 12 * PG))).toBe(4);
    expect(entryAt(p.mm, a)!.level).toBe('pte');
    account(m);
    expectBytes(await p.read(a, HUGE), pattern(HUGE, 33));
  });

  machineTest('rejects bad ranges with EINVAL', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await withRead(p.mm, async () => {
      await expect(migrateVmaSetup(p.mm, { start: a + 1, end: a + PG, flags: 1, pgmapOwner: null })).rejects.toBeErrno('EINVAL');
      await expect(migrateVmaSetup(p.mm, { start: a, end: a + 4 * PG, flags: 1, pgmapOwner: null })).rejects.toBeErrno('EINVAL');
    });
  });

  machineTest('pages without a destination stay where they were', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await p.write(a, pattern(2 * PG, 34));
    await withRead(p.mm, async () => {
      const mig = await migrateVmaSetup(p.mm, { start: a, end: a + 2 * PG, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmapOwner: null });
      expect(migratePfnFlags(mig.src[0]) & MIGRATE_PFN_WRITE).toBe(MIGRATE_PFN_WRITE);
      account(m);
      await migrateVmaPages(mig, [0, 0]);
      await migrateVmaFinalize(mig);
    });
    expect(entryAt(p.mm, a)!.flags & PTE_WRITE).toBe(PTE_WRITE);
    expectBytes(await p.read(a, 2 * PG), pattern(2 * PG, 34));
    account(m);
  });
});

describe('device-exclusive entries', () => {
  machineTest('EXCLUSIVE invalidation with the owner; a CPU touch restores (EXCLUSIVE, owner null)', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await p.write(a, fill(PG, 0x61));
    const owner = { dev: 1 };
    const rec = recordEvents(p.mm);
    const pfn = await withRead(p.mm, () => makeDeviceExclusive(p.mm, a, owner));
    expect(rec.starts()).toMatchObject([{ event: 'EXCLUSIVE', start: a, end: a + PG, owner }]);
    expect(isDeviceExclusive(entryAt(p.mm, a)!.flags)).toBe(true);
    expect(entryAt(p.mm, a)!.pfn).toBe(pfn);
    account(m);
    expect((await p.read(a, 1))[0]).toBe(0x61);
    expect(rec.starts()[1]).toMatchObject({ event: 'EXCLUSIVE', start: a, end: a + PG, owner: null });
    expect(entryAt(p.mm, a)).toMatchObject({ pfn });
    expect(entryAt(p.mm, a)!.flags & PTE_WRITE).toBe(PTE_WRITE);
    // Faults an absent page in first; fork restores exclusive entries before copying.
    await withRead(p.mm, () => makeDeviceExclusive(p.mm, a + PG, owner));
    const c = await p.fork();
    expect(isDeviceExclusive(entryAt(p.mm, a + PG)!.flags)).toBe(false);
    expect(entryAt(c.mm, a + PG)!.pfn).toBe(entryAt(p.mm, a + PG)!.pfn);
    account(m);
  });
});
