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
import { PMD_SIZE } from './constants.js';
import { restoreExclusivePte } from './fault.js';
import { invalidateEnd, invalidateStart, type MmStruct } from './mm.js';
import {
  isDeviceExclusive, isDevicePrivate, isMigration, isPresent, pmdIndex, pteIndex, PTE_ACCESSED, PTE_WRITE,
  PTRS_PER_TABLE, PMD_HUGE, swpKind, SWP_DEVICE_READ, SWP_DEVICE_WRITE, SWP_MASK, SWP_MIGRATION_READ,
  SWP_MIGRATION_WRITE, SWP_SWAP, type PteTable,
} from './page-table.js';
import { AnonVma, isCowMapping, isHugetlb, Vma, VM_MIXEDMAP, VM_PFNMAP } from './vma.js';

const PUD_SPAN = PMD_SIZE * PTRS_PER_TABLE;

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

/** copy_page_range() for one VMA, synchronous. */
function copyPageRange(dst: MmStruct, src: MmStruct, vma: Vma): void {
  const core = src.core;
  const cow = isCowMapping(vma);
  for (let a = vma.start; a < vma.end;) {
    const spmd = src.pgtable.pmd(a, false);
    if (spmd === null) {
      a = Math.floor(a / PUD_SPAN) * PUD_SPAN + PUD_SPAN;
      continue;
    }
    const next = Math.min(vma.end, Math.floor(a / PMD_SIZE) * PMD_SIZE + PMD_SIZE);
    const i = pmdIndex(a);
    if (spmd.isHuge(i)) {
      // copy_huge_pmd (THP) / copy_hugetlb_page_range: share the page, write-protect if COW.
      const pfn = spmd.pfn[i];
      let f = spmd.flags[i] & ~PMD_HUGE;
      core.getPage(pfn);
      if (cow && (f & PTE_WRITE) !== 0) {
        f &= ~PTE_WRITE;
        spmd.flags[i] = f | PMD_HUGE;
      }
      dst.pgtable.pmd(a, true)!.setHuge(i, pfn, isHugetlb(vma) ? f : f & ~PTE_ACCESSED);
    } else {
      const st = spmd.tables[i];
      if (st !== null && st.used > 0) {
        const dt = dst.pgtable.pteTable(a, true)!;
        const to = next % PMD_SIZE === 0 ? PTRS_PER_TABLE : pteIndex(next);
        for (let j = pteIndex(a); j < to; j++) {
          if (st.flags[j] === 0) continue;
          const f = copyPte(src, st, j, cow);
          dt.set(j, st.pfn[j], f);
        }
      }
    }
    a = next;
  }
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
