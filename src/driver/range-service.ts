/**
 * dmirror's own fault service (lib/test_hmm.c's dmirror_fault): after a round that faulted,
 * every page from the lowest fault to the end of the command, in `rangePages` (64: its
 * pfns[64]) hmm_range_fault ranges, each through dmirror_range_fault — retry.ts's one loop
 * with its own mmu_interval_read_begin / mmap_read_lock / hmm_range_fault / read_retry and
 * HMM_RANGE_DEFAULT_TIMEOUT — so a fresh buffer needs exactly one fault round, as the
 * selftests expect. Atomic commands (test_hmm has no atomic fault) take the batch service's
 * path for their rounds (dmirror_exclusive's make_device_exclusive).
 */
import type { FaultRecord } from '../device/fault-queue.js';
import type { RoundResult } from '../device/mirror-engine.js';
import { PAGE_SIZE } from '../mm/constants.js';
import { BatchFaultService } from './batch-service.js';
import { ServiceCore, type CommandRange, type CommandServicing } from './fault-service.js';
import { emptyRecord } from './records.js';
import { beginPhases } from './phases.js';
import { dmirrorRangeFault, type MirrorTarget } from './retry.js';
import type { ServicerOptions } from './service-options.js';

export class RangeFaultService extends ServiceCore {
  readonly kind = 'range';
  /** Atomic commands' rounds: coalesced 2 MiB windows, make_device_exclusive (same records). */
  readonly #atomic: BatchFaultService;

  constructor(target: MirrorTarget, opts: ServicerOptions) {
    super(target, opts);
    if (!(opts.rangePages >= 1)) throw new Error(`range service needs rangePages ≥ 1, not ${opts.rangePages}`);
    this.#atomic = new BatchFaultService(target, opts, this.records);
  }

  protected servicing(cmd: CommandRange): CommandServicing {
    if (cmd.op === 'atomic') return this.#atomic.commandServicing(cmd);
    return {
      backlog: () => 0,
      // dmirror_fault fails the whole command on a bad page (it throws): nothing is fatal per uTLB.
      service: async (r: RoundResult, round: number) => {
        await this.#dmirrorFault(r.faults, r.overflow, round, cmd);
        return [];
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
    const rec = emptyRecord(this.records.length, sched.now() - this.t0, round);
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
}
