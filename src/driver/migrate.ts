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
import { MIGRATE_PFN_COMPOUND, MIGRATE_PFN_MIGRATE, MIGRATE_VMA_SELECT_COMPOUND, MIGRATE_VMA_SELECT_SYSTEM, migratePfnFlags, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup } from '../mm/migrate.js';
import type { Devmem } from './devmem.js';
import { HMM_RANGE_DEFAULT_TIMEOUT, hmmRangeLoop, type MirrorTarget } from './retry.js';

/**
 * migrate_vma_setup → alloc and copy → migrate_vma_pages → finalize → map, for one VMA
 * piece (dmirror_migrate_to_device's loop body). Caller holds the mmap read lock.
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
  t: MirrorTarget, devmem: Devmem, collecting: Set<{ start: number; end: number }>, start: number, end: number, vmaWrite: boolean,
  failAlloc?: () => boolean,
): Promise<void> {
  // Our own MIGRATE invalidation is not echoed back to us (see Dmirror's #ownMigration).
  const piece = { start, end };
  collecting.add(piece);
  let mig;
  try {
    mig = await migrateVmaSetup(t.mm, { start, end, flags: MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND, pgmapOwner: t.devPrivateOwner });
  } finally {
    collecting.delete(piece);
  }
  const moved = new Uint8Array(mig.npages);
  try {
    const dst = devmem.allocAndCopy(mig.src, vmaWrite, failAlloc);
    await migrateVmaPages(mig, dst);
    // The sources that move are freed by finalize: our entries for them go first (a
    // compound entry stands for its 512 pages).
    for (let i = 0; i < mig.npages; i++) {
      if ((migratePfnFlags(mig.src[i]) & MIGRATE_PFN_MIGRATE) === 0 || dst[i] === 0) continue;
      const n = (migratePfnFlags(dst[i]) & MIGRATE_PFN_COMPOUND) !== 0 ? PMD_PAGES : 1;
      moved.fill(1, i, i + n);
    }
    await t.lock.with(() => t.pt.zapPages(start / PAGE_SIZE, moved));
  } finally {
    await migrateVmaFinalize(mig);
  }
  if (moved.includes(1)) await mapMigrated(t, devmem, start, end, moved);
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
