/**
 * NVIDIA's tree prefetcher (uvm_perf_prefetch.c compute_prefetch_region, threshold 51 %, 64 KiB
 * big-page growth) and gpu_ext's two prefetch hooks.
 */
import { describe, expect, it } from 'vitest';
import {
  PREFETCH_BYPASS, PREFETCH_ENTER_LOOP, blockPrefetch, leafPrefix, makeTreeScratch, treeRegion, type PrefetchHooks,
} from '../../src/policy/index.js';

const BLOCK = 512;

function leavesSet(n: number, from = 0): Uint8Array {
  const l = new Uint8Array(BLOCK);
  for (let i = from; i < from + n; i++) l[i] = 1;
  return l;
}

describe('tree prefetch: the 51 % threshold', () => {
  it('takes the whole 2 MiB block at 262 of 512 leaves, not at 261', () => {
    // 262 * 100 = 26200 > 512 * 51 = 26112; 261 * 100 = 26100 is not.
    expect(treeRegion(leafPrefix(leavesSet(262)), BLOCK, 0, 51)).toEqual({ first: 0, outer: 512 });
    expect(treeRegion(leafPrefix(leavesSet(261)), BLOCK, 0, 51)).toEqual({ first: 0, outer: 256 });
  });

  it('takes a 64-page subtree at 33 set leaves, not at 32 (50 % is not > 51 %)', () => {
    expect(treeRegion(leafPrefix(leavesSet(33)), BLOCK, 0, 51)).toEqual({ first: 0, outer: 64 });
    expect(treeRegion(leafPrefix(leavesSet(32)), BLOCK, 0, 51)).toEqual({ first: 0, outer: 32 });
  });

  it('keeps the largest passing ancestor even above a failing one', () => {
    // Leaves 0..15 and 64..255 set: the 32- and 64-node of leaf 0 fail (16/32, 16/64) but the
    // 256-node passes (208/256).
    const l = leavesSet(16);
    for (let i = 64; i < 256; i++) l[i] = 1;
    expect(treeRegion(leafPrefix(l), BLOCK, 0, 51)).toEqual({ first: 0, outer: 256 });
  });
});

function prefetchOf(hooks: PrefetchHooks, faulted: number[], resident: number[] = [], valid = BLOCK): number[] {
  const f = new Uint8Array(BLOCK);
  const r = new Uint8Array(BLOCK);
  for (const i of faulted) f[i] = 1;
  for (const i of resident) r[i] = 1;
  const out = new Uint8Array(BLOCK);
  blockPrefetch(hooks, { device: 0, now: 0, block: 0 }, BLOCK, valid, f, r, new Uint8Array(BLOCK), makeTreeScratch(BLOCK), out);
  const pages: number[] = [];
  out.forEach((v, i) => v && pages.push(i));
  return pages;
}

describe('tree prefetch: a block', () => {
  it('grows a lone fault to its 64 KiB big page', () => {
    expect(prefetchOf({}, [20])).toEqual([16, 17, 18, 19, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31]);
  });

  it('prefetches nothing beyond the fault with growth off and a sparse block', () => {
    expect(prefetchOf({ bigPagePages: 1 }, [20])).toEqual([]);
  });

  it('prefetches the rest of the block once resident + faulted passes 51 %', () => {
    const resident = Array.from({ length: 256 }, (_, i) => i);
    const pf = prefetchOf({ bigPagePages: 1 }, [256, 257, 258, 259, 260, 261], resident);
    expect(pf.length).toBe(512 - 262);
    expect(pf[0]).toBe(262);
    // One fault fewer: 261 of 512, the root fails; the largest passing node of the faults is
    // the 8-node [256, 264) at 5/8.
    expect(prefetchOf({ bigPagePages: 1 }, [256, 257, 258, 259, 260], resident)).toEqual([261, 262, 263]);
  });

  it('clamps to the valid pages of a last partial block', () => {
    expect(Math.max(...prefetchOf({}, [0], [], 10))).toBe(9);
  });
});

describe('tree prefetch: gpu_ext hooks', () => {
  it('uvm_prefetch_before_compute BYPASS takes the hook region as is', () => {
    const hooks: PrefetchHooks = {
      beforeCompute: (_ctx, result) => {
        result.first = 100;
        result.outer = 104;
        return PREFETCH_BYPASS;
      },
    };
    expect(prefetchOf(hooks, [20])).toEqual([100, 101, 102, 103]);
  });

  it('uvm_prefetch_on_tree_iter decides at each node under ENTER_LOOP', () => {
    const seen: number[] = [];
    const hooks: PrefetchHooks = {
      bigPagePages: 1,
      beforeCompute: () => PREFETCH_ENTER_LOOP,
      onTreeIter: (_ctx, node) => {
        seen.push(node.outer - node.first);
        return node.outer - node.first <= 8; // "always take up to 8 pages"
      },
    };
    expect(prefetchOf(hooks, [20])).toEqual([16, 17, 18, 19, 21, 22, 23]);
    expect(seen).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
  });
});
