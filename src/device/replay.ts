/**
 * The replay loop: run a command to completion a round at a time (UVM's replayable-fault
 * cycle). A round dispatches every invocation not done yet; one that faulted stays not
 * done, so the next round — the replay — runs it again once its fault was serviced. The
 * loop knows nothing of how faults are serviced: that is the RoundService passed in
 * (one of the driver's two fault services, src/driver/fault-service.ts, or a test's toy),
 * called after every round that faulted, and its one pre-round hook before every round.
 * Data flows one way: fault records up to the service, never a call back from it.
 */
import { err } from '../errors.js';
import type { MirrorCommand, MirrorEngine, RoundResult } from './mirror-engine.js';

export interface RoundService {
  /**
   * Make the faulting pages of round `round` (1-based) accessible, or throw to end the
   * command with that error (a fault the driver never resolves is the fatal,
   * non-replayable case, which UVM answers by killing the channel).
   */
  service(r: RoundResult, round: number): Promise<void>;
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
  for (;;) {
    await fault.beforeRound?.();
    const r = await engine.runRound(cmd);
    rounds++;
    if (r.finished) return { rounds, faultRounds };
    if (rounds >= maxRounds) {
      throw err('EFAULT', `${engine.label}: ${cmd.op} [0x${cmd.page.toString(16)}, +${cmd.npages}) still faulting after ${rounds} rounds (${r.done}/${r.total} done)`);
    }
    if (r.faults.length === 0 && !r.overflow && (fault.backlog?.() ?? 0) === 0) {
      throw err('EIO', `${engine.label}: ${r.missed} invocations missed but no fault was recorded`);
    }
    faultRounds++;
    await fault.service(r, rounds);
  }
}
