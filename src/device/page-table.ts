/**
 * The mirrored page table as the GPU walks it: a 4-level radix tree like a GPU MMU's
 * (NVIDIA GMMU PDE/PTE levels, nouveau's nvkm_vmm), 512 u32 entries per table, all tables
 * in ONE storage buffer (table i at byte i * 2048; table 0 is the root, the PDB).
 *
 * The host keeps a shadow (one Uint32Array per table) and every call is synchronous on it;
 * `flush()` pushes the dirty entries to the GPU with one queue.writeBuffer per contiguous
 * run. Nothing changes on the GPU before flush(), and work already submitted may still use
 * the old entries until it finishes: unmap → fence is the shootdown (TLB invalidate + membar
 * in UVM terms), the flush left to the next dispatch, which makes it in the same synchronous
 * stretch as its submit. See MirrorPt.shootdown (src/driver/mirror-pt.ts).
 *
 * Entry (u32):
 *   bit 0 VALID, bit 1 WRITE, bit 2 EXCLUSIVE (atomics granted: make_device_exclusive),
 *   bit 3 DEVICE (slot in device-private memory, not the system-memory aperture),
 *   bit 4 HUGE (level-1 leaf mapping 2 MiB), bits 8..31 index: a child table for
 *   directory entries, a page slot for leaves (a huge leaf's first of 512 contiguous slots).
 * Level indices of page number p (< 2^35): [27..35] root, [18..26], [9..17], [0..8].
 *
 * Page numbers are JS numbers up to 2^35: only Math.floor / % / * on them, never 32-bit ops.
 *
 * Tables are allocated from a free list and freed as soon as they are empty (unmap), the
 * parent's directory entry cleared — like free_pgtables / nouveau's PT unref. The GPU
 * buffer grows on flush (new buffer, copyBufferToBuffer, `generation` bumps so users rebind)
 * up to `maxTables`; a map that would need more tables than that fails with ENOMEM before
 * changing anything.
 */
import { err } from '../errors.js';
import { DirtyEntries } from './dirty-entries.js';
import { ensureAlive } from './health.js';
import { DeviceBuffers } from './buffer-pool.js';

export {
  entryFlags, entryIndex, HUGE_PAGES, levelIndices, makeEntry, PT_ENTRIES, PT_MAX_PAGE, PT_TABLE_BYTES, PTE_DEVICE, PTE_EXCLUSIVE, PTE_HUGE,
  PTE_INDEX_LIMIT, PTE_INDEX_SHIFT, PTE_LEAF_FLAGS, PTE_VALID, PTE_WRITE, RANGE_POOLS, LEAF_POOLS,
} from './page-table-defs.js';
import {
  checkPage, checkRange, entryFlags, entryIndex, HOLE, HUGE_PAGES, IN_DEVICE, IN_SYSTEM, levelIndices, makeEntry, poolOfBits, PT_ENTRIES,
  PT_TABLE_BYTES, PTE_DEVICE, PTE_EXCLUSIVE, PTE_HUGE, PTE_INDEX_LIMIT, PTE_LEAF_FLAGS, PTE_VALID, PTE_WRITE,
} from './page-table-defs.js';
export type { GpuPageTableOptions, LeafPool, LeafRun, PageTableStats, PteLookup, RangePool, UnmappedLeaf } from './page-table-defs.js';
import type { GpuPageTableOptions, LeafPool, LeafRun, PageTableStats, PteLookup, RangePool, UnmappedLeaf } from './page-table-defs.js';

export class GpuPageTable {
  readonly device: GPUDevice;
  readonly label: string;
  readonly maxTables: number;
  private readonly mergeGap: number;
  private readonly apertureSlots: number;
  private readonly deviceSlots: number;

  private gpuBuffer: GPUBuffer;
  private destroyed = false;
  private capacity: number;
  private gen = 0;

  /** Shadow tables, null when free or never used. */
  private readonly shadow: (Uint32Array | null)[] = [];
  /** Valid entries per table. */
  private readonly live: number[] = [];
  private readonly freeList: number[] = [];
  /** Freed tables whose GPU copy may hold old entries: written whole on reuse. */
  private readonly stale = new Set<number>();
  /**
   * Entries changed since the last flush: a 512-bit map per table (a Set of global indices
   * cost a hash insert per entry and 512 deletes per freed table — most of a migration's
   * table work).
   */
  private readonly dirty = new DirtyEntries(PT_ENTRIES);
  private liveTables = 0;
  private leafCount = 0;
  /**
   * Entries that lost a right (valid, write, exclusive) so far, directory entries a zap
   * frees included: a kernel that found a page reachable before may not now. The stall gate
   * reads only whether it moved between rounds.
   */
  #revocations = 0;
  private hugeCount = 0;
  private readonly counters = { flushes: 0, writes: 0, bytesWritten: 0, grows: 0 };

  constructor(device: GPUDevice, opts: GpuPageTableOptions = {}) {
    this.device = device;
    this.label = opts.label ?? 'mirror page table';
    const bindMax = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    const ceiling = Math.min(Math.floor(bindMax / PT_TABLE_BYTES), PTE_INDEX_LIMIT);
    this.maxTables = Math.min(opts.maxTables ?? ceiling, ceiling);
    if (!Number.isInteger(this.maxTables) || this.maxTables < 1) throw err('EINVAL', `${this.label}: maxTables must be ≥ 1`);
    this.mergeGap = Math.max(0, Math.floor(opts.mergeGap ?? 0));
    this.apertureSlots = Math.min(opts.apertureSlots ?? PTE_INDEX_LIMIT, PTE_INDEX_LIMIT);
    this.deviceSlots = Math.min(opts.deviceSlots ?? PTE_INDEX_LIMIT, PTE_INDEX_LIMIT);
    this.capacity = Math.max(1, Math.min(opts.initialTables ?? 16, this.maxTables));
    ensureAlive(device, this.label);
    this.gpuBuffer = this.createBuffer(this.capacity);
    const root = this.allocTable();
    if (root !== 0) throw new Error('page table: root must be table 0');
  }

  /** The storage buffer holding every table. Replaced when it grows: see `generation`. */
  get buffer(): GPUBuffer {
    return this.gpuBuffer;
  }

  /** Bumps whenever `buffer` is replaced; bind groups made with an older one are stale. */
  get generation(): number {
    return this.gen;
  }

  get stats(): PageTableStats {
    return {
      tables: this.liveTables,
      tableCapacity: this.capacity,
      maxTables: this.maxTables,
      leaves: this.leafCount,
      hugeLeaves: this.hugeCount,
      dirtyEntries: this.dirty.size,
      ...this.counters,
    };
  }

  // -------------------------------------------------------------------------------------
  // Host-side API (synchronous on the shadow).

  /** Maps one 4 KiB page to `slot`; `flags` ⊆ WRITE|EXCLUSIVE|DEVICE. Replaces a 4 KiB leaf. */
  map(page: number, slot: number, flags = 0): void {
    checkPage(page, 'map');
    this.checkLeaf(slot, flags, 1, 'map');
    const w = this.descend(page);
    const [i3, i2, i1, i0] = w.idx;
    // Check everything before changing anything: huge leaf in the way, tables available.
    if (w.e1 & PTE_HUGE) {
      throw err('EEXIST', `map: page 0x${page.toString(16)} lies in a huge leaf at 0x${(page - i0).toString(16)}; unmap it first`);
    }
    const need = w.t2 === null ? 3 : w.t1 === null ? 2 : w.t0 === null ? 1 : 0;
    this.reserve(need, 'map');
    const l2 = this.child(0, i3);
    const l1 = this.child(l2, i2);
    const l0 = this.child(l1, i1);
    if (!(this.table(l0)[i0] & PTE_VALID)) this.leafCount++;
    this.setEntry(l0, i0, makeEntry(slot, flags | PTE_VALID));
  }

  /**
   * map(page + k, slot(k), flags(k)) for k in [0, n): the same entries and checks, one
   * descent per leaf table instead of one per page (a migration maps runs of new pages).
   * Each page's arguments are checked before that page changes, as n map() calls would.
   */
  mapRun(page: number, n: number, slot: (k: number) => number, flags: (k: number) => number): void {
    checkPage(page, 'map');
    if (n > 0) checkPage(page + n - 1, 'map');
    for (let k = 0; k < n;) {
      const w = this.descend(page + k);
      const [i3, i2, i1, i0] = w.idx;
      if (w.e1 & PTE_HUGE) throw err('EEXIST', `map: page 0x${(page + k).toString(16)} lies in a huge leaf at 0x${(page + k - i0).toString(16)}; unmap it first`);
      this.reserve(w.t2 === null ? 3 : w.t1 === null ? 2 : w.t0 === null ? 1 : 0, 'map');
      const to = Math.min(n, k + PT_ENTRIES - i0);
      let l0 = -1;
      for (let j = i0; k < to; k++, j++) {
        const s = slot(k);
        const f = flags(k);
        this.checkLeaf(s, f, 1, 'map');
        if (l0 < 0) l0 = this.child(this.child(this.child(0, i3), i2), i1);
        const tab = this.table(l0);
        if (!(tab[j] & PTE_VALID)) this.leafCount++;
        this.setEntry(l0, j, makeEntry(s, f | PTE_VALID));
      }
    }
  }

  /**
   * Maps the 2 MiB at `page` (512-aligned) to slots [firstSlot, firstSlot + 512) with one
   * level-1 leaf (a PDE-level big page). firstSlot must be 512-aligned, as hardware wants
   * physically aligned big pages. Replaces a huge leaf; EEXIST over 4 KiB mappings.
   */
  mapHuge(page: number, firstSlot: number, flags = 0): void {
    checkPage(page, 'mapHuge');
    if (page % HUGE_PAGES !== 0) throw err('EINVAL', `mapHuge: page 0x${page.toString(16)} not 2 MiB aligned`);
    if (firstSlot % HUGE_PAGES !== 0) throw err('EINVAL', `mapHuge: slot ${firstSlot} not 512-aligned`);
    this.checkLeaf(firstSlot, flags, HUGE_PAGES, 'mapHuge');
    const w = this.descend(page);
    const [i3, i2, i1] = w.idx;
    if ((w.e1 & PTE_VALID) && !(w.e1 & PTE_HUGE)) {
      throw err('EEXIST', `mapHuge: 4 KiB pages are mapped in [0x${page.toString(16)}, +512); unmap them first`);
    }
    const need = w.t2 === null ? 2 : w.t1 === null ? 1 : 0;
    this.reserve(need, 'mapHuge');
    const l2 = this.child(0, i3);
    const l1 = this.child(l2, i2);
    if (!(this.table(l1)[i1] & PTE_VALID)) {
      this.leafCount++;
      this.hugeCount++;
    }
    this.setEntry(l1, i1, makeEntry(firstSlot, flags | PTE_VALID | PTE_HUGE));
  }

  /**
   * Zaps [page, page + npages): clears every leaf in it and frees tables left empty.
   * A huge leaf partly inside the range is removed whole (and reported whole).
   * Returns the removed leaves in address order.
   */
  unmap(page: number, npages: number): UnmappedLeaf[] {
    return this.unmapAs<UnmappedLeaf>(page, npages, false);
  }

  /**
   * unmap(), its 4 KiB leaves reported as runs (consecutive pages on consecutive slots with
   * the same flags: a migration's 16,384 pages are one record, not an object each).
   */
  unmapRuns(page: number, npages: number): LeafRun[] {
    return this.unmapAs<LeafRun>(page, npages, true);
  }

  private unmapAs<L extends LeafRun>(page: number, npages: number, merge: boolean): L[] {
    checkRange(page, npages, 0, 'unmap');
    if (npages === 1) {
      const one = this.unmapOne(page);
      if (one !== null) return one as L[];
    }
    const out: L[] = [];
    if (npages > 0) this.zap(0, 3, 0, page, page + npages, out, merge);
    return out;
  }

  /**
   * unmap(page, 1) when it frees no table (the common shootdown of one page): a direct walk.
   * null: take the general path (a huge leaf, or the leaf table would empty).
   */
  private unmapOne(page: number): UnmappedLeaf[] | null {
    const { e1, t0, e0, idx } = this.descend(page);
    if (e1 & PTE_HUGE) return null;
    if (t0 === null || !(e0 & PTE_VALID)) return [];
    if (this.live[t0] <= 1) return null;
    this.leafCount--;
    this.setEntry(t0, idx[3], 0);
    return [{ page, npages: 1, slot: entryIndex(e0), flags: entryFlags(e0), huge: false }];
  }

  /** Entries that lost a right so far (see #revocations). */
  get revocations(): number {
    return this.#revocations;
  }

  /** The shadow's translation of `page`, or null (what the GPU sees after the next flush). */
  lookup(page: number): PteLookup | null {
    checkPage(page, 'lookup');
    const { e1, e0, idx } = this.descend(page);
    if (e1 & PTE_HUGE) {
      const slot = entryIndex(e1) + idx[3];
      return { entry: makeEntry(slot, entryFlags(e1)), slot, flags: entryFlags(e1), huge: true };
    }
    if (!(e0 & PTE_VALID)) return null;
    return { entry: e0, slot: entryIndex(e0), flags: entryFlags(e0), huge: false };
  }

  /**
   * The first leaf in [page, page + npages), in address order, for which `pred` holds, or
   * null; a huge leaf partly inside counts (reported whole, as unmap() does). Walks only the
   * tables that exist, so its cost follows what is mapped, not the range's size.
   */
  findLeaf(page: number, npages: number, pred: (leaf: UnmappedLeaf) => boolean): UnmappedLeaf | null {
    checkRange(page, npages, 0, 'findLeaf');
    return npages === 0 ? null : this.find(0, 3, 0, page, page + npages, pred);
  }

  /**
   * Whether every page of [page, page + npages) has a leaf (4 KiB or huge) with all of
   * `flags`: a kernel over the range then translates everywhere (after flush()). A scan of
   * the entries with no callback, stopping at the first hole.
   */
  covers(page: number, npages: number, flags: number): boolean {
    return (this.rangeBits(page, npages, flags, HOLE, 'covers') & HOLE) === 0;
  }

  /**
   * covers(page, npages, flags), and which pool the leaves are in: 'system' (every one in the
   * aperture), 'device' (every one in VRAM), 'mixed'; null where covers() is false.
   */
  poolOf(page: number, npages: number, flags: number): RangePool | null {
    const bits = this.rangeBits(page, npages, flags, HOLE, 'poolOf');
    return bits & HOLE ? null : poolOfBits(bits);
  }

  /**
   * covers(page, npages, flags), writing each page's slot (lookup(p).slot) into out[p - page]
   * on the way: false (out partly written) at the first page without such a leaf.
   */
  leafSlots(page: number, npages: number, flags: number, out: number[]): boolean {
    checkRange(page, npages, 1, 'leafSlots');
    const want = flags | PTE_VALID;
    for (let p = page; p < page + npages;) {
      const w = this.descend(p);
      const huge = (w.e1 & PTE_HUGE) !== 0;
      if (huge ? (w.e1 & want) !== want : w.t0 === null) return false;
      const tab = huge ? null : this.table(w.t0 as number);
      for (let k = w.idx[3]; k < PT_ENTRIES && p < page + npages; k++, p++) {
        const e = tab === null ? w.e1 : tab[k];
        if ((e & want) !== want) return false;
        out[p - page] = entryIndex(e) + (tab === null ? k : 0);
      }
    }
    return true;
  }

  /**
   * Which pool the leaves of [page, page + npages) are in, holes allowed (a kernel misses there
   * whatever its pool): 'resident' if every page has a VRAM leaf with write rights (nothing can miss),
   * else 'device' if none is in the aperture (no leaf at all included), 'system' if none is in VRAM, else 'mixed'.
   */
  leafPool(page: number, npages: number): LeafPool {
    const bits = this.rangeBits(page, npages, PTE_WRITE | PTE_DEVICE, IN_SYSTEM | IN_DEVICE, 'leafPool');
    return bits === IN_DEVICE ? 'resident' : poolOfBits(bits);
  }

  /** No page of [page, page + npages) has a leaf (any flags): a kernel there translates nowhere. */
  mapsNone(page: number, npages: number): boolean {
    return this.findLeaf(page, npages, () => true) === null;
  }

  /**
   * What [page, page + npages) holds, as HOLE | IN_SYSTEM | IN_DEVICE bits (a page with no leaf that
   * has all of `flags`; a leaf in the aperture; one in VRAM), a scan stopping once it saw all of `stop`.
   */
  private rangeBits(page: number, npages: number, flags: number, stop: number, what: string): number {
    checkRange(page, npages, 1, what);
    return this.bitsIn(0, 3, 0, page, page + npages, flags | PTE_VALID, stop);
  }

  private bitsIn(t: number, level: number, base: number, start: number, end: number, flags: number, stop: number): number {
    const tab = this.table(t);
    const span = 512 ** level;
    const k0 = Math.floor((start - base) / span);
    const k1 = Math.min(PT_ENTRIES - 1, Math.ceil((end - base) / span) - 1);
    let bits = 0;
    for (let k = k0; k <= k1 && (bits & stop) !== stop; k++) {
      const e = tab[k];
      const eBase = base + k * span;
      if (!(e & PTE_VALID)) bits |= HOLE;
      else if (level === 0 || (level === 1 && (e & PTE_HUGE))) bits |= ((e & flags) !== flags ? HOLE : 0) | (e & PTE_DEVICE ? IN_DEVICE : IN_SYSTEM);
      else bits |= this.bitsIn(entryIndex(e), level - 1, eBase, Math.max(start, eBase), Math.min(end, eBase + span), flags, stop);
    }
    return bits;
  }

  /**
   * Drops every mapping at once (device reset / mm teardown): frees all tables but the
   * root without walking the leaves. Use unmap(0, PT_MAX_PAGE) to get the leaves back.
   */
  clear(): void {
    const root = this.table(0);
    for (let t = 1; t < this.shadow.length; t++) {
      if (this.shadow[t]) {
        this.dropDirty(t);
        this.freeTable(t);
      }
    }
    for (let k = 0; k < PT_ENTRIES; k++) {
      if (root[k] !== 0) {
        root[k] = 0;
        this.dirty.add(0, k);
      }
    }
    this.live[0] = 0;
    if (this.leafCount > 0) this.#revocations++;
    this.leafCount = 0;
    this.hugeCount = 0;
  }

  /**
   * Pushes dirty entries to the GPU: grows the buffer if tables outgrew it, then one
   * queue.writeBuffer per run of dirty entries (runs separated by ≤ mergeGap clean entries
   * merge). Returns the number of writeBuffer calls. Throws ENODEV, changing nothing, on a
   * lost device.
   */
  flush(): number {
    ensureAlive(this.device, `${this.label}: flush`);
    if (this.destroyed) {
      // The buffer went back to the device's pool (another table's now): nothing to push.
      this.dirty.drain();
      return 0;
    }
    const needed = this.shadow.length;
    if (needed > this.capacity) this.grow(needed);
    if (this.dirty.size === 0) return 0;
    const idx = this.dirty.drain();
    let writes = 0;
    let start = 0;
    for (let k = 1; k <= idx.length; k++) {
      if (k < idx.length && idx[k] - idx[k - 1] <= this.mergeGap + 1) continue;
      this.writeRun(idx[start], idx[k - 1] + 1);
      writes++;
      start = k;
    }
    this.counters.flushes++;
    return writes;
  }

  /** Hands the GPU buffer back to the device's pool (zeroed there); the shadow stays readable. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    DeviceBuffers.of(this.device).release([{ buffer: this.gpuBuffer }]);
  }

  // -------------------------------------------------------------------------------------

  private checkLeaf(slot: number, flags: number, n: number, what: string): void {
    if (!Number.isInteger(flags) || (flags & ~PTE_LEAF_FLAGS) !== 0) {
      throw err('EINVAL', `${what}: flags 0x${flags.toString(16)} outside WRITE|EXCLUSIVE|DEVICE`);
    }
    const limit = flags & PTE_DEVICE ? this.deviceSlots : this.apertureSlots;
    if (!Number.isSafeInteger(slot) || slot < 0 || slot + n > limit) {
      throw err('EINVAL', `${what}: slot ${slot} (+${n}) outside the ${flags & PTE_DEVICE ? 'device' : 'aperture'} pool of ${limit}`);
    }
  }

  private table(t: number): Uint32Array {
    const tab = this.shadow[t];
    if (!tab) throw new Error(`page table corrupt: entry points at free table ${t}`);
    return tab;
  }

  /**
   * The one descent from the root towards `page`'s leaf: the tables met (null below an
   * invalid entry) and the level-1 and level-0 entries (0 where there is none; e1 may be a
   * huge leaf, then t0 is null). map, mapHuge, unmapOne and lookup all start here.
   */
  private descend(page: number): { idx: [number, number, number, number]; t2: number | null; t1: number | null; t0: number | null; e1: number; e0: number } {
    const idx = levelIndices(page);
    const e3 = this.table(0)[idx[0]];
    const t2 = e3 & PTE_VALID ? entryIndex(e3) : null;
    const e2 = t2 === null ? 0 : this.table(t2)[idx[1]];
    const t1 = e2 & PTE_VALID ? entryIndex(e2) : null;
    const e1 = t1 === null ? 0 : this.table(t1)[idx[2]];
    const t0 = (e1 & PTE_VALID) && !(e1 & PTE_HUGE) ? entryIndex(e1) : null;
    const e0 = t0 === null ? 0 : this.table(t0)[idx[3]];
    return { idx, t2, t1, t0, e1, e0 };
  }

  private reserve(need: number, what: string): void {
    const available = this.freeList.length + (this.maxTables - this.shadow.length);
    if (need > available) {
      throw err('ENOMEM', `${what}: needs ${need} page-table pages, ${available} left of ${this.maxTables}`);
    }
  }

  /** Child table of directory entry (t, k), allocated and linked if absent. */
  private child(t: number, k: number): number {
    const e = this.table(t)[k];
    if (e & PTE_VALID) return entryIndex(e);
    const c = this.allocTable();
    this.setEntry(t, k, makeEntry(c, PTE_VALID));
    return c;
  }

  private setEntry(t: number, k: number, value: number): void {
    const tab = this.table(t);
    const old = tab[k];
    // A right taken away (a leaf unmapped or made read-only, a directory entry dropped):
    // the stall gate (mirror-gate.wgsl) then runs every workgroup in the next round.
    if ((old & PTE_VALID) && (old & ~value & (PTE_VALID | PTE_WRITE | PTE_EXCLUSIVE)) !== 0) this.#revocations++;
    if (!(old & PTE_VALID) && (value & PTE_VALID)) this.live[t]++;
    else if ((old & PTE_VALID) && !(value & PTE_VALID)) this.live[t]--;
    tab[k] = value;
    this.dirty.add(t, k);
  }

  private allocTable(): number {
    let t = this.freeList.pop();
    if (t === undefined) {
      t = this.shadow.length;
      this.shadow.push(null);
      this.live.push(0);
    }
    this.shadow[t] = new Uint32Array(PT_ENTRIES);
    this.live[t] = 0;
    this.liveTables++;
    if (this.stale.delete(t)) {
      this.dirty.addTable(t);
    }
    return t;
  }

  private freeTable(t: number): void {
    // Its GPU copy keeps whatever it held (the unlinking parent entry is what the GPU sees):
    // rewrite it whole when it is reused.
    this.stale.add(t);
    this.shadow[t] = null;
    this.live[t] = 0;
    this.freeList.push(t);
    this.liveTables--;
  }

  /** The GPU never reads a freed table again, so its pending zeroes need not be written. */
  private dropDirty(t: number): void {
    this.dirty.dropTable(t);
  }

  /** Zaps pages [start, end) under table t at `level` whose first page is `base`. */
  private zap(t: number, level: number, base: number, start: number, end: number, out: LeafRun[], merge: boolean): void {
    this.walkRange(t, level, base, start, end, true, (tab, k, page, e, huge) => {
      const slot = entryIndex(e);
      const flags = entryFlags(e);
      const last = merge && !huge && out.length > 0 ? out[out.length - 1] : null;
      if (last !== null && !last.huge && last.flags === flags && last.page + last.npages === page && last.slot + last.npages === slot) last.npages++;
      else out.push({ page, npages: huge ? HUGE_PAGES : 1, slot, flags, huge });
      this.leafCount--;
      if (huge) this.hugeCount--;
      this.setEntry(tab, k, 0);
      return false;
    });
  }

  /** findLeaf's walk of pages [start, end) under table t at `level` (zap's, read-only). */
  private find(t: number, level: number, base: number, start: number, end: number, pred: (leaf: UnmappedLeaf) => boolean): UnmappedLeaf | null {
    let hit: UnmappedLeaf | null = null;
    this.walkRange(t, level, base, start, end, false, (_tab, _k, page, e, huge) => {
      const leaf: UnmappedLeaf = { page, npages: huge ? HUGE_PAGES : 1, slot: entryIndex(e), flags: entryFlags(e), huge };
      if (!pred(leaf)) return false;
      hit = leaf;
      return true;
    });
    return hit;
  }

  /**
   * The one range walk: every leaf in pages [start, end) under table t at `level` (first
   * page `base`), in address order, through the tables that exist; a huge leaf partly
   * inside counts whole. `onLeaf` (the entry, its first page) may clear it and returns true to stop.
   * `prune`: free the tables the walk leaves empty, and unlink them.
   */
  private walkRange(
    t: number, level: number, base: number, start: number, end: number, prune: boolean,
    onLeaf: (tab: number, k: number, page: number, entry: number, huge: boolean) => boolean,
  ): boolean {
    const tab = this.table(t);
    const span = 512 ** level;
    const k0 = Math.floor((start - base) / span);
    const k1 = Math.min(PT_ENTRIES - 1, Math.ceil((end - base) / span) - 1);
    for (let k = k0; k <= k1; k++) {
      const e = tab[k];
      if (!(e & PTE_VALID)) continue;
      const eBase = base + k * span;
      if (level === 0 || (level === 1 && (e & PTE_HUGE))) {
        if (onLeaf(t, k, eBase, e, level === 1)) return true; // (no object a leaf: a zap's are merged)
        continue;
      }
      const c = entryIndex(e);
      if (this.walkRange(c, level - 1, eBase, Math.max(start, eBase), Math.min(end, eBase + span), prune, onLeaf)) return true;
      if (prune && this.live[c] === 0) {
        this.dropDirty(c);
        this.freeTable(c);
        this.setEntry(t, k, 0);
      }
    }
    return false;
  }

  /** A zeroed buffer of `tables` tables from the device's pool (free tables must read as zero). */
  private createBuffer(tables: number): GPUBuffer {
    return DeviceBuffers.of(this.device).acquire({
      label: `${this.label} (${tables} tables)`,
      size: tables * PT_TABLE_BYTES,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
  }

  private grow(needed: number): void {
    let cap = this.capacity;
    while (cap < needed) cap *= 2;
    cap = Math.min(cap, this.maxTables);
    const next = this.createBuffer(cap);
    const enc = this.device.createCommandEncoder({ label: `${this.label} grow` });
    enc.copyBufferToBuffer(this.gpuBuffer, 0, next, 0, this.capacity * PT_TABLE_BYTES);
    this.device.queue.submit([enc.finish()]);
    // Submitted work that uses it still completes: the pool's zeroing is queued after it.
    DeviceBuffers.of(this.device).release([{ buffer: this.gpuBuffer }]);
    this.gpuBuffer = next;
    this.capacity = cap;
    this.gen++;
    this.counters.grows++;
  }

  /** Writes global entries [from, to) from the shadow (free tables read as zero). */
  private writeRun(from: number, to: number): void {
    const t0 = Math.floor(from / PT_ENTRIES);
    let data: Uint32Array<ArrayBuffer>;
    if (Math.floor((to - 1) / PT_ENTRIES) === t0) {
      const tab = this.shadow[t0] ?? new Uint32Array(PT_ENTRIES);
      data = tab.slice(from - t0 * PT_ENTRIES, to - t0 * PT_ENTRIES);
    } else {
      data = new Uint32Array(to - from);
      for (let g = from; g < to; g++) {
        const tab = this.shadow[Math.floor(g / PT_ENTRIES)];
        data[g - from] = tab ? tab[g % PT_ENTRIES] : 0;
      }
    }
    this.device.queue.writeBuffer(this.gpuBuffer, from * 4, data);
    this.counters.writes++;
    this.counters.bytesWritten += data.byteLength;
  }
}
