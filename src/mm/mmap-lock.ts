/**
 * mm->mmap_lock: an rw_semaphore (kernel/locking/rwsem.c) behind the include/linux/mmap_lock.h
 * API, as an async lock on a Scheduler.
 *
 * Fairness is the rwsem's: one FIFO wait list; a reader may take the lock directly only when no
 * writer holds it and nobody waits (RWSEM_READ_FAILED_MASK includes RWSEM_FLAG_WAITERS), so a
 * queued writer holds back every later reader and writers cannot starve. On release the head of
 * the list decides (rwsem_mark_wake): a writer at the head gets the lock alone; a reader at the
 * head gets it together with the other queued readers — by default every reader in the queue up
 * to MAX_READERS_WAKEUP, skipping queued writers, as the kernel has done since v5.3; or only the
 * consecutive run at the head with { readerWake: 'consecutive' } (the pre-5.3 behaviour).
 *
 * Ownership is handed to the woken waiters by the waker (the kernel grants readers in
 * rwsem_mark_wake and, with RWSEM_FLAG_HANDOFF, the head writer); there is no optimistic
 * spinning or lock stealing, so the order is strictly the queue's. A granted waiter resumes
 * through sched.yield('mmap_lock:<mode>').
 *
 * JS has no task identity, so the asserts check the lock's state, not the caller's ownership.
 */
import type { Scheduler } from '../sched/scheduler.js';

/** rwsem.c's MAX_READERS_WAKEUP: readers woken by one rwsem_mark_wake call. */
const MAX_READERS_WAKEUP = 0x100;

export interface MmapLockStats {
  readAcquisitions: number;
  writeAcquisitions: number;
  /** Acquisitions that had to queue. */
  readContended: number;
  writeContended: number;
  /** Scheduler time spent queued, summed. */
  readWaitMs: number;
  writeWaitMs: number;
  /** Scheduler time the lock was held for write (until writeUnlock or downgrade), summed. */
  writeHoldMs: number;
}

export interface MmapLockOptions {
  /** Which queued readers a wakeup grants: 'all' (rwsem since v5.3, default) or 'consecutive'. */
  readerWake?: 'all' | 'consecutive';
}

type Mode = 'read' | 'write';

interface Waiter {
  mode: Mode;
  since: number;
  grant: () => void;
}

/** rwsem_mark_wake's wake types. */
type WakeType = 'any' | 'readOwned';

export class MmapLock {
  readonly stats: MmapLockStats = {
    readAcquisitions: 0, writeAcquisitions: 0, readContended: 0, writeContended: 0,
    readWaitMs: 0, writeWaitMs: 0, writeHoldMs: 0,
  };
  readonly #sched: Scheduler;
  readonly #wakeAllReaders: boolean;
  #readers = 0;
  #writer = false;
  #writeSince = 0;
  #queue: Waiter[] = [];

  constructor(sched: Scheduler, opts: MmapLockOptions = {}) {
    this.#sched = sched;
    this.#wakeAllReaders = (opts.readerWake ?? 'all') === 'all';
  }

  /** Tasks holding the lock for read. */
  get readers(): number { return this.#readers; }
  /** Whether a task holds the lock for write. */
  get writer(): boolean { return this.#writer; }
  /** Tasks queued on the lock. */
  get waiters(): number { return this.#queue.length; }

  /** mmap_read_lock (down_read). */
  async readLock(): Promise<void> {
    if (this.tryReadLock()) return;
    this.stats.readContended++;
    await this.#wait('read');
  }

  /** mmap_read_trylock (down_read_trylock): fails if write-held or anyone is queued. */
  tryReadLock(): boolean {
    if (this.#writer || this.#queue.length > 0) return false;
    this.#readers++;
    this.stats.readAcquisitions++;
    return true;
  }

  /** mmap_read_unlock (up_read): the last reader out wakes the head (rwsem_wake). */
  readUnlock(): void {
    if (this.#readers === 0) throw new Error('mmap_read_unlock: lock not held for read');
    this.#readers--;
    if (this.#readers === 0) this.#markWake('any');
  }

  /** mmap_write_lock (down_write). */
  async writeLock(): Promise<void> {
    if (this.tryWriteLock()) return;
    this.stats.writeContended++;
    await this.#wait('write');
  }

  /** down_write_trylock: succeeds only on an unlocked rwsem with nobody queued. */
  tryWriteLock(): boolean {
    if (this.#writer || this.#readers > 0 || this.#queue.length > 0) return false;
    this.#takeWrite();
    return true;
  }

  /** mmap_write_unlock (up_write). */
  writeUnlock(): void {
    if (!this.#writer) throw new Error('mmap_write_unlock: lock not held for write');
    this.#dropWrite();
    this.#markWake('any');
  }

  /** mmap_write_downgrade (downgrade_write): write -> read, waking queued readers at the head. */
  downgrade(): void {
    if (!this.#writer) throw new Error('mmap_write_downgrade: lock not held for write');
    this.#dropWrite();
    this.#readers = 1;
    this.#markWake('readOwned');
  }

  /** mmap_assert_locked (rwsem_assert_held): held in either mode. */
  assertHeld(): void {
    if (!this.#writer && this.#readers === 0) throw new Error('mmap_assert_locked: mmap_lock not held');
  }

  /** mmap_assert_write_locked (rwsem_assert_held_write). */
  assertWriteHeld(): void {
    if (!this.#writer) throw new Error('mmap_assert_write_locked: mmap_lock not held for write');
  }

  /** rwsem_down_{read,write}_slowpath: queue at the tail, sleep until granted. */
  async #wait(mode: Mode): Promise<void> {
    await new Promise<void>((grant) => {
      this.#queue.push({ mode, since: this.#sched.now(), grant });
    });
    await this.#sched.yield(`mmap_lock:${mode}`);
  }

  #takeWrite(): void {
    this.#writer = true;
    this.#writeSince = this.#sched.now();
    this.stats.writeAcquisitions++;
  }

  #dropWrite(): void {
    this.#writer = false;
    this.stats.writeHoldMs += this.#sched.now() - this.#writeSince;
  }

  /** rwsem_mark_wake: grant the lock to the head writer, or to a batch of queued readers. */
  #markWake(type: WakeType): void {
    const head = this.#queue[0];
    if (head === undefined) return;
    const now = this.#sched.now();
    if (head.mode === 'write') {
      // Only RWSEM_WAKE_ANY wakes a writer, and only on a free lock.
      if (type !== 'any' || this.#writer || this.#readers > 0) return;
      this.#queue.shift();
      this.stats.writeWaitMs += now - head.since;
      this.#takeWrite();
      head.grant();
      return;
    }
    if (this.#writer) return;
    const granted: Waiter[] = [];
    const rest: Waiter[] = [];
    let stop = false;
    for (const w of this.#queue) {
      if (stop || w.mode === 'write' || granted.length >= MAX_READERS_WAKEUP) {
        rest.push(w);
        if (w.mode === 'write' && !this.#wakeAllReaders) stop = true;
      } else {
        granted.push(w);
      }
    }
    this.#queue = rest;
    for (const w of granted) {
      this.#readers++;
      this.stats.readAcquisitions++;
      this.stats.readWaitMs += now - w.since;
      w.grant();
    }
  }
}
