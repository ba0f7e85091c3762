import { describe, expect, it } from 'vitest';
import { MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, type Machine } from '../../src/index.js';
import type { MmStruct } from '../../src/mm/mm.js';
import {
  makeDeviceExclusive, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnFlags, migratePfnToPfn, migrateVmaFinalize, migrateVmaPages,
  migrateVmaSetup,
} from '../../src/mm/migrate.js';
import type { DevPagemap } from '../../src/mm/pagemap.js';
import {
  isDeviceExclusive, isDevicePrivate, isMigration, PTE_WRITE, swpKind, SWP_DEVICE_READ, SWP_DEVICE_WRITE,
} from '../../src/mm/page-table.js';
import { account, destroyAndCheckEmpty, entryAt, expectBytes, fill, HUGE, PG, pattern, recordEvents, smallMachine } from './helpers.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** A toy device: a pagemap, a free list and device "memory" in host arrays. */
class FakeDevice {
  readonly owner = { name: 'fake-device' };
  readonly pm: DevPagemap;
  readonly mem = new Map<number, Uint8Array>();
  readonly free: number[] = [];
  migrationsToRam = 0;

  constructor(readonly m: Machine, npages: number) {
    this.pm = m.registerPagemap({
      npages,
      owner: this.owner,
      migrateToRam: (f) => this.migrateToRam(f.mm, f.addr),
      pageFree: (pfn) => { this.mem.delete(pfn); this.free.push(pfn); },
    });
    for (let i = npages - 1; i >= 0; i--) this.free.push(this.pm.basePfn + i);
  }

  alloc(): number {
    const pfn = this.free.pop()!;
    this.pm.pageInit(pfn);
    return pfn;
  }

  /** The dmirror_migrate_to_device flow, under the caller's mmap read lock. */
  async toDevice(mm: MmStruct, start: number, end: number): Promise<number> {
    const mig = await migrateVmaSetup(mm, { start, end, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmapOwner: this.owner });
    const dst = new Array<number>(mig.npages).fill(0);
    for (let i = 0; i < mig.npages; i++) {
      const s = mig.src[i];
      if ((migratePfnFlags(s) & MIGRATE_PFN_MIGRATE) === 0) continue;
      const d = this.alloc();
      const data = (migratePfnFlags(s) & MIGRATE_PFN_VALID) !== 0 ? this.m.ram.data(migratePfnToPfn(s)).slice() : new Uint8Array(PG);
      this.mem.set(d, data);
      dst[i] = migratePfn(d);
    }
    await migrateVmaPages(mig, dst);
    const n = mig.cpages;
    await migrateVmaFinalize(mig);
    return n;
  }

  /** dmirror_devmem_fault: bring one page back. */
  async migrateToRam(mm: MmStruct, addr: number): Promise<void> {
    this.migrationsToRam++;
    const mig = await migrateVmaSetup(mm, { start: addr, end: addr + PG, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, pgmapOwner: this.owner });
    const dst = [0];
    if ((migratePfnFlags(mig.src[0]) & MIGRATE_PFN_MIGRATE) !== 0) {
      const page = this.m.ram.alloc();
      this.m.ram.data(page).set(this.mem.get(migratePfnToPfn(mig.src[0]))!);
      dst[0] = migratePfn(page);
    }
    await migrateVmaPages(mig, dst);
    await migrateVmaFinalize(mig);
  }
}

async function withRead<T>(mm: MmStruct, fn: () => Promise<T>): Promise<T> {
  await mm.lock.readLock();
  try {
    return await fn();
  } finally {
    mm.lock.readUnlock();
  }
}

describe('device-private migration', () => {
  it('migrates anon pages to device memory (MIGRATE with owner) and back on CPU touch', async () => {
    const m = await smallMachine();
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
    await destroyAndCheckEmpty(m);
  });

  it('skips shared mappings and pages shared with another mm', async () => {
    const m = await smallMachine();
    const dev = new FakeDevice(m, 16);
    const p = m.spawn();
    const s = await p.mmap(0, 2 * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
    await p.write(s, fill(2 * PG, 1));
    expect(await withRead(p.mm, () => dev.toDevice(p.mm, s, s + 2 * PG))).toBe(0);
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await p.write(a, fill(2 * PG, 2));
    const c = await p.fork();
    await c.write(a, fill(1, 3)); // child COWs page 0: parent's page 0 is exclusive again
    const n = await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 2 * PG));
    expect(n).toBe(1);
    expect(isDevicePrivate(entryAt(p.mm, a)!.flags)).toBe(true);
    expect(entryAt(p.mm, a + PG)!.flags & 1).toBe(1);
    account(m);
    await destroyAndCheckEmpty(m);
  });

  it('fork shares device-private pages read-only in both; munmap and exit drop them', async () => {
    const m = await smallMachine();
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

  it('splits a THP before collecting it', async () => {
    const m = await smallMachine();
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
    await destroyAndCheckEmpty(m);
  });

  it('rejects bad ranges with EINVAL', async () => {
    const m = await smallMachine();
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await withRead(p.mm, async () => {
      await expect(migrateVmaSetup(p.mm, { start: a + 1, end: a + PG, flags: 1, pgmapOwner: null })).rejects.toMatchObject({ code: 'EINVAL' });
      await expect(migrateVmaSetup(p.mm, { start: a, end: a + 4 * PG, flags: 1, pgmapOwner: null })).rejects.toMatchObject({ code: 'EINVAL' });
    });
    await destroyAndCheckEmpty(m);
  });

  it('pages without a destination stay where they were', async () => {
    const m = await smallMachine();
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
    await destroyAndCheckEmpty(m);
  });
});

describe('device-exclusive entries', () => {
  it('EXCLUSIVE invalidation with the owner; a CPU touch restores (EXCLUSIVE, owner null)', async () => {
    const m = await smallMachine();
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
    await destroyAndCheckEmpty(m);
  });
});
