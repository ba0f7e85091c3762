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
import { PTE_EXCLUSIVE } from '../device/page-table.js';
import { err, HmmError } from '../errors.js';
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE } from '../hmm/pfn.js';
import { HMM_RANGE_DEFAULT_TIMEOUT, hmmRange, hmmRangeFault, type HmmRange } from '../hmm/range-fault.js';
import {
  hmmMirrorRegister, hmmMirrorUnregister, hmmRangeFaultV52, hmmRangeRegister, hmmRangeUnregister, hmmRangeV52,
  hmmRangeWaitUntilValid, type Hmm, type HmmMirrorOps,
} from '../hmm/range-v52.js';
import { PAGE_SIZE } from '../mm/constants.js';
import { makeDeviceExclusive } from '../mm/migrate.js';
import type { MmStruct } from '../mm/mm.js';
import type { MmuIntervalNotifier } from '../mm/notifier.js';
import { isDeviceExclusive, pteIndex } from '../mm/page-table.js';
import type { MirrorPt } from './mirror-pt.js';
import { notePhase } from './phases.js';
import type { Mutex } from './mutex.js';
import type { BatchRecord } from './records.js';

/** HMM_RANGE_DEFAULT_TIMEOUT (include/linux/hmm.h): ms a driver retries a range before EBUSY. */
export { HMM_RANGE_DEFAULT_TIMEOUT };

export type RetryProtocol = 'seq' | 'valid-flag' | 'lock-fallback';
export const RETRY_PROTOCOLS: readonly RetryProtocol[] = ['seq', 'valid-flag', 'lock-fallback'];

/**
 * What fault servicing needs of the mirror it services: the mirror's page table (faults
 * are installed there, under `lock`), its interval notifier and locks — data only flows
 * up into `pt`; invalidations come down through the notifier, never through this.
 */
export interface MirrorTarget {
  readonly mm: MmStruct;
  readonly notifier: MmuIntervalNotifier;
  /** The driver's update lock (dmirror->mutex). */
  readonly lock: Mutex;
  /** The mirror's page table (dmirror->pt): dmirror_do_fault installs there. */
  readonly pt: MirrorPt;
  readonly devPrivateOwner: unknown;
  /**
   * Departure switch (SystemOptions.ownReadOnlyWriteMigrates): a device write to one of its
   * own read-only device-private pages migrates it home and breaks COW. false (Linux,
   * test_hmm): hmm_range_fault reports the page without HMM_PFN_WRITE and the fault is
   * EFAULT (dmirror_do_fault's WARN_ON(range->default_flags & HMM_PFN_WRITE)).
   */
  readonly ownReadOnlyWriteMigrates: boolean;
  /** The mirror's v5.2 hmm_mirror, for the valid-flag protocol. */
  readonly v52: V52Mirror;
}

/**
 * dmirror_do_fault()'s `else if (WARN_ON(range->default_flags & HMM_PFN_WRITE)) return
 * -EFAULT`: a write fault whose range came back with a valid page lacking HMM_PFN_WRITE (an
 * owned read-only device-private page: hmm_range_fault does not fault those) fails.
 */
function checkWriteGranted(range: { defaultFlags: number; hmmPfns: { flags: Uint8Array } }, start: number): void {
  if ((range.defaultFlags & HMM_PFN_REQ_WRITE) === 0) return;
  const fl = range.hmmPfns.flags;
  for (let i = 0; i < fl.length; i++) {
    if ((fl[i] & HMM_PFN_VALID) !== 0 && (fl[i] & HMM_PFN_WRITE) === 0) {
      throw err('EFAULT', `device write to a read-only page of its own at 0x${(start + i * PAGE_SIZE).toString(16)}`);
    }
  }
}

/**
 * A mirror's v5.2 hmm_mirror, registered on first use (only the valid-flag protocol needs
 * one). Its sync callback does nothing: the interval notifier zaps.
 */
export class V52Mirror {
  readonly #mm: MmStruct;
  readonly #ops: HmmMirrorOps = { syncCpuDevicePagetables: () => true };
  #hmm: Hmm | null = null;

  constructor(mm: MmStruct) {
    this.#mm = mm;
  }

  /** hmm_mirror_register (under the mmap write lock), once. */
  async get(): Promise<Hmm> {
    if (this.#hmm === null) {
      await this.#mm.lock.writeLock();
      try {
        this.#hmm ??= hmmMirrorRegister(this.#mm, this.#ops);
      } finally {
        this.#mm.lock.writeUnlock();
      }
    }
    return this.#hmm;
  }

  /** hmm_mirror_unregister, if it was ever registered. */
  async unregister(): Promise<void> {
    if (this.#hmm !== null) await hmmMirrorUnregister(this.#hmm, this.#ops);
    this.#hmm = null;
  }
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

/**
 * Service [start, end) with the access `write`; stats go into `rec`. seq and lock-fallback
 * are the one upstream loop (hmmRangeLoop) inside the batch's mmap read lock, lock-fallback
 * with its write-lock escalation; valid-flag is the v5.2 protocol's own loop.
 */
export async function serviceRange(
  t: MirrorTarget, start: number, end: number, write: boolean, opts: RetryOptions, lock: LockState, rec: BatchRecord,
): Promise<void> {
  rec.rangeFaults++;
  if (opts.protocol === 'valid-flag') return validFlag(t, start, end, write, opts, rec);
  const range = faultRange(t, start, end, write);
  await hmmRangeLoop(t.mm, t.notifier, t.lock, range, {
    timeoutMs: opts.timeoutMs, mmapLock: lock, afterRangeFault: opts.afterRangeFault, rec,
    ...(opts.protocol === 'lock-fallback' ? { fallbackAfter: opts.fallbackAfter } : {}),
  }, () => installRange(t, range, start, rec));
}

/** The hmm_range of a device fault on [start, end): fault every page, for write if `write`. */
function faultRange(t: MirrorTarget, start: number, end: number, write: boolean): HmmRange {
  return hmmRange({
    notifier: t.notifier, start, end, defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
    devPrivateOwner: t.devPrivateOwner, faultOwnReadOnly: t.ownReadOnlyWriteMigrates,
  });
}

/** dmirror_do_fault under the update lock: what hmm_range_fault returned goes into the mirror's page table. */
async function installRange(t: MirrorTarget, range: HmmRange, start: number, rec: BatchRecord): Promise<void> {
  checkWriteGranted(range, start);
  rec.mirrorWrites += await t.pt.doFault(start, range.hmmPfns.pfns, range.hmmPfns.flags);
}

/** How hmmRangeLoop runs one range. */
export interface RangeLoopOptions {
  /** Give up with EBUSY after this long (ms of scheduler time): HMM_RANGE_DEFAULT_TIMEOUT. */
  timeoutMs: number;
  /**
   * 'take': the mmap read lock around each hmm_range_fault (its wait and hold times go to
   * `rec`); 'held': the caller holds it; a LockState: the caller's batch holds it as it says
   * (no timeout while that is the write lock: nothing can invalidate then).
   */
  mmapLock: 'take' | 'held' | LockState;
  /**
   * lock-fallback: after this many failed attempts take the mmap lock for write (the
   * LockState given as mmapLock says so afterwards); the caller downgrades it.
   */
  fallbackAfter?: number;
  /** Test hook: runs between hmm_range_fault and the update-lock check (the race window). */
  afterRangeFault?: (start: number, end: number) => Promise<void>;
  /** Retries, EBUSYs, fallbacks and mmap-lock times go here (a batch record), when given. */
  rec?: BatchRecord;
}

/**
 * The upstream driver loop around hmm_range_fault (Documentation/mm/hmm.rst's example;
 * lib/test_hmm.c's dmirror_range_fault and dmirror_range_snapshot): mmu_interval_read_begin
 * → hmm_range_fault, again on EBUSY; then under the update lock mmu_interval_read_retry,
 * again on a moved sequence, else `commit` — still under the lock, so no invalidation can
 * come between the check and what commit installs. EBUSY once `timeoutMs` has passed.
 * With `fallbackAfter` (the lock-fallback protocol, Jason Gunthorpe's sketch in the 2019
 * thread) the mmap lock is taken for write after that many failed attempts, which shuts out
 * every invalidation that needs it, so the fault cannot be starved.
 * Every path that maps what hmm_range_fault returned goes through here.
 */
export async function hmmRangeLoop<T>(
  mm: MmStruct, notifier: MmuIntervalNotifier, lock: Mutex, range: HmmRange, opts: RangeLoopOptions, commit: () => T | Promise<T>,
): Promise<T> {
  const sched = mm.core.sched;
  const deadline = sched.now() + opts.timeoutMs;
  const rec = opts.rec;
  const take = opts.mmapLock === 'take';
  const held: LockState | null = typeof opts.mmapLock === 'object' ? opts.mmapLock : null;
  for (let attempt = 0; ; attempt++) {
    if (opts.fallbackAfter !== undefined && held !== null && attempt >= opts.fallbackAfter && held.mode !== 'write') {
      // The seed thread's slow path: take mmap_lock for write to break the livelock.
      if (held.mode === 'read') mm.lock.readUnlock();
      await mm.lock.writeLock();
      held.mode = 'write';
      if (rec) rec.fallbacks++;
    } else if (held?.mode !== 'write' && sched.now() > deadline) {
      if (rec) rec.ebusy++;
      throw err('EBUSY', `hmm_range_fault on [0x${range.start.toString(16)}, 0x${range.end.toString(16)}) kept colliding with invalidations`);
    }
    const r0 = sched.now();
    range.notifierSeq = await notifier.readBegin();
    const t0 = sched.now();
    if (take) await mm.lock.readLock();
    const since = sched.now();
    if (rec && take) rec.mmapLockWaitMs += since - t0;
    if (take) notePhase(rec, 'mmap lock wait', t0, since);
    try {
      mm.checkAlive();
      await hmmRangeFault(mm, range);
    } catch (e) {
      if (e instanceof HmmError && e.code === 'EBUSY') {
        if (rec) rec.retries++;
        continue;
      }
      throw e;
    } finally {
      const done = sched.now();
      if (take) {
        mm.lock.readUnlock();
        if (rec) rec.mmapLockHoldMs += done - since;
      }
      // mmu_interval_read_begin and hmm_range_fault (under the caller's lock: from the begin).
      notePhase(rec, 'hmm_range_fault', take ? since : r0, done);
    }
    await opts.afterRangeFault?.(range.start, range.end);
    const u0 = sched.now();
    await lock.lock();
    try {
      if (notifier.readRetry(range.notifierSeq)) {
        if (rec) rec.retries++;
        continue;
      }
      return await commit();
    } finally {
      lock.unlock();
      notePhase(rec, 'mirror update', u0, sched.now());
    }
  }
}

/**
 * lib/test_hmm.c's dmirror_range_fault for one range of dmirror_fault: the upstream loop
 * (hmmRangeLoop) taking the mmap read lock per attempt, then dmirror_do_fault under the
 * update lock. The caller holds no mmap lock.
 */
export async function dmirrorRangeFault(
  t: MirrorTarget, start: number, end: number, write: boolean, opts: RetryOptions, rec: BatchRecord,
): Promise<void> {
  const range = faultRange(t, start, end, write);
  rec.rangeFaults++;
  await hmmRangeLoop(t.mm, t.notifier, t.lock, range, { timeoutMs: opts.timeoutMs, mmapLock: 'take', afterRangeFault: opts.afterRangeFault, rec },
    () => installRange(t, range, start, rec));
}

async function validFlag(
  t: MirrorTarget, start: number, end: number, write: boolean, opts: RetryOptions, rec: BatchRecord,
): Promise<void> {
  const hmm = await t.v52.get();
  const sched = t.mm.core.sched;
  const deadline = sched.now() + opts.timeoutMs;
  const range = hmmRangeV52(start, end, {
    defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0), devPrivateOwner: t.devPrivateOwner,
    faultOwnReadOnly: t.ownReadOnlyWriteMigrates,
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
        const f0 = sched.now();
        try {
          await hmmRangeFaultV52(t.mm, range);
        } catch (e) {
          if (!(e instanceof HmmError && (e.code === 'EAGAIN' || e.code === 'EBUSY'))) throw e;
          if (e.code === 'EAGAIN') held = false; // v5.2 dropped mmap_sem for us
          rec.retries++;
          continue;
        } finally {
          notePhase(rec, 'hmm_range_fault', f0, sched.now());
        }
        await opts.afterRangeFault?.(start, end);
        const u0 = sched.now();
        await t.lock.lock();
        try {
          if (!range.valid) {
            rec.retries++;
            continue;
          }
          checkWriteGranted(range, start);
          rec.mirrorWrites += await t.pt.doFault(start, range.hmmPfns.pfns, range.hmmPfns.flags);
          return;
        } finally {
          t.lock.unlock();
          notePhase(rec, 'mirror update', u0, sched.now());
        }
      } finally {
        if (held) t.mm.lock.readUnlock();
      }
    }
  } finally {
    hmmRangeUnregister(range);
  }
}

/** Does the CPU page table hold a device-exclusive entry for `pfn` at addr? */
function cpuExclusive(mm: MmStruct, addr: number, pfn: number): boolean {
  const t = mm.pgtable.pteTable(addr, false);
  return t !== null && isDeviceExclusive(t.flags[pteIndex(addr)]) && t.pfn[pteIndex(addr)] === pfn;
}

/**
 * dmirror_exclusive's loop body and dmirror_atomic_map: make_device_exclusive each page of
 * [start, start + npages) and map it atomic. Caller holds the mmap read lock. Returns runs
 * written. The entry is atomic only (DPT_XA_TAG_ATOMIC, not the WRITE tag): a device write
 * to it faults, and hmm_range_fault's write fault restores the CPU's PTE
 * (remove_device_exclusive_entry), revoking the exclusive access.
 *
 * dmirror_atomic_map stores with no sequence check (the folio lock keeps a CPU fault out,
 * but not a zap). Here the sequence is sampled after make_device_exclusive (its own
 * EXCLUSIVE invalidation, and the restore of an entry already exclusive, would fail every
 * check sampled before), so under the update lock both must hold: no invalidation reached
 * us since mmu_interval_read_begin (which waits out one that already had), and the CPU
 * entry is still our exclusive entry for that page. Else again, EBUSY after
 * HMM_RANGE_DEFAULT_TIMEOUT.
 */
export async function dmirrorAtomicMap(t: MirrorTarget, start: number, npages: number): Promise<number> {
  t.mm.checkAlive();
  const sched = t.mm.core.sched;
  let runs = 0;
  for (let i = 0; i < npages; i++) {
    const a = start + i * PAGE_SIZE;
    const deadline = sched.now() + HMM_RANGE_DEFAULT_TIMEOUT;
    for (;;) {
      if (sched.now() > deadline) throw err('EBUSY', `exclusive access to 0x${a.toString(16)} kept being revoked`);
      const pfn = await makeDeviceExclusive(t.mm, a, t.devPrivateOwner);
      const seq = await t.notifier.readBegin();
      await t.lock.lock();
      try {
        if (t.notifier.readRetry(seq) || !cpuExclusive(t.mm, a, pfn)) continue;
        runs += await t.pt.doFault(a, Uint32Array.of(pfn), Uint8Array.of(HMM_PFN_VALID), PTE_EXCLUSIVE);
        break;
      } finally {
        t.lock.unlock();
      }
    }
  }
  return runs;
}
