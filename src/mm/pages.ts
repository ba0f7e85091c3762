/**
 * The machine-wide memory state every mm shares (RAM, swap, device pagemaps, page caches)
 * and the struct-page helpers on top of it: compound_head, get_page/put_page dispatched to
 * system RAM or a device pagemap, and the anon/file identity of a frame (folio->mapping).
 */
import type { Scheduler } from '../sched/scheduler.js';
import { WaitQueue } from '../sched/wait-queue.js';
import { PMD_PAGES } from './constants.js';
import type { MemFile } from './file.js';
import { PhysMem } from './frames.js';
import type { MmStruct } from './mm.js';
import { PagemapTable } from './pagemap.js';
import { SwapStore } from './swap.js';

/**
 * A driver's own page (alloc_page) mapped with vm_insert_page into a VM_MIXEDMAP VMA: neither
 * anonymous nor page cache (folio->mapping NULL). Also the stale value of never-used frames.
 */
export const PG_KERNEL = 0;
/** folio_test_anon(): the frame holds anonymous memory (reached through PTEs only). */
export const PG_ANON = 1;
/** The frame is a page-cache page of a MemFile. */
export const PG_FILE = 2;

/**
 * Something outside the page tables and page caches that holds page references (a migration
 * in flight, a driver's pin). checkFrameAccounting asks each registered holder to report.
 */
export interface RefHolder {
  reportRefs(add: (pfn: number, n: number) => void): void;
}

export class MemCore {
  readonly ram: PhysMem;
  readonly sched: Scheduler;
  readonly swap = new SwapStore();
  readonly pagemaps: PagemapTable;
  /** PG_ANON / PG_FILE of each frame's head; set on every allocation, so stale on free frames. */
  readonly pageKind: Uint8Array;
  /** Files with a page cache (user files, shmem and hugetlbfs files) that are still alive. */
  readonly files = new Set<MemFile>();
  readonly refHolders = new Set<RefHolder>();
  /** Woken when migration entries are replaced (the folio unlock migration_entry_wait sleeps on). */
  readonly migrationWq: WaitQueue;
  /**
   * Every live address space on the machine (added by MmStruct's constructor, removed by
   * exit_mmap). The reverse map of anonymous and device-private pages walks it (rmap.ts).
   */
  readonly mms = new Set<MmStruct>();
  /**
   * Device pages do_swap_page holds a reference on across migrate_to_ram (the kernel's
   * get_page(vmf->page)): pfn → number of such faults in flight. migrate_vma_setup allows for
   * them (args->fault_page) whether or not the driver passes faultPage.
   */
  readonly faultPins = new Map<number, number>();

  constructor(systemPages: number, sched: Scheduler) {
    this.ram = new PhysMem(systemPages);
    this.sched = sched;
    this.pagemaps = new PagemapTable(systemPages);
    this.pageKind = new Uint8Array(systemPages);
    this.migrationWq = new WaitQueue(sched);
    this.refHolders.add({ reportRefs: (add) => { for (const [pfn, n] of this.faultPins) add(pfn, n); } });
  }

  /** get_page() on a device page for the duration of a migrate_to_ram callback. */
  pinFaultPage(pfn: number): void {
    this.getPage(pfn);
    this.faultPins.set(pfn, (this.faultPins.get(pfn) ?? 0) + 1);
  }

  /** The put_page() after migrate_to_ram returns (may free the device page: page_free). */
  unpinFaultPage(pfn: number): void {
    const n = this.faultPins.get(pfn) ?? 0;
    if (n <= 0) throw new Error(`unpin of unpinned device pfn ${pfn}`);
    if (n === 1) this.faultPins.delete(pfn);
    else this.faultPins.set(pfn, n - 1);
    this.putPage(pfn);
  }

  isSystemPfn(pfn: number): boolean {
    return pfn < this.ram.npages;
  }

  /** is_device_coherent_page(): a device page the CPU maps with a present PTE. */
  isDeviceCoherent(pfn: number): boolean {
    return pfn >= this.ram.npages && this.pagemaps.of(pfn)?.coherent === true;
  }

  /** A pfn a present PTE may map: system RAM or device-coherent memory. */
  isCpuAddressable(pfn: number): boolean {
    return pfn < this.ram.npages || this.isDeviceCoherent(pfn);
  }

  /**
   * The write generation of a CPU-addressable page (PhysMem.gen, or the coherent pagemap's).
   * Both kinds share PhysMem.epoch, so a reader that saw no epoch change skips every page.
   */
  genOf(pfn: number): number {
    if (pfn < this.ram.npages) return this.ram.gen[pfn];
    const pm = this.pagemaps.of(pfn);
    return pm === null || !pm.coherent ? 0 : pm.gen[pfn - pm.basePfn];
  }

  /** The CPU side wrote this frame or coherent device page (PhysMem.markWritten). */
  markWritten(pfn: number): void {
    if (pfn < this.ram.npages) {
      this.ram.markWritten(pfn);
      return;
    }
    const pm = this.pagemaps.of(pfn);
    if (pm === null || !pm.coherent) throw new Error(`markWritten of pfn ${pfn}: not CPU-addressable`);
    pm.gen[pfn - pm.basePfn]++;
    this.ram.epoch++;
  }

  /** The bytes the CPU loads and stores for a present PTE's pfn (a frame or a coherent device page). */
  pageData(pfn: number): Uint8Array {
    if (pfn < this.ram.npages) return this.ram.data(pfn);
    const pm = this.pagemaps.of(pfn);
    if (pm === null) throw new Error(`page data of unknown pfn ${pfn}`);
    return pm.data(pfn);
  }

  /** compound_head(): huge pages are 512-aligned blocks, so the head is the block start. */
  head(pfn: number): number {
    if (pfn < this.ram.npages) return this.ram.isTail(pfn) ? pfn - (pfn % PMD_PAGES) : pfn;
    return this.pagemaps.of(pfn)?.head(pfn) ?? pfn;
  }

  /** folio_ref_count(). */
  refcount(pfn: number): number {
    if (pfn < this.ram.npages) return this.ram.refcount[this.head(pfn)];
    const pm = this.pagemaps.of(pfn);
    if (pm === null) throw new Error(`refcount of unknown pfn ${pfn}`);
    return pm.refcountOf(pfn);
  }

  /** get_page() on any pfn (the zero page included: it is pinned and never freed). */
  getPage(pfn: number): void {
    if (pfn < this.ram.npages) {
      if (pfn !== this.ram.zeroPfn) this.ram.get(this.head(pfn));
      return;
    }
    const pm = this.pagemaps.of(pfn);
    if (pm === null) throw new Error(`get_page of unknown pfn ${pfn}`);
    pm.get(pfn);
  }

  /** put_page(): the last reference frees (and zeroes) a frame or calls page_free. */
  putPage(pfn: number): void {
    if (pfn < this.ram.npages) {
      this.ram.put(this.head(pfn));
      return;
    }
    const pm = this.pagemaps.of(pfn);
    if (pm === null) throw new Error(`put_page of unknown pfn ${pfn}`);
    pm.put(pfn);
  }

  /**
   * mm_get_huge_zero_folio(): the huge zero page (a zeroed 2 MiB folio, never written), with
   * one more reference for the PMD that will map it; allocated on first use. Departure: in
   * the kernel its PMD mappings hold no page reference (it is counted per mm and freed by a
   * shrinker); here each mapping holds one and the last one frees it. Throws ENOMEM.
   */
  getHugeZero(): number {
    const ram = this.ram;
    if (ram.hugeZero >= 0) {
      ram.get(ram.hugeZero);
      return ram.hugeZero;
    }
    const head = ram.allocHuge();
    this.pageKind.fill(PG_KERNEL, head, head + PMD_PAGES);
    ram.hugeZero = head;
    return head;
  }

  /** is_huge_zero_pfn(). */
  isHugeZero(pfn: number): boolean {
    return this.ram.hugeZero >= 0 && pfn === this.ram.hugeZero;
  }

  isAnonPage(pfn: number): boolean {
    return pfn < this.ram.npages && pfn !== this.ram.zeroPfn && this.pageKind[this.head(pfn)] === PG_ANON;
  }

  /** A fresh zeroed anonymous frame (alloc_anon_folio). Throws ENOMEM. */
  allocAnon(): number {
    const pfn = this.ram.alloc();
    this.pageKind[pfn] = PG_ANON;
    return pfn;
  }

  /**
   * A fresh zeroed 2 MiB anonymous compound page (THP or private hugetlb), consuming a
   * hugetlb reservation when `reserved`. Throws ENOMEM.
   */
  allocAnonHuge(reserved = false): number {
    const head = this.ram.allocHuge(reserved);
    this.pageKind.fill(PG_ANON, head, head + PMD_PAGES);
    return head;
  }
}
