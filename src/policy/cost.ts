/**
 * The cost model and the virtual clock. Every figure is an integer number of nanoseconds (or
 * bytes per second), so a run's simulated time is a pure function of its inputs: no wall clock,
 * no floating accumulation (each charge is rounded up to whole ns before it is added).
 *
 * Defaults and their sources (../shared/reference/anchors.md):
 *   faultGroupNs   45 µs  GPGPU-Sim UVM_Smart's page-fault latency (far-fault service); the
 *                         GTX1080 preset uses ~12 µs a fault group, measured streaming 2 GB on a
 *                         GTX 1080 (parallelArchitect/pascal-um-benchmark)
 *   bandwidth      16 GB/s UVM_Smart's PCIe 3.0 x16 interconnect
 *   launchNs       150 µs  UVM_Smart's kernel launch overhead
 *   remoteAccessNs 1 µs    [memory] one PCIe read round trip for zero-copy accesses, charged
 *                         once a round (a round's accesses overlap); no anchor gives a figure,
 *                         so it is a knob, not a measurement
 *   remoteAccessBytes 128  [memory] one GPU L2 line a remote access moves, at `bandwidth`
 *   cpuFaultNs     45 µs   the far-fault latency again for migrate_to_ram: no anchor measures
 *                         the CPU side separately (Xe SVM's per-fault migration, 130-165 µs, is
 *                         an upper reference)
 */
export const PAGE_SIZE = 4096;

export interface CostModel {
  readonly name: string;
  /** Fixed cost of servicing one device fault group (batch). */
  readonly faultGroupNs: number;
  /** Extra cost per faulted page in a group (0 in both presets: UVM_Smart charges per batch). */
  readonly faultNs: number;
  /** CPU fault on a device page (migrate_to_ram), before the copy. */
  readonly cpuFaultNs: number;
  /** Interconnect bandwidth, bytes per second, each way. */
  readonly bandwidthBytesPerSec: number;
  /** Latency of remote accesses, once per round that makes any (they overlap). */
  readonly remoteAccessNs: number;
  /** Bytes one remote access moves over the interconnect. */
  readonly remoteAccessBytes: number;
  /** One kernel launch. */
  readonly launchNs: number;
  /** Fixed cost per evicted chunk on top of its copy (0: UVM_Smart charges the copy only). */
  readonly evictChunkNs: number;
}

/** GPGPU-Sim UVM_Smart's knobs (Ganguly et al., ISCA'19 / IPDPS'20). */
export const UVM_SMART: CostModel = Object.freeze({
  name: 'uvm-smart',
  faultGroupNs: 45_000,
  faultNs: 0,
  cpuFaultNs: 45_000,
  bandwidthBytesPerSec: 16_000_000_000,
  remoteAccessNs: 1_000,
  remoteAccessBytes: 128,
  launchNs: 150_000,
  evictChunkNs: 0,
});

/** UVM_Smart with the fault-group cost measured on a GTX 1080 (pascal-um-benchmark: ~12 µs). */
export const GTX1080: CostModel = Object.freeze({ ...UVM_SMART, name: 'gtx1080', faultGroupNs: 12_000 });

export const DEFAULT_COST: CostModel = UVM_SMART;

/** ns to move `bytes` over the interconnect, rounded up to a whole ns. */
export function transferNs(cost: CostModel, bytes: number): number {
  if (bytes <= 0) return 0;
  return Math.ceil((bytes * 1_000_000_000) / cost.bandwidthBytesPerSec);
}

/** A cost model with overrides; rejects what is not a non-negative integer (bandwidth > 0). */
export function makeCost(base: CostModel, over: Partial<CostModel> = {}): CostModel {
  const c = { ...base, ...over };
  for (const k of ['faultGroupNs', 'faultNs', 'cpuFaultNs', 'remoteAccessNs', 'remoteAccessBytes', 'launchNs', 'evictChunkNs'] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] < 0) throw new RangeError(`cost ${k} must be a non-negative integer ns`);
  }
  if (!Number.isSafeInteger(c.bandwidthBytesPerSec) || c.bandwidthBytesPerSec <= 0) {
    throw new RangeError('cost bandwidthBytesPerSec must be a positive integer');
  }
  return Object.freeze(c);
}

/** A processor's virtual clock (ns, integer). */
export class VirtualClock {
  #now: number;
  constructor(start = 0) {
    this.#now = start;
  }
  get now(): number {
    return this.#now;
  }
  advance(ns: number): number {
    if (!Number.isSafeInteger(ns) || ns < 0) throw new RangeError(`advance by ${ns} ns`);
    this.#now += ns;
    return this.#now;
  }
  /** Wait until `t` (a stall): never moves back. */
  until(t: number): number {
    if (t > this.#now) this.#now = Math.ceil(t);
    return this.#now;
  }
}
