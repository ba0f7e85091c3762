/**
 * The run's no-progress watchdog (issue 19): a policy that throttles every fault, or a
 * servicer that never maps anything, would keep a batch job replaying until the scheduler
 * kills it, with no word of why. The runner asks the watchdog before every replay round
 * (the servicer's gate, where no lock is held); progress is a round that put something in
 * the mirror (a range installed, a page migrated in, mapped remotely) or a command that
 * finished. When the simulated clock (the policy's cost model) or the wall clock has run
 * past its bound since the last progress, the run ends with ETIMEDOUT naming the policy and
 * what it kept doing, and the sweep goes on with its next run.
 *
 * Like the kernel's soft-lockup detector (kernel/watchdog.c), it measures time without
 * progress, not total time: a long run that keeps making progress is never stopped.
 *
 * Moving pages is not always progress: under oversubscription a policy can evict what the
 * waiting invocations need while it brings in the rest, round after round (thrashing that
 * never lets an invocation complete: a livelock, UVM's "thrashing" without its throttle).
 * So the watchdog also counts rounds since an invocation last completed (a launch's done
 * count grew, or a command finished), and ends the run past `rounds` of them, whatever moved.
 */
import { err, type HmmError } from '../errors.js';

export interface WatchdogBounds {
  /** Simulated ns without progress (policy runs); default 10 s. */
  simNs: number;
  /** Wall ms without progress; default 120 s. */
  wallMs: number;
  /** Replay rounds without an invocation completing, pages moved or not; default 500. */
  rounds?: number;
}

export const DEFAULT_WATCHDOG: Readonly<WatchdogBounds> = Object.freeze({ simNs: 10e9, wallMs: 120_000, rounds: 500 });

/** What the watchdog reads at each round: counters that only grow. */
export interface ProgressSample {
  /** Things put in the mirror so far (ranges installed, pages migrated in, pages mapped remotely). */
  progress: number;
  /** The policy's virtual clock, ns (0 without a policy). */
  simNs: number;
  /** Wall ms (performance.now). */
  wallMs: number;
  /** What the policy did so far, for the message: throttled faults, pages in and out, far faults. */
  throttled: number;
  migratedIn: number;
  evictedOut: number;
  faults: number;
  rounds: number;
  /** Work completed so far: invocations done (a launch's done count) plus commands begun (each after the last one finished). */
  completed: number;
}

/**
 * Parse `--watchdog SIM_S,WALL_S[,ROUNDS]` (seconds of simulated and of wall time without
 * progress, rounds without an invocation completing; any may be 'off'). Returns a reason
 * when it is not that.
 */
export function parseWatchdog(raw: string): WatchdogBounds | string {
  const parts = raw.split(',').map((x) => x.trim());
  if (parts.length !== 2 && parts.length !== 3) return 'SIM_S,WALL_S[,ROUNDS] (seconds of simulated and wall time without progress, rounds without an invocation completing; off for none)';
  const [sim, wall, rounds] = parts.map((p) => (p === 'off' ? Infinity : Number(p)));
  if (!(sim > 0) || !(wall > 0) || Number.isNaN(sim) || Number.isNaN(wall)) return 'SIM_S,WALL_S[,ROUNDS] with positive seconds (or off)';
  if (parts.length === 3 && !(rounds === Infinity || (Number.isSafeInteger(rounds) && rounds > 0))) return 'SIM_S,WALL_S[,ROUNDS] with ROUNDS a positive whole number (or off)';
  return { simNs: sim * 1e9, wallMs: wall * 1000, rounds: parts.length === 3 ? rounds : DEFAULT_WATCHDOG.rounds };
}

export class Watchdog {
  readonly bounds: WatchdogBounds;
  readonly #who: string;
  #last: ProgressSample | null = null;
  /** The sample when work last completed. */
  #lastWork: ProgressSample | null = null;

  /** `who`: what the message names ('policy "thrashing"', 'the servicer'). */
  constructor(bounds: WatchdogBounds, who: string) {
    this.bounds = bounds;
    this.#who = who;
  }

  /** A command finished: that is progress. */
  finished(s: ProgressSample): void {
    this.#last = s;
    this.#lastWork = s;
  }

  /** Before a round: the error to end the run with, or null. */
  check(s: ProgressSample): HmmError | null {
    const work = this.#lastWork;
    if (work === null || s.completed > work.completed) this.#lastWork = s;
    else if (s.rounds - work.rounds > (this.bounds.rounds ?? Infinity)) {
      return err('ETIMEDOUT', `watchdog: no invocation completed for ${s.rounds - work.rounds} rounds (bound ${this.bounds.rounds}): ${this.#who} kept ` +
        `${doing(work, s)}: a livelock (--watchdog SIM_S,WALL_S,ROUNDS sets the bounds)`);
    }
    const last = this.#last;
    if (last === null || s.progress > last.progress) {
      this.#last = s;
      return null;
    }
    const sim = s.simNs - last.simNs;
    const wall = s.wallMs - last.wallMs;
    if (sim <= this.bounds.simNs && wall <= this.bounds.wallMs) return null;
    const over = sim > this.bounds.simNs
      ? `${(sim / 1e9).toFixed(1)} s of simulated time (bound ${(this.bounds.simNs / 1e9).toFixed(1)} s)`
      : `${(wall / 1000).toFixed(1)} s of wall time (bound ${(this.bounds.wallMs / 1000).toFixed(1)} s)`;
    return err('ETIMEDOUT', `watchdog: no progress for ${over}, ${s.rounds - last.rounds} rounds: ${this.#who} kept ${doing(last, s)} (--watchdog SIM_S,WALL_S sets the bounds)`);
  }
}

function doing(a: ProgressSample, b: ProgressSample): string {
  const throttled = b.throttled - a.throttled;
  const moved = b.migratedIn - a.migratedIn + (b.evictedOut - a.evictedOut);
  const faults = b.faults - a.faults;
  if (throttled > 0) return `throttling (${throttled} faults throttled, nothing mapped)`;
  if (moved > 0 && b.progress > a.progress) return `moving pages (${b.migratedIn - a.migratedIn} in, ${b.evictedOut - a.evictedOut} out, ${faults} faults) without an invocation finishing`;
  if (moved > 0) return `moving pages without mapping them (${b.migratedIn - a.migratedIn} in, ${b.evictedOut - a.evictedOut} out)`;
  return `faulting without servicing (${faults} faults)`;
}
