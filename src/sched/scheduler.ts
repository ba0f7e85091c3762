/**
 * Every await point that matters (locks, notifier waits, GPU completion, timeouts) goes
 * through one Scheduler, so that interleavings can be seeded and replayed. The real
 * scheduler resumes tasks in FIFO order through the microtask/macrotask queues; the
 * seeded one (see seeded.ts) picks which ready task resumes next from a PRNG and records
 * the labels in order, which is the trace that a replay reproduces.
 */
import { macrotask } from './macrotask.js';
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
    return new Promise((resolve) => macrotask(resolve)); // a macrotask: see macrotask.ts
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

const current: Scheduler = new RealScheduler();
/** The scheduler in force; machines take one at creation and default to this. */
export function defaultScheduler(): Scheduler {
  return current;
}
