/**
 * PMD-mapped 2 MiB pages (mm/huge_memory.c, mm/hugetlb.c): THP faults and splits, and
 * hugetlb faults. A compound page keeps its whole refcount in the head: each PMD mapping
 * holds one, and after __split_huge_pmd each PTE mapping a subpage holds one.
 */
import { PAGE_SIZE, PMD_PAGES, PMD_SIZE } from './constants.js';
import { invalidateEnd, invalidateStart, type MmStruct } from './mm.js';
import { isDevicePrivate, isMigration, PTE_ACCESSED, PTE_DIRTY, PTE_PRESENT, PTE_SPECIAL, PTE_WRITE, PMD_HUGE, pmdIndex } from './page-table.js';
import { PG_ANON } from './pages.js';
import { AnonVma, isHugetlb, isPrivateAnon, isShared, VM_HUGEPAGE, VM_WRITE, type Vma } from './vma.js';

export const VM_FAULT_OOM = 0x1;
export const VM_FAULT_SIGBUS = 0x2;
export const VM_FAULT_SIGSEGV = 0x40;
/** Internal: the PMD path declined; go on with PTEs (VM_FAULT_FALLBACK). */
export const VM_FAULT_FALLBACK = 0x800;

export function pmdAlignDown(addr: number): number {
  return addr - (addr % PMD_SIZE);
}

/** anon_vma_prepare(): give a private VMA its anon_vma on its first anonymous page. */
export function anonVmaPrepare(vma: Vma): void {
  if (vma.anon === null) vma.anon = new AnonVma();
}

/**
 * thp_vma_allowable_order + thp_vma_suitable_order: a private anonymous VMA with
 * VM_HUGEPAGE ("madvise" mode) whose 2 MiB block at haddr lies fully inside it.
 */
export function thpSuitable(vma: Vma, haddr: number): boolean {
  return isPrivateAnon(vma) && (vma.flags & VM_HUGEPAGE) !== 0 && haddr >= vma.start && haddr + PMD_SIZE <= vma.end;
}

/**
 * do_huge_pmd_anonymous_page(): a read maps the huge zero page; a write, a zeroed THP mapped
 * by one PMD leaf, writable.
 * Returns VM_FAULT_FALLBACK when no 2 MiB block is free (count_vm_event(THP_FAULT_FALLBACK)).
 */
export function doHugePmdAnonymousPage(mm: MmStruct, vma: Vma, haddr: number, write: boolean): number {
  const pmd = mm.pgtable.pmd(haddr, true)!;
  const i = pmdIndex(haddr);
  if (pmd.flags[i] !== 0 || pmd.tables[i] !== null) return VM_FAULT_FALLBACK;
  if (!write) {
    // A read maps the huge zero page (set_huge_zero_folio): special, read-only.
    try {
      pmd.setHuge(i, mm.core.getHugeZero(), PTE_PRESENT | PTE_SPECIAL | PTE_ACCESSED);
      return 0;
    } catch {
      return VM_FAULT_FALLBACK;
    }
  }
  let head: number;
  try {
    head = mm.core.allocAnonHuge();
  } catch {
    return VM_FAULT_FALLBACK;
  }
  anonVmaPrepare(vma);
  const w = (vma.flags & VM_WRITE) !== 0 ? PTE_WRITE | PTE_DIRTY : 0;
  pmd.setHuge(i, head, PTE_PRESENT | PTE_ACCESSED | w);
  return 0;
}

/**
 * __split_huge_pmd_locked(): replace the PMD leaf at haddr with a PTE table mapping the same
 * 512 subpages with the same permissions. When this PMD was the only reference the compound
 * page is split into order-0 pages at once (what the deferred split would do later), so a
 * partial unmap frees the rest; otherwise each PTE takes a reference on the head.
 * Synchronous: the caller has already sent the invalidation.
 */
export function splitHugePmdLocked(mm: MmStruct, haddr: number): void {
  const pmd = mm.pgtable.pmd(haddr, false);
  const i = pmdIndex(haddr);
  if (pmd === null || !pmd.isHuge(i)) return;
  const head = pmd.pfn[i];
  const flags = pmd.flags[i] & ~PMD_HUGE;
  // A migration PMD is split by its migration only (migrate_vma_split_unmapped_folio);
  // splitHugePmd waits for it to end first.
  if (isMigration(flags)) throw new Error(`split of a migration PMD at 0x${haddr.toString(16)}`);
  pmd.setHuge(i, 0, 0);
  const t = mm.pgtable.pteTable(haddr, true)!;
  const core = mm.core;
  if (core.isHugeZero(head)) {
    // __split_huge_zero_page_pmd(): 512 PTEs of the small zero page; the PMD's reference goes.
    for (let j = 0; j < PMD_PAGES; j++) t.set(j, core.ram.zeroPfn, PTE_PRESENT | PTE_SPECIAL | PTE_ACCESSED);
    core.putPage(head);
    return;
  }
  for (let j = 0; j < PMD_PAGES; j++) t.set(j, head + j, flags);
  if (isDevicePrivate(flags) || core.isDeviceCoherent(head)) {
    // __split_huge_pmd_locked on a device-private PMD: 512 device-private PTEs, and the
    // folio split into order-0 device pages at once (split_device_private_folio): the PMD's
    // reference becomes the head PTE's, each other PTE holds its page; a fault's pin on the
    // head stays with the head. A device-coherent folio (present PMD) splits the same way:
    // the port keeps no partly mapped device folio (deferred split).
    const pm = core.pagemaps.of(head)!;
    const headRefs = pm.refcountOf(head);
    pm.splitHuge(head, (k) => (k === 0 ? headRefs : 1));
    return;
  }
  if (core.refcount(head) === 1 && core.isAnonPage(head)) {
    core.ram.splitHuge(head, () => 1); // split_huge_page(): every subpage mapped once
  } else {
    core.ram.refcount[head] += PMD_PAGES - 1; // folio_ref_add(folio, HPAGE_PMD_NR - 1)
  }
}

/**
 * __split_huge_pmd(): a CLEAR invalidation over the 2 MiB block, then the split (if the leaf
 * is still there once the invalidation returns).
 */
export async function splitHugePmd(mm: MmStruct, haddr: number): Promise<void> {
  await waitMigrationPmd(mm, haddr);
  const range = await invalidateStart(mm, haddr, haddr + PMD_SIZE, 'CLEAR');
  try {
    splitHugePmdLocked(mm, haddr);
  } finally {
    await invalidateEnd(mm, range);
  }
}

/**
 * pmd_migration_entry_wait(): sleep while the PMD at haddr is a migration entry (a THP
 * migrating whole); its migration's finalize wakes the queue.
 */
export async function waitMigrationPmd(mm: MmStruct, haddr: number): Promise<void> {
  const i = pmdIndex(haddr);
  const migrating = (): boolean => {
    const pmd = mm.pgtable.pmd(haddr, false);
    return !mm.exited && pmd !== null && pmd.isHuge(i) && isMigration(pmd.flags[i]);
  };
  if (migrating()) await mm.core.migrationWq.wait(() => !migrating(), 'pmd_migration_entry_wait');
}

/** Whether a THP leaf maps the 2 MiB block around addr while addr is not on its edge. */
function straddlingThp(mm: MmStruct, addr: number): boolean {
  if (addr % PMD_SIZE === 0) return false;
  const pmd = mm.pgtable.pmd(addr, false);
  return pmd !== null && pmd.isHuge(pmdIndex(addr));
}

/**
 * vma_adjust_trans_huge() / the partial-PMD case of zap_pmd_range() and change_pmd_range():
 * split the THP leaves that [start, end) cuts through. Hugetlb ranges are aligned by the
 * callers' checks, so any straddling leaf here is a THP.
 */
export async function splitPartialHugePmds(mm: MmStruct, start: number, end: number): Promise<void> {
  for (const a of [start, end]) {
    if (straddlingThp(mm, a)) await splitHugePmd(mm, pmdAlignDown(a));
  }
}

export function hasStraddlingThp(mm: MmStruct, start: number, end: number): boolean {
  return straddlingThp(mm, start) || straddlingThp(mm, end);
}

/**
 * do_huge_pmd_wp_page(): reuse an exclusively owned anonymous THP (make the PMD writable);
 * otherwise split the PMD and let the PTE path copy the one subpage (as kernels since 5.8).
 */
export async function doHugePmdWpPage(mm: MmStruct, vma: Vma, haddr: number): Promise<number> {
  const pmd = mm.pgtable.pmd(haddr, false);
  const i = pmdIndex(haddr);
  if (pmd === null || !pmd.isHuge(i)) return VM_FAULT_FALLBACK;
  const head = pmd.pfn[i];
  if (mm.core.isHugeZero(head)) {
    // do_huge_zero_wp_pmd(): a fresh zeroed THP replaces the huge zero page, or split.
    const range = await invalidateStart(mm, haddr, haddr + PMD_SIZE, 'CLEAR');
    try {
      if (pmd.pfn[i] !== head || !pmd.isHuge(i)) return 0; // changed meanwhile: retry
      const thp = mm.core.allocAnonHuge();
      anonVmaPrepare(vma);
      pmd.setHuge(i, 0, 0);
      pmd.setHuge(i, thp, PTE_PRESENT | PTE_ACCESSED | PTE_WRITE | PTE_DIRTY);
      mm.core.putPage(head);
      return 0;
    } catch {
      splitHugePmdLocked(mm, haddr); // no 2 MiB free: the PTE path copies the one page
      return VM_FAULT_FALLBACK;
    } finally {
      await invalidateEnd(mm, range);
    }
  }
  // An exclusive anonymous folio is reused; a device-coherent folio is anonymous memory too
  // (only migrate_vma of an anonymous VMA puts one there).
  if ((mm.core.isAnonPage(head) || mm.core.isDeviceCoherent(head)) && mm.core.refcount(head) === 1) {
    pmd.setHuge(i, head, (pmd.flags[i] & ~PMD_HUGE) | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED);
    return 0;
  }
  await splitHugePmd(mm, haddr);
  return VM_FAULT_FALLBACK;
}

/**
 * hugetlb_fault(): hugetlb_no_page (a page from the file's cache for shared mappings, a fresh
 * anonymous huge page for private ones, each consuming the reservation mmap made for it;
 * SIGBUS past EOF or when a fault without a reservation — a private mapping's fork child —
 * finds the pool empty) and hugetlb_wp (reuse when exclusive, else copy 2 MiB under a CLEAR
 * invalidation).
 */
export async function hugetlbFault(mm: MmStruct, vma: Vma, addr: number, write: boolean): Promise<number> {
  const core = mm.core;
  const haddr = pmdAlignDown(addr);
  const pmd = mm.pgtable.pmd(haddr, true)!;
  const i = pmdIndex(haddr);
  const f = pmd.flags[i];
  if (f === 0) {
    const file = vma.file!;
    const hidx = Math.floor((vma.pgoff * PAGE_SIZE + (haddr - vma.start)) / PMD_SIZE);
    if (isShared(vma)) {
      if (hidx * PMD_SIZE >= file.size) return VM_FAULT_SIGBUS;
      let head: number;
      try {
        head = file.findOrCreateHuge(hidx, mm);
      } catch {
        return VM_FAULT_SIGBUS; // hugetlb pool exhausted
      }
      core.getPage(head);
      const w = (vma.flags & VM_WRITE) !== 0 ? PTE_WRITE : 0;
      pmd.setHuge(i, head, PTE_PRESENT | PTE_ACCESSED | w | (write ? PTE_DIRTY : 0));
      return 0;
    }
    let head: number;
    try {
      head = file.allocHugetlb(hidx, mm);
    } catch {
      return VM_FAULT_SIGBUS;
    }
    core.pageKind.fill(PG_ANON, head, head + PMD_PAGES);
    anonVmaPrepare(vma);
    // make_huge_pte(writable = VM_SHARED): a private read fault maps read-only.
    pmd.setHuge(i, head, PTE_PRESENT | PTE_ACCESSED | (write ? PTE_WRITE | PTE_DIRTY : 0));
    return 0;
  }
  if (!write || (f & PTE_WRITE) !== 0) {
    pmd.flags[i] |= PTE_ACCESSED | (write ? PTE_DIRTY : 0);
    return 0;
  }
  const old = pmd.pfn[i];
  if (isShared(vma) || (core.isAnonPage(old) && core.refcount(old) === 1)) {
    pmd.flags[i] |= PTE_WRITE | PTE_DIRTY | PTE_ACCESSED;
    return 0;
  }
  const range = await invalidateStart(mm, haddr, haddr + PMD_SIZE, 'CLEAR');
  try {
    if (pmd.pfn[i] !== old || pmd.flags[i] !== f) return 0; // changed under us: retry
    let head: number;
    try {
      head = core.allocAnonHuge();
    } catch {
      // alloc_hugetlb_folio's -ENOSPC: vmf_error() makes it SIGBUS, not OOM. (An owner's COW
      // would first unmap the page from its fork children, unmap_ref_private: not emulated.)
      return VM_FAULT_SIGBUS;
    }
    core.ram.hugeData(head).set(core.ram.hugeData(old));
    core.ram.markWritten(head, PMD_PAGES);
    anonVmaPrepare(vma);
    pmd.setHuge(i, 0, 0);
    pmd.setHuge(i, head, PTE_PRESENT | PTE_ACCESSED | PTE_WRITE | PTE_DIRTY);
    core.putPage(old);
    return 0;
  } finally {
    await invalidateEnd(mm, range);
  }
}

/**
 * hugetlb_vm_op_close(): a private hugetlb VMA (piece) going away returns the reservations
 * its owner made for the pages no fault consumed (reserve = pages - consumed). Shared
 * mappings' reservations stay with the file until its release.
 */
export function hugetlbVmOpClose(mm: MmStruct, vma: Vma): void {
  if (!isHugetlb(vma) || isShared(vma) || vma.file === null) return;
  vma.file.releaseReservations(mm, (vma.pgoff * PAGE_SIZE) / PMD_SIZE, (vma.end - vma.start) / PMD_SIZE);
}
