/**
 * A GPU device shared by every test of a worker (in practice one per test file: vitest
 * isolates files). Use `gpuTest` instead of `test` and take `{ gpu }` from the context.
 * After each test, errors that escaped every error scope fail that test.
 */
import { test } from 'vitest';
import { requestGpuDevice, takeUncapturedErrors, type GpuContext } from '../../src/device/gpu.js';

export const gpuTest = test
  .extend('gpuShared', { scope: 'worker' }, async ({}, { onCleanup }): Promise<GpuContext> => {
    const ctx = await requestGpuDevice({ label: 'test device' });
    onCleanup(() => ctx.device.destroy());
    return ctx;
  })
  .extend('gpu', async ({ gpuShared }, { onCleanup }): Promise<GpuContext> => {
    takeUncapturedErrors(gpuShared.device); // start each test clean
    onCleanup(async () => {
      // Uncaptured errors arrive asynchronously; let queued work and callbacks finish.
      await gpuShared.device.queue.onSubmittedWorkDone();
      const errs = takeUncapturedErrors(gpuShared.device);
      if (errs.length > 0) throw new Error(`uncaptured GPU errors during test:\n${errs.join('\n')}`);
    });
    return gpuShared;
  });

/** Deterministic u32 data (xorshift32), so failures reproduce. */
export function u32Data(n: number, seed = 0x9e3779b9): Uint32Array<ArrayBuffer> {
  const out = new Uint32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x;
  }
  return out;
}
