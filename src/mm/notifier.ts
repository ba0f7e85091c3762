/**
 * mm/mmu_notifier.c: the per-mm notifier subscriptions (mm->notifier_subscriptions), with
 * interval subscriptions (struct mmu_interval_notifier) and legacy whole-mm subscriptions
 * (struct mmu_notifier on the hlist).
 *
 * invalidate_seq is a collision-retry "lock" that many invalidations may hold at once: it is
 * even when idle and odd while any invalidation overlapping an interval subscription runs (the
 * "fully excluded" state, during which the interval set is frozen and inserts/removes are
 * deferred to the last mn_itree_inv_end). A reader (hmm_range_fault's caller) samples an
 * interval's seq with readBegin() and, under its own lock, rechecks with readRetry(); the
 * interval's invalidate() callback, under that same lock, bumps the interval's seq with
 * setSeq(curSeq). Blockable callbacks may be async (a GPU shootdown) and are awaited.
 *
 * Intervals are kept in an array sorted by start (the kernel uses an interval tree; the
 * iteration order, by start then insertion, is the same). Deferred inserts/removes are applied
 * in the order they were queued; each subscription appears at most once, so the result matches
 * the kernel's head-inserted hlist.
 *
 * Every start/end is counted in active_invalidate_ranges, even before the first interval exists
 * (the kernel skips mn_itree_* until has_itree, relying on __mmu_notifier_register's
 * mm_take_all_locks to exclude in-flight ranges; insert here takes no mm locks, so an interval
 * inserted mid-invalidation must still see it). Ends are paired with starts by range object.
 */
import { err } from '../errors.js';
import type { Scheduler } from '../sched/scheduler.js';
import { WaitQueue } from '../sched/wait-queue.js';

export type MmuNotifyEvent =
  | 'UNMAP' | 'CLEAR' | 'PROTECTION_VMA' | 'PROTECTION_PAGE' | 'SOFT_DIRTY' | 'RELEASE' | 'MIGRATE' | 'EXCLUSIVE';

/** struct mmu_notifier_range: bytes [start, end). */
export interface MmuNotifierRange {
  readonly start: number;
  readonly end: number;
  readonly event: MmuNotifyEvent;
  /** MMU_NOTIFIER_RANGE_BLOCKABLE. */
  readonly blockable: boolean;
  /** pgmap owner for MIGRATE/EXCLUSIVE (mmu_notifier_range_init_owner), else null. */
  readonly owner: unknown;
}

/** The largest address a range may name: our ULONG_MAX. */
const ADDR_MAX = Number.MAX_SAFE_INTEGER;

/** mmu_notifier_range_init / mmu_notifier_range_init_owner. Default: blockable, owner null. */
export function mmuNotifierRange(
  start: number, end: number, event: MmuNotifyEvent, opts: { blockable?: boolean; owner?: unknown } = {},
): MmuNotifierRange {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > ADDR_MAX || !(start < end)) {
    throw err('EINVAL', `mmu_notifier_range [${start}, ${end}) is not a valid non-empty range`);
  }
  return Object.freeze({ start, end, event, blockable: opts.blockable ?? true, owner: opts.owner ?? null });
}

/** struct mmu_interval_notifier_ops. Return false only for a non-blockable range (EAGAIN). */
export interface MmuIntervalNotifierOps {
  invalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange, curSeq: number): boolean | Promise<boolean>;
}

/** struct mmu_notifier_ops (the parts a device mirror uses). */
export interface MmuNotifierOps {
  /** Return false only for a non-blockable range (-EAGAIN); then start must not have an end. */
  invalidateRangeStart?(range: MmuNotifierRange): boolean | Promise<boolean>;
  invalidateRangeEnd?(range: MmuNotifierRange): void | Promise<void>;
  release?(): void | Promise<void>;
}

export interface MmuNotifierStats {
  /** invalidateRangeStart calls. */
  invalidations: number;
  /** ... of which overlapped at least one interval (made the seq odd). */
  itreeInvalidations: number;
  intervalCallbacks: number;
  legacyCallbacks: number;
  /** Non-blockable starts refused with EAGAIN. */
  eagain: number;
  deferredInserts: number;
  deferredRemoves: number;
  /** readBegin calls that had to sleep for an invalidation to end. */
  readBeginWaits: number;
  /** WARNs: a blockable callback returned false, a non-blockable one returned a promise
   *  (slept in non_block context), or an end came without a matching start. */
  warnBlockableFailed: number;
  warnNonBlockSleep: number;
  warnUnpairedEnd: number;
}

interface Legacy {
  ops: MmuNotifierOps;
  hashed: boolean;
  inflight: number;
}

export class MmuNotifierSubscriptions {
  readonly stats: MmuNotifierStats = {
    invalidations: 0, itreeInvalidations: 0, intervalCallbacks: 0, legacyCallbacks: 0, eagain: 0,
    deferredInserts: 0, deferredRemoves: 0, readBeginWaits: 0,
    warnBlockableFailed: 0, warnNonBlockSleep: 0, warnUnpairedEnd: 0,
  };
  /** The interval subscriptions in the tree, sorted by start (then insertion). */
  #itree: MmuIntervalNotifier[] = [];
  #deferred: MmuIntervalNotifier[] = [];
  /** hlist: newest first, as hlist_add_head_rcu leaves it. */
  #list: Legacy[] = [];
  #seq = 2;
  #active = 0;
  /** subscriptions->has_itree. */
  #hasItree = false;
  /** mm->notifier_subscriptions != NULL: set by the first subscription, never cleared. */
  #allocated = false;
  /** Ranges whose start succeeded and whose end is still owed (a range may nest with itself). */
  #started = new WeakMap<MmuNotifierRange, number>();
  /** subscriptions->wq: readBegin/remove sleepers, woken by the last mn_itree_inv_end. */
  readonly #wq: WaitQueue;
  /** Stands in for synchronize_srcu in unregister: woken when a subscriber's callbacks drain. */
  readonly #unregWq: WaitQueue;

  constructor(sched: Scheduler) {
    this.#wq = new WaitQueue(sched);
    this.#unregWq = new WaitQueue(sched);
  }

  /** subscriptions->invalidate_seq: even when idle, odd while an interval is being invalidated. */
  get invalidateSeq(): number { return this.#seq; }
  /** subscriptions->active_invalidate_ranges. */
  get activeInvalidateRanges(): number { return this.#active; }
  /**
   * mm_has_notifiers(): false means nothing has ever subscribed and the mm may skip start/end.
   * Like mm->notifier_subscriptions it stays true once set. An mm that skips a start must skip
   * its end too, and must not skip across the first insert/register (the kernel excludes that
   * with mmap_write_lock + mm_take_all_locks in __mmu_notifier_register).
   */
  get hasSubscriptions(): boolean { return this.#allocated; }
  /** Interval subscriptions currently in the tree. */
  get intervals(): readonly MmuIntervalNotifier[] { return this.#itree; }

  /** mn_itree_is_invalidating. */
  isInvalidating(): boolean { return this.#seq % 2 === 1; }

  /** mmu_interval_notifier_insert (EOVERFLOW on a zero or overflowing length, as the kernel). */
  async insertInterval(start: number, length: number, ops: MmuIntervalNotifierOps): Promise<MmuIntervalNotifier> {
    if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0) {
      throw err('EINVAL', `mmu_interval_notifier_insert: bad range start=${start} length=${length}`);
    }
    if (length === 0 || start + (length - 1) > ADDR_MAX) {
      throw err('EOVERFLOW', `mmu_interval_notifier_insert: start=${start} length=${length} overflows`);
    }
    const sub = new MmuIntervalNotifier(this, start, start + (length - 1), ops);
    this.#allocated = true;
    this.#hasItree = true;
    // __mmu_interval_notifier_insert: a new interval must look invalidated if any range is in
    // flight (we cannot know which VA it covers); while the tree is frozen the add is deferred.
    if (this.#active > 0) {
      if (this.isInvalidating()) {
        this.#deferred.push(sub);
        this.stats.deferredInserts++;
      } else {
        this.#seq += 1; // seq |= 1 on an even seq
        this.#treeInsert(sub);
      }
      sub._seq = this.#seq;
    } else {
      // Odd, different from the current seq, and far from being wrapped to.
      sub._seq = this.#seq - 1;
      this.#treeInsert(sub);
    }
    return sub;
  }

  /** mmu_notifier_register (legacy, whole-mm). unregister() is mmu_notifier_unregister. */
  register(ops: MmuNotifierOps): { unregister(): Promise<void> } {
    const l: Legacy = { ops, hashed: true, inflight: 0 };
    this.#allocated = true;
    this.#list.unshift(l);
    return { unregister: () => this.#unregister(l) };
  }

  /**
   * __mmu_notifier_invalidate_range_start. On EAGAIN (non-blockable range refused) nothing is
   * left started — the interval side is ended (mn_itree_invalidate's out_would_block) and legacy
   * subscribers got their ends — and the caller must not call invalidateRangeEnd.
   */
  async invalidateRangeStart(range: MmuNotifierRange): Promise<void> {
    this.stats.invalidations++;
    await this.#itreeInvalidate(range); // on failure it has ended itself and throws
    if (this.#list.length > 0) {
      let ok: boolean;
      try {
        ok = await this.#hlistInvalidateStart(range);
      } catch (e) {
        this.#itreeInvEnd();
        throw e;
      }
      if (!ok) {
        // The kernel returns here with the interval side still active (only the OOM reaper,
        // whose mm is dying, gets this far); we end it so that EAGAIN always means "not started".
        this.#itreeInvEnd();
        this.stats.eagain++;
        throw err('EAGAIN', `invalidate_range_start [${range.start}, ${range.end}) would block`);
      }
    }
    this.#started.set(range, (this.#started.get(range) ?? 0) + 1);
  }

  /** __mmu_notifier_invalidate_range_end. */
  async invalidateRangeEnd(range: MmuNotifierRange): Promise<void> {
    const n = this.#started.get(range) ?? 0;
    if (n === 0) {
      // No start for this range (or it failed with EAGAIN): the kernel would WARN (or underflow).
      this.stats.warnUnpairedEnd++;
      return;
    }
    if (n === 1) this.#started.delete(range);
    else this.#started.set(range, n - 1);
    this.#itreeInvEnd();
    if (this.#list.length > 0) await this.#hlistInvalidateEnd(range);
  }

  /**
   * __mmu_notifier_release (exit_mmap): mn_itree_release invalidates every interval with a
   * blockable RELEASE range over the whole address space; mn_hlist_release calls each legacy
   * ->release and unhooks them all, so they see no further callbacks.
   */
  async release(): Promise<void> {
    if (this.#hasItree) {
      const range = mmuNotifierRange(0, ADDR_MAX, 'RELEASE');
      await this.#itreeInvalidate(range);
      this.#itreeInvEnd();
    }
    const list = [...this.#list];
    for (const l of list) if (l.ops.release) await this.#call(l, () => l.ops.release?.());
    for (const l of list) l.hashed = false;
    this.#list = this.#list.filter((l) => l.hashed);
  }

  // --- interval tree side -------------------------------------------------------------------

  /** mn_itree_invalidate: start the range, call every overlapping interval with the odd seq. */
  async #itreeInvalidate(range: MmuNotifierRange): Promise<void> {
    const { subs, curSeq } = this.#itreeInvStartRange(range);
    try {
      for (const sub of subs) {
        this.stats.intervalCallbacks++;
        sub._inInvalidate++;
        let ok: boolean;
        try {
          const r = sub.ops.invalidate(sub, range, curSeq);
          if (typeof r !== 'boolean' && !range.blockable) this.stats.warnNonBlockSleep++;
          ok = typeof r === 'boolean' ? r : await r;
        } finally {
          sub._inInvalidate--;
        }
        if (!ok) {
          if (range.blockable) { this.stats.warnBlockableFailed++; continue; } // WARN_ON + continue
          this.stats.eagain++;
          throw err('EAGAIN', `interval [${sub.start}, ${sub.last}] refused non-blockable invalidation`);
        }
      }
    } catch (e) {
      this.#itreeInvEnd(); // out_would_block: the caller may not call invalidate_range_end
      throw e;
    }
  }

  /** mn_itree_inv_start_range: count the range; make seq odd iff some interval overlaps it. */
  #itreeInvStartRange(range: MmuNotifierRange): { subs: MmuIntervalNotifier[]; curSeq: number } {
    this.#active++;
    // The tree cannot change while seq is odd, so a snapshot equals walking it with iter_next.
    const last = range.end - 1;
    const subs = this.#itree.filter((s) => s.start <= last && s.last >= range.start);
    if (subs.length > 0) {
      if (!this.isInvalidating()) this.#seq += 1;
      this.stats.itreeInvalidations++;
    }
    return { subs, curSeq: this.#seq };
  }

  /**
   * mn_itree_inv_end: the last active range out makes an odd seq even, applies the deferred
   * inserts/removes, and wakes readBegin/remove sleepers.
   */
  #itreeInvEnd(): void {
    if (this.#active === 0) throw new Error('mn_itree_inv_end: no active invalidation');
    this.#active--;
    if (this.#active > 0 || !this.isInvalidating()) return;
    this.#seq += 1;
    for (const sub of this.#deferred) {
      if (!sub._inTree) this.#treeInsert(sub);
      else this.#treeRemove(sub);
    }
    this.#deferred = [];
    this.#wq.wakeAll();
  }

  #treeInsert(sub: MmuIntervalNotifier): void {
    let i = this.#itree.length;
    while (i > 0 && this.#itree[i - 1].start > sub.start) i--;
    this.#itree.splice(i, 0, sub);
    sub._inTree = true;
  }

  #treeRemove(sub: MmuIntervalNotifier): void {
    const i = this.#itree.indexOf(sub);
    if (i >= 0) this.#itree.splice(i, 1);
    sub._inTree = false;
  }

  /** mmu_interval_notifier_remove, called through MmuIntervalNotifier.remove(). */
  async _removeInterval(sub: MmuIntervalNotifier): Promise<void> {
    let seq = 0;
    if (this.isInvalidating()) {
      const d = this.#deferred.indexOf(sub);
      if (!sub._inTree) {
        // Removed after a deferred insert, before the deferred list was processed.
        if (d >= 0) this.#deferred.splice(d, 1);
      } else {
        if (d < 0) this.#deferred.push(sub);
        this.stats.deferredRemoves++;
        seq = this.#seq;
      }
    } else {
      this.#treeRemove(sub);
    }
    // Once this returns no callback of `sub` runs or will run.
    if (seq !== 0) await this.#wq.wait(() => this.#seq !== seq, 'mmu_interval_notifier_remove');
  }

  /** mmu_interval_read_begin, called through MmuIntervalNotifier.readBegin(). */
  async _readBegin(sub: MmuIntervalNotifier): Promise<number> {
    const seq = sub._seq;
    // The interval holds the current odd seq: it is between invalidate_start/end (or was
    // inserted during one) and its pages may be changing; sleep until the seq moves on.
    if (seq === this.#seq) {
      this.stats.readBeginWaits++;
      await this.#wq.wait(() => this.#seq !== seq, 'mmu_interval_read_begin');
    }
    return seq;
  }

  // --- legacy hlist side --------------------------------------------------------------------

  /** Call a legacy op, tracking it so that unregister can wait for it (synchronize_srcu). */
  async #call<T>(l: Legacy, fn: () => T | Promise<T>): Promise<T> {
    l.inflight++;
    this.stats.legacyCallbacks++;
    try {
      return await fn();
    } finally {
      l.inflight--;
      if (l.inflight === 0) this.#unregWq.wakeAll();
    }
  }

  /**
   * mn_hlist_invalidate_range_start: every subscriber's start; if a non-blockable one refused,
   * every subscriber's end (they cannot know whose start failed) and report failure.
   */
  async #hlistInvalidateStart(range: MmuNotifierRange): Promise<boolean> {
    let ok = true;
    for (const l of [...this.#list]) {
      const start = l.ops.invalidateRangeStart?.bind(l.ops);
      if (!l.hashed || start === undefined) continue;
      const r = await this.#call(l, () => {
        const v = start(range);
        if (typeof v !== 'boolean' && !range.blockable) this.stats.warnNonBlockSleep++;
        return v;
      });
      if (!r) {
        if (range.blockable) this.stats.warnBlockableFailed++;
        else ok = false;
      }
    }
    if (!ok) await this.#hlistInvalidateEnd(range);
    return ok;
  }

  /** mn_hlist_invalidate_end. */
  async #hlistInvalidateEnd(range: MmuNotifierRange): Promise<void> {
    for (const l of [...this.#list]) {
      const end = l.ops.invalidateRangeEnd?.bind(l.ops);
      if (l.hashed && end !== undefined) await this.#call(l, () => end(range));
    }
  }

  /** mmu_notifier_unregister: ->release if still hashed, unhook, wait for running callbacks. */
  async #unregister(l: Legacy): Promise<void> {
    if (l.hashed) {
      if (l.ops.release) await this.#call(l, () => l.ops.release?.());
      l.hashed = false;
      this.#list = this.#list.filter((x) => x !== l);
    }
    if (l.inflight > 0) await this.#unregWq.wait(() => l.inflight === 0, 'mmu_notifier_unregister');
  }
}

/** struct mmu_interval_notifier. Created by MmuNotifierSubscriptions.insertInterval. */
export class MmuIntervalNotifier {
  readonly start: number;
  /** Inclusive, like the kernel's interval tree node. */
  readonly last: number;
  readonly ops: MmuIntervalNotifierOps;
  readonly #subs: MmuNotifierSubscriptions;
  #removed = false;
  /** @internal interval_sub->invalidate_seq. */
  _seq = 0;
  /** @internal !RB_EMPTY_NODE(&interval_tree.rb). */
  _inTree = false;
  /** @internal Depth of running invalidate() callbacks (for setSeq's assert). */
  _inInvalidate = 0;

  /** @internal */
  constructor(subs: MmuNotifierSubscriptions, start: number, last: number, ops: MmuIntervalNotifierOps) {
    this.#subs = subs;
    this.start = start;
    this.last = last;
    this.ops = ops;
  }

  /** mmu_interval_read_begin: sample the seq; sleep while an invalidation covering us runs. */
  readBegin(): Promise<number> {
    if (this.#removed) return Promise.reject(new Error('mmu_interval_read_begin: notifier removed'));
    return this.#subs._readBegin(this);
  }

  /** mmu_interval_read_retry: call under the driver lock that invalidate() takes for setSeq. */
  readRetry(seq: number): boolean {
    return this._seq !== seq;
  }

  /** mmu_interval_check_retry: the lockless early-out form; only true is meaningful. */
  checkRetry(seq: number): boolean {
    return this._seq !== seq;
  }

  /** mmu_interval_set_seq: from invalidate(), under the driver lock, with its curSeq. */
  setSeq(seq: number): void {
    if (this._inInvalidate === 0) throw new Error('mmu_interval_set_seq: called outside the invalidate callback');
    if (seq % 2 !== 1 || seq !== this.#subs.invalidateSeq) {
      throw new Error(`mmu_interval_set_seq: ${seq} is not the running invalidation's cur_seq`);
    }
    this._seq = seq;
  }

  /** mmu_interval_notifier_remove: deferred while invalidating; waits for the seq to move on. */
  remove(): Promise<void> {
    if (this.#removed) return Promise.reject(new Error('mmu_interval_notifier_remove: already removed'));
    this.#removed = true;
    return this.#subs._removeInterval(this);
  }
}
