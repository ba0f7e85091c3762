/**
 * The system-memory aperture of one mirror: which system frame each aperture slot holds a
 * GPU copy of, kept coherent with the CPU side. A real GPU reaches system memory through
 * the IOMMU over a coherent link; ours reaches a copy in GPU memory, so the driver does
 * what the link would:
 *  - CPU → GPU: before every dispatch, re-upload each mapped frame whose write generation
 *    (PhysMem.gen) moved since its upload (skipped entirely when PhysMem.epoch is unchanged);
 *  - GPU → CPU: at the end of every command, and in every invalidation before the CPU side
 *    changes a PTE, copy back the slots the kernels marked dirty.
 * Each mapped (page → frame) mirror entry holds one reference on its slot.
 *
 * acquire() queues a new slot's upload; flushUploads() writes the queue, one writeBuffer per
 * run of consecutive slots (a fault service maps thousands of pages: one call each would
 * cost more than the bytes). syncToGpu(), which every dispatch is preceded by, flushes the
 * queue first, so no kernel runs with an entry whose bytes are not uploaded yet; a shootdown
 * and write-back flush it too.
 */
import { words } from '../device/abi.js';
import type { MirrorEngine } from '../device/mirror-engine.js';
import type { MemCore } from '../mm/pages.js';

/**
 * The CPU side the aperture keeps coherent with: system frames and device-coherent pages
 * (MemCore.pageData / genOf / markWritten, PhysMem.epoch shared by both).
 */
export interface CpuMemory {
  readonly epoch: number;
  gen(pfn: number): number;
  data(pfn: number): Uint8Array;
  markWritten(pfn: number): void;
}

/** The CPU side of a machine: its frames and every device-coherent page (of any device). */
export function cpuMemoryOf(core: MemCore): CpuMemory {
  return {
    get epoch() { return core.ram.epoch; },
    gen: (pfn) => core.genOf(pfn),
    data: (pfn) => core.pageData(pfn),
    markWritten: (pfn) => core.markWritten(pfn),
  };
}

interface SlotInfo {
  slot: number;
  /** PhysMem.gen of the frame when the GPU copy was last made equal to it. */
  gen: number;
  /** Mirror entries using it. */
  refs: number;
  /**
   * What the GPU copy holds, as far as the host knows (set at upload, refresh and
   * write-back). Coherence is merged per 32-bit word against it, as a coherent link merges
   * per cache line: a refresh uploads only the words the CPU changed, a write-back stores
   * only the words the GPU changed, so neither side's concurrent writes to other words of
   * the page are lost.
   */
  base: Uint32Array | null;
  /**
   * The slot is (or was) mapped with a right that lets a kernel write it: only then can the
   * GPU copy diverge from the frame, so only such slots get a `base` — taken before the
   * first kernel that writes runs (takeBases), so a read command, even over writable
   * memory (most of a fresh read), never pays for the 4 KiB copies.
   */
  wantBase: boolean;
}

export interface ApertureStats {
  /** Pages uploaded into a new slot. */
  uploads: number;
  /** writeBuffer calls those took. */
  uploadWrites: number;
  refreshes: number;
  writebacks: number;
}

export class Aperture {
  readonly #engine: MirrorEngine;
  readonly #ram: CpuMemory;
  readonly #byPfn = new Map<number, SlotInfo>();
  readonly #pfnOfSlot = new Map<number, number>();
  #epochSeen = -1;
  /** Slots acquired since the last flushUploads(), in order, with their frames. */
  #pending: { slot: number; pfn: number }[] = [];
  /** Slots mapped writable that have no merge base yet (see takeBases). */
  #needBase: SlotInfo[] = [];
  /** A kernel that can write was readied (syncToGpu(true)) since the last write-back. */
  #mayBeDirty = false;
  readonly stats: ApertureStats = { uploads: 0, uploadWrites: 0, refreshes: 0, writebacks: 0 };

  constructor(engine: MirrorEngine, ram: CpuMemory) {
    this.#engine = engine;
    this.#ram = ram;
  }

  get mapped(): number {
    return this.#byPfn.size;
  }

  get freeSlots(): number {
    return this.#engine.sysmem.freeSlots;
  }

  /**
   * The slot holding `pfn`, its upload queued when new (see flushUploads): one more
   * reference. Throws ENOMEM when full.
   */
  acquire(pfn: number): number {
    let s = this.#byPfn.get(pfn);
    if (s === undefined) {
      const slot = this.#engine.sysmem.alloc();
      this.#pending.push({ slot, pfn });
      this.stats.uploads++;
      s = { slot, gen: this.#ram.gen(pfn), refs: 0, base: null, wantBase: false };
      this.#byPfn.set(pfn, s);
      this.#pfnOfSlot.set(slot, pfn);
    }
    s.refs++;
    return s.slot;
  }

  /**
   * Writes the queued uploads of acquire(): each slot gets its frame's bytes as of now (and
   * that generation), one writeBuffer per run of consecutive slots. Slots released since
   * are skipped; a slot queued twice (released and acquired again) ends with the later frame.
   */
  flushUploads(): void {
    const q = this.#pending;
    if (q.length === 0) return;
    this.#pending = [];
    const pages: { slot: number; data: Uint8Array }[] = [];
    for (let k = 0; k < q.length; k++) {
      const { slot, pfn } = q[k];
      if (this.#pfnOfSlot.get(slot) !== pfn) continue; // released (and maybe reused: queued again)
      this.#byPfn.get(pfn)!.gen = this.#ram.gen(pfn);
      pages.push({ slot, data: this.#ram.data(pfn) });
    }
    const before = this.#engine.sysmem.stats.uploadWrites;
    this.#engine.sysmem.uploadPages(pages);
    this.stats.uploadWrites += this.#engine.sysmem.stats.uploadWrites - before;
  }

  /**
   * The slot is being mapped with a right to write it (write or exclusive): from now on the
   * GPU copy may diverge from the frame, so it needs a merge base before a kernel that
   * writes runs (takeBases).
   */
  mapWritable(slot: number): void {
    const pfn = this.#pfnOfSlot.get(slot);
    if (pfn === undefined) throw new Error(`aperture: mapWritable of unused slot ${slot}`);
    const s = this.#byPfn.get(pfn)!;
    if (s.wantBase) return;
    s.wantBase = true;
    if (s.base === null) this.#needBase.push(s);
  }

  /**
   * Before a kernel that can write runs (after flushUploads): every slot mapped writable
   * since gets its merge base, in one slab (not an ArrayBuffer a page). Its GPU copy is the
   * frame as of `gen` — the GPU never wrote it, it was read-only or not yet run on — so:
   * the frame unchanged since, the frame is the base; changed, the slot is uploaded whole
   * first and that is the base.
   */
  #takeBases(): void {
    const list = this.#needBase;
    if (list.length === 0) return;
    this.#needBase = [];
    const slab = new Uint32Array(list.length * 1024);
    const pool = this.#engine.sysmem;
    let used = 0;
    for (const s of list) {
      const pfn = this.#pfnOfSlot.get(s.slot);
      if (pfn === undefined || this.#byPfn.get(pfn) !== s || s.base !== null) continue; // released, or refreshed since
      const data = this.#ram.data(pfn);
      const gen = this.#ram.gen(pfn);
      if (gen !== s.gen) {
        pool.upload(s.slot, data);
        this.stats.uploadWrites++;
        s.gen = gen;
      }
      const base = slab.subarray(used * 1024, (used + 1) * 1024);
      base.set(words(data));
      used++;
      s.base = base;
    }
  }

  pfnOf(slot: number): number | undefined {
    return this.#pfnOfSlot.get(slot);
  }

  /** Drop a mirror entry's reference; the last frees the slot (write back first). */
  release(slot: number): void {
    const pfn = this.#pfnOfSlot.get(slot);
    if (pfn === undefined) throw new Error(`aperture: release of unused slot ${slot}`);
    const s = this.#byPfn.get(pfn)!;
    if (--s.refs > 0) return;
    this.#byPfn.delete(pfn);
    this.#pfnOfSlot.delete(slot);
    this.#engine.sysmem.free(slot);
  }

  /**
   * CPU → GPU: refresh every mapped copy whose frame the CPU side wrote since. `writes`: a
   * kernel that can write runs next (its writable slots need their merge bases first).
   */
  syncToGpu(writes = true): void {
    this.flushUploads();
    if (writes) {
      this.#takeBases();
      this.#mayBeDirty = true; // the kernel about to run may write: the next write-back looks
    }
    if (this.#epochSeen === this.#ram.epoch) return;
    const pool = this.#engine.sysmem;
    for (const [pfn, s] of this.#byPfn) {
      const gen = this.#ram.gen(pfn);
      if (gen === s.gen) continue;
      const data = this.#ram.data(pfn);
      if (s.base === null) {
        // No merge base (a slot never mapped writable): the GPU copy cannot have diverged, so
        // the whole page goes up. (A sentinel base would miss words the CPU set to it: a
        // store of -1 was lost this way.)
        pool.upload(s.slot, data);
        this.stats.uploadWrites++;
        s.gen = gen;
        this.stats.refreshes++;
        continue;
      }
      const now = words(data);
      const base = s.base;
      // Upload each run of words the CPU changed since the GPU copy was made.
      for (let w = 0; w < 1024;) {
        if (now[w] === base[w]) { w++; continue; }
        let e = w + 1;
        while (e < 1024 && now[e] !== base[e]) e++;
        pool.uploadBytes(s.slot * 4096 + w * 4, data.subarray(w * 4, e * 4));
        base.set(now.subarray(w, e), w);
        w = e;
      }
      s.base = base;
      s.gen = gen;
      this.stats.refreshes++;
    }
    this.#epochSeen = this.#ram.epoch;
  }

  /** Has a kernel that may write run since the last write-back (writeback() has work)? */
  get mayBeDirty(): boolean {
    return this.#mayBeDirty;
  }

  /** GPU → CPU: copy back every slot the GPU wrote. */
  async writeback(): Promise<void> {
    this.flushUploads();
    if (!this.#mayBeDirty) return;
    this.#mayBeDirty = false;
    const pages = await this.#engine.writebackDirty('sysmem');
    for (const { slot, data } of pages) {
      const pfn = this.#pfnOfSlot.get(slot);
      if (pfn === undefined) continue; // freed since: nothing maps it any more
      const s = this.#byPfn.get(pfn)!;
      const cpuAhead = this.#ram.gen(pfn) !== s.gen; // CPU writes not yet in the GPU copy
      const frame = words(this.#ram.data(pfn));
      const gpu = words(data);
      const base = s.base ?? frame.slice();
      let changed = 0;
      for (let w = 0; w < 1024; w++) {
        if (gpu[w] === base[w]) continue;
        frame[w] = gpu[w];
        base[w] = gpu[w];
        changed++;
      }
      s.base = base;
      if (changed > 0) this.#ram.markWritten(pfn);
      // The GPU copy now equals the frame unless the CPU wrote other words meanwhile: then
      // leave the generation behind so the next refresh uploads just those words.
      if (!cpuAhead) s.gen = this.#ram.gen(pfn);
      this.stats.writebacks++;
    }
  }
}
