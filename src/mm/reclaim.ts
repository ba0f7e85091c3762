/**
 * MADV_PAGEOUT (mm/madvise.c madvise_cold_or_pageout_pte_range + mm/vmscan.c reclaim of the
 * isolated folios, with try_to_unmap's CLEAR invalidation per page). Under the mmap read lock.
 *
 * - A private anonymous page this mm alone holds goes to swap: its data to a new slot, the
 *   PTE to SWP_SWAP(slot), the frame freed (and zeroed). do_swap_page brings it back.
 * - A page-cache page mapped only here (file or shmem) loses this mapping; the cache keeps it.
 * - Pages shared with another mm (folio_maybe_mapped_shared) and the zero page are skipped.
 * - A THP is split first (its PMD leaf, CLEAR over the 2 MiB block); the pieces follow the
 *   rules above.
 */
import { PAGE_SIZE, PMD_SIZE } from './constants.js';
import { splitHugePmd } from './huge.js';
import { invalidateEnd, invalidateStart, type MmStruct } from './mm.js';
import { isPresent, pmdIndex, pteIndex, PTE_SPECIAL, SWP_SWAP, type PteTable } from './page-table.js';
import { PG_FILE } from './pages.js';
import type { Vma } from './vma.js';

/** Whether the present PTE (pfn, flags) may be reclaimed from this mm now. */
function reclaimable(mm: MmStruct, pfn: number, flags: number): 'swap' | 'drop' | null {
  if (!isPresent(flags) || (flags & PTE_SPECIAL) !== 0) return null;
  const core = mm.core;
  if (!core.isSystemPfn(pfn) || core.ram.isTail(pfn) || core.ram.isHead(pfn)) return null;
  if (core.isAnonPage(pfn)) return core.refcount(pfn) === 1 ? 'swap' : null;
  if (core.pageKind[pfn] === PG_FILE) return core.refcount(pfn) === 2 ? 'drop' : null;
  return null;
}

function pteAt(mm: MmStruct, a: number): PteTable | null {
  return mm.pgtable.pteTable(a, false);
}

export async function pageoutRange(mm: MmStruct, vma: Vma, start: number, end: number): Promise<number> {
  const core = mm.core;
  // THP leaves: split those that only this mm maps (folio_maybe_mapped_shared skips others).
  for (let h = start - (start % PMD_SIZE); h < end; h += PMD_SIZE) {
    const pmd = mm.pgtable.pmd(h, false);
    if (pmd !== null && pmd.isHuge(pmdIndex(h)) && isPresent(pmd.flags[pmdIndex(h)]) && core.refcount(pmd.pfn[pmdIndex(h)]) === 1) await splitHugePmd(mm, h);
  }
  const candidates: number[] = [];
  for (let a = start; a < end; a += PAGE_SIZE) {
    const t = pteAt(mm, a);
    if (t === null) {
      a = a - (a % PMD_SIZE) + PMD_SIZE - PAGE_SIZE;
      continue;
    }
    const j = pteIndex(a);
    if (reclaimable(mm, t.pfn[j], t.flags[j]) !== null) candidates.push(a);
  }
  let reclaimed = 0;
  for (const a of candidates) {
    const range = await invalidateStart(mm, a, a + PAGE_SIZE, 'CLEAR');
    try {
      const t = pteAt(mm, a);
      if (t === null) continue;
      const j = pteIndex(a);
      const pfn = t.pfn[j];
      const how = reclaimable(mm, pfn, t.flags[j]);
      if (how === 'swap') {
        const slot = core.swap.store(core.ram.data(pfn));
        t.set(j, slot, SWP_SWAP);
      } else if (how === 'drop') {
        t.clear(j);
      } else {
        continue;
      }
      core.putPage(pfn);
      reclaimed++;
    } finally {
      await invalidateEnd(mm, range);
    }
  }
  void vma;
  return reclaimed;
}
