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
 *   machineTest('…', async ({ machines }) => { const a = await machines({ devices: 1 }); … });   // several, each torn down as `machine`
 *
 * No GPU: the machine's devices are never opened unless a test opens them.
 */
import { test } from 'vitest';
import { createMachine, type Machine } from '../../src/index.js';
import { SeededScheduler } from '../../src/sched/seeded.js';
import type { SystemOptions } from '../../src/system.js';
import { checkMachineTeardown } from './teardown.js';

/** Makes a machine with these options (the fixture's seed, if any, unless they name a scheduler); torn down with the test. */
export type MachineFactory = (opts?: SystemOptions) => Promise<Machine>;

/**
 * A factory fixture's body: every machine it made gets checkMachineTeardown at cleanup, all
 * of them even if one fails (the first failure is rethrown).
 */
export function machineFactory(base: (opts: SystemOptions) => SystemOptions, onCleanup: (fn: () => Promise<void>) => void): MachineFactory {
  const made: Machine[] = [];
  onCleanup(async () => {
    const errors: unknown[] = [];
    for (const m of made.splice(0)) await checkMachineTeardown(m).catch((e: unknown) => { errors.push(e); });
    if (errors.length > 0) throw errors[0];
  });
  return async (opts = {}) => {
    const m = await createMachine({ ...base(opts), ...opts });
    made.push(m);
    return m;
  };
}

/** The scheduler options of a fixture's seed: a fresh SeededScheduler(seed) each call. */
export const seeded = (seed: number | null): SystemOptions => (seed === null ? {} : { scheduler: new SeededScheduler(seed) });

export const machineTest = test
  /** RAM of the machine, in 4 KiB pages: 4096 = 16 MiB (8 huge blocks), small enough to check fully. */
  .extend('systemPages', 4096 as number)
  /** Non-null: the machine runs on a fresh SeededScheduler(seed), its own each test. */
  .extend('seed', null as number | null)
  .extend('machine', async ({ systemPages, seed }, { onCleanup }): Promise<Machine> => {
    const m = await createMachine({ systemPages, ...(seed === null ? {} : { scheduler: new SeededScheduler(seed) }) });
    onCleanup(() => checkMachineTeardown(m));
    return m;
  })
  /** Several machines (or one with createMachine options): `await machines(opts)`, each torn down as `machine` is. */
  .extend('machines', async ({ seed }, { onCleanup }): Promise<MachineFactory> => machineFactory(() => seeded(seed), onCleanup));
