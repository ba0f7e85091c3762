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

/** Deterministic u32 data, so failures reproduce (the tests' one PRNG). */
export { u32Data } from '../support/prng.js';
