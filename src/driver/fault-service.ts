/**
 * What the two fault services share (range-service.ts: dmirror's hmm_range_fault service;
 * batch-service.ts: UVM's batched service): the `FaultService` interface the mirror holds,
 * the batch records, the service's events, and the one pre-round hook. Both service faults
 * through retry.ts's one loop (hmmRangeLoop).
 *
 * Observation is one way: the service emits what happened (a command began, a round
 * faulted, a batch was serviced) on its `events`; the only thing an observer hands back is
 * the gate's promise, awaited in the pre-round hook where the service holds no lock — the
 * lab's pause, step and stop, the experiment's watchdog. Nobody wraps or replaces a service
 * to watch it.
 */
import type { AccessCounts } from '../device/command.js';
import type { FaultRecord } from '../device/fault-queue.js';
import type { MirrorOp, RoundResult, TlbStats } from '../device/mirror-engine.js';
import type { FatalFault, RoundService } from '../device/replay.js';
import type { BatchRecord } from './records.js';
import type { MirrorTarget } from './retry.js';
import type { ServicerOptions } from './service-options.js';

export interface CommandRange {
  page: number;
  npages: number;
  op: MirrorOp;
  /** What the GPU's access counters counted over the command's rounds so far (a counting command's). */
  readonly accessCounts?: AccessCounts | null;
}

/** A round that faulted, as the service saw it before servicing it. */
export interface RoundEvent {
  faults: number;
  overflow: boolean;
  finished: boolean;
  records: readonly FaultRecord[];
  done: number;
  total: number;
  tlb: TlbStats;
  /** Workgroups the stall gate did not re-run this round (RoundResult.stalled). */
  stalled: number;
}

/** One observer of a service: each hook optional. */
export interface ServiceListener {
  /** A command's servicing began (the one before it finished). */
  onCommand?(cmd: CommandRange): void;
  /** Each round that faulted, before its service. */
  onRound?(r: RoundEvent): void;
  /** Each batch record once serviced, in order, once. */
  onBatch?(rec: BatchRecord): void;
  /** Awaited before every round (the first included), where the service holds no lock; a throw ends the command. */
  beforeRound?(): Promise<void>;
}

/** A service's event stream: listeners subscribe and unsubscribe; the service emits. */
export class ServiceEvents {
  readonly #listeners: ServiceListener[] = [];

  /** Listen from now on; returns the unsubscribe. */
  subscribe(l: ServiceListener): () => void {
    this.#listeners.push(l);
    return () => {
      const i = this.#listeners.indexOf(l);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  command(cmd: CommandRange): void {
    for (const l of this.#listeners) l.onCommand?.(cmd);
  }

  round(r: RoundEvent): void {
    for (const l of this.#listeners) l.onRound?.(r);
  }

  batch(rec: BatchRecord): void {
    for (const l of this.#listeners) l.onBatch?.(rec);
  }

  /** Every listener's gate, in subscription order. */
  async gate(): Promise<void> {
    for (const l of this.#listeners) await l.beforeRound?.();
  }
}

/** How a mirror services device faults (Dmirror.servicer): one of the two services. */
export interface FaultService {
  /** 'range': dmirror_fault's ranges; 'batch': UVM's batches (coalescing, replay policy, a policy). */
  readonly kind: 'range' | 'batch';
  readonly target: MirrorTarget;
  readonly opts: ServicerOptions;
  /** The batch log: one record per batch (per dmirror_fault call), in order. */
  readonly records: readonly BatchRecord[];
  readonly events: ServiceEvents;
  /**
   * The service of one command's rounds, for the replay loop (replayCommand). `sync` runs in
   * the pre-round hook after the observers' gate (the driver brings the aperture up to date).
   */
  forCommand(cmd: CommandRange, sync: () => Promise<void>): RoundService;
}

/** What a service does after a round that faulted: `services` the round, `backlog` what it holds over. */
export interface CommandServicing {
  /** Services the round; returns its fatal faults (none: an empty list). */
  service(r: RoundResult, round: number): Promise<FatalFault[]>;
  backlog(): number;
}

/**
 * The shared part of both services: the records, the events and the one pre-round hook.
 * A subclass says how a command's rounds are serviced (`servicing`).
 */
export abstract class ServiceCore implements FaultService {
  abstract readonly kind: 'range' | 'batch';
  readonly target: MirrorTarget;
  readonly opts: ServicerOptions;
  readonly records: BatchRecord[];
  readonly events = new ServiceEvents();
  /** Scheduler ms when the service began (records' `t` counts from here). */
  protected readonly t0: number;
  /** Batch records already emitted. */
  #reported = 0;

  /** `records`: the log to append to (default a new one). */
  constructor(target: MirrorTarget, opts: ServicerOptions, records: BatchRecord[] = []) {
    this.target = target;
    this.opts = opts;
    this.records = records;
    this.t0 = target.mm.core.sched.now();
  }

  protected abstract servicing(cmd: CommandRange): CommandServicing;

  forCommand(cmd: CommandRange, sync: () => Promise<void>): RoundService {
    const s = this.servicing(cmd);
    this.events.command(cmd);
    return {
      backlog: () => s.backlog(),
      beforeRound: async () => {
        this.#report();
        await this.events.gate();
        await sync();
      },
      service: async (r: RoundResult, round: number) => {
        this.events.round({ faults: r.faults.length, overflow: r.overflow, finished: r.finished, records: r.faults, done: r.done, total: r.total, tlb: r.tlb, stalled: r.stalled });
        const first = this.records.length;
        try {
          return { fatal: await s.service(r, round) };
        } finally {
          // The translation statistics of the round whose faults these batches hold (data for the lab).
          for (let k = first; k < this.records.length; k++) Object.assign(this.records[k], { tlbLookups: r.tlb.lookups, tlbWalks: r.tlb.walks });
          this.#report();
        }
      },
    };
  }

  #report(): void {
    for (; this.#reported < this.records.length; this.#reported++) this.events.batch(this.records[this.#reported]);
  }
}
