/**
 * The HMM mirror API of Linux v5.2 (mm/hmm.c and include/linux/hmm.h as of June 2019),
 * kept for comparison with the sequence-count scheme that replaced it in v5.5.
 *
 * One `struct hmm` per mm subscribes to every invalidation as a legacy mmu_notifier. A
 * registered range carries a `valid` flag: invalidate_range_start clears it on every
 * overlapping range, and the *last* invalidate_range_end of a burst sets it on all ranges
 * again and wakes hmm_range_wait_until_valid() sleepers. A driver checks `valid` under its
 * update lock before trusting the pfns.
 *
 * The flaw that killed it (Jason Gunthorpe, 2019): between hmm_range_fault() and that
 * check, a complete start/end pair flips valid false and back to true, so the check passes
 * while the pfns are stale — the A-B-A window. Nothing here fixes it: it is reproduced.
 */
import { err } from '../errors.js';
import { PAGE_SHIFT, PAGE_SIZE, TASK_SIZE } from '../mm/constants.js';
import type { MmStruct } from '../mm/mm.js';
import type { MmuNotifierRange } from '../mm/notifier.js';
import { VM_IO, VM_MIXEDMAP, VM_PFNMAP, VM_READ } from '../mm/vma.js';
import { WaitQueue } from '../sched/wait-queue.js';
import { allocHmmPfns, type HmmPfns } from './pfn.js';
import { walkRange, walkState, WALK_BUSY } from './walk.js';

/** HMM_RANGE_DEFAULT_TIMEOUT (ms), as drivers passed to hmm_range_wait_until_valid. */
export { HMM_RANGE_DEFAULT_TIMEOUT } from './range-fault.js';

/** struct hmm_update, what sync_cpu_device_pagetables is told. */
export interface HmmUpdate {
  readonly start: number;
  readonly end: number;
  readonly event: MmuNotifierRange['event'];
  readonly blockable: boolean;
}

/** struct hmm_mirror_ops. */
export interface HmmMirrorOps {
  /** Return false only for a non-blockable update the driver can't take now (-EAGAIN). */
  syncCpuDevicePagetables(update: HmmUpdate): boolean | Promise<boolean>;
  release?(): void | Promise<void>;
}

/** struct hmm_range (v5.2). */
export interface HmmRangeV52 {
  readonly start: number;
  readonly end: number;
  readonly hmmPfns: HmmPfns;
  defaultFlags: number;
  pfnFlagsMask: number;
  devPrivateOwner: unknown;
  /** HmmRange.faultOwnReadOnly: a departure switch, false (Linux) by default. */
  faultOwnReadOnly: boolean;
  /** Read without a lock by drivers (READ_ONCE(range->valid)). */
  valid: boolean;
  hmm: Hmm | null;
}

const hmmOfMm = new WeakMap<MmStruct, Hmm>();

/** struct hmm: per-mm state shared by every mirror of that mm. */
export class Hmm {
  readonly mm: MmStruct;
  readonly ranges = new Set<HmmRangeV52>();
  readonly mirrors = new Set<HmmMirrorOps>();
  /** Invalidations between start and end right now (hmm->notifiers). */
  notifiers = 0;
  dead = false;
  readonly wq: WaitQueue;
  #unsubscribe: (() => Promise<void>) | null;

  private constructor(mm: MmStruct) {
    this.mm = mm;
    this.wq = new WaitQueue(mm.core.sched);
    const sub = mm.notifiers.register({
      invalidateRangeStart: (r) => this.#start(r),
      invalidateRangeEnd: () => this.#end(),
      release: () => this.#release(),
    });
    this.#unsubscribe = () => sub.unregister();
  }

  /** hmm_get_or_create(). */
  static of(mm: MmStruct): Hmm {
    let hmm = hmmOfMm.get(mm);
    if (hmm === undefined) {
      hmm = new Hmm(mm);
      hmmOfMm.set(mm, hmm);
    }
    return hmm;
  }

  /** hmm_invalidate_range_start(). */
  async #start(r: MmuNotifierRange): Promise<boolean> {
    this.notifiers++;
    for (const range of this.ranges) {
      // The v5.2 test, off-by-one and all: an update ending exactly at range->start counts.
      if (r.end < range.start || r.start >= range.end) continue;
      range.valid = false;
    }
    const update: HmmUpdate = { start: r.start, end: r.end, event: r.event, blockable: r.blockable };
    for (const m of this.mirrors) {
      const ok = await m.syncCpuDevicePagetables(update);
      if (!ok && !r.blockable) {
        // -EAGAIN: the notifier core ends nothing for a failed start, so undo our count.
        this.#end();
        return false;
      }
    }
    return true;
  }

  /** hmm_invalidate_range_end(): the last one revalidates every range and wakes waiters. */
  #end(): void {
    this.notifiers--;
    if (this.notifiers === 0) {
      for (const range of this.ranges) range.valid = true;
      this.wq.wakeAll();
    }
  }

  /** hmm_release(): the mm is going away. */
  async #release(): Promise<void> {
    this.dead = true;
    for (const range of this.ranges) range.valid = false;
    this.wq.wakeAll();
    for (const m of [...this.mirrors]) {
      this.mirrors.delete(m);
      await m.release?.();
    }
  }

  /** Drop the subscription once no mirror is left (hmm_put's last reference). */
  async putIfUnused(): Promise<void> {
    if (this.mirrors.size > 0 || this.ranges.size > 0 || this.#unsubscribe === null) return;
    const unsub = this.#unsubscribe;
    this.#unsubscribe = null;
    hmmOfMm.delete(this.mm);
    await unsub();
  }
}

/** hmm_mirror_register(): the caller holds the mmap lock for write, as v5.2 demanded. */
export function hmmMirrorRegister(mm: MmStruct, ops: HmmMirrorOps): Hmm {
  mm.lock.assertWriteHeld();
  const hmm = Hmm.of(mm);
  hmm.mirrors.add(ops);
  return hmm;
}

export async function hmmMirrorUnregister(hmm: Hmm, ops: HmmMirrorOps): Promise<void> {
  hmm.mirrors.delete(ops);
  await hmm.putIfUnused();
}

export function hmmRangeV52(start: number, end: number, opts: { defaultFlags?: number; pfnFlagsMask?: number; devPrivateOwner?: unknown; faultOwnReadOnly?: boolean } = {}): HmmRangeV52 {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start % PAGE_SIZE !== 0 || end % PAGE_SIZE !== 0
    || start < 0 || end > TASK_SIZE || !(start < end)) {
    throw err('EINVAL', `hmm_range [0x${start.toString(16)}, 0x${end.toString(16)}) is not a page-aligned range`);
  }
  return {
    start, end, hmmPfns: allocHmmPfns((end - start) / PAGE_SIZE),
    defaultFlags: opts.defaultFlags ?? 0, pfnFlagsMask: opts.pfnFlagsMask ?? 0,
    devPrivateOwner: opts.devPrivateOwner ?? null, faultOwnReadOnly: opts.faultOwnReadOnly === true, valid: false, hmm: null,
  };
}

/**
 * hmm_range_register(): start tracking CPU page-table changes over the range. Valid at once
 * unless an invalidation is in flight. EFAULT once the mm is dead.
 */
export function hmmRangeRegister(range: HmmRangeV52, hmm: Hmm, pageShift = PAGE_SHIFT): void {
  if (pageShift !== PAGE_SHIFT) throw err('EINVAL', 'only PAGE_SHIFT ranges are supported');
  if (range.hmm !== null) throw err('EINVAL', 'range is already registered');
  if (hmm.dead) throw err('EFAULT', 'mm is dead');
  range.hmm = hmm;
  hmm.ranges.add(range);
  range.valid = hmm.notifiers === 0;
}

/** hmm_range_unregister(). */
export function hmmRangeUnregister(range: HmmRangeV52): void {
  if (range.hmm === null) return;
  range.hmm.ranges.delete(range);
  range.valid = false;
  range.hmm = null;
}

/**
 * hmm_range_wait_until_valid() as v5.2 shipped it (include/linux/hmm.h): false at once for
 * an unregistered range or a dead mm (range->valid cleared), true at once for a valid one,
 * else sleep until the range is valid, the mm dies, or `timeoutMs` passes, and return the
 * flag as it then stands. (The seed thread's cleanup later dropped the dead-mm test; v5.2
 * had it, so a waiter on an exiting mm does not sleep out its timeout.)
 */
export async function hmmRangeWaitUntilValid(range: HmmRangeV52, timeoutMs: number): Promise<boolean> {
  const hmm = range.hmm;
  if (hmm === null || hmm.dead) {
    range.valid = false;
    return false;
  }
  if (range.valid) return true;
  await hmm.wq.wait(() => range.valid || hmm.dead, 'hmm_range_wait_until_valid', timeoutMs);
  return range.valid;
}

/**
 * hmm_range_fault(range, block) of v5.2: returns the number of valid pages from the start.
 * Errors: EAGAIN when the range went invalid — and, as v5.2 did, the mmap read lock has
 * then been DROPPED for the caller; EFAULT (no VMA, a device VMA, dead mm); EPERM (a VMA
 * without read permission); EBUSY (a walk needed a retry and the range went invalid).
 */
export async function hmmRangeFaultV52(mm: MmStruct, range: HmmRangeV52): Promise<number> {
  mm.lock.assertHeld();
  const hmm = range.hmm;
  if (hmm === null || hmm.dead) throw err('EFAULT', 'range not registered or mm dead');
  let start = range.start;
  let last = start;
  do {
    if (!range.valid) {
      mm.lock.readUnlock();
      throw err('EAGAIN', 'range invalidated (mmap lock dropped)');
    }
    const vma = mm.vmas.find(start);
    if (vma === undefined || (vma.flags & (VM_IO | VM_PFNMAP | VM_MIXEDMAP)) !== 0) {
      throw err('EFAULT', `no mirrorable VMA at 0x${start.toString(16)}`);
    }
    if ((vma.flags & VM_READ) === 0) {
      range.hmmPfns.flags.fill(0);
      range.hmmPfns.pfns.fill(0);
      throw err('EPERM', `VMA at 0x${vma.start.toString(16)} has no read permission`);
    }
    const end = Math.min(range.end, vma.end);
    const s = walkState({
      mm, start: range.start, end, hmmPfns: range.hmmPfns, defaultFlags: range.defaultFlags,
      pfnFlagsMask: range.pfnFlagsMask, devPrivateOwner: range.devPrivateOwner, faultOwnReadOnly: range.faultOwnReadOnly,
    });
    s.last = start;
    let busy: boolean;
    try {
      // Keep trying while the range is valid.
      do {
        busy = (await walkRange(s, s.last)) === WALK_BUSY;
      } while (busy && range.valid);
    } catch (e) {
      clearFrom(range, s.last);
      throw e;
    }
    last = s.last;
    if (busy) {
      clearFrom(range, last);
      throw err('EBUSY', 'range invalidated while faulting');
    }
    start = end;
  } while (start < range.end);
  return (last - range.start) / PAGE_SIZE;
}

/** hmm_pfns_clear() from `addr` to the end. */
function clearFrom(range: HmmRangeV52, addr: number): void {
  const i = (addr - range.start) / PAGE_SIZE;
  range.hmmPfns.pfns.fill(0, i);
  range.hmmPfns.flags.fill(0, i);
}
