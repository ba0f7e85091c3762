/**
 * A uTLB that stalls on its outstanding faults (the run setting `utlbFaults`, `--utlb-faults N`
 * in src/experiment/schema.ts; absent or 0 = no limit, the default but for the published preset's TBN-fits cells).
 *
 * Without it a round records a fault for every page any invocation misses (one record per
 * (uTLB, page): mirror-common.wgsl's pending filter), all before any service: the whole
 * launch's misses reach the fault buffer at once. In a cycle-level GPU model the misses reach
 * the fault handler spread over time instead: in GPGPU-Sim UVM_Smart a warp's load that misses
 * waits in the GMMU (gmmu_t::cycle's page_table_walk_queue, then req_info) and the warp stalls
 * on it, while the accesses that come later and land in a page already being migrated, its
 * prefetched neighbours included, merge into that page's entry (mf_page_fault_pending) and
 * are never far faults. This setting models that order on the round model: of a round's
 * records, each uTLB keeps its `limit` lowest pages (deterministic: the lowest first, as a
 * stream's warps reach them), the others count as never issued — the uTLB stalled on its
 * outstanding faults first. Nothing is lost: an invocation with a miss is not done, so it
 * runs again next round and faults then if its page is still missing.
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

export function issueLimit(records: readonly FaultRecord[], limit: number | undefined): readonly FaultRecord[] {
  if (limit === undefined || limit <= 0 || records.length === 0) return records;
  const bySource = new Map<number, FaultRecord[]>();
  for (const r of records) {
    const list = bySource.get(r.source);
    if (list === undefined) bySource.set(r.source, [r]);
    else list.push(r);
  }
  const out: FaultRecord[] = [];
  for (const list of bySource.values()) {
    if (list.length <= limit) {
      out.push(...list);
      continue;
    }
    const pages = [...new Set(list.map((r) => r.page))].sort((a, b) => a - b).slice(0, limit);
    const keep = new Set(pages);
    for (const r of list) if (keep.has(r.page)) out.push(r);
  }
  return out;
}
