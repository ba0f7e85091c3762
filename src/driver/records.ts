/**
 * Per-batch fault-servicing records, like the SC'21 uvm-eval logs (Allen & Ge): what each
 * batch fetched, how much coalescing removed, what servicing cost. Totals and histograms
 * are derived from the list, never kept twice.
 */

/** The parts of a batch's service, in order (recorded by phases.ts; what each is: there). */
export const SERVICE_PHASES = ['fetch', 'mmap lock wait', 'mmap lock held', 'coalesce', 'policy', 'migration', 'hmm_range_fault', 'mirror update'] as const;
export type ServicePhase = (typeof SERVICE_PHASES)[number];

export interface PhaseSpan {
  phase: ServicePhase;
  /** ms from the start of the batch's service. */
  start: number;
  end: number;
}

export interface BatchRecord {
  /** Batch number within the run, from 0. */
  index: number;
  /** Scheduler ms since the recorder started, when the batch was fetched. */
  t: number;
  /** Replay round whose faults this batch holds. */
  round: number;
  fetched: number;
  duplicates: number;
  /** Faults for pages the mirror had already serviced when the batch was processed. */
  stale: number;
  /** Faults dropped by AMD's recently-validated filter. */
  recent: number;
  unique: number;
  groups: number;
  rangeFaults: number;
  /** Retries of the protocol loop (sequence moved, range invalid, EAGAIN). */
  retries: number;
  /** Groups that gave up with EBUSY (retry timeout). */
  ebusy: number;
  /** lock-fallback: times the mmap lock was taken for write. */
  fallbacks: number;
  /** Contiguous runs written into the mirror page table. */
  mirrorWrites: number;
  mmapLockWaitMs: number;
  mmapLockHoldMs: number;
  serviceMs: number;
  /** Service pass (bottom-half run) that took this batch: ServicePass, uvm_parent_gpu_service_replayable_faults. */
  pass?: number;
  /** How the buffer was flushed after it (BATCH_FLUSH: re-read PUT above 50 % duplicates). */
  flush?: 'none' | 'cached-put' | 'update-put';
  /**
   * The GPU's workgroup-TLB statistics of the round whose faults this batch holds
   * (RoundResult.tlb: lookups, page walks; hit rate = 1 - walks / lookups). Per round, not summed.
   */
  tlbLookups?: number;
  tlbWalks?: number;
  /** Faults the policy throttled (skipped, replayed later). */
  throttled?: number;
  /** The process whose mirror serviced it, when a run has several (its index in the run). */
  proc?: number;
  /** The service's parts as spans from the batch's start (phases.ts): fetch, lock, coalesce, hmm_range_fault, ... */
  spans?: PhaseSpan[];
  /** ms per part over the whole batch (every span, kept or not). */
  phaseMs?: Partial<Record<ServicePhase, number>>;
}

export function emptyRecord(index: number, t: number, round: number): BatchRecord {
  return {
    index, t, round, fetched: 0, duplicates: 0, stale: 0, recent: 0, unique: 0, groups: 0, rangeFaults: 0,
    retries: 0, ebusy: 0, fallbacks: 0, mirrorWrites: 0, mmapLockWaitMs: 0, mmapLockHoldMs: 0, serviceMs: 0,
  };
}

export type Totals = Omit<BatchRecord, 'index' | 't' | 'round'> & { batches: number; rounds: number };

const SUMMED = [
  'fetched', 'duplicates', 'stale', 'recent', 'unique', 'groups', 'rangeFaults', 'retries', 'ebusy', 'fallbacks',
  'mirrorWrites', 'mmapLockWaitMs', 'mmapLockHoldMs', 'serviceMs',
] as const;

export function totals(records: readonly BatchRecord[]): Totals {
  const t = { batches: records.length, rounds: new Set(records.map((r) => r.round)).size } as Totals;
  for (const k of SUMMED) t[k] = 0;
  for (const r of records) for (const k of SUMMED) t[k] += r[k];
  return t;
}

/** Power-of-two buckets: [0], [1], [2,3], [4,7], ... — the uvm-eval histogram shape. */
export function histogram(values: readonly number[]): { lo: number; hi: number; count: number }[] {
  const buckets = new Map<number, number>();
  for (const v of values) {
    const b = v <= 0 ? -1 : Math.floor(Math.log2(v));
    buckets.set(b, (buckets.get(b) ?? 0) + 1);
  }
  return [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([b, count]) => (
    b < 0 ? { lo: 0, hi: 0, count } : { lo: 2 ** b, hi: 2 ** (b + 1) - 1, count }));
}
