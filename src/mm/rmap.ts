/**
 * A reverse map for order-0 anonymous pages and device-private pages (the part of mm/rmap.c
 * rmap_walk_anon that device migration needs: try_to_migrate, remove_migration_ptes).
 *
 * The kernel follows the page's anon_vma chain to every VMA that may map it and finds the
 * address from the page's index (vma_address: vm_start + (pgoff - vm_pgoff) pages). Here an
 * anonymous (or device-private) page reaches another mm only through fork, which copies
 * each VMA with its vm_pgoff; mremap moves a VMA keeping vm_pgoff. So the mappings of a
 * page are the private VMAs, in any live mm, covering the page's index, at the address
 * vma_address gives — those whose entry there names the page's pfn (the pfn stands in for
 * the anon_vma chain: an unrelated VMA with the same index maps another pfn). Walks are
 * synchronous (they read and write entries under the implicit PTL of a synchronous stretch).
 */
import { PAGE_SIZE } from './constants.js';
import type { MmStruct } from './mm.js';
import { isDeviceExclusive, isDevicePrivate, isMigration, isPresent, PTE_SPECIAL, type PteTable } from './page-table.js';
import { entrySlot, followEntry } from './pagewalk.js';
import type { MemCore } from './pages.js';
import { VM_SHARED } from './vma.js';

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

/** The anon index (linear_page_index) of address a in mm, or null outside private VMAs. */
function anonIndex(mm: MmStruct, a: number): number | null {
  const v = mm.vmas.lookup(a);
  return v === undefined || (v.flags & VM_SHARED) !== 0 ? null : v.pageIndex(a);
}

/**
 * vma_address() in every private VMA of `mm` covering anon index `idx` (in address order):
 * where mm may map the page the origin maps at index idx.
 */
function addressesIn(mm: MmStruct, idx: number, out: number[]): void {
  for (const v of mm.vmas) {
    if ((v.flags & VM_SHARED) !== 0 || idx < v.pgoff || idx >= v.pgoff + v.pages) continue;
    out.push(v.start + (idx - v.pgoff) * PAGE_SIZE);
  }
}

/**
 * Every live mm (other than `self` when given) whose 4 KiB entry at the page's address in
 * it satisfies `match` (given the entry's flags and pfn), with the address and slot. The
 * page is the one `origin` maps at `a`. A snapshot: callers that await re-check the entry.
 */
export function rmapWalk(
  core: MemCore, origin: MmStruct, a: number, self: MmStruct | null, match: (flags: number, pfn: number) => boolean,
): { mm: MmStruct; addr: number; t: PteTable; j: number }[] {
  const out: { mm: MmStruct; addr: number; t: PteTable; j: number }[] = [];
  const idx = origin.exited ? null : anonIndex(origin, a);
  const addrs: number[] = [];
  for (const mm of core.mms) {
    if (mm === self || mm.exited) continue;
    addrs.length = 0;
    if (mm === origin || idx === null) addrs.push(a);
    else addressesIn(mm, idx, addrs);
    for (const x of addrs) {
      const s = pteSlot(mm, x);
      if (s !== null && match(s.t.flags[s.j], s.t.pfn[s.j])) out.push({ mm, addr: x, t: s.t, j: s.j });
    }
  }
  return out;
}

/**
 * Whether some migration (folio lock held) already has pfn, which `origin` maps (or has
 * behind a migration entry) at a, behind a migration entry anywhere.
 */
export function underMigration(core: MemCore, origin: MmStruct, a: number, pfn: number): boolean {
  return rmapWalk(core, origin, a, null, (f, p) => p === pfn && isMigration(f)).length > 0;
}
