/**
 * The one CPU page-table walker (mm/pagewalk.c: walk_page_range, walk_page_range_vma,
 * walk_page_range_novma; include/linux/pagewalk.h: struct mm_walk_ops), and the one
 * single-address lookup (follow_pte). zap, mprotect, fork and hmm_range_fault are ops on
 * it; rmap, the CPU's access path and the drivers' checks use the lookup.
 *
 * The walk is synchronous (a walker never awaits: the whole walk is one stretch under the
 * implicit PTL, see page-table.ts) and allocates nothing: it reads the PMD table once per
 * PUD span and hands each callback typed arrays and indices. A callback that must sleep
 * (hmm_vma_fault, migration_entry_wait) records what it needs in its walk and returns a
 * non-zero code; the walk stops there and the caller sleeps, as the kernel's callbacks
 * return -EBUSY after sleeping.
 *
 * Departure: the kernel's ops have a pte_entry per PTE; here `pteEntry` is called once per
 * PTE table with the index range, the shape of the kernel's own hot range walkers
 * (zap_pte_range, change_pte_range, copy_pte_range, hmm_vma_walk_pmd's loop), so the hot
 * loop is a plain indexed loop with no call per entry. `pmdEntry` sees only PMD leaves
 * (pmd_trans_huge, and hugetlb_entry's 2 MiB pages: both are PMD leaves here).
 */
import { PAGE_SIZE, PMD_SIZE } from './constants.js';
import type { MmStruct } from './mm.js';
import {
  isDeviceExclusive, isDevicePrivate, isPresent, pmdIndex, pteIndex, PteTable, PTRS_PER_TABLE, type PmdTable,
} from './page-table.js';
import type { Vma } from './vma.js';

const PUD_SIZE = PMD_SIZE * PTRS_PER_TABLE; // 1 GiB

/** pte_hole depths (as the kernel numbers them): no VMA, a PUD slot, a PMD slot. */
export const HOLE_NO_VMA = -1;
export const HOLE_PUD = 2;
export const HOLE_PMD = 3;

/** struct mm_walk: what every walk carries. A user extends it with its private state. */
export interface MmWalk {
  readonly mm: MmStruct;
  /** The VMA being walked; null in a hole without one, and in walk_page_range_novma. */
  vma: Vma | null;
}

/**
 * struct mm_walk_ops. Every callback returns 0 to go on, or a non-zero code that stops the
 * walk and is what the walk returns (the kernel's negative errno, or -EBUSY after a fault).
 */
export interface MmWalkOps<W extends MmWalk> {
  /** test_walk: false skips the VMA's [addr, next) (the callback has dealt with it). */
  testWalk?(walk: W, addr: number, next: number): boolean;
  /** pte_hole: nothing mapped in [addr, next); `depth` is a HOLE_* constant. */
  pteHole?(walk: W, addr: number, next: number, depth: number): number;
  /** pmd_entry on a PMD leaf (THP or hugetlb) covering [addr, next): slot i of `pmd`. */
  pmdEntry?(walk: W, pmd: PmdTable, i: number, addr: number, next: number): number;
  /** pte_entry for the entries of one PTE table covering [addr, next), from index j. */
  pteEntry?(walk: W, t: PteTable, j: number, addr: number, next: number): number;
}

function pmdAddrEnd(addr: number, end: number): number {
  const b = (Math.floor(addr / PMD_SIZE) + 1) * PMD_SIZE;
  return b < end ? b : end;
}
function pudAddrEnd(addr: number, end: number): number {
  const b = (Math.floor(addr / PUD_SIZE) + 1) * PUD_SIZE;
  return b < end ? b : end;
}

/**
 * __walk_page_range(): the page tables under [start, end) with walk.vma as the caller set
 * it. walk_pud_range's pud_none is one hole to the PUD's end; within a PMD table each slot
 * is a hole (pmd_none), a leaf (pmdEntry) or a PTE table (pteEntry).
 */
function walkTables<W extends MmWalk>(walk: W, ops: MmWalkOps<W>, start: number, end: number): number {
  const pt = walk.mm.pgtable;
  let addr = start;
  while (addr < end) {
    const pudEnd = pudAddrEnd(addr, end);
    const pmd = pt.pmd(addr, false);
    if (pmd === null) {
      if (ops.pteHole !== undefined) {
        const r = ops.pteHole(walk, addr, pudEnd, HOLE_PUD);
        if (r !== 0) return r;
      }
      addr = pudEnd;
      continue;
    }
    while (addr < pudEnd) {
      const next = pmdAddrEnd(addr, pudEnd);
      const i = pmdIndex(addr);
      const t = pmd.tables[i];
      let r = 0;
      if (t !== null) {
        if (ops.pteEntry !== undefined) r = ops.pteEntry(walk, t, pteIndex(addr), addr, next);
      } else if (pmd.flags[i] !== 0) {
        if (ops.pmdEntry !== undefined) r = ops.pmdEntry(walk, pmd, i, addr, next);
      } else if (ops.pteHole !== undefined) {
        r = ops.pteHole(walk, addr, next, HOLE_PMD);
      }
      if (r !== 0) return r;
      addr = next;
    }
  }
  return 0;
}

/**
 * walk_page_range(): [start, end) VMA by VMA. A stretch with no VMA is one pte_hole with
 * walk.vma null (HOLE_NO_VMA); each VMA's part is offered to testWalk, then walked.
 * Departure: no VM_PFNMAP rule of its own (walk_page_test's): testWalk decides.
 */
export function walkPageRange<W extends MmWalk>(walk: W, ops: MmWalkOps<W>, start: number, end: number): number {
  const vmas = walk.mm.vmas;
  let addr = start;
  while (addr < end) {
    const vma = vmas.find(addr);
    let r: number;
    let next: number;
    if (vma === undefined || vma.start > addr) {
      next = vma === undefined || vma.start > end ? end : vma.start;
      walk.vma = null;
      r = ops.pteHole !== undefined ? ops.pteHole(walk, addr, next, HOLE_NO_VMA) : 0;
    } else {
      next = vma.end < end ? vma.end : end;
      walk.vma = vma;
      r = ops.testWalk === undefined || ops.testWalk(walk, addr, next) ? walkTables(walk, ops, addr, next) : 0;
    }
    if (r !== 0) return r;
    addr = next;
  }
  return 0;
}

/** walk_page_range_vma(): [start, end) inside `vma`, no test_walk. */
export function walkPageRangeVma<W extends MmWalk>(walk: W, ops: MmWalkOps<W>, vma: Vma, start: number, end: number): number {
  if (start >= end || start < vma.start || end > vma.end) throw new Error(`walk of [0x${start.toString(16)}, 0x${end.toString(16)}) outside its VMA`);
  walk.vma = vma;
  return walkTables(walk, ops, start, end);
}

/** walk_page_range_novma(): the page tables alone (after the VMAs went: munmap, exit). */
export function walkPageRangeNovma<W extends MmWalk>(walk: W, ops: MmWalkOps<W>, start: number, end: number): number {
  walk.vma = null;
  return walkTables(walk, ops, start, end);
}

/** Where follow_pte() found an address's entry. Caller-owned: a hot caller reuses one. */
export interface EntrySlot {
  /** The arrays the entry lives in: its PTE table's, or its PMD table's for a PMD leaf. */
  table: PteTable | PmdTable;
  /** The entry's index in `table`. */
  i: number;
  /** The PTE table (to set() or wait on the entry); null for a PMD leaf. */
  pte: PteTable | null;
  /** The 4 KiB page addr falls in, as a pfn offset from table.pfn[i] (0 unless a PMD leaf). */
  sub: number;
}

/** A fresh slot (its table a placeholder until followEntry fills it). */
export function entrySlot(): EntrySlot {
  const t = new PteTable();
  return { table: t, i: 0, pte: t, sub: 0 };
}

/**
 * follow_pte() (and follow_huge_pmd): fill `slot` with the entry mapping addr's page and
 * return true, or false when no table reaches it (pmd_none or no PMD table). The entry
 * itself may be none (flags 0) when a PTE table is there.
 */
export function followEntry(mm: MmStruct, addr: number, slot: EntrySlot): boolean {
  const pmd = mm.pgtable.pmd(addr, false);
  if (pmd === null) return false;
  const i = pmdIndex(addr);
  const t = pmd.tables[i];
  if (t !== null) {
    slot.table = t;
    slot.pte = t;
    slot.i = pteIndex(addr);
    slot.sub = 0;
    return true;
  }
  if (pmd.flags[i] === 0) return false;
  slot.table = pmd;
  slot.pte = null;
  slot.i = i;
  slot.sub = pteIndex(addr);
  return true;
}

/** The entry mapping addr's page: the page's pfn (a leaf's head + offset), flags, level. */
export interface MappedEntry {
  pfn: number;
  flags: number;
  huge: boolean;
}

const scratch = entrySlot();

/** addr's non-none entry, or null. Allocates its answer: for checks, not hot loops. */
export function entryAt(mm: MmStruct, addr: number): MappedEntry | null {
  if (!followEntry(mm, addr, scratch)) return null;
  const f = scratch.table.flags[scratch.i];
  if (f === 0) return null;
  return { pfn: scratch.table.pfn[scratch.i] + scratch.sub, flags: f, huge: scratch.pte === null };
}

/**
 * The pfn of the page addr's entry names as a page — a present PTE or PMD leaf, a
 * device-private or device-exclusive entry — or -1 (none, swap, migration).
 */
export function mappedPfn(mm: MmStruct, addr: number): number {
  if (!followEntry(mm, addr, scratch)) return -1;
  const f = scratch.table.flags[scratch.i];
  if (f === 0 || !(isPresent(f) || isDevicePrivate(f) || isDeviceExclusive(f))) return -1;
  return scratch.table.pfn[scratch.i] + scratch.sub;
}

/** Pages in [addr, next): the `n` of a callback's range. */
export function pagesIn(addr: number, next: number): number {
  return (next - addr) / PAGE_SIZE;
}
