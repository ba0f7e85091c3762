/**
 * Rodinia srad_v2 through the mirror: a 160 × 160 image, 4 iterations of two launches, the
 * host reading the ROI of J back through the CPU before each (its q0sqr then comes from what
 * the GPU computed). C and the four derivative arrays start poisoned; every element of all
 * six is compared with the CPU's run of the same host code over the CPU kernels.
 */
import { describe, expect } from 'vitest';
import { appProgram } from '../../src/workloads/apps/index.js';
import { gpuTest as test } from '../support/gpu.js';
import { runAppChecked } from './app-harness.js';

describe('srad', () => {
  test('160×160, 4 iterations (8 launches, 4 ROI reads through the CPU): every element matches the CPU', async () => {
    expect(appProgram('srad', 0.1, 5).shape).toBe('160×160 image, 4 iterations (8 launches)');
    const r = await runAppChecked('srad', 0.1);
    expect(r.rounds).toBeGreaterThanOrEqual(8);
  });
});
