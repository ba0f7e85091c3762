/**
 * mprotect(2) (mm/mprotect.c do_mprotect_pkey / mprotect_fixup / change_protection).
 * Under the mmap write lock. Unlike the kernel, which applies the change to the VMAs before
 * a hole and then fails with ENOMEM, the whole range is checked first, so a failing call
 * changes nothing.
 */
import { err } from '../errors.js';
import { PMD_SIZE } from './constants.js';
import { splitPartialHugePmds } from './huge.js';
import { invalidateEnd, invalidateStart, type MmStruct } from './mm.js';
import { checkHugetlbSplit } from './mmap.js';
import {
  isDeviceExclusive, isDevicePrivate, isMigration, isPresent, PTE_PROTNONE, PTE_SPECIAL,
  PTE_WRITE, PMD_HUGE, PTRS_PER_TABLE, swpKind, SWP_DEVICE_READ, SWP_DEVICE_WRITE, SWP_EXCLUSIVE_READ, SWP_EXCLUSIVE_WRITE,
  SWP_MASK, SWP_MIGRATION_READ, SWP_MIGRATION_WRITE,
} from './page-table.js';
import { pagesIn, walkPageRangeVma, type MmWalk, type MmWalkOps } from './pagewalk.js';
import type { MemCore } from './pages.js';
import { validateMprotect } from './validate.js';
import { vmaModifyFlags } from './vma-ops.js';
import { isHugetlb, isShared, VM_ACCESS_FLAGS, VM_WRITE, vmaAccessible, protToVmFlags, type Vma } from './vma.js';

const PUD_SPAN = PMD_SIZE * PTRS_PER_TABLE;

/** The readable form of a writable non-present entry (make_readable_*_entry). */
function readableSwp(flags: number): number {
  const k = swpKind(flags);
  const r = k === SWP_DEVICE_WRITE ? SWP_DEVICE_READ
    : k === SWP_EXCLUSIVE_WRITE ? SWP_EXCLUSIVE_READ
      : k === SWP_MIGRATION_WRITE ? SWP_MIGRATION_READ : k;
  return (flags & ~SWP_MASK) | r;
}

/**
 * The new flags of a present entry under `vma`'s (new) protection: PROT_NONE marks it
 * protnone; write is granted to shared mappings and, for private ones, only to anonymous
 * pages this mm alone holds (can_change_pte_writable / MM_CP_TRY_CHANGE_WRITABLE) — except
 * private hugetlb, which keeps write-protecting until hugetlb_wp.
 */
function newPresentFlags(core: MemCore, vma: Vma, pfn: number, flags: number, huge: boolean): number {
  let f = flags & ~(PTE_WRITE | PTE_PROTNONE);
  if (!vmaAccessible(vma)) return f | PTE_PROTNONE;
  if ((vma.flags & VM_WRITE) !== 0 && (flags & PTE_SPECIAL) === 0) {
    if (isShared(vma)) f |= PTE_WRITE;
    else if (!(huge && isHugetlb(vma)) && core.isAnonPage(pfn) && core.refcount(pfn) === 1) f |= PTE_WRITE;
  }
  return f;
}

interface ProtWalk extends MmWalk {
  readonly core: MemCore;
  /** The VMA's new protection grants write. */
  readonly writable: boolean;
}

/** change_protection()'s ops: change_pte_range and change_huge_pmd. */
const PROT_OPS: MmWalkOps<ProtWalk> = {
  pteEntry(w, t, j, addr, next) {
    if (t.used === 0) return 0;
    const vma = w.vma!;
    for (const to = j + pagesIn(addr, next); j < to; j++) {
      const f = t.flags[j];
      if (f === 0) continue;
      if (isPresent(f)) t.flags[j] = newPresentFlags(w.core, vma, t.pfn[j], f, false);
      else if (!w.writable && (isDevicePrivate(f) || isDeviceExclusive(f) || isMigration(f))) t.flags[j] = readableSwp(f);
    }
    return 0;
  },
  pmdEntry(w, pmd, i) {
    const pf = pmd.flags[i] & ~PMD_HUGE;
    if (!isPresent(pf)) {
      // change_huge_pmd on a device-private or migration PMD: a writable entry turns readable.
      if (!w.writable) pmd.flags[i] = readableSwp(pf) | PMD_HUGE;
      return 0;
    }
    pmd.flags[i] = newPresentFlags(w.core, w.vma!, pmd.pfn[i], pf, true) | PMD_HUGE;
    return 0;
  },
};

/** change_protection() over [start, end) of `vma`, synchronous. */
export function changeProtection(mm: MmStruct, vma: Vma, start: number, end: number): void {
  const w: ProtWalk = { mm, vma, core: mm.core, writable: (vma.flags & VM_WRITE) !== 0 };
  walkPageRangeVma(w, PROT_OPS, vma, start, end);
}

/** Whether any page table exists under [start, end) (change_pud_range only notifies then). */
function populated(mm: MmStruct, start: number, end: number): boolean {
  for (let a = Math.floor(start / PUD_SPAN) * PUD_SPAN; a < end; a += PUD_SPAN) {
    if (mm.pgtable.pmd(a, false) !== null) return true;
  }
  return false;
}

export async function doMprotect(mm: MmStruct, addr: unknown, length: unknown, prot: unknown): Promise<void> {
  const args = validateMprotect(addr, length, prot);
  await mm.lock.writeLock();
  try {
    mm.checkAlive();
    if (args === null) return;
    const { start, end } = args;
    // Check everything first: a hole anywhere is ENOMEM, a hugetlb cut off 2 MiB is EINVAL.
    let pos = start;
    for (const v of mm.vmas.range(start, end)) {
      if (v.start > pos) break;
      pos = v.end;
    }
    if (pos < end) throw err('ENOMEM', `mprotect: [0x${start.toString(16)}, 0x${end.toString(16)}) is not fully mapped`);
    checkHugetlbSplit(mm, start, end);

    const access = protToVmFlags(args.prot);
    for (let a = start; a < end;) {
      const v = mm.vmas.lookup(a)!;
      const pe = Math.min(end, v.end);
      const newFlags = (v.flags & ~VM_ACCESS_FLAGS) | access;
      if (newFlags !== v.flags) {
        await splitPartialHugePmds(mm, a, pe);
        const piece = vmaModifyFlags(mm, mm.vmas.lookup(a)!, a, pe, newFlags);
        const range = populated(mm, a, pe) ? await invalidateStart(mm, a, pe, 'PROTECTION_VMA') : null;
        try {
          changeProtection(mm, piece, a, pe);
        } finally {
          await invalidateEnd(mm, range);
        }
      }
      a = pe;
    }
  } finally {
    mm.lock.writeUnlock();
  }
}
