/**
 * HMM_DMIRROR_MIGRATE_TO_DEV's work for one VMA piece (lib/test_hmm.c's
 * dmirror_migrate_to_device loop body: migrate_vma_setup, dmirror_migrate_alloc_and_copy,
 * migrate_vma_pages, dmirror_migrate_finalize_and_map, migrate_vma_finalize).
 * `collecting` is the migrating mirror's record of the ranges it is collecting: its
 * invalidate callback recognises its own MIGRATE events by it.
 */
import { HMM_PFN_VALID } from '../hmm/pfn.js';
import { hmmRange } from '../hmm/range-fault.js';
import { PAGE_SIZE, PMD_PAGES } from '../mm/constants.js';
import { MIGRATE_PFN_COMPOUND, MIGRATE_PFN_MIGRATE, MIGRATE_VMA_SELECT_COMPOUND, MIGRATE_VMA_SELECT_SYSTEM, migratePfnFlags, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, type MigrateVma } from '../mm/migrate.js';
import type { Devmem } from './devmem.js';
import { HMM_RANGE_DEFAULT_TIMEOUT, hmmRangeLoop, type MirrorTarget } from './retry.js';

/** One VMA piece of a migration to the device: [start, end) inside one VMA, and whether it is writable. */
export interface MigratePiece {
  readonly start: number;
  readonly end: number;
  readonly write: boolean;
}

/**
 * migrate_vma_setup → alloc and copy → migrate_vma_pages → finalize → map, for back-to-back
 * VMA pieces (dmirror_migrate_to_device's loop body, once a piece). Caller holds the mmap read
 * lock.
 *
 * Each piece is its own migrate_vma (its own MIGRATE invalidation, as test_hmm's loop makes
 * one per PTRS_PER_PTE step), but the device side is done once for all of them, as
 * Devmem.evictPieces does the other way: every piece is collected, copied and paged first;
 * then one zap of our entries for the sources that moved (one shootdown, not one a step),
 * every piece finalized, and one map of the new pages. On llvmpipe the per-step shootdowns,
 * range walks and maps were a fifth of a 64 MiB MIGRATE_TO_DEV.
 *
 * dmirror_migrate_alloc_and_copy skips a page it cannot allocate (device memory full) and
 * migrates the rest; so does this.
 *
 * Mapping differs from dmirror_migrate_finalize_and_map, which stores the new pages with no
 * sequence check: an invalidation that passed this mirror before the store (a DONTNEED
 * waiting on another mirror's lock) then zaps the page and frees it while the mirror maps
 * it. Here the mirror first drops its entries for the pages that move (their frames are
 * freed by finalize), then maps what the CPU page table holds after finalize under
 * mmu_interval_read_begin / read_retry (mapMigrated) — after our own MIGRATE
 * invalidations, whose sequence bump would otherwise fail every check.
 */
export async function dmirrorMigrateIn(
  t: MirrorTarget, devmem: Devmem, collecting: Set<{ start: number; end: number }>, pieces: readonly MigratePiece[],
  failAlloc?: () => boolean,
): Promise<void> {
  if (pieces.length === 0) return;
  for (let k = 1; k < pieces.length; k++) {
    if (pieces[k].start !== pieces[k - 1].end) throw new Error('dmirrorMigrateIn: pieces must be back to back');
  }
  const start = pieces[0].start;
  const end = pieces[pieces.length - 1].end;
  // Over all pieces: which pages moved (their sources' entries go, the new pages are mapped).
  const moved = new Uint8Array((end - start) / PAGE_SIZE);
  const migs: MigrateVma[] = [];
  // A step whose migrate_vma_setup fails ends the loop with its error, as in test_hmm, after
  // the steps before it have migrated.
  let setupError: { e: unknown } | null = null;
  try {
    for (const p of pieces) {
      // Our own MIGRATE invalidation is not echoed back to us (see Dmirror's #ownMigration).
      const piece = { start: p.start, end: p.end };
      collecting.add(piece);
      try {
        migs.push(await migrateVmaSetup(t.mm, { start: p.start, end: p.end, flags: MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND, pgmapOwner: t.devPrivateOwner }));
      } catch (e) {
        setupError = { e };
        break;
      } finally {
        collecting.delete(piece);
      }
    }
    for (let k = 0; k < migs.length; k++) {
      const mig = migs[k];
      const dst = devmem.allocAndCopy(mig.src, pieces[k].write, failAlloc);
      await migrateVmaPages(mig, dst);
      // The sources that move are freed by finalize: our entries for them go first (a
      // compound entry stands for its 512 pages).
      const at = (pieces[k].start - start) / PAGE_SIZE;
      for (let i = 0; i < mig.npages; i++) {
        if ((migratePfnFlags(mig.src[i]) & MIGRATE_PFN_MIGRATE) === 0 || dst[i] === 0) continue;
        const n = (migratePfnFlags(dst[i]) & MIGRATE_PFN_COMPOUND) !== 0 ? PMD_PAGES : 1;
        moved.fill(1, at + i, at + i + n);
      }
    }
  } finally {
    // Whatever moved before a failure (an allocation, a lost device) loses its entries all
    // the same, before finalize frees its sources; a piece that never reached
    // migrate_vma_pages is finalized with nothing moved: its pages stay where they were.
    try {
      await t.lock.with(() => t.pt.zapPages(start / PAGE_SIZE, moved));
    } finally {
      for (const mig of migs) await migrateVmaFinalize(mig);
    }
  }
  if (moved.includes(1)) await mapMigrated(t, devmem, start, end, moved);
  if (setupError !== null) throw setupError.e;
}

/**
 * Map the device pages a migration to this device left in [start, end) (`moved[i]` set),
 * the way a driver's fault path maps anything: hmm_range_fault without faulting, then under
 * the update lock mmu_interval_read_retry, again on a moved sequence, EBUSY after
 * HMM_RANGE_DEFAULT_TIMEOUT. A page that is no longer ours (a DONTNEED, a CPU fault that
 * migrated it back) is simply not mapped. Caller holds the mmap read lock.
 */
async function mapMigrated(t: MirrorTarget, devmem: Devmem, start: number, end: number, moved: Uint8Array): Promise<void> {
  const range = hmmRange({ notifier: t.notifier, start, end, devPrivateOwner: t.devPrivateOwner });
  const { pfns, flags } = range.hmmPfns;
  await hmmRangeLoop(t.mm, t.notifier, t.lock, range, { timeoutMs: HMM_RANGE_DEFAULT_TIMEOUT, mmapLock: 'held' }, async () => {
    for (let i = 0; i < moved.length; i++) {
      if (moved[i] === 0 || (flags[i] & HMM_PFN_VALID) === 0 || !devmem.pagemap.contains(pfns[i])) flags[i] = 0;
    }
    await t.pt.doFault(start, pfns, flags);
  });
}
