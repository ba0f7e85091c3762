/**
 * NVIDIA UVM's thrashing detection and mitigation, after
 * NVIDIA/open-gpu-kernel-modules kernel-open/nvidia-uvm/uvm_perf_thrashing.c.
 *
 * Parameters (module defaults; times are multiples of the lapse, as in
 * va_space_thrashing_info_init_params):
 *   threshold      3      uvm_perf_thrashing_threshold: consecutive events within the lapse
 *   pinThreshold   10     uvm_perf_thrashing_pin_threshold: throttles before pinning
 *   lapseNs        500 µs uvm_perf_thrashing_lapse_usec
 *   napNs          500 µs uvm_perf_thrashing_nap (1) x lapse
 *   epochNs        1 s    uvm_perf_thrashing_epoch (2000) x lapse: quiet time before a reset
 *   pinNs          150 ms uvm_perf_thrashing_pin (300) x lapse: then the page is unpinned
 *   maxResets      4      uvm_perf_thrashing_max_resets
 *
 * Mirrored functions: thrashing_event_cb (onMigration), uvm_perf_thrashing_get_hint (getHint),
 * thrashing_throttle_update, thrashing_throttle_processor, thrashing_pin_page,
 * thrashing_reset_page, thrashing_unpin_pages (expirePins).
 *
 * Departures, each forced by HMM device-private memory or by having no wall clock:
 *  - "0 means never" time stamps are -1 here (virtual time starts at 0); page time stamps keep
 *    full ns resolution (UVM drops the low 6 bits).
 *  - There is no preferred location, no NVLINK and no native atomics (PCIe), and no revocation
 *    events (no system-wide atomics): those branches of get_hint_for_migration_thrashing are
 *    never taken.
 *  - A PIN's residency is always system memory. UVM pins to the requester when it is the
 *    do-not-throttle processor; for a device requester under HMM the CPU cannot map
 *    device-private memory, so UVM then throttles the CPU until it becomes the do-not-throttle
 *    processor and re-pins in system memory (the only location every thrashing processor can
 *    access). We pin in system memory at once.
 *  - The unpin worker runs lazily at the next hint for the block, with the same deadline test
 *    (deadline <= now + 20 µs TIMER_GRANULARITY_NS).
 */
import { CPU } from './types.js';

export const THRASHING_DEFAULTS = Object.freeze({
  threshold: 3,
  pinThreshold: 10,
  lapseNs: 500_000,
  napNs: 500_000,
  epochNs: 1_000_000_000,
  pinNs: 150_000_000,
  maxResets: 4,
  blockPages: 512,
});
export type ThrashingParams = { -readonly [K in keyof typeof THRASHING_DEFAULTS]: number };

export const HINT_NONE = 0;
export const HINT_THROTTLE = 1;
export const HINT_PIN = 2;
export type HintType = typeof HINT_NONE | typeof HINT_THROTTLE | typeof HINT_PIN;

export interface ThrashingHint {
  type: HintType;
  /** THROTTLE: the throttling end time stamp. PIN: the unpin deadline (0: pinned forever). */
  until: number;
}

/**
 * The run's thrashing count, policy-independent, by NVIDIA's test (the same threshold and
 * lapse as the detector below): a move of a page is a thrashing event when it is at least
 * the `threshold`-th (uvm_perf_thrashing_threshold) move in a row that came within `lapseNs`
 * (uvm_perf_thrashing_lapse_usec) of the page's move before it. The engine feeds it every move
 * the residency records; the residency itself only holds state.
 */
export class ThrashingMeter {
  readonly lapseNs: number;
  readonly threshold: number;
  /** Thrashing events so far (RunResult.policy.thrashingEvents). */
  events = 0;
  readonly #last: Float64Array; // the page's previous move, -1: never
  readonly #run: Uint8Array; // consecutive moves within the lapse

  constructor(pages: number, lapseNs: number = THRASHING_DEFAULTS.lapseNs, threshold: number = THRASHING_DEFAULTS.threshold) {
    this.lapseNs = lapseNs;
    this.threshold = threshold;
    this.#last = new Float64Array(pages).fill(-1);
    this.#run = new Uint8Array(pages);
  }

  /** Pages that moved (either way) at `now`. */
  moved(pages: ArrayLike<number>, now: number): void {
    for (let i = 0; i < pages.length; i++) {
      const p = pages[i];
      const last = this.#last[p];
      if (last !== -1 && now - last <= this.lapseNs) {
        if (this.#run[p] < 255) this.#run[p]++;
        if (this.#run[p] >= this.threshold) this.events++;
      } else {
        this.#run[p] = 0;
      }
      this.#last[p] = now;
    }
  }

  /** Whether p's latest move was a thrashing one (read-only, for views). */
  thrashing(p: number): boolean {
    return this.#run[p] >= this.threshold;
  }
}

const INVALID = -2; // UVM_ID_INVALID
const TIMER_GRANULARITY_NS = 20_000;
const EVENTS_MAX = 7; // PAGE_THRASHING_NUM_EVENTS_BITS = 3, saturating
const THROTTLE_MAX = 255; // PAGE_THRASHING_THROTTLING_COUNT_BITS = 8

function bit(proc: number): number {
  return 1 << (proc + 1); // CPU (-1) -> bit 0, device d -> bit d+1
}

/** page_thrashing_info_t */
interface PageThrashing {
  lastTs: number;
  hasMigrationEvents: boolean;
  events: number;
  pinned: boolean;
  throttlingEnd: number;
  throttlingCount: number;
  processors: number;
  throttled: number;
  pinnedResidency: number;
  doNotThrottle: number;
  pinDeadline: number;
}

/** block_thrashing_info_t */
interface BlockThrashing {
  pages: PageThrashing[] | null;
  thrashingPages: Set<number>;
  resetCount: number;
  lastProcessor: number;
  lastTs: number;
  lastThrashingTs: number;
  pinnedCount: number;
}

export interface ThrashingStats {
  /** thrashing_detected calls (procfs num_thrashing). */
  thrashing: number;
  /** THROTTLE hints (procfs num_throttle). */
  throttles: number;
  pins: number;
  unpins: number;
  resets: number;
}

function newPage(): PageThrashing {
  return {
    lastTs: -1, hasMigrationEvents: false, events: 0, pinned: false, throttlingEnd: -1, throttlingCount: 0,
    processors: 0, throttled: 0, pinnedResidency: INVALID, doNotThrottle: INVALID, pinDeadline: 0,
  };
}

export class ThrashingDetector {
  readonly params: ThrashingParams;
  readonly stats: ThrashingStats = { thrashing: 0, throttles: 0, pins: 0, unpins: 0, resets: 0 };
  readonly #blocks = new Map<number, BlockThrashing>();

  constructor(params: Partial<ThrashingParams> = {}) {
    this.params = { ...THRASHING_DEFAULTS, ...params };
  }

  reset(): void {
    this.#blocks.clear();
    for (const k of Object.keys(this.stats) as (keyof ThrashingStats)[]) this.stats[k] = 0;
  }

  /** Per-page state for tests and policies: undefined until the block allocated its pages. */
  pageState(page: number): Readonly<PageThrashing> | undefined {
    const bt = this.#blocks.get(Math.floor(page / this.params.blockPages));
    return bt?.pages?.[page % this.params.blockPages];
  }

  isThrashing(page: number): boolean {
    const bt = this.#blocks.get(Math.floor(page / this.params.blockPages));
    return bt?.thrashingPages.has(page % this.params.blockPages) ?? false;
  }

  /**
   * thrashing_event_cb for a UVM_PERF_EVENT_MIGRATION of `pages` to `dst`. Evictions are
   * skipped; causes other than faults, access counters and prefetch clear the pages' state.
   */
  onMigration(pages: ArrayLike<number>, count: number, dst: number, cause: string, now: number): void {
    if (cause === 'eviction') return;
    const byBlock = new Map<number, number[]>();
    for (let i = 0; i < count; i++) {
      const p = pages[i];
      const b = Math.floor(p / this.params.blockPages);
      let l = byBlock.get(b);
      if (!l) byBlock.set(b, (l = []));
      l.push(p % this.params.blockPages);
    }
    const reset = cause !== 'fault' && cause !== 'cpuFault' && cause !== 'accessCounter' && cause !== 'prefetch';
    for (const [b, idx] of byBlock) {
      if (reset) {
        const bt = this.#blocks.get(b);
        if (bt?.pages) for (const i of idx) if (bt.thrashingPages.has(i)) this.#resetPage(bt, i);
        continue;
      }
      this.#blockEvent(b, idx, dst, cause, now);
    }
  }

  #blockEvent(b: number, idx: number[], dst: number, cause: string, now: number): void {
    const p = this.params;
    let bt = this.#blocks.get(b);
    if (!bt) {
      bt = {
        pages: null, thrashingPages: new Set(), resetCount: 0, lastProcessor: INVALID, lastTs: -1,
        lastThrashingTs: -1, pinnedCount: 0,
      };
      this.#blocks.set(b, bt);
    }
    // is_migration_pinned_pages_update: moving pinned pages to their pinned residency.
    if (bt.pages && (cause === 'fault' || cause === 'cpuFault' || cause === 'accessCounter') &&
      idx.every((i) => bt!.pages![i].pinned)) {
      return;
    }
    if (!bt.pages) {
      // Don't create per-page tracking unless there is some potential thrashing in the block.
      if (bt.lastTs === -1 || bt.lastProcessor === dst || now - bt.lastTs > p.lapseNs) {
        bt.lastTs = now;
        bt.lastProcessor = dst;
        return;
      }
      bt.pages = Array.from({ length: p.blockPages }, newPage);
    }
    for (const i of idx) {
      const pt = bt.pages[i];
      const last = pt.lastTs;
      pt.processors |= bit(dst);
      pt.lastTs = now;
      if (last === -1) continue;
      if (now - last <= p.lapseNs) {
        pt.events = Math.min(EVENTS_MAX, pt.events + 1);
        if (pt.events === p.threshold) {
          bt.thrashingPages.add(i); // thrashing_detected
          this.stats.thrashing++;
        }
        if (pt.events >= p.threshold) bt.lastThrashingTs = now;
        pt.hasMigrationEvents = true;
      } else if (pt.events >= p.threshold && !pt.pinned) {
        this.#resetPage(bt, i);
      }
    }
    bt.lastTs = now;
    bt.lastProcessor = dst;
  }

  /** thrashing_reset_page */
  #resetPage(bt: BlockThrashing, i: number): void {
    const pt = bt.pages![i];
    pt.throttled = 0; // thrashing_throttling_reset_page
    pt.throttlingEnd = -1;
    if (pt.pinned) this.#unpin(bt, pt);
    pt.lastTs = -1;
    pt.hasMigrationEvents = false;
    pt.events = 0;
    pt.processors = 0;
    bt.thrashingPages.delete(i);
  }

  #unpin(bt: BlockThrashing, pt: PageThrashing): void {
    pt.pinned = false;
    pt.pinnedResidency = INVALID;
    pt.pinDeadline = 0;
    bt.pinnedCount--;
    this.stats.unpins++;
  }

  /** thrashing_unpin_pages: pins whose deadline has come are unmapped and fully reset. */
  #expirePins(bt: BlockThrashing, now: number): void {
    if (!bt.pages || bt.pinnedCount === 0) return;
    for (const i of [...bt.thrashingPages]) {
      const pt = bt.pages[i];
      if (pt.pinned && pt.pinDeadline > 0 && pt.pinDeadline <= now + TIMER_GRANULARITY_NS) this.#resetPage(bt, i);
    }
  }

  /** uvm_perf_thrashing_get_hint for `requester` (CPU or a device) faulting on `page`. */
  getHint(page: number, requester: number, now: number): ThrashingHint {
    const p = this.params;
    const none: ThrashingHint = { type: HINT_NONE, until: 0 };
    const bt = this.#blocks.get(Math.floor(page / p.blockPages));
    if (!bt || !bt.pages) return none;
    this.#expirePins(bt, now);
    if (bt.lastThrashingTs !== -1 && now - bt.lastThrashingTs > p.epochNs && bt.pinnedCount === 0 &&
      bt.resetCount < p.maxResets) {
      // Epoch reset: quiet for an epoch, no pins, resets left.
      bt.resetCount++;
      bt.pages = null;
      bt.thrashingPages.clear();
      bt.lastProcessor = INVALID;
      bt.lastTs = -1;
      bt.lastThrashingTs = -1;
      this.stats.resets++;
      return none;
    }
    const i = page % p.blockPages;
    const pt = bt.pages[i];
    if (pt.events < p.threshold) return none;
    const rb = bit(requester);
    if (pt.throttled & rb) {
      if (now < pt.throttlingEnd && requester !== pt.doNotThrottle) {
        this.stats.throttles++; // already throttled: no new throttling_count
        return { type: HINT_THROTTLE, until: pt.throttlingEnd };
      }
      pt.throttled &= ~rb; // thrashing_throttle_end_processor
      if (pt.throttled === 0) pt.throttlingEnd = -1;
    }
    if ((pt.lastTs === -1 || now - pt.lastTs > p.lapseNs) && !pt.pinned) return none;
    pt.processors |= rb;
    // thrashing_throttle_update
    if (now > pt.throttlingEnd) {
      pt.throttlingEnd = now + p.napNs;
      pt.doNotThrottle = pt.doNotThrottle === requester ? INVALID : requester;
    } else if (pt.doNotThrottle === INVALID) {
      pt.doNotThrottle = requester;
    }
    // get_hint_for_migration_thrashing, PCIe / no preferred location / HMM branches.
    let type: HintType = HINT_NONE;
    if (pt.pinned) {
      // Pinned in system memory, which every processor can access: map it there.
      type = HINT_PIN;
    } else if (requester !== pt.doNotThrottle) {
      type = HINT_THROTTLE;
    } else if (pt.throttlingCount >= p.pinThreshold) {
      type = HINT_PIN;
    }
    if (type === HINT_PIN) {
      // thrashing_pin_page (residency: system memory, see the header).
      if (!pt.pinned) {
        pt.throttled = 0;
        pt.throttlingEnd = -1;
        pt.pinDeadline = p.pinNs > 0 ? now + p.pinNs : 0;
        pt.throttlingCount = 0;
        pt.pinned = true;
        bt.pinnedCount++;
        this.stats.pins++;
      }
      pt.pinnedResidency = CPU;
      return { type, until: pt.pinDeadline };
    }
    if (type === HINT_THROTTLE) {
      // thrashing_throttle_processor
      if (!(pt.throttled & rb)) {
        pt.throttled |= rb;
        if (!pt.pinned) pt.throttlingCount = Math.min(THROTTLE_MAX, pt.throttlingCount + 1);
      }
      this.stats.throttles++;
      return { type, until: pt.throttlingEnd };
    }
    return none;
  }
}
