/**
 * One mirror device (lib/test_hmm.c's struct dmirror_device, /dev/hmm_dmirrorN): its
 * device-private memory — a pfn range registered with the mm (memremap_pages) whose data
 * lives in a GPU buffer, one VRAM slot per device pfn — and the mirrors opened on it.
 * The GPU is acquired on the first open(), so a machine that never mirrors needs none.
 */
import { requestGpuDevice, type GpuContext } from '../device/gpu.js';
import { PagePool } from '../device/page-pool.js';
import { err, HmmError } from '../errors.js';
import type { Machine } from '../mm/machine.js';
import type { MmStruct } from '../mm/mm.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, migratePfn, migratePfnFlags,
  migratePfnToPfn, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup,
} from '../mm/migrate.js';
import type { DevicePrivateFault, DevPagemap } from '../mm/pagemap.js';
import { Process } from '../mm/process.js';
import { Dmirror } from './dmirror.js';

export interface DmirrorDeviceOptions {
  /** Device-private memory in pages. */
  devicePages: number;
  /** System-memory aperture of each mirror, in pages. */
  aperturePages: number;
  /** A GPU context to use instead of acquiring one. */
  gpu?: Promise<GpuContext>;
}

let sharedGpu: Promise<GpuContext> | null = null;
/** One GPU device per JS realm, shared by every machine that doesn't bring its own. */
export function defaultGpu(): Promise<GpuContext> {
  sharedGpu ??= requestGpuDevice({ label: 'mirrorlab' });
  return sharedGpu;
}

export class DmirrorDevice {
  readonly index: number;
  readonly machine: Machine;
  readonly pagemap: DevPagemap;
  readonly options: DmirrorDeviceOptions;
  readonly mirrors = new Set<Dmirror>();
  #gpu: GpuContext | null = null;
  #vram: PagePool | null = null;
  #opening: Promise<void> | null = null;
  /** destroy() has begun: the device is going away (cdev_del), no open may succeed. */
  #destroyed = false;
  /** open() calls in flight: destroy() lets them see #destroyed and undo themselves first. */
  readonly #pendingOpens = new Set<Promise<unknown>>();
  /** The mirror whose migration to this device is collecting pages right now. */
  migrating: Dmirror | null = null;
  /** Device pages migrated back to RAM on a CPU fault (dmirror_devmem_fault). */
  cpuFaults = 0;
  /**
   * mappedFrees: device pages whose last reference went while a mirror still mapped them —
   * each one a bug (an entry installed outside read_begin/read_retry), zapped before reuse.
   */
  readonly stats = { mappedFrees: 0 };

  constructor(machine: Machine, index: number, options: DmirrorDeviceOptions) {
    this.machine = machine;
    this.index = index;
    this.options = options;
    this.pagemap = machine.registerPagemap({
      npages: options.devicePages,
      owner: this,
      migrateToRam: (f) => this.#devmemFault(f),
      pageFree: (pfn) => this.#pageFree(pfn),
    });
  }

  get gpu(): GpuContext {
    if (this.#gpu === null) throw err('ENODEV', `dmirror${this.index}: not opened yet`);
    return this.#gpu;
  }

  get vram(): PagePool {
    if (this.#vram === null) throw err('ENODEV', `dmirror${this.index}: not opened yet`);
    return this.#vram;
  }

  /**
   * open("/dev/hmm_dmirrorN") from `proc`: a mirror of proc's address space.
   *
   * `proc` stands for the opener, as a pidfd names a process: like pidfd_send_signal(2), a
   * handle that is not a process at all is EBADF ("not a valid PID file descriptor"), and a
   * process this machine cannot reach — one of another machine, as one in an unrelated PID
   * namespace — is EINVAL; neither touches anything. A device being removed (destroy(),
   * cdev_del) fails an open with ENODEV, even one that began before, and leaks nothing.
   */
  async open(proc: Process): Promise<Dmirror> {
    if (!(proc instanceof Process)) throw err('EBADF', `dmirror${this.index}.open: ${proc === null ? 'null' : typeof proc} is not a process`);
    if (proc.mm.core !== this.machine.core) throw err('EINVAL', `dmirror${this.index}.open: process ${proc.pid} belongs to another machine`);
    this.#checkPresent();
    const p = this.#open(proc);
    this.#pendingOpens.add(p);
    try {
      return await p;
    } finally {
      this.#pendingOpens.delete(p);
    }
  }

  async #open(proc: Process): Promise<Dmirror> {
    this.#opening ??= this.#start();
    await this.#opening;
    this.#checkPresent();
    const m = await Dmirror.create(this, proc);
    if (this.#destroyed) {
      await m.close(); // destroy() waits for us before it frees the VRAM
      this.#checkPresent();
    }
    this.mirrors.add(m);
    return m;
  }

  #checkPresent(): void {
    if (this.#destroyed) throw err('ENODEV', `dmirror${this.index}: device removed`);
  }

  async #start(): Promise<void> {
    this.#gpu = await (this.options.gpu ?? defaultGpu());
    this.#vram = new PagePool(this.#gpu.device, {
      slots: this.options.devicePages, label: `dmirror${this.index} vram`, sched: this.machine.sched,
    });
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
    const holders = [...this.mirrors].filter((m) => m.mapsDevicePage(slot));
    if (holders.length === 0) {
      this.#vram?.free(slot);
      return;
    }
    this.stats.mappedFrees++;
    const vram = this.#vram;
    void Promise.all(holders.map((m) => m.dropDevicePages(new Set([slot])).catch(() => undefined)))
      .then(() => { if (this.#vram === vram) vram?.free(slot); });
  }

  /** The VRAM slot of a device pfn of ours. */
  slotOf(pfn: number): number {
    return pfn - this.pagemap.basePfn;
  }

  /** dmirror_devmem_alloc_page(): a free device page with one reference. ENOMEM when full. */
  allocPage(): number {
    const pfn = this.pagemap.basePfn + this.vram.alloc();
    this.pagemap.pageInit(pfn);
    return pfn;
  }

  /**
   * dmirror_devmem_fault(), the pagemap's migrate_to_ram: the CPU touched one of our pages.
   * Migrate that page back to a fresh system frame; every mirror drops its entry for it.
   */
  async #devmemFault(f: DevicePrivateFault): Promise<void> {
    this.cpuFaults++;
    const mig = await migrateVmaSetup(f.mm, {
      start: f.addr, end: f.addr + 4096, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, pgmapOwner: this, faultPage: f.pfn,
    });
    try {
      const dst = await this.copyToRam(mig.src);
      await migrateVmaPages(mig, dst);
    } finally {
      await migrateVmaFinalize(mig);
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
    for (const m of this.mirrors) await m.dropDevicePages(new Set(slots));
    const bytes = await this.vram.readback(slots);
    const ram = this.machine.ram;
    for (let k = 0; k < idx.length; k++) {
      let frame: number;
      try {
        frame = ram.alloc();
      } catch (e) {
        if (partial && e instanceof HmmError && e.code === 'ENOMEM') continue;
        for (const d of dst) if (d !== 0) ram.put(migratePfnToPfn(d));
        throw e;
      }
      ram.data(frame).set(bytes.subarray(k * 4096, (k + 1) * 4096));
      ram.markWritten(frame);
      dst[idx[k]] = migratePfn(frame);
    }
    return dst;
  }

  /**
   * dmirror_migrate_to_system for one VMA piece of `mm`: every page of ours in [start, end)
   * goes back to a new system frame. Caller holds the mmap read lock. Returns pages moved.
   */
  async evict(mm: MmStruct, start: number, end: number): Promise<number> {
    const mig = await migrateVmaSetup(mm, { start, end, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, pgmapOwner: this });
    let moved = 0;
    try {
      const dst = await this.copyToRam(mig.src, true);
      for (const d of dst) if (d !== 0) moved++;
      await migrateVmaPages(mig, dst);
    } finally {
      await migrateVmaFinalize(mig);
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
    for (const p of [...this.machine.processes.values()]) {
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
   * Device removal (machine teardown): opens in flight fail with ENODEV, every mirror goes
   * (commands in flight on it fail with an HmmError), then the GPU memory is freed.
   */
  async destroy(): Promise<void> {
    this.#destroyed = true;
    await Promise.allSettled([...this.#pendingOpens]);
    for (const m of [...this.mirrors]) await m.destroy();
    this.#vram?.destroy();
    this.#vram = null;
  }
}
