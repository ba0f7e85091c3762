/**
 * A reverse map for order-0 anonymous pages and device-private pages (the part of mm/rmap.c
 * rmap_walk_anon that device migration needs: try_to_migrate, remove_migration_ptes).
 *
 * The kernel follows the page's anon_vma chain to every VMA that may map it. Here an
 * anonymous (or device-private) page reaches another mm only through fork, which maps it at
 * the same virtual address (there is no mremap), so the mappings of a page are exactly the
 * live mms whose entry at that address names the page's pfn. Walks are synchronous (they
 * read and write entries under the implicit PTL of a synchronous stretch).
 */
import type { MmStruct } from './mm.js';
import { isDeviceExclusive, isDevicePrivate, isMigration, isPresent, PTE_SPECIAL, type PteTable } from './page-table.js';
import { entrySlot, followEntry } from './pagewalk.js';
import type { MemCore } from './pages.js';

const slot = entrySlot();

/** The PTE table and index holding addr's 4 KiB entry in mm (null for none or a PMD leaf). */
export function pteSlot(mm: MmStruct, a: number): { t: PteTable; j: number } | null {
  return followEntry(mm, a, slot) && slot.pte !== null ? { t: slot.pte, j: slot.i } : null;
}

/** Whether an entry maps pfn as a page (present non-special, device-private or -exclusive). */
export function entryMaps(flags: number, entryPfn: number, pfn: number): boolean {
  if (flags === 0 || entryPfn !== pfn) return false;
  if (isPresent(flags)) return (flags & PTE_SPECIAL) === 0;
  return isDevicePrivate(flags) || isDeviceExclusive(flags);
}

/**
 * Every live mm other than `self` whose 4 KiB entry at `a` satisfies `match` (given the
 * entry's flags and pfn), with the slot. A snapshot: callers that await re-check the entry.
 */
export function rmapAt(
  core: MemCore, self: MmStruct | null, a: number, match: (flags: number, pfn: number) => boolean,
): { mm: MmStruct; t: PteTable; j: number }[] {
  const out: { mm: MmStruct; t: PteTable; j: number }[] = [];
  for (const mm of core.mms) {
    if (mm === self || mm.exited) continue;
    const s = pteSlot(mm, a);
    if (s !== null && match(s.t.flags[s.j], s.t.pfn[s.j])) out.push({ mm, t: s.t, j: s.j });
  }
  return out;
}

/** Whether some migration (folio lock held) already has pfn behind a migration entry at a. */
export function underMigration(core: MemCore, a: number, pfn: number): boolean {
  return rmapAt(core, null, a, (f, p) => p === pfn && isMigration(f)).length > 0;
}
