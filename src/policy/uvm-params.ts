/**
 * NVIDIA UVM's parameters as one versioned set, so a result names the driver it models
 * (`--uvm 575|590`, default the newest). Every figure is the module parameter's default in
 * NVIDIA/open-gpu-kernel-modules kernel-open/nvidia-uvm (read through the search index):
 *
 *   faultBatchCount         256  uvm_perf_fault_batch_count (uvm_gpu_replayable_faults.c)
 *   replayPolicy    batch-flush  uvm_perf_fault_replay_policy (UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH)
 *   maxBatchesPerService     20  uvm_perf_fault_max_batches_per_service
 *   maxThrottlePerService     5  uvm_perf_fault_max_throttle_per_service
 *   replayUpdatePutRatio     50  uvm_perf_fault_replay_update_put_ratio (% duplicates -> UPDATE_PUT flush)
 *   thrashing            (thrashing.ts) uvm_perf_thrashing_{threshold 3, pin_threshold 10,
 *                        lapse_usec 500, nap 1, epoch 2000, pin 300, max_resets 4}
 *   prefetchThreshold        51  uvm_perf_prefetch_threshold (uvm_perf_prefetch.c)
 *   bigPagePages             16  64 KiB big pages (grow_fault_granularity)
 *   accessCounters               uvm_gpu_access_counters.c: granularity 2M, threshold 256, batch
 *                                256; migrations off by default on x86 without ATS
 *                                (uvm_perf_access_counter_migration_enable -1 = the platform's
 *                                default: MIMC on only on ATS systems)
 *   cpuFaultPages            16  a CPU fault on a device page brings its 64 KiB big page home
 *                                (uvm_va_block_cpu_fault -> the same prefetch/thrashing path)
 *
 * 575 is the version gpu_ext patches (575.57). 590: the stored sources show the same defaults
 * for every parameter above. The adaptive thrashing lapse anchors.md attributes to 590+
 * (adjust_thrashing_lapse) is in no stored source: uvm_perf_thrashing.c of 535.86.05
 * (NVIDIA/open-gpu-kernel-modules 10d538d), 570.123.07 (4d941c0) and a fork past 570
 * (m-santh/open-gpu-kernel-modules 009d73d, with managed_range) all compare every event with
 * the fixed va_space params.lapse_ns (thrashing_event_cb: block and page checks), set once
 * from uvm_perf_thrashing_lapse_usec; no function changes it, and the only adaptive state is
 * the per-block reset count (thrashing_reset_count vs uvm_perf_thrashing_max_resets, 4),
 * which both versions model (thrashing.ts). No 590 source is stored, so 590 is NOT given a
 * lapse rule nobody can check: it runs 575's fixed 500 µs lapse and says so in its `notes`.
 */
import { THRASHING_DEFAULTS, type ThrashingParams } from './thrashing.js';

export const UVM_VERSIONS = ['575', '590'] as const;
export type UvmVersion = (typeof UVM_VERSIONS)[number];
export const DEFAULT_UVM: UvmVersion = '590';

export interface UvmAccessCounterParams {
  /** Counter-driven migration (off by default on x86 without ATS). */
  readonly migrationEnabled: boolean;
  /** Pages one counter tracks (512 = 2 MiB). */
  readonly granularityPages: number;
  readonly threshold: number;
  readonly batchCount: number;
  /** Pages a serviced notification migrates around each accessed page (16 = 64 KiB sub-regions). */
  readonly subregionPages: number;
}

export interface UvmParams {
  readonly version: UvmVersion;
  readonly faultBatchCount: number;
  readonly replayPolicy: 'block' | 'batch' | 'batch-flush' | 'once';
  readonly maxBatchesPerService: number;
  readonly maxThrottlePerService: number;
  readonly replayUpdatePutRatio: number;
  readonly thrashing: Readonly<ThrashingParams>;
  readonly prefetchThreshold: number;
  readonly bigPagePages: number;
  readonly accessCounters: UvmAccessCounterParams;
  readonly cpuFaultPages: number;
  /** What this version's model leaves out, in words (printed with results). */
  readonly notes: readonly string[];
}

const UVM_575: UvmParams = Object.freeze({
  version: '575',
  faultBatchCount: 256,
  replayPolicy: 'batch-flush',
  maxBatchesPerService: 20,
  maxThrottlePerService: 5,
  replayUpdatePutRatio: 50,
  thrashing: THRASHING_DEFAULTS,
  prefetchThreshold: 51,
  bigPagePages: 16,
  accessCounters: Object.freeze({ migrationEnabled: false, granularityPages: 512, threshold: 256, batchCount: 256, subregionPages: 16 }),
  cpuFaultPages: 16,
  notes: Object.freeze([]),
});

const UVM_590: UvmParams = Object.freeze({
  ...UVM_575,
  version: '590',
  notes: Object.freeze(['adaptive thrashing lapse not modelled: no stored UVM source has one (535, 570 checked: fixed lapse_ns); 575\'s fixed 500 µs lapse']),
});

const SETS: Readonly<Record<UvmVersion, UvmParams>> = Object.freeze({ 575: UVM_575, 590: UVM_590 });

/** The parameter set of a driver version; anything else is a RangeError naming it. */
export function uvmParams(version: string = DEFAULT_UVM): UvmParams {
  const v = version.trim();
  if (!(UVM_VERSIONS as readonly string[]).includes(v)) {
    throw new RangeError(`UVM version '${version}' does not exist (known: ${UVM_VERSIONS.join(', ')})`);
  }
  return SETS[v as UvmVersion];
}
