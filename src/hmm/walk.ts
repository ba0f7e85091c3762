/**
 * The page-table walk behind hmm_range_fault (mm/hmm.c: hmm_vma_walk_test, _hole, _pmd,
 * _handle_pte, hmm_vma_fault). Shared by the upstream API (range-fault.ts) and the v5.2
 * one (range-v52.ts), which differ only in how a retry is decided and reported.
 *
 * One call walks [from, end) and returns WALK_DONE, or WALK_BUSY after it faulted pages in
 * (with `last` set to where the next walk resumes), or throws EFAULT/EPERM. Output entries
 * below `last` are final; entries at or above it still hold their input requests, exactly
 * the contract the kernel documents for hmm_range_fault.
 */
import { err } from '../errors.js';
import { PAGE_SIZE, PMD_PAGES, PMD_SIZE } from '../mm/constants.js';
import { handleMmFault, migrationEntryWait, VM_FAULT_ERROR } from '../mm/fault.js';
import type { MmStruct } from '../mm/mm.js';
import {
  isDeviceExclusive, isDevicePrivate, isMigration, pmdIndex, PTE_PRESENT, PTE_PROTNONE, PTE_SPECIAL, PTE_WRITE,
  swpKind, swpWritable, SWP_SWAP,
} from '../mm/page-table.js';
import { VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, type Vma } from '../mm/vma.js';
import { HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, type HmmPfns } from './pfn.js';

export const WALK_DONE = 0;
export const WALK_BUSY = 1;

const NEED_FAULT = 1;
const NEED_WRITE_FAULT = 2;
const PMD_ORDER = 9;

/** What one walk needs from its range (struct hmm_range + struct hmm_vma_walk). */
export interface WalkState {
  readonly mm: MmStruct;
  readonly start: number;
  readonly end: number;
  readonly hmmPfns: HmmPfns;
  readonly defaultFlags: number;
  readonly pfnFlagsMask: number;
  readonly devPrivateOwner: unknown;
  /** hmm_vma_walk->last: where the next walk starts. */
  last: number;
  /** Pages handed to handle_mm_fault, for the callers' statistics. */
  faulted: number;
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
 * hmm_vma_fault(): fault every page of [addr, end) with the one set of fault flags the
 * first page needing it asked for — `end` is the end of the current walk chunk (the PMD
 * boundary, the VMA end or the range end), not of the page: the kernel faults every page
 * from there on, whether or not it asked — and report WALK_BUSY so the walk restarts at
 * addr. Invalidations the faults send (a COW break's MMU_NOTIFY_CLEAR) are seen once, by
 * hmm_range_fault's mmu_interval_check_retry before the next walk: N COW breaks in one
 * chunk cost the caller one EBUSY, not N.
 */
async function vmaFault(s: WalkState, vma: Vma, addr: number, end: number, required: number): Promise<number> {
  s.last = addr;
  const write = (required & NEED_WRITE_FAULT) !== 0;
  if (write && (vma.flags & VM_WRITE) === 0) throw err('EPERM', `write fault on read-only VMA at 0x${addr.toString(16)}`);
  for (let a = addr; a < end; a += PAGE_SIZE) {
    s.faulted++;
    if ((await handleMmFault(s.mm, vma, a, { write }) & VM_FAULT_ERROR) !== 0) {
      throw err('EFAULT', `handle_mm_fault failed at 0x${a.toString(16)}`);
    }
  }
  return WALK_BUSY;
}

/** A range with no VMA at all (hmm_vma_walk_hole with walk->vma == NULL). */
function holeWithoutVma(s: WalkState, addr: number, end: number): void {
  const i = (addr - s.start) / PAGE_SIZE;
  if (rangeNeedFault(s, i, (end - addr) / PAGE_SIZE, 0) !== 0) {
    throw err('EFAULT', `no VMA at 0x${addr.toString(16)}`);
  }
  fill(s, addr, end, 0, HMM_PFN_ERROR);
}

/** Walk [from, s.end). */
export async function walkRange(s: WalkState, from: number): Promise<number> {
  const mm = s.mm;
  let addr = from;
  while (addr < s.end) {
    const vma = mm.vmas.find(addr);
    if (vma === undefined || vma.start >= s.end) {
      holeWithoutVma(s, addr, s.end);
      break;
    }
    if (vma.start > addr) {
      holeWithoutVma(s, addr, vma.start);
      addr = vma.start;
    }
    const vend = Math.min(vma.end, s.end);
    // hmm_vma_walk_test(): no struct pages, or no read permission (HMM can't mirror
    // write-only): an error entry, or EFAULT when a fault was asked for.
    if ((vma.flags & (VM_IO | VM_PFNMAP)) !== 0 || (vma.flags & VM_READ) === 0) {
      if (rangeNeedFault(s, (addr - s.start) / PAGE_SIZE, (vend - addr) / PAGE_SIZE, 0) !== 0) {
        throw err('EFAULT', `VMA at 0x${vma.start.toString(16)} cannot be mirrored`);
      }
      fill(s, addr, vend, 0, HMM_PFN_ERROR);
      addr = vend;
      continue;
    }
    while (addr < vend) {
      const next = Math.min(vend, (Math.floor(addr / PMD_SIZE) + 1) * PMD_SIZE);
      if ((await walkPmd(s, vma, addr, next)) === WALK_BUSY) return WALK_BUSY;
      addr = next;
    }
  }
  s.last = s.end;
  return WALK_DONE;
}

/** hmm_vma_walk_pmd(): one PMD's worth, [addr, end) inside one VMA and one 2 MiB block. */
async function walkPmd(s: WalkState, vma: Vma, addr: number, end: number): Promise<number> {
  const pmd = s.mm.pgtable.pmd(addr, false);
  const pi = pmdIndex(addr);
  const i0 = (addr - s.start) / PAGE_SIZE;
  const n = (end - addr) / PAGE_SIZE;
  if (pmd === null || (pmd.flags[pi] === 0 && pmd.tables[pi] === null)) {
    // pmd_none: hmm_vma_walk_hole.
    const required = rangeNeedFault(s, i0, n, 0);
    if (required !== 0) return vmaFault(s, vma, addr, end, required);
    fill(s, addr, end, 0, 0);
    return WALK_DONE;
  }
  if (pmd.isHuge(pi)) {
    // hmm_vma_handle_pmd() / hmm_vma_walk_hugetlb_entry(): one entry, order 9.
    const pf = pmd.flags[pi];
    const cpu = (pf & PTE_PRESENT) === 0 || (pf & PTE_PROTNONE) !== 0 ? 0 : HMM_PFN_VALID | ((pf & PTE_WRITE) !== 0 ? HMM_PFN_WRITE : 0) | PMD_ORDER;
    const required = rangeNeedFault(s, i0, n, cpu);
    if (required !== 0 || cpu === 0) {
      if (required !== 0) return vmaFault(s, vma, addr, end, required);
      fill(s, addr, end, 0, 0);
      return WALK_DONE;
    }
    const base = pmd.pfn[pi] + ((addr / PAGE_SIZE) % PMD_PAGES);
    const pfns = s.hmmPfns.pfns;
    const flags = s.hmmPfns.flags;
    for (let k = 0; k < n; k++) {
      pfns[i0 + k] = base + k;
      flags[i0 + k] = cpu;
    }
    return WALK_DONE;
  }
  const t = pmd.tables[pi];
  if (t === null) {
    fill(s, addr, end, 0, 0);
    return WALK_DONE;
  }
  // hmm_vma_handle_pte() over each entry: the hot loop, no allocation. A page that needs a
  // fault faults [a, end), the rest of this chunk (the kernel's `goto fault`).
  const pfns = s.hmmPfns.pfns;
  const flags = s.hmmPfns.flags;
  const zeroPfn = s.mm.core.ram.zeroPfn;
  const canFault = ((s.defaultFlags | s.pfnFlagsMask) & HMM_PFN_REQ_FAULT) !== 0;
  let j = (addr / PAGE_SIZE) % PMD_PAGES;
  for (let k = 0; k < n; k++, j++) {
    const i = i0 + k;
    const pf = t.flags[j];
    const a = addr + k * PAGE_SIZE;
    if (pf === 0) {
      // pte_none
      if (canFault && pteNeedFault(s, flags[i], 0) !== 0) return vmaFault(s, vma, a, end, pteNeedFault(s, flags[i], 0));
      pfns[i] = 0;
      flags[i] = 0;
      continue;
    }
    if ((pf & PTE_PRESENT) === 0) {
      // A swap entry. The caller's own device-private pages are reported, not faulted.
      // Linux reports them even when a write was asked of a read-only one (after fork);
      // a device then re-faults forever, so here such a write faults (migrate_to_ram, COW).
      if (isDevicePrivate(pf) && s.devPrivateOwner !== null && s.devPrivateOwner !== undefined
        && s.mm.core.pagemaps.of(t.pfn[j])?.owner === s.devPrivateOwner) {
        const cpu = HMM_PFN_VALID | (swpWritable(pf) ? HMM_PFN_WRITE : 0);
        const required = canFault ? pteNeedFault(s, flags[i], cpu) : 0;
        if (required === 0) {
          pfns[i] = t.pfn[j];
          flags[i] = cpu;
          continue;
        }
        return vmaFault(s, vma, a, end, required);
      }
      const required = canFault ? pteNeedFault(s, flags[i], 0) : 0;
      if (required === 0) {
        pfns[i] = 0;
        flags[i] = 0;
        continue;
      }
      if (swpKind(pf) === SWP_SWAP || isDevicePrivate(pf) || isDeviceExclusive(pf)) {
        return vmaFault(s, vma, a, end, required);
      }
      if (isMigration(pf)) {
        // migration_entry_wait(): sleep until the migration ends (no spin), then retry from here.
        s.last = a;
        await migrationEntryWait(s.mm, t, j, a);
        return WALK_BUSY;
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
      if (required !== 0) return vmaFault(s, vma, a, end, required);
    }
    const pfn = t.pfn[j];
    if ((pf & PTE_SPECIAL) !== 0 && pfn !== zeroPfn) {
      // A special pfn with no struct page (VM_MIXEDMAP inserts of raw pfns).
      if (canFault && pteNeedFault(s, flags[i], 0) !== 0) throw err('EFAULT', `special pfn at 0x${a.toString(16)}`);
      pfns[i] = 0;
      flags[i] = HMM_PFN_ERROR;
      continue;
    }
    pfns[i] = pfn;
    flags[i] = cpu;
  }
  return WALK_DONE;
}
