/**
 * The cost model and the virtual clock. Every figure is an integer number of nanoseconds (or
 * bytes per second), so a run's simulated time is a pure function of its inputs: no wall clock,
 * no floating accumulation (each charge is rounded up to whole ns before it is added).
 *
 * Defaults and their sources (../shared/reference/anchors.md):
 *   transfer       'curve': GPGPU-Sim UVM_Smart's gmmu_t::calculate_transfer_time
 *                  (src/gpgpu-sim/gpu-sim.cc, read through the search index): one transfer of
 *                  S bytes runs at speed = 2a/π·atan(b·S/1024) GiB/s, a = 12 for 16 GB/s PCIe
 *                  (curve_a), b = 0.07292 (curve_b), halved when S ≥ 2 MiB; each contiguous run
 *                  of pages is one transfer (transferRunsNs). 'flat': bytes / bandwidth.
 *   faultGroupNs   45 µs  UVM_Smart's page-fault latency (far-fault service), per batch
 *   faultNs        0      UVM_Smart charges per batch only. The 'measured' model fits a per-batch
 *                         plus per-fault line to nvprof's fault groups on a GTX 1080 (2 faults
 *                         40 µs, 27 faults 69 µs: elalish/manifold#120): 37.68 µs + 1.16 µs a fault
 *   bandwidth      16 GB/s UVM_Smart's PCIe 3.0 x16 interconnect (the flat model's rate)
 *   launchNs       150 µs  UVM_Smart's kernel launch overhead
 *   gpuMemBytesPerSec 484 GB/s  the modelled GPU's DRAM bandwidth for the roofline kernel
 *                         charge (computeNs): GTX 1080 Ti, UVM_Smart's configs/GeForceGTX1080Ti
 *                         (352-bit GDDR5X at 11 Gbps, NVIDIA's specification)
 *   remoteAccessNs 1 µs    [memory] one PCIe read round trip for zero-copy accesses, charged
 *                         once a round (a round's accesses overlap); no anchor gives a figure,
 *                         so it is a knob, not a measurement
 *   remoteAccessBytes 128  [memory] one GPU L2 line a remote access moves, at `bandwidth`
 *   cpuFaultNs     45 µs   the far-fault latency again for migrate_to_ram: no anchor measures
 *                         the CPU side separately (Xe SVM's per-fault migration, 130-165 µs, is
 *                         an upper reference)
 *   farFaultNs     0       (uvm-smart-serial: 45 µs) charged once per far fault, serially: UVM_Smart's
 *                         own accounting of its logged time. gpu-sim.cc calculate_sim_prof, with
 *                         -enable_accurate_simulation 0 (its logs' setting), prints
 *                         Tot_kernel_exec_time_and_fault_time = kernel_time +
 *                         mf_page_fault_outstanding × page_fault_latency (66,645 core cycles at
 *                         1,481 MHz = 45.0 µs; do_hardware_prefetch adds one
 *                         mf_page_fault_outstanding per page of page_fault_this_turn, a far fault)
 *   faultTransfer  'run'   (uvm-smart-serial: 'page') how a fault's own page is copied: 'run' with
 *                         the contiguous run it lies in; 'page' as a transfer of its own, as
 *                         UVM_Smart's do_hardware_prefetch ends a PCIE_READ at each faulted page
 *                         (on-demand: every page one 4 KiB transfer, ~1.76 µs on the curve)
 */
export const PAGE_SIZE = 4096;

export type TransferModel = 'flat' | 'curve';

/** How a faulted page's own copy is charged: with its contiguous run, or as a transfer of its own. */
export type FaultTransfer = 'run' | 'page';

export interface CostModel {
  readonly name: string;
  /** How a transfer's time follows its size: UVM_Smart's curve or a flat rate. */
  readonly transfer: TransferModel;
  /** The curve's a (GiB/s asymptote x 2/π; 12 for 16 GB/s PCIe) and b (per KiB). */
  readonly curveA: number;
  readonly curveB: number;
  /** Fixed cost of servicing one device fault group (batch). */
  readonly faultGroupNs: number;
  /** Extra cost per faulted page in a group. */
  readonly faultNs: number;
  /** CPU fault on a device page (migrate_to_ram), before the copy. */
  readonly cpuFaultNs: number;
  /** Interconnect bandwidth, bytes per second, each way (the flat model's rate). */
  readonly bandwidthBytesPerSec: number;
  /** Latency of remote accesses, once per round that makes any (they overlap). */
  readonly remoteAccessNs: number;
  /** Bytes one remote access moves over the interconnect. */
  readonly remoteAccessBytes: number;
  /** One kernel launch. */
  readonly launchNs: number;
  /** The modelled GPU's memory bandwidth (roofline compute charge); 0 = no compute charge. */
  readonly gpuMemBytesPerSec: number;
  /** Fixed cost per evicted chunk on top of its copy (0: UVM_Smart charges the copy only). */
  readonly evictChunkNs: number;
  /** Charged per far fault (a page not on the device when its batch is serviced), added serially. */
  readonly farFaultNs: number;
  /** A faulted page's copy: with its contiguous run ('run') or one transfer a page ('page'). */
  readonly faultTransfer: FaultTransfer;
}

/** GPGPU-Sim UVM_Smart's knobs (Ganguly et al., ISCA'19 / IPDPS'20), with its transfer curve. */
export const UVM_SMART: CostModel = Object.freeze({
  name: 'uvm-smart',
  transfer: 'curve',
  curveA: 12,
  curveB: 0.07292,
  faultGroupNs: 45_000,
  faultNs: 0,
  cpuFaultNs: 45_000,
  bandwidthBytesPerSec: 16_000_000_000,
  remoteAccessNs: 1_000,
  remoteAccessBytes: 128,
  launchNs: 150_000,
  gpuMemBytesPerSec: 484_000_000_000,
  evictChunkNs: 0,
  farFaultNs: 0,
  faultTransfer: 'run',
});

/** UVM_Smart's knobs with every transfer at a flat 16 GB/s (the model before the curve). */
export const FLAT: CostModel = Object.freeze({ ...UVM_SMART, name: 'flat', transfer: 'flat' });

/** UVM_Smart with the fault-group cost measured on a GTX 1080 (pascal-um-benchmark: ~12 µs). */
export const GTX1080: CostModel = Object.freeze({ ...UVM_SMART, name: 'gtx1080', faultGroupNs: 12_000 });

/** Per-batch + per-fault service fitted to nvprof's GTX 1080 fault groups (elalish/manifold#120). */
export const MEASURED: CostModel = Object.freeze({ ...UVM_SMART, name: 'measured', faultGroupNs: 37_680, faultNs: 1_160 });

/**
 * UVM_Smart's accounting of its own logged time (`Tot_kernel_exec_time_and_fault_time`,
 * gpu-sim.cc calculate_sim_prof with -enable_accurate_simulation 0): no per-batch service
 * charge; each far fault adds its page_fault_latency (45 µs) serially, whatever batch it came
 * in; each faulted page is its own transfer (do_hardware_prefetch splits a PCIE_READ at every
 * faulted page), prefetched runs on the same size curve; the roofline compute as the default
 * model (the cycle-level kernel_time is not reproduced); no launch charge: kernel_time sums the
 * kernels' simulated cycles (kernel_stats::calculate), and its logs leave no room for 150 µs a
 * launch (bfs, TBN: 3.8 ms with 53 far faults is 1.4 ms for all of its ~20 launches and their
 * transfers). The `published` preset's clock.
 */
export const UVM_SMART_SERIAL: CostModel = Object.freeze({
  ...UVM_SMART, name: 'uvm-smart-serial', faultGroupNs: 0, faultNs: 0, farFaultNs: 45_000, faultTransfer: 'page', launchNs: 0,
});

export const DEFAULT_COST: CostModel = UVM_SMART;

/** The named cost models (--cost NAME). */
export const COST_MODELS: Readonly<Record<string, CostModel>> = Object.freeze({
  'uvm-smart': UVM_SMART, flat: FLAT, gtx1080: GTX1080, measured: MEASURED, 'uvm-smart-serial': UVM_SMART_SERIAL,
});

export const COST_MODEL_NAMES: readonly string[] = Object.freeze(Object.keys(COST_MODELS));

/**
 * ns to move `bytes` as ONE transfer, rounded up to a whole ns. 'curve': UVM_Smart's
 * calculate_transfer_time (speed in GiB/s = 2a/π·atan(b·KiB), halved at ≥ 2 MiB).
 */
export function transferNs(cost: CostModel, bytes: number): number {
  if (bytes <= 0) return 0;
  if (cost.transfer === 'flat') return Math.ceil((bytes * 1_000_000_000) / cost.bandwidthBytesPerSec);
  let gibPerSec = ((2 * cost.curveA) / Math.PI) * Math.atan(cost.curveB * (bytes / 1024));
  if (bytes >= 2 * 1024 * 1024) gibPerSec /= 2;
  return Math.ceil((bytes * 1_000_000_000) / (gibPerSec * 1024 * 1024 * 1024));
}

/**
 * ns to move `count` pages of `pages`: one transfer per contiguous run (UVM_Smart charges each
 * run of the migrated range as one transfer; a flat model gives the same total either way).
 */
export function transferRunsNs(cost: CostModel, pages: ArrayLike<number>, count: number): number {
  if (count <= 0) return 0;
  if (cost.transfer === 'flat') return transferNs(cost, count * PAGE_SIZE);
  let sorted = true;
  for (let i = 1; i < count; i++) if (pages[i] < pages[i - 1]) { sorted = false; break; }
  let list: ArrayLike<number> = pages;
  if (!sorted) list = Float64Array.from({ length: count }, (_, i) => pages[i]).sort();
  let ns = 0;
  let run = 1;
  for (let i = 1; i <= count; i++) {
    if (i < count && list[i] === list[i - 1] + 1) {
      run++;
      continue;
    }
    ns += transferNs(cost, run * PAGE_SIZE);
    run = 1;
  }
  return ns;
}

/** ns for `bytes` of remote (zero-copy) accesses over the link: line-sized reads at the link's rate, not DMA transfers. */
export function linkNs(cost: CostModel, bytes: number): number {
  if (bytes <= 0) return 0;
  return Math.ceil((bytes * 1_000_000_000) / cost.bandwidthBytesPerSec);
}

/** The roofline charge of a kernel pass touching `bytes` of the GPU's memory (0 without a rate). */
export function computeNs(cost: CostModel, bytes: number): number {
  if (bytes <= 0 || cost.gpuMemBytesPerSec <= 0) return 0;
  return Math.ceil((bytes * 1_000_000_000) / cost.gpuMemBytesPerSec);
}

/** A cost model with overrides; rejects what is not a non-negative integer (bandwidth > 0). */
export function makeCost(base: CostModel, over: Partial<CostModel> = {}): CostModel {
  const c = { ...base, ...over };
  for (const k of ['faultGroupNs', 'faultNs', 'cpuFaultNs', 'remoteAccessNs', 'remoteAccessBytes', 'launchNs', 'evictChunkNs', 'gpuMemBytesPerSec', 'farFaultNs'] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] < 0) throw new RangeError(`cost ${k} must be a non-negative integer ns`);
  }
  if (!Number.isSafeInteger(c.bandwidthBytesPerSec) || c.bandwidthBytesPerSec <= 0) {
    throw new RangeError('cost bandwidthBytesPerSec must be a positive integer');
  }
  if (c.transfer !== 'flat' && c.transfer !== 'curve') throw new RangeError(`cost transfer '${String(c.transfer)}' is not flat or curve`);
  if (c.faultTransfer !== 'run' && c.faultTransfer !== 'page') throw new RangeError(`cost faultTransfer '${String(c.faultTransfer)}' is not run or page`);
  if (!(c.curveA > 0) || !(c.curveB > 0)) throw new RangeError('cost curveA and curveB must be positive');
  return Object.freeze(c);
}


/** The knobs a preset's figures may be overridden by (--cost-opt KEY=VALUE): every field but the name. */
export const COST_KNOBS: readonly (keyof Omit<CostModel, 'name'>)[] = Object.freeze([
  'transfer', 'curveA', 'curveB', 'faultGroupNs', 'faultNs', 'cpuFaultNs', 'bandwidthBytesPerSec',
  'remoteAccessNs', 'remoteAccessBytes', 'launchNs', 'gpuMemBytesPerSec', 'evictChunkNs', 'farFaultNs', 'faultTransfer',
]);

/**
 * A preset with knobs set from text pairs (KEY, VALUE), in order (a later pair wins), checked
 * as makeCost checks them; its name is the preset's with the pairs after it
 * ("uvm-smart+faultGroupNs=20000"), so the results say what the clock was. A RangeError names
 * an unknown knob or a bad value.
 */
export function costWithKnobs(base: CostModel, pairs: readonly (readonly [string, string])[]): CostModel {
  if (pairs.length === 0) return base;
  const over: Record<string, string | number> = {};
  for (const [k, raw] of pairs) {
    if (!(COST_KNOBS as readonly string[]).includes(k)) throw new RangeError(`'${k}' is not a cost knob (one of ${COST_KNOBS.join(', ')})`);
    if (k === 'transfer') {
      if (raw !== 'flat' && raw !== 'curve') throw new RangeError(`cost transfer '${raw}' is not flat or curve`);
      over[k] = raw;
      continue;
    }
    if (k === 'faultTransfer') {
      if (raw !== 'run' && raw !== 'page') throw new RangeError(`cost faultTransfer '${raw}' is not run or page`);
      over[k] = raw;
      continue;
    }
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v)) throw new RangeError(`cost ${k} '${raw}' is not a number`);
    over[k] = v;
  }
  const name = `${base.name}+${pairs.map(([k, v]) => `${k}=${v}`).join('+')}`;
  return makeCost(base, { ...over, name } as Partial<CostModel>);
}
