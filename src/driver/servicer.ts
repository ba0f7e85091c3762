/**
 * Fault servicing (UVM's uvm_gpu_service_replayable_faults), the FaultService the replay
 * loop (src/device/replay.ts) is given: fetch up to `batchSize` fault records at a time
 * from what the round left in the fault buffer, coalesce them, service every group through
 * the chosen retry protocol under one mmap lock per batch, and replay when the policy says:
 *
 *   'block'        after each serviced group (UVM_PERF_FAULT_REPLAY_POLICY_BLOCK)
 *   'batch'        after each batch; the rest of the buffer is serviced after the replay
 *   'batch-flush'  after each batch, dropping the rest of the buffer first (UVM's default):
 *                  the replay regenerates whatever is still missing
 *   'once'         after every batch in the buffer was serviced
 *
 * Faults the mirror already satisfies by the time their batch is processed are dropped as
 * stale (UVM's "fault already serviced" check), so replaying early never double-services.
 */
import type { FaultRecord } from '../device/fault-queue.js';
import type { MirrorOp, RoundResult } from '../device/mirror-engine.js';
import type { FaultService } from '../device/replay.js';
import { err } from '../errors.js';
import { PAGE_SIZE } from '../mm/constants.js';
import { coalesce, perFault, windowBytes, type CoalesceResult, type FaultGroup, type WindowPolicy } from './coalesce.js';
import type { PolicyPath } from './policy-path.js';
import { emptyRecord, type BatchRecord } from './records.js';
import { beginPhases, notePhase } from './phases.js';
import { ServicePass } from '../policy/service-loop.js';
import {
  dmirrorAtomicMap, dmirrorRangeFault, HMM_RANGE_DEFAULT_TIMEOUT, serviceRange, type LockState, type MirrorTarget,
  type RetryProtocol,
} from './retry.js';

export type ReplayPolicy = 'block' | 'batch' | 'batch-flush' | 'once';
export const REPLAY_POLICIES: readonly ReplayPolicy[] = ['block', 'batch', 'batch-flush', 'once'];

export interface ServicerOptions {
  /** Faults fetched per batch (uvm_perf_fault_batch_count, 256). Infinity = the whole buffer. */
  batchSize: number;
  replay: ReplayPolicy;
  window: WindowPolicy;
  /** false: the per-fault baseline (one hmm_range_fault and one mirror write per fault). */
  coalesce: boolean;
  protocol: RetryProtocol;
  timeoutMs: number;
  fallbackAfter: number;
  /** dmirror: on a fault-buffer overflow, fault everything from the lowest recorded fault to the command's end. */
  restOfRangeOnOverflow: boolean;
  /**
   * > 0: lib/test_hmm.c's dmirror_fault instead of batching and coalescing — each round that
   * faulted services [lowest faulted page, command end) in ranges of this many pages (64:
   * its pfns[64]), each through dmirrorRangeFault (its own read_begin/read_retry loop, mmap
   * lock and timeout). Atomic commands keep the coalesced path (test_hmm has none).
   */
  rangePages: number;
  afterRangeFault?: (start: number, end: number) => Promise<void>;
  /** The mirror's migration policy (Dmirror.setPolicy attaches it), deciding each batch; its faults are sorted by page first. */
  policy?: PolicyPath;
  /** One pass's limits (uvm_perf_fault_max_batches_per_service 20, ..._max_throttle_per_service 5). */
  maxBatchesPerService: number;
  maxThrottlePerService: number;
  /** % duplicates above which BATCH_FLUSH re-reads PUT (uvm_perf_fault_replay_update_put_ratio). */
  replayUpdatePutRatio: number;
  /** Who watches the servicing (ServiceEvents). */
  events?: ServiceEvents;
}

/**
 * What an observer (the lab, a test) sees of the servicing, one way each: each round that
 * faulted before its service, each batch record once serviced, and a gate awaited before
 * every round (the first included) — where the servicer holds no lock: pause, step, stop.
 */
export interface ServiceEvents {
  /** The round's fault records, its done and total invocations. */
  onRound?(r: { faults: number; overflow: boolean; finished: boolean; records: readonly FaultRecord[]; done: number; total: number }): void;
  onBatch?(rec: BatchRecord): void;
  beforeRound?(): Promise<void>;
}

export const DEFAULT_SERVICER: ServicerOptions = {
  batchSize: 256, replay: 'batch-flush', window: 2097152, coalesce: true, protocol: 'seq',
  timeoutMs: HMM_RANGE_DEFAULT_TIMEOUT, fallbackAfter: 3, restOfRangeOnOverflow: false, rangePages: 0,
  maxBatchesPerService: 20, maxThrottlePerService: 5, replayUpdatePutRatio: 50,
};

export interface CommandRange {
  page: number;
  npages: number;
  op: MirrorOp;
}

export class FaultServicer {
  readonly target: MirrorTarget;
  readonly opts: ServicerOptions;
  readonly records: BatchRecord[] = [];
  readonly #t0: number;
  /** When each 'amd' window block was last validated (UVM's per-block service timestamp). */
  readonly #validatedAt = new Map<number, number>();
  /** Batch records already reported to `events.onBatch`. */
  #reported = 0;
  /** Service passes so far (each round that faulted starts one). */
  #passes = 0;

  constructor(target: MirrorTarget, opts: Partial<ServicerOptions> = {}) {
    this.target = target;
    this.opts = { ...DEFAULT_SERVICER, ...opts };
    if (!(this.opts.batchSize >= 1)) throw err('EINVAL', `batch size ${this.opts.batchSize}`);
    this.#t0 = target.mm.core.sched.now();
  }

  /**
   * The fault service of one command, for the replay loop (replayCommand): called after
   * each round that faulted. Faults not serviced yet (a 'batch' replay) are held over to
   * the next round's service.
   */
  forCommand(cmd: CommandRange): FaultService {
    const events = this.opts.events;
    const service = this.#forCommand(cmd);
    if (events === undefined) return service;
    const report = (): void => {
      while (this.#reported < this.records.length) events.onBatch?.(this.records[this.#reported++]);
    };
    return {
      backlog: service.backlog,
      gate: async () => {
        report();
        await events.beforeRound?.();
      },
      service: async (r: RoundResult, round: number) => {
        events.onRound?.({ faults: r.faults.length, overflow: r.overflow, finished: r.finished, records: r.faults, done: r.done, total: r.total });
        try {
          await service.service(r, round);
        } finally {
          report();
        }
      },
    };
  }

  #forCommand(cmd: CommandRange): FaultService & { backlog(): number } {
    let buffer: FaultRecord[] = [];
    let overflow = false;
    this.opts.policy?.commandStart();
    const serviceRound = async (r: RoundResult, round: number): Promise<void> => {
      if (this.opts.rangePages > 0 && cmd.op !== 'atomic') {
        await this.#dmirrorFault(r.faults, r.overflow || buffer.length > 0, round, cmd);
        buffer = [];
        return;
      }
      buffer = buffer.concat(r.faults);
      // UVM sorts each fetched batch by address (service_fault_batch's sort): with a policy,
      // which faults a batch holds must not depend on the order the GPU recorded them in.
      if (this.opts.policy) buffer.sort((a, b) => a.page - b.page);
      overflow ||= r.overflow;
      if (overflow && this.opts.restOfRangeOnOverflow) {
        buffer = buffer.concat(restOfRange(buffer, cmd));
        overflow = false;
      }
      // One service pass (the bottom half): batches until the replay policy says replay, at
      // most maxBatchesPerService of them and until maxThrottlePerService had throttled
      // faults; what is left waits in the buffer for the next pass (the next round).
      const pass = new ServicePass({
        maxBatchesPerService: this.opts.maxBatchesPerService, maxThrottlePerService: this.opts.maxThrottlePerService,
        replayUpdatePutRatio: this.opts.replayUpdatePutRatio, replayPolicy: this.opts.replay,
      });
      this.#passes++;
      do {
        if (!pass.canFetch()) break;
        const fetched = this.target.mm.core.sched.now();
        const batch = buffer.splice(0, Math.min(buffer.length, this.opts.batchSize));
        const { leftover, rec } = await this.#serviceBatch(batch, round, cmd, fetched);
        if (leftover.length > 0) buffer = leftover.concat(buffer);
        rec.pass = this.#passes;
        rec.flush = pass.batchDone({ fetched: rec.fetched, duplicates: rec.duplicates, throttled: (rec.throttled ?? 0) > 0 }).flush;
        if (this.opts.replay === 'batch-flush') buffer = [];
      } while (buffer.length > 0 && this.opts.replay === 'once');
      overflow = false;
    };
    return {
      backlog: () => buffer.length,
      service: async (r: RoundResult, round: number) => {
        const first = this.records.length;
        try {
          await serviceRound(r, round);
        } finally {
          // The translation statistics of the round whose faults these batches hold (data for the lab).
          for (let k = first; k < this.records.length; k++) Object.assign(this.records[k], { tlbLookups: r.tlb.lookups, tlbWalks: r.tlb.walks });
        }
      },
    };
  }

  /**
   * dmirror_fault(start, end, write) for one round: start = the lowest faulted page (the
   * command's first page when records were lost), end = the command's end, in rangePages
   * steps (dmirror_read/write fault from the first page not mirrored to the end).
   */
  async #dmirrorFault(faults: readonly FaultRecord[], lost: boolean, round: number, cmd: CommandRange): Promise<void> {
    const t = this.target;
    const sched = t.mm.core.sched;
    const rec = emptyRecord(this.records.length, sched.now() - this.#t0, round);
    this.records.push(rec);
    const t0 = sched.now();
    beginPhases(rec, t0);
    const end = cmd.page + cmd.npages;
    let from = lost ? cmd.page : end;
    for (const f of faults) if (f.page < from) from = f.page;
    rec.fetched = faults.length;
    rec.unique = new Set(faults.map((f) => f.page)).size;
    rec.duplicates = rec.fetched - rec.unique;
    try {
      for (let p = Math.max(from, cmd.page); p < end; p += this.opts.rangePages) {
        rec.groups++;
        await dmirrorRangeFault(t, p * PAGE_SIZE, Math.min(p + this.opts.rangePages, end) * PAGE_SIZE, cmd.op !== 'read', this.opts, rec);
      }
    } finally {
      rec.serviceMs = sched.now() - t0;
    }
  }

  /** One batch: coalesce, then service its groups under one mmap lock. Returns unserviced faults ('block'). */
  async #serviceBatch(batch: FaultRecord[], round: number, cmd: CommandRange, fetched: number): Promise<{ leftover: FaultRecord[]; rec: BatchRecord }> {
    const t = this.target;
    const sched = t.mm.core.sched;
    const rec = emptyRecord(this.records.length, fetched - this.#t0, round);
    this.records.push(rec);
    // The service's parts go into the record as spans (phases.ts), from the fetch on.
    beginPhases(rec, fetched);
    const t0 = sched.now();
    notePhase(rec, 'fetch', fetched, t0);
    const lock: LockState = { mode: 'none' };
    const batchLock = this.opts.protocol !== 'valid-flag';
    let leftover: FaultRecord[] = [];
    let held = 0;
    try {
      if (batchLock) {
        await t.mm.lock.readLock();
        lock.mode = 'read';
        held = sched.now();
        rec.mmapLockWaitMs += held - t0;
        notePhase(rec, 'mmap lock wait', t0, held);
      }
      t.mm.checkAlive();
      const c0 = sched.now();
      const c: CoalesceResult = this.opts.coalesce
        ? coalesce(t.mm, batch, {
          window: this.opts.window, isMapped: (p, rank) => t.pt.isMapped(p, rank),
          lastValidated: (b) => this.#validatedAt.get(b), now: sched.now(),
          clip: { start: cmd.page * PAGE_SIZE, end: (cmd.page + cmd.npages) * PAGE_SIZE },
        })
        : perFault(t.mm, batch);
      notePhase(rec, 'coalesce', c0, sched.now());
      rec.fetched = c.fetched;
      rec.duplicates = c.duplicates;
      rec.stale = c.stale;
      rec.recent = c.recent;
      rec.unique = c.unique;
      rec.groups = c.groups.length;
      if (c.holes.length > 0) throw err('EFAULT', `device fault at 0x${(c.holes[0] * PAGE_SIZE).toString(16)}: no VMA`);
      if (this.opts.policy && lock.mode !== 'none') {
        // The policy sees the batch as one fault group; atomic groups keep make_device_exclusive.
        const plain = c.groups.filter((g) => g.rank < 2);
        rec.throttled = await this.opts.policy.serviceBatch(t, plain, c.fetched, this.opts, lock, rec);
        for (const g of c.groups) if (g.rank >= 2) await this.#serviceGroup(g, lock, rec);
        return { leftover, rec };
      }
      for (let g = 0; g < c.groups.length; g++) {
        await this.#serviceGroup(c.groups[g], lock, rec);
        if (this.opts.replay === 'block' && g + 1 < c.groups.length) {
          const rest = new Set(c.groups.slice(g + 1).flatMap((x) => x.pages));
          leftover = batch.filter((f) => rest.has(f.page));
          break;
        }
      }
    } finally {
      if (lock.mode !== 'none') {
        const unlocked = sched.now();
        rec.mmapLockHoldMs += unlocked - (held || t0);
        notePhase(rec, 'mmap lock held', held || t0, unlocked);
        if (lock.mode === 'read') t.mm.lock.readUnlock();
        else t.mm.lock.writeUnlock();
      }
      rec.serviceMs = sched.now() - fetched;
    }
    return { leftover, rec };
  }

  async #serviceGroup(g: FaultGroup, lock: LockState, rec: BatchRecord): Promise<void> {
    const t = this.target;
    if (g.rank === 2) {
      // Atomic faults: make_device_exclusive on the faulted pages (needs the mmap lock).
      if (lock.mode === 'none') {
        await t.mm.lock.readLock();
        try {
          for (const p of g.pages) rec.mirrorWrites += await dmirrorAtomicMap(t, p * PAGE_SIZE, 1);
        } finally {
          t.mm.lock.readUnlock();
        }
      } else {
        for (const p of g.pages) rec.mirrorWrites += await dmirrorAtomicMap(t, p * PAGE_SIZE, 1);
      }
      return;
    }
    await serviceRange(t, g.start, g.end, g.rank >= 1, this.opts, lock, rec);
    if (lock.mode === 'write') {
      t.mm.lock.downgrade(); // mmap_write_downgrade: the rest of the batch needs only read
      lock.mode = 'read';
    }
    if (this.opts.window === 'amd') this.#validatedAt.set(Math.floor(g.start / windowBytes('amd')) * windowBytes('amd'), t.mm.core.sched.now());
  }
}

/** dmirror_fault(start, end): every page from the lowest recorded fault to the command's end. */
function restOfRange(buffer: readonly FaultRecord[], cmd: CommandRange): FaultRecord[] {
  let from = cmd.page + cmd.npages;
  for (const f of buffer) if (f.page < from) from = f.page;
  if (buffer.length === 0) from = cmd.page;
  const access = cmd.op === 'read' ? 'read' : cmd.op === 'write' ? 'write' : 'atomic';
  const out: FaultRecord[] = [];
  for (let p = from; p < cmd.page + cmd.npages; p++) out.push({ page: p, access, source: -1, protection: false });
  return out;
}

/**
 * dmirror's own fault servicing (lib/test_hmm.c's dmirror_fault): after a round that
 * faulted, every page from the lowest fault to the end of the command, in 64-page
 * hmm_range_fault ranges, each with its own mmu_interval_read_begin / mmap_read_lock /
 * hmm_range_fault / read_retry loop and HMM_RANGE_DEFAULT_TIMEOUT — so a fresh buffer needs
 * exactly one fault round, as the selftests expect. (setServicer's experiment options keep
 * batching, coalescing windows and the other protocols; atomic commands use the 2 MiB
 * windows here.)
 */
export const DMIRROR_SERVICER: Partial<ServicerOptions> = {
  batchSize: Infinity, replay: 'once', window: 2097152, coalesce: true, protocol: 'seq',
  timeoutMs: HMM_RANGE_DEFAULT_TIMEOUT, restOfRangeOnOverflow: true, rangePages: 64,
};
/** Options that shape the servicing: setting any selects the batching/coalescing servicer. */
export const SERVICER_SHAPE: readonly (keyof Omit<ServicerOptions, 'policy'>)[] = ['batchSize', 'replay', 'window', 'coalesce', 'protocol', 'fallbackAfter'];
