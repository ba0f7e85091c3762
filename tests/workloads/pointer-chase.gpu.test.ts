/**
 * The pointer chase through the mirror: 1,024 chasers, 64 dependent hops each along one
 * random cycle of a 128-page buffer. A chaser's progress survives its replays (kept in io),
 * so a replay resumes at the hop that missed; `out` starts poisoned
 * and every chaser's end point is compared with the CPU's walk.
 */
import { describe, expect } from 'vitest';
import { appProgram } from '../../src/workloads/apps/index.js';
import { gpuTest as test } from '../support/gpu.js';
import { runAppChecked } from './app-harness.js';

describe('pointer-chase', () => {
  test('1,024 chasers × 64 hops over 131,072 words: every end point matches the CPU, on demand', async () => {
    expect(appProgram('pointer-chase', 0.5, 5).shape).toBe('1024 chasers × 64 hops over 131072 words');
    const r = await runAppChecked('pointer-chase', 0.5, { policy: 'first-touch' });
    // Dependent loads: a chaser's second hop can only fault once its first was serviced.
    expect(r.faultRounds).toBeGreaterThanOrEqual(2);
  });
});
