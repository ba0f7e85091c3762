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
import { PAGE_SIZE } from '../mm/constants.js';
import type { Machine } from '../mm/machine.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, migratePfn,
  migratePfnFlags, migratePfnToPfn, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, type MigrateVma,
} from '../mm/migrate.js';
import type { MmStruct } from '../mm/mm.js';
import type { DevicePrivateFault, DevPagemap } from '../mm/pagemap.js';

/** What device memory needs of a mirror that may map its pages. */
export interface DevmemMapper {
  /** Does the mirror map the device page in VRAM slot `slot`? */
  mapsDevicePage(slot: number): boolean;
  /** Zap the mirror's entries for these slots (their pages are leaving). */
  dropDevicePages(slots: ReadonlySet<number>): Promise<void>;
  /**
   * The CPU faulted on our device page at addr of mm (dmirror_devmem_fault): told before the
   * page moves home and after (a migration policy attached to the mirror decides and records).
   */
  beforeCpuFault(mm: MmStruct, addr: number): { start: number; end: number } | undefined;
  afterCpuFault(mm: MmStruct, addr: number): void;
}

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
  constructor(machine: Machine, owner: object, npages: number, vram: () => PagePool | null, mappers: ReadonlySet<DevmemMapper>) {
    this.#machine = machine;
    this.#vram = vram;
    this.#mappers = mappers;
    this.pagemap = machine.registerPagemap({
      npages,
      owner,
      migrateToRam: (f) => this.#devmemFault(f),
      pageFree: (pfn) => this.#pageFree(pfn),
    });
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
   * dmirror_migrate_alloc_and_copy (system → device): for each collected page, a device
   * page holding its bytes (a hole gets a zeroed page), dst entries for migrate_vma_pages.
   * A page it cannot allocate (device memory full) is skipped, as test_hmm skips it, and
   * the rest migrate. Pages already in device memory stay where they are.
   */
  allocAndCopy(src: ArrayLike<number>, vmaWrite: boolean): number[] {
    const ram = this.#machine.ram;
    const dst = new Array<number>(src.length).fill(0);
    const uploads: { slot: number; data: Uint8Array }[] = [];
    try {
      for (let i = 0; i < src.length; i++) {
        const sf = migratePfnFlags(src[i]);
        if ((sf & MIGRATE_PFN_MIGRATE) === 0) continue;
        const spfn = (sf & MIGRATE_PFN_VALID) !== 0 ? migratePfnToPfn(src[i]) : null;
        if (spfn !== null && spfn >= ram.npages) continue; // already device memory
        let dpfn: number;
        try {
          dpfn = this.allocPage();
        } catch (e) {
          if (e instanceof HmmError && e.code === 'ENOMEM') continue; // dmirror_devmem_alloc_page() == NULL
          throw e;
        }
        dst[i] = migratePfn(dpfn);
        // The mirror's own aperture may hold newer bytes than the frame: they were written
        // back at the last command end or invalidation, so the frame is current here.
        uploads.push({ slot: this.slotOf(dpfn), data: spfn !== null ? ram.data(spfn) : new Uint8Array(PAGE_SIZE) });
        if ((sf & MIGRATE_PFN_WRITE) !== 0 || (spfn === null && vmaWrite)) dst[i] += MIGRATE_PFN_WRITE;
      }
      this.#pool().uploadPages(uploads);
    } catch (e) {
      this.putAll(dst); // the device lost, say: nothing was handed to migrate_vma_pages
      throw e;
    }
    return dst;
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
    if (want !== undefined && vma !== undefined && want.start <= start && want.end >= end) {
      // migrate_vma_setup collects only our device-private pages in the range (SELECT_DEVICE_PRIVATE).
      start = Math.max(want.start, vma.start);
      end = Math.min(want.end, vma.end);
    }
    try {
      const mig = await migrateVmaSetup(f.mm, {
        start, end, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, pgmapOwner: this.pagemap.owner, faultPage: f.pfn,
      });
      try {
        const dst = await this.copyToRam(mig.src);
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
  async copyToRam(src: ArrayLike<number>, partial = false): Promise<number[]> {
    const dst = new Array<number>(src.length).fill(0);
    const slots: number[] = [];
    const idx: number[] = [];
    for (let i = 0; i < src.length; i++) {
      const s = src[i];
      if ((migratePfnFlags(s) & (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_VALID)) !== (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_VALID)) continue;
      const pfn = migratePfnToPfn(s);
      if (!this.pagemap.contains(pfn)) continue;
      slots.push(this.slotOf(pfn));
      idx.push(i);
    }
    if (slots.length === 0) return dst;
    for (const m of this.#mappers) await m.dropDevicePages(new Set(slots));
    const ram = this.#machine.ram;
    // The device pages go straight from the mapped staging buffer into the new frames (one
    // copy of the bytes, as the kernel's copy engine writes the destination pages).
    await this.#pool().readbackWith(slots, (bytes) => {
      for (let k = 0; k < idx.length; k++) {
        let frame: number;
        try {
          frame = ram.alloc();
        } catch (e) {
          if (partial && e instanceof HmmError && e.code === 'ENOMEM') continue;
          for (const d of dst) if (d !== 0) ram.put(migratePfnToPfn(d));
          throw e;
        }
        ram.data(frame).set(bytes.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE));
        ram.markWritten(frame);
        dst[idx[k]] = migratePfn(frame);
      }
    });
    return dst;
  }

  /**
   * dmirror_migrate_to_system for one VMA piece of `mm`: every page of ours in [start, end)
   * goes back to a new system frame. Caller holds the mmap read lock. Returns pages moved.
   */
  evict(mm: MmStruct, start: number, end: number): Promise<number> {
    return this.evictPieces(mm, [{ start, end }]);
  }

  /**
   * evict() over several pieces (each inside one VMA) with one copy for all of them: every
   * piece is collected (migrate_vma_setup), then all their device pages come back in one
   * readback — one GPU command and one map, not one per piece — then each piece is paged
   * and finalized. (The kernel's migrate_device_range / a driver's batched copy-engine
   * push: the 512-page step is test_hmm's loop, not a limit of the copy.) Caller holds the
   * mmap read lock. Returns pages moved.
   */
  async evictPieces(mm: MmStruct, pieces: readonly { start: number; end: number }[]): Promise<number> {
    const migs: MigrateVma[] = [];
    let handed = 0; // migs[0 .. handed) got their destinations (migrate_vma_pages)
    let dst: number[] = [];
    let moved = 0;
    try {
      for (const p of pieces) {
        migs.push(await migrateVmaSetup(mm, { start: p.start, end: p.end, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, pgmapOwner: this.pagemap.owner }));
      }
      const src = new Float64Array(migs.reduce((n, m) => n + m.npages, 0));
      let off = 0;
      for (const m of migs) {
        src.set(m.src, off);
        off += m.npages;
      }
      dst = await this.copyToRam(src, true);
      for (const d of dst) if (d !== 0) moved++;
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
  #pageFree(pfn: number): void {
    const slot = this.slotOf(pfn);
    const holders = [...this.#mappers].filter((m) => m.mapsDevicePage(slot));
    const vram = this.#vram();
    if (holders.length === 0) {
      vram?.free(slot);
      return;
    }
    this.stats.mappedFrees++;
    void Promise.all(holders.map((m) => m.dropDevicePages(new Set([slot])).catch(() => undefined)))
      .then(() => { if (this.#vram() === vram) vram?.free(slot); });
  }
}
