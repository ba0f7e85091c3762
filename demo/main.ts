// Minimal demo: get the GPU the same way tests do, show which one, run the smoke kernel.
// #smoke's data-status ends as 'pass' or 'fail' (what headless checks wait for).
import { requestGpuDevice } from '../src/device/gpu.js';
import { runSmokeKernel, smokeReference } from '../src/device/smoke.js';

function el(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e;
}

async function main(): Promise<void> {
  const smoke = el('smoke');
  try {
    const ctx = await requestGpuDevice();
    el('adapter').textContent = ctx.adapterName;
    el('limits').textContent = `maxStorageBufferBindingSize ${ctx.limits.maxStorageBufferBindingSize / 2 ** 20} MiB, ` +
      `maxComputeInvocationsPerWorkgroup ${ctx.limits.maxComputeInvocationsPerWorkgroup}`;

    const n = 10_000;
    const key = 0xc0ffee;
    const input = new Uint32Array(n).map((_, i) => (i * 2654435761) >>> 0);
    const t0 = performance.now();
    const got = await runSmokeKernel(ctx.device, input, key);
    const ms = performance.now() - t0;
    const want = smokeReference(input, key);
    const bad = got.findIndex((v, i) => v !== want[i]);
    smoke.dataset.status = bad < 0 ? 'pass' : 'fail';
    smoke.className = bad < 0 ? 'pass' : 'fail';
    smoke.textContent = bad < 0
      ? `PASS: ${n} elements match the CPU reference (${ms.toFixed(1)} ms)`
      : `FAIL: element ${bad} is 0x${got[bad].toString(16)}, want 0x${want[bad].toString(16)}`;
  } catch (e) {
    smoke.dataset.status = 'fail';
    smoke.className = 'fail';
    smoke.textContent = `FAIL: ${e instanceof Error ? e.message : String(e)}`;
    el('adapter').textContent ||= 'none';
  }
}

void main();
