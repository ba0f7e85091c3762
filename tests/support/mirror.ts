/**
 * Vitest fixtures for mirrors, on the worker's shared GPU (tests/support/gpu.ts gpuTest):
 * `{ machine, proc, mirror }` — a machine whose devices use that GPU, a process on it and
 * dmirror0 opened on the process (/dev/hmm_dmirror0, as test_hmm's hmm_open). Teardown as
 * machineTest's: accounting consistent, then destroyed and every frame free.
 *
 *   mirrorTest('…', async ({ proc, mirror }) => { … });
 *   describe('tight device memory', () => { mirrorTest.override('machineOptions', { devicePages: 8 }); … });
 *   describe('seeded', () => { mirrorTest.override('seed', 3); … });   // a fresh SeededScheduler(3) each test: machine.sched
 *   mirrorTest('…', async ({ machines }) => { const m = await machines({ devices: 2 }); … });   // exactly these options, on the shared GPU
 */
import type { Machine, Process } from '../../src/index.js';
import type { Dmirror } from '../../src/driver/dmirror.js';
import { createMachine } from '../../src/index.js';
import { SeededScheduler } from '../../src/sched/seeded.js';
import type { SystemOptions } from '../../src/system.js';
import { gpuTest } from './gpu.js';
import { machineFactory, seeded, type MachineFactory } from './machine.js';
import { checkMachineTeardown } from './teardown.js';

/** The defaults: small, so the teardown's full recount stays cheap. */
export const MIRROR_MACHINE: SystemOptions = { devices: 1, systemPages: 4096, devicePages: 256, aperturePages: 512 };

export const mirrorTest = gpuTest
  .extend('machineOptions', {} as SystemOptions)
  /** Non-null: the machine runs on a fresh SeededScheduler(seed), its own each test. */
  .extend('seed', null as number | null)
  .extend('machine', async ({ gpu, machineOptions, seed }, { onCleanup }): Promise<Machine> => {
    const sched = seed === null ? {} : { scheduler: new SeededScheduler(seed) };
    const m = await createMachine({ ...MIRROR_MACHINE, ...sched, ...machineOptions, gpuContext: Promise.resolve(gpu) });
    onCleanup(() => checkMachineTeardown(m));
    return m;
  })
  /**
   * More machines, or one with other options: `await machines(opts)` is createMachine(opts) on
   * the shared GPU (unless opts names a gpu) with the fixture's seed (unless opts names a
   * scheduler); no MIRROR_MACHINE defaults. Each torn down as `machine` is.
   */
  .extend('machines', async ({ gpu, seed }, { onCleanup }): Promise<MachineFactory> =>
    machineFactory((o) => ({ ...seeded(seed), ...(o.gpu === undefined ? { gpuContext: Promise.resolve(gpu) } : {}) }), onCleanup))
  .extend('proc', async ({ machine }): Promise<Process> => machine.spawn())
  .extend('mirror', async ({ machine, proc }): Promise<Dmirror> => machine.devices[0].open(proc));
