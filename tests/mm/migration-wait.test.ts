/**
 * A CPU fault on a device-private page that another migration holds (the folio lock) waits
 * for that migration to finish, as do_swap_page does when folio_trylock fails
 * (migration_entry_wait_on_locked), instead of spinning on migrate_to_ram until it gives up.
 * Deterministic under the SeededScheduler: the migrating side's notifier sleeps on virtual
 * time, which only advances once every task is asleep — a spinning fault never lets it.
 */
import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { Machine } from '../../src/mm/machine.js';
import type { MmStruct } from '../../src/mm/mm.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn,
  migratePfnFlags, migratePfnToPfn, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup,
} from '../../src/mm/migrate.js';
import type { DevPagemap } from '../../src/mm/pagemap.js';
import { isDevicePrivate, PTE_PRESENT, PTE_WRITE } from '../../src/mm/page-table.js';
import { SeededScheduler } from '../../src/sched/seeded.js';
import { account, entryAt, expectBytes, PG, pattern } from './helpers.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** A device whose memory is host arrays; migrate_to_ram is dmirror_devmem_fault's flow. */
class ToyDevice {
  readonly owner = { name: 'toy' };
  readonly pm: DevPagemap;
  readonly mem = new Map<number, Uint8Array>();
  readonly free: number[] = [];
  migrationsToRam = 0;

  constructor(readonly m: Machine, npages: number) {
    this.pm = m.registerPagemap({
      npages,
      owner: this.owner,
      migrateToRam: (f) => this.migrateToRam(f.mm, f.addr, f.pfn),
      pageFree: (pfn) => { this.mem.delete(pfn); this.free.push(pfn); },
    });
    for (let i = npages - 1; i >= 0; i--) this.free.push(this.pm.basePfn + i);
  }

  async toDevice(mm: MmStruct, start: number, end: number): Promise<void> {
    await mm.lock.readLock();
    try {
      const mig = await migrateVmaSetup(mm, { start, end, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmapOwner: this.owner });
      const dst = new Array<number>(mig.npages).fill(0);
      for (let i = 0; i < mig.npages; i++) {
        const s = mig.src[i];
        if ((migratePfnFlags(s) & MIGRATE_PFN_MIGRATE) === 0) continue;
        const d = this.free.pop()!;
        this.pm.pageInit(d);
        this.mem.set(d, (migratePfnFlags(s) & MIGRATE_PFN_VALID) !== 0 ? this.m.ram.data(migratePfnToPfn(s)).slice() : new Uint8Array(PG));
        dst[i] = migratePfn(d);
      }
      await migrateVmaPages(mig, dst);
      await migrateVmaFinalize(mig);
    } finally {
      mm.lock.readUnlock();
    }
  }

  async migrateToRam(mm: MmStruct, addr: number, faultPage: number): Promise<void> {
    this.migrationsToRam++;
    const mig = await migrateVmaSetup(mm, {
      start: addr, end: addr + PG, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, pgmapOwner: this.owner, faultPage,
    });
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

describe('a CPU fault on a device page another migration holds waits for it', () => {
  for (const seed of [1, 2, 3, 7, 42]) {
    it(`fork-shared device page: the child's touch during the parent's migration waits (seed ${seed})`, async () => {
      const s = new SeededScheduler(seed);
      const m = new Machine({ systemPages: 4096, scheduler: s });
      const dev = new ToyDevice(m, 8);
      const p = m.spawn();
      const a = await p.mmap(0, PG, RW, ANON);
      const d = pattern(PG, 5);
      await p.write(a, d);
      await dev.toDevice(p.mm, a, a + PG);
      const c = await p.fork();
      const dpfn = entryAt(c.mm, a)!.pfn;
      expect(isDevicePrivate(entryAt(c.mm, a)!.flags)).toBe(true);

      // The parent's migrate_to_ram locks the page (its own entry becomes a migration entry),
      // then try_to_migrate invalidates the child's mapping: a slow shootdown (a GPU's) during
      // which the child still holds the device-private entry and touches the page.
      let childRead: Promise<Uint8Array | Error> | null = null;
      let childEntryDuringShootdown = -1;
      c.mm.notifiers.register({
        invalidateRangeStart: (r) => {
          if (r.event !== 'CLEAR' || childRead !== null) return true;
          childEntryDuringShootdown = entryAt(c.mm, a)!.flags;
          childRead = s.spawn('child-read', () => c.read(a, PG)).catch((e: unknown) => e as Error);
          return s.sleep(1, 'gpu-shootdown').then(() => true);
        },
      });
      const parentRead = await p.read(a, PG);
      expect(childRead).not.toBeNull();
      expect(isDevicePrivate(childEntryDuringShootdown)).toBe(true);
      const got = await childRead!;
      expect(got).toBeInstanceOf(Uint8Array); // before the fix: Error "fault ... does not resolve"
      expectBytes(got as Uint8Array, d);
      expectBytes(parentRead, d);
      // One migration moved both mappings; the child never called migrate_to_ram.
      expect(dev.migrationsToRam).toBe(1);
      const pe = entryAt(p.mm, a)!;
      expect(pe.pfn).toBeLessThan(m.ram.npages);
      expect(pe.flags & (PTE_PRESENT | PTE_WRITE)).toBe(PTE_PRESENT);
      expect(entryAt(c.mm, a)).toEqual(pe);
      expect(dev.pm.refcount[dpfn - dev.pm.basePfn]).toBe(0);
      expect(m.core.migrationWq.waiting).toBe(0);
      account(m);
      await m.destroy();
      expect(dev.free).toHaveLength(8);
      expect(account(m).usedFrames).toBe(1);
    });
  }
});
