/**
 * Commands down: Pause, Step, Resume and Stop act at the runner's replay boundary
 * (RunObserver.beforeRound), the point between batches where the servicer holds no lock
 * and no GPU work of the run is in flight. While held, the machine's clock stops too
 * (PausableScheduler): the invalidation storm sleeps on it, so a pause adds no storm
 * operations and no scheduler time, and the run resumes as if it had never stopped.
 */
import { err } from '../errors.js';
import { RealScheduler, type Scheduler } from '../sched/scheduler.js';

/**
 * The real scheduler, with a clock that stops while paused: now() leaves paused time out and
 * sleep() does not end while paused. yield() and wait() pass straight through (GPU
 * completions of work already submitted still land).
 */
export class PausableScheduler implements Scheduler {
  readonly #inner = new RealScheduler();
  #pausedAt: number | null = null;
  #pausedTotal = 0;
  #resumed: Promise<void> = Promise.resolve();
  #wake: () => void = () => {};

  get paused(): boolean {
    return this.#pausedAt !== null;
  }

  pause(): void {
    if (this.#pausedAt !== null) return;
    this.#pausedAt = performance.now();
    this.#resumed = new Promise((resolve) => { this.#wake = resolve; });
  }

  resume(): void {
    if (this.#pausedAt === null) return;
    this.#pausedTotal += performance.now() - this.#pausedAt;
    this.#pausedAt = null;
    this.#wake();
  }

  now(): number {
    const t = performance.now();
    return t - this.#pausedTotal - (this.#pausedAt === null ? 0 : t - this.#pausedAt);
  }

  yield(label: string): Promise<void> {
    return this.#inner.yield(label);
  }

  async sleep(ms: number, label: string): Promise<void> {
    const until = this.now() + ms;
    for (;;) {
      while (this.#pausedAt !== null) await this.#resumed;
      const left = until - this.now();
      if (left <= 0) return;
      await this.#inner.sleep(left, label);
      if (this.#pausedAt === null && this.now() >= until) return;
    }
  }

  wait<T>(p: Promise<T>, label: string): Promise<T> {
    return this.#inner.wait(p, label);
  }
}

export type RunMode = 'running' | 'paused' | 'stepping' | 'stopping';

/**
 * One run's controller: the page's commands come in (pause, step, resume, stop), the
 * runner's gate (beforeRound) and batch count (noteBatch) go out to it.
 *
 *   step    let the run go until one more batch record is complete, then hold: under the
 *           'block', 'batch' and 'batch-flush' replay policies every replay services exactly
 *           one batch, so one step is exactly one batch; under 'once' a replay services the
 *           whole fault buffer, so a step shows that replay's batches.
 *   stop    the next boundary throws EINTR (a held run is released at once): the runner
 *           records it as a failed run "EINTR: stopped", keeping the batches so far.
 */
export class RunController {
  readonly sched = new PausableScheduler();
  #mode: RunMode;
  #batches = 0;
  #stepTarget = 0;
  #release: (() => void) | null = null;
  /** Called whenever the mode changes or the run starts holding ('held' true). */
  onState: (mode: RunMode, held: boolean) => void = () => {};

  constructor(startPaused = false) {
    this.#mode = startPaused ? 'paused' : 'running';
  }

  get mode(): RunMode {
    return this.#mode;
  }

  get batches(): number {
    return this.#batches;
  }

  /** Whether the run is held at a boundary now. */
  get held(): boolean {
    return this.#release !== null;
  }

  noteBatch(): void {
    this.#batches++;
  }

  #set(mode: RunMode): void {
    this.#mode = mode;
    this.onState(mode, this.held);
  }

  #let(): void {
    const r = this.#release;
    this.#release = null;
    this.sched.resume();
    r?.();
  }

  pause(): void {
    if (this.#mode === 'running' || this.#mode === 'stepping') this.#set('paused');
  }

  resume(): void {
    if (this.#mode !== 'paused' && this.#mode !== 'stepping') return;
    this.#let();
    this.#set('running');
  }

  step(): void {
    if (this.#mode === 'stopping') return;
    this.#stepTarget = this.#batches + 1;
    this.#let();
    this.#set('stepping');
  }

  stop(): void {
    if (this.#mode === 'stopping') return;
    this.#let();
    this.#set('stopping');
  }

  #mustHold(): boolean {
    return this.#mode === 'paused' || (this.#mode === 'stepping' && this.#batches >= this.#stepTarget);
  }

  /** RunObserver.beforeRound: hold while paused, throw EINTR once stopped. */
  async gate(): Promise<void> {
    for (;;) {
      if (this.#mode === 'stopping') throw err('EINTR', 'stopped by the user');
      if (!this.#mustHold()) return;
      if (this.#mode === 'stepping') this.#mode = 'paused';
      this.sched.pause();
      await new Promise<void>((resolve) => {
        this.#release = resolve;
        this.onState(this.#mode, true);
      });
    }
  }
}
