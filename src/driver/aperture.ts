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
 */
import type { MirrorEngine } from '../device/mirror-engine.js';
import type { PhysMem } from '../mm/frames.js';

interface SlotInfo {
  slot: number;
  /** PhysMem.gen of the frame when the GPU copy was last made equal to it. */
  gen: number;
  /** Mirror entries using it. */
  refs: number;
}

export interface ApertureStats {
  uploads: number;
  refreshes: number;
  writebacks: number;
}

export class Aperture {
  readonly #engine: MirrorEngine;
  readonly #ram: PhysMem;
  readonly #byPfn = new Map<number, SlotInfo>();
  readonly #pfnOfSlot = new Map<number, number>();
  #epochSeen = -1;
  /** Set when a kernel that can write ran since the last write-back. */
  mayBeDirty = false;
  readonly stats: ApertureStats = { uploads: 0, refreshes: 0, writebacks: 0 };

  constructor(engine: MirrorEngine, ram: PhysMem) {
    this.#engine = engine;
    this.#ram = ram;
  }

  get mapped(): number {
    return this.#byPfn.size;
  }

  get freeSlots(): number {
    return this.#engine.aperture.freeSlots;
  }

  /** The slot holding `pfn`, uploading it when new: one more reference. Throws ENOMEM when full. */
  acquire(pfn: number): number {
    let s = this.#byPfn.get(pfn);
    if (s === undefined) {
      const slot = this.#engine.aperture.alloc();
      this.#engine.aperture.upload(slot, this.#ram.data(pfn));
      this.stats.uploads++;
      s = { slot, gen: this.#ram.gen[pfn], refs: 0 };
      this.#byPfn.set(pfn, s);
      this.#pfnOfSlot.set(slot, pfn);
    }
    s.refs++;
    return s.slot;
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
    this.#engine.aperture.free(slot);
  }

  /** CPU → GPU: refresh every mapped copy whose frame the CPU side wrote since. */
  syncToGpu(): void {
    if (this.#epochSeen === this.#ram.epoch) return;
    for (const [pfn, s] of this.#byPfn) {
      const gen = this.#ram.gen[pfn];
      if (gen === s.gen) continue;
      this.#engine.aperture.upload(s.slot, this.#ram.data(pfn));
      s.gen = gen;
      this.stats.refreshes++;
    }
    this.#epochSeen = this.#ram.epoch;
  }

  /** GPU → CPU: copy back every slot the GPU wrote. */
  async writeback(): Promise<void> {
    if (!this.mayBeDirty) return;
    this.mayBeDirty = false;
    const pages = await this.#engine.writebackDirty('aperture');
    for (const { slot, data } of pages) {
      const pfn = this.#pfnOfSlot.get(slot);
      if (pfn === undefined) continue; // freed since: nothing maps it any more
      this.#ram.data(pfn).set(data);
      this.#ram.markWritten(pfn);
      // Our copy is the newest: don't re-upload what we just wrote back.
      this.#byPfn.get(pfn)!.gen = this.#ram.gen[pfn];
      this.stats.writebacks++;
    }
  }
}
