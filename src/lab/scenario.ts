/**
 * The scenario that checks the worker boundary: run in-thread in Node (tests/lab) and across
 * comlink in the browser (tests/e2e), it must give the same counters (view.ts runCounters),
 * committed in tests/lab/worker-scenario.expected.json. No storm, so nothing depends on time.
 */
import { DEFAULT_SETTINGS, toRunConfig } from './config.js';

export const WORKER_SCENARIO = toRunConfig({
  ...DEFAULT_SETTINGS, workload: 'stream', sizeMiB: 0.25, writeFraction: 0.25, window: 4096, batchSize: 4096, stormRate: 0, seed: 7,
});
