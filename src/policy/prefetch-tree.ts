/**
 * NVIDIA's tree-based neighbourhood prefetcher (kernel-open/nvidia-uvm/uvm_perf_prefetch.c),
 * with gpu_ext's two hooks in the places its patched driver calls them.
 *
 * A block (2 MiB va_block = 512 pages) has a binary bitmap tree; its leaves are the pages
 * resident on the destination device OR faulted in this group, after each faulted 64 KiB big
 * page has been filled (grow_fault_granularity). For each faulted page, compute_prefetch_region
 * walks from the leaf up and keeps the LARGEST ancestor whose set leaves are more than
 * threshold % (51) of it: `counter * 100 > subregion_pages * threshold`. The union of those
 * regions, less the faulted and already-resident pages, is prefetched. The walk stops early once
 * a region reaches the block's end.
 */
import {
  PREFETCH_BYPASS, PREFETCH_ENTER_LOOP, type PrefetchContext, type PrefetchHooks, type Region,
} from './types.js';

/** UVM_PREFETCH_THRESHOLD_DEFAULT. */
export const PREFETCH_THRESHOLD_DEFAULT = 51;
/** 64 KiB big pages (the big-page size assumed for growth when no GPU va space says else). */
export const BIG_PAGE_PAGES_DEFAULT = 16;

/** Prefix sums of `leaves` (sum[i] = set leaves in [0, i)) for O(1) node counters. */
export function leafPrefix(leaves: Uint8Array, out?: Uint32Array): Uint32Array {
  const sum = out && out.length >= leaves.length + 1 ? out : new Uint32Array(leaves.length + 1);
  sum[0] = 0;
  for (let i = 0; i < leaves.length; i++) sum[i + 1] = sum[i] + (leaves[i] ? 1 : 0);
  return sum;
}

/**
 * compute_prefetch_region for one faulted leaf: the largest ancestor of `pageIndex` (leaf
 * included) whose density passes, or an empty region. The tree has leafCount leaves (any
 * count: uvm_perf_prefetch's level_count = ilog2(roundup_pow_of_two(leaf_count)) + 1); a node
 * past the last leaf is clipped to it and its density is taken over the clipped range
 * (uvm_perf_prefetch_bitmap_tree_iter_get_range, subregion_pages).
 * With `hooks.onTreeIter` (gpu_ext ENTER_LOOP), the hook decides at each node instead.
 */
export function treeRegion(prefix: Uint32Array, leafCount: number, pageIndex: number, threshold: number,
  onTreeIter?: (node: { first: number; outer: number; counter: number }) => boolean): Region {
  let region: Region = { first: leafCount, outer: leafCount }; // empty (UVM: leaf_count..leaf_count+1)
  for (let size = 1; ; size *= 2) {
    const first = Math.floor(pageIndex / size) * size;
    const outer = Math.min(first + size, leafCount);
    const counter = prefix[outer] - prefix[first];
    const take = onTreeIter ? onTreeIter({ first, outer, counter }) : counter * 100 > (outer - first) * threshold;
    if (take) region = { first, outer };
    if (size >= leafCount) break;
  }
  return region;
}

/** Scratch a PrefetchEngine reuses between blocks. */
export interface TreeScratch {
  leaves: Uint8Array;
  prefix: Uint32Array;
  mask: Uint8Array;
  /** Region starts minus ends per page: the union of the regions in one pass. */
  diff?: Int32Array;
}

export function makeTreeScratch(blockPages: number): TreeScratch {
  return {
    leaves: new Uint8Array(blockPages), prefix: new Uint32Array(blockPages + 1), mask: new Uint8Array(blockPages),
    diff: new Int32Array(blockPages + 1),
  };
}

/**
 * The prefetch set of one block (uvm_perf_prefetch_prenotify_fault_migrations).
 * `faulted[i]` / `resident[i]` / `excluded[i]` for i in [0, blockPages): the group's faults that
 * migrate here, pages already on the device, pages never to prefetch (pinned, throttled: UVM's
 * thrashing pages). The prefetch may cover [firstPage, validPages) only: UVM's max_prefetch_region,
 * the va_block clipped to the VMA under HMM (and to the managed range). As UVM builds it
 * (init_bitmap_tree_from_region, update_bitmap_tree_from_va_block), the tree's leaves are that
 * region, padded in front to the 64 KiB big-page boundary below it (bitmap_tree->offset), so a
 * 100-page VMA has a 100-leaf tree whose top node is its 100 pages, not 128 or 512.
 * Pages to prefetch get out[i] = 1.
 */
export function blockPrefetch(hooks: PrefetchHooks, ctxBase: Omit<PrefetchContext, 'pageIndex' | 'leaves' | 'maxRegion'>,
  blockPages: number, validPages: number, faulted: Uint8Array, resident: Uint8Array, excluded: Uint8Array,
  s: TreeScratch, out: Uint8Array, firstPage = 0): number {
  const threshold = hooks.threshold ?? PREFETCH_THRESHOLD_DEFAULT;
  const big = hooks.bigPagePages ?? BIG_PAGE_PAGES_DEFAULT;
  const lo = Math.max(0, Math.min(firstPage, validPages));
  // Tree coordinates: leaf t is block page (lo - pad + t); leaves [0, pad) are padding, unset.
  const pad = big > 1 ? lo % big : 0;
  const base = lo - pad;
  const leafCount = validPages - base;
  out.fill(0, 0, blockPages);
  if (leafCount <= 0 || lo >= validPages) return 0;
  const leaves = s.leaves;
  leaves.fill(0, 0, blockPages);
  for (let i = lo; i < validPages; i++) leaves[i - base] = resident[i] | faulted[i] ? 1 : 0;
  // grow_fault_granularity: a big page (the prefix and suffix of the region count as one) with
  // a fault and no thrashing page becomes all set.
  if (big > 1) {
    for (let b = base; b < validPages; b += big) {
      const from = Math.max(b, lo);
      const to = Math.min(b + big, validPages);
      let anyFault = false;
      let anyExcluded = false;
      for (let i = from; i < to; i++) {
        if (faulted[i]) anyFault = true;
        if (excluded[i]) anyExcluded = true;
      }
      if (anyFault && !anyExcluded) for (let i = from; i < to; i++) leaves[i - base] = 1;
    }
  }
  const prefix = leafPrefix(leaves.subarray(0, leafCount), s.prefix);
  // The union of the regions through a difference array: O(faults + block), not one fill a
  // fault (a streaming group's 64 faults each covering the block were 32 K stores a block).
  const diff = s.diff && s.diff.length >= blockPages + 1 ? s.diff : (s.diff = new Int32Array(blockPages + 1));
  diff.fill(0, 0, blockPages + 1);
  const maxRegion: Region = { first: lo, outer: validPages };
  const hooked = hooks.beforeCompute !== undefined || hooks.onTreeIter !== undefined;
  for (let i = lo; i < validPages; i++) {
    if (!faulted[i] || excluded[i]) continue; // no regions from thrashing pages
    let region: Region;
    let action = 0;
    let ctx: PrefetchContext | null = null;
    if (hooked) {
      ctx = { ...ctxBase, pageIndex: i, leaves, maxRegion };
      action = hooks.beforeCompute ? hooks.beforeCompute(ctx, (region = { first: 0, outer: 0 })) : 0;
    }
    if (action === PREFETCH_BYPASS) {
      region = { first: Math.max(lo, region!.first), outer: Math.min(validPages, region!.outer) };
    } else {
      const iter = ctx !== null && (action === PREFETCH_ENTER_LOOP || hooks.onTreeIter)
        ? (node: { first: number; outer: number; counter: number }) => {
          const n = { first: node.first + base, outer: node.outer + base, counter: node.counter };
          return hooks.onTreeIter ? hooks.onTreeIter(ctx!, n) : n.counter * 100 > (n.outer - n.first) * threshold;
        }
        : undefined;
      const t = treeRegion(prefix, leafCount, i - base, threshold, iter);
      // Back to block pages, clamped to the region (compute_prefetch_region's clamp).
      region = t.first < leafCount ? { first: Math.max(lo, t.first + base), outer: Math.min(validPages, t.outer + base) } : { first: 0, outer: 0 };
    }
    if (region.first < region.outer) {
      diff[region.first]++;
      diff[region.outer]--;
    }
    if (region.outer >= validPages && region.first < region.outer) break; // reached the region's end
  }
  for (let j = 0, run = 0; j < blockPages; j++) {
    run += diff[j];
    if (run > 0) out[j] = 1;
  }
  let n = 0;
  for (let i = 0; i < blockPages; i++) {
    if (out[i] && i >= lo && i < validPages && !faulted[i] && !resident[i] && !excluded[i]) n++;
    else out[i] = 0;
  }
  return n;
}
