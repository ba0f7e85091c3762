/**
 * VMA surgery (mm/vma.c): __split_vma, vma_merge_new_range / vma_merge_existing_range,
 * vma_modify_flags, and removal. Synchronous, under the mmap write lock; page tables are
 * untouched (callers split THPs that a new boundary cuts through before calling in).
 */
import type { MmStruct } from './mm.js';
import { canMerge, Vma } from './vma.js';

/** __split_vma(): `vma` keeps [start, addr); the returned new VMA is [addr, end). */
export function splitVma(mm: MmStruct, vma: Vma, addr: number): Vma {
  if (!(addr > vma.start && addr < vma.end)) throw new Error(`split of ${vma} at 0x${addr.toString(16)}`);
  const upper = new Vma(addr, vma.end, vma.flags, vma.pgoff + (addr - vma.start) / 4096, vma.file, vma.anon);
  vma.file?.get();
  mm.vmas.adjust(vma, vma.start, addr);
  mm.vmas.insert(upper);
  return upper;
}

/** remove_vma(): out of the tree, drop its file reference. */
export function removeVma(mm: MmStruct, vma: Vma): void {
  mm.vmas.remove(vma);
  vma.file?.put();
}

/**
 * Merge `vma` with its neighbours where vma_merge allows (adjacent, same flags, same file
 * with contiguous pgoff, compatible anon_vma). Returns the VMA that now covers vma's range.
 */
export function mergeAround(mm: MmStruct, vma: Vma): Vma {
  let v = vma;
  const prev = mm.vmas.prev(v);
  if (prev !== undefined && canMerge(prev, v)) {
    const end = v.end;
    const anon = prev.anon ?? v.anon;
    removeVma(mm, v);
    mm.vmas.adjust(prev, prev.start, end);
    prev.anon = anon;
    v = prev;
  }
  const next = mm.vmas.next(v);
  if (next !== undefined && canMerge(v, next)) {
    const end = next.end;
    const anon = v.anon ?? next.anon;
    removeVma(mm, next);
    mm.vmas.adjust(v, v.start, end);
    v.anon = anon;
  }
  return v;
}

/**
 * vma_modify_flags(): give [start, end) (inside `vma`) the flags `flags`, splitting off the
 * parts outside it and merging the result with its neighbours. Returns the VMA covering
 * [start, end) afterwards.
 */
export function vmaModifyFlags(mm: MmStruct, vma: Vma, start: number, end: number, flags: number): Vma {
  if (vma.flags === flags) return vma;
  let v = vma;
  if (start > v.start) v = splitVma(mm, v, start);
  if (end < v.end) splitVma(mm, v, end);
  v.flags = flags;
  return mergeAround(mm, v);
}

/**
 * Split the VMAs that straddle start or end so that [start, end) is covered by whole VMAs,
 * and return those (in order). Used by munmap and MAP_FIXED.
 */
export function isolateRange(mm: MmStruct, start: number, end: number): Vma[] {
  const first = mm.vmas.find(start);
  if (first !== undefined && first.start < start && first.end > start) splitVma(mm, first, start);
  const last = mm.vmas.find(end - 1);
  if (last !== undefined && last.start < end && last.end > end) splitVma(mm, last, end);
  return mm.vmas.range(start, end);
}
