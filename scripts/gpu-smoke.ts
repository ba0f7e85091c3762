/**
 * Which GPU does this machine give us, and does a kernel run on it?
 *   node --import tsx --import ./scripts/wgsl-hooks.mjs scripts/gpu-smoke.ts [hardware|software]
 * Also the check that shaders/*.wgsl?raw imports work outside Vite.
 */
import { requestGpuDevice, readBuffer } from '../src/device/gpu.js';
import { runSmokeKernel, smokeReference } from '../src/device/smoke.js';

const prefer = process.argv[2] === 'software' ? 'software' : 'hardware';
const t0 = performance.now();
const ctx = await requestGpuDevice({ prefer });
const tDev = performance.now() - t0;
console.log(`adapter: ${ctx.adapterName}`);
console.log(`  software=${ctx.isSoftware} fallback=${ctx.isFallback} device in ${tDev.toFixed(0)} ms`);
console.log(`  maxStorageBufferBindingSize=${ctx.limits.maxStorageBufferBindingSize} ` +
  `maxComputeInvocationsPerWorkgroup=${ctx.limits.maxComputeInvocationsPerWorkgroup}`);

const n = 1 << 16;
const input = new Uint32Array(n).map((_, i) => (i * 2654435761) >>> 0);
const got = await runSmokeKernel(ctx.device, input, 0x1234);
const want = smokeReference(input, 0x1234);
const bad = got.findIndex((v, i) => v !== want[i]);
console.log(bad < 0 ? `smoke: ${n} elements OK` : `smoke: FAIL at [${bad}]`);

// Round trip cost: tiny copy + mapAsync, as the driver will do per fault batch.
const buf = ctx.device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
for (let i = 0; i < 20; i++) await readBuffer(ctx.device, buf); // warm up
const reps = 200;
const t1 = performance.now();
for (let i = 0; i < reps; i++) await readBuffer(ctx.device, buf);
console.log(`readBuffer round trip: ${((performance.now() - t1) / reps * 1000).toFixed(0)} us`);

ctx.device.destroy();
process.exitCode = bad < 0 ? 0 : 1;
