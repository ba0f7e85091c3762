/**
 * A uTLB that stalls on its outstanding faults (the run setting `utlbFaults`, `--utlb-faults N`
 * in src/experiment/schema.ts; absent or 0 = no limit, the default but for the published preset's TBN-fits cells).
 *
 * Without it a round records a fault for every page any invocation misses (one record per
 * (uTLB, page, access kind): mirror-common.wgsl's pending filter), all before any service:
 * the whole launch's misses reach the fault buffer at once. In a cycle-level GPU model the misses reach
 * the fault handler spread over time instead: in GPGPU-Sim UVM_Smart a warp's load that misses
 * waits in the GMMU (gmmu_t::cycle's page_table_walk_queue, then req_info) and the warp stalls
 * on it, while the accesses that come later and land in a page already being migrated, its
 * prefetched neighbours included, merge into that page's entry (mf_page_fault_pending) and
 * are never far faults. This setting models that order on the round model: of a round's
 * records, each uTLB keeps `limit` pages, the first of its queue (below) — the others count
 * as never issued: the uTLB stalled on its outstanding faults first. Nothing is lost: an
 * invocation with a miss is not done, so it runs again next round and faults then if its page
 * is still missing.
 *
 * Which pages go first is the uTLB's queue of waiting misses, FIFO (UVM_Smart's
 * gmmu_t::page_table_walk_queue takes misses in arrival order): a miss not issued keeps its
 * place, so the oldest waiting page goes first, the lowest page breaking ties (the misses of
 * one round arrive together). A pure lowest-page order starves high pages under eviction:
 * backprop TBN + LRU-2M at 110 % re-faulted its evicted low pages ahead of the high ones its
 * invocations also waited on, every round, and no invocation completed (40,496 pages in, 39,040
 * out in 501 rounds, the watchdog). In the FIFO a re-faulting page queues behind them.
 *
 * The limit is a model setting, not a measured hardware figure: no source read here gives
 * NVIDIA's per-uTLB outstanding-fault limit, so it is off by default. UVM_Smart's GPU model does
 * give one, and the `published` preset's TBN cells that fit run with 1 (src/experiment/published.ts
 * PUBLISHED_STALLING_ISSUE): its shader.cc ldst_unit::access_cycle sends a TLB miss to the GMMU, marks
 * the access stall_far_fetch and returns false until the GMMU hands that warp's fetch back, and
 * ldst_unit::cycle returns on that false before any other access: one far fetch outstanding per
 * SM's memory pipeline.
 */
import type { FaultRecord } from '../device/fault-queue.js';

/** A command's uTLBs stalled on their outstanding faults, across its rounds: the queue of each. */
export class StallingIssue {
  /** uTLB -> page -> the round since which its miss has waited, not issued. */
  #waiting = new Map<number, Map<number, number>>();

  constructor(readonly limit: number | undefined) {}

  /**
   * The records of `round` that the uTLBs issue: per uTLB its `limit` oldest waiting pages
   * (then lowest), every record of each. A page of the round not issued keeps waiting; a page
   * no longer missed leaves the queue (brought in some other way: a prefetch, a neighbour).
   */
  issue(records: readonly FaultRecord[], round: number): readonly FaultRecord[] {
    const limit = this.limit;
    if (limit === undefined || limit <= 0) return records;
    const bySource = new Map<number, FaultRecord[]>();
    for (const r of records) {
      const list = bySource.get(r.source);
      if (list === undefined) bySource.set(r.source, [r]);
      else list.push(r);
    }
    const out: FaultRecord[] = [];
    const waiting = new Map<number, Map<number, number>>();
    for (const [source, list] of bySource) {
      const before = this.#waiting.get(source);
      const since = new Map<number, number>();
      for (const r of list) if (!since.has(r.page)) since.set(r.page, before?.get(r.page) ?? round);
      if (since.size <= limit) {
        out.push(...list);
        continue;
      }
      const issued = new Set([...since.keys()].sort((a, b) => since.get(a)! - since.get(b)! || a - b).slice(0, limit));
      for (const r of list) if (issued.has(r.page)) out.push(r);
      for (const p of issued) since.delete(p);
      waiting.set(source, since);
    }
    this.#waiting = waiting;
    return out;
  }
}
