/**
 * The ordered container of an address space's VMAs (the kernel's mm->mm_mt maple tree; before
 * 6.1 the mm_rb rb-tree). Here: an AVL tree keyed by `start`, each node augmented with its
 * subtree's lowest start, highest end and largest internal gap (like the old rb_subtree_gap and
 * the maple tree's gap tracking), so that find_vma and vm_unmapped_area are O(log n).
 *
 * Spans are half-open [start, end), non-empty, page aligned and never overlap. The tree caches
 * each span's bounds in its node: change them only through `adjust()` (checkInvariants reports
 * a span changed behind the tree's back). Bad calls throw HmmError (EINVAL bad bounds, EEXIST
 * overlap, ENOENT absent span) before anything changes.
 */
import { err } from '../errors.js';
import { PAGE_SIZE, PMD_SIZE } from './constants.js';

export interface Span { start: number; end: number }

// Node storage: struct-of-arrays, no objects, so that a find() descent reads no boxed doubles.
// Hot (what find/lookup read), 32 bytes a node:  doubles [4i+0..1] start, end;
//                                                int32s [8i+4..6] left, right, height.
// Cold (the augmentation), 32 bytes a node:      doubles [4i+0..3] minStart, maxEnd (of the
//                                                subtree), gap, gapPmd.
// gap:    largest hole between consecutive spans inside the subtree (-1: none), as rb_subtree_gap.
// gapPmd: largest `holeEnd - alignUp(holeStart, PMD_SIZE)` inside the subtree: an exact test for
//         2 MiB-aligned fits (THP / hugetlb placement). Node 0 is the nil sentinel.
const F_START = 0, F_END = 1;
const G_MIN = 0, G_MAX = 1, G_GAP = 2, G_GAPPMD = 3;
const I_LEFT = 4, I_RIGHT = 5, I_HEIGHT = 6;
const MAX_HEIGHT = 96; // AVL height <= 1.44 log2(n + 2): ample for any n that fits in memory

const alignUp = (x: number, a: number): number => Math.ceil(x / a) * a;
const alignDown = (x: number, a: number): number => Math.floor(x / a) * a;

function checkAddr(x: number, what: string): void {
  if (!Number.isSafeInteger(x) || x < 0 || x % PAGE_SIZE !== 0) {
    throw err('EINVAL', `${what} ${x} is not a page-aligned address`);
  }
}

function checkBounds(start: number, end: number): void {
  checkAddr(start, 'start');
  checkAddr(end, 'end');
  if (start >= end) throw err('EINVAL', `empty span [0x${start.toString(16)}, 0x${end.toString(16)})`);
}

const hexr = (s: number, e: number): string => `[0x${s.toString(16)}, 0x${e.toString(16)})`;
const hex = (s: Span): string => hexr(s.start, s.end);

export class VmaTree<T extends Span> {
  private f: Float64Array;
  private n32: Int32Array;
  private g: Float64Array;
  private vals: (T | undefined)[] = [undefined];
  private root = 0;
  private count = 0;
  private nextFresh = 1;
  private freeList = 0;
  /** Scratch root-to-node path for adjust/prev/next. */
  private readonly path = new Int32Array(MAX_HEIGHT);
  private pathLen = 0;
  // Gap-search parameters, held here so the recursive search needs no closure.
  private gLen = 0;
  private gLow = 0;
  private gHigh = 0;
  private gAlign = PAGE_SIZE;
  private gPmd = false;
  private changes = 0;

  constructor() {
    const buf = new ArrayBuffer(32 * 16);
    this.f = new Float64Array(buf);
    this.n32 = new Int32Array(buf);
    this.g = new Float64Array(4 * 16);
  }

  get size(): number {
    return this.count;
  }

  /**
   * Bumped by every insert, remove and adjust: a reader that saw the spans at one value knows
   * they are the same while it holds (the policy's va_block regions, PolicyPath.serviceBatch).
   */
  get seq(): number {
    return this.changes;
  }

  private alloc(v: T): number {
    let i = this.freeList;
    if (i !== 0) {
      this.freeList = this.n32[8 * i + I_LEFT];
    } else {
      i = this.nextFresh++;
      if (4 * i >= this.f.length) {
        const buf = new ArrayBuffer(this.f.byteLength * 2);
        const f = new Float64Array(buf);
        f.set(this.f);
        this.f = f;
        this.n32 = new Int32Array(buf);
        const g = new Float64Array(this.g.length * 2);
        g.set(this.g);
        this.g = g;
      }
    }
    const f = this.f;
    const g = this.g;
    const n = this.n32;
    const b = 4 * i;
    f[b + F_START] = g[b + G_MIN] = v.start;
    f[b + F_END] = g[b + G_MAX] = v.end;
    g[b + G_GAP] = g[b + G_GAPPMD] = -1;
    n[8 * i + I_LEFT] = n[8 * i + I_RIGHT] = 0;
    n[8 * i + I_HEIGHT] = 1;
    this.vals[i] = v;
    return i;
  }

  private release(i: number): void {
    this.vals[i] = undefined;
    this.n32[8 * i + I_LEFT] = this.freeList;
    this.freeList = i;
  }

  /** Recompute node i's height and augmented data from its children. */
  private update(i: number): void {
    const f = this.f;
    const g = this.g;
    const n = this.n32;
    const b = 4 * i;
    const l = n[8 * i + I_LEFT];
    const r = n[8 * i + I_RIGHT];
    let gap = -1;
    let gapPmd = -1;
    let hl = 0;
    let hr = 0;
    if (l !== 0) {
      const lb = 4 * l;
      hl = n[8 * l + I_HEIGHT];
      g[b + G_MIN] = g[lb + G_MIN];
      gap = Math.max(g[lb + G_GAP], f[b + F_START] - g[lb + G_MAX]);
      gapPmd = Math.max(g[lb + G_GAPPMD], f[b + F_START] - alignUp(g[lb + G_MAX], PMD_SIZE));
    } else {
      g[b + G_MIN] = f[b + F_START];
    }
    if (r !== 0) {
      const rb = 4 * r;
      hr = n[8 * r + I_HEIGHT];
      g[b + G_MAX] = g[rb + G_MAX];
      gap = Math.max(gap, g[rb + G_GAP], g[rb + G_MIN] - f[b + F_END]);
      gapPmd = Math.max(gapPmd, g[rb + G_GAPPMD], g[rb + G_MIN] - alignUp(f[b + F_END], PMD_SIZE));
    } else {
      g[b + G_MAX] = f[b + F_END];
    }
    g[b + G_GAP] = gap;
    g[b + G_GAPPMD] = gapPmd;
    n[8 * i + I_HEIGHT] = (hl > hr ? hl : hr) + 1;
  }

  private height(i: number): number {
    return i === 0 ? 0 : this.n32[8 * i + I_HEIGHT];
  }

  private left(i: number): number {
    return this.n32[8 * i + I_LEFT];
  }

  private right(i: number): number {
    return this.n32[8 * i + I_RIGHT];
  }

  private rotateRight(i: number): number {
    const n = this.n32;
    const l = n[8 * i + I_LEFT];
    n[8 * i + I_LEFT] = n[8 * l + I_RIGHT];
    n[8 * l + I_RIGHT] = i;
    this.update(i);
    this.update(l);
    return l;
  }

  private rotateLeft(i: number): number {
    const n = this.n32;
    const r = n[8 * i + I_RIGHT];
    n[8 * i + I_RIGHT] = n[8 * r + I_LEFT];
    n[8 * r + I_LEFT] = i;
    this.update(i);
    this.update(r);
    return r;
  }

  private rebalance(i: number): number {
    this.update(i);
    const l = this.left(i);
    const r = this.right(i);
    const bf = this.height(l) - this.height(r);
    if (bf > 1) {
      if (this.height(this.left(l)) < this.height(this.right(l))) this.n32[8 * i + I_LEFT] = this.rotateLeft(l);
      return this.rotateRight(i);
    }
    if (bf < -1) {
      if (this.height(this.right(r)) < this.height(this.left(r))) this.n32[8 * i + I_RIGHT] = this.rotateRight(r);
      return this.rotateLeft(i);
    }
    return i;
  }

  /** Link a span in (vma_link / vma_iter_store). Throws if empty, misaligned or overlapping. */
  insert(v: T): void {
    checkBounds(v.start, v.end);
    // Check for overlap first, so that a rejected insert changes nothing.
    const f = this.f;
    const n = this.n32;
    let i = this.root;
    while (i !== 0) {
      const b = 4 * i;
      if (v.end <= f[b + F_START]) i = n[8 * i + I_LEFT];
      else if (v.start >= f[b + F_END]) i = n[8 * i + I_RIGHT];
      else throw err('EEXIST', `span ${hex(v)} overlaps ${hex(this.vals[i]!)}`);
    }
    this.root = this.ins(this.root, v);
    this.count++;
    this.changes++;
  }

  private ins(i: number, v: T): number {
    if (i === 0) return this.alloc(v);
    // alloc() may grow the arrays: read this.n32 after the recursive call.
    if (v.start < this.f[4 * i + F_START]) {
      const c = this.ins(this.left(i), v);
      this.n32[8 * i + I_LEFT] = c;
    } else {
      const c = this.ins(this.right(i), v);
      this.n32[8 * i + I_RIGHT] = c;
    }
    return this.rebalance(i);
  }

  /** Unlink a span by identity (vma_iter_clear). Throws if it is not in the tree. */
  remove(v: T): void {
    this.locate(v);
    this.root = this.del(this.root, v.start);
    this.count--;
    this.changes++;
  }

  private del(i: number, key: number): number {
    const n = this.n32;
    const s = this.f[4 * i + F_START];
    if (key < s) n[8 * i + I_LEFT] = this.del(n[8 * i + I_LEFT], key);
    else if (key > s) n[8 * i + I_RIGHT] = this.del(n[8 * i + I_RIGHT], key);
    else {
      const l = n[8 * i + I_LEFT];
      const r = n[8 * i + I_RIGHT];
      if (l === 0 || r === 0) {
        this.release(i);
        return l === 0 ? r : l;
      }
      // Two children: take the successor's payload, then unlink the successor.
      let m = r;
      while (n[8 * m + I_LEFT] !== 0) m = n[8 * m + I_LEFT];
      const f = this.f;
      f[4 * i + F_START] = f[4 * m + F_START];
      f[4 * i + F_END] = f[4 * m + F_END];
      this.vals[i] = this.vals[m];
      n[8 * i + I_RIGHT] = this.delMin(r);
    }
    return this.rebalance(i);
  }

  private delMin(i: number): number {
    const n = this.n32;
    const l = n[8 * i + I_LEFT];
    if (l === 0) {
      const r = n[8 * i + I_RIGHT];
      this.release(i);
      return r;
    }
    n[8 * i + I_LEFT] = this.delMin(l);
    return this.rebalance(i);
  }

  /** Node holding `v` (by identity); fills this.path with the root-to-node path. */
  private locate(v: T): number {
    const f = this.f;
    const n = this.n32;
    const path = this.path;
    let len = 0;
    let i = this.root;
    const key = v.start;
    while (i !== 0) {
      path[len++] = i;
      const s = f[4 * i + F_START];
      if (key < s) i = n[8 * i + I_LEFT];
      else if (key > s) i = n[8 * i + I_RIGHT];
      else if (this.vals[i] === v) {
        this.pathLen = len;
        return i;
      } else break;
    }
    throw err('ENOENT', `span ${hex(v)} is not in the tree`);
  }

  /**
   * Change v's bounds in place (vma_adjust / vma_expand / vma_shrink / the two halves of
   * __split_vma). The new range must stay between v's neighbours; the tree writes v.start/v.end.
   */
  adjust(v: T, start: number, end: number): void {
    checkBounds(start, end);
    const i = this.locate(v);
    const f = this.f;
    const g = this.g;
    const n = this.n32;
    const path = this.path;
    // Neighbours: inside i's subtree if it has children there, else the nearest ancestor turn.
    let prevEnd = -Infinity;
    let nextStart = Infinity;
    const l = n[8 * i + I_LEFT];
    const r = n[8 * i + I_RIGHT];
    if (l !== 0) prevEnd = g[4 * l + G_MAX];
    if (r !== 0) nextStart = g[4 * r + G_MIN];
    for (let k = this.pathLen - 2; k >= 0 && (prevEnd === -Infinity || nextStart === Infinity); k--) {
      const a = path[k];
      if (path[k + 1] === n[8 * a + I_RIGHT]) { if (prevEnd === -Infinity) prevEnd = f[4 * a + F_END]; }
      else if (nextStart === Infinity) nextStart = f[4 * a + F_START];
    }
    if (start < prevEnd) throw err('EEXIST', `adjust to ${hexr(start, end)} overlaps the previous span`);
    if (end > nextStart) throw err('EEXIST', `adjust to ${hexr(start, end)} overlaps the next span`);
    f[4 * i + F_START] = v.start = start;
    f[4 * i + F_END] = v.end = end;
    this.changes++;
    for (let k = this.pathLen - 1; k >= 0; k--) this.update(path[k]);
  }

  /** find_vma(): the lowest span with end > addr. */
  find(addr: number): T | undefined {
    const f = this.f;
    const n = this.n32;
    let i = this.root;
    let best = 0;
    while (i !== 0) {
      if (f[4 * i + F_END] > addr) { best = i; i = n[8 * i + I_LEFT]; } else i = n[8 * i + I_RIGHT];
    }
    return best === 0 ? undefined : this.vals[best];
  }

  /** find_vma_intersection(): the lowest span intersecting [start, end). */
  findIntersection(start: number, end: number): T | undefined {
    if (!(start < end)) return undefined;
    const f = this.f;
    const n = this.n32;
    let i = this.root;
    let best = 0;
    while (i !== 0) {
      if (f[4 * i + F_END] > start) { best = i; i = n[8 * i + I_LEFT]; } else i = n[8 * i + I_RIGHT];
    }
    return best !== 0 && f[4 * best + F_START] < end ? this.vals[best] : undefined;
  }

  /** vma_lookup(): the span containing addr. */
  lookup(addr: number): T | undefined {
    const f = this.f;
    const n = this.n32;
    let i = this.root;
    while (i !== 0) {
      if (addr < f[4 * i + F_START]) i = n[8 * i + I_LEFT];
      else if (addr >= f[4 * i + F_END]) i = n[8 * i + I_RIGHT];
      else return this.vals[i];
    }
    return undefined;
  }

  /** vma_prev(): the span before v (v must be in the tree). */
  prev(v: T): T | undefined {
    const i = this.locate(v);
    const n = this.n32;
    let m = n[8 * i + I_LEFT];
    if (m !== 0) {
      while (n[8 * m + I_RIGHT] !== 0) m = n[8 * m + I_RIGHT];
      return this.vals[m];
    }
    const path = this.path;
    for (let k = this.pathLen - 2; k >= 0; k--) if (path[k + 1] === n[8 * path[k] + I_RIGHT]) return this.vals[path[k]];
    return undefined;
  }

  /** vma_next(): the span after v (v must be in the tree). */
  next(v: T): T | undefined {
    const i = this.locate(v);
    const n = this.n32;
    let m = n[8 * i + I_RIGHT];
    if (m !== 0) {
      while (n[8 * m + I_LEFT] !== 0) m = n[8 * m + I_LEFT];
      return this.vals[m];
    }
    const path = this.path;
    for (let k = this.pathLen - 2; k >= 0; k--) if (path[k + 1] === n[8 * path[k] + I_LEFT]) return this.vals[path[k]];
    return undefined;
  }

  first(): T | undefined {
    let i = this.root;
    if (i === 0) return undefined;
    while (this.left(i) !== 0) i = this.left(i);
    return this.vals[i];
  }

  last(): T | undefined {
    let i = this.root;
    if (i === 0) return undefined;
    while (this.right(i) !== 0) i = this.right(i);
    return this.vals[i];
  }

  /** Every span intersecting [start, end), in order (for_each_vma_range). */
  range(start: number, end: number): T[] {
    const out: T[] = [];
    if (start < end) this.collect(this.root, start, end, out);
    return out;
  }

  private collect(i: number, start: number, end: number, out: T[]): void {
    const f = this.f;
    const g = this.g;
    while (i !== 0) {
      const b = 4 * i;
      if (g[b + G_MAX] <= start || g[b + G_MIN] >= end) return;
      if (start < f[b + F_START]) this.collect(this.left(i), start, end, out);
      if (f[b + F_END] > start && f[b + F_START] < end) out.push(this.vals[i]!);
      if (end <= f[b + F_END]) return;
      i = this.right(i);
    }
  }

  /**
   * In-order iteration. Like the kernel's vma iterator it resumes from the last span's end
   * (mas_find), so spans may be removed, adjusted or inserted while iterating.
   */
  *[Symbol.iterator](): IterableIterator<T> {
    let v = this.first();
    while (v !== undefined) {
      const end = v.end;
      yield v;
      v = this.find(end);
    }
  }

  private checkGapArgs(length: number, low: number, high: number, align: number): boolean {
    if (!Number.isSafeInteger(length) || length <= 0) throw err('EINVAL', `bad length ${length}`);
    if (!Number.isSafeInteger(low) || !Number.isSafeInteger(high)) throw err('EINVAL', `bad limits ${low}, ${high}`);
    if (!Number.isSafeInteger(align) || align < PAGE_SIZE || 2 ** Math.round(Math.log2(align)) !== align) {
      throw err('EINVAL', `align ${align} is not a power of two >= ${PAGE_SIZE}`);
    }
    this.gLen = length;
    this.gLow = low;
    this.gHigh = high;
    this.gAlign = align;
    this.gPmd = align >= PMD_SIZE;
    return high - low >= length;
  }

  /**
   * vm_unmapped_area() bottom-up (unmapped_area): the lowest `align`-aligned a with
   * [a, a+length) free, low <= a and a+length <= high. Exact (unlike the kernel, which asks for
   * length + align - PAGE_SIZE); O(log n) for align 4 KiB and 2 MiB, tracked per node; other
   * alignments prune with the nearest tracked bound.
   */
  findGapBottomUp(length: number, low: number, high: number, align = PAGE_SIZE): number | undefined {
    if (!this.checkGapArgs(length, low, high, align)) return undefined;
    const root = this.root;
    if (root === 0) return this.fit(0, Infinity, false);
    const f = this.f;
    const g = this.g;
    let a = this.fit(0, g[4 * root + G_MIN], false);
    if (a !== undefined) return a;
    if (this.viable(root)) {
      a = this.searchUp(root);
      if (a !== undefined) return a;
    }
    return this.fit(g[4 * root + G_MAX], Infinity, false);
  }

  /** vm_unmapped_area() top-down (unmapped_area_topdown): the highest such a. */
  findGapTopDown(length: number, low: number, high: number, align = PAGE_SIZE): number | undefined {
    if (!this.checkGapArgs(length, low, high, align)) return undefined;
    const root = this.root;
    if (root === 0) return this.fit(0, Infinity, true);
    const f = this.f;
    const g = this.g;
    let a = this.fit(g[4 * root + G_MAX], Infinity, true);
    if (a !== undefined) return a;
    if (this.viable(root)) {
      a = this.searchDown(root);
      if (a !== undefined) return a;
    }
    return this.fit(0, g[4 * root + G_MIN], true);
  }

  /** The lowest (or highest) aligned fit inside the hole [gs, ge) clipped to the limits. */
  private fit(gs: number, ge: number, top: boolean): number | undefined {
    const s = gs > this.gLow ? gs : this.gLow;
    const e = ge < this.gHigh ? ge : this.gHigh;
    if (top) {
      const a = alignDown(e - this.gLen, this.gAlign);
      return a >= s ? a : undefined;
    }
    const a = alignUp(s, this.gAlign);
    return a + this.gLen <= e ? a : undefined;
  }

  /** Could i's subtree hold a fit? Exact for tracked alignments when not clipped by the limits. */
  private viable(i: number): boolean {
    const f = this.f;
    const g = this.g;
    const b = 4 * i;
    const len = this.gLen;
    return g[b + (this.gPmd ? G_GAPPMD : G_GAP)] >= len && g[b + G_MAX] - len >= this.gLow && g[b + G_MIN] + len <= this.gHigh;
  }

  private searchUp(i: number): number | undefined {
    let a: number | undefined;
    const l = this.left(i);
    const r = this.right(i);
    const f = this.f;
    const g = this.g;
    if (l !== 0) {
      if (this.viable(l) && (a = this.searchUp(l)) !== undefined) return a;
      if ((a = this.fit(g[4 * l + G_MAX], f[4 * i + F_START], false)) !== undefined) return a;
    }
    if (r !== 0) {
      if ((a = this.fit(f[4 * i + F_END], g[4 * r + G_MIN], false)) !== undefined) return a;
      if (this.viable(r)) return this.searchUp(r);
    }
    return undefined;
  }

  private searchDown(i: number): number | undefined {
    let a: number | undefined;
    const l = this.left(i);
    const r = this.right(i);
    const f = this.f;
    const g = this.g;
    if (r !== 0) {
      if (this.viable(r) && (a = this.searchDown(r)) !== undefined) return a;
      if ((a = this.fit(f[4 * i + F_END], g[4 * r + G_MIN], true)) !== undefined) return a;
    }
    if (l !== 0) {
      if ((a = this.fit(g[4 * l + G_MAX], f[4 * i + F_START], true)) !== undefined) return a;
      if (this.viable(l)) return this.searchDown(l);
    }
    return undefined;
  }

  /** validate_mm(): order, no overlap, cached bounds, AVL balance, heights, augmented gaps, size. */
  checkInvariants(): void {
    let seen = 0;
    let prevEnd = -Infinity;
    const f = this.f;
    const g = this.g;
    const n = this.n32;
    const walk = (i: number, depth: number): void => {
      if (i === 0) return;
      if (depth > MAX_HEIGHT) throw new Error('tree too deep (cycle?)');
      const b = 4 * i;
      const v = this.vals[i];
      if (v === undefined) throw new Error(`node ${i} is linked but free`);
      walk(this.left(i), depth + 1);
      const s = f[b + F_START];
      const e = f[b + F_END];
      if (v.start !== s || v.end !== e) throw new Error(`span ${hex(v)} changed outside adjust() (tree has ${hexr(s, e)})`);
      if (!(s < e) || s % PAGE_SIZE !== 0 || e % PAGE_SIZE !== 0) throw new Error(`bad span ${hexr(s, e)}`);
      if (s < prevEnd) throw new Error(`span ${hexr(s, e)} out of order / overlapping (previous end 0x${prevEnd.toString(16)})`);
      prevEnd = e;
      seen++;
      walk(this.right(i), depth + 1);
      const hl = this.height(this.left(i));
      const hr = this.height(this.right(i));
      if (Math.abs(hl - hr) > 1) throw new Error(`unbalanced at ${hexr(s, e)}: ${hl} vs ${hr}`);
      const before = [n[8 * i + I_HEIGHT], g[b + G_MIN], g[b + G_MAX], g[b + G_GAP], g[b + G_GAPPMD]];
      this.update(i);
      const after = [n[8 * i + I_HEIGHT], g[b + G_MIN], g[b + G_MAX], g[b + G_GAP], g[b + G_GAPPMD]];
      if (before.some((x, k) => x !== after[k])) {
        throw new Error(`stale augmented data at ${hexr(s, e)}: ${before.join()} should be ${after.join()}`);
      }
    };
    walk(this.root, 0);
    if (seen !== this.count) throw new Error(`size ${this.count} but ${seen} nodes`);
    let free = 0;
    for (let i = this.freeList; i !== 0; i = n[8 * i + I_LEFT]) if (++free > this.nextFresh) throw new Error('free list cycle');
    if (free + this.count !== this.nextFresh - 1) throw new Error(`leaked nodes: ${this.nextFresh - 1} allocated, ${this.count} live, ${free} free`);
  }
}

/** Naive baseline for benchmarks: find_vma by linear scan of spans sorted by address. */
export function linearFindVma<S extends Span>(spans: readonly S[], addr: number): S | undefined {
  for (let i = 0; i < spans.length; i++) if (spans[i].end > addr) return spans[i];
  return undefined;
}
