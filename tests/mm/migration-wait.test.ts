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
import type { DevPagemap } from '../../src/mm/pagemap.js';
import { isDevicePrivate, PTE_PRESENT, PTE_WRITE } from '../../src/mm/page-table.js';
import { SeededScheduler } from '../../src/sched/seeded.js';
import { FakeDevice, withRead } from './fake-device.js';
import { account, entryAt, expectBytes, PG, pattern } from './helpers.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('a CPU fault on a device page another migration holds waits for it', () => {
  it.for([1, 2, 3, 7, 42])('fork-shared device page: the child\'s touch during the parent\'s migration waits (seed %s)', async (seed) => {
    const s = new SeededScheduler(seed);
    const m = new Machine({ systemPages: 4096, scheduler: s });
    const dev = new FakeDevice(m, 8, true); // migrate_to_ram passes the fault page
    const p = m.spawn();
    const a = await p.mmap(0, PG, RW, ANON);
    const d = pattern(PG, 5);
    await p.write(a, d);
    await withRead(p.mm, () => dev.toDevice(p.mm, a, a + PG));
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
});
