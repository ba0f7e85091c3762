/**
 * The three retry protocols a driver can service a fault group with, as argued in the
 * 2019 thread ("mm/hmm: Remove duplicate condition test before wait_event_timeout" and
 * Jason Gunthorpe's hmm_range_start_and_lock() sketch):
 *
 *  seq            upstream since v5.5: mmu_interval_read_begin → hmm_range_fault →
 *                 under the update lock mmu_interval_read_retry; again on a moved sequence.
 *                 Gives up with EBUSY after the timeout (HMM_RANGE_DEFAULT_TIMEOUT).
 *  valid-flag     v5.2: hmm_range_register → hmm_range_wait_until_valid (timeout → EBUSY)
 *                 → hmm_range_fault → under the update lock check range->valid. Open to the
 *                 A-B-A window: a whole invalidation between the fault and the check.
 *  lock-fallback  seq, but after `fallbackAfter` failed attempts the mmap lock is taken for
 *                 write, which shuts out every invalidation that needs it, so the fault
 *                 cannot be starved; the lock is then downgraded back to read.
 *
 * seq and lock-fallback run with the mmap read lock already held by the batch; valid-flag
 * takes it per attempt, as the v5.2 documentation's pattern did (it sleeps in
 * wait_until_valid without it, and hmm_range_fault drops it on EAGAIN).
 */
import { err, HmmError } from '../errors.js';
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE } from '../hmm/pfn.js';
import { hmmRange, hmmRangeFault } from '../hmm/range-fault.js';
import {
  hmmRangeFaultV52, hmmRangeRegister, hmmRangeUnregister, hmmRangeV52, hmmRangeWaitUntilValid, type Hmm,
} from '../hmm/range-v52.js';
import type { MmStruct } from '../mm/mm.js';
import type { MmuIntervalNotifier } from '../mm/notifier.js';
import type { Mutex } from './mutex.js';
import type { BatchRecord } from './records.js';

/** HMM_RANGE_DEFAULT_TIMEOUT (include/linux/hmm.h): ms a driver retries a range before EBUSY. */
export const HMM_RANGE_DEFAULT_TIMEOUT = 1000;

export type RetryProtocol = 'seq' | 'valid-flag' | 'lock-fallback';
export const RETRY_PROTOCOLS: readonly RetryProtocol[] = ['seq', 'valid-flag', 'lock-fallback'];

/** What a protocol needs from the mirror it services. */
export interface MirrorTarget {
  readonly mm: MmStruct;
  readonly notifier: MmuIntervalNotifier;
  /** The driver's update lock (dmirror->mutex). */
  readonly lock: Mutex;
  readonly devPrivateOwner: unknown;
  /** Program the mirror from hmm output; caller holds `lock`. Returns contiguous runs written. */
  update(start: number, pfns: Uint32Array, flags: Uint8Array): Promise<number>;
  /** The mirror's v5.2 hmm_mirror (registered on first use). */
  v52(): Promise<Hmm>;
}

export interface RetryOptions {
  protocol: RetryProtocol;
  /** Give up with EBUSY after this long (ms of scheduler time). */
  timeoutMs: number;
  /** lock-fallback: failed attempts before taking the mmap lock for write. */
  fallbackAfter: number;
  /** Test hook: runs between hmm_range_fault and the update-lock check (the race window). */
  afterRangeFault?: (start: number, end: number) => Promise<void>;
}

/** Mmap-lock bookkeeping shared by a batch and its groups. */
export interface LockState {
  /** How the batch holds the mmap lock now. */
  mode: 'none' | 'read' | 'write';
}

/** Service [start, end) with the access `write`; stats go into `rec`. */
export async function serviceRange(
  t: MirrorTarget, start: number, end: number, write: boolean, opts: RetryOptions, lock: LockState, rec: BatchRecord,
): Promise<void> {
  rec.rangeFaults++;
  if (opts.protocol === 'valid-flag') return validFlag(t, start, end, write, opts, rec);
  return seq(t, start, end, write, opts, lock, rec);
}

async function seq(
  t: MirrorTarget, start: number, end: number, write: boolean, opts: RetryOptions, lock: LockState, rec: BatchRecord,
): Promise<void> {
  const sched = t.mm.core.sched;
  const deadline = sched.now() + opts.timeoutMs;
  const range = hmmRange({
    notifier: t.notifier, start, end, defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
    devPrivateOwner: t.devPrivateOwner,
  });
  for (let attempt = 0; ; attempt++) {
    if (opts.protocol === 'lock-fallback' && attempt >= opts.fallbackAfter && lock.mode !== 'write') {
      // The seed thread's slow path: take mmap_lock for write to break the livelock.
      if (lock.mode === 'read') t.mm.lock.readUnlock();
      await t.mm.lock.writeLock();
      lock.mode = 'write';
      rec.fallbacks++;
    } else if (lock.mode !== 'write' && sched.now() > deadline) {
      rec.ebusy++;
      throw err('EBUSY', `fault on [0x${start.toString(16)}, 0x${end.toString(16)}) kept colliding with invalidations`);
    }
    range.notifierSeq = await t.notifier.readBegin();
    try {
      await hmmRangeFault(t.mm, range);
    } catch (e) {
      if (e instanceof HmmError && e.code === 'EBUSY') {
        rec.retries++;
        continue;
      }
      throw e;
    }
    await opts.afterRangeFault?.(start, end);
    await t.lock.lock();
    try {
      if (t.notifier.readRetry(range.notifierSeq)) {
        rec.retries++;
        continue;
      }
      rec.mirrorWrites += await t.update(start, range.hmmPfns.pfns, range.hmmPfns.flags);
      return;
    } finally {
      t.lock.unlock();
    }
  }
}

/**
 * lib/test_hmm.c's dmirror_range_fault for one range of dmirror_fault: its own
 * mmu_interval_read_begin → mmap_read_lock → hmm_range_fault → mmap_read_unlock loop, then
 * under the update lock mmu_interval_read_retry; EBUSY once HMM_RANGE_DEFAULT_TIMEOUT
 * (`opts.timeoutMs` of scheduler time) has passed. The caller holds no mmap lock.
 */
export async function dmirrorRangeFault(
  t: MirrorTarget, start: number, end: number, write: boolean, opts: RetryOptions, rec: BatchRecord,
): Promise<void> {
  const sched = t.mm.core.sched;
  const deadline = sched.now() + opts.timeoutMs;
  const range = hmmRange({
    notifier: t.notifier, start, end, defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
    devPrivateOwner: t.devPrivateOwner,
  });
  rec.rangeFaults++;
  for (;;) {
    if (sched.now() > deadline) {
      rec.ebusy++;
      throw err('EBUSY', `fault on [0x${start.toString(16)}, 0x${end.toString(16)}) kept colliding with invalidations`);
    }
    range.notifierSeq = await t.notifier.readBegin();
    const t0 = sched.now();
    await t.mm.lock.readLock();
    const held = sched.now();
    rec.mmapLockWaitMs += held - t0;
    try {
      t.mm.checkAlive();
      await hmmRangeFault(t.mm, range);
    } catch (e) {
      if (e instanceof HmmError && e.code === 'EBUSY') {
        rec.retries++;
        continue;
      }
      throw e;
    } finally {
      t.mm.lock.readUnlock();
      rec.mmapLockHoldMs += sched.now() - held;
    }
    await opts.afterRangeFault?.(start, end);
    await t.lock.lock();
    try {
      if (t.notifier.readRetry(range.notifierSeq)) {
        rec.retries++;
        continue;
      }
      rec.mirrorWrites += await t.update(start, range.hmmPfns.pfns, range.hmmPfns.flags);
      return;
    } finally {
      t.lock.unlock();
    }
  }
}

async function validFlag(
  t: MirrorTarget, start: number, end: number, write: boolean, opts: RetryOptions, rec: BatchRecord,
): Promise<void> {
  const hmm = await t.v52();
  const sched = t.mm.core.sched;
  const deadline = sched.now() + opts.timeoutMs;
  const range = hmmRangeV52(start, end, {
    defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0), devPrivateOwner: t.devPrivateOwner,
  });
  hmmRangeRegister(range, hmm);
  try {
    for (;;) {
      // The same overall bound as seq: a fault that keeps being invalidated gives up.
      const left = deadline - sched.now();
      if (left <= 0 || !(await hmmRangeWaitUntilValid(range, left))) {
        rec.ebusy++;
        throw err('EBUSY', `range [0x${start.toString(16)}, 0x${end.toString(16)}) never became valid`);
      }
      await t.mm.lock.readLock();
      let held = true;
      try {
        try {
          await hmmRangeFaultV52(t.mm, range);
        } catch (e) {
          if (!(e instanceof HmmError && (e.code === 'EAGAIN' || e.code === 'EBUSY'))) throw e;
          if (e.code === 'EAGAIN') held = false; // v5.2 dropped mmap_sem for us
          rec.retries++;
          continue;
        }
        await opts.afterRangeFault?.(start, end);
        await t.lock.lock();
        try {
          if (!range.valid) {
            rec.retries++;
            continue;
          }
          rec.mirrorWrites += await t.update(start, range.hmmPfns.pfns, range.hmmPfns.flags);
          return;
        } finally {
          t.lock.unlock();
        }
      } finally {
        if (held) t.mm.lock.readUnlock();
      }
    }
  } finally {
    hmmRangeUnregister(range);
  }
}
