/**
 * Vitest fixtures for machines: take `{ machine }` from the test context instead of
 * creating one. At teardown the frame accounting is recomputed from scratch
 * (checkFrameAccounting: every reference, swap slot and free frame), then the machine is
 * destroyed and every frame but the zero page must be free, nothing in swap — so no test
 * can leak a frame without failing.
 *
 *   machineTest('…', async ({ machine }) => { const p = machine.spawn(); … });
 *   describe('a small pool', () => { machineTest.override('systemPages', 2048); … });
 *   describe('seeded', () => { machineTest.override('seed', 5); … });   // a fresh SeededScheduler(5) each test: machine.sched
 *
 * No GPU: the machine's devices are never opened unless a test opens them.
 */
import { test } from 'vitest';
import { createMachine, type Machine } from '../../src/index.js';
import { checkFrameAccounting } from '../../src/mm/accounting.js';
import { SeededScheduler } from '../../src/sched/seeded.js';

/** Teardown of a machine fixture: consistent now, and empty once destroyed. */
export async function checkMachineTeardown(m: Machine): Promise<void> {
  checkFrameAccounting(m);
  await m.destroy();
  const r = checkFrameAccounting(m);
  const problems = [
    r.usedFrames !== 1 ? `${r.usedFrames} frames in use (only the zero page should be)` : '',
    r.swapSlots !== 0 ? `${r.swapSlots} swap slots in use` : '',
    m.ram.freePages !== m.ram.npages - 1 ? `${m.ram.npages - 1 - m.ram.freePages} frames not free` : '',
  ].filter((x) => x !== '');
  if (problems.length > 0) throw new Error(`after destroy: ${problems.join('; ')}`);
}

export const machineTest = test
  /** RAM of the machine, in 4 KiB pages: 4096 = 16 MiB (8 huge blocks), small enough to check fully. */
  .extend('systemPages', 4096 as number)
  /** Non-null: the machine runs on a fresh SeededScheduler(seed), its own each test. */
  .extend('seed', null as number | null)
  .extend('machine', async ({ systemPages, seed }, { onCleanup }): Promise<Machine> => {
    const m = await createMachine({ systemPages, ...(seed === null ? {} : { scheduler: new SeededScheduler(seed) }) });
    onCleanup(() => checkMachineTeardown(m));
    return m;
  });
