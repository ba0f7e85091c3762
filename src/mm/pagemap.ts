/**
 * Device memory (mm/memremap.c: memremap_pages / struct dev_pagemap). A device registers a
 * range of pfns above system RAM; those "struct pages" have their own refcounts here.
 *
 * - MEMORY_DEVICE_PRIVATE (type 'private', the default): no CPU-addressable data. The CPU
 *   page table can only hold them as device-private swap entries (SWP_DEVICE_*); a CPU touch
 *   calls the owner's migrateToRam (dev_pagemap_ops.migrate_to_ram) from do_swap_page.
 * - MEMORY_DEVICE_COHERENT (type 'coherent'): device memory the CPU reaches over a coherent
 *   link. The CPU page table maps its pages with ordinary present PTEs and the CPU loads and
 *   stores them in place (is_device_coherent_page: no migrate_to_ram). data(pfn) is that
 *   CPU view of the page. They are not long-term pinnable (folio_is_longterm_pinnable) and
 *   are collected only by MIGRATE_VMA_SELECT_DEVICE_COHERENT of their owner. Order-0 only.
 */
import { err } from '../errors.js';
import { PAGE_SIZE, PMD_PAGES } from './constants.js';
import type { MmStruct } from './mm.js';
import type { Vma } from './vma.js';

/** struct vm_fault as migrate_to_ram sees it. */
export interface DevicePrivateFault {
  readonly mm: MmStruct;
  readonly vma: Vma;
  /** The faulting address, page aligned. */
  readonly addr: number;
  /** The device-private pfn the CPU page table held. */
  readonly pfn: number;
}

/** enum memory_type: MEMORY_DEVICE_PRIVATE or MEMORY_DEVICE_COHERENT. */
export type PagemapType = 'private' | 'coherent';

export interface PagemapOptions {
  npages: number;
  /** pgmap->type; 'private' when absent. */
  type?: PagemapType;
  /** pgmap->owner: matched against migrate_vma's pgmap_owner and notifier ranges' owner. */
  owner: unknown;
  /**
   * dev_pagemap_ops.migrate_to_ram: called with the mmap read lock held. Required for
   * device-private memory; a coherent pagemap has none (the CPU maps its pages directly).
   */
  migrateToRam?(fault: DevicePrivateFault): Promise<void>;
  /**
   * dev_pagemap_ops.folio_free: the last reference to a device folio went away — `npages`
   * pages from `pfn` (1, or PMD_PAGES for a device-private THP).
   */
  pageFree?(pfn: number, npages: number): void;
  /** The folio at `head` is being split into order-0 pages (the driver splits its allocation). */
  splitFolio?(head: number): void;
}

export class DevPagemap {
  readonly basePfn: number;
  readonly npages: number;
  readonly owner: unknown;
  /**
   * page_ref_count() of each device page; 0 = free (owned by the driver's allocator). A
   * device-private THP (a 512-page folio) keeps its count in the head, tails stay at 1.
   */
  readonly refcount: Int32Array;
  /** Per page: 1 = head of a 512-page folio, 2 = tail (as PhysMem.compound). */
  readonly compound: Uint8Array;
  readonly ops: PagemapOptions;
  /** is_device_coherent_page() for every page of this pagemap. */
  readonly coherent: boolean;
  /** Per coherent page: bumped by every CPU-side write (as PhysMem.gen): coherence with device copies. */
  readonly gen: Uint32Array;
  /** The CPU's view of each coherent page, allocated on first use, dropped when the page is freed. */
  readonly #data = new Map<number, Uint8Array>();

  constructor(basePfn: number, opts: PagemapOptions) {
    this.basePfn = basePfn;
    this.npages = opts.npages;
    this.owner = opts.owner;
    this.coherent = opts.type === 'coherent';
    this.gen = new Uint32Array(this.coherent ? opts.npages : 0);
    this.refcount = new Int32Array(opts.npages);
    this.compound = new Uint8Array(opts.npages);
    this.ops = opts;
  }

  /**
   * The bytes of a coherent device page in use, as the CPU loads and stores them (page_address
   * of a MEMORY_DEVICE_COHERENT page). Not for device-private pages: the CPU cannot address them.
   */
  data(pfn: number): Uint8Array {
    const i = this.#index(pfn);
    if (!this.coherent) throw new Error(`device pfn ${pfn} is device-private: no CPU-addressable data`);
    if (this.refcount[i] <= 0) throw new Error(`data of free device pfn ${pfn}`);
    let d = this.#data.get(i);
    if (d === undefined) {
      d = new Uint8Array(PAGE_SIZE);
      this.#data.set(i, d);
    }
    return d;
  }

  contains(pfn: number): boolean {
    return pfn >= this.basePfn && pfn < this.basePfn + this.npages;
  }

  /** zone_device_page_init(): the driver hands out a free device page with one reference. */
  pageInit(pfn: number): void {
    const i = this.#index(pfn);
    if (this.refcount[i] !== 0) throw new Error(`zone_device_page_init: device pfn ${pfn} is in use`);
    this.refcount[i] = 1;
  }

  /**
   * zone_device_folio_init(folio, order 9): a free, 512-aligned run of device pages becomes
   * one folio with one reference (held in the head).
   */
  pageInitHuge(head: number): void {
    const i = this.#index(head);
    if (i % PMD_PAGES !== 0 || i + PMD_PAGES > this.npages) throw new Error(`zone_device_folio_init: device pfn ${head} is not a 2 MiB head`);
    for (let k = i; k < i + PMD_PAGES; k++) if (this.refcount[k] !== 0) throw new Error(`zone_device_folio_init: device pfn ${this.basePfn + k} is in use`);
    this.compound[i] = 1;
    this.compound.fill(2, i + 1, i + PMD_PAGES);
    this.refcount.fill(1, i, i + PMD_PAGES);
  }

  isHead(pfn: number): boolean {
    return this.compound[this.#index(pfn)] === 1;
  }

  isTail(pfn: number): boolean {
    return this.compound[this.#index(pfn)] === 2;
  }

  /** compound_head() of a device page. */
  head(pfn: number): number {
    const i = this.#index(pfn);
    return this.compound[i] === 2 ? pfn - (i % PMD_PAGES) : pfn;
  }

  /** folio_ref_count() of the folio holding pfn. */
  refcountOf(pfn: number): number {
    return this.refcount[this.#index(this.head(pfn))];
  }

  /**
   * split_device_private_folio / __split_unmapped_folio: the folio at `head` becomes 512
   * order-0 device pages, page i holding perPageRefs(i) references (those dropping to 0 are
   * freed one by one through page_free).
   */
  splitHuge(head: number, perPageRefs: (i: number) => number): void {
    const i0 = this.#index(head);
    if (this.compound[i0] !== 1) throw new Error(`split of device pfn ${head}: not a folio head`);
    this.compound.fill(0, i0, i0 + PMD_PAGES);
    this.ops.splitFolio?.(head);
    for (let k = 0; k < PMD_PAGES; k++) {
      const refs = perPageRefs(k);
      this.refcount[i0 + k] = refs;
      if (refs === 0) this.ops.pageFree?.(head + k, 1);
    }
  }

  get(pfn: number): void {
    pfn = this.head(pfn);
    const i = this.#index(pfn);
    if (this.refcount[i] <= 0) throw new Error(`get_page on free device pfn ${pfn}`);
    this.refcount[i]++;
  }

  /** put_page(): the last reference calls page_free (free_zone_device_folio). */
  put(pfn: number): void {
    pfn = this.head(pfn);
    const i = this.#index(pfn);
    const rc = --this.refcount[i];
    if (rc < 0) throw new Error(`put_page underflow on device pfn ${pfn}`);
    if (rc > 0) return;
    this.#data.delete(i); // a coherent page comes back zeroed on its next use
    if (this.compound[i] === 1) {
      this.compound.fill(0, i, i + PMD_PAGES);
      this.refcount.fill(0, i, i + PMD_PAGES);
      this.ops.pageFree?.(pfn, PMD_PAGES);
      return;
    }
    this.ops.pageFree?.(pfn, 1);
  }

  #index(pfn: number): number {
    if (!this.contains(pfn)) throw new Error(`pfn ${pfn} is not in pagemap [${this.basePfn}, ${this.basePfn + this.npages})`);
    return pfn - this.basePfn;
  }
}

/** The machine's registered pagemaps, in pfn order above system RAM. */
export class PagemapTable {
  readonly #maps: DevPagemap[] = [];
  #next: number;

  constructor(systemPages: number) {
    // The first device pfn: system RAM's end, rounded up to a 2 MiB section.
    this.#next = Math.ceil(systemPages / PMD_PAGES) * PMD_PAGES;
  }

  /** memremap_pages(). Pfns are stored in 32-bit table fields, so the range must fit. */
  register(opts: PagemapOptions): DevPagemap {
    if (!Number.isSafeInteger(opts.npages) || opts.npages <= 0) throw err('EINVAL', `pagemap npages ${opts.npages}`);
    // memremap_pages(): a device-private pagemap needs migrate_to_ram; a coherent one, as
    // the kernel requires, page_free and an owner (it has no migrate_to_ram to call).
    if (opts.type !== undefined && opts.type !== 'private' && opts.type !== 'coherent') throw err('EINVAL', `pagemap type ${String(opts.type)}`);
    if (opts.type === 'coherent') {
      if (typeof opts.pageFree !== 'function') throw err('EINVAL', 'coherent pagemap needs page_free');
      if (opts.owner === undefined || opts.owner === null) throw err('EINVAL', 'coherent pagemap needs an owner');
    } else if (typeof opts.migrateToRam !== 'function') throw err('EINVAL', 'pagemap needs migrateToRam');
    if (this.#next + opts.npages > 0xffffffff) throw err('ENOMEM', 'no pfn space left for the pagemap');
    const pm = new DevPagemap(this.#next, opts);
    this.#next += Math.ceil(opts.npages / PMD_PAGES) * PMD_PAGES;
    this.#maps.push(pm);
    return pm;
  }

  /** page->pgmap, or null for a pfn of system RAM / nothing. */
  of(pfn: number): DevPagemap | null {
    for (const m of this.#maps) if (m.contains(pfn)) return m;
    return null;
  }

  get all(): readonly DevPagemap[] {
    return this.#maps;
  }
}
