/**
 * Eviction orders for device memory, as gpu_ext's uvm_pmm_* hooks express them over the PMM's
 * list of used root chunks (head = next victim, as pick_root_chunk_to_evict takes it).
 *   lru   UVM's default (chunk_update_lists_locked: a used chunk moves to the tail);
 *         UVM_Smart's "LRU-2MB"
 *   fifo  gpu_ext's eviction_fifo: activation order, use does not reorder
 *   mru   gpu_ext's MRU: used chunks move to the tail, the victim is the tail
 *   lfu   gpu_ext's LFU / UVM_Smart's "LFU-2MB": fewest uses first (ties: the older, nearer
 *         the head); a "use" is one round (fault group or access batch) that touched the chunk
 *   random4k  UVM_Smart's random-4K: the first page of a random fully resident 2 MiB chunk
 *   sl64k     UVM_Smart's SL-64K: the LRU chunk's lowest resident 64 KiB block
 */
import type { ChunkList, EvictionHooks } from './types.js';
import { mulberry32 } from '../sched/seeded.js';

function firstFree(list: ChunkList, busy: ReadonlySet<number>, fromTail: boolean): number {
  for (let c = fromTail ? list.tail() : list.head(); c >= 0; c = fromTail ? list.prev(c) : list.next(c)) {
    if (!busy.has(c)) return c;
  }
  return -1;
}

export function lruEviction(): EvictionHooks {
  return {
    name: 'lru',
    chunkActivate: (_d, c, _now, list) => list.moveTail(c),
    chunkUsed: (_d, c, _now, list) => list.moveTail(c),
    pickVictim: (_d, _now, list, busy) => firstFree(list, busy, false),
  };
}

export function fifoEviction(): EvictionHooks {
  return {
    name: 'fifo',
    chunkActivate: (_d, c, _now, list) => list.moveTail(c),
    chunkUsed: () => {},
    pickVictim: (_d, _now, list, busy) => firstFree(list, busy, false),
  };
}

export function mruEviction(): EvictionHooks {
  return {
    name: 'mru',
    chunkActivate: (_d, c, _now, list) => list.moveTail(c),
    chunkUsed: (_d, c, _now, list) => list.moveTail(c),
    pickVictim: (_d, _now, list, busy) => firstFree(list, busy, true),
  };
}

export function lfuEviction(): EvictionHooks {
  const uses = new Map<number, number>(); // key: device * 2^20 + chunk
  const key = (d: number, c: number): number => d * 1_048_576 + c;
  return {
    name: 'lfu',
    chunkActivate: (d, c, _now, list) => {
      uses.set(key(d, c), 1);
      list.moveTail(c);
    },
    chunkUsed: (d, c) => {
      uses.set(key(d, c), (uses.get(key(d, c)) ?? 0) + 1);
    },
    chunkFreed: (d, c) => {
      uses.delete(key(d, c));
    },
    pickVictim: (d, _now, list, busy) => {
      let best = -1;
      let bestUses = Infinity;
      for (let c = list.head(); c >= 0; c = list.next(c)) {
        if (busy.has(c)) continue;
        const u = uses.get(key(d, c)) ?? 0;
        if (u < bestUses) {
          best = c;
          bestUses = u;
        }
      }
      return best;
    },
  };
}

/**
 * UVM_Smart's random-4K eviction, as its gmmu_t::page_eviction_procedure does it (GPGPU-Sim
 * UVM_Smart, src/gpgpu-sim/gpu-sim.cc, eviction_policy::RANDOM, `-eviction_policy 3` in its
 * logged random runs): its valid-pages list holds one entry per 2 MiB large page
 * (get_eviction_base_addr / get_eviction_granularity: the lp-tree root for RANDOM), in LRU
 * order (sort_valid_pages); it starts at a random position (rand() % size), walks forward to
 * the first entry is_block_evictable allows (every page of the 2 MiB valid, none being written
 * back) and evicts one 4 KiB page there: the entry's address, the large page's first page.
 * With none at or after the random start it evicts nothing that cycle and draws again the
 * next; here it draws again at once (each draw succeeds with probability at least 1 / size), and where no chunk is fully resident at all
 * (UVM_Smart would wait for one to fill) it takes a random chunk's lowest resident page.
 * Seeded, so a run replays.
 */
export function random4kEviction(seed = 1): EvictionHooks {
  const rnd = mulberry32(seed);
  // Victims found as UVM_Smart finds them (a fully resident chunk), and by the fallback.
  let fullPicks = 0;
  let fallbackPicks = 0;
  return {
    stats: () => ({ random4kFullChunk: fullPicks, random4kFallback: fallbackPicks }),
    name: 'random4k',
    granularityPages: 1,
    chunkActivate: (_d, c, _now, list) => list.moveTail(c),
    chunkUsed: (_d, c, _now, list) => list.moveTail(c),
    pickVictim: (_d, _now, list, busy, full) => {
      const order: number[] = [];
      for (let c = list.head(); c >= 0; c = list.next(c)) order.push(c);
      const ok = order.map((c) => !busy.has(c) && full(c));
      if (ok.some((x) => x)) {
        fullPicks++;
        for (;;) {
          for (let i = Math.floor(rnd() * order.length); i < order.length; i++) if (ok[i]) return order[i];
        }
      }
      const free = order.filter((c) => !busy.has(c));
      if (free.length > 0) fallbackPicks++;
      return free.length === 0 ? -1 : free[Math.floor(rnd() * free.length)];
    },
    // The entry's address: the chunk's first page (resident when the chunk is full), else its lowest resident one.
    pickInChunk: (_d, _c, resident) => resident[0],
  };
}

/**
 * UVM_Smart's sequential-local 64K eviction ("SL-64K"): the LRU 2 MiB chunk gives up its 64 KiB
 * blocks one at a time, lowest address first, instead of all 2 MiB at once.
 */
export function sl64kEviction(): EvictionHooks {
  return {
    name: 'sl64k',
    granularityPages: 16,
    chunkActivate: (_d, c, _now, list) => list.moveTail(c),
    chunkUsed: (_d, c, _now, list) => list.moveTail(c),
    pickVictim: (_d, _now, list, busy) => firstFree(list, busy, false),
    pickInChunk: (_d, _c, resident) => resident[0],
  };
}

/**
 * A priority between tenants (gpu_ext's multi-tenant policy: the high-priority process keeps
 * its memory): LRU over the device's chunks, never a chunk `protect` says belongs to the
 * high-priority tenant. When only those are left a migration finds no room and the page is
 * mapped remotely (Residency.migrateToDevice's allocation failure), so the high-priority
 * tenant must fit the device on its own.
 */
export function priorityEviction(protect: (chunk: number) => boolean): EvictionHooks {
  return {
    name: 'priority',
    chunkActivate: (_d, c, _now, list) => list.moveTail(c),
    chunkUsed: (_d, c, _now, list) => list.moveTail(c),
    pickVictim: (_d, _now, list, busy) => {
      for (let c = list.head(); c >= 0; c = list.next(c)) if (!busy.has(c) && !protect(c)) return c;
      return -1;
    },
  };
}

/** The named eviction orders (policy "+NAME"); `seed` seeds the random ones (the run's seed). */
export const EVICTIONS: Readonly<Record<string, (seed?: number) => EvictionHooks>> = Object.freeze({
  lru: () => lruEviction(), fifo: () => fifoEviction(), mru: () => mruEviction(), lfu: () => lfuEviction(),
  random4k: (seed?: number) => random4kEviction(seed ?? 1), sl64k: () => sl64kEviction(),
});
