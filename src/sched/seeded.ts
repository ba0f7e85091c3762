/**
 * A deterministic scheduler: every yield()/sleep()/wait() parks its caller, and a pump resumes
 * one parked task per host macrotask, chosen by a seeded PRNG. Between two resumptions the
 * microtask queue drains, so a resumed task runs until it parks again or finishes; the order of
 * resumptions (the `trace`) is then a function of the seed alone.
 *
 * Time is virtual: sleep() sets a timer on a virtual clock, and the clock jumps to the earliest
 * timer only when nothing is ready. wait(p) parks the task until p settles. Waits are collected
 * into the ready set only at collection points — when the ready set has drained, and every
 * COLLECT_EVERY steps (so a task spinning on yield() cannot starve a completion) — and a
 * collection first waits (asynchronously: the host event loop keeps running) until EVERY
 * outstanding wait has settled, then moves them all, in registration order. Which waits exist
 * at a step is a function of the seed, so where each GPU completion lands is too, however long
 * the GPU takes and in whatever order completions arrive (collecting only those that happened
 * to have settled would let real time pick the interleaving). After `externalGraceMs` of real
 * time stalled while something else could run (a ready task, a timer, a settled wait) the pump
 * gives up on the stragglers, so a promise that (wrongly) depends on a parked task cannot
 * hang the run. `stats.graceExpirations` counts those nondeterministic points; a
 * deterministic run has none.
 */
import { macrotask } from './macrotask.js';
import type { Scheduler } from './scheduler.js';

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SeededSchedulerOptions {
  /** Virtual time at creation (ms). Default 0. */
  startTime?: number;
  /** Real ms to wait for an outstanding wait() before firing virtual timers anyway. Default 5000. */
  externalGraceMs?: number;
}

export interface SeededSchedulerStats {
  /** Resumptions performed (== trace.length). */
  steps: number;
  /** Times the virtual clock jumped to a timer. */
  timerAdvances: number;
  /** Times the pump waited on the host for an outstanding wait(). */
  externalStalls: number;
  /** Times the pump went on while a wait() was still outstanding (nondeterministic). */
  graceExpirations: number;
}

interface Parked {
  label: string;
  resume: () => void;
}
interface Timer {
  at: number;
  seq: number;
  parked: Parked;
}
interface External {
  settled: boolean;
  parked: Parked;
}

/** Collect settled waits at least this often even if the ready set never drains. */
const COLLECT_EVERY = 256;

export class SeededScheduler implements Scheduler {
  readonly seed: number;
  /** Labels of the await points in the order their tasks were resumed. */
  readonly trace: string[] = [];
  readonly stats: SeededSchedulerStats = { steps: 0, timerAdvances: 0, externalStalls: 0, graceExpirations: 0 };

  readonly #rand: () => number;
  readonly #graceMs: number;
  #now: number;
  #ready: Parked[] = [];
  #timers: Timer[] = []; // sorted by (at, seq)
  #timerSeq = 0;
  #externals: External[] = []; // registration order; unsettled or settled-but-not-collected
  #unsettled = 0;
  #sinceCollect = 0;
  #scheduled = false;
  #stallSince: number | null = null;
  #graceTimer: ReturnType<typeof setTimeout> | null = null;
  #idleWaiters: (() => void)[] = [];

  constructor(seed: number, opts: SeededSchedulerOptions = {}) {
    this.seed = seed;
    this.#rand = mulberry32(seed);
    this.#now = opts.startTime ?? 0;
    this.#graceMs = opts.externalGraceMs ?? 5000;
  }

  now(): number {
    return this.#now;
  }

  yield(label: string): Promise<void> {
    return new Promise<void>((resolve) => this.#makeReady({ label, resume: resolve }));
  }

  /**
   * Resume after `ms` of virtual time. `signal` (an extension to Scheduler.sleep) cancels a
   * timer that has not fired: the promise rejects with the abort reason and the clock is not
   * advanced for it — the analogue of del_timer() for a wait_event_timeout that was woken.
   */
  sleep(ms: number, label: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!(ms > 0)) return this.yield(label);
    return new Promise<void>((resolve, reject) => {
      const timer: Timer = { at: this.#now + ms, seq: this.#timerSeq++, parked: { label, resume: resolve } };
      if (signal) {
        const onAbort = (): void => {
          const i = this.#timers.indexOf(timer);
          if (i < 0) return; // already fired
          this.#timers.splice(i, 1);
          reject(signal.reason);
          this.#kick(); // the pump may be stalled only because of this timer
        };
        signal.addEventListener('abort', onAbort, { once: true });
        timer.parked.resume = () => { signal.removeEventListener('abort', onAbort); resolve(); };
      }
      let i = this.#timers.length;
      while (i > 0 && this.#timers[i - 1].at > timer.at) i--;
      this.#timers.splice(i, 0, timer);
      this.#kick();
    });
  }

  wait<T>(p: Promise<T>, label: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const ext: External = { settled: false, parked: { label, resume: () => undefined } };
      this.#externals.push(ext);
      this.#unsettled++;
      const settle = (resume: () => void): void => {
        ext.settled = true;
        ext.parked.resume = resume;
        this.#unsettled--;
        this.#kick();
      };
      p.then((v) => settle(() => resolve(v)), (e: unknown) => settle(() => reject(e)));
      this.#kick();
    });
  }

  /** Start `fn` as a task at a scheduled point (so task start order is seeded too). */
  spawn<T>(label: string, fn: () => T | Promise<T>): Promise<T> {
    return this.yield(label).then(fn);
  }

  /**
   * Resolves once nothing is ready, no timer is pending and no wait() is outstanding. Tasks
   * asleep on a WaitQueue or a lock are not parked here (their wakers will make them ready),
   * so idle() is "nothing can happen unless someone outside acts".
   */
  idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#kick();
    });
  }

  /** Parked tasks (ready, sleeping, or waiting on an outside promise). */
  get parked(): number {
    return this.#ready.length + this.#timers.length + this.#externals.length;
  }

  #makeReady(p: Parked): void {
    this.#ready.push(p);
    this.#kick();
  }

  #kick(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    macrotask(() => this.#step());
  }

  /** Move settled waits to the ready set, in the order they were registered. */
  #collect(): void {
    this.#sinceCollect = 0;
    if (this.#externals.length === this.#unsettled) return;
    const keep: External[] = [];
    for (const e of this.#externals) {
      if (e.settled) this.#ready.push(e.parked);
      else keep.push(e);
    }
    this.#externals = keep;
  }

  #step(): void {
    this.#scheduled = false;
    if (this.#ready.length === 0 || this.#sinceCollect >= COLLECT_EVERY) {
      if (this.#unsettled > 0) {
        if (!this.#graceExpired()) {
          // A settle handler kicks us; a grace timer kicks us if something else could run.
          this.stats.externalStalls++;
          return;
        }
        this.stats.graceExpirations++;
      }
      this.#collect();
    }
    if (this.#ready.length === 0) {
      if (this.#timers.length === 0) {
        if (this.#unsettled === 0) this.#becameIdle();
        return;
      }
      this.#fireTimers();
    }
    this.#endStall();
    const i = Math.floor(this.#rand() * this.#ready.length);
    const p = this.#ready.splice(i, 1)[0];
    this.trace.push(p.label);
    this.stats.steps++;
    this.#sinceCollect++;
    p.resume();
    this.#kick();
  }

  /** True when outstanding waits have been given their real-time grace and others may run. */
  #graceExpired(): boolean {
    const other = this.#ready.length > 0 || this.#timers.length > 0 || this.#externals.length > this.#unsettled;
    if (!other) return false;
    const real = performance.now();
    if (this.#stallSince === null) this.#stallSince = real;
    const left = this.#stallSince + this.#graceMs - real;
    if (left <= 0) return true;
    if (this.#graceTimer === null) {
      this.#graceTimer = setTimeout(() => { this.#graceTimer = null; this.#kick(); }, Math.ceil(left));
    }
    return false;
  }

  #endStall(): void {
    this.#stallSince = null;
    if (this.#graceTimer !== null) { clearTimeout(this.#graceTimer); this.#graceTimer = null; }
  }

  /** Advance the virtual clock to the earliest timer and make every timer due then ready. */
  #fireTimers(): void {
    const at = this.#timers[0].at;
    if (at > this.#now) this.#now = at;
    this.stats.timerAdvances++;
    let n = 0;
    while (n < this.#timers.length && this.#timers[n].at <= this.#now) n++;
    for (const t of this.#timers.splice(0, n)) this.#ready.push(t.parked);
  }

  #becameIdle(): void {
    this.#endStall();
    const ws = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of ws) w();
  }
}
