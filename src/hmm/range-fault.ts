/**
 * hmm_range_fault() as upstream has it since v5.5 (mm/hmm.c): the caller samples the
 * interval notifier's sequence (mmu_interval_read_begin) into `notifierSeq`, takes the
 * mmap read lock, and calls this; it walks the range, faulting what the per-page
 * requests (`hmmPfns.flags`, masked by `pfnFlagsMask`, or'd with `defaultFlags`) ask for,
 * and fills in what the CPU maps. It fails with EBUSY as soon as the sequence moved, so
 * the caller goes back to read_begin; the caller's final check is
 * mmu_interval_read_retry under its own update lock.
 */
import { err, HmmError } from '../errors.js';
import { PAGE_SIZE, TASK_SIZE } from '../mm/constants.js';
import type { MmStruct } from '../mm/mm.js';
import type { MmuIntervalNotifier } from '../mm/notifier.js';
import { allocHmmPfns, type HmmPfns } from './pfn.js';
import { walkRange, walkState, WALK_BUSY } from './walk.js';

/** HMM_RANGE_DEFAULT_TIMEOUT (include/linux/hmm.h): ms a driver retries a range before EBUSY. */
export const HMM_RANGE_DEFAULT_TIMEOUT = 1000;

/** struct hmm_range. */
export interface HmmRange {
  readonly notifier: MmuIntervalNotifier;
  /** The value mmu_interval_read_begin returned. */
  notifierSeq: number;
  /** Byte addresses, page aligned, [start, end). */
  readonly start: number;
  readonly end: number;
  /** In: per-page HMM_PFN_REQ_* (under pfnFlagsMask). Out: pfn and HMM_PFN_* flags. */
  readonly hmmPfns: HmmPfns;
  defaultFlags: number;
  pfnFlagsMask: number;
  /** Device-private pages whose pagemap owner is this are reported, not migrated back. */
  devPrivateOwner: unknown;
  /**
   * Departure switch (default false = Linux): a write asked of an owned device-private page
   * that is read-only (after fork) faults it (migrate_to_ram, then COW) instead of being
   * reported valid without HMM_PFN_WRITE, as hmm_vma_handle_pte reports it.
   */
  faultOwnReadOnly: boolean;
}

export interface HmmRangeInit {
  notifier: MmuIntervalNotifier;
  start: number;
  end: number;
  defaultFlags?: number;
  pfnFlagsMask?: number;
  devPrivateOwner?: unknown;
  faultOwnReadOnly?: boolean;
  hmmPfns?: HmmPfns;
}

export function hmmRange(init: HmmRangeInit): HmmRange {
  const { start, end } = init;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start % PAGE_SIZE !== 0 || end % PAGE_SIZE !== 0
    || start < 0 || end > TASK_SIZE || !(start < end)) {
    throw err('EINVAL', `hmm_range [0x${start.toString(16)}, 0x${end.toString(16)}) is not a page-aligned range`);
  }
  const npages = (end - start) / PAGE_SIZE;
  const hmmPfns = init.hmmPfns ?? allocHmmPfns(npages);
  if (hmmPfns.pfns.length !== npages || hmmPfns.flags.length !== npages) {
    throw err('EINVAL', `hmm_pfns holds ${hmmPfns.pfns.length} entries for ${npages} pages`);
  }
  return {
    notifier: init.notifier, notifierSeq: 0, start, end, hmmPfns,
    defaultFlags: init.defaultFlags ?? 0, pfnFlagsMask: init.pfnFlagsMask ?? 0,
    devPrivateOwner: init.devPrivateOwner ?? null, faultOwnReadOnly: init.faultOwnReadOnly === true,
  };
}

/** What one call did, for the drivers' per-batch records. */
export interface RangeFaultStats {
  /** Walks restarted after faulting pages in (the -EBUSY loop inside hmm_range_fault). */
  walks: number;
  /** Pages handed to handle_mm_fault. */
  faulted: number;
}

/**
 * hmm_range_fault(). Needs the mmap lock held (read or write). Throws HmmError:
 * EBUSY (the notifier sequence moved: read_begin again), EFAULT (a hole, a VMA that
 * can't be mirrored, or a fault that failed, where a fault was requested), EPERM (a write
 * fault requested on a read-only VMA).
 */
export async function hmmRangeFault(mm: MmStruct, range: HmmRange, stats?: RangeFaultStats): Promise<void> {
  mm.lock.assertHeld();
  const s = walkState({
    mm, start: range.start, end: range.end, hmmPfns: range.hmmPfns,
    defaultFlags: range.defaultFlags, pfnFlagsMask: range.pfnFlagsMask, devPrivateOwner: range.devPrivateOwner,
    faultOwnReadOnly: range.faultOwnReadOnly,
  });
  try {
    for (;;) {
      // If the range is no longer valid force a retry (mmu_interval_check_retry).
      if (range.notifier.checkRetry(range.notifierSeq)) throw err('EBUSY', 'notifier sequence changed during hmm_range_fault');
      if (stats) stats.walks++;
      if ((await walkRange(s, s.last)) !== WALK_BUSY) return;
    }
  } finally {
    if (stats) stats.faulted += s.faulted;
  }
}

export interface RangeFaultRetryOptions {
  /** Give up with EBUSY once this much scheduler time has passed (HMM_RANGE_DEFAULT_TIMEOUT). */
  timeoutMs?: number;
  /** The mmap lock held around each hmm_range_fault: 'read' as documented, or 'write'. */
  lock?: 'read' | 'write';
  stats?: RangeFaultStats;
}

/**
 * The driver's loop of Documentation/mm/hmm.rst, up to its own update lock:
 *
 *   again: range.notifier_seq = mmu_interval_read_begin(&sub); mmap_read_lock(mm);
 *          ret = hmm_range_fault(&range); mmap_read_unlock(mm);
 *          if (ret == -EBUSY) goto again;
 *
 * bounded as test_hmm's dmirror_range_fault bounds it (EBUSY once the timeout has passed).
 * Returns how many hmm_range_fault calls it took. The caller then takes its update lock and
 * checks mmu_interval_read_retry(range.notifier, range.notifierSeq), going again if it moved.
 */
export async function hmmRangeFaultRetry(mm: MmStruct, range: HmmRange, opts: RangeFaultRetryOptions = {}): Promise<number> {
  const sched = mm.core.sched;
  const deadline = sched.now() + (opts.timeoutMs ?? HMM_RANGE_DEFAULT_TIMEOUT);
  const write = opts.lock === 'write';
  for (let tries = 1; ; tries++) {
    if (sched.now() > deadline) {
      throw err('EBUSY', `hmm_range_fault on [0x${range.start.toString(16)}, 0x${range.end.toString(16)}) kept colliding with invalidations`);
    }
    range.notifierSeq = await range.notifier.readBegin();
    if (write) await mm.lock.writeLock();
    else await mm.lock.readLock();
    try {
      await hmmRangeFault(mm, range, opts.stats);
      return tries;
    } catch (e) {
      if (!(e instanceof HmmError && e.code === 'EBUSY')) throw e;
    } finally {
      if (write) mm.lock.writeUnlock();
      else mm.lock.readUnlock();
    }
  }
}
