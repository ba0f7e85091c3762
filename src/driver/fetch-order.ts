/**
 * Which faults a batch fetches when the fault buffer holds more than a batch (with a policy).
 *
 * UVM fetches the OLDEST entries: fetch_fault_buffer_entries (uvm_gpu_replayable_faults.c)
 * reads up to uvm_perf_fault_batch_count entries from GET, in arrival order, and only then
 * sorts the fetched batch by address (preprocess_fault_batch's sort of the ordered fault
 * cache). Under BATCH_FLUSH what it did not fetch is flushed and faults again after the
 * replay; a warp that is still waiting keeps faulting, so its fault is not overtaken forever.
 *
 * Our ring's arrival order is the race of the GPU's threads on PUT, so it cannot decide a run
 * that must be the same for a seed. The stand-in keeps UVM's FIFO in deterministic form: a
 * page's age is the round since which it has been faulting without being fetched, the
 * buffer is ordered oldest first (ties by address, uTLB, access), and the fetched batch is
 * sorted by address as UVM sorts it. A fault left over by a flush keeps its age, so every
 * fault is fetched within (older faults / batch size) passes.
 *
 * (Ordering the whole buffer by address instead — what the service did before — starves the
 * highest pages: backprop's weight-update launch at 110 % reads hidden_delta, the last page
 * of its buffer, in every invocation, and with 3,000+ lower faults a round that page was
 * never in a batch; no invocation ever completed while LRU-2M evicted and refetched the
 * rest, 10,000 rounds at about half a second each.)
 */
import type { FaultAccess, FaultRecord } from '../device/fault-queue.js';

const ACCESS_RANK: Readonly<Record<FaultAccess, number>> = { read: 0, write: 1, atomic: 2 };

/** Address order (then uTLB, access, protection): the order UVM services a fetched batch in. */
export function byAddress(a: FaultRecord, b: FaultRecord): number {
  return a.page - b.page || a.source - b.source || ACCESS_RANK[a.access] - ACCESS_RANK[b.access] || Number(a.protection) - Number(b.protection);
}

export class FaultAges {
  /** page -> the round since which it has been waiting in the buffer, not fetched. */
  #since = new Map<number, number>();

  /**
   * Orders `buffer` (this round's faults and any held over) oldest first, in place; pages no
   * longer in it forget their age (they were serviced some other way: a prefetch, a neighbour).
   */
  order(buffer: FaultRecord[], round: number): FaultRecord[] {
    const next = new Map<number, number>();
    for (const f of buffer) if (!next.has(f.page)) next.set(f.page, this.#since.get(f.page) ?? round);
    this.#since = next;
    return buffer.sort((a, b) => next.get(a.page)! - next.get(b.page)! || byAddress(a, b));
  }

  /** A batch was fetched: its pages are no longer waiting (a later fault on one is a new one). */
  fetched(batch: readonly FaultRecord[]): void {
    for (const f of batch) this.#since.delete(f.page);
  }

  /** The round since which `page` has been waiting (undefined: it is not). */
  since(page: number): number | undefined {
    return this.#since.get(page);
  }
}
