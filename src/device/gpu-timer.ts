/**
 * GPU time of compute passes, from timestamp queries, where the device has them
 * ('timestamp-query': Dawn on Vulkan — SwiftShader included —, Metal, D3D12, and Chromium;
 * not Dawn's OpenGL ES backend, i.e. not llvmpipe). A measuring caller (a benchmark, a test)
 * turns a timer on for a device; from then on every compute pass the engine begins asks
 * `timedPass` for its timestampWrites and gets a pair of query slots (begin, end). The caller
 * `collect()`s between its samples — outside the time it measures: one resolve of the used
 * slots, one copy, one map — and gets each pass's GPU time. No timer on the device (the
 * normal case): `timedPass` answers {} and nothing is written.
 *
 * What the timestamps cover: from the start to the end of each compute pass on the GPU's
 * clock. Copies, queued writeBuffers and maps are outside every pass, so a wall time minus
 * the passes' GPU time is the host's share (JavaScript, Dawn, submission, copies, mapping).
 * Dawn quantises timestamps to 65.5 µs unless its `timestamp_quantization` toggle is off;
 * gpu.ts turns it off in every Dawn instance it creates (a browser keeps its own setting).
 */
import { err } from '../errors.js';

/** One timed pass: its label and its GPU time in ns (end − begin, on the GPU's clock). */
export interface TimedPass {
  label: string;
  beginNs: bigint;
  endNs: bigint;
  ns: number;
}

/** The most query slots a timer takes (WebGPU's limit on a timestamp query set is 4096). */
const MAX_QUERIES = 4096;

export class GpuTimer {
  readonly device: GPUDevice;
  readonly capacity: number;
  readonly #set: GPUQuerySet;
  readonly #resolve: GPUBuffer;
  readonly #read: GPUBuffer;
  readonly #labels: string[] = [];
  /** Passes begun while every slot was taken (not timed: collect() more often). */
  dropped = 0;
  #closed = false;

  private constructor(device: GPUDevice, passes: number) {
    this.device = device;
    this.capacity = passes;
    this.#set = device.createQuerySet({ label: 'gpu timer', type: 'timestamp', count: passes * 2 });
    this.#resolve = device.createBuffer({ label: 'gpu timer resolve', size: passes * 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.#read = device.createBuffer({ label: 'gpu timer read', size: passes * 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /**
   * Turns timing on for `device` (up to `passes` passes between two collect()s); null when
   * the device lacks 'timestamp-query'. EBUSY when a timer is already on for it.
   */
  static start(device: GPUDevice, passes = 1024): GpuTimer | null {
    if (!device.features.has('timestamp-query')) return null;
    if (!Number.isInteger(passes) || passes < 1 || passes * 2 > MAX_QUERIES) throw err('EINVAL', `gpu timer: ${passes} passes (1..${MAX_QUERIES / 2})`);
    if (timers.has(device)) throw err('EBUSY', 'gpu timer: one is already on for this device');
    const t = new GpuTimer(device, passes);
    timers.set(device, t);
    return t;
  }

  /** The next pass's timestampWrites (undefined when every slot is taken until the next collect). */
  writes(label: string): GPUComputePassTimestampWrites | undefined {
    if (this.#closed) return undefined;
    const k = this.#labels.length;
    if (k >= this.capacity) {
      this.dropped++;
      return undefined;
    }
    this.#labels.push(label);
    return { querySet: this.#set, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 };
  }

  /** Passes timed since the last collect(), in the order they began; the slots are free again. */
  async collect(): Promise<TimedPass[]> {
    const n = this.#labels.length;
    if (n === 0 || this.#closed) return [];
    const labels = this.#labels.splice(0);
    const enc = this.device.createCommandEncoder({ label: 'gpu timer collect' });
    enc.resolveQuerySet(this.#set, 0, 2 * n, this.#resolve, 0);
    enc.copyBufferToBuffer(this.#resolve, 0, this.#read, 0, 16 * n);
    this.device.queue.submit([enc.finish()]);
    await this.#read.mapAsync(GPUMapMode.READ, 0, 16 * n);
    const ts = new BigUint64Array(this.#read.getMappedRange(0, 16 * n).slice(0));
    this.#read.unmap();
    return labels.map((label, k) => {
      const beginNs = ts[2 * k];
      const endNs = ts[2 * k + 1];
      return { label, beginNs, endNs, ns: endNs >= beginNs ? Number(endNs - beginNs) : 0 };
    });
  }

  /** GPU ms of the passes since the last collect(). */
  async takeMs(): Promise<number> {
    return (await this.collect()).reduce((a, p) => a + p.ns, 0) / 1e6;
  }

  /** Turns timing off for the device and frees the query set and buffers. */
  stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (timers.get(this.device) === this) timers.delete(this.device);
    this.#set.destroy();
    this.#resolve.destroy();
    this.#read.destroy();
  }
}

const timers = new WeakMap<GPUDevice, GpuTimer>();

/**
 * A compute pass descriptor for `label`, with timestampWrites when a timer is on for the
 * device: `enc.beginComputePass(timedPass(device, label))`.
 */
export function timedPass(device: GPUDevice, label: string): GPUComputePassDescriptor {
  const w = timers.get(device)?.writes(label);
  return w === undefined ? { label } : { label, timestampWrites: w };
}
