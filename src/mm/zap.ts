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
import { isDeviceExclusive, isDevicePrivate, isPresent, PTE_SPECIAL, swpKind, SWP_SWAP } from './page-table.js';
import { pagesIn, walkPageRangeNovma, type MmWalk, type MmWalkOps } from './pagewalk.js';
import type { MemCore } from './pages.js';

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

interface ZapWalk extends MmWalk {
  readonly core: MemCore;
}

/** unmap_page_range's ops: zap_pte_range and zap_huge_pmd. */
const ZAP_OPS: MmWalkOps<ZapWalk> = {
  pteEntry(w, t, j, addr, next) {
    if (t.used === 0) return 0;
    for (const to = j + pagesIn(addr, next); j < to; j++) {
      const f = t.flags[j];
      if (f === 0) continue;
      const pfn = t.pfn[j];
      t.clear(j);
      releaseEntry(w.core, pfn, f);
    }
    return 0;
  },
  pmdEntry(w, pmd, i, addr, next) {
    if (addr % PMD_SIZE !== 0 || next - addr !== PMD_SIZE) {
      throw new Error(`zap of a partial PMD leaf at 0x${addr.toString(16)}`);
    }
    // zap_huge_pmd: a present leaf or a device-private THP gives back its folio reference; a
    // migration PMD holds none (its migration does).
    const pfn = pmd.pfn[i];
    const f = pmd.flags[i];
    pmd.setHuge(i, 0, 0);
    if (isPresent(f) || isDevicePrivate(f)) w.core.putPage(pfn);
    return 0;
  },
};

/**
 * unmap_page_range() over [start, end), synchronous. PMD leaves must be fully covered (the
 * caller split straddling THPs; hugetlb ranges are 2 MiB aligned). Page tables only: munmap
 * and exit zap after the VMAs are gone.
 */
export function zapRangeLocked(mm: MmStruct, start: number, end: number): void {
  walkPageRangeNovma<ZapWalk>({ mm, vma: null, core: mm.core }, ZAP_OPS, start, end);
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
