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
}

export const FAULT_HEADER_BYTES = 16;
export const FAULT_RECORD_BYTES = 16;
/** Matches ACCESS_PROTECTION in mirror-common.wgsl. */
export const FAULT_ACCESS_PROTECTION = 0x100;
const ACCESS_NAMES: Record<number, FaultAccess> = { 1: 'read', 2: 'write', 3: 'atomic' };

export class FaultQueue {
  readonly device: GPUDevice;
  readonly capacity: number;
  readonly buffer: GPUBuffer;
  /** header + records. */
  readonly byteSize: number;
  readonly sched: Scheduler;
  private readonly counters = { drains: 0, records: 0, overflows: 0 };
  private destroyed = false;

  constructor(device: GPUDevice, capacity = 4096, label = 'fault buffer', sched: Scheduler = HOST_SCHEDULER) {
    this.sched = sched;
    if (!Number.isInteger(capacity) || capacity < 1) throw err('EINVAL', `fault queue capacity ${capacity}`);
    this.byteSize = FAULT_HEADER_BYTES + capacity * FAULT_RECORD_BYTES;
    if (this.byteSize > device.limits.maxStorageBufferBindingSize) {
      throw err('EINVAL', `fault queue of ${capacity} records exceeds maxStorageBufferBindingSize`);
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
    const n = Math.min(put, this.capacity);
    const overflow = head[1] !== 0 || put > this.capacity;
    const rec = new Uint32Array(bytes, offset + FAULT_HEADER_BYTES, n * 4);
    const records: FaultRecord[] = new Array(n);
    for (let k = 0; k < n; k++) {
      const access = ACCESS_NAMES[rec[4 * k + 2] & 0xff];
      if (!access) throw err('EIO', `fault buffer: record ${k} has access code ${rec[4 * k + 2]}`);
      records[k] = {
        page: rec[4 * k + 1] * 2 ** 32 + rec[4 * k],
        access,
        source: rec[4 * k + 3],
        protection: (rec[4 * k + 2] & FAULT_ACCESS_PROTECTION) !== 0,
      };
    }
    this.counters.drains++;
    this.counters.records += n;
    if (overflow) this.counters.overflows++;
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
