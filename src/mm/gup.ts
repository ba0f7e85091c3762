/**
 * get_user_pages / pin_user_pages (mm/gup.c): references on the pages behind a user range,
 * for a driver's DMA.
 *
 * - The slow path (__get_user_pages): under the mmap read lock, per page: check_vma_flags
 *   (no VMA, VM_IO|VM_PFNMAP, a write to a VMA without VM_WRITE, a read of one without
 *   VM_READ: EFAULT), follow_page_mask, and when the page is not there as asked,
 *   faultin_page → handle_mm_fault — so a device-private entry migrates home (do_swap_page
 *   → migrate_to_ram), a device-exclusive one is restored, a migration entry is waited on, a
 *   write breaks COW — then the walk again.
 * - gup-fast (gup_fast_pte_range): no lock; takes present, accessible pages (writable ones
 *   for a write) from the start of the range and stops at the first entry that is not one
 *   (none, swap, device-private, migration, special), leaving the rest to the slow path.
 * - FOLL_GET takes one reference (get_page); FOLL_PIN takes GUP_PIN_COUNTING_BIAS on an
 *   order-0 page (one on a compound page's head, whose pins the kernel counts in
 *   _pincount), so folio_maybe_dma_pinned and migrate_vma_check_page see a pinned page and
 *   leave it where it is. The zero page is never counted (is_zero_folio).
 * - FOLL_PIN without FOLL_WRITE on an anonymous page another mm shares (gup_must_unshare:
 *   not PageAnonExclusive) unshares it first (FAULT_FLAG_UNSHARE: a COW copy), so the pin
 *   sees what this process will see. Here the unshare is a write fault, so the copy is
 *   mapped writable where the kernel maps it read-only.
 * - FOLL_LONGTERM (check_and_migrate_movable_pages): a pinned page that may not stay pinned
 *   for long (folio_is_longterm_pinnable: device memory the CPU maps, MEMORY_DEVICE_COHERENT)
 *   is unpinned, migrated to system memory (migrate_device_coherent_folio, the core mm's own
 *   copy: src/mm/migrate-coherent.ts), and the range pinned again.
 *
 * Like the kernel, a range that runs into a hole after some pages returns the pages done
 * (fewer than asked); only when the first page fails is it an error.
 */
import { err } from '../errors.js';
import { PAGE_SIZE } from './constants.js';
import { migrateDeviceCoherentPage } from './migrate-coherent.js';
import { handleMmFault, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV } from './fault.js';
import type { MmStruct } from './mm.js';
import { PTE_PROTNONE, PTE_SPECIAL, PTE_WRITE, isPresent } from './page-table.js';
import { entrySlot, followEntry } from './pagewalk.js';
import type { MemCore, RefHolder } from './pages.js';
import { isShared, VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, type Vma } from './vma.js';

/** GUP_PIN_COUNTING_BIAS (include/linux/mm.h): what one FOLL_PIN adds to an order-0 page. */
export const GUP_PIN_COUNTING_BIAS = 1024;

export interface GupOptions {
  /** FOLL_WRITE: the pages will be written (COW broken, writable PTEs). */
  write?: boolean;
  /** FOLL_LONGTERM (pins only): migrate pages that may not be pinned for long first. */
  longterm?: boolean;
  /** The gup-fast entry point (get_user_pages_fast / pin_user_pages_fast). */
  fast?: boolean;
}

/**
 * The pages a GUP call took: their pfns (the 4 KiB page of each address) and the references
 * held on them, reported to frame accounting while held. release() is put_page on each
 * (FOLL_GET) or unpin_user_pages (FOLL_PIN).
 */
export class UserPages implements RefHolder {
  readonly pfns: readonly number[];
  readonly pinned: boolean;
  readonly #core: MemCore;
  readonly #counts: number[];
  #released = false;

  /** @internal */
  constructor(core: MemCore, pfns: number[], counts: number[], pinned: boolean) {
    this.#core = core;
    this.pfns = pfns;
    this.#counts = counts;
    this.pinned = pinned;
    core.refHolders.add(this);
  }

  get count(): number {
    return this.pfns.length;
  }

  get released(): boolean {
    return this.#released;
  }

  /** The bytes of page i, as the device's DMA would reach them (a view into RAM). */
  data(i: number): Uint8Array {
    if (this.#released) throw err('EINVAL', 'user pages already released');
    if (!Number.isSafeInteger(i) || i < 0 || i >= this.pfns.length) throw err('EINVAL', `page ${i} of ${this.pfns.length}`);
    return this.#core.pageData(this.pfns[i]);
  }

  reportRefs(add: (pfn: number, n: number) => void): void {
    for (let i = 0; i < this.pfns.length; i++) if (this.#counts[i] > 0) add(this.#core.head(this.pfns[i]), this.#counts[i]);
  }

  /** put_page / unpin_user_pages on every page. A second call is EINVAL. */
  release(): void {
    if (this.#released) throw err('EINVAL', 'user pages released twice');
    this.#released = true;
    this.#core.refHolders.delete(this);
    dropRefs(this.#core, this.pfns, this.#counts);
  }
}

function dropRefs(core: MemCore, pfns: readonly number[], counts: readonly number[]): void {
  for (let i = 0; i < pfns.length; i++) {
    for (let k = 0; k < counts[i]; k++) core.putPage(pfns[i]);
  }
}

/** try_grab_folio(): the references one page takes; 0 for the zero page. */
function grab(core: MemCore, pfn: number, pin: boolean): number {
  if (pfn === core.ram.zeroPfn) return 0;
  const head = core.head(pfn);
  const n = pin && !(core.isSystemPfn(pfn) && core.ram.isHead(head)) ? GUP_PIN_COUNTING_BIAS : 1;
  for (let k = 0; k < n; k++) core.getPage(pfn);
  return n;
}

/** check_vma_flags(): whether GUP may touch this VMA at all. */
function checkVmaFlags(vma: Vma, write: boolean): boolean {
  if ((vma.flags & (VM_IO | VM_PFNMAP)) !== 0) return false;
  return write ? (vma.flags & VM_WRITE) !== 0 : (vma.flags & VM_READ) !== 0;
}

const slot = entrySlot();

/**
 * follow_page_mask(): the page at a if its entry gives it as asked — present, accessible, a
 * writable entry for a write, and for an unsharing pin an exclusive anonymous page — else -1.
 */
function followPage(mm: MmStruct, a: number, write: boolean, unshare: boolean): number {
  if (!followEntry(mm, a, slot)) return -1;
  const f = slot.table.flags[slot.i];
  if (!isPresent(f) || (f & PTE_PROTNONE) !== 0) return -1;
  if (write && (f & PTE_WRITE) === 0) return -1;
  const pfn = slot.table.pfn[slot.i] + slot.sub;
  const core = mm.core;
  // gup_must_unshare(): a read-only pin of an anonymous page this mm does not own alone.
  if (unshare && (f & PTE_WRITE) === 0 && core.isAnonPage(pfn) && core.refcount(pfn) > 1) return -1;
  return pfn;
}

/** gup_fast_pte_range(): how many leading pages it took (their pfns and counts pushed). */
function gupFast(mm: MmStruct, start: number, n: number, write: boolean, pin: boolean, pfns: number[], counts: number[]): void {
  const core = mm.core;
  for (let k = 0; k < n; k++) {
    const a = start + k * PAGE_SIZE;
    if (!followEntry(mm, a, slot)) return;
    const f = slot.table.flags[slot.i];
    // Non-present entries (device-private above all) and special PTEs: leave to the slow path.
    if (!isPresent(f) || (f & (PTE_PROTNONE | PTE_SPECIAL)) !== 0) return;
    if (write && (f & PTE_WRITE) === 0) return;
    const pfn = slot.table.pfn[slot.i] + slot.sub;
    if (pin && !write && core.isAnonPage(pfn) && (f & PTE_WRITE) === 0 && core.refcount(pfn) > 1) return;
    if (!core.isSystemPfn(pfn)) return; // a device page the CPU maps: the slow path decides
    counts.push(grab(core, pfn, pin));
    pfns.push(pfn);
  }
}

/**
 * __get_user_pages() from page `from` of the range on, under the mmap read lock. Returns
 * the errno that stopped it early, or null when every page was taken.
 */
async function gupSlow(
  mm: MmStruct, start: number, n: number, write: boolean, pin: boolean, pfns: number[], counts: number[],
): Promise<'EFAULT' | 'ENOMEM' | null> {
  const core = mm.core;
  const unshare = pin && !write;
  for (let k = pfns.length; k < n; k++) {
    const a = start + k * PAGE_SIZE;
    const vma = mm.vmas.lookup(a);
    if (vma === undefined || !checkVmaFlags(vma, write)) return 'EFAULT';
    for (let tries = 0; ; tries++) {
      mm.checkAlive();
      // Unsharing is a write fault here, so only where the VMA may be written (departure:
      // the kernel's FAULT_FLAG_UNSHARE also copies in a read-only private mapping).
      const pfn = followPage(mm, a, write, unshare && !isShared(vma) && (vma.flags & VM_WRITE) !== 0);
      if (pfn >= 0) {
        counts.push(grab(core, pfn, pin));
        pfns.push(pfn);
        break;
      }
      if (tries > 64) return 'EFAULT';
      // faultin_page(): FOLL_WRITE (or an unshare) faults for write.
      const r = await handleMmFault(mm, vma, a, { write: write || (unshare && !isShared(vma) && (vma.flags & VM_WRITE) !== 0) });
      if ((r & VM_FAULT_OOM) !== 0) return 'ENOMEM';
      if ((r & (VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV)) !== 0) return 'EFAULT';
    }
  }
  return null;
}

function checkArgs(addr: unknown, n: unknown): { start: number; n: number } {
  if (typeof addr !== 'number' || !Number.isSafeInteger(addr) || addr < 0) throw err('EINVAL', `gup: bad address ${String(addr)}`);
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw err('EINVAL', `gup: bad page count ${String(n)}`);
  // __get_user_pages: the start is rounded down to its page (untagged_addr & PAGE_MASK).
  return { start: addr - (addr % PAGE_SIZE), n };
}

/**
 * get_user_pages (FOLL_GET) / pin_user_pages (FOLL_PIN) over `n` pages from `addr`. The
 * caller must not hold mm's mmap lock. Returns the pages taken (fewer than n when the range
 * runs into a hole or a forbidden VMA after its first page); throws EFAULT/ENOMEM when not
 * even the first page could be taken, and nothing is held then.
 */
export async function getUserPages(mm: MmStruct, addr: unknown, npages: unknown, pin: boolean, opts: GupOptions = {}): Promise<UserPages> {
  const { start, n } = checkArgs(addr, npages);
  const write = opts.write === true;
  if (opts.longterm === true && !pin) throw err('EINVAL', 'FOLL_LONGTERM without FOLL_PIN');
  mm.checkAlive();
  for (;;) {
    const pfns: number[] = [];
    const counts: number[] = [];
    if (opts.fast === true) gupFast(mm, start, n, write, pin, pfns, counts);
    let stop: 'EFAULT' | 'ENOMEM' | null = null;
    if (pfns.length < n) {
      await mm.lock.readLock();
      try {
        mm.checkAlive();
        stop = await gupSlow(mm, start, n, write, pin, pfns, counts);
      } catch (e) {
        dropRefs(mm.core, pfns, counts);
        throw e;
      } finally {
        mm.lock.readUnlock();
      }
    }
    if (pfns.length === 0 && n > 0) throw err(stop ?? 'EFAULT', `gup: no page at 0x${start.toString(16)}`);
    // check_and_migrate_movable_pages(): device pages cannot stay pinned for long.
    if (opts.longterm === true) {
      const movable = pfns.filter((p) => mm.core.isDeviceCoherent(p)); // !folio_is_longterm_pinnable
      if (movable.length > 0) {
        dropRefs(mm.core, pfns, counts);
        await migrateLongtermUnpinnable(mm, start, pfns);
        continue;
      }
    }
    return new UserPages(mm.core, pfns, counts, pin);
  }
}

/**
 * migrate_longterm_unpinnable_folios(): each device-coherent page the range maps goes to
 * system memory (migrate_device_coherent_folio), under the mmap read lock. One that cannot
 * move (pinned meanwhile, no frame free) fails the pin with EBUSY, as the kernel's does.
 */
async function migrateLongtermUnpinnable(mm: MmStruct, start: number, pfns: readonly number[]): Promise<void> {
  await mm.lock.readLock();
  try {
    mm.checkAlive();
    for (let k = 0; k < pfns.length; k++) {
      const pfn = pfns[k];
      if (!mm.core.isDeviceCoherent(pfn)) continue;
      if (!(await migrateDeviceCoherentPage(mm, start + k * PAGE_SIZE, pfn))) {
        throw err('EBUSY', `FOLL_LONGTERM: device-coherent pfn ${pfn} could not be migrated to system memory`);
      }
    }
  } finally {
    mm.lock.readUnlock();
  }
}
