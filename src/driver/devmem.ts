/**
 * A mirror device's private memory (lib/test_hmm.c's dmirror_devmem_*): a pfn range
 * registered with the mm (memremap_pages) whose data lives in a GPU buffer, one VRAM slot
 * per device pfn — page allocation, the CPU fault that migrates a page back
 * (dmirror_devmem_fault), the copies either way, eviction and page_free.
 *
 * Data flows down only: when a device page leaves, the mirrors that map it are told to zap
 * it (DevmemMapper); nothing here is set by a mirror.
 */
import type { PagePool } from '../device/page-pool.js';
import { err, HmmError } from '../errors.js';
import { PAGE_SIZE, PMD_PAGES, PMD_SIZE } from '../mm/constants.js';
import type { Machine } from '../mm/machine.js';
import {
  MIGRATE_PFN_COMPOUND, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, migratePfn,
  migratePfnFlags, migratePfnToPfn, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, type MigrateVma,
} from '../mm/migrate.js';
import type { MmStruct } from '../mm/mm.js';
import type { DevicePrivateFault, DevPagemap } from '../mm/pagemap.js';
import { isPresent } from '../mm/page-table.js';
import { entryAt } from '../mm/pagewalk.js';

/** What device memory needs of a mirror that may map its pages. */
export interface DevmemMapper {
  /** Does the mirror map the device page in VRAM slot `slot`? */
  mapsDevicePage(slot: number): boolean;
  /** Zap the mirror's entries for these slots (their pages are leaving). */
  dropDevicePages(slots: Iterable<number>): Promise<void>;
  /**
   * The CPU faulted on our device page at addr of mm (dmirror_devmem_fault): told before the
   * page moves home and after (a migration policy attached to the mirror decides and records).
   */
  beforeCpuFault(mm: MmStruct, addr: number): { start: number; end: number } | undefined;
  afterCpuFault(mm: MmStruct, addr: number): void;
  /**
   * HMM_DMIRROR_FLAG_FAIL_ALLOC for a CPU fault on a device page the mirror maps: true (and
   * the flag cleared) when the mirror asked its next allocation to fail.
   */
  takeFailAlloc(): boolean;
}

/** A 4 KiB page of zeroes (the source of a hole's copy); never written. */
const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

export class Devmem {
  readonly pagemap: DevPagemap;
  readonly #machine: Machine;
  readonly #vram: () => PagePool | null;
  readonly #mappers: ReadonlySet<DevmemMapper>;
  /** Device pages migrated back to RAM on a CPU fault (dmirror_devmem_fault). */
  #cpuFaults = 0;
  get cpuFaults(): number {
    return this.#cpuFaults;
  }
  /**
   * mappedFrees: device pages whose last reference went while a mirror still mapped them —
   * each one a bug (an entry installed outside read_begin/read_retry), zapped before reuse.
   */
  readonly stats = { mappedFrees: 0 };

  /**
   * `owner`: the pagemap owner (the device: hmm_range_fault's dev_private_owner and the
   * MIGRATE invalidations' owner); `vram`: the device's memory once the GPU is up;
   * `mappers`: the mirrors open on the device.
   */
  constructor(machine: Machine, owner: object, npages: number, vram: () => PagePool | null, mappers: ReadonlySet<DevmemMapper>, coherent = false) {
    this.#machine = machine;
    this.#vram = vram;
    this.#mappers = mappers;
    // A coherent device (test_hmm's MEMORY_DEVICE_COHERENT zone): no migrate_to_ram, the CPU
    // maps its pages; the VRAM pool is only the allocator of its pfns, the bytes are the
    // pagemap's CPU view, which mirrors reach through their apertures (see coherentCopy).
    this.pagemap = machine.registerPagemap({
      npages,
      owner,
      ...(coherent ? { type: 'coherent' as const } : { migrateToRam: (f: DevicePrivateFault) => this.#devmemFault(f) }),
      pageFree: (pfn, n) => this.#pageFree(pfn, n),
      splitFolio: (head) => this.#vram()?.splitHuge(this.slotOf(head)),
    });
  }

  get coherent(): boolean {
    return this.pagemap.coherent;
  }

  #pool(): PagePool {
    const v = this.#vram();
    if (v === null) throw err('ENODEV', 'device memory: the device is not opened yet');
    return v;
  }

  /** The VRAM slot of a device pfn of ours. */
  slotOf(pfn: number): number {
    return pfn - this.pagemap.basePfn;
  }

  /** dmirror_devmem_alloc_page(): a free device page with one reference. ENOMEM when full. */
  allocPage(): number {
    const pfn = this.pagemap.basePfn + this.#pool().alloc();
    this.pagemap.pageInit(pfn);
    return pfn;
  }

  /**
   * dmirror_devmem_alloc_page(is_large): a 2 MiB device folio (512 aligned VRAM slots) with
   * one reference, or null when no free 2 MiB run is left (or `fail` says the mirror's
   * HMM_DMIRROR_FLAG_FAIL_ALLOC is consumed by this allocation).
   */
  allocHugePage(fail?: () => boolean): number | null {
    // A coherent folio is mapped by a present PMD (migrate_vma_insert_huge_pmd_page,
    // remove_migration_pmd); the CPU reaches it in place (see migrate-huge.ts).
    if (fail?.() === true) return null;
    let slot: number;
    try {
      slot = this.#pool().allocHuge();
    } catch (e) {
      if (e instanceof HmmError && e.code === 'ENOMEM') return null;
      throw e;
    }
    const head = this.pagemap.basePfn + slot;
    this.pagemap.pageInitHuge(head);
    return head;
  }

  /**
   * dmirror_migrate_alloc_and_copy (system → device): for each collected page, a device
   * page holding its bytes (a hole gets a zeroed page), dst entries for migrate_vma_pages.
   * A compound source (a THP or a 2 MiB hole) gets one 2 MiB device folio; with none free
   * (or FAIL_ALLOC, `failAlloc`) it falls back to 512 order-0 pages and migrate_vma_pages
   * splits the source. A page it cannot allocate (device memory full) is skipped, as test_hmm
   * skips it, and the rest migrate. Pages already in device memory stay where they are.
   */
  allocAndCopy(src: ArrayLike<number>, vmaWrite: boolean, failAlloc?: () => boolean): number[] {
    const ram = this.#machine.ram;
    const dst = new Array<number>(src.length).fill(0);
    const uploads: { slot: number; data: Uint8Array }[] = [];
    // Frames that lie back to back in RAM going to consecutive slots are copied as one run
    // (slot, first frame, pages), without a view or a record per page; the rest go through
    // `uploads` (PagePool.uploadPages gathers them). A coherent device takes every page there.
    const runs: number[] = [];
    const copy = (slot: number, spfn: number | null): void => {
      const r = runs.length - 3;
      if (spfn !== null && !this.coherent) {
        if (r >= 0 && runs[r] + runs[r + 2] === slot && runs[r + 1] + runs[r + 2] === spfn && spfn % PMD_PAGES !== 0) runs[r + 2]++;
        else runs.push(slot, spfn, 1);
        return;
      }
      uploads.push({ slot, data: spfn !== null ? ram.data(spfn) : ZERO_PAGE });
    };
    try {
      for (let i = 0; i < src.length; i++) {
        const sf = migratePfnFlags(src[i]);
        if ((sf & MIGRATE_PFN_MIGRATE) === 0) continue;
        const spfn = (sf & MIGRATE_PFN_VALID) !== 0 ? migratePfnToPfn(src[i]) : null;
        if (spfn !== null && spfn >= ram.npages) continue; // already device memory
        const write = (sf & MIGRATE_PFN_WRITE) !== 0 || (spfn === null && vmaWrite) ? MIGRATE_PFN_WRITE : 0;
        const n = (sf & MIGRATE_PFN_COMPOUND) !== 0 ? PMD_PAGES : 1;
        const head = n === PMD_PAGES ? this.allocHugePage(failAlloc) : null;
        if (head !== null) {
          dst[i] = migratePfn(head) + MIGRATE_PFN_COMPOUND + write;
          for (let k = 0; k < n; k++) copy(this.slotOf(head) + k, spfn !== null ? spfn + k : null);
          i += n - 1;
          continue;
        }
        for (let k = 0; k < n; k++) {
          let dpfn: number;
          try {
            dpfn = this.allocPage();
          } catch (e) {
            if (e instanceof HmmError && e.code === 'ENOMEM') continue; // dmirror_devmem_alloc_page() == NULL
            throw e;
          }
          dst[i + k] = migratePfn(dpfn) + write;
          // The mirror's own aperture may hold newer bytes than the frame: they were written
          // back at the last command end or invalidation, so the frame is current here.
          copy(this.slotOf(dpfn), spfn !== null ? spfn + k : null);
        }
        i += n - 1;
      }
      if (this.coherent) this.#coherentStore(uploads);
      else {
        const pool = this.#pool();
        for (let r = 0; r < runs.length; r += 3) {
          if (runs[r + 2] === 1) uploads.push({ slot: runs[r], data: ram.data(runs[r + 1]) });
          else pool.upload(runs[r], ram.frames(runs[r + 1], runs[r + 2]));
        }
        pool.uploadPages(uploads);
      }
    } catch (e) {
      this.putAll(dst); // the device lost, say: nothing was handed to migrate_vma_pages
      throw e;
    }
    return dst;
  }

  /**
   * The copy into coherent device pages: the CPU view of each page gets the bytes (the
   * kernel's copy engine writing device memory the CPU can see; a write generation for the
   * apertures that will map it).
   */
  #coherentStore(pages: readonly { slot: number; data: Uint8Array }[]): void {
    const core = this.#machine.core;
    for (const { slot, data } of pages) {
      const pfn = this.pagemap.basePfn + slot;
      this.pagemap.data(pfn).set(data);
      core.markWritten(pfn);
    }
  }

  /** Drops the device pages of `dst` (a migration that never reached migrate_vma_pages). */
  putAll(dst: number[]): void {
    for (let i = 0; i < dst.length; i++) if (dst[i] !== 0) this.pagemap.put(migratePfnToPfn(dst[i]));
    dst.fill(0);
  }

  /**
   * dmirror_devmem_fault(), the pagemap's migrate_to_ram: the CPU touched one of our pages.
   * Migrate that page back to a fresh system frame; every mirror drops its entry for it.
   */
  async #devmemFault(f: DevicePrivateFault): Promise<void> {
    this.#cpuFaults++;
    let start = f.addr - (f.addr % PAGE_SIZE);
    let end = start + PAGE_SIZE;
    // The mirror whose policy owns the page may name the range to bring home with it (UVM's
    // 64 KiB big page), clipped here to the faulting VMA. Nothing: the one page, as test_hmm does.
    let want: { start: number; end: number } | undefined;
    for (const m of this.#mappers) want ??= m.beforeCpuFault(f.mm, f.addr);
    const vma = f.mm.vmas.lookup(f.addr);
    let flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
    const haddr = f.addr - (f.addr % PMD_SIZE);
    if (this.pagemap.isHead(this.pagemap.head(f.pfn)) && vma !== undefined && haddr >= vma.start && haddr + PMD_SIZE <= vma.end) {
      // A device-private THP (dmirror_devmem_fault with folio_order 9): the folio comes home
      // whole, MIGRATE_VMA_SELECT_COMPOUND over its 2 MiB.
      start = haddr;
      end = haddr + PMD_SIZE;
      flags |= MIGRATE_VMA_SELECT_COMPOUND;
    } else if (want !== undefined && vma !== undefined && want.start <= start && want.end >= end) {
      // migrate_vma_setup collects only our device-private pages in the range (SELECT_DEVICE_PRIVATE).
      start = Math.max(want.start, vma.start);
      end = Math.min(want.end, vma.end);
    }
    const slot = this.slotOf(f.pfn);
    const owners = [...this.#mappers].filter((m) => m.mapsDevicePage(slot));
    const failAlloc = (): boolean => owners.some((m) => m.takeFailAlloc());
    try {
      const mig = await migrateVmaSetup(f.mm, {
        start, end, flags, pgmapOwner: this.pagemap.owner, faultPage: f.pfn,
      });
      try {
        const dst = await this.copyToRam(mig.src, false, failAlloc);
        await migrateVmaPages(mig, dst);
      } finally {
        await migrateVmaFinalize(mig);
      }
    } finally {
      for (const m of this.#mappers) m.afterCpuFault(f.mm, f.addr);
    }
  }

  /**
   * dmirror_devmem_fault_alloc_and_copy (device → system): for each collected device page,
   * a new system frame holding its bytes; our mirrors' entries for the old device page are
   * zapped (migration we start is not echoed to us). Out of frames, `partial` (MIGRATE_TO_SYS)
   * skips the page as the kernel does when alloc_page_vma fails: it stays in device memory
   * (dst 0: migrate_vma_finalize restores it). Otherwise (a CPU fault) ENOMEM, with every
   * frame allocated so far freed: a failed migration leaves no frame behind.
   */
  async copyToRam(src: ArrayLike<number>, partial = false, failAlloc?: () => boolean): Promise<number[]> {
    const dst = new Array<number>(src.length).fill(0);
    const slots: number[] = [];
    /** Collected sources: index in src and pages (1 or 512); a unit's slots follow the previous unit's in `slots`. */
    const unitI: number[] = [];
    const unitN: number[] = [];
    for (let i = 0; i < src.length; i++) {
      const s = src[i];
      if ((migratePfnFlags(s) & (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_VALID)) !== (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_VALID)) continue;
      const pfn = migratePfnToPfn(s);
      if (!this.pagemap.contains(pfn)) continue;
      const n = (migratePfnFlags(s) & MIGRATE_PFN_COMPOUND) !== 0 ? PMD_PAGES : 1;
      unitI.push(i);
      unitN.push(n);
      for (let k = 0; k < n; k++) slots.push(this.slotOf(pfn) + k);
    }
    if (slots.length === 0) return dst;
    if (this.coherent) return this.#coherentToRam(src, unitI, dst, partial);
    for (const m of this.#mappers) await m.dropDevicePages(slots);
    const ram = this.#machine.ram;
    const freeAll = (): void => {
      for (let k = 0; k < dst.length; k++) if (dst[k] !== 0) ram.put(migratePfnToPfn(dst[k]));
      dst.fill(0);
    };
    // The device pages go straight from the mapped staging buffer into the new frames (one
    // copy of the bytes, as the kernel's copy engine writes the destination pages).
    await this.#pool().readbackWith(slots, (bytes) => {
      // Back-to-back frames taking back-to-back bytes are copied as one run (first frame,
      // byte offset, pages), not a page at a time.
      let runFrame = -1;
      let runOff = 0;
      let runN = 0;
      const flush = (): void => {
        if (runN > 0) ram.frames(runFrame, runN).set(bytes.subarray(runOff, runOff + runN * PAGE_SIZE));
        runN = 0;
      };
      const copy = (frame: number, off: number): void => {
        if (runN > 0 && frame === runFrame + runN && off === runOff + runN * PAGE_SIZE && frame % PMD_PAGES !== 0) {
          runN++;
          return;
        }
        flush();
        runFrame = frame;
        runOff = off;
        runN = 1;
      };
      for (let u = 0, off = 0; u < unitI.length; off += unitN[u] * PAGE_SIZE, u++) {
        const i = unitI[u];
        if (unitN[u] === PMD_PAGES && failAlloc?.() !== true) {
          // vma_alloc_folio(order 9); none free: order-0 pages (the source gets split).
          let head = -1;
          try {
            head = ram.allocHuge();
          } catch (e) {
            if (!(e instanceof HmmError && e.code === 'ENOMEM')) throw e;
          }
          if (head >= 0) {
            ram.hugeData(head).set(bytes.subarray(off, off + PMD_SIZE));
            ram.markWritten(head, PMD_PAGES);
            dst[i] = migratePfn(head) + MIGRATE_PFN_COMPOUND;
            continue;
          }
        }
        for (let k = 0; k < unitN[u]; k++) {
          let frame: number;
          try {
            frame = ram.alloc();
          } catch (e) {
            if (partial && e instanceof HmmError && e.code === 'ENOMEM') continue;
            freeAll();
            throw e;
          }
          copy(frame, off + k * PAGE_SIZE);
          ram.markWritten(frame);
          dst[i + k] = migratePfn(frame);
        }
      }
      flush();
    });
    return dst;
  }

  /**
   * copyToRam of coherent pages: the CPU reads each one in place (the mirrors mapped it
   * through their apertures; the MIGRATE invalidation already wrote back and zapped them).
   */
  #coherentToRam(src: ArrayLike<number>, unitI: readonly number[], dst: number[], partial: boolean): number[] {
    const ram = this.#machine.ram;
    for (const i of unitI) {
      let frame: number;
      try {
        frame = ram.alloc();
      } catch (e) {
        if (partial && e instanceof HmmError && e.code === 'ENOMEM') continue; // stays on the device
        for (let k = 0; k < dst.length; k++) if (dst[k] !== 0) ram.put(migratePfnToPfn(dst[k]));
        dst.fill(0);
        throw e;
      }
      ram.data(frame).set(this.pagemap.data(migratePfnToPfn(src[i])));
      ram.markWritten(frame);
      dst[i] = migratePfn(frame);
    }
    return dst;
  }

  /**
   * dmirror_do_read after a migration to coherent memory: test_hmm's mirror entry for a
   * coherent page is the device page itself (BACKING_PAGE), so the device reads it in place.
   * The bytes of [start, start + npages) when every page is a present PTE of one of our
   * coherent pages, else null (a page the migration skipped: the read command decides). Not
   * through the mirror's aperture, which may hold fewer pages than one migration moves: its
   * reclaim would leave pages "not mirrored" (ENOENT) that the kernel's xarray still holds.
   * Synchronous: nothing moves while it copies. Caller holds the mmap lock.
   */
  coherentRead(mm: MmStruct, start: number, npages: number): Uint8Array | null {
    if (!this.coherent) return null;
    const out = new Uint8Array(npages * PAGE_SIZE);
    for (let i = 0; i < npages; i++) {
      const e = entryAt(mm, start + i * PAGE_SIZE);
      if (e === null || !isPresent(e.flags) || !this.pagemap.contains(e.pfn)) return null;
      out.set(this.pagemap.data(e.pfn), i * PAGE_SIZE);
    }
    return out;
  }

  /**
   * dmirror_migrate_to_system for one VMA piece of `mm`: every page of ours in [start, end)
   * goes back to a new system frame. Caller holds the mmap read lock. Returns pages moved.
   */
  evict(mm: MmStruct, start: number, end: number, failAlloc?: () => boolean): Promise<number> {
    return this.evictPieces(mm, [{ start, end }], failAlloc);
  }

  /**
   * evict() over several pieces (each inside one VMA) with one copy for all of them: every
   * piece is collected (migrate_vma_setup), then all their device pages come back in one
   * readback — one GPU command and one map, not one per piece — then each piece is paged
   * and finalized. (The kernel's migrate_device_range / a driver's batched copy-engine
   * push: the 512-page step is test_hmm's loop, not a limit of the copy.) Caller holds the
   * mmap read lock. Returns pages moved.
   */
  async evictPieces(mm: MmStruct, pieces: readonly { start: number; end: number }[], failAlloc?: () => boolean): Promise<number> {
    // test_hmm's dmirror_migrate_to_system selects both kinds of device memory.
    const flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_DEVICE_COHERENT | MIGRATE_VMA_SELECT_COMPOUND;
    const migs: MigrateVma[] = [];
    let handed = 0; // migs[0 .. handed) got their destinations (migrate_vma_pages)
    let dst: number[] = [];
    let moved = 0;
    try {
      for (const p of pieces) migs.push(await migrateVmaSetup(mm, { start: p.start, end: p.end, flags, pgmapOwner: this.pagemap.owner }));
      const src = new Float64Array(migs.reduce((n, m) => n + m.npages, 0));
      let off = 0;
      for (const m of migs) {
        src.set(m.src, off);
        off += m.npages;
      }
      dst = await this.copyToRam(src, true, failAlloc);
      for (const d of dst) if (d !== 0) moved += (migratePfnFlags(d) & MIGRATE_PFN_COMPOUND) !== 0 ? PMD_PAGES : 1;
      off = 0;
      for (const m of migs) {
        const d = dst.slice(off, off + m.npages);
        off += m.npages;
        handed++;
        await migrateVmaPages(m, d);
      }
    } finally {
      // Frames of pieces that never reached migrate_vma_pages go back (nothing maps them).
      let off = 0;
      for (let k = 0; k < migs.length; k++) {
        if (k >= handed) for (let i = off; i < off + migs[k].npages && i < dst.length; i++) if (dst[i] !== 0) this.#machine.ram.put(migratePfnToPfn(dst[i]));
        off += migs[k].npages;
      }
      for (const m of migs) await migrateVmaFinalize(m);
    }
    return moved;
  }

  /**
   * HMM_DMIRROR_RELEASE (dmirror_device_evict_chunk): every page of this device's memory,
   * in whatever process maps it, goes back to system memory. The kernel walks the pfns
   * (migrate_device_range); we walk every live address space for entries of ours.
   */
  async evictAll(): Promise<number> {
    let moved = 0;
    for (const p of [...this.#machine.processes.values()]) {
      const mm = p.mm;
      if (mm.exited) continue;
      await mm.lock.readLock();
      try {
        if (mm.exited) continue;
        for (const v of [...mm.vmas]) moved += await this.evict(mm, v.start, v.end);
      } finally {
        mm.lock.readUnlock();
      }
    }
    return moved;
  }

  /**
   * dev_pagemap_ops.page_free (dmirror_devmem_free): the slot goes back to the allocator —
   * but never while a mirror maps it, or the next owner's data would be reachable through
   * that stale entry. The invariant is enforced here: a mirror still mapping the page is a
   * bug (counted in stats.mappedFrees, like a WARN); its entry is shot down first and the
   * slot is only reused once no kernel of that mirror can reach it.
   */
  #pageFree(pfn: number, npages: number): void {
    // (Called once per page a migration home frees: no closure or array on the common path.)
    const slot = this.slotOf(pfn);
    const vram = this.#vram();
    let held = false;
    for (const m of this.#mappers) for (let k = 0; k < npages && !held; k++) held = m.mapsDevicePage(slot + k);
    if (!held) return freeSlots(vram, slot, npages);
    const slots = new Set<number>();
    for (let k = 0; k < npages; k++) slots.add(slot + k);
    const holders = [...this.#mappers].filter((m) => [...slots].some((s) => m.mapsDevicePage(s)));
    this.stats.mappedFrees++;
    void Promise.all(holders.map((m) => m.dropDevicePages(slots).catch(() => undefined)))
      .then(() => { if (this.#vram() === vram) freeSlots(vram, slot, npages); });
  }
}

/** Frees a page's VRAM slot (npages 1) or a 2 MiB folio's run of slots. */
function freeSlots(vram: PagePool | null, slot: number, npages: number): void {
  if (npages === 1) vram?.free(slot);
  else vram?.freeHuge(slot);
}
