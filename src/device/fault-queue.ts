/**
 * The fault event queue: a ring in GPU memory like UVM's replayable fault buffer
 * (uvm_gpu_replayable_faults.c): the GPU appends with atomicAdd on PUT, the driver drains it
 * and replays. Layout (u32 words):
 *   [0] put       atomic; the next record index (may run past capacity)
 *   [1] overflow  set when a record had to be dropped (put ≥ capacity): the ring's
 *                 "overflow" interrupt. Nothing is lost: the faulting invocation is not
 *                 done, so the replay faults again.
 *   [2..3] reserved
 *   then capacity × { pageLo, pageHi, access, source }.
 *
 * Unlike the real buffer, the host only reads the ring after the kernel that wrote it has
 * finished (same queue, copy after dispatch), so records need no per-entry valid bit and
 * the host's GET is implicit: draining resets put/overflow to 0.
 *
 * Which records a full ring keeps: in the hardware, the first that reach it; here that would
 * be the race of the GPU's threads (llvmpipe's, run to run), and a run would not repeat from
 * its seed. With `spill` > 1 the buffer holds spill × capacity records; a round that wrote
 * more than `capacity` keeps a deterministic `capacity` of them — the lowest by (uTLB, page,
 * access) — and reports the overflow, as if the ring had kept those. Past spill × capacity
 * the kernels drop records as before (counted in stats.spills: the race is back).
 */
import { err } from '../errors.js';
import type { Scheduler } from '../sched/scheduler.js';
import { asDeviceError, ensureAlive, HOST_SCHEDULER } from './health.js';
import { DeviceBuffers } from './buffer-pool.js';

export type FaultAccess = 'read' | 'write' | 'atomic';

export interface FaultRecord {
  /** Faulting page number (< 2^35). */
  page: number;
  access: FaultAccess;
  /** The uTLB (workgroup-derived id) that reported it. */
  source: number;
  /**
   * The entry was valid but lacked the right (write to a read-only PTE, atomic without
   * EXCLUSIVE): UVM's write/atomic fault types as opposed to an invalid PDE/PTE.
   */
  protection: boolean;
}

export interface FaultBatch {
  records: FaultRecord[];
  overflow: boolean;
}

export interface FaultQueueStats {
  drains: number;
  records: number;
  overflows: number;
  /** Overflowing drains that wrote past spill × capacity (which records were kept was the GPU's race). */
  spills: number;
}

export const FAULT_HEADER_BYTES = 16;
/** MirrorEngine's default spill (MirrorEngineOptions.faultSpill): records the buffer holds per record a drain delivers. */
export const FAULT_SPILL = 8;
export const FAULT_RECORD_BYTES = 16;
/** Matches ACCESS_PROTECTION in mirror-common.wgsl. */
export const FAULT_ACCESS_PROTECTION = 0x100;
const ACCESS_NAMES: Record<number, FaultAccess> = { 1: 'read', 2: 'write', 3: 'atomic' };

export class FaultQueue {
  readonly device: GPUDevice;
  /** Records a drain delivers at most (the ring's size as the driver sees it). */
  readonly capacity: number;
  /** Records the buffer holds (capacity × spill). */
  readonly slots: number;
  readonly buffer: GPUBuffer;
  /** header + records. */
  readonly byteSize: number;
  readonly sched: Scheduler;
  private readonly counters = { drains: 0, records: 0, overflows: 0, spills: 0 };
  private destroyed = false;

  constructor(device: GPUDevice, capacity = 4096, label = 'fault buffer', sched: Scheduler = HOST_SCHEDULER, spill = 1) {
    this.sched = sched;
    if (!Number.isInteger(capacity) || capacity < 1) throw err('EINVAL', `fault queue capacity ${capacity}`);
    if (!Number.isInteger(spill) || spill < 1) throw err('EINVAL', `fault queue spill ${spill}`);
    this.slots = capacity * spill;
    this.byteSize = FAULT_HEADER_BYTES + this.slots * FAULT_RECORD_BYTES;
    if (this.byteSize > device.limits.maxStorageBufferBindingSize) {
      throw err('EINVAL', `fault queue of ${this.slots} records exceeds maxStorageBufferBindingSize`);
    }
    ensureAlive(device, label);
    this.device = device;
    this.capacity = capacity;
    this.buffer = DeviceBuffers.of(device).acquire({
      label,
      size: this.byteSize,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }

  get stats(): FaultQueueStats {
    return { ...this.counters };
  }

  /**
   * Records, into `enc`, a copy of the whole ring to `staging` at `offset` followed by a
   * reset of put/overflow — the drain, in queue order after whatever was encoded before.
   */
  encodeDrain(enc: GPUCommandEncoder, staging: GPUBuffer, offset: number): void {
    enc.copyBufferToBuffer(this.buffer, 0, staging, offset, this.byteSize);
    enc.clearBuffer(this.buffer, 0, FAULT_HEADER_BYTES);
  }

  /** Decodes a drained ring (as laid out by encodeDrain) at `offset` of `bytes`. */
  parse(bytes: ArrayBuffer, offset = 0): FaultBatch {
    const head = new Uint32Array(bytes, offset, 4);
    const put = head[0];
    const written = Math.min(put, this.slots);
    const overflow = head[1] !== 0 || put > this.capacity;
    const rec = new Uint32Array(bytes, offset + FAULT_HEADER_BYTES, written * 4);
    const order = written > this.capacity ? keptRecords(rec, written, this.capacity) : null;
    const n = Math.min(written, this.capacity);
    const records: FaultRecord[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const k = order === null ? i : order[i];
      const access = ACCESS_NAMES[rec[4 * k + 2] & 0xff];
      if (!access) throw err('EIO', `fault buffer: record ${k} has access code ${rec[4 * k + 2]}`);
      records[i] = {
        page: rec[4 * k + 1] * 2 ** 32 + rec[4 * k],
        access,
        source: rec[4 * k + 3],
        protection: (rec[4 * k + 2] & FAULT_ACCESS_PROTECTION) !== 0,
      };
    }
    this.counters.drains++;
    this.counters.records += n;
    if (overflow) this.counters.overflows++;
    if (put > this.slots && this.slots > this.capacity) this.counters.spills++;
    return { records, overflow };
  }

  /** Drains the ring on its own: one copy + one mapAsync, then put/overflow reset. */
  async fetch(): Promise<FaultBatch> {
    ensureAlive(this.device, 'fault buffer: fetch');
    if (this.destroyed) throw err('ENODEV', 'fault buffer: fetch: destroyed');
    const pool = DeviceBuffers.of(this.device);
    const staging = pool.acquire({
      label: 'fault buffer staging',
      size: this.byteSize,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      const enc = this.device.createCommandEncoder({ label: 'fault buffer drain' });
      this.encodeDrain(enc, staging, 0);
      this.device.queue.submit([enc.finish()]);
      await this.sched.wait(staging.mapAsync(GPUMapMode.READ), 'fault buffer: fetch mapAsync');
      return this.parse(staging.getMappedRange());
    } catch (e) {
      throw await asDeviceError(this.device, e, 'fault buffer: fetch', this.sched);
    } finally {
      if (staging.mapState === 'mapped') staging.unmap();
      pool.release([{ buffer: staging }]);
    }
  }

  /** Hands the ring back to the device's buffer pool (zeroed there). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    DeviceBuffers.of(this.device).release([{ buffer: this.buffer }]);
  }
}

/**
 * The `keep` records of the `written` in `rec` that a full ring keeps (FaultQueue's header):
 * the lowest by (uTLB, page, access), as indices in that order, whatever order the GPU's
 * threads wrote them in. Each record as one number — source · 2^38 + page · 8 + access code
 * and protection bit, exact below 2^53 for sources below 2^15 — sorted natively (a
 * comparator over 32,768 records took 15-30 ms a round); a record's first index breaks a tie.
 */
function keptRecords(rec: Uint32Array, written: number, keep: number): Uint32Array {
  const keys = new Float64Array(written);
  for (let k = 0; k < written; k++) {
    const source = rec[4 * k + 3];
    if (source >= 2 ** 15) return keptByCompare(rec, written, keep);
    const a = rec[4 * k + 2];
    keys[k] = source * 2 ** 38 + (rec[4 * k + 1] * 2 ** 32 + rec[4 * k]) * 8 + ((a & 3) | ((a & FAULT_ACCESS_PROTECTION) !== 0 ? 4 : 0));
  }
  const sorted = keys.slice().sort();
  const last = sorted[keep - 1];
  let below = 0; // kept with a key under `last`; the rest of `keep` are records equal to it
  while (below < keep && sorted[below] < last) below++;
  const first = new Map<number, number>(); // key → the next index in `order` for it
  for (let i = 0; i < keep; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) first.set(sorted[i], i);
  const order = new Uint32Array(keep);
  let ties = keep - below;
  for (let k = 0; k < written; k++) {
    const key = keys[k];
    if (key > last) continue;
    if (key === last) {
      if (ties === 0) continue;
      ties--;
    }
    const at = first.get(key)!;
    order[at] = k;
    first.set(key, at + 1);
  }
  return order;
}

/** keptRecords for sources of 2^15 and over: a comparator sort, field by field. */
function keptByCompare(rec: Uint32Array, written: number, keep: number): Uint32Array {
  const order = new Uint32Array(written);
  for (let k = 0; k < written; k++) order[k] = k;
  const field = [3, 1, 0, 2]; // source, page high, page low, access word
  order.sort((a, b) => {
    for (const f of field) {
      const d = rec[4 * a + f] - rec[4 * b + f];
      if (d !== 0) return d;
    }
    return a - b;
  });
  return order.subarray(0, keep);
}
