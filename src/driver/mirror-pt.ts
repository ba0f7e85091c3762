/**
 * One mirror's page table (lib/test_hmm.c's dmirror->pt, an xarray of tagged pfns): the
 * GPU page table of the mirror's engine, what each entry holds (an aperture slot with a
 * coherent copy of a system frame, or a VRAM slot of the device's own memory), fault
 * installation (dmirror_do_fault) and the ONE shootdown (dmirror_do_update) every zap goes
 * through: the invalidate callback, a migration, an aperture reclaim and close.
 *
 * A shootdown on a GPU is more than xa_erase: the entries go from the shadow table (zap),
 * kernels that may still hold old translations are waited for (fence: engine.syncWalkers),
 * what they wrote reaches the CPU (write-back), and only then are the slots released for
 * reuse. The zapped entries reach the GPU's table with the next dispatch's flush (every
 * dispatch that walks the table flushes first, in the same synchronous stretch as its submit).
 *
 * Every method that changes entries expects the caller to hold the mirror's update lock
 * (dmirror->mutex) and, for doFault, to have checked mmu_interval_read_retry.
 */
import type { MirrorEngine } from '../device/mirror-engine.js';
import { PTE_DEVICE, PTE_EXCLUSIVE, PTE_WRITE, type LeafRun, type PteLookup } from '../device/page-table.js';
import { err, HmmError } from '../errors.js';
import { HMM_PFN_VALID, HMM_PFN_WRITE } from '../hmm/pfn.js';
import { PAGE_SIZE, TASK_SIZE } from '../mm/constants.js';
import type { DevPagemap } from '../mm/pagemap.js';
import type { Aperture } from './aperture.js';

const LAST_PAGE = TASK_SIZE / PAGE_SIZE;

export class MirrorPt {
  readonly #engine: MirrorEngine;
  readonly #aperture: Aperture;
  /** The device's memory: its pfns map to VRAM slots (pfn - basePfn). */
  readonly #devmem: DevPagemap;
  /**
   * VRAM slot → mirror page + 1 (0: none), for the device pages this table maps (a typed
   * array over the device's slots: a migration sets and clears one entry per page).
   */
  readonly #devPage: Float64Array;
  /** Page ranges [start, end) of the commands in flight: an aperture reclaim leaves them alone. */
  readonly #pinned = new Set<{ start: number; end: number }>();
  /**
   * Times a full aperture made the table zap the entries outside the commands in flight (an
   * aperture reclaim: not an eviction, which moves device memory home: Devmem.evict).
   */
  #apertureReclaims = 0;
  get apertureReclaims(): number {
    return this.#apertureReclaims;
  }

  constructor(engine: MirrorEngine, aperture: Aperture, devmem: DevPagemap) {
    this.#engine = engine;
    this.#aperture = aperture;
    this.#devmem = devmem;
    this.#devPage = new Float64Array(devmem.npages);
  }

  lookup(page: number): PteLookup | null {
    return this.#engine.pt.lookup(page);
  }

  /** Does the table map `page` with at least `rank` (0 read, 1 write, 2 atomic)? */
  isMapped(page: number, rank: number): boolean {
    const e = this.#engine.pt.lookup(page);
    if (e === null) return false;
    return rank === 0 || (rank === 1 ? (e.flags & PTE_WRITE) !== 0 : (e.flags & PTE_EXCLUSIVE) !== 0);
  }

  /** Does the table map the device page in VRAM slot `slot`? */
  mapsDevicePage(slot: number): boolean {
    return this.#devPage[slot] > 0;
  }

  /** The first page in [page, page + npages) mapped exclusive, or null (dmirror_check_atomic). */
  firstExclusive(page: number, npages: number): number | null {
    const leaf = this.#engine.pt.findLeaf(page, npages, (l) => (l.flags & PTE_EXCLUSIVE) !== 0);
    return leaf === null ? null : Math.max(leaf.page, page);
  }

  /** The pfn the entry at `page` reaches (a frame through the aperture, or a device pfn), or null. */
  /** The audit: entries in [first, last) and those not reaching the page `cpu(page)` names (a frame, a device page, or -1). */
  audit(first: number, last: number, cpu: (page: number) => number): { checked: number; stale: number[] } {
    const stale: number[] = [];
    let checked = 0;
    for (let p = first; p < last; p++) {
      const mirrored = this.pfnAt(p);
      if (mirrored === null) continue;
      checked++;
      if (mirrored !== cpu(p)) stale.push(p * PAGE_SIZE);
    }
    return { checked, stale };
  }

  pfnAt(page: number): number | null {
    const e = this.#engine.pt.lookup(page);
    if (e === null) return null;
    return (e.flags & PTE_DEVICE) !== 0 ? this.#devmem.basePfn + e.slot : this.#aperture.pfnOf(e.slot) ?? null;
  }

  /**
   * The VRAM slot each page of [page, page + npages) maps, or null when some page maps
   * nothing or a system frame (dmirror_do_read's xa_load of each page, for pages that must
   * all be this device's).
   */
  deviceSlots(page: number, npages: number): number[] | null {
    const slots = new Array<number>(npages);
    // One scan of the tables (not a root descent per page), stopping at a page that has no
    // device leaf.
    return this.#engine.pt.leafSlots(page, npages, PTE_DEVICE, slots) ? slots : null;
  }

  // ---------------------------------------------------------------------------------
  // Faults (up).

  /**
   * dmirror_do_fault: install what hmm_range_fault returned for the pages from `start`.
   * Device-private pages of this device map to their VRAM slot; system pages to an aperture
   * slot holding a coherent copy (a full aperture is evicted from under the lock, so the
   * sequence check stays valid). `extra`: PTE_EXCLUSIVE for dmirror_atomic_map.
   *
   * New aperture slots' bytes are uploaded by the next dispatch's syncToGpu(), not here: the
   * copy stands for the device's own accesses over the link, so it belongs to the replay,
   * not to fault servicing, which only writes entries (as a real driver's does).
   * Returns the contiguous runs of pages written (the "mirror writes" of the batch records).
   */
  async doFault(start: number, pfns: Uint32Array, flags: Uint8Array, extra = 0): Promise<number> {
    const pt = this.#engine.pt;
    const base = start / PAGE_SIZE;
    let runs = 0;
    let scanned = 0;
    for (let i = 0; i < pfns.length; i++) {
      const f = flags[i];
      if ((f & HMM_PFN_VALID) === 0) continue;
      if (i === 0 || (flags[i - 1] & HMM_PFN_VALID) === 0) runs++;
      const page = base + i;
      const pfn = pfns[i];
      const prot = ((f & HMM_PFN_WRITE) !== 0 ? PTE_WRITE : 0) | extra;
      // (A run that cannot go in one piece is not scanned again page by page.)
      const n = i < scanned ? 0 : this.#deviceRun(pfns, flags, i);
      if (i >= scanned) scanned = i + Math.max(n, 1);
      if (n > 1 && pt.mapsNone(page, n)) {
        // A run of our device pages over nothing mapped (a migration's new pages): what the
        // per-page path below does for each, one table descent per 512 pages.
        const slotOf = (k: number): number => pfns[i + k] - this.#devmem.basePfn;
        pt.mapRun(page, n, slotOf, (k) => ((flags[i + k] & HMM_PFN_WRITE) !== 0 ? PTE_WRITE : 0) | extra | PTE_DEVICE);
        for (let k = 0; k < n; k++) this.#devPage[slotOf(k)] = page + k + 1;
        i += n - 1;
        continue;
      }
      const old = pt.lookup(page);
      // Our device-private pages map their VRAM slot; a coherent page, like a system frame,
      // is reached through the aperture (the port's coherent link).
      if (this.#devmem.contains(pfn) && !this.#devmem.coherent) {
        const slot = pfn - this.#devmem.basePfn;
        if (old !== null && !((old.flags & PTE_DEVICE) !== 0 && old.slot === slot)) this.#release(pt.unmap(page, 1));
        pt.map(page, slot, prot | PTE_DEVICE);
        this.#devPage[slot] = page + 1;
        continue;
      }
      if (old !== null && (old.flags & PTE_DEVICE) === 0 && this.#aperture.pfnOf(old.slot) === pfn) {
        if ((prot & (PTE_WRITE | PTE_EXCLUSIVE)) !== 0) this.#aperture.mapWritable(old.slot);
        pt.map(page, old.slot, prot); // same frame, new permissions
        continue;
      }
      if (old !== null) this.#release(pt.unmap(page, 1));
      let slot: number;
      try {
        slot = this.#aperture.acquire(pfn);
      } catch (e) {
        if (!(e instanceof HmmError && e.code === 'ENOMEM')) throw e;
        slot = await this.#acquireReclaiming(pfn);
      }
      if ((prot & (PTE_WRITE | PTE_EXCLUSIVE)) !== 0) this.#aperture.mapWritable(slot);
      pt.map(page, slot, prot);
    }
    return runs;
  }

  /** Pages from i on that are valid and our own device-private pages (doFault maps their VRAM slots). */
  #deviceRun(pfns: Uint32Array, flags: Uint8Array, i: number): number {
    if (this.#devmem.coherent) return 0;
    let n = 0;
    while (i + n < pfns.length && (flags[i + n] & HMM_PFN_VALID) !== 0 && this.#devmem.contains(pfns[i + n])) n++;
    return n;
  }

  /** Runs fn with pages [page, page + npages) safe from eviction (a command in flight). */
  async withPinned<T>(page: number, npages: number, fn: () => Promise<T>): Promise<T> {
    const pin = { start: page, end: page + npages };
    this.#pinned.add(pin);
    try {
      return await fn();
    } finally {
      this.#pinned.delete(pin);
    }
  }

  // ---------------------------------------------------------------------------------
  // Invalidations (down): every zap ends in shootdown().

  /**
   * dmirror_do_update: zap pages [first, last). `keepDevice`: entries of this device's own
   * pages stay (a migration this device started: the migrating mirror maps its new pages
   * itself, and device pages leaving are dropped by zapDevicePages).
   */
  async invalidate(first: number, last: number, keepDevice = false): Promise<void> {
    const pt = this.#engine.pt;
    if (!keepDevice) return this.shootdown(pt.unmapRuns(first, last - first));
    if (last > first && pt.covers(first, last - first, PTE_DEVICE)) return; // device entries only: nothing goes
    // Only the system-memory entries go: find their runs (a read-only walk) and zap those,
    // rather than zapping everything and mapping every device entry back a page at a time.
    const runs: [number, number][] = [];
    pt.findLeaf(first, last - first, (l) => {
      if ((l.flags & PTE_DEVICE) !== 0) return false;
      const top = runs.length > 0 ? runs[runs.length - 1] : null;
      if (top !== null && top[0] + top[1] === l.page) top[1] += l.npages;
      else runs.push([l.page, l.npages]);
      return false; // visit every leaf
    });
    const system: LeafRun[] = [];
    for (const [page, n] of runs) for (const l of pt.unmapRuns(page, n)) system.push(l);
    return this.shootdown(system);
  }

  /** Zap the entries of these VRAM slots (their device pages are leaving for system memory). */
  async zapDevicePages(slots: Iterable<number>): Promise<void> {
    const pages: number[] = [];
    for (const slot of slots) {
      const page = this.#devPage[slot] - 1;
      if (page >= 0) pages.push(page);
    }
    // (A migration's slots come in page order: sorted already, no sort.)
    let sorted = true;
    for (let k = 1; k < pages.length && sorted; k++) sorted = pages[k - 1] < pages[k];
    if (!sorted) pages.sort((a, b) => a - b);
    const leaves: LeafRun[] = [];
    // One table walk per run of consecutive pages (a migration's are mostly one run).
    for (let k = 0; k < pages.length;) {
      let n = 1;
      while (k + n < pages.length && pages[k + n] === pages[k] + n) n++;
      for (const l of this.#engine.pt.unmapRuns(pages[k], n)) leaves.push(l);
      k += n;
    }
    return this.shootdown(leaves); // one fence for all of them
  }

  /** Zap the pages where `which[i]` is set, from page `first` (a migration's sources): a walk per run. */
  async zapPages(first: number, which: Uint8Array): Promise<void> {
    const leaves: LeafRun[] = [];
    for (let i = 0; i < which.length;) {
      if (which[i] === 0) { i++; continue; }
      let n = 1;
      while (i + n < which.length && which[i + n] !== 0) n++;
      for (const l of this.#engine.pt.unmapRuns(first + i, n)) leaves.push(l);
      i += n;
    }
    return this.shootdown(leaves);
  }

  /** Zap everything (close). */
  zapAll(): Promise<void> {
    return this.invalidate(0, LAST_PAGE);
  }

  /**
   * The shootdown once `leaves` are off the shadow table: fence, write back, release.
   * The fence is syncWalkers(): it waits only when a round of this engine may still be
   * running (between commands, and between a command's rounds, nothing on the GPU holds a
   * translation). The callback (dmirror_interval_invalidate → dmirror_do_update;
   * nouveau_svm_range_invalidate → nouveau_svmm_invalidate's PTE clear + TLB flush) must only
   * return with no device access left through the old entries. onSubmittedWorkDone() covers the
   * work submitted before the call — exactly the kernels that may hold them. The zap itself
   * is not pushed here: the GPU's table is read only by dispatches (a round, a probe), each of
   * which flushes the shadow's changes with writeBuffer in the same synchronous stretch as its
   * submit (MirrorEngine.runRound, probe), so no kernel submitted after this call can see an
   * old entry, and the zaps of many shootdowns go in one write (as mmu_gather batches TLB
   * work). What may not happen while an old kernel runs waits for the fence: the write-back
   * (only when a writing kernel ran) and the slots' release for reuse. On a lost device what
   * the GPU held is lost with it and the CPU side goes on: the slots are released all the same.
   */
  async shootdown(leaves: readonly LeafRun[]): Promise<void> {
    if (leaves.length === 0) return;
    // (One async frame, no closure: this is the latency of every invalidation.)
    let fence: Promise<void> | null = null;
    try {
      this.#engine.checkAlive('shootdown'); // a destroyed engine holds nothing to write back
      fence = this.#engine.syncWalkers();
      await fence;
      // Queued uploads go out with either (no kernel in flight reads a slot not yet uploaded:
      // every dispatch is preceded by syncToGpu).
      if (this.#aperture.mayBeDirty) await this.#aperture.writeback();
      else this.#aperture.flushUploads(); // (what writeback() does first)
    } catch (e) {
      fence?.catch(() => undefined); // a flush that threw left it unawaited
      if (!(e instanceof HmmError && e.code === 'ENODEV')) throw e;
    }
    this.#release(leaves);
  }

  /** Only the write-back (a migration this mirror runs copies current bytes). */
  writeback(): Promise<void> {
    return gpuSafe(() => this.#aperture.writeback());
  }

  /** Frees what the leaves held: a run's slots (npages of them), a huge leaf's as the pool holds it. */
  #release(leaves: readonly LeafRun[]): void {
    for (const l of leaves) {
      if ((l.flags & PTE_DEVICE) !== 0) this.#devPage.fill(0, l.slot, l.slot + l.npages);
      else if (l.huge) this.#aperture.release(l.slot);
      else for (let k = 0; k < l.npages; k++) this.#aperture.release(l.slot + k);
    }
  }

  /**
   * The aperture is full: zap every entry outside the pinned ranges (the commands in
   * flight, an exclusive grant) so their slots can be reused; those pages simply fault
   * again when a later command touches them. Returns the slots it freed.
   */
  async #reclaimAperture(): Promise<number> {
    const keep = [...this.#pinned].sort((a, b) => a.start - b.start);
    const leaves: LeafRun[] = [];
    let from = 0;
    for (const r of keep) {
      if (r.start > from) leaves.push(...this.#engine.pt.unmapRuns(from, r.start - from));
      from = Math.max(from, r.end);
    }
    if (from < LAST_PAGE) leaves.push(...this.#engine.pt.unmapRuns(from, LAST_PAGE - from));
    this.#apertureReclaims++;
    const before = this.#aperture.freeSlots;
    await this.shootdown(leaves);
    return this.#aperture.freeSlots - before;
  }

  /** An aperture slot holding `pfn` after a reclaim (only this path of doFault awaits). */
  async #acquireReclaiming(pfn: number): Promise<number> {
    if (await this.#reclaimAperture() === 0) {
      throw err('ENOMEM', `aperture full: all ${this.#engine.sysmem.slots} slots hold pages of commands in flight`);
    }
    return this.#aperture.acquire(pfn);
  }
}

/**
 * GPU work that may fail only because the device is gone: on a lost device, what the GPU
 * held is lost with it, and the CPU side must go on (ENODEV is swallowed here).
 */
async function gpuSafe(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof HmmError && e.code === 'ENODEV')) throw e;
  }
}
