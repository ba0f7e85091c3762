/**
 * Rodinia pathfinder and nw through the mirror at small sizes (first-touch + tree + LRU):
 * pathfinder's 20 launches ping-pong between two result rows (gpuResult[1] starts poisoned);
 * nw's launches, one per anti-diagonal of 16 × 16 tiles, fill a score matrix whose interior
 * starts poisoned. Every element is compared with the CPU's run of the same kernels.
 */
import { describe, expect } from 'vitest';
import { appProgram } from '../../src/workloads/apps/index.js';
import { gpuTest as test } from '../support/gpu.js';
import { runAppChecked } from './app-harness.js';

describe('Rodinia: pathfinder, nw', () => {
  test('pathfinder: 1,300 columns × 200 rows in 20 launches match the CPU', async () => {
    expect(appProgram('pathfinder', 1, 5).shape).toBe('1300 columns × 200 rows, pyramid height 10 (20 launches)');
    const r = await runAppChecked('pathfinder', 1);
    expect(r.rounds).toBeGreaterThanOrEqual(20);
  });

  test('nw: 2 sequences of 160, 19 wavefront launches, every score matches the CPU', async () => {
    expect(appProgram('nw', 0.2, 5).shape).toBe('2 sequences of 160, 19 launches');
    const r = await runAppChecked('nw', 0.2);
    expect(r.rounds).toBeGreaterThanOrEqual(19);
  });
});
