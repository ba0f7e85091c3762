/**
 * One lab run: the experiment's runner (runOne) with a RunObserver that turns what the run
 * does into a stream of LabEvents (records up) and a RunController that holds it at replay
 * boundaries (commands down). The same module runs in the page's Web Worker (worker.ts,
 * behind comlink) and in-thread in Node (the tests), so both give the same counters.
 */
import type { BatchRecord } from '../driver/records.js';
import type { FaultRecord } from '../device/fault-queue.js';
import { SimClock } from './sim-clock.js';
import type { Dmirror } from '../driver/dmirror.js';
import type { PolicyPath } from '../driver/policy-path.js';
import type { MigrationPolicy } from '../policy/types.js';
import type { TraceRecord } from '../policy/trace.js';
import { PAGE_SIZE } from '../mm/constants.js';
import { runOne } from '../experiment/runner.js';
import type { RunConfig, RunResult } from '../experiment/types.js';
import { RunController, type RunMode } from './controller.js';
import { joinSnapshots, snapshotMirror, watchInvalidations, type InvalidationNote, type MirrorSnapshot } from './snapshot.js';

/** Invalidations listed per flush; the rest are counted. */
export const MAX_INVALIDATIONS_LISTED = 8;

export type LabEvent =
  | { kind: 'begin'; config: RunConfig; start: number; pages: number; processes?: number }
  | { kind: 'batch'; rec: BatchRecord; wallMs: number; simMs: number; procSimMs?: number; policy?: PolicyBatch }
  | { kind: 'round'; proc: number; procSimMs?: number; faults: number; overflow: boolean; finished: boolean; capacity: number; simMs: number; wallMs: number; history: RoundFaults; done: number; total: number; tlbLookups: number; tlbWalks: number; stalled: number }
  | { kind: 'invalidations'; listed: (InvalidationNote & { simMs: number; proc?: number })[]; total: number; simMs: number[]; wallMs: number[] }
  | { kind: 'snapshot'; snapshot: MirrorSnapshot; simMs: number; wallMs: number }
  | { kind: 'state'; mode: RunMode; held: boolean }
  | { kind: 'end'; result: RunResult; pausedMs: number };

/**
 * The faults a round recorded, as page offsets into the buffer and their access (1 read,
 * 2 write, 3 atomic; +4 a protection fault): the per-page history's points (uvm-eval's
 * Fault.py scatter). At most MAX_ROUND_FAULTS per round, taken evenly, so the stream stays
 * small; `total` says how many there were.
 */
export interface RoundFaults {
  pages: Uint32Array;
  access: Uint8Array;
  total: number;
}

export const MAX_ROUND_FAULTS = 2048;
/** Invalidation instants sent per flush (each with its time); the rest are counted. */
export const MAX_INVALIDATION_TIMES = 512;

const ACCESS_CODE = { read: 1, write: 2, atomic: 3 } as const;

export function roundFaults(records: readonly FaultRecord[], firstPage: number, npages: number): RoundFaults {
  const step = Math.max(1, Math.ceil(records.length / MAX_ROUND_FAULTS));
  const n = Math.ceil(records.length / step);
  const pages = new Uint32Array(n);
  const access = new Uint8Array(n);
  let k = 0;
  for (let i = 0; i < records.length; i += step) {
    const f = records[i];
    const off = f.page - firstPage;
    if (off < 0 || off >= npages) continue;
    pages[k] = off;
    access[k++] = ACCESS_CODE[f.access] + (f.protection ? 4 : 0);
  }
  return { pages: pages.slice(0, k), access: access.slice(0, k), total: records.length };
}

export type LabSink = (events: LabEvent[]) => void;

/**
 * What the migration policy did since the previous batch record: differences of its
 * residency's running counters (ResidencyStats), read at each record. Moves made outside a
 * batch (the CPU faulting pages home, access-counter migrations at a command's end) land in
 * the next batch's figures; the run's totals (RunResult.policy) count everything.
 */
export interface PolicyBatch {
  migrationsToDevice: number;
  migrationsToHost: number;
  bytesToDevice: number;
  bytesToHost: number;
  thrashingEvents: number;
}

type PolicyTotals = PolicyBatch;

function policyTotals(path: PolicyPath): PolicyTotals {
  const r = path.engine.residency.stats;
  return {
    migrationsToDevice: r.migrationsToDevice, migrationsToHost: r.migrationsToHost, bytesToDevice: r.bytesToDevice,
    bytesToHost: r.bytesToHost, thrashingEvents: path.engine.thrashing.events,
  };
}

export interface LabRunOptions {
  /** Hold before the first replay (the page's Step from idle). */
  startPaused?: boolean;
  /** Take a mirror snapshot at every boundary (default true; Node tests turn it off). */
  snapshots?: boolean;
  /** config.policy's object, already loaded (a user's module: policy-module.ts). */
  policy?: MigrationPolicy;
  /** A trace workload's records (config.workload 'trace:NAME'): an imported file. */
  trace?: readonly TraceRecord[];
}

/**
 * Runs `config` and streams its events into `sink` (flushed at each replay boundary, each
 * state change and at the end). The controller is returned at once through `onController`
 * so commands can reach the run while it goes.
 */
export async function runLab(config: RunConfig, sink: LabSink, ctl: RunController, opts: LabRunOptions = {}): Promise<RunResult> {
  const snapshots = opts.snapshots ?? true;
  let queue: LabEvent[] = [];
  const flush = (): void => {
    if (queue.length === 0) return;
    const out = queue;
    queue = [];
    sink(out);
  };
  const t0 = performance.now();
  // Several processes (config.processes): a mirror, a policy path and a clock each; the lab
  // shows their buffers side by side (process i's pages from i * pages) and the device's
  // simulated time as the later of their clocks (they run at once).
  const nproc = config.processes ?? 1;
  const mirrors: Dmirror[] = [];
  const paths: (PolicyPath | null)[] = [];
  const seen: (PolicyTotals | null)[] = [];
  const clocks: SimClock[] = [];
  let buffer = { start: 0, pages: 0 };
  let invalidated = new Set<number>();
  let listed: (InvalidationNote & { simMs: number; proc?: number })[] = [];
  let invalTotal = 0;
  let invalAll = 0;
  let invalSim: number[] = [];
  let invalWall: number[] = [];
  /** Simulated ns at each batch's end, by process and batch index (the result's records are in fetch order). */
  const batchSimNs = new Map<string, number>();
  const simNs = (): number => clocks.reduce((t, c) => Math.max(t, c.ns), 0);
  const simMs = (): number => simNs() / 1e6;
  const wallMs = (): number => performance.now() - t0;
  let capacity = 0;
  let pausedFrom: number | null = null;
  let pausedMs = 0;

  ctl.onState = (mode, held) => {
    if (held && pausedFrom === null) pausedFrom = performance.now();
    if (!held && pausedFrom !== null) {
      pausedMs += performance.now() - pausedFrom;
      pausedFrom = null;
    }
    queue.push({ kind: 'state', mode, held });
    flush();
  };

  const takeInvalidations = (): void => {
    if (invalTotal === 0) return;
    queue.push({ kind: 'invalidations', listed, total: invalTotal, simMs: invalSim, wallMs: invalWall });
    listed = [];
    invalTotal = 0;
    invalSim = [];
    invalWall = [];
  };
  const snap = (): void => {
    takeInvalidations();
    if (!snapshots || mirrors.length < nproc) return;
    const each = mirrors.map((m, i) => snapshotMirror(m, buffer.start, buffer.pages, new Set([...invalidated].filter((p) => Math.floor(p / buffer.pages) === i).map((p) => p % buffer.pages)), paths[i]));
    queue.push({ kind: 'snapshot', snapshot: joinSnapshots(each), simMs: simMs(), wallMs: wallMs() });
    invalidated = new Set();
  };

  let result: RunResult;
  try {
    result = await runOne(config, {
      ...(opts.policy !== undefined ? { policy: opts.policy } : {}),
      ...(opts.trace !== undefined ? { trace: opts.trace } : {}),
      observer: {
        scheduler: ctl.sched,
        async onMirror(m, b, p, proc) {
          mirrors[proc] = m;
          paths[proc] = p;
          seen[proc] = p === null ? null : policyTotals(p);
          clocks[proc] = new SimClock(p);
          buffer = b;
          capacity = m.engine.faults.capacity;
          const base = proc * b.pages;
          await watchInvalidations(m, b.start, b.start + b.pages * PAGE_SIZE, (n) => {
            invalTotal++;
            invalAll++;
            if (listed.length < MAX_INVALIDATIONS_LISTED) listed.push({ ...n, simMs: simMs(), ...(nproc > 1 ? { proc } : {}) });
            if (invalSim.length < MAX_INVALIDATION_TIMES) {
              invalSim.push(simMs());
              invalWall.push(wallMs());
            }
            for (let a = n.start; a < n.end; a += PAGE_SIZE) invalidated.add(base + (a - b.start) / PAGE_SIZE);
          });
          if (proc < nproc - 1) return;
          queue.push({ kind: 'begin', config, start: b.start, pages: nproc * b.pages, processes: nproc });
          snap();
          flush();
        },
        onBatch(rec, proc) {
          ctl.noteBatch();
          const clock = clocks[proc];
          clock.batch(rec.unique);
          batchSimNs.set(`${proc}:${rec.index}`, clock.ns);
          let policy: PolicyBatch | undefined;
          const path = paths[proc];
          const was = seen[proc];
          if (path !== null && was !== null) {
            const now = policyTotals(path);
            policy = {
              migrationsToDevice: now.migrationsToDevice - was.migrationsToDevice, migrationsToHost: now.migrationsToHost - was.migrationsToHost,
              bytesToDevice: now.bytesToDevice - was.bytesToDevice, bytesToHost: now.bytesToHost - was.bytesToHost,
              thrashingEvents: now.thrashingEvents - was.thrashingEvents,
            };
            seen[proc] = now;
          }
          // Two processes: the device's time is the later clock; each batch's span is on its own.
          queue.push({ kind: 'batch', rec: { ...rec, ...(nproc > 1 ? { proc } : {}) }, wallMs: wallMs(), simMs: simMs(), ...(nproc > 1 ? { procSimMs: clock.ns / 1e6 } : {}), ...(policy ? { policy } : {}) });
        },
        onRound(r, proc) {
          const h = roundFaults(r.records, buffer.start / PAGE_SIZE, buffer.pages);
          if (proc > 0) for (let i = 0; i < h.pages.length; i++) h.pages[i] += proc * buffer.pages;
          queue.push({
            kind: 'round', proc, ...(nproc > 1 ? { procSimMs: clocks[proc].ns / 1e6 } : {}), faults: r.faults, overflow: r.overflow, finished: r.finished, capacity, simMs: simMs(), wallMs: wallMs(), done: r.done, total: r.total, tlbLookups: r.tlb.lookups, tlbWalks: r.tlb.walks, stalled: r.stalled,
            history: h,
          });
          if (r.finished) {
            snap();
            flush();
          }
        },
        async beforeRound(proc) {
          clocks[proc].round(); // before every round of the command: a launch or a replay
          snap();
          flush();
          await ctl.gate();
        },
      },
    });
  } finally {
    ctl.onState = () => {};
  }
  if (pausedFrom !== null) pausedMs += performance.now() - pausedFrom;
  takeInvalidations();
  result.lab = {
    simNs: simNs(), cost: (clocks[0] ?? new SimClock(null)).cost.name, invalidations: invalAll,
    batchSimNs: result.records.map((r) => batchSimNs.get(`${r.proc ?? 0}:${r.index}`) ?? 0),
  };
  queue.push({ kind: 'end', result, pausedMs });
  flush();
  return result;
}
