/**
 * The experiment's runner: one RunConfig on the GPU, measured.
 *
 *   openExperiment()     the GPU every run shares (defaultGpu), its adapter name, and close()
 *                        which destroys the device so Node can exit;
 *   runOne(config, ctx)  a fresh machine with one dmirror device, a process with a 2 MiB-
 *                        aligned buffer of config.sizeMiB, a mirror of it and a fault service
 *                        configured from the config (observed through its events); the workload (src/workloads/run.ts) runs
 *                        through that servicer while an invalidation storm (storm.ts) hits the
 *                        buffer at config.stormRate, from the end of the CPU's initialisation
 *                        to the start of its final read-back. The result is built from the
 *                        servicer's per-batch records, the storm's counts and the workload's
 *                        verification. wallMs is the workload's run: its GPU commands (rounds,
 *                        fault servicing, write-back) and pingpong's CPU phases — not the
 *                        machine's setup, the CPU's initialisation or the final read-back.
 *
 * A run that fails with an HmmError (EBUSY from a retry protocol starved by the storm,
 * EFAULT, ENOMEM, ENODEV) is a result with ok: false and the error, not a throw; anything
 * else (a bug) throws, and the experiment driver records it as such.
 */
import { defaultGpu } from '../driver/dmirror-device.js';
import type { Dmirror } from '../driver/dmirror.js';
import type { FaultService, RoundEvent, ServiceEvents, ServiceListener } from '../driver/fault-service.js';
import { totals, type BatchRecord } from '../driver/records.js';
import type { Scheduler } from '../sched/scheduler.js';
import { HmmError } from '../errors.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PMD_SIZE, PROT_READ, PROT_WRITE } from '../mm/constants.js';
import type { PolicyPath } from '../driver/policy-path.js';
import { guardPolicy, type GuardedPolicy } from '../policy/guard.js';
import { loadPolicy } from '../policy/loader.js';
import { COST_MODELS, costWithKnobs, DEFAULT_COST } from '../policy/cost.js';
import { uvmParams } from '../policy/uvm-params.js';
import type { TraceRecord } from '../policy/trace.js';
import type { MigrationPolicy } from '../policy/types.js';
import { runTrace, tracePages, TRACE_PREFIX } from './trace-run.js';
import { createMachine } from '../system.js';
import type { Process } from '../mm/process.js';
import { isAppWorkload, type SyntheticWorkload } from '../workloads/names.js';
import { appDef, checkAppRun, type AppProgram } from '../workloads/apps/index.js';
import { runApp } from '../workloads/apps/run.js';
import { costKnobPairs, policyOptions } from './schema.js';
import { DEFAULT_WATCHDOG, Watchdog, type ProgressSample, type WatchdogBounds } from './watchdog.js';
import { runWorkload, type WorkloadResult } from '../workloads/run.js';
import { startStorm, type Storm, type StormKind } from '../workloads/storm.js';
import type { PolicyRunResult, RunConfig, RunResult, StormStats } from './types.js';

/** Where the buffer goes: 2 MiB aligned, far from anything else the process maps. */
export const BUFFER_ADDR = 0x4000_0000;
/** Retry protocol bounds (HMM_RANGE_DEFAULT_TIMEOUT; lock-fallback's failed attempts). */
export const SERVICER_TIMEOUT_MS = 1000;
export const SERVICER_FALLBACK_AFTER = 3;

/**
 * The largest buffer one command binds on the default GPU (main.ts checks application
 * workloads' footprints against it before anything runs or is written).
 */
export async function maxBufferBytes(): Promise<number> {
  return (await defaultGpu()).limits.maxStorageBufferBindingSize;
}

export async function openExperiment(): Promise<{ adapter: string; close(): Promise<void> }> {
  const gpu = await defaultGpu();
  return {
    adapter: gpu.adapterName,
    async close() {
      gpu.device.destroy();
    },
  };
}

/** The storm's operations for a config: protect only when nothing writes (a device write would rightly get EPERM). */
export function stormKinds(config: RunConfig): StormKind[] {
  // Not 'remap': read + munmap + mmap + write back is a data race with the device by
  // construction (its accesses in between see a hole or zeros), so it can't keep the
  // workloads' results checkable. cow and reclaim preserve contents atomically.
  // Application workloads always write.
  return config.writeFraction === 0 && !isAppWorkload(config.workload) ? ['cow', 'reclaim', 'protect'] : ['cow', 'reclaim'];
}

function pagesOf(config: RunConfig): number {
  const pages = config.sizeMiB * 256;
  if (!Number.isSafeInteger(pages) || pages < 1) throw new Error(`sizeMiB ${config.sizeMiB} is not a whole number of pages`);
  return pages;
}

function emptyResult(config: RunConfig): RunResult {
  return {
    config, ok: true, error: null, wallMs: 0, rounds: 0, faultRounds: 0, totals: totals([]), records: [],
    storm: { ops: 0, byKind: {} }, verify: { checked: 0, mismatches: 0 }, faultsPerSec: 0,
  };
}

export interface RunContext {
  onProgress?: (msg: string) => void;
  /** The storm's operations instead of stormKinds(config) (tests: the content-preserving ones). */
  stormKinds?: readonly StormKind[];
  /** Watching the run while it goes (the live lab): records up, commands down. */
  observer?: RunObserver;
  /** Record the run's device and CPU faults here, at virtual time (--record-trace). */
  recordTrace?: TraceRecord[];
  /**
   * The policy object for config.policy, already loaded (the lab's worker: a user module
   * imported from a Blob URL, which loadPolicy's file paths cannot reach).
   */
  policy?: MigrationPolicy;
  /** The no-progress watchdog's bounds (watchdog.ts); default DEFAULT_WATCHDOG, null: none. */
  watchdog?: WatchdogBounds | null;
  /** config.workload's trace records, already read (the lab: an imported Nsight or uvm-eval file). */
  trace?: readonly TraceRecord[];
  /** false: the engines re-run stalled workgroups every round (SystemOptions.skipStalled; for A/B). */
  skipStalled?: boolean;
}

/**
 * A live view of one run, one way each: batch records and round results go up as they
 * complete; the only thing that comes down is beforeRound's promise, awaited at every replay
 * boundary (between batches: the servicer replays after each batch under 'block', 'batch'
 * and 'batch-flush', after the whole buffer under 'once'). Pausing holds that promise;
 * throwing from it (an HmmError: EINTR) ends the run there as a failed run with that error.
 */
export interface RunObserver {
  /** The machine's scheduler (the lab's pausable one); default: the default scheduler. */
  scheduler?: Scheduler;
  /**
   * Each mirror once it is open, before the workloads start (read-only inspection); `proc`:
   * the process's index in the run (config.processes: 0, or 0 and 1, each with its own mirror
   * and buffer on the one device).
   */
  onMirror?(mirror: Dmirror, buffer: { start: number; pages: number }, policy: PolicyPath | null, proc: number): Promise<void> | void;
  /** Each batch record once its batch is serviced, in order per process; `proc` as onMirror's. */
  onBatch?(rec: BatchRecord, proc: number): void;
  /** Each round that faulted (the fault ring's fill: faults recorded, overflow), before its service. */
  onRound?(r: RoundEvent, proc: number): void;
  /** Awaited before every round of a workload's command (replays and the first round). */
  beforeRound?(proc: number): Promise<void>;
}

/**
 * The run's observer and watchdog as one listener on the fault service's events: records
 * completed by then are reported first (the service does), the watchdog asked, then the
 * observer's beforeRound awaited — at every pre-round hook, where the service holds no lock.
 */
function runListener(obs: RunObserver, dog: Watchdog | null, sample: () => ProgressSample, proc: number): ServiceListener {
  return {
    onBatch: (rec) => obs.onBatch?.(rec, proc),
    onRound: (r) => obs.onRound?.(r, proc),
    beforeRound: async () => {
      const stuck = dog?.check(sample()) ?? null;
      if (stuck !== null) throw stuck;
      await obs.beforeRound?.(proc);
    },
  };
}

/** What the run counts from the service's events (progress: commands begun, invocations done), rounds whose fault ring overflowed. */
interface EventCounts { commands: number; ringOverflows: number; done: number }

function eventCounts(events: ServiceEvents): EventCounts {
  const c = { commands: 0, ringOverflows: 0, done: 0 };
  let launchDone = 0; // the command in flight's done count so far
  events.subscribe({
    onCommand: () => { c.commands++; launchDone = 0; },
    onRound: (r) => {
      if (r.overflow) c.ringOverflows++;
      if (r.done > launchDone) {
        c.done += r.done - launchDone;
        launchDone = r.done;
      }
    },
  });
  return c;
}

/** The run's progress as the watchdog reads it: sums kept as the records come. */
function progressSampler(service: FaultService, counts: EventCounts, path: PolicyPath | null): () => ProgressSample {
  let summed = 0;
  let writes = 0;
  let faults = 0;
  let rounds = 0;
  return () => {
    const recs = service.records;
    for (; summed < recs.length; summed++) {
      writes += recs[summed].mirrorWrites;
      faults += recs[summed].fetched;
    }
    rounds++;
    const ps = path?.stats;
    return {
      progress: writes + counts.commands + (ps?.migratedIn ?? 0) + (ps?.remotePages ?? 0),
      simNs: path?.now ?? 0, wallMs: performance.now(), throttled: ps?.throttledFaults ?? 0,
      migratedIn: ps?.migratedIn ?? 0, evictedOut: ps?.evictedOut ?? 0, faults, rounds, completed: counts.done + counts.commands,
    };
  };
}

/** One process of a run: its buffer, its mirror on the device, and what it measured. */
interface Tenant {
  proc: Process;
  start: number;
  mirror: Dmirror | null;
  path: PolicyPath | null;
  service: FaultService | null;
  counts: EventCounts | null;
  storm: Storm | null;
  stormStats: StormStats | null;
  w: WorkloadResult | null;
}

export async function runOne(config: RunConfig, ctx: RunContext): Promise<RunResult> {
  const result = emptyResult(config);
  const refuse = (why: string): RunResult => ({ ...result, ok: false, error: `EINVAL: ${why}` });
  if (config.policy !== undefined && config.protocol === 'valid-flag') {
    // Refused, not run without the policy: the policy path rechecks the notifier sequence
    // (mmu_interval_read_retry) that the v5.2 valid flag does not have.
    return refuse(`policy ${config.policy} with protocol valid-flag: the policy path needs seq or lock-fallback`);
  }
  const nproc = config.processes ?? 1;
  if (nproc > 1) {
    // Each process runs the same synthetic workload over its own buffer; a trace or an
    // application is one program's, and a policy object handed in (a user's module) is one
    // instance, where each process's mirror needs its own.
    if (config.workload.startsWith(TRACE_PREFIX) || isAppWorkload(config.workload)) return refuse(`${nproc} processes run a synthetic workload each, not ${config.workload}`);
    if (ctx.policy !== undefined || ctx.recordTrace) return refuse(`${nproc} processes need a built-in policy (one instance per mirror) and no trace recording`);
  }
  // Nsight SQLite and uvm-eval logs need sql.js and Node's fs: loaded only for a trace file.
  const trace = ctx.trace ?? (config.workload.startsWith(TRACE_PREFIX) ? await (await import('../trace/load.js')).loadAnyTrace(config.workload) : null);
  const gpu = await defaultGpu();
  // An application workload's buffer is its footprint at config.sizeMiB (its arrays, laid out).
  const app: AppProgram | null = isAppWorkload(config.workload)
    ? checkAppRun(config.workload, config.sizeMiB, config.seed, { oversub: config.policy === undefined ? 1 : config.oversub, maxBufferBytes: gpu.limits.maxStorageBufferBindingSize })
    : null;
  const pages = trace !== null ? tracePages(trace) : app !== null ? app.pages : pagesOf(config);
  // A policy decides where pages live; device memory is the working set / oversub. The
  // working set is every process's: two processes share the device's memory (devmem is the
  // device's, one pool), each process's policy deciding for its own mirror, so under
  // oversubscription one's migrations find the memory the other holds (migrate_vma skips a
  // page it cannot allocate, and it is mapped remotely), as tenants of one GPU do.
  // Behind the guard (src/policy/guard.ts): a hook that throws or answers nonsense fails the
  // run with an error naming the policy and the hook, never the process or the machine.
  const load = async (): Promise<GuardedPolicy | null> => config.policy === undefined ? null
    : guardPolicy(ctx.policy ?? await loadPolicy(config.policy, { seed: config.seed, ...policyOptions(config.policyOpt) }));
  const policies: (GuardedPolicy | null)[] = [];
  for (let i = 0; i < nproc; i++) policies.push(await load());
  const policy = policies[0];
  const oversub = config.oversub ?? 1;
  if (!(oversub >= 1)) throw new Error(`oversub ${oversub} < 1`);
  const devicePages = policy === null ? 256 : Math.ceil((nproc * pages) / oversub);
  const machine = await createMachine({
    devices: 1,
    // The buffers, the copies COW and remapping make while the storm runs, and the rest.
    systemPages: nproc * 2 * pages + 8192,
    // Every buffer page fits with room to spare, so the driver never evicts a page of the
    // command in flight (capped by what one storage buffer binds).
    aperturePages: Math.max(512, Math.min(pages + 256, Math.floor(gpu.limits.maxStorageBufferBindingSize / PAGE_SIZE))),
    devicePages,
    gpuContext: defaultGpu(),
    scheduler: ctx.observer?.scheduler,
    skipStalled: ctx.skipStalled,
  });
  const tenants: Tenant[] = [];
  const stopStorm = async (t: Tenant): Promise<void> => {
    if (t.storm === null || t.stormStats !== null) return;
    t.stormStats = await t.storm.stop();
  };
  if (ctx.recordTrace && policy === null) throw new Error('recording a trace needs a policy (the faults are recorded where the policy sees them)');
  const t0 = performance.now();
  const size = pages * PAGE_SIZE;
  try {
    const uvm = uvmParams(config.uvm);
    const preset = config.cost === undefined ? DEFAULT_COST : COST_MODELS[config.cost];
    if (preset === undefined) throw new Error(`cost model '${config.cost}' does not exist`);
    const cost = costWithKnobs(preset, costKnobPairs(config.costOpt)); // (its name says the knobs set)
    const bounds = ctx.watchdog === undefined ? DEFAULT_WATCHDOG : ctx.watchdog;
    for (let i = 0; i < nproc; i++) {
      const t: Tenant = { proc: machine.spawn(), start: BUFFER_ADDR, mirror: null, path: null, service: null, counts: null, storm: null, stormStats: null, w: null };
      tenants.push(t);
      // Each process maps its buffer at the same address of its own address space.
      t.start = await t.proc.mmap(BUFFER_ADDR, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      if (t.start % PMD_SIZE !== 0) throw new Error(`buffer at 0x${t.start.toString(16)} is not 2 MiB aligned`);
      const mirror = t.mirror = await machine.devices[0].open(t.proc);
      const pol = policies[i];
      if (pol !== null) t.path = mirror.setPolicy(pol, { start: t.start, npages: pages, capacityPages: devicePages, cost, ...(ctx.recordTrace ? { record: ctx.recordTrace } : {}) });
      t.service = mirror.setServicer({
        window: config.window, batchSize: config.batchSize, replay: config.replay, protocol: config.protocol,
        coalesce: config.coalesce, timeoutMs: SERVICER_TIMEOUT_MS, fallbackAfter: SERVICER_FALLBACK_AFTER,
        restOfRangeOnOverflow: false,
        maxBatchesPerService: uvm.maxBatchesPerService, maxThrottlePerService: uvm.maxThrottlePerService,
        replayUpdatePutRatio: uvm.replayUpdatePutRatio,
        ...(config.utlbFaults !== undefined ? { utlbFaults: config.utlbFaults } : {}),
      });
      const counts = t.counts = eventCounts(t.service.events);
      if (ctx.observer !== undefined || bounds !== null) {
        const who = `${pol !== null ? `policy "${pol.name}"` : 'the servicer'}${nproc > 1 ? ` of process ${i}` : ''}`;
        const dog = bounds !== null ? new Watchdog(bounds, who) : null;
        t.service.events.subscribe(runListener(ctx.observer ?? {}, dog, progressSampler(t.service, counts, t.path), i));
        await ctx.observer?.onMirror?.(mirror, { start: t.start, pages }, t.path, i);
      }
    }
    if (trace !== null) {
      // A trace: its device segments as mirror commands, its CPU records as word accesses.
      const t = tenants[0];
      const t1 = performance.now();
      let t2 = t1;
      const tr = await runTrace(t.mirror!, t.start, pages, trace, async () => {
        t2 = performance.now();
        t.path?.freeze();
      });
      const s = t.service!.records.length;
      t.w = {
        rounds: s, faultRounds: s, verify: { checked: tr.checked, mismatches: tr.mismatches }, gpu: { checked: 0, mismatches: 0 },
        results: { checked: 0, mismatches: 0 }, cpu: { checked: tr.checked, mismatches: tr.mismatches }, firstMismatch: tr.firstMismatch,
        commands: tr.commands, ms: { init: 0, gpu: t2 - t1, cpu: 0, results: 0, verify: performance.now() - t2 },
      };
    } else {
      // The processes run at once, interleaved on the machine's scheduler: their commands and
      // fault batches reach the one device's driver in whatever order they come.
      await Promise.all(tenants.map(async (t, i) => {
        const mirror = t.mirror!;
        const hooks = {
          afterInit: async () => {
            if (config.stormRate > 0) {
              t.storm = startStorm(t.proc, { rate: config.stormRate, start: t.start, end: t.start + size, seed: (config.seed ^ 0x5eed) + i, kinds: ctx.stormKinds ?? stormKinds(config) });
            }
          },
          beforeVerify: async () => {
            await stopStorm(t);
            t.path?.freeze(); // the read-back checks the data; it is not part of the workload
          },
        };
        try {
          t.w = app !== null ? await runApp(mirror, appDef(config.workload), app, t.start, hooks) : await runWorkload(mirror, {
            name: config.workload as SyntheticWorkload, start: t.start, sizeBytes: size, writeFraction: config.writeFraction, seed: config.seed + i,
            ...(config.phases !== undefined ? { phases: config.phases } : {}),
          }, hooks);
        } finally {
          await stopStorm(t);
        }
      }));
    }
    const ws = tenants.map((t) => t.w!);
    // Processes overlap: the run's wall time is the longest one's.
    result.wallMs = Math.max(...ws.map((w) => w.ms.gpu + w.ms.cpu));
    result.rounds = ws.reduce((n, w) => n + w.rounds, 0);
    result.faultRounds = ws.reduce((n, w) => n + w.faultRounds, 0);
    result.verify = { checked: ws.reduce((n, w) => n + w.verify.checked, 0), mismatches: ws.reduce((n, w) => n + w.verify.mismatches, 0) };
    ws.forEach((w, i) => {
      if (w.verify.mismatches > 0) ctx.onProgress?.(`verification${nproc > 1 ? ` (process ${i})` : ''}: ${w.verify.mismatches} of ${w.verify.checked} wrong; first: ${w.firstMismatch}`);
    });
  } catch (e) {
    if (!(e instanceof HmmError)) throw e;
    result.ok = false;
    result.error = e.message; // already 'CODE: message' (HmmError)
    result.wallMs = performance.now() - t0; // until it failed, setup included
  } finally {
    // Every way out destroys the machine (its GPU buffers), whatever the figures do.
    try {
      await finishResult(result, tenants, machine.devices[0].stats.mappedFrees, devicePages, config);
    } finally {
      await machine.destroy();
    }
  }
  // A hook failure the guard absorbed (a cpuFault that threw, a bad victim, stats()) still
  // fails the run: its figures are not the policy's.
  const failed = policies.find((p) => p !== null && p.failure !== null);
  if (failed != null && result.ok) {
    result.ok = false;
    result.error = failed.failure!.message;
  }
  return result;
}

/** The result's figures from every process once the run is over (or has failed). */
async function finishResult(result: RunResult, tenants: readonly Tenant[], mappedFrees: number, devicePages: number, config: RunConfig): Promise<void> {
  const multi = tenants.length > 1;
  if (tenants.some((t) => t.counts !== null)) result.ringOverflows = tenants.reduce((n, t) => n + (t.counts?.ringOverflows ?? 0), 0);
  const done = tenants.filter((t) => t.service !== null);
  if (done.length > 0) {
    // Two processes: each record names its process, in the order of their fetch times.
    result.records = multi
      ? done.flatMap((t, i) => t.service!.records.map((r) => ({ ...r, proc: i }))).sort((a, b) => a.t - b.t || (a.proc ?? 0) - (b.proc ?? 0))
      : [...done[0].service!.records];
    result.totals = totals(result.records);
    result.faultsPerSec = result.totals.serviceMs > 0 ? (result.totals.unique / result.totals.serviceMs) * 1000 : 0;
  }
  const storms = tenants.map((t) => t.stormStats).filter((s): s is StormStats => s !== null);
  if (storms.length > 0) result.storm = mergeStorms(storms);
  // Stale pfns: entries the mirror still holds that no longer reach the page the CPU maps
  // (what valid-flag's window lets through), counted once the storm has stopped.
  const pages = config.sizeMiB * 256;
  for (const t of tenants) {
    if (t.mirror === null) continue;
    try {
      result.stalePfns = (result.stalePfns ?? 0) + (await t.mirror.audit(t.start, t.path?.npages ?? pages)).stale.length;
    } catch (e) {
      if (!(e instanceof HmmError)) throw e;
    }
  }
  const paths = tenants.map((t) => t.path).filter((p): p is PolicyPath => p !== null);
  if (paths.length > 0) {
    const each = paths.map((p) => policyResult(p, devicePages, result.wallMs));
    result.policy = { ...(multi ? mergePolicyResults(each) : each[0]), mappedFrees, uvm: uvmParams(config.uvm).version, cost: paths[0].cost.name };
    result.policy.faultServiceMs = result.totals.serviceMs + paths.reduce((n, p) => n + p.stats.endMs, 0);
  }
  if (multi) {
    result.processes = tenants.map((t, i) => {
      const recs = result.records.filter((r) => r.proc === i);
      return {
        batches: recs.length, fetched: recs.reduce((n, r) => n + r.fetched, 0), unique: recs.reduce((n, r) => n + r.unique, 0),
        verify: t.w?.verify ?? { checked: 0, mismatches: 0 },
        ...(t.path !== null ? { simTimeNs: t.path.now, migratedIn: t.path.stats.migratedIn, skipped: t.path.stats.skipped, remotePages: t.path.stats.remotePages } : {}),
      };
    });
  }
}

function mergeStorms(s: readonly StormStats[]): StormStats {
  const byKind: Record<string, number> = {};
  for (const x of s) for (const [k, v] of Object.entries(x.byKind)) byKind[k] = (byKind[k] ?? 0) + v;
  return { ops: s.reduce((n, x) => n + x.ops, 0), byKind };
}

/**
 * Two processes' policy figures as one run's: counts summed, the shared device's pages once,
 * simulated time the later clock's (they ran at once).
 */
function mergePolicyResults(each: readonly Omit<PolicyRunResult, 'mappedFrees'>[]): Omit<PolicyRunResult, 'mappedFrees'> {
  const out = { ...each[0], policyStats: { ...each[0].policyStats } };
  const sum = (k: keyof typeof out): void => {
    (out as Record<string, unknown>)[k] = each.reduce((n, e) => n + (e[k] as number), 0);
  };
  for (const k of Object.keys(out) as (keyof typeof out)[]) {
    if (typeof out[k] === 'number' && k !== 'devicePages' && k !== 'simTimeNs') sum(k);
  }
  out.simTimeNs = Math.max(...each.map((e) => e.simTimeNs));
  for (const e of each.slice(1)) for (const [k, v] of Object.entries(e.policyStats)) out.policyStats[k] = (out.policyStats[k] ?? 0) + v;
  return out;
}

/** A policy run's figures: the engine's residency counters, the path's real moves, the clock. */
export function policyResult(path: PolicyPath, devicePages: number, wallMs: number): Omit<PolicyRunResult, 'mappedFrees'> {
  const e = path.engine;
  const r = e.residency.stats;
  const s = path.stats;
  return {
    policy: e.policy.name, devicePages, simTimeNs: path.now,
    bytesToDevice: r.bytesToDevice, bytesToHost: r.bytesToHost, farFaults: e.stats.farFaults, faultRecords: e.stats.faultRecords, faultGroups: e.stats.faultGroups,
    cpuFaults: e.stats.cpuFaults, thrashingEvents: e.thrashing.events, throttles: e.stats.throttles, pins: r.pins,
    evictions: r.evictions, evictedPages: r.evictedPages, prefetchedPages: r.prefetchedPages, prefetchHits: r.prefetchHits,
    remotePages: s.remotePages, migratedIn: s.migratedIn, evictedOut: s.evictedOut, skipped: s.skipped,
    faultServiceMs: s.endMs, policyMs: s.policyMs, moveMs: s.moveMs, serviceMs: s.serviceMs,
    simFaultsPerWallSec: wallMs > 0 ? (e.stats.farFaults / wallMs) * 1000 : 0,
    policyStats: { ...(e.policy.stats?.() ?? {}) },
  };
}
