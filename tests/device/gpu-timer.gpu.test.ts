/**
 * GpuTimer (src/device/gpu-timer.ts): compute passes timed by timestamp queries, on an
 * adapter that has 'timestamp-query' — in Node Dawn's Vulkan backend on SwiftShader
 * (adapter: 'vulkan'), in the browser project whatever Chromium gives. Where no such adapter
 * starts the tests are skipped, saying why. Nothing here asserts on speed: the timestamps
 * must be ordered, and a kernel of known size must take a non-zero GPU time.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { GpuTimer, timedPass } from '../../src/device/gpu-timer.js';
import { adapterChoice, requestGpuDevice, type AdapterChoice, type GpuContext } from '../../src/device/gpu.js';
import { expectAllEqual } from './mirror-helpers.js';
import { standaloneMachine } from '../support/teardown.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.js';

let ctx: GpuContext | null = null;
let why = '';
try {
  ctx = await requestGpuDevice({ adapter: 'vulkan', label: 'gpu-timer test' });
  if (!ctx.timestamps) why = `${ctx.adapterName} has no 'timestamp-query'`;
} catch (e) {
  why = `no Vulkan adapter here: ${String(e).split('\n')[0]}`;
}
if (why !== '') console.warn(`gpu-timer tests skipped: ${why}`);
/** Dawn in Node runs unquantised (gpu.ts); a browser may round a short pass to 0. */
const unquantised = ctx !== null && !ctx.backend.startsWith('browser');
afterAll(() => ctx?.device.destroy());

/** Each invocation runs ITER steps of an LCG from its index: a kernel of known size. */
const ITER = 256;
const WGSL = `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  var x = g.x;
  for (var i = 0u; i < ${ITER}u; i++) { x = x * 1664525u + 1013904223u; }
  out[g.x] = x;
}`;

function expected(n: number): Uint32Array {
  const e = new Uint32Array(n);
  for (let k = 0; k < n; k++) {
    let x = k;
    for (let i = 0; i < ITER; i++) x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    e[k] = x;
  }
  return e;
}

describe.skipIf(why !== '')('GpuTimer on a timestamp-query adapter', () => {
  test('two passes of a known-size kernel: ordered timestamps, non-zero GPU time, every output word right', async () => {
    const { device } = ctx!;
    const n = 64 * 256;
    const module = device.createShaderModule({ code: WGSL });
    const pipe = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const out = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const read = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(out, 0, new Uint32Array(n).fill(0xdeadbeef)); // poison
    const bind = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }] });
    const timer = GpuTimer.start(device)!;
    try {
      expect(timer).not.toBeNull();
      expect(() => GpuTimer.start(device)).toThrowErrno('EBUSY');
      const enc = device.createCommandEncoder();
      for (const label of ['first', 'second']) {
        const pass = enc.beginComputePass(timedPass(device, label));
        pass.setPipeline(pipe);
        pass.setBindGroup(0, bind);
        pass.dispatchWorkgroups(n / 64);
        pass.end();
      }
      enc.copyBufferToBuffer(out, 0, read, 0, n * 4);
      device.queue.submit([enc.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      const got = new Uint32Array(read.getMappedRange().slice(0));
      read.unmap();
      expectAllEqual(got, expected(n), 'kernel output');

      const passes = await timer.collect();
      expect(passes.map((p) => p.label)).toEqual(['first', 'second']);
      for (const p of passes) {
        expect(p.endNs).toBeGreaterThanOrEqual(p.beginNs);
        if (unquantised) expect(p.ns).toBeGreaterThan(0);
      }
      expect(passes[1].beginNs).toBeGreaterThanOrEqual(passes[0].endNs);
      expect(await timer.collect()).toEqual([]); // collected: the slots are free again
    } finally {
      timer.stop();
      out.destroy();
      read.destroy();
    }
    // Off again: passes carry no timestampWrites.
    expect(timedPass(device, 'x')).toEqual({ label: 'x' });
  });

  test('the mirror engine\'s rounds are timed: a fresh READ\'s passes, in order, each with GPU time', async () => {
    const { machine: m, teardown } = await standaloneMachine({ devices: 1, gpuContext: Promise.resolve(ctx!), aperturePages: 512, devicePages: 256, systemPages: 4096 });
    const timer = GpuTimer.start(ctx!.device)!;
    try {
      const p = m.spawn();
      const npages = 64;
      const addr = await p.mmap(0, npages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      const data = new Uint8Array(npages * PAGE_SIZE);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
      await p.write(addr, data);
      const mirror = await m.devices[0].open(p);
      const before = mirror.stats.rounds;
      const r = await mirror.read(addr, npages);
      expectAllEqual(new Uint32Array(r.data.buffer, r.data.byteOffset, r.data.byteLength / 4), new Uint32Array(data.buffer), 'READ');
      const passes = await timer.collect();
      // One pass a round (the fault round, then the replay).
      expect(passes.length).toBe(mirror.stats.rounds - before);
      expect(passes.length).toBeGreaterThanOrEqual(2);
      for (const [k, q] of passes.entries()) {
        expect(q.label).toMatch(/ read$/);
        expect(q.endNs).toBeGreaterThanOrEqual(q.beginNs);
        if (unquantised) expect(q.ns).toBeGreaterThan(0);
        if (k > 0) expect(q.beginNs).toBeGreaterThanOrEqual(passes[k - 1].endNs);
      }
      expect(timer.dropped).toBe(0);
    } finally {
      timer.stop();
      await teardown();
    }
  });
});

test('GpuTimer.start answers null on a device without timestamp-query, and timedPass adds nothing', async () => {
  // Whatever adapter this is: the answer follows the device's features.
  const c = ctx ?? await requestGpuDevice({ label: 'gpu-timer fallback' });
  const t = GpuTimer.start(c.device);
  expect(t === null).toBe(!c.device.features.has('timestamp-query'));
  t?.stop();
  expect(timedPass(c.device, 'y')).toEqual({ label: 'y' });
  if (c !== ctx) c.device.destroy();
});

test('an adapter choice other than auto, opengles or vulkan is EINVAL, before any GPU is touched', async () => {
  const bogus = 'metal' as AdapterChoice; // what a typo on --adapter / MIRRORLAB_ADAPTER gives
  expect(() => adapterChoice({ adapter: bogus })).toThrowErrno('EINVAL');
  await expect(requestGpuDevice({ adapter: bogus })).rejects.toBeErrno('EINVAL');
  expect(adapterChoice({ adapter: 'vulkan' })).toBe('vulkan');
});
