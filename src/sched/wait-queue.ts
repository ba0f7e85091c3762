/**
 * A wait queue head (include/linux/wait.h): tasks sleep until a condition holds, wakers call
 * wakeAll() after changing the state the condition reads. As in the kernel the condition is
 * rechecked after every wakeup, so spurious or stale wakeups are harmless, and a condition that
 * became true without a wakeup is only noticed at the next one (or at the timeout).
 *
 * A woken waiter resumes through sched.yield(label), so under the SeededScheduler the order in
 * which woken tasks run is part of the seeded interleaving. Timeouts are sched.sleep()s, i.e.
 * virtual under the SeededScheduler; a waiter that is woken before its timeout cancels the
 * timer (via the optional AbortSignal a scheduler may honour) so that it does not later drag the
 * virtual clock forward.
 */
import { err } from '../errors.js';
import type { Scheduler } from './scheduler.js';

/** Scheduler.sleep, optionally cancellable (SeededScheduler honours the signal). */
type CancellableSleep = (ms: number, label: string, signal?: AbortSignal) => Promise<void>;

interface Waiter {
  wake: () => void;
}

export class WaitQueue {
  readonly #sched: Scheduler;
  readonly #sleep: CancellableSleep;
  #waiters = new Set<Waiter>();

  constructor(sched: Scheduler) {
    this.#sched = sched;
    this.#sleep = sched.sleep.bind(sched);
  }

  /** Tasks currently sleeping on the queue (waitqueue_active). */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * wait_event(wq, cond) when `timeoutMs` is undefined: resolves true once `cond` holds.
   * wait_event_timeout(wq, cond, timeout) otherwise: true if `cond` held after a wakeup, else,
   * once the timeout has elapsed, `cond` rechecked one last time (false if it still fails).
   */
  async wait(cond: () => boolean, label: string, timeoutMs?: number): Promise<boolean> {
    if (timeoutMs !== undefined && Number.isNaN(timeoutMs)) throw err('EINVAL', `wait(${label}): timeout is NaN`);
    if (cond()) return true;
    if (timeoutMs !== undefined && !(timeoutMs > 0)) return false; // ___wait_cond_timeout with 0 left

    let timedOut = false;
    let current: Waiter | null = null;
    const abort = timeoutMs === undefined ? null : new AbortController();
    if (abort !== null && timeoutMs !== undefined) {
      this.#sleep(timeoutMs, `${label}:timeout`, abort.signal).then(
        () => { timedOut = true; current?.wake(); },
        () => undefined, // cancelled because we were woken first
      );
    }
    try {
      for (;;) {
        // prepare_to_wait + schedule(): enqueue and sleep until wake_up or the timer.
        await new Promise<void>((resolve) => {
          const w: Waiter = {
            wake: () => {
              this.#waiters.delete(w);
              if (current === w) current = null;
              resolve();
            },
          };
          current = w;
          this.#waiters.add(w);
        });
        await this.#sched.yield(label);
        if (cond()) return true;
        if (timedOut) return false; // cond was just rechecked, as wait_event_timeout does
      }
    } finally {
      abort?.abort();
    }
  }

  /** wake_up_all: every sleeping waiter rechecks its condition. */
  wakeAll(): void {
    const ws = [...this.#waiters];
    this.#waiters.clear();
    for (const w of ws) w.wake();
  }
}
