/**
 * Per-device GPU buffer pool: every buffer the mirror engine, its page pools, page table,
 * fault ring, commands and readbacks use is taken here and handed back here, so a buffer is
 * created once per device and reused by later mirrors and commands (a new mirror on a
 * device that had one before creates none, and its first command pays no allocation nor
 * the implementation's lazy zero-fill of a fresh buffer). What a driver does with its
 * preallocated memory: UVM's per-GPU pushbuffer and semaphore pools, the PMA's chunk
 * allocator (uvm_pmm_gpu_alloc) handing out memory it carved out at GPU registration.
 *
 * Isolation: a buffer handed back is zeroed (clearBuffer, queued: any later use, which is
 * submitted after it, sees zeros) over every byte its owner may have written — the whole
 * buffer, or the ranges the owner names (a page pool names the slots it ever allocated) —
 * before another owner can take it, as init_on_free zeroes a page before it is reused. A
 * buffer that cannot be cleared (no COPY_DST) or is still mapped is destroyed instead.
 *
 * Buffers are matched by exact size and usage. At most MAX_PARKED_BYTES (and
 * MAX_PARKED_BUFFERS buffers) wait per device; the oldest go first beyond that.
 */
import { ensureAlive } from './health.js';
import type { Scheduler } from '../sched/scheduler.js';

const MAX_PARKED_BYTES = 400 * (1 << 20);
const MAX_PARKED_BUFFERS = 256;

export interface DeviceBufferStats {
  /** device.createBuffer calls made for the pool's users. */
  created: number;
  /** acquire() calls answered with a parked buffer. */
  reused: number;
  /** Buffers handed back and parked (zeroed) / destroyed instead. */
  parked: number;
  destroyed: number;
  /** Buffers waiting now, and their bytes. */
  waiting: number;
  waitingBytes: number;
  /** Bytes zeroed on hand-back. */
  zeroedBytes: number;
}

/** A byte range [offset, offset + size) of a buffer (multiples of 4). */
export type ByteRange = readonly [offset: number, size: number];

export interface AcquireDesc {
  label: string;
  size: number;
  usage: number;
}

const pools = new WeakMap<GPUDevice, DeviceBuffers>();

export class DeviceBuffers {
  readonly device: GPUDevice;
  readonly #free = new Map<string, GPUBuffer[]>();
  /** Parked buffers, oldest first (for eviction). */
  readonly #order: GPUBuffer[] = [];
  readonly #parked = new Set<GPUBuffer>();
  #waitingBytes = 0;
  readonly #counters = { created: 0, reused: 0, parked: 0, destroyed: 0, zeroedBytes: 0 };

  private constructor(device: GPUDevice) {
    this.device = device;
  }

  /** The pool of `device` (made on first use). */
  static of(device: GPUDevice): DeviceBuffers {
    let p = pools.get(device);
    if (p === undefined) {
      p = new DeviceBuffers(device);
      pools.set(device, p);
    }
    return p;
  }

  get stats(): DeviceBufferStats {
    return { ...this.#counters, waiting: this.#parked.size, waitingBytes: this.#waitingBytes };
  }

  /** A zeroed buffer of exactly this size and usage: a parked one, or a new one. */
  acquire(desc: AcquireDesc): GPUBuffer {
    ensureAlive(this.device, desc.label);
    const list = this.#free.get(key(desc.size, desc.usage));
    const b = list?.pop();
    if (b !== undefined) {
      this.#unpark(b);
      b.label = desc.label;
      this.#counters.reused++;
      return b;
    }
    this.#counters.created++;
    const fresh = this.device.createBuffer({ label: desc.label, size: desc.size, usage: desc.usage });
    if ((desc.usage & GPUBufferUsage.COPY_DST) !== 0 && (desc.usage & GPUBufferUsage.MAP_READ) === 0) {
      // Zero it now, at creation (open, device start): the implementation would otherwise
      // zero a fresh buffer lazily at its first use — inside the first command, for a
      // 128 MiB aperture hundreds of milliseconds of a first READ on llvmpipe.
      const enc = this.device.createCommandEncoder({ label: 'buffer pool: zero at creation' });
      enc.clearBuffer(fresh);
      this.device.queue.submit([enc.finish()]);
    }
    return fresh;
  }

  /**
   * Hands buffers back: each is zeroed over `ranges` (default: all of it) in one queued
   * submission, then parked for the next acquire(). The caller must not touch them again.
   */
  release(items: readonly { buffer: GPUBuffer; ranges?: readonly ByteRange[] }[]): void {
    if (items.length === 0) return;
    let enc: GPUCommandEncoder | null = null;
    const keep: GPUBuffer[] = [];
    let lost = false;
    try {
      ensureAlive(this.device, 'buffer pool: release');
    } catch {
      lost = true;
    }
    for (const { buffer, ranges } of items) {
      if (this.#parked.has(buffer)) throw new Error(`buffer pool: ${buffer.label} handed back twice`);
      const mapped = buffer.mapState !== 'unmapped';
      if (lost || mapped || (buffer.usage & GPUBufferUsage.COPY_DST) === 0 || buffer.size > MAX_PARKED_BYTES) {
        buffer.destroy();
        this.#counters.destroyed++;
        continue;
      }
      enc ??= this.device.createCommandEncoder({ label: 'buffer pool: zero on release' });
      for (const [off, size] of ranges ?? [[0, buffer.size]]) {
        if (size <= 0) continue;
        enc.clearBuffer(buffer, off, size);
        this.#counters.zeroedBytes += size;
      }
      keep.push(buffer);
    }
    if (enc !== null) this.device.queue.submit([enc.finish()]);
    for (const b of keep) this.#park(b);
  }

  /**
   * Resolves once the zeroing of everything handed back so far has run (a teardown waits
   * for it, so its GPU time is the teardown's, not the next command's).
   */
  async settle(sched: Scheduler, what: string): Promise<void> {
    try {
      await sched.wait(this.device.queue.onSubmittedWorkDone(), `${what}: buffer pool settle`);
    } catch {
      // A lost device has nothing left to zero.
    }
  }

  /** Destroys every parked buffer (the device is going away). */
  drain(): void {
    for (const b of this.#order.splice(0)) b.destroy();
    this.#free.clear();
    this.#parked.clear();
    this.#waitingBytes = 0;
  }

  #park(b: GPUBuffer): void {
    const k = key(b.size, b.usage);
    let list = this.#free.get(k);
    if (list === undefined) {
      list = [];
      this.#free.set(k, list);
    }
    list.push(b);
    this.#order.push(b);
    this.#parked.add(b);
    this.#waitingBytes += b.size;
    this.#counters.parked++;
    while (this.#waitingBytes > MAX_PARKED_BYTES || this.#order.length > MAX_PARKED_BUFFERS) {
      const old = this.#order[0];
      const l = this.#free.get(key(old.size, old.usage))!;
      l.splice(l.indexOf(old), 1);
      this.#unpark(old);
      old.destroy();
      this.#counters.destroyed++;
    }
  }

  #unpark(b: GPUBuffer): void {
    this.#order.splice(this.#order.indexOf(b), 1);
    this.#parked.delete(b);
    this.#waitingBytes -= b.size;
  }
}

function key(size: number, usage: number): string {
  return `${size}:${usage}`;
}
