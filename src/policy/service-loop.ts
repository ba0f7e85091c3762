/**
 * One pass of NVIDIA UVM's replayable-fault service loop (uvm_gpu_replayable_faults.c,
 * uvm_parent_gpu_service_replayable_faults), as a state machine the driver's servicer steps:
 *
 *   - a pass (one run of the bottom half) services at most maxBatchesPerService (20) batches
 *     and stops early once maxThrottlePerService (5) of its batches had throttled faults: the
 *     loop's first test, before each fetch. What is left in the fault buffer waits for the
 *     next pass (the next interrupt).
 *   - after each batch under BATCH_FLUSH the buffer is flushed and a replay pushed; the flush
 *     re-reads PUT (UVM_GPU_BUFFER_FLUSH_MODE_UPDATE_PUT) when the batch was more than
 *     replayUpdatePutRatio (50) % duplicates — num_duplicate_faults * 100 >
 *     num_cached_faults * ratio — else it uses the cached PUT.
 *   - BATCH replays after each batch without flushing; ONCE replays at the end of the pass;
 *     a pass that issued no replay issues one at its end ("to avoid dropping faults").
 */
import type { UvmParams } from './uvm-params.js';

export type FlushMode = 'none' | 'cached-put' | 'update-put';

export interface BatchOutcome {
  /** Faults fetched into the batch (num_cached_faults) and how many were duplicates. */
  fetched: number;
  duplicates: number;
  /** Whether any of its faults was throttled (batch_context->has_throttled_faults). */
  throttled: boolean;
}

export interface AfterBatch {
  replay: boolean;
  flush: FlushMode;
}

export type PassLimits = Pick<UvmParams, 'maxBatchesPerService' | 'maxThrottlePerService' | 'replayUpdatePutRatio' | 'replayPolicy'>;

export class ServicePass {
  readonly limits: PassLimits;
  #batches = 0;
  #throttled = 0;
  #replays = 0;

  constructor(limits: PassLimits) {
    this.limits = limits;
  }

  get batches(): number {
    return this.#batches;
  }
  get throttledBatches(): number {
    return this.#throttled;
  }
  get replays(): number {
    return this.#replays;
  }

  /** The loop's test before each fetch: may this pass fetch another batch? */
  canFetch(): boolean {
    return this.#throttled < this.limits.maxThrottlePerService && this.#batches < this.limits.maxBatchesPerService;
  }

  /** A batch was serviced: what the replay policy does now. */
  batchDone(b: BatchOutcome): AfterBatch {
    let out: AfterBatch = { replay: false, flush: 'none' };
    if (this.limits.replayPolicy === 'batch' || this.limits.replayPolicy === 'block') {
      out = { replay: true, flush: 'none' };
    } else if (this.limits.replayPolicy === 'batch-flush') {
      const update = b.duplicates * 100 > b.fetched * this.limits.replayUpdatePutRatio;
      out = { replay: true, flush: update ? 'update-put' : 'cached-put' };
    }
    if (out.replay) this.#replays++;
    if (b.throttled) this.#throttled++;
    this.#batches++;
    return out;
  }

  /** The pass ends: whether it pushes a replay now (ONCE, or no replay was issued yet). */
  end(): boolean {
    const replay = this.limits.replayPolicy === 'once' || this.#replays === 0;
    if (replay) this.#replays++;
    return replay;
  }
}
