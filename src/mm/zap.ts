/**
 * Tearing down translations (mm/memory.c: unmap_page_range / zap_pte_range /
 * zap_huge_pmd, zap_page_range_single). Every dropped entry gives back what it held: a page
 * reference for a present PTE or PMD leaf, a device-private or device-exclusive entry, a
 * swap count for a swap entry. Migration entries hold nothing (the migration holds the page).
 */
import { PAGE_SIZE, PMD_SIZE } from './constants.js';
import { hasStraddlingThp, splitPartialHugePmds } from './huge.js';
import { invalidateEnd, invalidateStart, type MmStruct } from './mm.js';
import type { MmuNotifyEvent } from './notifier.js';
import {
  isDeviceExclusive, isDevicePrivate, isPresent, pmdIndex, pteIndex, PTE_SPECIAL, PTRS_PER_TABLE,
  swpKind, SWP_SWAP, type PteTable,
} from './page-table.js';
import type { MemCore } from './pages.js';

const PUD_SPAN = PMD_SIZE * PTRS_PER_TABLE;

/** Release whatever a single page-table entry held (zap_present_pte / zap_nonpresent_ptes). */
export function releaseEntry(core: MemCore, pfn: number, flags: number): void {
  if (flags === 0) return;
  if (isPresent(flags)) {
    if ((flags & PTE_SPECIAL) === 0) core.putPage(pfn);
  } else if (swpKind(flags) === SWP_SWAP) {
    core.swap.free(pfn);
  } else if (isDevicePrivate(flags) || isDeviceExclusive(flags)) {
    core.putPage(pfn);
  }
}

function zapPteRange(core: MemCore, t: PteTable, from: number, to: number): void {
  for (let j = from; j < to; j++) {
    const f = t.flags[j];
    if (f === 0) continue;
    const pfn = t.pfn[j];
    t.clear(j);
    releaseEntry(core, pfn, f);
  }
}

/**
 * unmap_page_range() over [start, end), synchronous. PMD leaves must be fully covered (the
 * caller split straddling THPs; hugetlb ranges are 2 MiB aligned).
 */
export function zapRangeLocked(mm: MmStruct, start: number, end: number): void {
  const pt = mm.pgtable;
  for (let a = start; a < end;) {
    const pmd = pt.pmd(a, false);
    if (pmd === null) {
      a = Math.floor(a / PUD_SPAN) * PUD_SPAN + PUD_SPAN;
      continue;
    }
    const next = Math.min(end, Math.floor(a / PMD_SIZE) * PMD_SIZE + PMD_SIZE);
    const i = pmdIndex(a);
    if (pmd.isHuge(i)) {
      if (a % PMD_SIZE !== 0 || next - a !== PMD_SIZE) {
        throw new Error(`zap of a partial PMD leaf at 0x${a.toString(16)}`);
      }
      const pfn = pmd.pfn[i];
      pmd.setHuge(i, 0, 0);
      mm.core.putPage(pfn);
    } else {
      const t = pmd.tables[i];
      if (t !== null && t.used > 0) {
        zapPteRange(mm.core, t, pteIndex(a), next % PMD_SIZE === 0 ? PTRS_PER_TABLE : pteIndex(next));
      }
    }
    a = next;
  }
}

/**
 * zap_page_range_single() (MADV_DONTNEED: event CLEAR) or unmap_vmas() (munmap, MAP_FIXED
 * replacement: UNMAP): split THPs the range cuts through, then invalidate and zap. Under the
 * read lock a racing fault may put a THP back between the split and the zap; then retry.
 */
export async function zapRange(mm: MmStruct, start: number, end: number, event: MmuNotifyEvent): Promise<void> {
  for (;;) {
    await splitPartialHugePmds(mm, start, end);
    const range = await invalidateStart(mm, start, end, event);
    try {
      if (hasStraddlingThp(mm, start, end)) continue;
      zapRangeLocked(mm, start, end);
      return;
    } finally {
      await invalidateEnd(mm, range);
    }
  }
}

export function pageAlignUp(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}
