/**
 * The policy engine: one call per serviced device fault group, per CPU fault, and per access
 * counter readout. It asks the policy, runs the prefetcher and picks eviction victims through
 * the policy's hooks, and returns a plan (plan.ts: what each page becomes, in order) plus the
 * virtual-time cost. The caller performs the plan — the driver with migrate_vma and its
 * aperture (src/driver/policy-path.ts), the simulator (sim.ts) by taking it as done — and
 * hands back what actually moved to commit(), which records it in the residency
 * (residency.ts) and tells the policy's `migrated` hook. The residency never holds a move
 * that did not happen.
 *
 * Order inside a group mirrors UVM's service_fault_batch -> service_va_block_locked: thrashing
 * hints (decide), then the prefetch hint for the pages that migrate
 * (uvm_perf_prefetch_prenotify_fault_migrations), then make_resident, with eviction when the
 * device is full (pmm alloc -> evict), then the remote maps.
 */
import {
  CPU, DECIDE_MIGRATE, DECIDE_PIN, DECIDE_REMOTE, DECIDE_THROTTLE, type Decisions, type FaultGroup,
  type MigrationPolicy,
} from './types.js';
import { ALL_MOVED, commitPlan, emptyPlan, Planner, type Plan, type PlanOutcome } from './plan.js';
import { PageList, Residency, type ResidencyOptions } from './residency.js';
import { ThrashingMeter } from './thrashing.js';
import { blockPrefetch, makeTreeScratch, type TreeScratch } from './prefetch-tree.js';
import { err } from '../errors.js';

export interface GroupResult {
  /** Virtual ns the service took (fault-group overhead, copies, evictions). */
  ns: number;
  /** Pages migrated for the faults, pages prefetched, pages mapped remotely, throttled, pinned. */
  migrated: number;
  prefetched: number;
  remote: number;
  throttled: number;
  pinned: number;
  /** Largest `until` among throttled pages (0 if none): the requester refaults then. */
  throttleUntil: number;
  /** Smallest `until` among throttled pages (0 if none): the first a replay can service. */
  throttleFirst: number;
  /** The policy's `until` per page of the group (THROTTLE: when it may be serviced; REMOTE: the mapping's end, 0 = none). */
  until: Float64Array;
  /** Final action per page of the group (index i = group page i); valid until the next call. */
  action: Uint8Array;
  /** What to perform, then commit(). */
  plan: Plan;
}

export interface CpuFaultResult {
  ns: number;
  /** DECIDE_MIGRATE (comes home), DECIDE_PIN (comes home pinned) or DECIDE_THROTTLE. */
  action: number;
  until: number;
  /** The page home (and pinned): perform (the CPU fault's migrate_to_ram), then commit(). */
  plan: Plan;
}

export interface AccessCounterResult {
  ns: number;
  plan: Plan;
}

/**
 * Access counts measured elsewhere (the GPU's counters, src/driver/policy-path.ts): count
 * entries, pages[i] a page of the counted region (its first), counts[i] its accesses.
 */
export interface AccessCounterReadout {
  count: number;
  pages: Float64Array;
  counts: Uint32Array;
}

export interface EngineStats {
  faultGroups: number;
  /**
   * Far faults as UVM_Smart counts them (GPGPU-Sim UVM_Smart, gpu-sim.cc gmmu_t::cycle and
   * do_hardware_prefetch: one `mf_page_fault_outstanding` per page in the GMMU turn's
   * page_fault_this_turn, i.e. a faulting page that is neither valid nor already in req_info,
   * the MSHR of pages being migrated, prefetched ones included; later accesses to such a page
   * merge into its entry as `mf_page_fault_pending`): the distinct pages of each serviced group
   * not already on the device when it is serviced. This is the log's
   * `Total_memory_access_page_fault`.
   */
  farFaults: number;
  /** The raw fault records the groups folded (one per (uTLB, page) a round: the fault buffer's entries). */
  faultRecords: number;
  cpuFaults: number;
  throttles: number;
  accessCounterMigrations: number;
}

export class PolicyEngine {
  readonly residency: Residency;
  /** The run's thrashing count (thrashing.ts), fed every move the residency records. */
  readonly thrashing: ThrashingMeter;
  readonly policy: MigrationPolicy;
  readonly stats: EngineStats = { faultGroups: 0, farFaults: 0, faultRecords: 0, cpuFaults: 0, throttles: 0, accessCounterMigrations: 0 };
  #dec: Decisions = { action: new Uint8Array(256), until: new Float64Array(256) };
  readonly #migrate = new PageList(256);
  readonly #prefetch = new PageList(256);
  readonly #failed = new PageList(16);
  readonly #busy = new Set<number>();
  readonly #tree: TreeScratch;
  readonly #faulted: Uint8Array;
  readonly #resident: Uint8Array;
  readonly #excluded: Uint8Array;
  readonly #pfOut: Uint8Array;
  readonly #cpuPages = new Float64Array(1);
  readonly #cpuAccess = new Uint8Array(1);
  readonly #acPages = new PageList(256);
  readonly #acCounts = { buf: new Uint32Array(256) };
  readonly #acOut = new PageList(256);
  readonly #planner: Planner;
  #regions: (readonly [number, number])[] = [];
  #wholeRange: readonly [number, number] | null = null;
  /** The device had to evict (or filled up) for a fault group: UVM_Smart's over_sub. */
  #oversubscribed = false;

  /**
   * Pages a CPU fault brings home around the faulted one (aligned block on the same device, not
   * pinned): 16 = UVM's 64 KiB big page (uvm_va_block_cpu_fault services the fault through the
   * same make_resident path as a GPU fault, with the prefetcher's big-page growth); 1 = HMM's
   * migrate_to_ram of one page (test_hmm's dmirror_devmem_fault).
   */
  readonly cpuFaultPages: number;

  constructor(policy: MigrationPolicy, opts: Omit<ResidencyOptions, 'eviction'> & { cpuFaultPages?: number; thrashLapseNs?: number }) {
    this.policy = policy;
    this.cpuFaultPages = opts.cpuFaultPages ?? 16;
    if (!Number.isInteger(this.cpuFaultPages) || this.cpuFaultPages < 1 || (this.cpuFaultPages & (this.cpuFaultPages - 1)) !== 0) {
      throw err('EINVAL', `cpuFaultPages ${this.cpuFaultPages} must be a power of two`);
    }
    const { cpuFaultPages: _, thrashLapseNs, ...resOpts } = opts;
    this.residency = new Residency({ ...resOpts, ...(policy.eviction ? { eviction: policy.eviction } : {}) });
    this.thrashing = new ThrashingMeter(this.residency.pageCount, thrashLapseNs);
    const bp = this.residency.chunkPages;
    this.#tree = makeTreeScratch(bp);
    this.#faulted = new Uint8Array(bp);
    this.#resident = new Uint8Array(bp);
    this.#excluded = new Uint8Array(bp);
    this.#pfOut = new Uint8Array(bp);
    this.#planner = new Planner(this.residency);
  }

  /**
   * Record what a plan really did (`outcome`: which pages of each move moved; default all),
   * in the plan's order: moves, remote mappings, pins; then the chunks the round used. Each
   * batch of recorded moves goes to the policy's `migrated` hook.
   */
  commit(plan: Plan, outcome: PlanOutcome = ALL_MOVED): void {
    const hook = this.policy.migrated?.bind(this.policy);
    const res = this.residency;
    const toDevice = commitPlan(res, plan, outcome, (b) => {
      this.thrashing.moved(b.pages, b.now);
      hook?.(b, res);
    });
    this.stats.accessCounterMigrations += toDevice.get('accessCounter') ?? 0;
  }

  /**
   * Moves the driver found already made (PolicyPath's reconcile with the CPU page table:
   * pages that came home or arrived outside a plan), recorded at `now`.
   */
  recordFound(home: readonly number[], arrived: readonly number[], device: number, now: number): void {
    if (home.length > 0) this.thrashing.moved(this.residency.recordHome(home, now), now);
    if (arrived.length > 0) this.thrashing.moved(this.residency.recordToDevice(device, arrived, 'explicit', now), now);
  }

  #decisions(n: number): Decisions {
    if (this.#dec.action.length < n) {
      const size = Math.max(n, this.#dec.action.length * 2);
      this.#dec = { action: new Uint8Array(size), until: new Float64Array(size) };
    }
    this.#dec.action.fill(DECIDE_MIGRATE, 0, n);
    this.#dec.until.fill(0, 0, n);
    return this.#dec;
  }

  /**
   * Service one deduplicated device fault group: `pages[i]` faulted with `access[i]`; `faults`
   * is the raw fault count it folds. Pages already local are left alone (a duplicate's race).
   */
  serviceGroup(device: number, pages: Float64Array, access: Uint8Array, count: number, faults: number,
    now: number): GroupResult {
    const res = this.residency;
    if (!Number.isInteger(device) || device < 0 || device >= res.devices) throw err('EINVAL', `device ${device}`);
    for (let i = 0; i < count; i++) {
      const p = pages[i];
      if (!Number.isInteger(p) || p < 0 || p >= res.pageCount) throw err('EINVAL', `fault group page ${p} out of range`);
    }
    const cost = res.cost;
    const group: FaultGroup = { device, now, count, pages, access, faults };
    const dec = this.#decisions(count);
    this.policy.decide(group, res, dec);
    this.stats.faultGroups++;
    this.stats.faultRecords += faults;
    let ns = cost.faultGroupNs + cost.faultNs * count;
    const plan = this.#planner;
    plan.begin(device, now);
    const r = {
      ns: 0, migrated: 0, prefetched: 0, remote: 0, throttled: 0, pinned: 0, throttleUntil: 0, throttleFirst: 0,
      action: dec.action, until: dec.until,
    };
    const migrate = this.#migrate;
    migrate.clear();
    const busy = this.#busy;
    busy.clear();
    let lastChunk = -1;
    for (let i = 0; i < count; i++) {
      const p = pages[i];
      const chunk = Math.floor(p / res.chunkPages);
      if (chunk !== lastChunk) {
        busy.add(chunk); // (groups come sorted: one Set insert a chunk, not a page)
        lastChunk = chunk;
      }
      if (plan.location(p) === device) continue;
      // A far fault (UVM_Smart's count): a page not on the device, once a group. A model that
      // charges per far fault (uvm-smart-serial: calculate_sim_prof's
      // mf_page_fault_outstanding × page_fault_latency) adds it here, serially.
      if (i === 0 || pages[i - 1] !== p) {
        this.stats.farFaults++;
        ns += cost.farFaultNs;
      }
      const a = dec.action[i];
      switch (a) {
        case DECIDE_MIGRATE:
          if (plan.pinned(p)) plan.unpin(p); // the policy chose to move it (UVM: the fault unpins)
          migrate.push(p);
          break;
        case DECIDE_REMOTE:
        case DECIDE_PIN:
        case DECIDE_THROTTLE:
          if (plan.location(p) !== CPU) {
            // On another device: it must come home before anyone maps it remotely.
            const q = [p];
            ns += plan.home(q, 1, 'explicit');
          }
          if (a === DECIDE_REMOTE) {
            plan.remote(p, dec.until[i]);
            r.remote++;
          } else if (a === DECIDE_PIN) {
            plan.pin(p, dec.until[i], device);
            r.pinned++;
          } else {
            r.throttled++;
            this.stats.throttles++;
            if (dec.until[i] > r.throttleUntil) r.throttleUntil = dec.until[i];
            if (r.throttleFirst === 0 || dec.until[i] < r.throttleFirst) r.throttleFirst = dec.until[i];
          }
          break;
        default:
          throw err('EINVAL', `policy ${this.policy.name} returned action ${a} for page ${p}`);
      }
    }
    // Prefetch per block of the migrating faults (one tree walk a block, not a callback a fault).
    const pf = this.#prefetch;
    pf.clear();
    const prefetchOn = this.policy.prefetch !== undefined && !(this.policy.prefetch.offOnceOversubscribed === true && this.#oversubscribed);
    if (prefetchOn && migrate.length > 0) this.#computePrefetch(device, now, pages, count, dec, pf);
    const failed = this.#failed;
    failed.clear();
    ns += plan.toDevice(device, migrate.pages, migrate.length, 'fault', busy, failed);
    r.migrated = migrate.length - failed.length;
    for (let i = 0; i < failed.length; i++) {
      const p = failed.pages[i];
      plan.remote(p, 0);
      for (let j = 0; j < count; j++) {
        if (pages[j] !== p) continue;
        dec.action[j] = DECIDE_REMOTE;
        dec.until[j] = 0;
      }
      r.remote++;
    }
    if (pf.length > 0) {
      let n = 0;
      for (let i = 0; i < pf.length; i++) if (plan.location(pf.pages[i]) !== device && !plan.pinned(pf.pages[i])) n++;
      const before = n;
      ns += plan.toDevice(device, pf.pages, pf.length, 'prefetch', busy, null);
      let after = 0;
      for (let i = 0; i < pf.length; i++) if (plan.location(pf.pages[i]) !== device && !plan.pinned(pf.pages[i])) after++;
      r.prefetched = before - after;
    }
    plan.used(busy);
    r.ns = ns;
    const done = plan.end();
    // UVM_Smart's do_hardware_prefetch ends by checking should_evict_page over the pages in
    // flight: the first time the device cannot hold them (it must evict) the run is over
    // subscribed for good (over_sub) and update_hardware_prefetcher_oversubscribed switches
    // to the oversubscribed prefetcher (-hwprefetch_oversub; 0 = none). A group whose plan
    // evicted, or that leaves the device without a free page, is that moment here.
    if (!this.#oversubscribed) {
      let inPages = 0;
      let evicted = false;
      for (const s of done.steps) {
        if (s.kind !== 'move') continue;
        if (s.cause === 'eviction') evicted = true;
        else if (s.dst === device) inPages += s.pages.length;
      }
      if (evicted || res.freePages(device) - inPages <= 0) this.#oversubscribed = true;
    }
    return { ...r, plan: done };
  }

  /**
   * The VMAs over the managed range, as [first, outer) page indices in ascending order: the
   * prefetcher's va_blocks are the 2 MiB blocks clipped to them (HMM's va_blocks,
   * uvm_hmm_va_block_find_create). Without it the managed range is one VMA.
   */
  setRegions(regions: readonly (readonly [number, number])[]): void {
    const cur = this.#regions;
    // The same VMAs as last batch (the common case): nothing to check or sort again.
    if (regions.length === cur.length && regions.every(([a, b], i) => cur[i][0] === a && cur[i][1] === b)) return;
    for (const [a, b] of regions) {
      if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b <= a) throw err('EINVAL', `region [${a}, ${b})`);
    }
    this.#regions = regions.map(([a, b]) => [a, b] as const).sort((x, y) => x[0] - y[0]);
  }

  #regionOf(p: number): readonly [number, number] {
    for (const r of this.#regions) if (p >= r[0] && p < r[1]) return r;
    return (this.#wholeRange ??= [0, this.residency.pageCount]);
  }

  #computePrefetch(device: number, now: number, pages: Float64Array, count: number, dec: Decisions, out: PageList): void {
    const res = this.residency;
    const plan = this.#planner;
    const bp = res.chunkPages;
    // One tree per va_block: the 2 MiB block clipped to the VMA and the managed range.
    // Keyed by (block, lo) as one number (lo < bp), the last page's hi kept (as a Map.set
    // of each page's entry would): no string and no object a page.
    const blocks = new Map<number, { b: number; lo: number; hi: number }>();
    for (let i = 0; i < count; i++) {
      if (dec.action[i] !== DECIDE_MIGRATE) continue;
      const b = Math.floor(pages[i] / bp);
      const [ra, rb] = this.#regionOf(pages[i]);
      const lo = Math.max(b * bp, ra) - b * bp;
      const hi = Math.min((b + 1) * bp, rb, res.pageCount) - b * bp;
      const key = b * bp + lo;
      const e = blocks.get(key);
      if (e !== undefined) e.hi = hi;
      else blocks.set(key, { b, lo, hi });
    }
    const hooks = this.policy.prefetch!;
    for (const { b, lo, hi } of [...blocks.values()].sort((x, y) => x.b - y.b || x.lo - y.lo)) {
      const base = b * bp;
      this.#faulted.fill(0);
      this.#excluded.fill(0);
      for (let i = 0; i < count; i++) {
        const p = pages[i];
        if (p < base + lo || p >= base + hi) continue;
        if (dec.action[i] === DECIDE_MIGRATE) this.#faulted[p - base] = 1;
        else if (dec.action[i] === DECIDE_THROTTLE || dec.action[i] === DECIDE_PIN) this.#excluded[p - base] = 1;
      }
      this.#resident.fill(0);
      for (let i = lo; i < hi; i++) {
        this.#resident[i] = plan.location(base + i) === device ? 1 : 0;
        if (plan.pinned(base + i)) this.#excluded[i] = 1;
      }
      const n = blockPrefetch(hooks, { device, now, block: b }, bp, hi, this.#faulted, this.#resident,
        this.#excluded, this.#tree, this.#pfOut, lo);
      if (n === 0) continue;
      for (let i = lo; i < hi; i++) if (this.#pfOut[i]) out.push(base + i);
    }
  }

  /**
   * The CPU touched page p while it lives in device memory (do_swap_page -> migrate_to_ram).
   * The policy may throttle the CPU (it waits and faults again) or pin the page home.
   */
  serviceCpuFault(p: number, access: number, now: number): CpuFaultResult {
    const res = this.residency;
    if (!Number.isInteger(p) || p < 0 || p >= res.pageCount) throw err('EINVAL', `cpu fault page ${p} out of range`);
    const dev = res.location(p);
    const plan = this.#planner;
    plan.begin(dev, now);
    if (dev === CPU) return { ns: 0, action: DECIDE_MIGRATE, until: 0, plan: plan.end() };
    this.stats.cpuFaults++;
    const dec = this.#decisions(1);
    if (this.policy.cpuFault) {
      this.#cpuPages[0] = p;
      this.#cpuAccess[0] = access;
      this.policy.cpuFault({ now, count: 1, pages: this.#cpuPages, access: this.#cpuAccess }, res, dec);
    }
    const a = dec.action[0];
    const until = dec.until[0];
    if (a === DECIDE_THROTTLE && until > now) {
      this.stats.throttles++;
      return { ns: 0, action: DECIDE_THROTTLE, until, plan: plan.end() };
    }
    let ns = res.cost.cpuFaultNs;
    // The faulted page and the rest of its big page that live on the same device come home
    // as one transfer (the thrashing hint above was asked for the faulted page, as UVM does).
    const g = this.cpuFaultPages;
    const lo = Math.floor(p / g) * g;
    const home: number[] = [];
    for (let q = lo; q < Math.min(lo + g, res.pageCount); q++) if (q === p || (plan.location(q) === dev && !plan.pinned(q))) home.push(q);
    ns += plan.home(home, home.length, 'cpuFault');
    if (a === DECIDE_PIN) {
      plan.pin(p, until, dev);
      return { ns, action: DECIDE_PIN, until, plan: plan.end() };
    }
    return { ns, action: DECIDE_MIGRATE, until: 0, plan: plan.end() };
  }

  /**
   * Read the round's access counters (remote accesses since the last readout) and hand them to
   * the policy; migrate what it returns (cause accessCounter). Without the hook: a no-op.
   * `counted`: the GPU's readout (regions' counts), instead of the residency's touch counts.
   */
  serviceAccessCounters(device: number, now: number, counted?: AccessCounterReadout): AccessCounterResult {
    const res = this.residency;
    const plan = this.#planner;
    let n: number;
    let pages: Float64Array;
    let counts: Uint32Array;
    if (counted !== undefined) {
      // The GPU's own counts replace the residency's touch estimate (dropped, not copied).
      res.dropRoundCounts();
      n = counted.count;
      pages = counted.pages;
      counts = counted.counts;
    } else {
      n = res.takeRoundCounts(this.#acPages, this.#acCounts);
      pages = this.#acPages.pages;
      counts = this.#acCounts.buf;
    }
    // Nothing to hand over, or nothing asked: an empty plan, without the planner's begin/end.
    if (n === 0 || !this.policy.accessCounters) return { ns: 0, plan: emptyPlan(device, now) };
    plan.begin(device, now);
    const out = this.#acOut;
    out.clear();
    this.policy.accessCounters({ device, now, count: n, pages, counts }, res, out);
    if (out.length === 0) return { ns: 0, plan: plan.end() };
    const busy = this.#busy;
    busy.clear();
    for (let i = 0; i < out.length; i++) {
      const p = out.pages[i];
      if (!Number.isInteger(p) || p < 0 || p >= res.pageCount) {
        throw err('EINVAL', `policy ${this.policy.name} asked to migrate page ${p}, out of range`);
      }
      busy.add(Math.floor(p / res.chunkPages));
      if (plan.pinned(p)) plan.unpin(p);
    }
    // Counter notifications are serviced like a fault batch (uvm_gpu_access_counters.c).
    let ns = res.cost.faultGroupNs;
    ns += plan.toDevice(device, out.pages, out.length, 'accessCounter', busy, null);
    plan.used(busy);
    return { ns, plan: plan.end() };
  }
}
