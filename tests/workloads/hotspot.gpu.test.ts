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
    // Every one of the 48 pages arrived by a far fault (UVM_Smart's count: a page once) or a prefetch.
    expect(r.policy!.farFaults + r.policy!.prefetchedPages).toBeGreaterThanOrEqual(48);
    expect(r.policy!.faultRecords).toBeGreaterThanOrEqual(r.policy!.farFaults);
  });

  test('another seed, on-demand first-touch', async () => {
    await runAppChecked('hotspot', SIZE, { policy: 'first-touch', seed: 11 });
  });
});
