/**
 * Every await point that matters (locks, notifier waits, GPU completion, timeouts) goes
 * through one Scheduler, so that interleavings can be seeded and replayed. The real
 * scheduler resumes tasks in FIFO order through the microtask/macrotask queues; the
 * seeded one (see seeded.ts) picks which ready task resumes next from a PRNG and records
 * the labels in order, which is the trace that a replay reproduces.
 */
export interface Scheduler {
  /** A point at which another task may run. `label` names the await point (for traces). */
  yield(label: string): Promise<void>;
  /** Resume after `ms` of scheduler time. */
  sleep(ms: number, label: string): Promise<void>;
  /** Await an outside completion (a GPU fence, mapAsync) as a scheduling point. */
  wait<T>(p: Promise<T>, label: string): Promise<T>;
  /** Scheduler time in milliseconds. */
  now(): number;
}

/** FIFO scheduler on the host event loop: the default. */
export class RealScheduler implements Scheduler {
  yield(_label: string): Promise<void> {
    return new Promise((resolve) => setImmediateish(resolve));
  }
  sleep(ms: number, _label: string): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
  }
  wait<T>(p: Promise<T>, _label: string): Promise<T> {
    return p;
  }
  now(): number {
    return performance.now();
  }
}

/**
 * A macrotask, never a microtask: a yield must let timers, I/O and GPU completions (mapAsync
 * callbacks) run, or a task spinning on yield would starve what it waits for. Node has
 * setImmediate; a browser gets a MessageChannel post (setTimeout(0) is clamped to 4 ms).
 */
const setImmediateish: (cb: () => void) => void = (() => {
  if (typeof globalThis.setImmediate === 'function') return (cb: () => void) => { globalThis.setImmediate(cb); };
  if (typeof MessageChannel === 'function') {
    const ch = new MessageChannel();
    const queue: (() => void)[] = [];
    ch.port1.onmessage = () => { queue.shift()?.(); };
    return (cb: () => void) => { queue.push(cb); ch.port2.postMessage(0); };
  }
  return (cb: () => void) => { setTimeout(cb, 0); };
})();

const current: Scheduler = new RealScheduler();
/** The scheduler in force; machines take one at creation and default to this. */
export function defaultScheduler(): Scheduler {
  return current;
}
