/**
 * Built-in migration policies, each with its source's parameters.
 *
 *   remote-only        today's mirrorlab: every device fault maps system memory remotely
 *   first-touch        migrate on every device fault (UVM with heuristics off; UVM_Smart's
 *                      baseline)
 *   access-counters    delayed migration by remote-access counters, two configurations:
 *     nvidia           256 accesses per 2 MiB region (uvm_gpu_access_counters.c:
 *                      UVM_PERF_ACCESS_COUNTER_THRESHOLD_DEFAULT 256, granularity 2M)
 *     ipdps20          8 accesses per 64 KiB, scaled by round trips (Ganguly et al., IPDPS'20:
 *                      dynamic threshold = static x (round trips + 1) [memory: the paper's
 *                      exact scaling was not read from a file])
 *   thrashing          NVIDIA's thrashing detection (thrashing.ts: 3 events / 500 µs -> throttle,
 *                      pin after 10 throttles, unpin after 150 ms, 1 s epoch, 4 resets)
 *   min-lifetime       the seed thread's first idea: a device mapping lives at least minLifeNs;
 *                      a CPU fault before that waits (the CPU is throttled, as UVM throttles the
 *                      CPU by sleeping in uvm_vm_fault)
 *   backoff            the seed thread's second idea: after the CPU pulled a page home, device
 *                      faults on it map remotely for a backoff window that doubles each time the
 *                      page ping-pongs again (from the 500 µs lapse up to the 150 ms pin time;
 *                      the thread gives no figures, these are NVIDIA's)
 * Any of them takes `prefetch` (tree prefetch, prefetch-tree.ts) and `eviction` (eviction.ts).
 */
import {
  CPU, DECIDE_PIN, DECIDE_REMOTE, DECIDE_THROTTLE, type EvictionHooks, type MigrationPolicy,
  type PrefetchHooks,
} from './types.js';
import { HINT_NONE, HINT_PIN, HINT_THROTTLE, ThrashingDetector, type ThrashingParams } from './thrashing.js';

export function remoteOnly(): MigrationPolicy {
  return {
    name: 'remote-only',
    decide(g, _v, out) {
      out.action.fill(DECIDE_REMOTE, 0, g.count);
    },
  };
}

export function firstTouch(): MigrationPolicy {
  return {
    name: 'first-touch',
    decide() {
      // Decisions arrive prefilled with MIGRATE.
    },
  };
}

export interface AccessCounterOptions {
  /** Pages a counter covers (512 = 2 MiB, 16 = 64 KiB). */
  regionPages: number;
  /** Remote accesses that trigger a migration of the region. */
  threshold: number;
  /** IPDPS'20: threshold x (the region's round trips + 1). */
  scaleByRoundTrips: boolean;
  /**
   * What a notification migrates: the region's sub-regions of this many pages that saw accesses
   * since its counter last cleared (NVIDIA: the notification's 32-bit sub-granularity mask, so
   * 64 KiB of a 2 MiB region; uvm_gpu_access_counters.c services the accessed 64 KiB
   * sub-regions). Equal to regionPages: the whole region.
   */
  subregionPages: number;
}

export const NVIDIA_ACCESS_COUNTERS: Readonly<AccessCounterOptions> = Object.freeze({
  regionPages: 512, threshold: 256, scaleByRoundTrips: false, subregionPages: 16,
});
export const IPDPS20_ACCESS_COUNTERS: Readonly<AccessCounterOptions> = Object.freeze({
  regionPages: 16, threshold: 8, scaleByRoundTrips: true, subregionPages: 16,
});

/**
 * Delayed migration by access counters: faults map remotely; each round's remote accesses add
 * to their region's counter; a region whose counter reaches the threshold is notified and its
 * accessed sub-regions migrate (their pages not yet on the device), and its counter and
 * sub-region mask clear, as a serviced notification clears the hardware counter. The GPU counts
 * per sub-region (accessCounterRegionPages), so the policy knows which were touched.
 */
export function accessCounters(o: AccessCounterOptions = NVIDIA_ACCESS_COUNTERS, name?: string): MigrationPolicy {
  const sub = Math.min(o.subregionPages, o.regionPages);
  if (!Number.isInteger(sub) || sub < 1 || o.regionPages % sub !== 0) throw new RangeError(`subregionPages ${o.subregionPages} must divide regionPages ${o.regionPages}`);
  const counts = new Map<number, number>();
  const touched = new Map<number, Set<number>>(); // region -> accessed sub-regions
  let notifications = 0;
  return {
    name: name ?? (o.regionPages === 512 && o.threshold === 256 ? 'access-counters' : 'access-counters-ipdps20'),
    accessCounterRegionPages: sub,
    decide(g, _v, out) {
      out.action.fill(DECIDE_REMOTE, 0, g.count);
    },
    accessCounters(b, v, out) {
      for (let i = 0; i < b.count; i++) {
        const p = b.pages[i];
        const r = Math.floor(p / o.regionPages);
        const c = (counts.get(r) ?? 0) + b.counts[i];
        let subs = touched.get(r);
        if (subs === undefined) touched.set(r, (subs = new Set()));
        if (b.counts[i] > 0) subs.add(Math.floor(p / sub));
        const first = r * o.regionPages;
        const end = Math.min(first + o.regionPages, v.pageCount);
        let threshold = o.threshold;
        if (o.scaleByRoundTrips) {
          let trips = 0;
          for (let q = first; q < end; q++) trips = Math.max(trips, v.roundTrips(q));
          threshold *= trips + 1;
        }
        if (c < threshold) {
          counts.set(r, c);
          continue;
        }
        counts.set(r, 0);
        touched.delete(r);
        notifications++;
        for (const s of [...subs].sort((x, y) => x - y)) {
          for (let q = s * sub; q < Math.min((s + 1) * sub, end); q++) if (v.location(q) !== b.device && !v.pinned(q)) out.push(q);
        }
      }
    },
    reset() {
      counts.clear();
      touched.clear();
      notifications = 0;
    },
    stats: () => ({ notifications }),
  };
}

/**
 * Each page's thrashing hint as its decision (uvm_perf_thrashing_get_hint's THROTTLE and PIN,
 * with their end); no hint leaves the caller's default.
 */
function applyHints(det: ThrashingDetector, pages: ArrayLike<number>, count: number, processor: number, now: number,
  out: { action: Uint8Array; until: Float64Array }): void {
  for (let i = 0; i < count; i++) {
    const h = det.getHint(pages[i], processor, now);
    if (h.type === HINT_THROTTLE) out.action[i] = DECIDE_THROTTLE;
    else if (h.type === HINT_PIN) out.action[i] = DECIDE_PIN;
    else if (h.type === HINT_NONE) continue;
    else throw new Error(`thrashing hint ${String(h.type)}: unknown`);
    out.until[i] = h.until;
  }
}

/** NVIDIA's thrashing detection as a policy (decisions from uvm_perf_thrashing_get_hint). */
export function thrashingDetection(params: Partial<ThrashingParams> = {}): MigrationPolicy & { detector: ThrashingDetector } {
  const det = new ThrashingDetector(params);
  return {
    name: 'thrashing',
    detector: det,
    decide(g, _v, out) {
      applyHints(det, g.pages, g.count, g.device, g.now, out);
    },
    cpuFault(b, _v, out) {
      applyHints(det, b.pages, b.count, CPU, b.now, out);
    },
    migrated(b) {
      det.onMigration(b.pages, b.count, b.dst, b.cause, b.now);
    },
    reset: () => det.reset(),
    stats: () => ({ ...det.stats }),
  };
}

/** The seed thread's minimum lifetime of a device mapping (default 1 ms: 2 x NVIDIA's lapse). */
export function minLifetime(minLifeNs = 1_000_000): MigrationPolicy {
  let cpuWaits = 0;
  return {
    name: 'min-lifetime',
    decide() {},
    cpuFault(b, v, out) {
      for (let i = 0; i < b.count; i++) {
        const arrived = v.lastToDevice(b.pages[i]);
        if (arrived >= 0 && b.now - arrived < minLifeNs) {
          out.action[i] = DECIDE_THROTTLE;
          out.until[i] = arrived + minLifeNs;
          cpuWaits++;
        }
      }
    },
    reset() {
      cpuWaits = 0;
    },
    stats: () => ({ cpuWaits }),
  };
}

/** The seed thread's backoff between CPU and device faults on the same page. */
export function cpuDeviceBackoff(baseNs = 500_000, maxNs = 150_000_000): MigrationPolicy {
  const backoff = new Map<number, number>();
  const cpuHome = new Map<number, number>();
  let backoffs = 0;
  return {
    name: 'backoff',
    decide(g, _v, out) {
      for (let i = 0; i < g.count; i++) {
        const p = g.pages[i];
        const home = cpuHome.get(p);
        const w = backoff.get(p) ?? baseNs;
        if (home !== undefined && g.now - home < w) {
          out.action[i] = DECIDE_REMOTE;
          out.until[i] = home + w; // then the mapping lapses and the page may migrate again
          backoffs++;
        }
      }
    },
    cpuFault(b, v) {
      for (let i = 0; i < b.count; i++) {
        const p = b.pages[i];
        const arrived = v.lastToDevice(p);
        const w = backoff.get(p) ?? baseNs;
        // Pulled home soon after it arrived: it is ping-ponging, back off longer.
        backoff.set(p, arrived >= 0 && b.now - arrived <= w ? Math.min(maxNs, w * 2) : baseNs);
      }
    },
    migrated(b) {
      if (b.cause !== 'cpuFault') return;
      for (let i = 0; i < b.count; i++) cpuHome.set(b.pages[i], b.now);
    },
    reset() {
      backoff.clear();
      cpuHome.clear();
      backoffs = 0;
    },
    stats: () => ({ backoffs }),
  };
}

/** A policy with a prefetcher and/or an eviction order added (name gains "+tree", "+lfu"). */
export function withHooks(base: MigrationPolicy, extra: { prefetch?: PrefetchHooks; eviction?: EvictionHooks }): MigrationPolicy {
  let name = base.name;
  if (extra.prefetch) name += extra.prefetch.offOnceOversubscribed === true ? '+tree-fits' : '+tree';
  if (extra.eviction) name += `+${extra.eviction.name}`;
  const p: MigrationPolicy = Object.create(base) as MigrationPolicy;
  const ev = extra.eviction;
  return Object.defineProperties(p, {
    name: { value: name, enumerable: true },
    prefetch: { value: extra.prefetch ?? base.prefetch, enumerable: true },
    eviction: { value: ev ?? base.eviction, enumerable: true },
    ...(ev?.stats !== undefined ? { stats: { value: () => ({ ...(base.stats?.() ?? {}), ...ev.stats!() }), enumerable: true } } : {}),
  });
}

/** NVIDIA's tree prefetcher as is (threshold 51 %, 64 KiB big pages). */
export function treePrefetch(threshold = 51, offOnceOversubscribed = false): PrefetchHooks {
  return offOnceOversubscribed ? { threshold, offOnceOversubscribed } : { threshold };
}
