/**
 * Proves the GPU path end to end on whatever adapter this runner has (Dawn in Node,
 * SwiftShader in Chromium): a real dispatch, error scopes that really catch, readback.
 */
import { describe, expect } from 'vitest';
import { GpuError, readBuffer, requestGpuDevice, takeUncapturedErrors, withErrorScopes } from '../../src/device/gpu.js';
import { POISON, runSmokeKernel, smokeReference } from '../../src/device/smoke.js';
import { gpuTest as test, u32Data } from '../support/gpu.js';

/** Compares every element and reports the first few mismatches with their index. */
function expectAllEqual(got: Uint32Array, want: Uint32Array): void {
  expect(got.length).toBe(want.length);
  const bad: string[] = [];
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) bad.push(`[${i}] got 0x${got[i].toString(16)} want 0x${want[i].toString(16)}`);
  }
  expect(bad.slice(0, 8), `${bad.length} of ${want.length} elements differ`).toEqual([]);
}

describe('gpu smoke', () => {
  test('adapter is named', ({ gpu }) => {
    console.log(`adapter: ${gpu.adapterName} (software=${gpu.isSoftware}, fallback=${gpu.isFallback})`);
    expect(gpu.adapterName.trim()).not.toBe('');
    expect(gpu.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    // We asked for the adapter's maximum, not the default.
    expect(gpu.limits.maxComputeInvocationsPerWorkgroup).toBe(gpu.adapter.limits.maxComputeInvocationsPerWorkgroup);
  });

  test('kernel writes every element, and only those below count', async ({ gpu }) => {
    const n = 64 * 37 + 13; // several workgroups, last one partial
    const input = u32Data(n);
    const key = 0xa5a5_1234;
    for (const count of [n, n - 29]) {
      const got = await runSmokeKernel(gpu.device, input, key, { count });
      expectAllEqual(got, smokeReference(input, key, count));
      if (count < n) expect(got[n - 1]).toBe(POISON);
    }
  });

  test('kernel is right at several workgroup sizes', async ({ gpu }) => {
    const input = u32Data(1000, 7);
    const maxWg = Math.min(256, gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
    for (const wg of [1, 32, maxWg]) {
      expectAllEqual(await runSmokeKernel(gpu.device, input, wg, { workgroupSize: wg }), smokeReference(input, wg));
    }
  });

  test('error scopes catch a WGSL compile error', async ({ gpu }) => {
    const bad = withErrorScopes(gpu.device, () => gpu.device.createShaderModule({ code: 'fn main( {' }));
    await expect(bad).rejects.toBeInstanceOf(GpuError);
    await expect(bad).rejects.toThrow(/validation/);
    // Scopes were popped: the device still works and a clean run throws nothing.
    const input = u32Data(100, 3);
    expectAllEqual(await runSmokeKernel(gpu.device, input, 1), smokeReference(input, 1));
  });

  test('error scopes report the GPU error even when fn also throws', async ({ gpu }) => {
    const p = withErrorScopes(gpu.device, () => {
      gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
      throw new Error('fn failed');
    });
    await expect(p).rejects.toThrow(/validation/);
  });

  test('readBuffer reads unaligned ranges', async ({ gpu }) => {
    const data = new Uint8Array(40).map((_, i) => i * 7 + 1);
    const buf = gpu.device.createBuffer({ size: 40, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    gpu.device.queue.writeBuffer(buf, 0, data);
    expect(new Uint8Array(await readBuffer(gpu.device, buf, 3, 10))).toEqual(data.slice(3, 13));
    expect(new Uint8Array(await readBuffer(gpu.device, buf))).toEqual(data);
    await expect(readBuffer(gpu.device, buf, 38, 4)).rejects.toThrow(/outside/);
    buf.destroy();
  });

  test('errors outside any scope are recorded as uncaptured', async () => {
    // Own device, so the shared one's per-test check stays clean.
    const ctx = await requestGpuDevice({ label: 'uncaptured' });
    try {
      ctx.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
      let errs: string[] = [];
      for (let i = 0; i < 100 && errs.length === 0; i++) {
        await ctx.device.queue.onSubmittedWorkDone();
        await new Promise((r) => setTimeout(r, 10));
        errs = takeUncapturedErrors(ctx.device);
      }
      expect(errs.join('\n')).toMatch(/ValidationError/);
    } finally {
      ctx.device.destroy();
    }
  });

  test('a lost device gives a clear error', async () => {
    const ctx = await requestGpuDevice({ label: 'doomed' });
    ctx.device.destroy();
    const info = await ctx.device.lost;
    expect(info.reason).toBe('destroyed');
    const buf = { usage: GPUBufferUsage.COPY_SRC, size: 4, label: 'x' } as GPUBuffer;
    await expect(readBuffer(ctx.device, buf)).rejects.toThrow(/device is lost/);
    await expect(withErrorScopes(ctx.device, () => 1)).rejects.toThrow(/device is lost/);
  });
});
