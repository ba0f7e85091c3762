/**
 * A sleeping mutex (struct mutex) on the scheduler: the driver's update lock, which the
 * fault path holds while it checks mmu_interval_read_retry and programs the mirror, and the
 * invalidate callback holds while it zaps (lib/test_hmm.c's dmirror->mutex).
 */
import type { Scheduler } from '../sched/scheduler.js';
import { WaitQueue } from '../sched/wait-queue.js';

export class Mutex {
  #locked = false;
  readonly #wq: WaitQueue;
  readonly #label: string;
  /** Acquisitions that had to sleep, for the per-batch records. */
  contended = 0;

  constructor(sched: Scheduler, label: string) {
    this.#wq = new WaitQueue(sched);
    this.#label = label;
  }

  get locked(): boolean {
    return this.#locked;
  }

  /** mutex_lock(). */
  async lock(): Promise<void> {
    if (!this.#locked) {
      this.#locked = true;
      return;
    }
    this.contended++;
    while (this.#locked) await this.#wq.wait(() => !this.#locked, this.#label);
    this.#locked = true;
  }

  /** mutex_trylock(): for invalidations that may not sleep. */
  tryLock(): boolean {
    if (this.#locked) return false;
    this.#locked = true;
    return true;
  }

  unlock(): void {
    if (!this.#locked) throw new Error(`${this.#label}: unlock of an unlocked mutex`);
    this.#locked = false;
    this.#wq.wakeAll();
  }

  async with<T>(fn: () => Promise<T> | T): Promise<T> {
    await this.lock();
    try {
      return await fn();
    } finally {
      this.unlock();
    }
  }
}
