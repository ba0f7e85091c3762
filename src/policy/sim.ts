/**
 * A pure simulator of the policy layer, for tests and quick sweeps: a trace of CPU and device
 * accesses is run through the residency state machine and a policy (engine.ts), with the cost
 * model charging a virtual clock a processor. No GPU: this is the decision and residency logic
 * the driver calls, with each plan's moves charged and committed as done instead of performed.
 *
 * Timing model (deterministic: no wall clock, integer ns, ties broken by processor index):
 *  - Each processor issues its records in trace order, at max(record time, its clock).
 *    The processor whose next record issues first goes next (CPU before devices on ties).
 *  - The CPU runs one access at a time: a hit costs nothing; a fault on a device page is
 *    serviced by the engine (migrate_to_ram); a throttled CPU waits and faults again.
 *  - A device runs rounds: up to `batchSize` (256, uvm_perf_fault_batch_count) of its records
 *    already due when the round starts. Hits cost nothing, remote accesses cost the cost
 *    model's remote charge, faults are deduplicated (most intrusive access kept) into one
 *    group serviced at once; then the faulted accesses replay. A throttled access is skipped
 *    and replayed once its `until` has come, while the device goes on with its other accesses
 *    (uvm_gpu_replayable_faults.c, service_fault_batch_block_locked: throttling continues "to
 *    process faults on other pages on the GPU"); the device idles only when nothing else is
 *    due. After the round the access counters are read.
 *  - One kernel launch is charged before a device's first round: a trace carries no kernel
 *    boundaries, so a device's stream is one (persistent) kernel, and its record times count
 *    from the kernel's start (they are shifted by the launch).
 * Every effect of a step (moves, policy calls) is stamped at the step's start, and steps run in
 * order of start time, so the residency and the policy see one processor-merged time line; the
 * step's cost then blocks its processor. The simulated time is the largest clock at the end.
 */
import { CPU, DECIDE_THROTTLE, type MigrationPolicy } from './types.js';
import { type CostModel, DEFAULT_COST, PAGE_SIZE, transferNs } from './cost.js';
import { PolicyEngine } from './engine.js';
import { TOUCH_FAULT, TOUCH_LOCAL, TOUCH_REMOTE, type ResidencyStats } from './residency.js';
import type { TraceRecord } from './trace.js';
import { err } from '../errors.js';

export interface SimOptions {
  policy: MigrationPolicy;
  devices?: number;
  /**
   * The device processors of the trace are tenants (processes) of ONE device (gpu_ext's
   * multi-tenant evaluation): they share its memory (capacityPages in all) and its eviction
   * list, and each keeps its own clock (SimResult.completionNs).
   */
  sharedDevice?: boolean;
  /** Device memory in pages (each device). Default: the working set divided by `oversubscription`. */
  capacityPages?: number;
  /** Working set / device memory (1 = everything fits; 1.5, 2, 3 oversubscribe). Default 1. */
  oversubscription?: number;
  chunkPages?: number;
  cost?: CostModel;
  batchSize?: number;
  thrashLapseNs?: number;
}

export interface SimResult extends ResidencyStats {
  /** Thrashing events by NVIDIA's test (thrashing.ts's ThrashingMeter). */
  thrashingEvents: number;
  policy: string;
  simTimeNs: number;
  /** Each device processor's (tenant's) clock when its last step ended. */
  completionNs: number[];
  pages: number;
  workingSetPages: number;
  capacityPages: number;
  /** Far faults (UVM_Smart's count: distinct pages not on the device a group, engine.ts), the raw fault records, and the groups. */
  farFaults: number;
  faultRecords: number;
  faultGroups: number;
  cpuFaults: number;
  throttles: number;
  launches: number;
  rounds: number;
  bytesRemote: number;
  accessCounterMigrations: number;
  /** The policy's own counters (stats()). */
  policyStats: Record<string, number>;
}

export function simulate(trace: readonly TraceRecord[], o: SimOptions): SimResult {
  if (trace.length === 0) throw err('EINVAL', 'empty trace');
  const devices = o.devices ?? Math.max(1, ...trace.map((r) => r.proc + 1));
  const cost = o.cost ?? DEFAULT_COST;
  const batchSize = o.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw err('EINVAL', `batchSize ${batchSize}`);
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of trace) {
    const p = Math.floor(r.addr / PAGE_SIZE);
    if (p < lo) lo = p;
    if (p > hi) hi = p;
    if (r.proc !== CPU && (r.proc < 0 || r.proc >= devices)) throw err('EINVAL', `record processor ${r.proc} >= devices ${devices}`);
  }
  // Blocks and chunks are 2 MiB aligned in the address space, as UVM's va_blocks are.
  const chunkPages = o.chunkPages ?? 512;
  lo = Math.floor(lo / chunkPages) * chunkPages;
  const pageOf = (r: TraceRecord): number => Math.floor(r.addr / PAGE_SIZE) - lo;
  const pageCount = hi - lo + 1;
  const ws = new Set<number>();
  for (const r of trace) ws.add(pageOf(r));
  const factor = o.oversubscription ?? 1;
  if (!(factor >= 1)) throw err('EINVAL', `oversubscription ${factor} < 1`);
  const capacity = o.capacityPages ?? Math.ceil(ws.size / factor);

  o.policy.reset?.();
  const engine = new PolicyEngine(o.policy, {
    pages: pageCount, devices: o.sharedDevice ? 1 : devices, capacityPages: capacity, cost,
    ...(o.chunkPages !== undefined ? { chunkPages: o.chunkPages } : {}),
    ...(o.thrashLapseNs !== undefined ? { thrashLapseNs: o.thrashLapseNs } : {}),
  });
  const res = engine.residency;

  // Per processor (index 0 = CPU, 1 + d = device d): its records in order, and retries.
  const nproc = devices + 1;
  const queues: number[][] = Array.from({ length: nproc }, () => []);
  trace.forEach((r, i) => queues[r.proc + 1].push(i));
  const ptr = new Array<number>(nproc).fill(0);
  const retry: number[][] = Array.from({ length: nproc }, () => []);
  // Throttled accesses: record index and the time it may replay, per processor.
  const held: { rec: number; at: number }[][] = Array.from({ length: nproc }, () => []);
  const clock = new Array<number>(nproc).fill(0);
  const launched = new Array<boolean>(nproc).fill(false);
  const shift = new Array<number>(nproc).fill(0);
  let launches = 0;
  let rounds = 0;
  let bytesRemote = 0;

  const gPages = new Float64Array(batchSize);
  const gAccess = new Uint8Array(batchSize);
  const gIndex = new Map<number, number>();
  const roundRecs: number[] = [];
  const roundTouch: number[] = [];
  const hitChunks = new Set<number>();

  const heldFirst = (q: number): number => {
    let t = Infinity;
    for (const h of held[q]) if (h.at < t) t = h.at;
    return t;
  };
  const nextIssue = (q: number): number => {
    if (retry[q].length > 0) return clock[q];
    const h = heldFirst(q);
    const rec = ptr[q] < queues[q].length ? trace[queues[q][ptr[q]]].time + shift[q] : Infinity;
    const t = Math.min(h, rec);
    return t === Infinity ? Infinity : Math.max(t, clock[q]);
  };

  for (;;) {
    let q = -1;
    let t = Infinity;
    for (let i = 0; i < nproc; i++) {
      const it = nextIssue(i);
      if (it < t) {
        t = it;
        q = i;
      }
    }
    if (q < 0) break;

    if (q === 0) {
      // The CPU: one access. A throttled CPU sleeps and retries the same access then.
      const r = trace[queues[0][ptr[0]]];
      const p = pageOf(r);
      let ns = 0;
      if (res.touchCpu(p, t) === TOUCH_FAULT) {
        const f = engine.serviceCpuFault(p, r.access, t);
        if (f.action === DECIDE_THROTTLE) {
          clock[0] = f.until;
          continue;
        }
        engine.commit(f.plan); // the simulator's moves always happen
        ns = f.ns;
      }
      ptr[0]++;
      clock[0] = t + ns;
      continue;
    }

    // A device round.
    const d = o.sharedDevice ? 0 : q - 1; // tenants share device 0's memory
    const now = t;
    if (!launched[q]) {
      // The host launches the kernel: the device starts after it (then picks again, in order).
      clock[q] = t + cost.launchNs;
      shift[q] = cost.launchNs;
      launches++;
      launched[q] = true;
      continue;
    }
    rounds++;
    roundRecs.length = 0;
    while (retry[q].length > 0 && roundRecs.length < batchSize) roundRecs.push(retry[q].shift()!);
    // Throttled accesses whose nap is over replay first.
    for (let i = 0; i < held[q].length && roundRecs.length < batchSize;) {
      if (held[q][i].at <= t) roundRecs.push(held[q].splice(i, 1)[0].rec);
      else i++;
    }
    while (roundRecs.length < batchSize && ptr[q] < queues[q].length &&
      (roundRecs.length === 0 || trace[queues[q][ptr[q]]].time + shift[q] <= t)) {
      roundRecs.push(queues[q][ptr[q]++]);
    }
    gIndex.clear();
    hitChunks.clear();
    roundTouch.length = 0;
    let n = 0;
    let faults = 0;
    let remote = 0;
    for (const ri of roundRecs) {
      const r = trace[ri];
      const p = pageOf(r);
      const touch = res.touchDevice(d, p, now);
      roundTouch.push(touch);
      if (touch === TOUCH_LOCAL) hitChunks.add(Math.floor(p / res.chunkPages));
      else if (touch === TOUCH_REMOTE) remote++;
      else {
        faults++;
        const gi = gIndex.get(p);
        if (gi === undefined) {
          gIndex.set(p, n);
          gPages[n] = p;
          gAccess[n] = r.access;
          n++;
        } else if (r.access > gAccess[gi]) {
          gAccess[gi] = r.access; // keep the most intrusive access
        }
      }
    }
    let ns = 0;
    if (n > 0) {
      const g = engine.serviceGroup(d, gPages, gAccess, n, faults, now);
      engine.commit(g.plan);
      ns += g.ns;
      const until = new Map<number, number>();
      for (let i = 0; i < n; i++) if (g.action[i] === DECIDE_THROTTLE) until.set(gPages[i], Math.max(g.until[i], now + 1));
      // Replay the faulted accesses (effects of a step are stamped at its start, so every
      // processor's events reach the residency and the policy in time order).
      const replayAt = now;
      const again: number[] = [];
      for (let i = 0; i < roundRecs.length; i++) {
        if (roundTouch[i] !== TOUCH_FAULT) continue;
        const p = pageOf(trace[roundRecs[i]]);
        const at = until.get(p);
        if (at !== undefined) {
          held[q].push({ rec: roundRecs[i], at }); // skipped, replayed after its nap
          continue;
        }
        const touch = res.touchDevice(d, p, replayAt);
        if (touch === TOUCH_REMOTE) remote++;
        else if (touch === TOUCH_FAULT) again.push(roundRecs[i]);
      }
      retry[q].unshift(...again);
    }
    for (const c of hitChunks) res.chunkUsed(d, c, now);
    if (remote > 0) {
      bytesRemote += remote * cost.remoteAccessBytes;
      ns += cost.remoteAccessNs + transferNs(cost, remote * cost.remoteAccessBytes);
    }
    const ac = engine.serviceAccessCounters(d, now);
    engine.commit(ac.plan);
    ns += ac.ns;
    clock[q] = now + ns;
    if (retry[q].length > 0) clock[q] = Math.max(clock[q], now + 1); // always progress
  }

  const s = res.stats;
  return {
    ...s,
    thrashingEvents: engine.thrashing.events,
    policy: o.policy.name,
    simTimeNs: Math.max(...clock),
    completionNs: clock.slice(1),
    pages: pageCount,
    workingSetPages: ws.size,
    capacityPages: capacity,
    farFaults: engine.stats.farFaults,
    faultRecords: engine.stats.faultRecords,
    faultGroups: engine.stats.faultGroups,
    cpuFaults: engine.stats.cpuFaults,
    throttles: engine.stats.throttles,
    launches,
    rounds,
    bytesRemote,
    accessCounterMigrations: engine.stats.accessCounterMigrations,
    policyStats: { ...(o.policy.stats?.() ?? {}) },
  };
}
