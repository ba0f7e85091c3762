/**
 * Rodinia backprop through the mirror: 2,240 input units (0.3 MiB), the forward-pass
 * launch, the host's step (it reads the partial sums and row 0 of the weights back through
 * the CPU, writes hidden_delta), the weight-update launch. hidden_partial_sum and
 * hidden_delta start poisoned; every weight, momentum term, partial sum and delta is compared
 * with the CPU's run of the same host code over the CPU kernels.
 */
import { describe, expect } from 'vitest';
import { appProgram } from '../../src/workloads/apps/index.js';
import { gpuTest as test } from '../support/gpu.js';
import { runAppChecked } from './app-harness.js';

describe('backprop', () => {
  test('2,240 inputs: forward pass, host step, weight update all match the CPU', async () => {
    expect(appProgram('backprop', 0.3, 5).shape).toBe('2240 input units, 16 hidden, 1 output');
    const r = await runAppChecked('backprop', 0.3);
    expect(r.policy!.cpuFaults + r.policy!.farFaults).toBeGreaterThan(0);
  });
});
