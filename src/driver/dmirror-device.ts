/**
 * One mirror device (lib/test_hmm.c's struct dmirror_device, /dev/hmm_dmirrorN): its
 * device-private memory — a pfn range registered with the mm (memremap_pages) whose data
 * lives in a GPU buffer, one VRAM slot per device pfn — and the mirrors opened on it.
 * The GPU is acquired on the first open(), so a machine that never mirrors needs none.
 */
import { requestGpuDevice, type GpuContext } from '../device/gpu.js';
import { PagePool } from '../device/page-pool.js';
import { err } from '../errors.js';
import type { Machine } from '../mm/machine.js';
import type { MmStruct } from '../mm/mm.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, migratePfn, migratePfnFlags,
  migratePfnToPfn, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup,
} from '../mm/migrate.js';
import type { DevicePrivateFault, DevPagemap } from '../mm/pagemap.js';
import type { Process } from '../mm/process.js';
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
  /** The mirror whose migration to this device is collecting pages right now. */
  migrating: Dmirror | null = null;
  /** Device pages migrated back to RAM on a CPU fault (dmirror_devmem_fault). */
  cpuFaults = 0;

  constructor(machine: Machine, index: number, options: DmirrorDeviceOptions) {
    this.machine = machine;
    this.index = index;
    this.options = options;
    this.pagemap = machine.registerPagemap({
      npages: options.devicePages,
      owner: this,
      migrateToRam: (f) => this.#devmemFault(f),
      pageFree: (pfn) => this.#vram?.free(pfn - this.pagemap.basePfn),
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

  /** open("/dev/hmm_dmirrorN") from `proc`: a mirror of proc's address space. */
  async open(proc: Process): Promise<Dmirror> {
    this.#opening ??= this.#start();
    await this.#opening;
    const m = await Dmirror.create(this, proc);
    this.mirrors.add(m);
    return m;
  }

  async #start(): Promise<void> {
    this.#gpu = await (this.options.gpu ?? defaultGpu());
    this.#vram = new PagePool(this.#gpu.device, {
      slots: this.options.devicePages, label: `dmirror${this.index} vram`, sched: this.machine.sched,
    });
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
   * dmirror_devmem_fault_alloc_and_copy / dmirror_migrate_alloc_and_copy (device → system):
   * for each collected device page, a new system frame holding its bytes; our mirrors'
   * entries for the old device page are zapped (migration we start is not echoed to us).
   */
  async copyToRam(src: ArrayLike<number>): Promise<number[]> {
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
      const frame = ram.alloc();
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
      const dst = await this.copyToRam(mig.src);
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

  /** Close every mirror and free the GPU memory (machine teardown). */
  async destroy(): Promise<void> {
    for (const m of [...this.mirrors]) await m.close();
    this.#vram?.destroy();
    this.#vram = null;
  }
}
