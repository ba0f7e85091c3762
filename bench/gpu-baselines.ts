/**
 * Bare WebGPU baselines for the mirror benchmarks (bench/mirror.ts, bench/round-trip.ts):
 * the same data movement as the mirror's operations with none of the mirroring, on the
 * same device, to be measured in the same run as the figure they stand beside.
 */
import { MIRROR_PAGES_PER_WORKGROUP, MIRROR_WORKGROUP_SIZE } from '../src/device/mirror-engine.js';
import { GpuTimer, timedPass } from '../src/device/gpu-timer.js';
import { adapterChoice, ADAPTER_ENV, type AdapterChoice } from '../src/device/gpu.js';

const PAGE = 4096;

/**
 * The bare copy kernel, laid out like the mirror kernels (mirror-common.wgsl): 256-thread
 * workgroups, 32 threads per 4 KiB page, each thread moving 8 consecutive vec4s (32 words)
 * from `src` to `dst` — the same bytes read from one storage buffer and written to another
 * as a mirror round over the same pages, without the page walk, done bits or fault ring.
 * (On llvmpipe this layout and a plain one-word-per-invocation copy differ by < 5%; the
 * faster of the two was measured to be this one.)
 */
const COPY_WGSL = `
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> npages: u32;
@compute @workgroup_size(${MIRROR_WORKGROUP_SIZE})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
  let t = (wg.x + wg.y * nwg.x) * ${MIRROR_WORKGROUP_SIZE}u + lidx;
  if (t / 32u >= npages) { return; }
  let j = t * 8u;
  for (var k = 0u; k < 8u; k++) { dst[j + k] = src[j + k]; }
}`;

export class Baselines {
  readonly device: GPUDevice;
  readonly #pipe: GPUComputePipeline;
  readonly #bufs: GPUBuffer[] = [];
  readonly #rounds = new Map<string, () => Promise<void>>();

  constructor(device: GPUDevice) {
    this.device = device;
    const module = device.createShaderModule({ label: 'bare copy', code: COPY_WGSL });
    this.#pipe = device.createComputePipeline({ label: 'bare copy', layout: 'auto', compute: { module, entryPoint: 'main' } });
  }

  #buffer(size: number, usage: number, label: string): GPUBuffer {
    const b = this.device.createBuffer({ label, size, usage });
    this.#bufs.push(b);
    return b;
  }

  /**
   * A bare round over `pages` pages: one submission of the copy kernel (src → dst, as
   * above) and a copyBufferToBuffer of `readbackBytes` of dst into a MAP_READ buffer, then
   * mapAsync + unmap — a mirror round's dispatch, copy and readback (its readback is the
   * state header and the fault ring: MirrorEngine.roundReadbackBytes).
   */
  round(pages: number, readbackBytes: number): () => Promise<void> {
    const key = `${pages}/${readbackBytes}`;
    const have = this.#rounds.get(key);
    if (have) return have;
    const d = this.device;
    const src = this.#buffer(pages * PAGE, GPUBufferUsage.STORAGE, 'bare src');
    const dst = this.#buffer(pages * PAGE, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'bare dst');
    const n = this.#buffer(16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'bare params');
    d.queue.writeBuffer(n, 0, Uint32Array.of(pages, 0, 0, 0));
    const staging = this.#buffer(readbackBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'bare staging');
    const bind = d.createBindGroup({
      layout: this.#pipe.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: dst } }, { binding: 2, resource: { buffer: n } }],
    });
    const groups = Math.ceil(pages / MIRROR_PAGES_PER_WORKGROUP);
    const x = Math.min(groups, d.limits.maxComputeWorkgroupsPerDimension);
    const y = Math.ceil(groups / x);
    const fn = async (): Promise<void> => {
      const enc = d.createCommandEncoder({ label: 'bare round' });
      const pass = enc.beginComputePass(timedPass(d, 'bare copy'));
      pass.setPipeline(this.#pipe);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(x, y);
      pass.end();
      enc.copyBufferToBuffer(dst, 0, staging, 0, readbackBytes);
      d.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      staging.unmap();
    };
    this.#rounds.set(key, fn);
    return fn;
  }

  /** A bare fence: queue.writeBuffer of 4 bytes, then onSubmittedWorkDone. */
  fence(): () => Promise<void> {
    const b = this.#buffer(4, GPUBufferUsage.COPY_DST, 'bare fence');
    const one = Uint32Array.of(1);
    return async () => {
      this.device.queue.writeBuffer(b, 0, one);
      await this.device.queue.onSubmittedWorkDone();
    };
  }

  /** A bare copy: copyBufferToBuffer of `bytes` between two GPU buffers, then onSubmittedWorkDone. */
  copy(bytes: number): () => Promise<void> {
    const a = this.#buffer(bytes, GPUBufferUsage.COPY_SRC, 'bare copy src');
    const b = this.#buffer(bytes, GPUBufferUsage.COPY_DST, 'bare copy dst');
    return async () => {
      const enc = this.device.createCommandEncoder({ label: 'bare copy' });
      enc.copyBufferToBuffer(a, 0, b, 0, bytes);
      this.device.queue.submit([enc.finish()]);
      await this.device.queue.onSubmittedWorkDone();
    };
  }

  /**
   * The bytes a migration must move across the host link, bare: `up` (host → GPU) a
   * writeBuffer of `bytes` into one buffer and a copyBufferToBuffer into another (system
   * memory to VRAM), then (`down`) a copyBufferToBuffer into a MAP_READ buffer, mapAsync and
   * the mapped range copied out (VRAM back to host memory). migrateToDevice's floor is
   * up + down (it returns the data), migrateToSystem's is down.
   */
  link(bytes: number, up: boolean): () => Promise<void> {
    const d = this.device;
    const a = this.#buffer(bytes, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, 'link a');
    const b = this.#buffer(bytes, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, 'link b');
    const staging = this.#buffer(bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'link staging');
    const host = new Uint8Array(bytes);
    return async () => {
      const enc = d.createCommandEncoder({ label: 'bare link' });
      if (up) {
        d.queue.writeBuffer(a, 0, host);
        enc.copyBufferToBuffer(a, 0, b, 0, bytes);
      }
      enc.copyBufferToBuffer(b, 0, staging, 0, bytes);
      d.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      host.set(new Uint8Array(staging.getMappedRange()));
      staging.unmap();
    };
  }

  /**
   * A bare trip of `pages` pages through the GPU and back, `chunkPages` at a time: per
   * chunk, writeBuffer of the bytes (upload), the copy kernel, a copyBufferToBuffer of all
   * of dst into a MAP_READ buffer (one, reused), mapAsync, getMappedRange copied out into a
   * new array for the caller — the data movement of a device READ of a buffer the GPU has
   * never seen, without the mm, HMM or mirror.
   */
  trip(pages: number, chunkPages: number): () => Promise<void> {
    const c = Math.min(pages, chunkPages);
    const d = this.device;
    const src = this.#buffer(c * PAGE, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, 'trip src');
    const dst = this.#buffer(c * PAGE, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'trip dst');
    const n = this.#buffer(16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'trip params');
    const host = new Uint8Array(pages * PAGE);
    const staging = this.#buffer(c * PAGE, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'trip staging');
    const bind = d.createBindGroup({
      layout: this.#pipe.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: dst } }, { binding: 2, resource: { buffer: n } }],
    });
    return async () => {
      const out = new Uint8Array(pages * PAGE);
      for (let off = 0; off < pages; off += c) {
        const k = Math.min(c, pages - off);
        d.queue.writeBuffer(n, 0, Uint32Array.of(k, 0, 0, 0));
        d.queue.writeBuffer(src, 0, host, off * PAGE, k * PAGE);
        const enc = d.createCommandEncoder({ label: 'bare trip' });
        const pass = enc.beginComputePass(timedPass(d, 'bare copy'));
        pass.setPipeline(this.#pipe);
        pass.setBindGroup(0, bind);
        const groups = Math.ceil(k / MIRROR_PAGES_PER_WORKGROUP);
        const x = Math.min(groups, d.limits.maxComputeWorkgroupsPerDimension);
        pass.dispatchWorkgroups(x, Math.ceil(groups / x));
        pass.end();
        enc.copyBufferToBuffer(dst, 0, staging, 0, k * PAGE);
        d.queue.submit([enc.finish()]);
        await staging.mapAsync(GPUMapMode.READ, 0, k * PAGE);
        out.set(new Uint8Array(staging.getMappedRange(0, k * PAGE)), off * PAGE);
        staging.unmap();
      }
      if (out.length !== pages * PAGE) throw new Error('unreachable');
    };
  }

  destroy(): void {
    for (const b of this.#bufs) b.destroy();
  }
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * `--adapter auto|opengles|vulkan` on a benchmark's command line: the Node adapter for the
 * whole run (src/device/gpu.ts's MIRRORLAB_ADAPTER, which it sets; call before any GPU is
 * requested). 'vulkan' is SwiftShader, with timestamp queries; 'opengles' llvmpipe, without.
 */
export function adapterOption(argv: readonly string[] = process.argv): AdapterChoice | null {
  const at = argv.indexOf('--adapter');
  if (at < 0) return null;
  const v = argv[at + 1] ?? '';
  process.env[ADAPTER_ENV] = v;
  return adapterChoice(); // EINVAL for anything but auto, opengles, vulkan
}

/**
 * The GPU / host split of a timed sample: the compute passes' GPU time from timestamp queries
 * (GpuTimer) where the device has 'timestamp-query', the rest of the wall time the host's
 * (JavaScript, Dawn, copies, maps). take() after each sample, outside the time measured.
 */
export class GpuSplit {
  readonly timer: GpuTimer | null;
  constructor(device: GPUDevice) {
    this.timer = GpuTimer.start(device, 2048);
  }

  /** GPU ms of the passes since the last take (NaN without timestamps). */
  async take(): Promise<number> {
    if (this.timer === null) return NaN;
    if (this.timer.dropped > 0) throw new Error(`bench: ${this.timer.dropped} passes not timed (take() more often)`);
    return this.timer.takeMs();
  }

  /** GPU ms of each pass since the last take, in order (null without timestamps). */
  async takePasses(): Promise<number[] | null> {
    if (this.timer === null) return null;
    return (await this.timer.collect()).map((p) => p.ns / 1e6);
  }

  /** "GPU a + host b" of a sample's wall ms, or n/a. */
  static fmt(wallMs: number, gpuMs: number): string {
    if (Number.isNaN(gpuMs)) return 'n/a';
    // Copies and writeBuffers are outside every pass: work with no compute pass is all "host" here.
    if (gpuMs === 0) return `no compute pass (copies, maps, JS: ${fmtMs(wallMs)})`;
    return `GPU ${fmtMs(gpuMs)} + host ${fmtMs(Math.max(0, wallMs - gpuMs))}`;
  }

  /** The split column: the result's and the baseline's. */
  static column(result: [number, number], baseline?: [number, number]): string {
    const r = GpuSplit.fmt(...result);
    if (r === 'n/a') return 'n/a (no timestamp-query)';
    return baseline === undefined ? r : `${r}; baseline ${GpuSplit.fmt(...baseline)}`;
  }

  stop(): void {
    this.timer?.stop();
  }
}

/**
 * Runs each function `reps` times, interleaved (a, b, c, a, b, c, ...), after `warm` runs each;
 * median ms of each, and with a GpuSplit the median GPU ms of each as `${name}.gpu`.
 */
export async function interleaved(fns: Record<string, () => Promise<void>>, reps: number, warm = 2, split?: GpuSplit): Promise<Record<string, number>> {
  const t: Record<string, number[]> = {};
  const g: Record<string, number[]> = {};
  for (const [k, f] of Object.entries(fns)) {
    t[k] = [];
    g[k] = [];
    for (let i = 0; i < warm; i++) await f();
  }
  await split?.take();
  for (let i = 0; i < reps; i++) {
    for (const [k, f] of Object.entries(fns)) {
      const t0 = performance.now();
      await f();
      t[k].push(performance.now() - t0);
      if (split) g[k].push(await split.take());
    }
  }
  return Object.fromEntries([
    ...Object.entries(t).map(([k, v]) => [k, median(v)]),
    ...(split ? Object.entries(g).map(([k, v]) => [`${k}.gpu`, median(v)]) : []),
  ]);
}

export interface Row {
  name: string;
  result: string;
  baseline: string;
  /** result cost / baseline cost (times: result / baseline; rates: baseline / result). */
  ratio: number | null;
  target: string;
  /** GPU time (timestamp queries) and host time of the result and its baseline (GpuSplit.column); '' where none. */
  split?: string;
}

export function printTable(rows: readonly Row[]): void {
  console.log('| measurement | result | baseline (same run) | ratio | target | GPU + host (medians) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.result} | ${r.baseline} | ${r.ratio === null ? '' : `${r.ratio.toFixed(2)}x`} | ${r.target} | ${r.split ?? ''} |`);
  }
}

export function fmtMs(ms: number): string {
  return ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : ms < 100 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(0)} ms`;
}
