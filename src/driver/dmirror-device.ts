/**
 * One mirror device (lib/test_hmm.c's struct dmirror_device, /dev/hmm_dmirrorN): its
 * device-private memory (src/driver/devmem.ts) and the mirrors opened on it. The GPU is
 * acquired on the first open(), so a machine that never mirrors needs none.
 */
import { requestGpuDevice, type GpuContext } from '../device/gpu.js';
import { PagePool } from '../device/page-pool.js';
import { DeviceBuffers } from '../device/buffer-pool.js';
import { err } from '../errors.js';
import type { Machine } from '../mm/machine.js';
import type { DevPagemap } from '../mm/pagemap.js';
import { Process } from '../mm/process.js';
import { Devmem } from './devmem.js';
import { Dmirror, type DmirrorHost } from './dmirror.js';
import type { MirrorDevice } from './uapi.js';

export interface DmirrorDeviceOptions {
  /** Device-private memory in pages. */
  devicePages: number;
  /** The device memory's type: MEMORY_DEVICE_PRIVATE (default) or MEMORY_DEVICE_COHERENT. */
  memory?: 'private' | 'coherent';
  /** System-memory aperture of each mirror, in pages. */
  aperturePages: number;
  /** Records of each mirror's fault buffer (default 4096). */
  faultRecords?: number;
  /** A GPU context to use instead of acquiring one. */
  gpu?: Promise<GpuContext>;
  /** false: own MIGRATE invalidations skip mmu_interval_set_seq, as test_hmm's do. */
  ownMigrationSetsSeq?: boolean;
  /** true: a device write to its own read-only device-private page migrates it (a departure). */
  ownReadOnlyWriteMigrates?: boolean;
  /** false: the engines re-run stalled workgroups (MirrorEngineOptions.skipStalled). */
  skipStalled?: boolean;
}

let sharedGpu: Promise<GpuContext> | null = null;
/** One GPU device per JS realm, shared by every machine that doesn't bring its own. */
export function defaultGpu(): Promise<GpuContext> {
  sharedGpu ??= requestGpuDevice({ label: 'mirrorlab' });
  return sharedGpu;
}

export class DmirrorDevice implements MirrorDevice, DmirrorHost {
  readonly index: number;
  readonly machine: Machine;
  /** Device-private memory (dmirror_devmem_*). */
  readonly devmem: Devmem;
  readonly options: DmirrorDeviceOptions;
  readonly mirrors = new Set<Dmirror>();
  #gpu: GpuContext | null = null;
  #vram: PagePool | null = null;
  #opening: Promise<void> | null = null;
  /** destroy() has begun: the device is going away (cdev_del), no open may succeed. */
  #destroyed = false;
  /** open() calls in flight: destroy() lets them see #destroyed and undo themselves first. */
  readonly #pendingOpens = new Set<Promise<unknown>>();

  constructor(machine: Machine, index: number, options: DmirrorDeviceOptions) {
    this.machine = machine;
    this.index = index;
    this.options = options;
    this.devmem = new Devmem(machine, this, options.devicePages, () => this.#vram, this.mirrors, options.memory === 'coherent');
  }

  get pagemap(): DevPagemap {
    return this.devmem.pagemap;
  }

  /** Device pages whose last reference went while a mirror mapped them (see Devmem.stats). */
  get stats(): { mappedFrees: number } {
    return this.devmem.stats;
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
   * Device removal (machine teardown): opens in flight fail with ENODEV, every mirror goes
   * (commands in flight on it fail with an HmmError), then the GPU memory goes back to the
   * GPU device's buffer pool, and the teardown waits for its zeroing (the next machine on
   * this GPU reuses the buffers; the zeroing is this teardown's work, not its first command's).
   */
  async destroy(): Promise<void> {
    this.#destroyed = true;
    await Promise.allSettled([...this.#pendingOpens]);
    for (const m of [...this.mirrors]) await m.destroy();
    this.#vram?.destroy();
    this.#vram = null;
    if (this.#gpu !== null) await DeviceBuffers.of(this.#gpu.device).settle(this.machine.sched, `dmirror${this.index}: destroy`);
  }
}
