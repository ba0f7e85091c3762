/**
 * Device migration of whole THPs (mm/migrate_device.c as the device-private THP series has
 * it: migrate_vma_collect_huge_pmd, the compound hole of migrate_vma_collect_hole,
 * migrate_vma_insert_huge_pmd_page, migrate_vma_split_unmapped_folio, and
 * remove_migration_pmd at finalize). With MIGRATE_VMA_SELECT_COMPOUND, a 2 MiB anonymous
 * folio — a system THP or a device-private THP of the caller's owner — that the range covers
 * whole and that nothing but its one PMD references is collected as one src entry
 * (MIGRATE_PFN_COMPOUND at its first index, 0 at the other 511) behind one migration PMD.
 * The driver answers with a compound destination (one 2 MiB folio) or, when it has none, with
 * 512 order-0 destinations: then the source folio is split under its migration entries
 * first and the pages move one by one.
 */
import { PAGE_SIZE, PMD_PAGES, PMD_SIZE } from './constants.js';
import { anonVmaPrepare, splitHugePmdLocked, thpSuitable } from './huge.js';
import type { MmStruct } from './mm.js';
import {
  isDevicePrivate, isMigration, isPresent, pmdIndex, PTE_ACCESSED, PTE_DIRTY, PTE_PRESENT, PTE_PROTNONE, PTE_WRITE,
  PMD_HUGE, swpKind, swpWritable, SWP_DEVICE_READ, SWP_DEVICE_WRITE, SWP_MIGRATION_READ, SWP_MIGRATION_WRITE, type PmdTable,
} from './page-table.js';
import { PG_ANON, type MemCore } from './pages.js';
import { isPrivateAnon, VM_WRITE, type Vma } from './vma.js';

export const MIGRATE_VMA_SELECT_SYSTEM = 1 << 0;
export const MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 1 << 1;
/** Collect the owner's device-coherent pages (present PTEs of a MEMORY_DEVICE_COHERENT pagemap). */
export const MIGRATE_VMA_SELECT_DEVICE_COHERENT = 1 << 2;
/** Collect 2 MiB folios (and 2 MiB holes) whole. */
export const MIGRATE_VMA_SELECT_COMPOUND = 1 << 3;

export const MIGRATE_PFN_VALID = 1 << 0;
export const MIGRATE_PFN_MIGRATE = 1 << 1;
export const MIGRATE_PFN_WRITE = 1 << 3;
/** The entry stands for a 2 MiB folio (or hole): itself and the next 511 entries. */
export const MIGRATE_PFN_COMPOUND = 1 << 4;
export const MIGRATE_PFN_SHIFT = 6;
const PFN_MUL = 2 ** MIGRATE_PFN_SHIFT;

/** migrate_pfn(): (pfn << MIGRATE_PFN_SHIFT) | MIGRATE_PFN_VALID, without 32-bit ops. */
export function migratePfn(pfn: number): number {
  return pfn * PFN_MUL + MIGRATE_PFN_VALID;
}
/** migrate_pfn_to_page()'s pfn. */
export function migratePfnToPfn(mpfn: number): number {
  return Math.floor(mpfn / PFN_MUL);
}
export function migratePfnFlags(mpfn: number): number {
  return mpfn % PFN_MUL;
}
export function hasMpfn(mpfn: number, flag: number): boolean {
  return (migratePfnFlags(mpfn) & flag) !== 0;
}
export function clearMpfn(mpfn: number, flag: number): number {
  return hasMpfn(mpfn, flag) ? mpfn - flag : mpfn;
}

/** What collection needs of the migration. */
export interface HugeCollector {
  readonly mm: MmStruct;
  readonly vma: Vma;
  readonly start: number;
  readonly end: number;
  readonly flags: number;
  readonly pgmapOwner: unknown;
  readonly src: Float64Array;
  readonly dst: Float64Array;
  cpages: number;
}

/** Whether the range covers the whole 2 MiB block at haddr and asks for compounds. */
function coversBlock(m: HugeCollector, haddr: number): boolean {
  return (m.flags & MIGRATE_VMA_SELECT_COMPOUND) !== 0 && haddr % PMD_SIZE === 0 && haddr >= m.start && haddr + PMD_SIZE <= m.end;
}

/**
 * Whether the PMD leaf in slot pi (at haddr) would be collected whole: a present anonymous
 * THP (SELECT_SYSTEM) or a device-private THP of the owner (SELECT_DEVICE_PRIVATE) that
 * nothing else references (a do_huge_pmd_device_private pin allowed).
 */
export function hugeCollectable(m: HugeCollector, pmd: PmdTable, pi: number, haddr: number): boolean {
  if (!coversBlock(m, haddr)) return false;
  const core = m.mm.core;
  const f = pmd.flags[pi];
  const head = pmd.pfn[pi];
  if (isPresent(f)) {
    // The huge zero page is collected as a compound hole (is_huge_zero_pmd).
    if (core.isHugeZero(head)) return (m.flags & MIGRATE_VMA_SELECT_SYSTEM) !== 0 && isPrivateAnon(m.vma);
    return (m.flags & MIGRATE_VMA_SELECT_SYSTEM) !== 0 && (f & PTE_PROTNONE) === 0 && core.ram.isHead(head)
      && core.isAnonPage(head) && core.refcount(head) === 1;
  }
  if (!isDevicePrivate(f) || (m.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) === 0) return false;
  const pm = core.pagemaps.of(head);
  return pm !== null && pm.owner === m.pgmapOwner && pm.isHead(head) && pm.refcountOf(head) === 1 + (core.faultPins.get(head) ?? 0);
}

/**
 * migrate_vma_collect_huge_pmd(): the folio's PMD becomes a migration PMD; the migration
 * takes over the mapping's reference. Returns whether it collected.
 */
export function collectHugePmd(m: HugeCollector, pmd: PmdTable, pi: number, haddr: number): boolean {
  if (!hugeCollectable(m, pmd, pi, haddr)) return false;
  const f = pmd.flags[pi];
  const head = pmd.pfn[pi];
  const i = (haddr - m.start) / PAGE_SIZE;
  if (m.mm.core.isHugeZero(head)) {
    m.src[i] = MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND;
    m.cpages += PMD_PAGES;
    return true;
  }
  const w = isPresent(f) ? (f & PTE_WRITE) !== 0 : swpWritable(f);
  m.src[i] = migratePfn(head) + MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND + (w ? MIGRATE_PFN_WRITE : 0);
  pmd.setHuge(pi, head, w ? SWP_MIGRATION_WRITE : SWP_MIGRATION_READ);
  m.cpages += PMD_PAGES;
  return true;
}

/**
 * migrate_vma_collect_hole()'s compound case: a pmd_none 2 MiB block of a THP-enabled
 * anonymous VMA becomes one compound hole (the driver may fill it with one 2 MiB folio).
 * Returns whether it did.
 */
export function collectHugeHole(m: HugeCollector, haddr: number): boolean {
  if (!coversBlock(m, haddr) || !thpSuitable(m.vma, haddr)) return false;
  m.src[(haddr - m.start) / PAGE_SIZE] = MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND;
  m.cpages += PMD_PAGES;
  return true;
}

/**
 * migrate_vma_split_unmapped_folio(): the driver had no 2 MiB destination for the compound
 * source at index i. A folio becomes 512 order-0 pages, each behind a migration PTE of its
 * own and held by the migration; a compound hole becomes 512 holes. src[i .. i + 511] are
 * the per-page entries afterwards.
 */
export function splitCompoundSource(m: HugeCollector, i: number): void {
  const s = m.src[i];
  const w = hasMpfn(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0;
  const core = m.mm.core;
  const haddr = m.start + i * PAGE_SIZE;
  const pmd = m.mm.pgtable.pmd(haddr, false);
  const pi = pmdIndex(haddr);
  if (!hasMpfn(s, MIGRATE_PFN_VALID)) {
    // A huge zero page there becomes 512 small zero pages, each a hole to fill.
    if (pmd !== null && pmd.isHuge(pi) && core.isHugeZero(pmd.pfn[pi])) splitHugePmdLocked(m.mm, haddr);
    for (let k = 0; k < PMD_PAGES; k++) m.src[i + k] = MIGRATE_PFN_MIGRATE;
    return;
  }
  const head = migratePfnToPfn(s);
  if (pmd !== null && pmd.isHuge(pi) && isMigration(pmd.flags[pi]) && pmd.pfn[pi] === head) {
    const kind = swpKind(pmd.flags[pi]);
    pmd.setHuge(pi, 0, 0);
    const t = m.mm.pgtable.pteTable(haddr, true)!;
    for (let k = 0; k < PMD_PAGES; k++) t.set(k, head + k, kind);
  }
  if (core.isSystemPfn(head)) {
    core.ram.splitHuge(head, () => 1);
  } else {
    const pm = core.pagemaps.of(head)!;
    const headRefs = pm.refcountOf(head);
    pm.splitHuge(head, (k) => (k === 0 ? headRefs : 1));
  }
  for (let k = 0; k < PMD_PAGES; k++) m.src[i + k] = migratePfn(head + k) + MIGRATE_PFN_MIGRATE + w;
}

/**
 * migrate_vma_insert_huge_pmd_page(): a compound hole gets its 2 MiB destination mapped by
 * one PMD (present for a system THP, device-private for a device folio), if the block is
 * still pmd_none or the huge zero page. Returns whether it inserted.
 */
export function insertHugePmd(m: HugeCollector, i: number, newHead: number): boolean {
  const core = m.mm.core;
  const haddr = m.start + i * PAGE_SIZE;
  if (!isPrivateAnon(m.vma)) return false;
  const pmd = m.mm.pgtable.pmd(haddr, true)!;
  const pi = pmdIndex(haddr);
  const zero = pmd.isHuge(pi) && isPresent(pmd.flags[pi]) && core.isHugeZero(pmd.pfn[pi]) ? pmd.pfn[pi] : -1;
  if ((pmd.flags[pi] !== 0 && zero < 0) || pmd.tables[pi] !== null) return false;
  if (zero >= 0) {
    pmd.setHuge(pi, 0, 0); // the huge zero page goes (the MIGRATE invalidation covers it)
    core.putPage(zero);
  }
  const writable = (m.vma.flags & VM_WRITE) !== 0;
  core.getPage(newHead);
  anonVmaPrepare(m.vma);
  if (core.isSystemPfn(newHead) || core.isDeviceCoherent(newHead)) {
    // A system THP, or a device-coherent folio: a present PMD the CPU accesses directly.
    if (core.isSystemPfn(newHead)) core.pageKind.fill(PG_ANON, newHead, newHead + PMD_PAGES);
    pmd.setHuge(pi, newHead, PTE_PRESENT | PTE_ACCESSED | (writable ? PTE_WRITE | PTE_DIRTY : 0));
  } else {
    pmd.setHuge(pi, newHead, writable ? SWP_DEVICE_WRITE : SWP_DEVICE_READ);
  }
  return true;
}

/**
 * remove_migration_pmd() at finalize: the migration PMD of the folio at `oldHead` (if it is
 * still there: a DONTNEED may have zapped it) maps `newHead` — the destination folio, or the
 * source again — with a reference of its own.
 */
export function removeMigrationPmd(core: MemCore, mm: MmStruct, haddr: number, oldHead: number, newHead: number, moved: boolean): void {
  const pmd = mm.exited ? null : mm.pgtable.pmd(haddr, false);
  const pi = pmdIndex(haddr);
  if (pmd === null || !pmd.isHuge(pi) || !isMigration(pmd.flags[pi]) || pmd.pfn[pi] !== oldHead) return;
  const w = swpKind(pmd.flags[pi] & ~PMD_HUGE) === SWP_MIGRATION_WRITE;
  core.getPage(newHead);
  if (core.isSystemPfn(newHead) || core.isDeviceCoherent(newHead)) {
    // remove_migration_pmd(): a coherent folio gets a present PMD like a system THP.
    if (moved && core.isSystemPfn(newHead)) core.pageKind.fill(PG_ANON, newHead, newHead + PMD_PAGES);
    pmd.setHuge(pi, newHead, PTE_PRESENT | PTE_ACCESSED | (w ? PTE_WRITE | PTE_DIRTY : 0));
  } else {
    pmd.setHuge(pi, newHead, w ? SWP_DEVICE_WRITE : SWP_DEVICE_READ);
  }
}
