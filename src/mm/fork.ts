/**
 * fork()'s address-space copy (kernel/fork.c dup_mmap, mm/memory.c copy_page_range and
 * copy_{present,nonpresent}_pte, mm/huge_memory.c copy_huge_pmd, mm/hugetlb.c
 * copy_hugetlb_page_range). The parent's mmap lock is held for write throughout.
 *
 * Like the kernel, only VMAs that need it get their page tables copied (vma_needs_copy: an
 * anon_vma, hugetlb, or a driver's VM_MIXEDMAP mapping); shared file/shmem mappings without one are refaulted by the child
 * from the page cache. For a private (COW) VMA the parent's range is first invalidated with
 * PROTECTION_PAGE, then each writable entry is write-protected in both mms and its page gains
 * the child's reference.
 */
import { GUP_PIN_COUNTING_BIAS } from './gup.js';
import { restoreExclusivePte } from './fault.js';
import { splitHugePmdLocked } from './huge.js';
import { invalidateEnd, invalidateStart, type MmStruct } from './mm.js';
import {
  isDeviceExclusive, isDevicePrivate, isMigration, isPresent, PTE_ACCESSED, PTE_DIRTY, PTE_PRESENT, PTE_SPECIAL, PTE_WRITE, PMD_HUGE, swpKind, SWP_DEVICE_READ, SWP_DEVICE_WRITE, SWP_MASK, SWP_MIGRATION_READ,
  SWP_MIGRATION_WRITE, SWP_SWAP, type PteTable,
} from './page-table.js';
import { pagesIn, walkPageRangeVma, type MmWalk, type MmWalkOps } from './pagewalk.js';
import { AnonVma, isCowMapping, isHugetlb, Vma, VM_MIXEDMAP, VM_PFNMAP } from './vma.js';

/** The child's pfn when copyPte made a copy for it (copy_present_page), else -1. */
let copiedPfn = -1;

/**
 * folio_needs_cow_for_dma(): an order-0 anonymous page that may be DMA-pinned
 * (folio_maybe_dma_pinned: refcount >= GUP_PIN_COUNTING_BIAS) is copied at fork, so the
 * parent's next write cannot COW it away from under the device's pin.
 */
function needsCowForDma(core: MmStruct['core'], pfn: number, f: number): boolean {
  return (f & PTE_SPECIAL) === 0 && core.isAnonPage(pfn) && !core.ram.isHead(pfn) && !core.ram.isTail(pfn)
    && core.refcount(pfn) >= GUP_PIN_COUNTING_BIAS;
}

/** copy_nonpresent_pte / copy_present_pte for one entry; returns the child's entry flags. */
function copyPte(src: MmStruct, st: PteTable, j: number, cow: boolean): number {
  const core = src.core;
  let f = st.flags[j];
  const pfn = st.pfn[j];
  if (isDeviceExclusive(f)) {
    // try_restore_exclusive_pte(): back to a present PTE, then copied as one.
    restoreExclusivePte(st, j);
    f = st.flags[j];
  }
  if (isPresent(f)) {
    if (cow && needsCowForDma(core, pfn, f)) {
      // copy_present_page(): the parent keeps the pinned page, writable; the child gets a copy.
      try {
        const copy = core.allocAnon();
        core.ram.data(copy).set(core.pageData(pfn));
        core.ram.markWritten(copy);
        copiedPfn = copy;
        return PTE_PRESENT | PTE_DIRTY | (f & PTE_WRITE);
      } catch {
        // Out of frames: share it as usual (the kernel fails the fork with ENOMEM instead).
      }
    }
    core.getPage(pfn); // no-op for the zero page (pte_special)
    if (cow && (f & PTE_WRITE) !== 0) {
      st.flags[j] = f & ~PTE_WRITE; // ptep_set_wrprotect
      f &= ~PTE_WRITE;
    }
    return f & ~PTE_ACCESSED; // pte_mkold
  }
  const k = swpKind(f);
  if (k === SWP_SWAP) {
    core.swap.dup(pfn);
    return f;
  }
  if (isDevicePrivate(f)) {
    core.getPage(pfn);
    if (cow && k === SWP_DEVICE_WRITE) {
      f = (f & ~SWP_MASK) | SWP_DEVICE_READ;
      st.flags[j] = f;
    }
    return f;
  }
  if (isMigration(f)) {
    if (cow && k === SWP_MIGRATION_WRITE) {
      f = (f & ~SWP_MASK) | SWP_MIGRATION_READ;
      st.flags[j] = f;
    }
    return f;
  }
  return f;
}

interface CopyWalk extends MmWalk {
  readonly dst: MmStruct;
  /** The VMA is a private writable one: write-protect both sides (is_cow_mapping). */
  readonly cow: boolean;
}

/** copy_page_range()'s ops: copy_pte_range, and copy_huge_pmd / copy_hugetlb_page_range. */
const COPY_OPS: MmWalkOps<CopyWalk> = {
  pteEntry(w, st, j, addr, next) {
    if (st.used === 0) return 0;
    const dt = w.dst.pgtable.pteTable(addr, true)!;
    for (const to = j + pagesIn(addr, next); j < to; j++) {
      if (st.flags[j] === 0) continue;
      copiedPfn = -1;
      const f = copyPte(w.mm, st, j, w.cow);
      dt.set(j, copiedPfn >= 0 ? copiedPfn : st.pfn[j], f);
    }
    return 0;
  },
  pmdEntry(w, spmd, i, addr, next) {
    if (isDevicePrivate(spmd.flags[i]) || (isPresent(spmd.flags[i]) && w.mm.core.isDeviceCoherent(spmd.pfn[i]))) {
      // Departure: copy_huge_pmd shares a device-private (or device-coherent) THP read-only
      // in both mms; here the parent's PMD is split (its folio into order-0 device pages,
      // which the per-page reverse map and migration handle) and the PTEs are copied as
      // copy_pte_range does.
      splitHugePmdLocked(w.mm, addr);
      return COPY_OPS.pteEntry!(w, w.mm.pgtable.pteTable(addr, false)!, 0, addr, next);
    }
    // Share the page, write-protect if COW.
    const pfn = spmd.pfn[i];
    let f = spmd.flags[i] & ~PMD_HUGE;
    w.mm.core.getPage(pfn);
    if (w.cow && (f & PTE_WRITE) !== 0) {
      f &= ~PTE_WRITE;
      spmd.flags[i] = f | PMD_HUGE;
    }
    w.dst.pgtable.pmd(addr, true)!.setHuge(i, pfn, isHugetlb(w.vma!) ? f : f & ~PTE_ACCESSED);
    return 0;
  },
};

/** copy_page_range() for one VMA, synchronous. */
function copyPageRange(dst: MmStruct, src: MmStruct, vma: Vma): void {
  walkPageRangeVma<CopyWalk>({ mm: src, vma, dst, cow: isCowMapping(vma) }, COPY_OPS, vma, vma.start, vma.end);
}

/**
 * dup_mmap(): copy every VMA of `src` into the empty `dst`. The child's private VMAs get
 * their own anon_vma (anon_vma_fork), files gain a reference.
 */
export async function dupMmap(src: MmStruct, dst: MmStruct): Promise<void> {
  await src.lock.writeLock();
  try {
    src.checkAlive();
    for (const v of src.vmas) {
      const c = new Vma(v.start, v.end, v.flags, v.pgoff, v.file, v.anon !== null ? new AnonVma() : null);
      v.file?.get();
      dst.vmas.insert(c);
      // vma_needs_copy(): an anon_vma, hugetlb, or VM_PFNMAP/VM_MIXEDMAP (nothing to refault from).
      if (v.anon === null && !isHugetlb(v) && (v.flags & (VM_PFNMAP | VM_MIXEDMAP)) === 0) continue;
      const range = isCowMapping(v) ? await invalidateStart(src, v.start, v.end, 'PROTECTION_PAGE') : null;
      try {
        copyPageRange(dst, src, v);
      } finally {
        await invalidateEnd(src, range);
      }
    }
  } finally {
    src.lock.writeUnlock();
  }
}
