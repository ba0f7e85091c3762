/**
 * The replay loop: run a command to completion a round at a time (UVM's replayable-fault
 * cycle). A round dispatches every invocation not done yet; one that faulted stays not
 * done, so the next round — the replay — runs it again once its fault was serviced. The
 * loop knows nothing of how faults are serviced: that is the RoundService passed in
 * (one of the driver's two fault services, src/driver/fault-service.ts, or a test's toy),
 * called after every round that faulted, and its one pre-round hook before every round.
 * Data flows one way: fault records up to the service, never a call back from it.
 */
import { err, HmmError } from '../errors.js';
import type { FaultAccess } from './fault-queue.js';
import type { MirrorCommand, MirrorEngine, RoundResult } from './mirror-engine.js';

/**
 * A fault the driver will never resolve (a page with no VMA): UVM cancels the faulting
 * uTLB's accesses (uvm_gpu_replayable_faults.c, cancel_faults_precise: a targeted cancel
 * by GPC and client, i.e. by uTLB) and every other uTLB's work goes on.
 */
export interface FatalFault {
  page: number;
  access: FaultAccess;
  /** The uTLB that reported it (-1: no uTLB, a record the driver made up: the whole command fails). */
  source: number;
  reason: string;
}

/** What a round's service reports back: its fatal faults (their uTLBs' work is cancelled). */
export interface RoundServiced {
  fatal: readonly FatalFault[];
}

export interface RoundService {
  /**
   * Make the faulting pages of round `round` (1-based) accessible; report the faults that
   * are fatal (their uTLBs' work is cancelled), or throw to end the command with that error.
   */
  service(r: RoundResult, round: number): Promise<RoundServiced | void>;
  /** Fault records held over from earlier rounds, still to service (default 0). */
  backlog?(): number;
  /**
   * The one pre-round hook, awaited before every round, the first included (the driver's:
   * its observers' gate — pause, step, stop — then the aperture brought up to date).
   */
  beforeRound?(): Promise<void>;
}

export interface ReplayOptions {
  /** A command still faulting after this many rounds ends in EFAULT (default 1000). */
  maxRounds?: number;
}

export interface CommandOutcome {
  rounds: number;
  /** Rounds that ended with faults (each followed by a service call and a replay). */
  faultRounds: number;
  /** uTLBs whose work fatal faults cancelled (empty: none); the rest of the command completed. */
  cancelled: CancelledWork[];
}

/** One cancel: the uTLB, the fatal faults that cancelled it, the invocations it had left. */
export interface CancelledWork {
  source: number;
  faults: FatalFault[];
  invocations: number;
  round: number;
}

/**
 * Runs `cmd` to completion: a round, then while invocations remain, `fault.service(r)`
 * and a replay. A round that faults with nothing recorded (and nothing held over) is EIO.
 */
export async function replayCommand(
  engine: MirrorEngine, cmd: MirrorCommand, fault: RoundService, opts: ReplayOptions = {},
): Promise<CommandOutcome> {
  const maxRounds = opts.maxRounds ?? 1000;
  let rounds = 0;
  let faultRounds = 0;
  const cancelled: CancelledWork[] = [];
  for (;;) {
    await fault.beforeRound?.();
    const r = await engine.runRound(cmd);
    rounds++;
    if (r.finished) return { rounds, faultRounds, cancelled };
    if (rounds >= maxRounds) {
      throw err('EFAULT', `${engine.label}: ${cmd.op} [0x${cmd.page.toString(16)}, +${cmd.npages}) still faulting after ${rounds} rounds (${r.done}/${r.total} done)`);
    }
    if (r.faults.length === 0 && !r.overflow && (fault.backlog?.() ?? 0) === 0) {
      throw err('EIO', `${engine.label}: ${r.missed} invocations missed but no fault was recorded`);
    }
    faultRounds++;
    const res = await fault.service(r, rounds);
    if (res && res.fatal.length > 0) await cancelFaulting(engine, cmd, res.fatal, rounds, cancelled);
  }
}

/** Cancels the work of each uTLB a fatal fault came from (a fault of no uTLB fails the command: EFAULT). */
async function cancelFaulting(engine: MirrorEngine, cmd: MirrorCommand, fatal: readonly FatalFault[], round: number, out: CancelledWork[]): Promise<void> {
  const bySource = new Map<number, FatalFault[]>();
  for (const f of fatal) {
    if (f.source < 0) throw err('EFAULT', `${engine.label}: device fault at 0x${(f.page * 4096).toString(16)}: ${f.reason}`);
    bySource.set(f.source, [...(bySource.get(f.source) ?? []), f]);
  }
  for (const [source, faults] of [...bySource].sort((a, b) => a[0] - b[0])) {
    const invocations = await cmd.cancelSources(new Set([source]), engine.faultSources);
    out.push({ source, faults, invocations, round });
  }
}

/**
 * EFAULT for a command part of whose work fatal faults cancelled (the rest completed and its
 * writes reached memory): which uTLBs, at which pages, how many invocations each.
 */
export class CancelledError extends HmmError {
  readonly cancelled: readonly CancelledWork[];
  constructor(label: string, cancelled: readonly CancelledWork[]) {
    const parts = cancelled.map((c) => `uTLB ${c.source} (${c.invocations} invocations; ${[...new Set(c.faults.map((f) => `0x${(f.page * 4096).toString(16)} ${f.reason}`))].join(', ')})`);
    super('EFAULT', `${label}: fatal device faults cancelled ${parts.join('; ')}`);
    this.cancelled = cancelled;
  }
}
