/**
 * How a mirror services device faults, as data (ServicerOptions): which of the two fault
 * services (servicer.ts's createFaultService picks) and how it batches, coalesces, replays
 * and retries.
 */
import type { WindowPolicy } from './coalesce.js';
import type { PolicyPath } from './policy-path.js';
import { HMM_RANGE_DEFAULT_TIMEOUT, type RetryProtocol } from './retry.js';

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
   * lock and timeout): the range service. Atomic commands keep the coalesced path (test_hmm has none).
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
  /** A uTLB's outstanding faults a round (utlb-issue.ts); absent or 0: no limit. */
  utlbFaults?: number;
}

export const DEFAULT_SERVICER: ServicerOptions = {
  batchSize: 256, replay: 'batch-flush', window: 2097152, coalesce: true, protocol: 'seq',
  timeoutMs: HMM_RANGE_DEFAULT_TIMEOUT, fallbackAfter: 3, restOfRangeOnOverflow: false, rangePages: 0,
  maxBatchesPerService: 20, maxThrottlePerService: 5, replayUpdatePutRatio: 50,
};

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
