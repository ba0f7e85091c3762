/**
 * PolyBench/GPU through the mirror, each at a small size under first-touch + tree prefetch +
 * LRU: 2DCONV (B poisoned: every interior element must be written, the border must keep
 * its poison), ATAX (y and tmp poisoned; two launches, rows then columns), FDTD-2D (15
 * launches updating three fields in place), GEMM (C in place). Every element of every array
 * is compared with the CPU's run of the same kernels.
 */
import { describe, expect } from 'vitest';
import { appProgram } from '../../src/workloads/apps/index.js';
import { POISON_F32 } from '../../src/workloads/apps/program.js';
import type { AppWorkload } from '../../src/workloads/names.js';
import { gpuTest as test } from '../support/gpu.js';
import { runAppChecked } from './app-harness.js';

const CASES: { name: AppWorkload; size: number; shape: string; poisoned: string[] }[] = [
  { name: '2dconv', size: 0.125, shape: '128×128', poisoned: ['B'] },
  { name: 'atax', size: 0.1, shape: '160×160', poisoned: ['y', 'tmp'] },
  { name: 'fdtd-2d', size: 0.1, shape: '96×96, 5 time steps (15 launches)', poisoned: [] },
  { name: 'gemm', size: 0.1, shape: '96×96×96', poisoned: [] },
];

describe('PolyBench/GPU', () => {
  test.for(CASES.map((c) => [c.name, c.shape, c] as const))('%s %s: every element matches the CPU', async ([, , c]) => {
    const p = appProgram(c.name, c.size, 5);
    expect(p.shape).toBe(c.shape);
    const init = p.initial();
    for (const name of c.poisoned) {
      const a = p.arrays.find((x) => x.name === name)!;
      expect(init.subarray(a.offset, a.offset + a.length).every((v) => v === POISON_F32)).toBe(true);
    }
    await runAppChecked(c.name, c.size);
  });
});
