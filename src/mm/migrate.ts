/**
 * Device migration helpers (mm/migrate_device.c: migrate_vma_setup / migrate_vma_pages /
 * migrate_vma_finalize, and mm/rmap.c make_device_exclusive). The caller holds the mmap
 * lock (read is enough) from setup to finalize.
 *
 * setup collects each page of [start, end) (one VMA) into src[] — migrate_pfn(pfn) with
 * MIGRATE_PFN_VALID|MIGRATE_PFN_MIGRATE (|MIGRATE_PFN_WRITE) for a page that will move, bare
 * MIGRATE_PFN_MIGRATE for a hole or the zero page of an anonymous VMA (the driver allocates
 * a fresh destination), 0 for anything skipped — under one MIGRATE invalidation whose owner
 * is pgmapOwner, and replaces every collected page's entry with a migration entry (the
 * migration now holds the page's reference). The driver copies, fills dst[], calls pages()
 * (which inserts destinations for holes, under a second MIGRATE invalidation) and finalize()
 * (which points the migration entries at the new pages, or back at the old ones).
 *
 * Collected: anonymous pages of any private mapping (a private file mapping's COW copies
 * included), holes and zero pages of anonymous VMAs, device-private pages of the caller's
 * owner. A page other mms map too (fork shares it) is collected all the same: like
 * try_to_migrate, setup then replaces every other mapping of it with a migration entry
 * (under a CLEAR invalidation of that mm; rmap.ts finds them), and finalize points all of
 * them at the new page (remove_migration_ptes), so every process ends up mapping it.
 * A page with references beyond its mappings (migrate_vma_check_page: a pin) is restored.
 *
 * Skipped, so cpages < npages: page-cache pages (shared mappings, the unwritten pages of a
 * private file mapping — the kernel collects and unmaps them and then refuses them in
 * migrate_vma_pages for a device-private destination: the same outcome, without the
 * round trip), THP subpages still shared with another mm, swap entries, device pages of
 * another owner, pages another migration holds.
 */
import { err } from '../errors.js';
import { PAGE_SIZE, PMD_PAGES, PMD_SIZE } from './constants.js';
import { handleMmFault, VM_FAULT_ERROR } from './fault.js';
import { anonVmaPrepare, splitHugePmd } from './huge.js';
import { invalidateEnd, invalidateStart, type MmStruct } from './mm.js';
import {
  isDevicePrivate, isMigration, isPresent, pmdIndex, pteIndex, PTE_ACCESSED, PTE_DIRTY, type PteTable,
  PTE_PRESENT, PTE_PROTNONE, PTE_SPECIAL, PTE_WRITE, swpKind, swpWritable, SWP_DEVICE_READ, SWP_DEVICE_WRITE,
  SWP_EXCLUSIVE_WRITE, SWP_MIGRATION_READ, SWP_MIGRATION_WRITE,
} from './page-table.js';
import {
  clearMpfn, collectHugeHole, collectHugePmd, hasMpfn, hugeCollectable, insertHugePmd, MIGRATE_PFN_COMPOUND,
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnToPfn, removeMigrationPmd, splitCompoundSource,
} from './migrate-huge.js';
import { pagesIn, walkPageRangeVma, type MmWalk, type MmWalkOps } from './pagewalk.js';
import { PG_ANON, type MemCore, type RefHolder } from './pages.js';
import { entryMaps, pteSlot, rmapWalk, underMigration } from './rmap.js';
import { isHugetlb, isPrivateAnon, VM_IO, VM_MIXEDMAP, VM_PFNMAP, VM_WRITE, type Vma } from './vma.js';

export {
  MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_COMPOUND, MIGRATE_PFN_VALID,
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_COMPOUND, MIGRATE_PFN_SHIFT, migratePfn, migratePfnToPfn,
  migratePfnFlags,
} from './migrate-huge.js';
const has = hasMpfn;
const clear = clearMpfn;

export interface MigrateVmaArgs {
  start: number;
  end: number;
  flags: number;
  pgmapOwner: unknown;
  /**
   * args->fault_page: the device page migrate_to_ram was called for. Optional here: the
   * reference do_swap_page holds on it is allowed for either way (MemCore.faultPins).
   */
  faultPage?: number;
}

/** struct migrate_vma. */
export class MigrateVma implements RefHolder {
  readonly mm: MmStruct;
  readonly vma: Vma;
  readonly start: number;
  readonly end: number;
  readonly flags: number;
  readonly pgmapOwner: unknown;
  readonly npages: number;
  readonly src: Float64Array;
  readonly dst: Float64Array;
  /** Pages collected for migration (MIGRATE_PFN_MIGRATE set in src). */
  cpages = 0;
  /**
   * @internal: shared[i] = 1 when page i's source held references beyond the migration's at
   * unmap (another mm mapped it, a pin): finalize then finds its entries by the rmap walk.
   * 0: only this mm maps it, at its address — finalize rewrites that one entry straight
   * off the pfn arrays (no other mm can map it meanwhile: one that did would hold a
   * reference, and this mm cannot fork or mremap while its mmap lock is held).
   */
  readonly shared: Uint8Array;
  #state: 'collected' | 'paged' | 'finalized' = 'collected';

  constructor(mm: MmStruct, vma: Vma, args: MigrateVmaArgs) {
    this.mm = mm;
    this.vma = vma;
    this.start = args.start;
    this.end = args.end;
    this.flags = args.flags;
    this.pgmapOwner = args.pgmapOwner;
    this.npages = (args.end - args.start) / PAGE_SIZE;
    this.src = new Float64Array(this.npages);
    this.dst = new Float64Array(this.npages);
    this.shared = new Uint8Array(this.npages);
  }

  get state(): string {
    return this.#state;
  }

  /** @internal */
  _advance(to: 'paged' | 'finalized'): void {
    this.#state = to;
  }

  /** The references a migration in flight holds: collected sources, the driver's destinations. */
  reportRefs(add: (pfn: number, n: number) => void): void {
    for (let i = 0; i < this.npages; i++) {
      if (has(this.src[i], MIGRATE_PFN_VALID)) add(migratePfnToPfn(this.src[i]), 1);
      if (has(this.dst[i], MIGRATE_PFN_VALID)) add(migratePfnToPfn(this.dst[i]), 1);
    }
  }
}

interface CollectWalk extends MmWalk {
  readonly m: MigrateVma;
  /** vma_is_anonymous(): holes and the zero page can be populated. */
  readonly anon: boolean;
}

/**
 * migrate_vma_collect_pmd's folio_trylock for a page this mm maps at a with an entry that
 * holds a reference (a present PTE, a device-private entry): does another migration hold
 * it? A migration holds a reference for as long as its migration entries exist (finalize
 * and the unmap's restore remove them before the put), and migration entries hold none; so
 * a page whose only reference is this entry's (refcount 1) is under no migration, and the
 * rmap walk (a VMA lookup and a root descent in every mm) is skipped.
 */
function heldByMigration(core: MemCore, mm: MmStruct, a: number, pfn: number): boolean {
  return core.refcount(pfn) !== 1 && underMigration(core, mm, a, pfn);
}

/** migrate_vma_collect_hole() for page i: only anonymous memory can be populated. */
function collectHole(w: CollectWalk, i: number): void {
  if (!w.anon) return;
  w.m.src[i] = MIGRATE_PFN_MIGRATE;
  w.m.cpages++;
}

/**
 * migrate_vma_collect()'s ops (migrate_vma_walk_ops). No pmdEntry: a THP that raced back in
 * since the split is skipped (src 0).
 */
const COLLECT_OPS: MmWalkOps<CollectWalk> = {
  pteHole(w, addr, next) {
    for (let a = addr; a < next;) {
      const blockEnd = Math.min(next, a - (a % PMD_SIZE) + PMD_SIZE);
      if (!(w.anon && blockEnd - a === PMD_SIZE && collectHugeHole(w.m, a))) {
        for (let i = (a - w.m.start) / PAGE_SIZE, to = i + pagesIn(a, blockEnd); i < to; i++) collectHole(w, i);
      }
      a = blockEnd;
    }
    return 0;
  },
  /** migrate_vma_collect_huge_pmd(): a THP collected whole, or skipped (src 0). */
  pmdEntry(w, pmd, pi, addr) {
    collectHugePmd(w.m, pmd, pi, addr);
    return 0;
  },
  /** migrate_vma_collect_pmd()'s PTE loop. */
  pteEntry(w, t, j, addr, next) {
    const m = w.m;
    const core = w.mm.core;
    const sel = m.flags;
    for (let i = (addr - m.start) / PAGE_SIZE, to = i + pagesIn(addr, next); i < to; i++, j++) {
      const a = m.start + i * PAGE_SIZE;
      const f = t.flags[j];
      if (f === 0) {
        collectHole(w, i);
        continue;
      }
      const pfn = t.pfn[j];
      if (isPresent(f) && pfn >= core.ram.npages) {
        // A device page the CPU maps (is_device_coherent_page): only SELECT_DEVICE_COHERENT of
        // its owner collects it; SELECT_SYSTEM never does (vm_normal_page is not system memory).
        const pm = core.pagemaps.of(pfn);
        if ((sel & MIGRATE_VMA_SELECT_DEVICE_COHERENT) === 0 || (f & PTE_PROTNONE) !== 0) continue;
        if (pm === null || !pm.coherent || pm.owner !== m.pgmapOwner || heldByMigration(core, w.mm, a, pfn)) continue;
        const wr = (f & PTE_WRITE) !== 0;
        m.src[i] = migratePfn(pfn) + MIGRATE_PFN_MIGRATE + (wr ? MIGRATE_PFN_WRITE : 0);
        t.set(j, pfn, wr ? SWP_MIGRATION_WRITE : SWP_MIGRATION_READ);
        m.cpages++;
        continue;
      }
      if (isPresent(f)) {
        if ((sel & MIGRATE_VMA_SELECT_SYSTEM) === 0 || (f & PTE_PROTNONE) !== 0) continue;
        if ((f & PTE_SPECIAL) !== 0) {
          if (pfn === core.ram.zeroPfn) collectHole(w, i); // the zero page: populated like a hole
          continue;
        }
        // Any anonymous page of a private mapping (PageAnon; in a private file mapping, the
        // COW copies). Not page-cache pages (see the header), not THP pieces, not a page
        // another migration has locked (folio_trylock fails).
        if (!core.isAnonPage(pfn) || core.ram.isHead(pfn) || core.ram.isTail(pfn) || heldByMigration(core, w.mm, a, pfn)) continue;
        const wr = (f & PTE_WRITE) !== 0;
        m.src[i] = migratePfn(pfn) + MIGRATE_PFN_MIGRATE + (wr ? MIGRATE_PFN_WRITE : 0);
        // get_page for the migration; the mapping's reference goes with the PTE.
        t.set(j, pfn, wr ? SWP_MIGRATION_WRITE : SWP_MIGRATION_READ);
        m.cpages++;
        continue;
      }
      if (isDevicePrivate(f)) {
        const pm = core.pagemaps.of(pfn);
        if ((sel & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) === 0 || pm === null || pm.owner !== m.pgmapOwner) continue;
        if (pm.isHead(pfn) || pm.isTail(pfn)) continue; // a piece of a device THP others still share
        if (heldByMigration(core, w.mm, a, pfn)) continue;
        const wr = swpKind(f) === SWP_DEVICE_WRITE;
        m.src[i] = migratePfn(pfn) + MIGRATE_PFN_MIGRATE + (wr ? MIGRATE_PFN_WRITE : 0);
        t.set(j, pfn, wr ? SWP_MIGRATION_WRITE : SWP_MIGRATION_READ);
        m.cpages++;
      }
      // Swap, device-exclusive and migration entries are skipped (src 0).
    }
    return 0;
  },
};

/** migrate_vma_setup(): validate, collect and unmap. EINVAL for bad ranges or hugetlb VMAs. */
export async function migrateVmaSetup(mm: MmStruct, args: MigrateVmaArgs): Promise<MigrateVma> {
  mm.lock.assertHeld();
  mm.checkAlive();
  const { start, end } = args;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start % PAGE_SIZE !== 0 || end % PAGE_SIZE !== 0 || !(start < end)) {
    throw err('EINVAL', `migrate_vma_setup: bad range [${start}, ${end})`);
  }
  const vma = mm.vmas.lookup(start);
  if (vma === undefined || end > vma.end) throw err('EINVAL', 'migrate_vma_setup: range not inside one VMA');
  if (isHugetlb(vma)) throw err('EINVAL', 'migrate_vma_setup: hugetlb VMA');
  // VM_SPECIAL (VM_IO | VM_PFNMAP | VM_MIXEDMAP ...): a driver's own mapping.
  if ((vma.flags & (VM_IO | VM_PFNMAP | VM_MIXEDMAP)) !== 0) throw err('EINVAL', 'migrate_vma_setup: special (VM_IO/PFNMAP/MIXEDMAP) VMA');
  const core = mm.core;
  if (args.faultPage !== undefined && (core.pagemaps.of(args.faultPage) === null || core.isDeviceCoherent(args.faultPage))) {
    throw err('EINVAL', `migrate_vma_setup: fault_page ${args.faultPage} is not a device-private page`);
  }
  const sel = args.flags;

  const m = new MigrateVma(mm, vma, args);
  // migrate_vma_collect_pmd splits the THPs it will not collect whole (split_huge_pmd):
  // system THPs (SELECT_SYSTEM) and our device-private THPs (SELECT_DEVICE_PRIVATE). A THP
  // migrating whole (migration PMD) is left to its migration and skipped.
  for (let h = start - (start % PMD_SIZE); h < end; h += PMD_SIZE) {
    const pmd = mm.pgtable.pmd(h, false);
    const pi = pmdIndex(h);
    if (pmd === null || !pmd.isHuge(pi) || hugeCollectable(m, pmd, pi, h)) continue;
    const f = pmd.flags[pi];
    // A present PMD of our coherent folio is never collected whole without SELECT_SYSTEM
    // (migrate_vma_collect_huge_pmd): SELECT_DEVICE_COHERENT splits it and takes the pages.
    const coh = isPresent(f) && core.isDeviceCoherent(pmd.pfn[pi]);
    const mine = coh ? (sel & (MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_DEVICE_COHERENT)) !== 0 && core.pagemaps.of(pmd.pfn[pi])?.owner === args.pgmapOwner
      : isPresent(f) ? (sel & MIGRATE_VMA_SELECT_SYSTEM) !== 0
      : isDevicePrivate(f) && (sel & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) !== 0 && core.pagemaps.of(pmd.pfn[pi])?.owner === args.pgmapOwner;
    if (mine) await splitHugePmd(mm, h);
  }

  const range = await invalidateStart(mm, start, end, 'MIGRATE', args.pgmapOwner);
  try {
    walkPageRangeVma<CollectWalk>({ mm, vma, m, anon: isPrivateAnon(vma) }, COLLECT_OPS, vma, start, end);
    core.refHolders.add(m);
  } finally {
    await invalidateEnd(mm, range);
  }
  await migrateVmaUnmap(m);
  return m;
}

/**
 * migrate_vma_unmap() / migrate_device_unmap(): try_to_migrate each collected page (replace
 * the mappings other mms have of it with migration entries, each under a CLEAR invalidation
 * of that mm, dropping the mapping's reference), then migrate_vma_check_page: a page holding
 * any reference besides the migration's own (and do_swap_page's pins) is restored.
 */
async function migrateVmaUnmap(m: MigrateVma): Promise<void> {
  const core = m.mm.core;
  for (let i = 0; i < m.npages; i++) {
    // A compound source was only referenced by its PMD (hugeCollectable): nothing to unmap.
    if (!has(m.src[i], MIGRATE_PFN_VALID) || has(m.src[i], MIGRATE_PFN_COMPOUND)) continue;
    const pfn = migratePfnToPfn(m.src[i]);
    const a = m.start + i * PAGE_SIZE;
    // Every mapping holds a reference: with only the migration's (and do_swap_page's pins),
    // no other mm maps the page and there is nothing to walk for (folio_mapcount() == 1).
    if (core.refcount(pfn) === 1 + (core.faultPins.get(pfn) ?? 0)) continue;
    m.shared[i] = 1;
    for (const o of rmapWalk(core, m.mm, a, m.mm, (f, p) => entryMaps(f, p, pfn))) {
      const range = await invalidateStart(o.mm, o.addr, o.addr + PAGE_SIZE, 'CLEAR');
      try {
        const slot = o.mm.exited ? null : pteSlot(o.mm, o.addr);
        if (slot === null) continue;
        const f = slot.t.flags[slot.j];
        if (!entryMaps(f, slot.t.pfn[slot.j], pfn)) continue; // changed meanwhile (COW, zap)
        const w = isPresent(f) ? (f & PTE_WRITE) !== 0 : swpWritable(f);
        slot.t.set(slot.j, pfn, w ? SWP_MIGRATION_WRITE : SWP_MIGRATION_READ);
        core.putPage(pfn); // try_to_migrate_one: the mapping's reference goes
      } finally {
        await invalidateEnd(o.mm, range);
      }
    }
    if (core.refcount(pfn) !== 1 + (core.faultPins.get(pfn) ?? 0)) {
      // Pinned (or mapped again meanwhile): remove_migration_ptes(folio, folio), folio_put.
      removeMigrationPtes(core, m.mm, a, pfn, pfn, false);
      core.putPage(pfn);
      m.src[i] = 0;
      m.cpages--;
      core.migrationWq.wakeAll();
    }
  }
}

/**
 * remove_migration_ptes(): every live mm's migration entry for `oldPfn` (the one origin
 * has at `a`, those try_to_migrate or a later fork made, wherever mremap moved them: the
 * rmap walk) becomes an entry for
 * `newPfn` — a present PTE for a system frame, a device-private entry for a device page —
 * writable as the migration entry was, with a reference of its own.
 */
function removeMigrationPtes(core: MemCore, origin: MmStruct, a: number, oldPfn: number, newPfn: number, moved: boolean): void {
  const system = core.isCpuAddressable(newPfn);
  if (moved && core.isSystemPfn(newPfn)) core.pageKind[newPfn] = PG_ANON;
  for (const { t, j } of rmapWalk(core, origin, a, null, (f, p) => p === oldPfn && isMigration(f))) restoreEntry(core, t, j, newPfn, system);
}

/**
 * remove_migration_pte() for one entry: the migration entry at t[j] becomes one for newPfn,
 * with a reference. `system`: newPfn is CPU-addressable (system RAM or a device-coherent
 * page: a present PTE); otherwise a device-private entry.
 */
function restoreEntry(core: MemCore, t: PteTable, j: number, newPfn: number, system: boolean): void {
  const w = swpKind(t.flags[j]) === SWP_MIGRATION_WRITE;
  core.getPage(newPfn);
  if (system) t.set(j, newPfn, PTE_PRESENT | PTE_ACCESSED | (w ? PTE_WRITE | PTE_DIRTY : 0));
  else t.set(j, newPfn, w ? SWP_DEVICE_WRITE : SWP_DEVICE_READ);
}

/**
 * migrate_vma_pages(): take the driver's destinations (dst[i] = migrate_pfn(new pfn), a
 * system frame or a device page with one reference). Holes and zero-page entries get their
 * destination inserted now (migrate_vma_insert_page); a missing destination un-selects the
 * page. Pages with a source stay behind migration entries until finalize.
 */
export async function migrateVmaPages(m: MigrateVma, dst?: ArrayLike<number>): Promise<void> {
  if (m.state !== 'collected') throw new Error(`migrate_vma_pages in state ${m.state}`);
  m.mm.lock.assertHeld();
  if (dst !== undefined) {
    if (dst.length !== m.npages) throw err('EINVAL', `migrate_vma_pages: dst has ${dst.length} entries, not ${m.npages}`);
    for (let i = 0; i < m.npages; i++) m.dst[i] = dst[i];
  }
  m._advance('paged');
  const core = m.mm.core;
  const vma = m.vma;
  let range = null;
  try {
    for (let i = 0; i < m.npages; i++) {
      const s = m.src[i];
      const d = m.dst[i];
      if (!has(s, MIGRATE_PFN_MIGRATE)) continue;
      if (has(s, MIGRATE_PFN_COMPOUND)) {
        if (has(d, MIGRATE_PFN_VALID) && has(d, MIGRATE_PFN_COMPOUND)) {
          if (!has(s, MIGRATE_PFN_VALID)) {
            if (range === null && m.mm.notifiers.hasSubscriptions) {
              range = await invalidateStart(m.mm, m.start + i * PAGE_SIZE, m.end, 'MIGRATE', m.pgmapOwner);
            }
            if (!insertHugePmd(m, i, migratePfnToPfn(d))) m.src[i] = clear(s, MIGRATE_PFN_COMPOUND + MIGRATE_PFN_MIGRATE);
          }
          i += PMD_PAGES - 1;
          continue;
        }
        let any = false;
        for (let k = 0; k < PMD_PAGES && !any; k++) any = has(m.dst[i + k], MIGRATE_PFN_VALID);
        if (!any) {
          m.src[i] = clear(s, MIGRATE_PFN_MIGRATE);
          i += PMD_PAGES - 1;
          continue;
        }
        // Order-0 destinations: split the source, then move page by page (from i again).
        splitCompoundSource(m, i);
        i--;
        continue;
      }
      if (!has(d, MIGRATE_PFN_VALID)) {
        m.src[i] = clear(s, MIGRATE_PFN_MIGRATE);
        continue;
      }
      if (has(s, MIGRATE_PFN_VALID)) continue;
      const a = m.start + i * PAGE_SIZE;
      if (range === null && m.mm.notifiers.hasSubscriptions) {
        range = await invalidateStart(m.mm, a, m.end, 'MIGRATE', m.pgmapOwner);
      }
      // migrate_vma_insert_page: only anonymous VMAs, only into a none entry or over the zero page.
      const t = isPrivateAnon(vma) ? m.mm.pgtable.pteTable(a, true) : null;
      const j = pteIndex(a);
      const newPfn = migratePfnToPfn(d);
      if (t === null || (t.flags[j] !== 0 && !(isPresent(t.flags[j]) && t.pfn[j] === core.ram.zeroPfn))) {
        m.src[i] = clear(s, MIGRATE_PFN_MIGRATE);
        continue;
      }
      const writable = (vma.flags & VM_WRITE) !== 0;
      core.getPage(newPfn);
      anonVmaPrepare(vma);
      if (core.isCpuAddressable(newPfn)) {
        if (core.isSystemPfn(newPfn)) core.pageKind[newPfn] = PG_ANON;
        t.set(j, newPfn, PTE_PRESENT | PTE_ACCESSED | (writable ? PTE_WRITE | PTE_DIRTY : 0));
      } else {
        t.set(j, newPfn, writable ? SWP_DEVICE_WRITE : SWP_DEVICE_READ);
      }
    }
  } finally {
    if (range !== null) await invalidateEnd(m.mm, range);
  }
}

/**
 * migrate_vma_finalize() (remove_migration_ptes + the final puts): each migration entry of
 * a collected page, in every mm that maps it, becomes an entry for the new page
 * (device-private for device pfns, a present PTE for system frames, writable as the
 * migration entry was) or, if the page did not migrate, for the old one. Then the sources' and the destinations' extra references are dropped.
 */
export async function migrateVmaFinalize(m: MigrateVma): Promise<void> {
  if (m.state === 'finalized') throw new Error('migrate_vma_finalize twice');
  m.mm.lock.assertHeld();
  const core = m.mm.core;
  const mm = m.mm;
  // This mm's PTE table of the 2 MiB region finalize is in: one descent per table, not per page.
  let table: PteTable | null = null;
  let tableBase = -1;
  try {
    // Last page first: the sources' frames reach the LIFO free list in reverse, so the next
    // allocations get them back in ascending order (back-to-back frames: the next migration
    // copies them in runs). Each page's work is its own; the order is not observable otherwise.
    for (let i = m.npages - 1; i >= 0; i--) {
      const s = m.src[i];
      const d = m.dst[i];
      const dValid = has(d, MIGRATE_PFN_VALID);
      if (has(s, MIGRATE_PFN_VALID) && has(s, MIGRATE_PFN_COMPOUND)) {
        const oldHead = migratePfnToPfn(s);
        const moved = has(s, MIGRATE_PFN_MIGRATE) && dValid && has(d, MIGRATE_PFN_COMPOUND);
        removeMigrationPmd(core, m.mm, m.start + i * PAGE_SIZE, oldHead, moved ? migratePfnToPfn(d) : oldHead, moved);
        m.src[i] = 0;
        core.putPage(oldHead);
      } else if (has(s, MIGRATE_PFN_VALID)) {
        const oldPfn = migratePfnToPfn(s);
        const moved = has(s, MIGRATE_PFN_MIGRATE) && dValid;
        const newPfn = moved ? migratePfnToPfn(d) : oldPfn;
        const a = m.start + i * PAGE_SIZE;
        if (m.shared[i] === 0 && !mm.exited) {
          // Only this mm maps it (see MigrateVma.shared): its entry at a, off the pfn arrays.
          const system = core.isCpuAddressable(newPfn);
          if (moved && core.isSystemPfn(newPfn)) core.pageKind[newPfn] = PG_ANON;
          const base = a - (a % PMD_SIZE);
          if (base !== tableBase) {
            table = mm.pgtable.pteTable(a, false);
            tableBase = base;
          }
          const j = pteIndex(a);
          if (table !== null && table.pfn[j] === oldPfn && isMigration(table.flags[j])) restoreEntry(core, table, j, newPfn, system);
        } else {
          removeMigrationPtes(core, mm, a, oldPfn, newPfn, moved);
        }
        m.src[i] = 0;
        core.putPage(oldPfn);
      }
      if (dValid) {
        m.dst[i] = 0;
        core.putPage(migratePfnToPfn(d));
      }
    }
  } finally {
    m._advance('finalized');
    core.refHolders.delete(m);
    core.migrationWq.wakeAll();
  }
}

/**
 * make_device_exclusive(): fault the page in for write (GUP FOLL_WRITE, splitting a THP),
 * then, under an EXCLUSIVE invalidation carrying `owner`, replace its PTE with a
 * device-exclusive entry. The CPU's next touch restores it (remove_device_exclusive_entry).
 * Returns the page's pfn (no extra reference: the entry keeps the mapping's). Only
 * anonymous, order-0 pages qualify (EBUSY otherwise, as nouveau reports a NULL page).
 */
export async function makeDeviceExclusive(mm: MmStruct, addr: number, owner: unknown): Promise<number> {
  mm.lock.assertHeld();
  mm.checkAlive();
  if (!Number.isSafeInteger(addr) || addr < 0) throw err('EINVAL', `make_device_exclusive: bad address ${addr}`);
  const a = addr - (addr % PAGE_SIZE);
  const core = mm.core;
  for (let tries = 0; tries < 16; tries++) {
    const vma = mm.vmas.lookup(a);
    if (vma === undefined || (vma.flags & VM_WRITE) === 0) throw err('EFAULT', `make_device_exclusive: no writable VMA at 0x${a.toString(16)}`);
    const pmd = mm.pgtable.pmd(a, false);
    if (pmd !== null && pmd.isHuge(pmdIndex(a))) {
      if (isHugetlb(vma)) throw err('EBUSY', 'make_device_exclusive: hugetlb page');
      await splitHugePmd(mm, a - (a % PMD_SIZE));
      continue;
    }
    const t = mm.pgtable.pteTable(a, false);
    const j = pteIndex(a);
    const f = t === null ? 0 : t.flags[j];
    if (t === null || !isPresent(f) || (f & PTE_WRITE) === 0) {
      // Not present (an exclusive entry of another owner included: GUP's fault restores it).
      const r = await handleMmFault(mm, vma, a, { write: true });
      if ((r & VM_FAULT_ERROR) !== 0) throw err('EFAULT', `make_device_exclusive: fault failed at 0x${a.toString(16)}`);
      continue;
    }
    const pfn = t.pfn[j];
    if (!core.isAnonPage(pfn) || core.ram.isTail(pfn) || core.ram.isHead(pfn)) throw err('EBUSY', 'make_device_exclusive: not an order-0 anonymous page');
    const range = await invalidateStart(mm, a, a + PAGE_SIZE, 'EXCLUSIVE', owner);
    try {
      if (t.flags[j] !== f || t.pfn[j] !== pfn) continue;
      t.set(j, pfn, SWP_EXCLUSIVE_WRITE);
      return pfn;
    } finally {
      await invalidateEnd(mm, range);
    }
  }
  throw err('EBUSY', `make_device_exclusive: page at 0x${a.toString(16)} keeps changing`);
}

