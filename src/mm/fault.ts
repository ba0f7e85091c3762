/**
 * handle_mm_fault() (mm/memory.c): resolve one missing or write-protected translation.
 * The caller holds mmap_lock (read or write) and has found `vma` covering `addr`. Returns
 * vm_fault_t bits: 0 (done — or nothing to do, the caller re-walks and retries), or
 * VM_FAULT_SIGSEGV / VM_FAULT_SIGBUS / VM_FAULT_OOM.
 *
 * Each read-check-write of an entry is one synchronous stretch (the PTL). Where a step must
 * await (an invalidation before a COW, migrate_to_ram) the entry is re-checked afterwards
 * (pte_same) and the fault simply returns 0 if it changed, so the access is retried.
 */
import { PAGE_SIZE } from './constants.js';
import {
  anonVmaPrepare, doHugePmdAnonymousPage, doHugePmdWpPage, hugetlbFault, thpSuitable,
  VM_FAULT_FALLBACK, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV, pmdAlignDown, waitMigrationPmd,
} from './huge.js';
import { invalidateEnd, invalidateStart, type MmStruct } from './mm.js';
import {
  isDeviceExclusive, isDevicePrivate, isMigration, isPresent, pmdIndex, pteIndex, PTE_ACCESSED, PTE_DIRTY, PTE_PRESENT,
  PTE_SPECIAL, PTE_WRITE, swpKind, SWP_EXCLUSIVE_WRITE, SWP_SWAP, type PteTable,
} from './page-table.js';
import { underMigration } from './rmap.js';
import { isHugetlb, isShared, VM_WRITE, vmaAccessible, type Vma } from './vma.js';

export { VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV } from './huge.js';
export const VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV;

export interface FaultFlags {
  /** FAULT_FLAG_WRITE. */
  write: boolean;
}

export async function handleMmFault(mm: MmStruct, vma: Vma, addr: number, flags: FaultFlags): Promise<number> {
  mm.lock.assertHeld();
  if (mm.exited || addr < vma.start || addr >= vma.end) return VM_FAULT_SIGSEGV;
  // access_error() / check_vma_flags(): the arch or GUP refuses before handle_mm_fault.
  if (flags.write ? (vma.flags & VM_WRITE) === 0 : !vmaAccessible(vma)) return VM_FAULT_SIGSEGV;
  const a = addr - (addr % PAGE_SIZE);
  const write = flags.write;
  if (isHugetlb(vma)) return hugetlbFault(mm, vma, a, write);

  // __handle_mm_fault: the PMD level.
  const pmd = mm.pgtable.pmd(a, true)!;
  const i = pmdIndex(a);
  const haddr = pmdAlignDown(a);
  if (pmd.flags[i] === 0 && pmd.tables[i] === null && thpSuitable(vma, haddr)) {
    const r = doHugePmdAnonymousPage(mm, vma, haddr, write);
    if (r !== VM_FAULT_FALLBACK) return r;
  }
  if (pmd.isHuge(i) && !isPresent(pmd.flags[i])) return doHugePmdNonPresent(mm, vma, haddr, a);
  if (pmd.isHuge(i)) {
    if (write && (pmd.flags[i] & PTE_WRITE) === 0) {
      const r = await doHugePmdWpPage(mm, vma, haddr);
      if (r !== VM_FAULT_FALLBACK) return r;
      // Split: fall through to the PTE level (the table is there now unless zapped meanwhile).
    } else {
      pmd.flags[i] |= PTE_ACCESSED | (write ? PTE_DIRTY : 0);
      return 0;
    }
  }
  const t = mm.pgtable.pteTable(a, true);
  if (t === null) return 0; // a THP appeared meanwhile: retry
  return handlePteFault(mm, vma, t, pteIndex(a), a, write);
}

/**
 * A non-present PMD leaf: a device-private THP (do_huge_pmd_device_private: the owner's
 * migrate_to_ram with the folio pinned, which brings it home whole or, when no 2 MiB frame
 * is free, splits it) or a THP migrating whole (pmd_migration_entry_wait). Then the caller
 * retries the access.
 */
async function doHugePmdNonPresent(mm: MmStruct, vma: Vma, haddr: number, a: number): Promise<number> {
  const core = mm.core;
  const pmd = mm.pgtable.pmd(haddr, false)!;
  const i = pmdIndex(haddr);
  const f = pmd.flags[i];
  if (isMigration(f)) {
    await waitMigrationPmd(mm, haddr);
    return 0;
  }
  if (!isDevicePrivate(f)) return VM_FAULT_SIGBUS;
  const head = pmd.pfn[i];
  const pm = core.pagemaps.of(head);
  if (pm === null || pm.ops.migrateToRam === undefined) return VM_FAULT_SIGBUS;
  core.pinFaultPage(head);
  try {
    await pm.ops.migrateToRam({ mm, vma, addr: a, pfn: head + pteIndex(a) });
  } finally {
    core.unpinFaultPage(head);
  }
  return 0;
}

/**
 * The part of handle_mm_fault() that never sleeps, for a walker already holding the PTE
 * table t (hmm_vma_fault faulting a run of pages), over entries j .. j + n - 1 with the VMA
 * checked once: each pte_none entry of an anonymous VMA gets do_anonymous_page (a read: the
 * zero page, written straight into the table) — the answer handleMmFault gives there
 * without its descent from the root. Returns how many entries from j it handled; it stops
 * at the first that needs the full handle_mm_fault (an entry not none, a failed allocation).
 */
export function handleMmFaultNoSleepRun(mm: MmStruct, vma: Vma, t: PteTable, j: number, n: number, write: boolean): number {
  if (vma.file !== null || isHugetlb(vma) || mm.exited) return 0;
  if (write ? (vma.flags & VM_WRITE) === 0 : !vmaAccessible(vma)) return 0;
  const flags = t.flags;
  if (!write) {
    const zero = mm.core.ram.zeroPfn;
    const pfn = t.pfn;
    let k = 0;
    for (; k < n && flags[j + k] === 0; k++) {
      pfn[j + k] = zero;
      flags[j + k] = PTE_PRESENT | PTE_SPECIAL | PTE_ACCESSED;
    }
    t.used += k;
    return k;
  }
  let k = 0;
  for (; k < n && flags[j + k] === 0; k++) if (doAnonymousPage(mm, vma, t, j + k, true) !== 0) break;
  return k;
}

async function handlePteFault(mm: MmStruct, vma: Vma, t: PteTable, j: number, a: number, write: boolean): Promise<number> {
  const f = t.flags[j];
  if (f === 0) return vma.file === null ? doAnonymousPage(mm, vma, t, j, write) : doFault(mm, vma, t, j, a, write);
  if ((f & PTE_PRESENT) === 0) return doSwapPage(mm, vma, t, j, a, write);
  if (write && (f & PTE_WRITE) === 0) return doWpPage(mm, vma, t, j, a);
  t.flags[j] = f | PTE_ACCESSED | (write ? PTE_DIRTY : 0);
  return 0;
}

/**
 * do_anonymous_page(): a read maps the shared zero page (pte_special, read-only); a write
 * maps a fresh zeroed page, writable.
 */
function doAnonymousPage(mm: MmStruct, vma: Vma, t: PteTable, j: number, write: boolean): number {
  if (!write) {
    t.set(j, mm.core.ram.zeroPfn, PTE_PRESENT | PTE_SPECIAL | PTE_ACCESSED);
    return 0;
  }
  let pfn: number;
  try {
    pfn = mm.core.allocAnon();
  } catch {
    return VM_FAULT_OOM;
  }
  anonVmaPrepare(vma);
  t.set(j, pfn, PTE_PRESENT | PTE_ACCESSED | PTE_DIRTY | PTE_WRITE);
  return 0;
}

/**
 * do_fault(): file and shmem pages. do_read_fault and do_shared_fault map the page-cache
 * page (shared writable mappings writably: tmpfs needs no write-notify); do_cow_fault copies
 * it into a new anonymous page for a write to a private mapping. Past EOF: SIGBUS.
 */
function doFault(mm: MmStruct, vma: Vma, t: PteTable, j: number, a: number, write: boolean): number {
  const core = mm.core;
  const file = vma.file!;
  // A device file's VM_MIXEDMAP mapping has no ->fault: its pages were all inserted at mmap
  // time, and a hole (after MADV_DONTNEED) is SIGBUS, as in do_fault().
  if (file.kind === 'device') return VM_FAULT_SIGBUS;
  const index = vma.pageIndex(a);
  if (index >= file.sizeInPages) return VM_FAULT_SIGBUS;
  let pfn: number;
  try {
    pfn = file.findOrCreatePage(index);
  } catch {
    return VM_FAULT_OOM;
  }
  if (!write || isShared(vma)) {
    core.getPage(pfn);
    const w = isShared(vma) && (vma.flags & VM_WRITE) !== 0 ? PTE_WRITE : 0;
    t.set(j, pfn, PTE_PRESENT | PTE_ACCESSED | w | (write ? PTE_DIRTY : 0));
    return 0;
  }
  let copy: number;
  try {
    copy = core.allocAnon();
  } catch {
    return VM_FAULT_OOM;
  }
  core.ram.data(copy).set(core.pageData(pfn));
  core.ram.markWritten(copy);
  anonVmaPrepare(vma);
  t.set(j, copy, PTE_PRESENT | PTE_ACCESSED | PTE_DIRTY | PTE_WRITE);
  return 0;
}

/**
 * do_swap_page(): a non-present entry. Swap: read the slot into a new page, which this mm
 * owns exclusively (writable if the VMA is). Device-private: the pagemap's migrate_to_ram.
 * A device-private page another migration has locked: wait for it (folio_trylock fails).
 * Device-exclusive: remove_device_exclusive_entry (EXCLUSIVE invalidation, owner NULL).
 * Migration: migration_entry_wait (sleep until the migration ends; the caller retries).
 */
async function doSwapPage(mm: MmStruct, vma: Vma, t: PteTable, j: number, a: number, write: boolean): Promise<number> {
  const core = mm.core;
  const f = t.flags[j];
  const pfn = t.pfn[j];
  if (swpKind(f) === SWP_SWAP) {
    let page: number;
    try {
      page = core.allocAnon();
    } catch {
      return VM_FAULT_OOM;
    }
    core.ram.data(page).set(core.swap.read(pfn));
    core.ram.markWritten(page);
    core.swap.free(pfn);
    anonVmaPrepare(vma);
    const w = (vma.flags & VM_WRITE) !== 0 ? PTE_WRITE : 0;
    t.set(j, page, PTE_PRESENT | PTE_ACCESSED | w | (write ? PTE_DIRTY : 0));
    return 0;
  }
  if (isDevicePrivate(f)) {
    const pm = core.pagemaps.of(pfn);
    if (pm === null || pm.ops.migrateToRam === undefined) return VM_FAULT_SIGBUS;
    // folio_trylock(): another migration holds the page (a fork-shared page whose other
    // mapping is migrating, and try_to_migrate has not reached this mm yet). Calling
    // migrate_to_ram would collect nothing and the fault would spin; the kernel sleeps on the
    // folio lock instead (migration_entry_wait_on_locked) and retries once it is released.
    if (underMigration(core, mm, a, pfn)) {
      await migrationEntryWait(mm, t, j, a);
      return 0;
    }
    // do_swap_page pins vmf->page across the callback (get_page ... put_page);
    // migrate_vma_setup allows for the pin (args->fault_page) whether or not the driver names
    // it. The page may be mapped by other mms too (fork): the migration moves them all.
    core.pinFaultPage(pfn);
    try {
      await pm.ops.migrateToRam({ mm, vma, addr: a, pfn });
    } finally {
      core.unpinFaultPage(pfn);
    }
    return 0;
  }
  if (isDeviceExclusive(f)) {
    const range = await invalidateStart(mm, a, a + PAGE_SIZE, 'EXCLUSIVE', null);
    try {
      if (t.flags[j] === f && t.pfn[j] === pfn) restoreExclusivePte(t, j);
    } finally {
      await invalidateEnd(mm, range);
    }
    return 0;
  }
  if (isMigration(f)) {
    await migrationEntryWait(mm, t, j, a);
    return 0;
  }
  return VM_FAULT_SIGBUS;
}

/**
 * migration_entry_wait() / migration_entry_wait_on_locked(): sleep until the migration that
 * holds the page at `a` ends (its folio_unlock: finalize, or the restore of a page it could
 * not move, wakes core.migrationWq) or the entry at t[j] changes, then let the caller retry
 * the fault. Nothing is pinned while asleep. No timeout, as folio_wait_locked has none: every
 * migration that locks a page ends by unlocking it.
 */
export async function migrationEntryWait(mm: MmStruct, t: PteTable, j: number, a: number): Promise<void> {
  const core = mm.core;
  const f = t.flags[j];
  const pfn = t.pfn[j];
  await core.migrationWq.wait(
    () => mm.exited || t.flags[j] !== f || t.pfn[j] !== pfn || !underMigration(core, mm, a, pfn),
    'migration_entry_wait',
  );
}

/** restore_exclusive_pte(): the device-exclusive entry becomes the present PTE again. */
export function restoreExclusivePte(t: PteTable, j: number): void {
  const f = t.flags[j];
  const w = swpKind(f) === SWP_EXCLUSIVE_WRITE ? PTE_WRITE | PTE_DIRTY : 0;
  t.set(j, t.pfn[j], PTE_PRESENT | PTE_ACCESSED | w);
}

/**
 * do_wp_page(): a write to a present read-only PTE. Shared mapping: wp_page_shared (make it
 * writable). Anonymous page we alone reference (wp_can_reuse_anon_folio — with no GUP pins
 * here, refcount 1 is PageAnonExclusive): wp_page_reuse. Anything else — the zero page, a
 * page-cache page in a private mapping, an anon page shared after fork — wp_page_copy.
 */
async function doWpPage(mm: MmStruct, vma: Vma, t: PteTable, j: number, a: number): Promise<number> {
  const core = mm.core;
  const f = t.flags[j];
  const pfn = t.pfn[j];
  if ((f & PTE_SPECIAL) === 0 && (isShared(vma) || ((core.isAnonPage(pfn) || core.isDeviceCoherent(pfn)) && core.refcount(pfn) === 1))) {
    t.flags[j] = f | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED;
    return 0;
  }
  return wpPageCopy(mm, vma, a, pfn, f);
}

/** wp_page_copy(): CLEAR invalidation of the page, then a private copy replaces the PTE. */
async function wpPageCopy(mm: MmStruct, vma: Vma, a: number, pfn: number, f: number): Promise<number> {
  const core = mm.core;
  const range = await invalidateStart(mm, a, a + PAGE_SIZE, 'CLEAR');
  try {
    const t = mm.pgtable.pteTable(a, false);
    const j = pteIndex(a);
    if (t === null || t.flags[j] !== f || t.pfn[j] !== pfn) return 0; // !pte_same: retry
    let copy: number;
    try {
      copy = core.allocAnon();
    } catch {
      return VM_FAULT_OOM;
    }
    if (pfn !== core.ram.zeroPfn) core.ram.data(copy).set(core.pageData(pfn)); // a coherent device page too
    core.ram.markWritten(copy);
    anonVmaPrepare(vma);
    t.set(j, copy, PTE_PRESENT | PTE_ACCESSED | PTE_DIRTY | PTE_WRITE);
    if ((f & PTE_SPECIAL) === 0) core.putPage(pfn);
    return 0;
  } finally {
    await invalidateEnd(mm, range);
  }
}
