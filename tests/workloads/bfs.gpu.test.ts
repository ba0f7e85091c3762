/**
 * Rodinia bfs through the mirror: a generated graph of about 2,700 nodes (16,000 edges),
 * every level two launches over the same mirrored buffer (Kernel, Kernel2) until Kernel2
 * reports nothing updated. cost starts poisoned except at the source; every node's cost,
 * every flag byte and every edge are compared with the CPU's run of the same kernels.
 */
import { describe, expect } from 'vitest';
import { appProgram } from '../../src/workloads/apps/index.js';
import { referenceOf } from '../../src/workloads/apps/run.js';
import { gpuTest as test } from '../support/gpu.js';
import { runAppChecked } from './app-harness.js';

const SIZE = 0.1;

describe('bfs', () => {
  test('a 2,700-node graph: every cost and flag matches the CPU, over several levels', async () => {
    const p = appProgram('bfs', SIZE, 5);
    expect(p.shape).toMatch(/^graph of 2681 nodes, 16086 edges$/);
    // Levels: the CPU reference's launches (2 a level, and the last level's pair that found nothing).
    let launches = 0;
    await referenceOf({ ...p, run: (h) => p.run({ ...h, launch: (...a) => { launches++; return h.launch(...a); } }) }, p.initial());
    expect(launches).toBeGreaterThanOrEqual(8);
    const r = await runAppChecked('bfs', SIZE);
    expect(r.rounds).toBeGreaterThanOrEqual(launches);
  });

  test('another seed is another graph, checked the same way', async () => {
    const a = appProgram('bfs', SIZE, 5).initial();
    const b = appProgram('bfs', SIZE, 6).initial();
    expect(a.some((v, k) => v !== b[k])).toBe(true);
    await runAppChecked('bfs', SIZE, { seed: 6, policy: 'first-touch' });
  });
});
