/**
 * The residency state machine: where each page of a managed range lives (system memory or one
 * device's memory), which device maps a system page remotely, pins, per-page history and
 * device memory accounting in chunks. It is state only: it records moves that happened (the
 * engine's commit of a plan, from the driver's result) and makes no decision — the policy
 * decides, the engine plans (plan.ts: eviction victims included), the driver moves.
 *
 * Device memory is counted in pages; eviction frees whole chunks (chunkPages, 512 = 2 MiB,
 * UVM's root chunk / va_block): every device page of the victim chunk goes home, as
 * uvm_pmm_gpu.c's pick_root_chunk_to_evict + evict_root_chunk do (planned in plan.ts). A
 * partly filled chunk costs only its pages (dmirror's device-private memory is per page;
 * UVM would hold the whole 2 MiB).
 */
import {
  CPU, type ChunkList, type EvictionHooks, type Location, type MigrationCause, type PageSink, type ResidencyView,
} from './types.js';
import { type CostModel, DEFAULT_COST, PAGE_SIZE } from './cost.js';
import { err } from '../errors.js';

/** A growable list of page numbers (typed storage; `pages` is valid up to `length`). */
export class PageList implements PageSink {
  pages: Float64Array;
  length = 0;
  constructor(capacity = 64) {
    this.pages = new Float64Array(Math.max(1, capacity));
  }
  push(page: number): void {
    if (this.length === this.pages.length) {
      const grown = new Float64Array(this.pages.length * 2);
      grown.set(this.pages);
      this.pages = grown;
    }
    this.pages[this.length++] = page;
  }
  clear(): void {
    this.length = 0;
  }
}

/** A doubly linked list over chunk ids 0..n-1 (the PMM's va_block_used list). */
export class LinkedChunkList implements ChunkList {
  readonly #next: Int32Array;
  readonly #prev: Int32Array;
  readonly #in: Uint8Array;
  #head = -1;
  #tail = -1;
  #length = 0;
  constructor(chunks: number) {
    this.#next = new Int32Array(chunks).fill(-1);
    this.#prev = new Int32Array(chunks).fill(-1);
    this.#in = new Uint8Array(chunks);
  }
  get length(): number {
    return this.#length;
  }
  head(): number {
    return this.#head;
  }
  tail(): number {
    return this.#tail;
  }
  next(c: number): number {
    return this.#in[c] ? this.#next[c] : -1;
  }
  prev(c: number): number {
    return this.#in[c] ? this.#prev[c] : -1;
  }
  has(c: number): boolean {
    return c >= 0 && c < this.#in.length && this.#in[c] === 1;
  }
  remove(c: number): void {
    if (!this.has(c)) return;
    const p = this.#prev[c];
    const n = this.#next[c];
    if (p >= 0) this.#next[p] = n; else this.#head = n;
    if (n >= 0) this.#prev[n] = p; else this.#tail = p;
    this.#in[c] = 0;
    this.#next[c] = this.#prev[c] = -1;
    this.#length--;
  }
  moveTail(c: number): void {
    this.#check(c);
    this.remove(c);
    this.#prev[c] = this.#tail;
    this.#next[c] = -1;
    if (this.#tail >= 0) this.#next[this.#tail] = c; else this.#head = c;
    this.#tail = c;
    this.#in[c] = 1;
    this.#length++;
  }
  moveHead(c: number): void {
    this.#check(c);
    this.remove(c);
    this.#next[c] = this.#head;
    this.#prev[c] = -1;
    if (this.#head >= 0) this.#prev[this.#head] = c; else this.#tail = c;
    this.#head = c;
    this.#in[c] = 1;
    this.#length++;
  }
  /** Chunks from head to tail (tests, reports). */
  toArray(): number[] {
    const out: number[] = [];
    for (let c = this.#head; c >= 0; c = this.#next[c]) out.push(c);
    return out;
  }
  #check(c: number): void {
    if (!Number.isInteger(c) || c < 0 || c >= this.#in.length) throw err('EINVAL', `chunk ${c} out of range`);
  }
}

/** Device access outcome (touchDevice). */
export const TOUCH_LOCAL = 0;
export const TOUCH_REMOTE = 1;
export const TOUCH_FAULT = 2;
export type Touch = typeof TOUCH_LOCAL | typeof TOUCH_REMOTE | typeof TOUCH_FAULT;

/** Counters of residency transitions over a run. */
export interface ResidencyStats {
  bytesToDevice: number;
  bytesToHost: number;
  migrationsToDevice: number;
  migrationsToHost: number;
  remoteAccesses: number;
  evictions: number;
  evictedPages: number;
  prefetchedPages: number;
  /** Prefetched pages the device then touched before they left. */
  prefetchHits: number;
  pins: number;
  /** Pages a migration could not place (device full, nothing evictable): mapped remotely. */
  allocFailures: number;
}

export interface ResidencyOptions {
  pages: number;
  devices?: number;
  /** Device memory, in pages (one figure for all devices, or one a device). */
  capacityPages: number | readonly number[];
  chunkPages?: number;
  cost?: CostModel;
  eviction?: EvictionHooks;
}

const NEVER = -1;

export class Residency implements ResidencyView {
  readonly pageCount: number;
  readonly devices: number;
  readonly chunkPages: number;
  readonly chunks: number;
  readonly cost: CostModel;
  readonly stats: ResidencyStats = {
    bytesToDevice: 0, bytesToHost: 0, migrationsToDevice: 0, migrationsToHost: 0,
    remoteAccesses: 0, evictions: 0, evictedPages: 0, prefetchedPages: 0, prefetchHits: 0, pins: 0,
    allocFailures: 0,
  };

  readonly #loc: Int16Array;
  readonly #remote: Uint8Array; // bit d: device d maps this system page remotely
  readonly #remoteUntil: Float64Array; // 0 = no expiry
  readonly #pinnedUntil: Float64Array; // -1 not pinned, 0 pinned without deadline
  readonly #toDev: Float64Array;
  readonly #toHost: Float64Array;
  readonly #trips: Uint32Array;
  readonly #remoteCount: Uint32Array;
  readonly #prefetched: Uint8Array;
  readonly #capacity: Int32Array;
  readonly #used: Int32Array;
  readonly #chunkCount: Uint32Array; // [device * chunks + chunk]
  readonly #lists: LinkedChunkList[];
  /** The eviction order's hooks (the planner picks victims through them). */
  readonly eviction: EvictionHooks;
  // Remote accesses of the current round (drained by takeRoundCounts).
  readonly #roundCount: Uint32Array;
  readonly #roundPages = new PageList();

  constructor(o: ResidencyOptions) {
    const devices = o.devices ?? 1;
    const chunkPages = o.chunkPages ?? 512;
    if (!Number.isSafeInteger(o.pages) || o.pages <= 0) throw err('EINVAL', `pages ${o.pages}`);
    if (!Number.isInteger(devices) || devices < 1 || devices > 8) throw err('EINVAL', `devices ${devices} (1..8)`);
    if (!Number.isInteger(chunkPages) || chunkPages < 1 || (chunkPages & (chunkPages - 1)) !== 0) {
      throw err('EINVAL', `chunkPages ${chunkPages} must be a power of two`);
    }
    this.pageCount = o.pages;
    this.devices = devices;
    this.chunkPages = chunkPages;
    this.chunks = Math.ceil(o.pages / chunkPages);
    this.cost = o.cost ?? DEFAULT_COST;
    this.eviction = o.eviction ?? LRU_DEFAULT;
    this.#capacity = new Int32Array(devices);
    for (let d = 0; d < devices; d++) {
      const c = typeof o.capacityPages === 'number' ? o.capacityPages : o.capacityPages[d];
      if (!Number.isSafeInteger(c) || c < 0) throw err('EINVAL', `capacityPages ${c} for device ${d}`);
      this.#capacity[d] = c;
    }
    this.#used = new Int32Array(devices);
    const n = o.pages;
    this.#loc = new Int16Array(n).fill(CPU);
    this.#remote = new Uint8Array(n);
    this.#remoteUntil = new Float64Array(n);
    this.#pinnedUntil = new Float64Array(n).fill(NEVER);
    this.#toDev = new Float64Array(n).fill(NEVER);
    this.#toHost = new Float64Array(n).fill(NEVER);
    this.#trips = new Uint32Array(n);
    this.#remoteCount = new Uint32Array(n);
    this.#prefetched = new Uint8Array(n);
    this.#roundCount = new Uint32Array(n);
    this.#chunkCount = new Uint32Array(devices * this.chunks);
    this.#lists = Array.from({ length: devices }, () => new LinkedChunkList(this.chunks));
  }

  // ---- ResidencyView ----
  location(p: number): Location {
    return this.#loc[p];
  }
  mappedRemote(d: number, p: number): boolean {
    return (this.#remote[p] & (1 << d)) !== 0;
  }
  pinned(p: number): boolean {
    return this.#pinnedUntil[p] !== NEVER;
  }
  lastToDevice(p: number): number {
    return this.#toDev[p];
  }
  lastToHost(p: number): number {
    return this.#toHost[p];
  }
  roundTrips(p: number): number {
    return this.#trips[p];
  }
  remoteAccesses(p: number): number {
    return this.#remoteCount[p];
  }
  freePages(d: number): number {
    return this.#capacity[d] - this.#used[d];
  }
  capacityPages(d: number): number {
    return this.#capacity[d];
  }
  usedPages(d: number): number {
    return this.#used[d];
  }
  /** The device's chunk list, head = next LRU victim (read it; reorder through the hooks). */
  chunkList(d: number): LinkedChunkList {
    return this.#lists[d];
  }
  /** When p's remote mapping lapses (0 = never). */
  remoteUntil(p: number): number {
    return this.#remoteUntil[p];
  }
  pinnedUntil(p: number): number {
    return this.#pinnedUntil[p];
  }

  // ---- accesses ----
  /** Expire a lapsed pin or remote mapping of `p` at `now` (NVIDIA's unpin worker unmaps). */
  #expire(p: number, now: number): void {
    const pin = this.#pinnedUntil[p];
    if (pin > 0 && now >= pin) {
      this.#pinnedUntil[p] = NEVER;
      this.#remote[p] = 0;
      this.#remoteUntil[p] = 0;
    }
    const ru = this.#remoteUntil[p];
    if (ru > 0 && now >= ru && this.#pinnedUntil[p] === NEVER) {
      this.#remote[p] = 0;
      this.#remoteUntil[p] = 0;
    }
  }

  /** A device access to page p: local hit, remote access through the aperture, or a fault. */
  touchDevice(d: number, p: number, now: number): Touch {
    this.#expire(p, now);
    const loc = this.#loc[p];
    if (loc === d) {
      this.#localHit(p);
      return TOUCH_LOCAL;
    }
    if (loc === CPU && (this.#remote[p] & (1 << d)) !== 0) {
      this.#remoteTouch(p, true);
      return TOUCH_REMOTE;
    }
    return TOUCH_FAULT;
  }

  /** A device access found p in its own memory: a prefetched page's first use is a prefetch hit. */
  #localHit(p: number): void {
    if (this.#prefetched[p]) {
      this.#prefetched[p] = 0;
      this.stats.prefetchHits++;
    }
  }

  /** A device access went to system page p through its remote mapping: counted (and for the round's counts unless `roundCounts` is false). */
  #remoteTouch(p: number, roundCounts: boolean): void {
    this.stats.remoteAccesses++;
    this.#remoteCount[p]++;
    if (roundCounts && this.#roundCount[p]++ === 0) this.#roundPages.push(p);
  }

  /**
   * touchDevice for each page of [first, end), in order (a command's end: every page it ran
   * over, touched once), in one loop over the typed arrays instead of a call a page. Returns
   * the remote touches; `hits` gets each chunk with a local hit, once, ascending (the pages
   * ascend, so a chunk's hits are adjacent); `lapsed` each page whose remote mapping by d
   * lapsed at `now` (it faults now: the mirror's entry must go). `roundCounts` false: the
   * remote touches are not added to the round's counts (takeRoundCounts), for a caller whose
   * counts come from elsewhere and who would drop them (PolicyPath with the GPU's readout).
   */
  touchDeviceRange(d: number, first: number, end: number, now: number, hits: PageList, lapsed: PageList, roundCounts = true): number {
    const loc = this.#loc;
    const remote = this.#remote;
    const bit = 1 << d;
    let remotes = 0;
    let lastHit = -1;
    for (let p = first; p < end; p++) {
      const mapped = (remote[p] & bit) !== 0;
      if (this.#pinnedUntil[p] > 0 || this.#remoteUntil[p] > 0) this.#expire(p, now);
      const l = loc[p];
      if (l === d) {
        this.#localHit(p);
        const c = Math.floor(p / this.chunkPages);
        if (c !== lastHit) {
          hits.push(c);
          lastHit = c;
        }
      } else if (l === CPU && (remote[p] & bit) !== 0) {
        this.#remoteTouch(p, roundCounts);
        remotes++;
      } else if (l === CPU && mapped) {
        lapsed.push(p);
      }
    }
    return remotes;
  }

  /** Chunks touched by a device round: tell the eviction policy (uvm_pmm_chunk_used). */
  chunkUsed(d: number, chunk: number, now: number): void {
    const list = this.#lists[d];
    if (!list.has(chunk)) return;
    if (this.eviction.chunkUsed) this.eviction.chunkUsed(d, chunk, now, list);
    else list.moveTail(chunk);
  }

  /** A CPU access to page p: local unless the page lives in a device's memory. */
  touchCpu(p: number, now: number): Touch {
    this.#expire(p, now);
    return this.#loc[p] === CPU ? TOUCH_LOCAL : TOUCH_FAULT;
  }

  /** Remote accesses since the last call (the round's access-counter readout), then reset. */
  takeRoundCounts(pages: PageList, counts: { buf: Uint32Array }): number {
    const n = this.#roundPages.length;
    if (counts.buf.length < n) counts.buf = new Uint32Array(Math.max(n, counts.buf.length * 2));
    pages.clear();
    for (let i = 0; i < n; i++) {
      const p = this.#roundPages.pages[i];
      pages.push(p);
      counts.buf[i] = this.#roundCount[p];
      this.#roundCount[p] = 0;
    }
    this.#roundPages.clear();
    return n;
  }

  /** Forget the remote accesses since the last readout (takeRoundCounts without the copy: a readout measured elsewhere replaces them). */
  dropRoundCounts(): void {
    const n = this.#roundPages.length;
    for (let i = 0; i < n; i++) this.#roundCount[this.#roundPages.pages[i]] = 0;
    this.#roundPages.clear();
  }

  // ---- mappings and pins ----
  /** Map system page p remotely into device d (until `until`, 0 = no expiry). */
  mapRemote(d: number, p: number, until = 0): void {
    if (this.#loc[p] !== CPU) throw err('EINVAL', `page ${p} is not in system memory`);
    this.#remote[p] |= 1 << d;
    this.#remoteUntil[p] = until;
  }

  /** Forget every device's remote mapping of p (the mirrors' entries were zapped). */
  unmapRemote(p: number): void {
    this.#remote[p] = 0;
    this.#remoteUntil[p] = 0;
  }

  /** Pin p in system memory (it must be home), mapped remotely by `d` when d >= 0. */
  pin(p: number, until: number, d: number): void {
    if (this.#loc[p] !== CPU) throw err('EINVAL', `page ${p} must be home to pin`);
    if (this.#pinnedUntil[p] === NEVER) this.stats.pins++;
    this.#pinnedUntil[p] = until;
    if (d >= 0) this.#remote[p] |= 1 << d;
    this.#remoteUntil[p] = 0;
  }

  unpin(p: number): void {
    this.#pinnedUntil[p] = NEVER;
  }

  // ---- moves ----
  #chunkOf(p: number): number {
    return Math.floor(p / this.chunkPages);
  }

  /**
   * Pages that moved into device d (the driver's result of a plan's move): each page still in
   * system memory is recorded there. Returns the pages recorded, in order.
   */
  recordToDevice(d: number, pages: Iterable<number>, cause: MigrationCause, now: number): number[] {
    const moved: number[] = [];
    for (const p of pages) {
      if (this.#loc[p] !== CPU) continue;
      const chunk = this.#chunkOf(p);
      const key = d * this.chunks + chunk;
      this.#loc[p] = d;
      this.#remote[p] &= ~(1 << d);
      this.#used[d]++;
      if (this.#chunkCount[key]++ === 0) {
        const list = this.#lists[d];
        if (this.eviction.chunkActivate) this.eviction.chunkActivate(d, chunk, now, list);
        else list.moveTail(chunk);
        if (!list.has(chunk)) list.moveTail(chunk); // a hook must not lose a chunk
      }
      this.#toDev[p] = now;
      if (cause === 'prefetch') {
        this.#prefetched[p] = 1;
        this.stats.prefetchedPages++;
      }
      moved.push(p);
    }
    this.stats.migrationsToDevice += moved.length;
    this.stats.bytesToDevice += moved.length * PAGE_SIZE;
    return moved;
  }

  #leave(p: number): Location {
    const d = this.#loc[p];
    const key = d * this.chunks + this.#chunkOf(p);
    this.#loc[p] = CPU;
    this.#remote[p] = 0;
    this.#remoteUntil[p] = 0;
    this.#used[d]--;
    if (--this.#chunkCount[key] === 0) {
      this.#lists[d].remove(this.#chunkOf(p));
      this.eviction.chunkFreed?.(d, this.#chunkOf(p));
    }
    this.#prefetched[p] = 0;
    return d;
  }

  /** Device-resident pages that came home (copied: a CPU fault, an eviction, an explicit move). Returns those recorded. */
  recordHome(pages: Iterable<number>, now: number): number[] {
    const moved: number[] = [];
    for (const p of pages) {
      if (this.#loc[p] === CPU) continue;
      this.#leave(p);
      this.#toHost[p] = now;
      this.#trips[p]++;
      moved.push(p);
    }
    this.stats.migrationsToHost += moved.length;
    this.stats.bytesToHost += moved.length * PAGE_SIZE;
    return moved;
  }

  /** One victim chunk evicted: `pages` of it came home (counted with recordHome). */
  recordEviction(pages: number): void {
    this.stats.evictions++;
    this.stats.evictedPages += pages;
  }

  /**
   * A device page dropped without a copy (MADV_DONTNEED, munmap: the data is gone): it is no
   * longer on the device; no bytes moved. Returns whether it was on one.
   */
  recordDropped(p: number): boolean {
    if (this.#loc[p] === CPU) return false;
    this.#leave(p);
    return true;
  }
}

/** UVM's default: LRU of root chunks (chunk_update_lists_locked moves a used chunk to the tail). */
const LRU_DEFAULT: EvictionHooks = Object.freeze({ name: 'lru' });
