/**
 * The page-table walk behind hmm_range_fault (mm/hmm.c: hmm_walk_ops — hmm_vma_walk_test,
 * _hole, _pmd, _hugetlb_entry, hmm_vma_handle_pte — and hmm_vma_fault), as ops on the
 * common walker (src/mm/pagewalk.ts). Shared by the upstream API (range-fault.ts) and the
 * v5.2 one (range-v52.ts), which differ only in how a retry is decided and reported.
 *
 * One call walks [from, end) and returns WALK_DONE, or WALK_BUSY after it faulted pages in
 * (with `last` set to where the next walk resumes), or throws EFAULT/EPERM. Output entries
 * below `last` are final; entries at or above it still hold their input requests, exactly
 * the contract the kernel documents for hmm_range_fault.
 *
 * The walker never sleeps: where the kernel's callbacks sleep (hmm_vma_fault's
 * handle_mm_fault calls, migration_entry_wait) and then return -EBUSY, these record what to
 * do in the walk and stop it with HMM_FAULT or HMM_MIGRATION_WAIT; walkRange does it and
 * returns WALK_BUSY. Nothing runs in between, so the order of events is the kernel's.
 */
import { err } from '../errors.js';
import { PAGE_SIZE, PMD_PAGES } from '../mm/constants.js';
import { handleMmFault, handleMmFaultNoSleepRun, migrationEntryWait, VM_FAULT_ERROR } from '../mm/fault.js';
import type { MmStruct } from '../mm/mm.js';
import {
  isDeviceExclusive, isDevicePrivate, isMigration, pteIndex, PTE_PRESENT, PTE_PROTNONE, PTE_SPECIAL, PTE_WRITE, PTRS_PER_TABLE,
  swpKind, swpWritable, SWP_SWAP, type PteTable,
} from '../mm/page-table.js';
import { HOLE_NO_VMA, pagesIn, walkPageRange, type MmWalk, type MmWalkOps } from '../mm/pagewalk.js';
import { VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, type Vma } from '../mm/vma.js';
import { HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, type HmmPfns } from './pfn.js';

export const WALK_DONE = 0;
export const WALK_BUSY = 1;

/** Walk stop codes: hmm_vma_fault is due, or migration_entry_wait. */
const HMM_FAULT = 1;
const HMM_MIGRATION_WAIT = 2;

const NEED_FAULT = 1;
const NEED_WRITE_FAULT = 2;
const PMD_ORDER = 9;

/** What one walk needs from its range (struct hmm_range + struct hmm_vma_walk). */
export interface WalkState extends MmWalk {
  readonly start: number;
  readonly end: number;
  readonly hmmPfns: HmmPfns;
  readonly defaultFlags: number;
  readonly pfnFlagsMask: number;
  readonly devPrivateOwner: unknown;
  /** HmmRange.faultOwnReadOnly (a departure switch; false is Linux). */
  readonly faultOwnReadOnly: boolean;
  /** hmm_vma_walk->last: where the next walk starts. */
  last: number;
  /** Pages handed to handle_mm_fault, for the callers' statistics. */
  faulted: number;
  /** The sleep the walk stopped for: fault [last, faultEnd) with `required`, or wait on the entry. */
  faultEnd: number;
  required: number;
  waitTable: PteTable | null;
  waitIndex: number;
}

export interface WalkInit {
  mm: MmStruct;
  start: number;
  end: number;
  hmmPfns: HmmPfns;
  defaultFlags: number;
  pfnFlagsMask: number;
  devPrivateOwner: unknown;
  faultOwnReadOnly?: boolean;
}

/** struct hmm_vma_walk for a range, `last` at its start. */
export function walkState(init: WalkInit): WalkState {
  return {
    mm: init.mm, vma: null, start: init.start, end: init.end, hmmPfns: init.hmmPfns, defaultFlags: init.defaultFlags,
    pfnFlagsMask: init.pfnFlagsMask, devPrivateOwner: init.devPrivateOwner, faultOwnReadOnly: init.faultOwnReadOnly === true,
    last: init.start, faulted: 0, faultEnd: 0, required: 0, waitTable: null, waitIndex: 0,
  };
}

/** hmm_pte_need_fault(): does this page's request need a (write) fault given cpuFlags? */
function pteNeedFault(s: WalkState, req: number, cpuFlags: number): number {
  req = (req & s.pfnFlagsMask) | s.defaultFlags;
  if ((req & HMM_PFN_REQ_FAULT) === 0) return 0;
  if ((req & HMM_PFN_REQ_WRITE) !== 0 && (cpuFlags & HMM_PFN_WRITE) === 0) return NEED_FAULT | NEED_WRITE_FAULT;
  if ((cpuFlags & HMM_PFN_VALID) === 0) return NEED_FAULT;
  return 0;
}

/** hmm_range_need_fault(): the union over pages [i, i+n). */
function rangeNeedFault(s: WalkState, i: number, n: number, cpuFlags: number): number {
  // Fast path: nothing in the range can ask for a fault.
  if (((s.defaultFlags | s.pfnFlagsMask) & HMM_PFN_REQ_FAULT) === 0) return 0;
  // No per-page request bits honoured: every page asks the same (hmm_range_need_fault's
  // answer for one page is the answer for the range).
  if (s.pfnFlagsMask === 0) return n > 0 ? pteNeedFault(s, 0, cpuFlags) : 0;
  let required = 0;
  const flags = s.hmmPfns.flags;
  for (let k = i; k < i + n; k++) {
    required |= pteNeedFault(s, flags[k], cpuFlags);
    if ((required & NEED_WRITE_FAULT) !== 0) break;
  }
  return required;
}

function fill(s: WalkState, addr: number, end: number, pfn: number, flags: number): void {
  const i = (addr - s.start) / PAGE_SIZE;
  const n = (end - addr) / PAGE_SIZE;
  s.hmmPfns.pfns.fill(pfn, i, i + n);
  s.hmmPfns.flags.fill(flags, i, i + n);
}

/**
 * hmm_vma_fault(), first half: the walk stops here to fault every page of [addr, end) with
 * the one set of fault flags the first page needing it asked for. `end` is the end of the
 * current walk chunk (the PMD boundary, the hole's end, the VMA end or the range end), not
 * of the page: the kernel faults every page from there on, whether or not it asked.
 */
function vmaFault(s: WalkState, addr: number, end: number, required: number): number {
  s.last = addr;
  if ((required & NEED_WRITE_FAULT) !== 0 && (s.vma!.flags & VM_WRITE) === 0) {
    throw err('EPERM', `write fault on read-only VMA at 0x${addr.toString(16)}`);
  }
  s.faultEnd = end;
  s.required = required;
  return HMM_FAULT;
}

/**
 * hmm_vma_fault(), second half: handle_mm_fault on each page, then WALK_BUSY so the walk
 * restarts at `last`. Invalidations the faults send (a COW break's MMU_NOTIFY_CLEAR) are
 * seen once, by hmm_range_fault's mmu_interval_check_retry before the next walk: N COW
 * breaks in one chunk cost the caller one EBUSY, not N.
 */
async function doVmaFault(s: WalkState): Promise<number> {
  const mm = s.mm;
  const vma = s.vma!;
  const write = (s.required & NEED_WRITE_FAULT) !== 0;
  // The PTE table of a's PMD once a fault has made it: the next pages' demand-zero faults
  // need no descent from the root; anything else goes the full way.
  // The rest of that table's run is filled in one pass (handleMmFaultNoSleepRun).
  let t: PteTable | null = null;
  for (let a = s.last; a < s.faultEnd;) {
    const j = pteIndex(a);
    if (j === 0) t = null;
    if (t !== null) {
      const n = Math.min(PTRS_PER_TABLE - j, (s.faultEnd - a) / PAGE_SIZE);
      const k = handleMmFaultNoSleepRun(mm, vma, t, j, n, write);
      s.faulted += k;
      a += k * PAGE_SIZE;
      if (k === n) continue;
    }
    s.faulted++;
    const r = await handleMmFault(mm, vma, a, { write });
    if ((r & VM_FAULT_ERROR) !== 0) throw err('EFAULT', `handle_mm_fault failed at 0x${a.toString(16)}`);
    t = mm.pgtable.pteTable(a, false);
    a += PAGE_SIZE;
  }
  return WALK_BUSY;
}

/** Walk [from, s.end): walk_page_range with hmm_walk_ops, then the sleep it stopped for. */
export async function walkRange(s: WalkState, from: number): Promise<number> {
  switch (walkPageRange(s, HMM_WALK_OPS, from, s.end)) {
    case HMM_FAULT:
      return doVmaFault(s);
    case HMM_MIGRATION_WAIT: {
      // migration_entry_wait(): sleep until the migration ends (no spin), then retry from here.
      const t = s.waitTable!;
      s.waitTable = null;
      await migrationEntryWait(s.mm, t, s.waitIndex, s.last);
      return WALK_BUSY;
    }
    default:
      s.last = s.end;
      return WALK_DONE;
  }
}

const HMM_WALK_OPS: MmWalkOps<WalkState> = {
  /**
   * hmm_vma_walk_test(): no struct pages, or no read permission (HMM can't mirror
   * write-only): error entries, or EFAULT when a fault was asked for. Skips the VMA.
   */
  testWalk(s, addr, next) {
    const vma = s.vma!;
    if ((vma.flags & (VM_IO | VM_PFNMAP)) === 0 && (vma.flags & VM_READ) !== 0) return true;
    if (rangeNeedFault(s, (addr - s.start) / PAGE_SIZE, pagesIn(addr, next), 0) !== 0) {
      throw err('EFAULT', `VMA at 0x${vma.start.toString(16)} cannot be mirrored`);
    }
    fill(s, addr, next, 0, HMM_PFN_ERROR);
    return false;
  },

  /** hmm_vma_walk_hole(): no VMA (EFAULT if a fault is asked, else errors), or no table. */
  pteHole(s, addr, next, depth) {
    const required = rangeNeedFault(s, (addr - s.start) / PAGE_SIZE, pagesIn(addr, next), 0);
    if (depth === HOLE_NO_VMA) {
      if (required !== 0) throw err('EFAULT', `no VMA at 0x${addr.toString(16)}`);
      fill(s, addr, next, 0, HMM_PFN_ERROR);
      return 0;
    }
    if (required !== 0) return vmaFault(s, addr, next, required);
    fill(s, addr, next, 0, 0);
    return 0;
  },

  /** hmm_vma_handle_pmd() / hmm_vma_walk_hugetlb_entry(): one leaf, order 9. */
  pmdEntry(s, pmd, pi, addr, next) {
    const i0 = (addr - s.start) / PAGE_SIZE;
    const n = pagesIn(addr, next);
    const pf = pmd.flags[pi];
    // hmm_vma_handle_absent_pmd (the device-private THP series): the caller's own
    // device-private THP is reported at order 9, not faulted (as its PTEs would be).
    const own = isDevicePrivate(pf) && s.devPrivateOwner !== null && s.devPrivateOwner !== undefined
      && s.mm.core.pagemaps.of(pmd.pfn[pi])?.owner === s.devPrivateOwner;
    const cpu = own ? HMM_PFN_VALID | (swpWritable(pf) ? HMM_PFN_WRITE : 0) | PMD_ORDER
      : (pf & PTE_PRESENT) === 0 || (pf & PTE_PROTNONE) !== 0 ? 0 : HMM_PFN_VALID | ((pf & PTE_WRITE) !== 0 ? HMM_PFN_WRITE : 0) | PMD_ORDER;
    const required = own && !s.faultOwnReadOnly ? 0 : rangeNeedFault(s, i0, n, cpu);
    if (required !== 0) return vmaFault(s, addr, next, required);
    if (cpu === 0) {
      fill(s, addr, next, 0, 0);
      return 0;
    }
    const base = pmd.pfn[pi] + ((addr / PAGE_SIZE) % PMD_PAGES);
    const pfns = s.hmmPfns.pfns;
    const flags = s.hmmPfns.flags;
    for (let k = 0; k < n; k++) {
      pfns[i0 + k] = base + k;
      flags[i0 + k] = cpu;
    }
    return 0;
  },

  /**
   * hmm_vma_walk_pmd()'s loop of hmm_vma_handle_pte() over one PTE table: the hot loop, no
   * allocation. A page that needs a fault faults [a, next), the rest of this chunk (the
   * kernel's `goto fault`).
   */
  pteEntry(s, t, j, addr, next) {
    const i0 = (addr - s.start) / PAGE_SIZE;
    const n = pagesIn(addr, next);
    const pfns = s.hmmPfns.pfns;
    const flags = s.hmmPfns.flags;
    const zeroPfn = s.mm.core.ram.zeroPfn;
    const canFault = ((s.defaultFlags | s.pfnFlagsMask) & HMM_PFN_REQ_FAULT) !== 0;
    for (let k = 0; k < n; k++, j++) {
      const i = i0 + k;
      const pf = t.flags[j];
      if (pf === 0) {
        // pte_none
        if (canFault && pteNeedFault(s, flags[i], 0) !== 0) return vmaFault(s, addr + k * PAGE_SIZE, next, pteNeedFault(s, flags[i], 0));
        pfns[i] = 0;
        flags[i] = 0;
        continue;
      }
      if ((pf & PTE_PRESENT) === 0) {
        const a = addr + k * PAGE_SIZE;
        // A swap entry. The caller's own device-private pages are reported, not faulted —
        // even when a write was asked of a read-only one (after fork): Linux returns it valid
        // without HMM_PFN_WRITE and the driver must cope (test_hmm: EFAULT). With the
        // faultOwnReadOnly switch such a write faults instead (migrate_to_ram, then COW).
        if (isDevicePrivate(pf) && s.devPrivateOwner !== null && s.devPrivateOwner !== undefined
          && s.mm.core.pagemaps.of(t.pfn[j])?.owner === s.devPrivateOwner) {
          const cpu = HMM_PFN_VALID | (swpWritable(pf) ? HMM_PFN_WRITE : 0);
          const required = canFault && s.faultOwnReadOnly ? pteNeedFault(s, flags[i], cpu) : 0;
          if (required === 0) {
            pfns[i] = t.pfn[j];
            flags[i] = cpu;
            continue;
          }
          return vmaFault(s, a, next, required);
        }
        const required = canFault ? pteNeedFault(s, flags[i], 0) : 0;
        if (required === 0) {
          pfns[i] = 0;
          flags[i] = 0;
          continue;
        }
        if (swpKind(pf) === SWP_SWAP || isDevicePrivate(pf) || isDeviceExclusive(pf)) {
          return vmaFault(s, a, next, required);
        }
        if (isMigration(pf)) {
          s.last = a;
          s.waitTable = t;
          s.waitIndex = j;
          return HMM_MIGRATION_WAIT;
        }
        throw err('EFAULT', `unexpected swap entry at 0x${a.toString(16)}`);
      }
      // pte_to_hmm_pfn_flags(): a PROT_NONE (NUMA-hinting style) entry gives nothing.
      const cpu = (pf & PTE_PROTNONE) !== 0 ? 0 : HMM_PFN_VALID | ((pf & PTE_WRITE) !== 0 ? HMM_PFN_WRITE : 0);
      if (cpu === 0 && !(canFault && pteNeedFault(s, flags[i], 0) !== 0)) {
        pfns[i] = 0;
        flags[i] = 0;
        continue;
      }
      if (canFault) {
        const required = pteNeedFault(s, flags[i], cpu);
        if (required !== 0) return vmaFault(s, addr + k * PAGE_SIZE, next, required);
      }
      const pfn = t.pfn[j];
      if ((pf & PTE_SPECIAL) !== 0 && pfn !== zeroPfn) {
        // A special pfn with no struct page (VM_MIXEDMAP inserts of raw pfns).
        if (canFault && pteNeedFault(s, flags[i], 0) !== 0) throw err('EFAULT', `special pfn at 0x${(addr + k * PAGE_SIZE).toString(16)}`);
        pfns[i] = 0;
        flags[i] = HMM_PFN_ERROR;
        continue;
      }
      pfns[i] = pfn;
      flags[i] = cpu;
    }
    return 0;
  },
};
