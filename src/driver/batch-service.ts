/**
 * UVM's batched fault service (uvm_gpu_replayable_faults.c's
 * uvm_parent_gpu_service_replayable_faults): fetch up to `batchSize` fault records at a
 * time from what the round left in the fault buffer, coalesce them (coalesce.ts), service
 * every group through the chosen retry protocol (retry.ts's one loop) under one mmap lock
 * per batch — or hand the batch to the mirror's migration policy (PolicyPath) — and replay
 * when the replay policy says:
 *
 *   'block'        after each serviced group (UVM_PERF_FAULT_REPLAY_POLICY_BLOCK)
 *   'batch'        after each batch; the rest of the buffer is serviced after the replay
 *   'batch-flush'  after each batch, dropping the rest of the buffer first (UVM's default):
 *                  the replay regenerates whatever is still missing
 *   'once'         after every batch in the buffer was serviced
 *
 * A pass's limits and flush mode are the ServicePass state machine (src/policy/service-loop.ts).
 * Faults the mirror already satisfies by the time their batch is processed are dropped as
 * stale (UVM's "fault already serviced" check), so replaying early never double-services.
 */
import type { FaultRecord } from '../device/fault-queue.js';
import type { RoundResult } from '../device/mirror-engine.js';
import type { FatalFault } from '../device/replay.js';
import { err } from '../errors.js';
import { PAGE_SIZE } from '../mm/constants.js';
import { ServicePass } from '../policy/service-loop.js';
import { coalesce, perFault, windowBytes, type CoalesceResult, type FaultGroup } from './coalesce.js';
import { ServiceCore, type CommandRange, type CommandServicing } from './fault-service.js';
import { byAddress, FaultAges } from './fetch-order.js';
import { emptyRecord, type BatchRecord } from './records.js';
import { beginPhases, notePhase } from './phases.js';
import { dmirrorAtomicMap, serviceRange, type LockState, type MirrorTarget } from './retry.js';
import type { ServicerOptions } from './service-options.js';
import { StallingIssue } from './utlb-issue.js';

export class BatchFaultService extends ServiceCore {
  readonly kind = 'batch';
  /** When each 'amd' window block was last validated (UVM's per-block service timestamp). */
  readonly #validatedAt = new Map<number, number>();
  /** Service passes so far (each round that faulted starts one). */
  #passes = 0;

  /** `records`: the log to append to (the range service's, for its atomic commands). */
  constructor(target: MirrorTarget, opts: ServicerOptions, records?: BatchRecord[]) {
    super(target, opts, records);
    if (!(opts.batchSize >= 1)) throw err('EINVAL', `batch size ${opts.batchSize}`);
  }

  protected servicing(cmd: CommandRange): CommandServicing {
    return this.commandServicing(cmd);
  }

  /** A command's rounds, batched: faults not serviced yet (a 'batch' replay) are held over to the next round's service. */
  commandServicing(cmd: CommandRange): CommandServicing {
    let buffer: FaultRecord[] = [];
    let overflow = false;
    // With a policy: which faults a batch fetches is decided by age, not by the GPU's race (fetch-order.ts).
    const ages = this.opts.policy ? new FaultAges() : null;
    const stall = new StallingIssue(this.opts.utlbFaults);
    this.opts.policy?.commandStart();
    const service = async (r: RoundResult, round: number): Promise<FatalFault[]> => {
      const fatal: FatalFault[] = [];
      // A uTLB stalled on its outstanding faults issued no more (utlbFaults; default: no limit).
      buffer = buffer.concat(stall.issue(r.faults, round));
      // UVM fetches the oldest faults and sorts each fetched batch by address: with a policy,
      // which faults a batch holds must not depend on the order the GPU recorded them in, so
      // the buffer is ordered by how long each page has waited (fetch-order.ts), not by address.
      if (ages !== null) ages.order(buffer, round);
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
        if (ages !== null) {
          ages.fetched(batch);
          batch.sort(byAddress); // preprocess_fault_batch's sort
        }
        const { leftover, rec } = await this.#serviceBatch(batch, round, cmd, fatal, fetched);
        if (leftover.length > 0) buffer = leftover.concat(buffer);
        rec.pass = this.#passes;
        rec.flush = pass.batchDone({ fetched: rec.fetched, duplicates: rec.duplicates, throttled: (rec.throttled ?? 0) > 0 }).flush;
        if (this.opts.replay === 'batch-flush') buffer = [];
      } while (buffer.length > 0 && this.opts.replay === 'once');
      overflow = false;
      // The counters' notifications so far, before the replay: UVM services them while the
      // kernel runs (uvm_gpu_access_counters.c), not once it has ended.
      await this.opts.policy?.serviceCounters(cmd.accessCounts ?? null);
      return fatal;
    };
    return { backlog: () => buffer.length, service };
  }

  /**
   * One batch: coalesce, then service its groups under one mmap lock. Returns unserviced
   * faults ('block'); adds the batch's fatal faults (no VMA) to `fatal`, its other faults
   * serviced as usual (UVM services a batch's other faults and cancels the fatal ones' uTLBs).
   */
  async #serviceBatch(batch: FaultRecord[], round: number, cmd: CommandRange, fatal: FatalFault[], fetched: number): Promise<{ leftover: FaultRecord[]; rec: BatchRecord }> {
    const t = this.target;
    const sched = t.mm.core.sched;
    const rec = emptyRecord(this.records.length, fetched - this.t0, round);
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
      if (c.holes.length > 0 || c.denied.length > 0) {
        const holes = new Set(c.holes);
        const denied = new Map(c.denied.map((d) => [d.page, d.readable]));
        for (const f of batch) {
          if (holes.has(f.page)) fatal.push({ page: f.page, access: f.access, source: f.source, reason: 'no VMA' });
          // A read of a page denied for another uTLB's write is not fatal: it faults again and is serviced.
          else if (denied.has(f.page) && (f.access !== 'read' || !denied.get(f.page))) {
            fatal.push({ page: f.page, access: f.access, source: f.source, reason: `${f.access} the VMA does not allow` });
          }
        }
      }
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

