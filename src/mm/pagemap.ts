/**
 * Device-private memory (mm/memremap.c: memremap_pages / struct dev_pagemap). A device
 * registers a range of pfns above system RAM; those "struct pages" have their own refcounts
 * here and no CPU-addressable data. The CPU page table can only hold them as device-private
 * swap entries (SWP_DEVICE_*); a CPU touch calls the owner's migrateToRam
 * (dev_pagemap_ops.migrate_to_ram) from do_swap_page.
 */
import { err } from '../errors.js';
import { PMD_PAGES } from './constants.js';
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

export interface PagemapOptions {
  npages: number;
  /** pgmap->owner: matched against migrate_vma's pgmap_owner and notifier ranges' owner. */
  owner: unknown;
  /** dev_pagemap_ops.migrate_to_ram: called with the mmap read lock held. */
  migrateToRam(fault: DevicePrivateFault): Promise<void>;
  /** dev_pagemap_ops.page_free: the last reference to a device page went away. */
  pageFree?(pfn: number): void;
}

export class DevPagemap {
  readonly basePfn: number;
  readonly npages: number;
  readonly owner: unknown;
  /** page_ref_count() of each device page; 0 = free (owned by the driver's allocator). */
  readonly refcount: Int32Array;
  readonly ops: PagemapOptions;

  constructor(basePfn: number, opts: PagemapOptions) {
    this.basePfn = basePfn;
    this.npages = opts.npages;
    this.owner = opts.owner;
    this.refcount = new Int32Array(opts.npages);
    this.ops = opts;
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

  get(pfn: number): void {
    const i = this.#index(pfn);
    if (this.refcount[i] <= 0) throw new Error(`get_page on free device pfn ${pfn}`);
    this.refcount[i]++;
  }

  /** put_page(): the last reference calls page_free (free_zone_device_folio). */
  put(pfn: number): void {
    const i = this.#index(pfn);
    const rc = --this.refcount[i];
    if (rc < 0) throw new Error(`put_page underflow on device pfn ${pfn}`);
    if (rc === 0) this.ops.pageFree?.(pfn);
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
    if (typeof opts.migrateToRam !== 'function') throw err('EINVAL', 'pagemap needs migrateToRam');
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
