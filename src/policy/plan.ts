/**
 * A policy's decision as a plan: a plain value naming, in the order they must happen, the
 * pages to move (evictions home before the pages that needed their room, migrations and
 * prefetches in, pages brought home), the pages to map remotely or pin, and the chunks the
 * round used. The engine (engine.ts) makes one per fault group, CPU fault or access-counter
 * readout; the driver performs it (src/driver/policy-path.ts: migrate_vma, the aperture) or
 * the simulator (sim.ts) takes it as done; then the engine's commit() records what actually
 * moved in the residency. Nothing is recorded before it happens and nothing is undone.
 *
 * Planning looks ahead over one plan: the Planner sees the residency through an overlay of
 * the plan's own moves so far (where a page will be, how full the device will be, which
 * chunks are already chosen as victims), as UVM's service_va_block_locked decides a block's
 * moves under its lock before it copies anything.
 */
import { err } from '../errors.js';
import { PAGE_SIZE, transferNs, transferRunsNs } from './cost.js';
import { PageList, type Residency } from './residency.js';
import { CPU, type Location, type MigrationBatch, type MigrationCause, type PageSink } from './types.js';

export type PlanStep =
  /** Pages to move to `dst` (CPU: home), in the order planned. An eviction is one step per victim chunk. */
  | { readonly kind: 'move'; readonly dst: Location; readonly cause: MigrationCause; readonly pages: Float64Array }
  /**
   * Map system pages remotely into the plan's device, page i until until[i] (0: no end). One
   * step for a run of remote() calls with nothing between, not a step a page (UVM maps a
   * block's serviced pages with one page mask: uvm_va_block_service_finish's uvm_va_block_map).
   */
  | { readonly kind: 'remote'; readonly pages: Float64Array; readonly until: Float64Array }
  /** Pin a system page (mapped remotely by `device` when it is ≥ 0) until `until`. */
  | { readonly kind: 'pin'; readonly page: number; readonly until: number; readonly device: number }
  | { readonly kind: 'unpin'; readonly page: number };

export interface Plan {
  readonly device: number;
  /** Virtual time of the decision: every step is stamped with it. */
  readonly now: number;
  readonly steps: PlanStep[];
  /** Chunks the round touched (uvm_pmm_chunk_used), told to the eviction order after the moves. */
  readonly used: number[];
  /** Pages that found no room (device full, nothing evictable): mapped remotely instead. */
  allocFailures: number;
}

/** What became of a plan's moves: whether page `page` of step `step` really moved (default: all did). */
export interface PlanOutcome {
  moved(step: number, page: number): boolean;
}

/** A plan with nothing in it (what begin() then end() would give). */
export function emptyPlan(device: number, now: number): Plan {
  return { device, now, steps: [], used: [], allocFailures: 0 };
}

export const ALL_MOVED: PlanOutcome = Object.freeze({ moved: () => true });

/** An overlay entry the plan has not set (locations are CPU = -1 or a device 0..7). */
const UNSET = -128;

export class Planner {
  readonly #res: Residency;
  /**
   * The overlay, one entry a page (UNSET: as the residency has it), and the pages it set, so
   * begin() resets only those: typed arrays, not Maps, on the per-page path.
   */
  readonly #loc: Int8Array;
  /** UNSET, 0 (unpinned by the plan) or 1 (pinned by it). */
  readonly #pinned: Int8Array;
  #touched = new Int32Array(64);
  #ntouched = 0;
  readonly #used: Int32Array;
  readonly #victims: Set<number>[];
  #plan: Plan | null = null;
  /** pickVictim's `full` (is every page of chunk c on #fullDevice, as planned?): made once, not a closure an eviction. */
  #fullDevice = 0;
  readonly #full = (c: number): boolean => {
    const res = this.#res;
    const lo = c * res.chunkPages;
    const hi = Math.min(lo + res.chunkPages, res.pageCount);
    for (let p = lo; p < hi; p++) if (this.location(p) !== this.#fullDevice) return false;
    return hi > lo;
  };
  /** The move step being built (#open: whether one is; its pages in #openPages up to #openLen, reused: a step gets a copy). */
  #open = false;
  #openPages = new Float64Array(64);
  #openLen = 0;
  #openDst: Location = CPU;
  #openCause: MigrationCause = 'fault';
  /** The remote step being built (its pages and untils up to #remoteLen, reused: a step gets copies). */
  #remoteOpen = false;
  #remotePages = new Float64Array(64);
  #remoteUntil = new Float64Array(64);
  #remoteLen = 0;
  /** toDevice's pages moved since the last eviction (their copy is charged as one batch), reused. */
  readonly #batch = new PageList(64);

  constructor(res: Residency) {
    this.#res = res;
    this.#loc = new Int8Array(res.pageCount).fill(UNSET);
    this.#pinned = new Int8Array(res.pageCount).fill(UNSET);
    this.#used = new Int32Array(res.devices);
    this.#victims = Array.from({ length: res.devices }, () => new Set<number>());
  }

  /** Start a plan (the overlay starts from the residency as it is). */
  begin(device: number, now: number): Plan {
    for (let i = 0; i < this.#ntouched; i++) {
      const p = this.#touched[i];
      this.#loc[p] = UNSET;
      this.#pinned[p] = UNSET;
    }
    this.#ntouched = 0;
    this.#used.fill(0);
    for (const v of this.#victims) v.clear();
    this.#open = false;
    this.#remoteOpen = false;
    this.#plan = { device, now, steps: [], used: [], allocFailures: 0 };
    return this.#plan;
  }

  get #p(): Plan {
    if (this.#plan === null) throw err('EINVAL', 'no plan begun');
    return this.#plan;
  }

  location(p: number): Location {
    const v = this.#loc[p];
    return v === undefined || v === UNSET ? this.#res.location(p) : v;
  }

  pinned(p: number): boolean {
    const v = this.#pinned[p];
    return v === undefined || v === UNSET ? this.#res.pinned(p) : v === 1;
  }

  /** Note that the overlay set page p (once a plan: begin() resets it). */
  #touch(p: number): void {
    if (this.#loc[p] !== UNSET || this.#pinned[p] !== UNSET) return;
    if (this.#ntouched === this.#touched.length) {
      const t = new Int32Array(this.#touched.length * 2);
      t.set(this.#touched);
      this.#touched = t;
    }
    this.#touched[this.#ntouched++] = p;
  }

  #setLoc(p: number, dst: Location): void {
    if (!(p >= 0 && p < this.#loc.length)) throw err('EINVAL', `plan: page ${p} out of range`);
    this.#touch(p);
    this.#loc[p] = dst;
  }

  #setPinned(p: number, pinned: boolean): void {
    if (!(p >= 0 && p < this.#pinned.length)) throw err('EINVAL', `plan: page ${p} out of range`);
    this.#touch(p);
    this.#pinned[p] = pinned ? 1 : 0;
  }

  #usedPages(d: number): number {
    return this.#res.usedPages(d) + this.#used[d];
  }

  /** Moves accumulate into one step until an eviction (or another kind of step) comes between. */
  #move(p: number, dst: Location, cause: MigrationCause): void {
    if (!this.#open || this.#openDst !== dst || this.#openCause !== cause) {
      this.#close();
      this.#open = true;
      this.#openLen = 0;
      this.#openDst = dst;
      this.#openCause = cause;
    }
    if (this.#openLen === this.#openPages.length) {
      const grown = new Float64Array(this.#openPages.length * 2);
      grown.set(this.#openPages);
      this.#openPages = grown;
    }
    this.#openPages[this.#openLen++] = p;
    const from = this.location(p);
    if (from !== CPU) this.#used[from]--;
    if (dst !== CPU) this.#used[dst]++;
    this.#setLoc(p, dst);
  }

  #close(): void {
    if (this.#open && this.#openLen > 0) {
      this.#p.steps.push({ kind: 'move', dst: this.#openDst, cause: this.#openCause, pages: this.#openPages.slice(0, this.#openLen) });
    }
    this.#open = false;
    if (this.#remoteOpen && this.#remoteLen > 0) {
      this.#p.steps.push({ kind: 'remote', pages: this.#remotePages.slice(0, this.#remoteLen), until: this.#remoteUntil.slice(0, this.#remoteLen) });
    }
    this.#remoteOpen = false;
  }

  /** The plan, its last moves closed. */
  end(): Plan {
    this.#close();
    const p = this.#p;
    this.#plan = null;
    return p;
  }

  remote(p: number, until: number): void {
    if (this.location(p) !== CPU) throw err('EINVAL', `page ${p} is not in system memory`);
    if (!this.#remoteOpen) {
      this.#close();
      this.#remoteOpen = true;
      this.#remoteLen = 0;
    }
    if (this.#remoteLen === this.#remotePages.length) {
      const pages = new Float64Array(this.#remoteLen * 2);
      const until = new Float64Array(this.#remoteLen * 2);
      pages.set(this.#remotePages);
      until.set(this.#remoteUntil);
      this.#remotePages = pages;
      this.#remoteUntil = until;
    }
    this.#remotePages[this.#remoteLen] = p;
    this.#remoteUntil[this.#remoteLen++] = until;
  }

  pin(p: number, until: number, device: number): void {
    if (this.location(p) !== CPU) throw err('EINVAL', `page ${p} must be home to pin`);
    this.#close();
    this.#setPinned(p, true);
    this.#p.steps.push({ kind: 'pin', page: p, until, device });
  }

  unpin(p: number): void {
    this.#close();
    this.#setPinned(p, false);
    this.#p.steps.push({ kind: 'unpin', page: p });
  }

  used(chunks: Iterable<number>): void {
    for (const c of chunks) this.#p.used.push(c);
  }

  /** Bring device-resident pages home (a CPU fault, an explicit move). Returns ns of the copy. */
  home(pages: ArrayLike<number>, count: number, cause: MigrationCause): number {
    const moved: number[] = [];
    for (let i = 0; i < count; i++) {
      const p = pages[i];
      if (this.location(p) === CPU) continue;
      this.#move(p, CPU, cause);
      moved.push(p);
    }
    this.#close();
    return transferRunsNs(this.#res.cost, moved, moved.length);
  }

  /**
   * Move `count` pages into device d (pages already there or pinned are skipped). Makes room
   * by evicting chunks not in `busy`; pages that still do not fit go to `failed` (the caller
   * maps them remotely, as test_hmm's MIGRATE_TO_DEV skips pages it cannot allocate).
   * Returns ns of copy and eviction.
   */
  toDevice(d: number, pages: ArrayLike<number>, count: number, cause: MigrationCause, busy: ReadonlySet<number>,
    failed: PageSink | null): number {
    let ns = 0;
    if (this.#res.devices > 1 || d !== 0) {
      // (With one device, d = 0, a page not on d is home: nothing to look for.)
      const pending: number[] = [];
      for (let i = 0; i < count; i++) {
        const p = pages[i];
        if (this.location(p) === d || this.pinned(p)) continue;
        if (this.location(p) !== CPU) pending.push(p); // on another device: home first
      }
      if (pending.length > 0) ns += this.home(pending, pending.length, 'explicit');
    }
    // Each batch of moves between evictions is charged as its contiguous runs, one transfer each.
    const batch = this.#batch;
    batch.clear();
    for (let i = 0; i < count; i++) {
      const p = pages[i];
      if (this.location(p) !== CPU || this.pinned(p)) continue;
      if (this.#usedPages(d) >= this.#res.capacityPages(d)) {
        if (batch.length > 0) {
          ns += this.#copyNs(batch, cause);
          batch.clear();
        }
        const ev = this.evictOne(d, busy);
        if (ev < 0) {
          this.#p.allocFailures++;
          failed?.push(p);
          continue;
        }
        ns += ev;
      }
      this.#move(p, d, cause);
      batch.push(p);
    }
    this.#close();
    return ns + this.#copyNs(batch, cause);
  }

  /**
   * ns to copy `pages` to the device: each contiguous run one transfer, or with the cost
   * model's faultTransfer 'page' each faulted page one transfer of its own (UVM_Smart's
   * do_hardware_prefetch ends a PCIE_READ at every faulted page).
   */
  #copyNs(batch: PageList, cause: MigrationCause): number {
    const cost = this.#res.cost;
    if (cause === 'fault' && cost.faultTransfer === 'page') return batch.length * transferNs(cost, PAGE_SIZE);
    return transferRunsNs(cost, batch.pages, batch.length);
  }

  /**
   * Evict one chunk of device d (uvm_pmm_gpu.c: pick_root_chunk_to_evict, evict_root_chunk):
   * the eviction order's evictionPrepare, then its pickVictim (default: the first chunk from
   * the head) among chunks neither busy nor already chosen. Returns ns, or -1 when nothing
   * can be evicted.
   */
  evictOne(d: number, busy: ReadonlySet<number>): number {
    const res = this.#res;
    const list = res.chunkList(d);
    const hooks = res.eviction;
    const now = this.#p.now;
    const taken = this.#victims[d];
    const skip: ReadonlySet<number> = taken.size === 0 ? busy : new Set([...busy, ...taken]);
    hooks.evictionPrepare?.(d, now, list);
    let victim = -1;
    if (hooks.pickVictim) {
      this.#fullDevice = d;
      victim = hooks.pickVictim(d, now, list, skip, this.#full);
      if (victim >= 0 && (!list.has(victim) || skip.has(victim))) {
        throw err('EINVAL', `eviction policy ${hooks.name} picked chunk ${victim}, not evictable`);
      }
    } else {
      for (let c = list.head(); c >= 0; c = list.next(c)) {
        if (!skip.has(c)) {
          victim = c;
          break;
        }
      }
    }
    if (victim < 0) return -1;
    const first = victim * res.chunkPages;
    const end = Math.min(first + res.chunkPages, res.pageCount);
    let pages: number[] = [];
    for (let p = first; p < end; p++) if (this.location(p) === d) pages.push(p);
    const g = hooks.granularityPages ?? res.chunkPages;
    if (g < res.chunkPages && pages.length > 0) {
      // A sub-chunk eviction (UVM_Smart's random-4K, SL-64K): one aligned block of g pages.
      const pick = hooks.pickInChunk?.(d, victim, pages, now) ?? pages[0];
      if (!pages.includes(pick)) throw err('EINVAL', `eviction policy ${hooks.name} picked page ${pick}, not resident in chunk ${victim}`);
      const lo = Math.floor(pick / g) * g;
      const all = pages.length;
      pages = pages.filter((p) => p >= lo && p < lo + g);
      if (pages.length === all) taken.add(victim); // the chunk empties: it leaves the list
    } else {
      taken.add(victim);
    }
    this.#close();
    for (const p of pages) this.#move(p, CPU, 'eviction');
    this.#close();
    return transferRunsNs(res.cost, pages, pages.length) + res.cost.evictChunkNs;
  }
}

/**
 * Record what a plan really did in the residency (`outcome`: which pages of each move moved),
 * in the plan's order: moves, remote mappings, pins; then the chunks the round used. Each
 * batch of recorded moves goes to `moved` (the engine: the policy's `migrated` hook). Returns
 * the pages recorded as moved to the device for each cause.
 */
export function commitPlan(res: Residency, plan: Plan, outcome: PlanOutcome = ALL_MOVED,
  moved?: (batch: MigrationBatch) => void): Map<MigrationCause, number> {
  const toDevice = new Map<MigrationCause, number>();
  plan.steps.forEach((step, i) => {
    switch (step.kind) {
      case 'move': {
        const pages = step.pages.filter((p) => outcome.moved(i, p));
        const done = step.dst === CPU ? res.recordHome(pages, plan.now) : res.recordToDevice(step.dst, pages, step.cause, plan.now);
        if (step.cause === 'eviction') res.recordEviction(done.length);
        if (step.dst !== CPU) toDevice.set(step.cause, (toDevice.get(step.cause) ?? 0) + done.length);
        if (done.length > 0) moved?.({ now: plan.now, dst: step.dst, cause: step.cause, count: done.length, pages: Float64Array.from(done) });
        break;
      }
      case 'remote':
        for (let j = 0; j < step.pages.length; j++) {
          const p = step.pages[j];
          if (res.location(p) === CPU) res.mapRemote(plan.device, p, step.until[j]);
        }
        break;
      case 'pin':
        if (res.location(step.page) === CPU) res.pin(step.page, step.until, step.device);
        break;
      case 'unpin':
        res.unpin(step.page);
        break;
    }
  });
  res.stats.allocFailures += plan.allocFailures;
  for (const c of plan.used) res.chunkUsed(plan.device, c, plan.now);
  return toDevice;
}
