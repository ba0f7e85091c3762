/**
 * The scenario gallery: one click runs a small experiment that shows one thing, with a
 * sentence saying what to look at. A scenario of several runs pins each run but the last,
 * so the comparison shows them side by side. Every entry is checked against the lab's
 * bounds (checkSettings) by the tests.
 */
import { DEFAULT_SETTINGS, type LabSettings } from './config.js';

export interface Scenario {
  id: string;
  title: string;
  /** What it shows, one sentence. */
  says: string;
  /** The runs, in order. */
  runs: LabSettings[];
}

const base: LabSettings = { ...DEFAULT_SETTINGS };

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'coalescing',
    title: 'Coalescing on / off',
    says: 'The same faults serviced per fault and then coalesced into ranges: compare range-fault calls and the coalescing factor.',
    runs: [
      { ...base, workload: 'stream', sizeMiB: 0.5, window: 65536, batchSize: 32, stormRate: 0, coalesce: false },
      { ...base, workload: 'stream', sizeMiB: 0.5, window: 65536, batchSize: 32, stormRate: 0, coalesce: true },
    ],
  },
  {
    id: 'race-2019',
    title: 'The 2019 race: valid-flag vs seq',
    says: 'Under an invalidation storm the v5.2 valid flag lets stale pfns into the mirror and seq retries instead: compare stale pfns, wrong words and retries.',
    runs: [
      { ...base, workload: 'random', sizeMiB: 1, window: 4096, batchSize: 16, stormRate: 3000, writeFraction: 0, protocol: 'valid-flag' },
      { ...base, workload: 'random', sizeMiB: 1, window: 4096, batchSize: 16, stormRate: 3000, writeFraction: 0, protocol: 'seq' },
    ],
  },
  {
    id: 'pingpong',
    title: 'Ping-pong thrashing and its detection',
    says: 'The CPU and the GPU take turns on the same pages: first-touch migrates them back and forth, the thrashing policy detects it and pins them.',
    runs: [
      { ...base, workload: 'pingpong', sizeMiB: 0.5, window: 65536, batchSize: 64, stormRate: 0, policy: 'first-touch', oversub: 1 },
      { ...base, workload: 'pingpong', sizeMiB: 0.5, window: 65536, batchSize: 64, stormRate: 0, policy: 'thrashing', oversub: 1 },
    ],
  },
  {
    id: 'tree-prefetch',
    title: 'Tree prefetch at 1.5× oversubscription',
    says: 'Prefetch brings in neighbours the eviction order then throws out: first-touch vs first-touch+tree with device memory two thirds of the working set.',
    runs: [
      { ...base, workload: 'stream', sizeMiB: 1, window: 65536, batchSize: 64, stormRate: 0, policy: 'first-touch', oversub: 1.5 },
      { ...base, workload: 'stream', sizeMiB: 1, window: 65536, batchSize: 64, stormRate: 0, policy: 'first-touch+tree', oversub: 1.5 },
    ],
  },
  {
    id: 'two-processes',
    title: 'Two processes on one device',
    says: 'Two processes stream their own buffers at once, each through its own mirror of the one device, sharing its memory 1.5× oversubscribed: their batches interleave in one driver and the pages one process migrates in are pages the other cannot get (skipped, mapped remotely).',
    runs: [{ ...base, workload: 'stream', sizeMiB: 0.5, window: 65536, batchSize: 16, stormRate: 0, policy: 'first-touch', oversub: 1.5, processes: 2 }],
  },
  {
    id: 'seeds',
    title: 'Three seeds of the default',
    says: 'The default run with three seeds: the run set shows each measure’s mean and spread, so a difference can be told from noise.',
    runs: [1, 2, 3].map((seed) => ({ ...base, seed })),
  },
];
