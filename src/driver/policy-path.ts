/**
 * A migration policy on the real fault path (issue 9): the PolicyEngine (src/policy) decides,
 * this carries the decisions out on the mirror — as UVM's service_fault_batch asks
 * uvm_perf_thrashing_get_hint / the prefetcher and then make_resident()s and maps:
 *
 *   MIGRATE (and prefetched neighbours)  migrate_vma into this device's private memory
 *                                        (dmirrorMigrateIn: entries installed only under
 *                                        mmu_interval_read_begin / read_retry)
 *   eviction (device memory full)        migrate_vma home of the victim chunk (Devmem.evict)
 *   REMOTE / PIN                         hmm_range_fault and a mapping through the aperture
 *   THROTTLE                             not serviced: the invocation faults again on a later
 *                                        replay, after the nap (the virtual clock moves on)
 *
 * The engine plans (pure, synchronous: src/policy/plan.ts) and the plan is performed here in
 * its order, so the evictions that make room happen before the pages that need it arrive.
 * What really moved is read from the CPU page table (the truth: a device-private entry of
 * ours or not) and committed to the residency; a page migrate_vma skipped is simply not
 * recorded, and is serviced remotely like any page still in system memory.
 *
 * The residency follows what others do to the range: every invalidation the mirror gets
 * (MADV_DONTNEED, munmap, an explicit MIGRATE_TO_SYS, a fork's write-protect) marks its pages
 * pending, and before the next decision (or a view) each pending page is checked against the
 * CPU page table: a device page that is gone was dropped (no copy) or brought home, and
 * remote mappings the invalidation zapped are forgotten.
 *
 * The CPU touching a device page (dmirror_devmem_fault) is reported by the device to each
 * mirror (DevmemMapper), and the mirror that has this policy attached for that mm asks its
 * cpuFault hook before the page moves (THROTTLE makes the CPU wait in virtual time, PIN brings
 * it home pinned) and commits the move after it.
 *
 * Time: one virtual clock (integer ns, the cost model's charges): a kernel launch per
 * command, each fault group's service (decisions, copies, evictions), each CPU fault, the
 * throttle naps, and remote traffic per command (each page the command ran over that was
 * mapped remotely moves once over the link: the GPU's caches keep its lines for the kernel).
 * Wall-clock time of the same work is measured beside it.
 *
 * Access counters: for a policy with the accessCounters hook the mirror's kernels count remote
 * accesses on the GPU (WGSL atomics, one counter per accessCounterRegionPages-page region of
 * the managed range: gpuCounters), read back with each round's fault ring and summed over the
 * command (MirrorCommand.accessCounts); after each round's fault service what they counted
 * since the last service goes to the hook (serviceCounters), the rest at the command's end, as
 * UVM services access-counter notifications while the kernel runs (uvm_gpu_access_counters.c).
 * A command that did not count (created before the policy was attached) falls back to the
 * touch estimate, at its end.
 */
import { PolicyEngine } from '../policy/engine.js';
import type { Plan, PlanOutcome } from '../policy/plan.js';
import type { TraceRecord } from '../policy/trace.js';
import { PageList, type Residency } from '../policy/residency.js';
import { computeNs, type CostModel, DEFAULT_COST, linkNs, PAGE_SIZE as POLICY_PAGE } from '../policy/cost.js';
import { ACCESS_READ, ACCESS_WRITE, CPU, DECIDE_REMOTE, DECIDE_THROTTLE, type MigrationCause, type MigrationPolicy } from '../policy/types.js';
import { err } from '../errors.js';
import { PAGE_SIZE } from '../mm/constants.js';
import { isDevicePrivate, isMigration } from '../mm/page-table.js';
import { entryAt, mappedPfn, pagesIn, walkPageRange, type MmWalk } from '../mm/pagewalk.js';
import type { Vma } from '../mm/vma.js';
import type { VmaTree } from '../mm/vma-tree.js';
import type { FaultGroup } from './coalesce.js';
import type { AccessCounterConfig, AccessCounts } from '../device/command.js';
import type { BatchRecord } from './records.js';
import { notePhase } from './phases.js';
import { serviceRange, type LockState, type MirrorTarget, type RetryOptions } from './retry.js';
import { performPlan, runs, type PolicyMover } from './plan-moves.js';

/** Default bytes of one counted access: a GPU L2 line (the cost model's remoteAccessBytes). */
export const ACCESS_REQUEST_BYTES = 128;

export interface PolicyRange {
  /** The managed range: first byte (page aligned) and pages. */
  start: number;
  npages: number;
  /** Device memory the policy may fill, in pages (at most what the device has). */
  capacityPages: number;
  cost?: CostModel;
  chunkPages?: number;
  /** Record every fault the policy sees here (--record-trace). */
  record?: TraceRecord[];
}

/** What really happened (pages moved by migrate_vma, not what the residency planned). */
export interface PolicyPathStats {
  groups: number;
  /** Fault records the batches held (UVM_Smart's far-fault count is the engine's: PolicyEngine.stats.farFaults). */
  faultRecords: number;
  migratedIn: number;
  evictedOut: number;
  cpuFaults: number;
  throttledFaults: number;
  /** Pages the residency planned on the device that migrate_vma did not move (taken back). */
  skipped: number;
  remotePages: number;
  launches: number;
  /** Wall ms: in the policy engine (decisions, residency), moving pages, the rest of servicing. */
  policyMs: number;
  moveMs: number;
  serviceMs: number;
  /** Wall ms of the command-end work (outside the servicer's batches). */
  endMs: number;
  /** Remote word accesses the GPU's access counters counted in the managed range (readouts handed to the policy). */
  countedAccesses: number;
}

export class PolicyPath {
  readonly engine: PolicyEngine;
  readonly device: number;
  readonly basePage: number;
  readonly npages: number;
  readonly cost: CostModel;
  #now = 0;
  /** When given (PolicyRange.record): every device fault (as the policy saw it) and CPU fault, at virtual time. */
  readonly record: TraceRecord[] | null;
  readonly stats: PolicyPathStats = {
    groups: 0, faultRecords: 0, migratedIn: 0, evictedOut: 0, cpuFaults: 0, throttledFaults: 0, skipped: 0, remotePages: 0,
    launches: 0, policyMs: 0, moveMs: 0, serviceMs: 0, endMs: 0, countedAccesses: 0,
  };
  #pages = new Float64Array(256);
  #access = new Uint8Array(256);
  #frozen = false;
  readonly #target: MirrorTarget;
  readonly #mover: PolicyMover;
  /** Pages (relative) an invalidation touched since the residency was last checked against the CPU table. */
  readonly #pending = new Set<number>();
  /** CPU faults decided, waiting for their migration (beforeCpuFault → afterCpuFault). */
  readonly #cpuFaults = new Map<number, Plan>();
  /** Pages those decided CPU faults are bringing home (their big pages). */
  readonly #homing = new Set<number>();
  /** The VMA tree (and its seq) the engine's regions were last taken from (serviceBatch). */
  #regionsOf: VmaTree<Vma> | null = null;
  #regionsSeq = -1;
  /** commandEnd's scratch: chunks with a local hit, pages whose remote mapping lapsed. */
  readonly #hitChunks = new PageList(16);
  readonly #lapsedPages = new PageList(16);
  #acPages = new Float64Array(16);
  #acCounts = new Uint32Array(16);
  /** The command's counts #readout last saw, and the requests of each region handed over for them. */
  #acOf: AccessCounts | null = null;
  #acDelivered = new Uint32Array(16);

  /** Made by Dmirror.setPolicy: the policy attached to one mirror, for one managed range. */
  constructor(policy: MigrationPolicy, device: number, r: PolicyRange, target: MirrorTarget, mover: PolicyMover) {
    if (r.start % PAGE_SIZE !== 0 || !Number.isSafeInteger(r.npages) || r.npages < 1) {
      throw err('EINVAL', `policy range 0x${r.start.toString(16)} +${r.npages} pages`);
    }
    if (PAGE_SIZE !== POLICY_PAGE) throw err('EINVAL', 'policy and mm page sizes differ');
    this.device = device;
    this.basePage = r.start / PAGE_SIZE;
    this.npages = r.npages;
    this.cost = r.cost ?? DEFAULT_COST;
    this.#target = target;
    this.#mover = mover;
    this.record = r.record ?? null;
    policy.reset?.();
    this.engine = new PolicyEngine(policy, {
      // A CPU fault brings the 64 KiB big page home (the engine's default, UVM's): cpuFault
      // names that range to devmem's migrate_to_ram, which moves exactly those device pages.
      pages: r.npages, devices: device + 1, capacityPages: r.capacityPages, cost: this.cost,
      ...(r.chunkPages !== undefined ? { chunkPages: r.chunkPages } : {}),
    });
    this.#adopt();
  }

  /**
   * A policy attached to a mirror that already has pages in its device's memory (an explicit
   * MIGRATE_TO_DEV, an earlier policy's migrations) starts from what the CPU page table holds,
   * not from "all in system memory": each device-private entry of ours in the range is on
   * the device, and a page under migration is checked once its migration ends (pending). One
   * synchronous walk of the tables the range's VMAs have (walk_page_range: holes cost nothing).
   */
  #adopt(): void {
    const mm = this.#target.mm;
    if (mm.exited) return;
    const arrived: number[] = [];
    const base = this.basePage;
    const isOurs = (pfn: number): boolean => this.#mover.isDevicePage(pfn);
    const pending = this.#pending;
    walkPageRange<MmWalk>({ mm, vma: null }, {
      pteEntry(_w, t, j, addr, next) {
        const n = pagesIn(addr, next);
        for (let k = 0; k < n; k++) {
          const f = t.flags[j + k];
          if (f === 0) continue;
          const p = addr / PAGE_SIZE + k - base;
          if (isMigration(f)) pending.add(p);
          else if (isDevicePrivate(f) && isOurs(t.pfn[j + k])) arrived.push(p);
        }
        return 0;
      },
    }, this.basePage * PAGE_SIZE, (this.basePage + this.npages) * PAGE_SIZE);
    if (arrived.length > 0) this.engine.residency.recordToDevice(this.device, arrived, 'explicit', this.#now);
  }

  /** The virtual clock, ns. */
  get now(): number {
    return this.#now;
  }

  /**
   * What the GPU should count for this policy (Dmirror.setServicer sets it on the engine):
   * regions of the policy's accessCounterRegionPages (default 1) aligned to the managed
   * range's first page, so GPU region k is the policy's region k; null without the hook.
   */
  get gpuCounters(): AccessCounterConfig {
    // Always on: the clock charges remote traffic from what the GPU counted (commandEnd), and
    // a policy with the hook gets the counts at its granularity.
    const p = this.engine.policy;
    return { regionPages: p.accessCounters !== undefined ? p.accessCounterRegionPages ?? 1 : 1, origin: this.basePage };
  }

  /**
   * The mirror's invalidate callback saw [first, last) (pages): the residency will be checked
   * against the CPU table there before the next decision. `zapped`: the mirror's entries in
   * the range went (not one of its own migrations), so remote mappings there are gone too.
   */
  invalidated(first: number, last: number, zapped: boolean): void {
    const res = this.engine.residency;
    for (let q = Math.max(first, this.basePage); q < Math.min(last, this.basePage + this.npages); q++) {
      const p = q - this.basePage;
      this.#pending.add(p);
      if (zapped) res.unmapRemote(p);
    }
  }

  /**
   * Make the residency what the CPU page table says for the pending pages: a device page of
   * ours that is no longer there came home (a system page is mapped: copied) or was dropped
   * (nothing is: MADV_DONTNEED, munmap); a page that became ours (an explicit MIGRATE_TO_DEV)
   * is on the device.
   */
  #reconcile(): void {
    if (this.#pending.size === 0) return;
    const res = this.engine.residency;
    const mm = this.#target.mm;
    // An invalidation still running on the mm (between invalidate_range_start and _end: a
    // migration that has not yet put its migration entries in, a zap half done) may be about
    // to change the table: the pages stay pending until it is over (mmu_interval_check_retry's
    // reasoning), or a migration's MIGRATE notice would be spent before the page moved.
    if (!mm.exited && (mm.notifiers.activeInvalidateRanges > 0 || mm.notifiers.invalidateSeq % 2 === 1)) return;
    const home: number[] = [];
    const arrived: number[] = [];
    const later: number[] = [];
    for (const p of [...this.#pending].sort((a, b) => a - b)) {
      const e = mm.exited ? null : entryAt(mm, (this.basePage + p) * PAGE_SIZE);
      if (e !== null && isMigration(e.flags)) {
        later.push(p); // a migration in flight: its end decides (its own commit, or the next check)
        continue;
      }
      const ours = e !== null && isDevicePrivate(e.flags) && this.#mover.isDevicePage(e.pfn);
      if (res.location(p) === this.device && !ours) {
        if (e !== null) home.push(p); // a system page (present or swapped): the data came home
        else res.recordDropped(p);
      } else if (res.location(p) === CPU && ours) {
        arrived.push(p);
      }
    }
    this.#pending.clear();
    for (const p of later) this.#pending.add(p);
    this.engine.recordFound(home, arrived, this.device, this.#now);
  }

  /** The residency as the page tables have it now (a view for snapshots and checks). */
  view(): Residency {
    this.#reconcile();
    return this.engine.residency;
  }

  #rel(page: number): number {
    const p = page - this.basePage;
    return p >= 0 && p < this.npages ? p : -1;
  }

  /**
   * Stop the clock and the policy (the harness's own read-back follows: checking the data
   * is not part of the workload, and its CPU faults must not count).
   */
  freeze(): void {
    this.#frozen = true;
  }

  /** A command starts: one kernel launch (the cost model's launchNs). */
  commandStart(): void {
    this.#acOf = null; // its counts start at none handed over (a command run again was reset)
    if (this.#frozen) return;
    this.stats.launches++;
    this.#now += this.cost.launchNs;
  }

  /**
   * A command ended. The driver does not see the kernel's hits, so each page the command ran
   * over counts as touched once: a device page of ours is a hit (a prefetched one a prefetch
   * hit), a remotely mapped one one remote access (its lines cross the link once: the GPU's
   * caches keep them for the kernel). The policy's access-counter hook gets `counted`, what
   * the GPU's counters counted over the command's rounds (gpuCounters), or without it those
   * touch counts (an estimate).
   */
  async commandEnd(page: number, npages: number, counted?: AccessCounts | null): Promise<void> {
    if (this.#frozen) return;
    const start = performance.now();
    try {
      await this.#commandEnd(page, npages, counted ?? null);
    } finally {
      this.stats.endMs += performance.now() - start;
    }
  }

  async #commandEnd(page: number, npages: number, counted: AccessCounts | null): Promise<void> {
    this.#reconcile();
    const res = this.engine.residency;
    const t = this.#target;
    const t0 = performance.now();
    // The command's pages inside the managed range, touched in one residency loop.
    const first = Math.max(page, this.basePage);
    const end = Math.min(page + npages, this.basePage + this.npages);
    const hit = this.#hitChunks;
    const gone = this.#lapsedPages;
    hit.clear();
    gone.clear();
    // With the GPU's readout the touch counts would be dropped (serviceAccessCounters): not kept.
    const remote = end > first ? res.touchDeviceRange(this.device, first - this.basePage, end - this.basePage, this.#now, hit, gone, counted === null) : 0;
    let lapsed: Uint8Array | null = null;
    for (let i = 0; i < gone.length; i++) {
      const q = this.basePage + gone.pages[i];
      if (t.pt.isMapped(q, 0)) (lapsed ??= new Uint8Array(npages))[q - page] = 1;
    }
    // A remote mapping the policy gave an end (REMOTE's until) lapsed: the entry goes (the one
    // shootdown), so the next access faults and the policy decides again.
    this.stats.policyMs += performance.now() - t0;
    if (lapsed !== null) {
      const t1 = performance.now();
      await t.lock.with(() => t.pt.zapPages(page, lapsed));
      this.stats.moveMs += performance.now() - t1;
    }
    const t2 = performance.now();
    // The kernel's own work: a roofline charge for the bytes the command ran over at the
    // modelled GPU's memory bandwidth (cost.gpuMemBytesPerSec: GTX 1080 Ti, UVM_Smart's config).
    this.#now += computeNs(this.cost, npages * PAGE_SIZE);
    for (let i = 0; i < hit.length; i++) res.chunkUsed(this.device, hit.pages[i], this.#now);
    // Remote traffic from the GPU's own counts: each counted region's words as whole requests
    // (accessCounterRequestBytes) over the link; without a readout (a command created before
    // the policy was attached), each remote page once (an estimate).
    if (remote > 0) this.stats.remotePages += remote;
    const readout = counted !== null ? this.#readout(counted, true) : undefined;
    const remoteBytes = readout !== undefined ? readout.requests * (this.engine.policy.accessCounterRequestBytes ?? ACCESS_REQUEST_BYTES) : remote * PAGE_SIZE;
    if (remoteBytes > 0) this.#now += this.cost.remoteAccessNs + linkNs(this.cost, remoteBytes);
    const ac = this.engine.serviceAccessCounters(this.device, this.#now, readout);
    this.#now += ac.ns;
    this.stats.policyMs += performance.now() - t2;
    await this.#performCounters(ac.plan);
  }

  /**
   * Between two rounds of a command: the notifications of what the GPU's counters counted
   * since the last service (the command's counts less those already handed over), serviced
   * while the kernel still runs, as UVM's access-counter service does. Its migrations are in
   * place for the next round, whose remote accesses to those pages stop counting.
   */
  async serviceCounters(counted: AccessCounts | null): Promise<void> {
    if (this.#frozen || counted === null || this.engine.policy.accessCounters === undefined) return;
    const t0 = performance.now();
    const readout = this.#readout(counted, false);
    if (readout.count === 0) {
      this.stats.policyMs += performance.now() - t0;
      return;
    }
    const ac = this.engine.serviceAccessCounters(this.device, this.#now, readout);
    this.#now += ac.ns;
    this.stats.policyMs += performance.now() - t0;
    await this.#performCounters(ac.plan);
  }

  /** An access-counter service's plan performed (nothing to do: no lock taken). */
  async #performCounters(plan: Plan): Promise<void> {
    if (plan.steps.length === 0 && plan.used.length === 0) return;
    const t = this.#target;
    const t3 = performance.now();
    await t.mm.lock.readLock(); // migrate_vma_setup's caller holds the mmap read lock
    try {
      this.engine.commit(plan, await this.#perform(plan));
    } finally {
      t.mm.lock.readUnlock();
      this.stats.moveMs += performance.now() - t3;
    }
  }

  /**
   * The GPU's counts as the policy's batch: each counted region inside the managed range, as
   * its first page (relative) and the requests not handed over yet (serviceCounters hands them
   * over between rounds), and the requests the command's counts sum to (the remote bytes'
   * measure). Regions come aligned to the range (gpuCounters), so one outside it lies wholly
   * outside and is dropped. `end`: the command's last readout (its words go into the stats).
   */
  #readout(c: AccessCounts, end: boolean): { count: number; pages: Float64Array; counts: Uint32Array; requests: number } {
    if (this.#acPages.length < c.counts.length) {
      this.#acPages = new Float64Array(c.counts.length);
      this.#acCounts = new Uint32Array(c.counts.length);
    }
    // Requests handed over for this command's counts so far (a new command starts at none).
    if (this.#acOf !== c) {
      this.#acOf = c;
      if (this.#acDelivered.length < c.counts.length) this.#acDelivered = new Uint32Array(c.counts.length);
      else this.#acDelivered.fill(0);
    }
    const delivered = this.#acDelivered;
    let n = 0;
    let total = 0;
    // The counting unit is a memory request (accessCounterRequestBytes), not the word the
    // kernels count: a region's words become whole requests.
    const unit = this.engine.policy.accessCounterRequestBytes ?? ACCESS_REQUEST_BYTES;
    for (let i = 0; i < c.counts.length; i++) {
      const p = c.firstPage + i * c.regionPages - this.basePage;
      if (c.counts[i] === 0 || p < 0 || p >= this.npages) continue;
      const requests = Math.ceil((c.counts[i] * 4) / unit);
      total += requests;
      if (end) this.stats.countedAccesses += c.counts[i];
      if (requests <= delivered[i]) continue; // nothing new since the last hand-over
      this.#acPages[n] = p;
      this.#acCounts[n] = requests - delivered[i];
      delivered[i] = requests;
      n++;
    }
    if (end) this.#acOf = null;
    return { count: n, pages: this.#acPages, counts: this.#acCounts, requests: total };
  }

  /**
   * One coalesced batch: its non-atomic groups' faulted pages go to the policy as one fault
   * group (typed arrays), its moves are performed, the rest is mapped through the aperture.
   * Caller holds the mmap read lock (migrate_vma_setup, hmm_range_fault need it).
   */
  async serviceBatch(t: MirrorTarget, groups: readonly FaultGroup[], faults: number, opts: RetryOptions,
    lock: LockState, rec: BatchRecord): Promise<number> {
    this.#reconcile();
    const res = this.engine.residency;
    let n = 0;
    for (const g of groups) n += g.pages.length;
    if (this.#pages.length < n) {
      this.#pages = new Float64Array(n * 2);
      this.#access = new Uint8Array(n * 2);
    }
    let count = 0;
    for (const g of groups) {
      for (const page of g.pages) {
        const p = this.#rel(page);
        if (p < 0) continue; // outside the managed range: serviced below, as without a policy
        this.#pages[count] = p;
        this.#access[count] = g.rank >= 1 ? ACCESS_WRITE : ACCESS_READ;
        count++;
      }
    }
    const throttled = new Set<number>();
    const remoteish = new Set<number>(); // decided REMOTE for good
    if (count > 0 && this.record !== null) {
      for (let i = 0; i < count; i++) {
        this.record.push({ time: this.#now, addr: (this.basePage + this.#pages[i]) * PAGE_SIZE, access: this.#access[i] === ACCESS_WRITE ? ACCESS_WRITE : ACCESS_READ, proc: this.device });
      }
    }
    const sched = t.mm.core.sched;
    if (count > 0) {
      const t0 = performance.now();
      const s0 = sched.now();
      // The prefetcher's va_blocks are clipped to the VMAs (HMM's uvm_hmm_va_block_find_create):
      // walked again only when the VMA tree changed since the last batch.
      const vmas = t.mm.vmas;
      if (vmas !== this.#regionsOf || vmas.seq !== this.#regionsSeq) {
        const lo = this.basePage * PAGE_SIZE;
        const regions: [number, number][] = [];
        for (const v of vmas.range(lo, lo + this.npages * PAGE_SIZE)) {
          const a = Math.max(0, v.start / PAGE_SIZE - this.basePage);
          const b = Math.min(this.npages, v.end / PAGE_SIZE - this.basePage);
          if (b > a) regions.push([a, b]);
        }
        this.engine.setRegions(regions);
        this.#regionsOf = vmas;
        this.#regionsSeq = vmas.seq;
      }
      const r = this.engine.serviceGroup(this.device, this.#pages, this.#access, count, faults, this.#now);
      for (let i = 0; i < count; i++) {
        const a = r.action[i];
        if (a === DECIDE_THROTTLE) throttled.add(this.basePage + this.#pages[i]);
        // Fault-around only for mappings without an end: a lease means the policy wants to
        // see the next touch, which neighbours mapped for good would hide.
        else if (a === DECIDE_REMOTE && r.until[i] === 0) remoteish.add(this.basePage + this.#pages[i]);
      }
      const plan = r.plan;
      this.stats.policyMs += performance.now() - t0;
      notePhase(rec, 'policy', s0, sched.now());
      this.stats.groups++;
      this.stats.faultRecords += faults;
      this.stats.throttledFaults += throttled.size;
      // The device waits for the service. Throttled faults are skipped and replayed later while
      // the GPU keeps running (uvm_gpu_replayable_faults.c, service_fault_batch_block_locked:
      // "throttling is implemented ... by continuing to process faults on other pages on the
      // GPU"): only a batch in which every fault was throttled leaves the device nothing to
      // run until the first nap ends.
      this.#now += r.ns;
      if (throttled.size > 0 && throttled.size === count) this.#now = Math.max(this.#now, r.throttleFirst);
      const t1 = performance.now();
      const s1 = sched.now();
      this.engine.commit(plan, await this.#perform(plan));
      this.stats.moveMs += performance.now() - t1;
      notePhase(rec, 'migration', s1, sched.now());
    }
    // What is neither throttled nor mapped by now: hmm_range_fault and map (a device page of
    // ours maps locally, a system page through the aperture). A group with a page the policy
    // maps remotely for good (or outside the managed range) is serviced over its whole window,
    // as without a policy (fault-around); other groups only what is left of their faults.
    const t2 = performance.now();
    const todo: number[] = [];
    const want = new Map<number, number>();
    for (const g of groups) {
      const around = g.pages.some((q) => remoteish.has(q) || this.#rel(q) < 0);
      const pages = around ? Array.from({ length: (g.end - g.start) / PAGE_SIZE }, (_, i) => g.start / PAGE_SIZE + i) : g.pages;
      for (const q of pages) {
        if (throttled.has(q) || want.has(q) || t.pt.isMapped(q, g.rank)) continue;
        want.set(q, g.rank);
        todo.push(q);
      }
    }
    todo.sort((a, b) => a - b);
    for (const [s, e] of runs(todo)) {
      let write = false;
      for (let q = s; q < e; q++) write ||= (want.get(q) ?? 0) >= 1;
      await serviceRange(t, s * PAGE_SIZE, e * PAGE_SIZE, write, opts, lock, rec);
      for (let q = s; q < e; q++) {
        const p = this.#rel(q);
        if (p >= 0 && res.location(p) === CPU && !res.mappedRemote(this.device, p)) res.mapRemote(this.device, p, 0);
      }
    }
    this.stats.serviceMs += performance.now() - t2;
    return throttled.size;
  }

  /** A plan's moves performed, and what really moved (plan-moves.ts). Caller holds the mmap read lock. */
  #perform(plan: Plan): Promise<PlanOutcome> {
    return performPlan(plan, this.#mover, this.#target.mm, this.basePage, this.device, this.stats);
  }

  /**
   * dmirror_devmem_fault, before the page moves (Dmirror passes it on for its own mm): the
   * policy's cpuFault hook for the page at `addr`. A throttled CPU waits its nap (virtual
   * time) and asks again; the decision (home, or home pinned) is kept for afterCpuFault.
   */
  beforeCpuFault(addr: number): { start: number; end: number } | undefined {
    if (this.#frozen) return undefined;
    const p = this.#rel(Math.floor(addr / PAGE_SIZE));
    if (p < 0) return undefined;
    this.#reconcile();
    // Already home by the residency: a neighbour's fault brought its big page home and this
    // page's own migration is still on its way (another CPU thread raced into it). Not a new
    // fault for the policy; devmem moves the one page if it is still ours.
    if (this.engine.residency.location(p) === CPU || this.#homing.has(p)) return undefined;
    // The big page the engine brings home with it (aligned within the managed range).
    const g = this.engine.cpuFaultPages;
    const lo = this.basePage + Math.floor(p / g) * g;
    const range = { start: lo * PAGE_SIZE, end: Math.min(lo + g, this.basePage + this.npages) * PAGE_SIZE };
    this.stats.cpuFaults++;
    this.record?.push({ time: this.#now, addr: addr - (addr % PAGE_SIZE), access: ACCESS_WRITE, proc: CPU });
    for (let tries = 0; tries < 1000; tries++) {
      const f = this.engine.serviceCpuFault(p, ACCESS_WRITE, this.#now);
      if (f.action !== DECIDE_THROTTLE) {
        this.#cpuFaults.set(p, f.plan);
        for (const step of f.plan.steps) if (step.kind === 'move') for (const q of step.pages) this.#homing.add(q);
        this.#now += f.ns; // the CPU waits for the copy home
        return range;
      }
      this.#now = Math.max(this.#now + 1, f.until);
    }
    return range;
  }

  /** The CPU fault's migration is done: record what the CPU table shows (the page home, pinned if so decided). */
  afterCpuFault(addr: number): void {
    const p = this.#rel(addr / PAGE_SIZE);
    const f = p < 0 ? undefined : this.#cpuFaults.get(p);
    if (f === undefined) return;
    this.#cpuFaults.delete(p);
    for (const step of f.steps) if (step.kind === 'move') for (const q of step.pages) this.#homing.delete(q);
    // What came home is what the CPU table no longer holds in our device memory (the big page: each page).
    const home = (q: number): boolean => {
      const pfn = mappedPfn(this.#target.mm, (this.basePage + q) * PAGE_SIZE);
      return !(pfn >= 0 && this.#mover.isDevicePage(pfn));
    };
    this.engine.commit(f, { moved: (_, q) => home(q) });
  }
}
