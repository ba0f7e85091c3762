/**
 * The parts of one fault batch's service, as spans its record carries up (data, not
 * callbacks): what UVM's service_fault_batch goes through, in order —
 *
 *   fetch             the batch's entries taken from the fault buffer (fetch_fault_buffer_entries)
 *   mmap lock wait    mmap_read_lock until granted (the batch's lock; valid-flag takes none)
 *   mmap lock held    from the grant to the unlock: every part below runs inside it
 *   coalesce          dedup, stale filter, windows (preprocess_fault_batch)
 *   policy            the migration policy's decisions (uvm_perf_thrashing_get_hint, prefetch)
 *   migration         migrate_vma in / eviction home (make_resident)
 *   hmm_range_fault   the fault and its retries (mmu_interval_read_begin → hmm_range_fault)
 *   mirror update     the update lock, mmu_interval_read_retry and the device page-table write
 *
 * Times are ms on the servicer's scheduler clock (the one serviceMs is measured on), from
 * the start of the batch's service. Contiguous spans of one part merge; a batch keeps at most
 * MAX_BATCH_SPANS (the rest of a long batch's parts are counted in `phaseMs` only).
 */
import type { BatchRecord, ServicePhase } from './records.js';

/** Spans one batch record keeps. */
export const MAX_BATCH_SPANS = 32;

/** When each record's service began (its spans' origin): set by the batch service, read by its parts. */
const origin = new WeakMap<BatchRecord, number>();

/** The batch service starts recording `rec`'s parts from `t0` (scheduler ms). */
export function beginPhases(rec: BatchRecord, t0: number): void {
  origin.set(rec, t0);
  rec.spans = [];
  rec.phaseMs = {};
}

/** [from, to) (scheduler ms) of `rec`'s service went to `phase`. A record not begun is left as is. */
export function notePhase(rec: BatchRecord | undefined, phase: ServicePhase, from: number, to: number): void {
  if (rec === undefined) return;
  const t0 = origin.get(rec);
  if (t0 === undefined || rec.spans === undefined || rec.phaseMs === undefined || !(to >= from)) return;
  rec.phaseMs[phase] = (rec.phaseMs[phase] ?? 0) + (to - from);
  const start = from - t0;
  const end = to - t0;
  const last = rec.spans[rec.spans.length - 1];
  // Contiguous with the last span, of the same part (nothing else began since): one span.
  if (last !== undefined && last.phase === phase && start - last.end < 1e-9) {
    last.end = end;
    return;
  }
  // The lock's hold (noted last, around the parts) is always kept: it frames them.
  if (rec.spans.length < MAX_BATCH_SPANS || phase === 'mmap lock held') rec.spans.push({ phase, start, end });
}
