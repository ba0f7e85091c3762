/**
 * Rodinia hotspot through the mirror: a 128 × 128 grid (48 pages) under first-touch + the
 * tree prefetcher + LRU eviction, 4 launches over the same buffer. MatrixTemp[1] starts
 * poisoned (NaN); every element of both grids and the power grid is compared with the CPU's
 * serial stencil.
 */
import { describe, expect } from 'vitest';
import { appProgram } from '../../src/workloads/apps/index.js';
import { gpuTest as test } from '../support/gpu.js';
import { runAppChecked } from './app-harness.js';

const SIZE = 0.1875; // 128 × 128

describe('hotspot', () => {
  test('128×128, 8 iterations in 4 launches: every cell matches the CPU', async () => {
    expect(appProgram('hotspot', SIZE, 5).shape).toMatch(/^128×128 grid/);
    const r = await runAppChecked('hotspot', SIZE);
    expect(r.policy!.farFaults).toBeGreaterThanOrEqual(48);
  });

  test('another seed, on-demand first-touch', async () => {
    await runAppChecked('hotspot', SIZE, { policy: 'first-touch', seed: 11 });
  });
});
