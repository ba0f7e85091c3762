/**
 * A pool of 4 KiB page slots in one GPU storage buffer. A mirror device has two:
 *  - the system-memory aperture: where the GPU reaches system frames (UVM's sysmem
 *    aperture, reached over PCIe; here the driver uploads the frame's bytes into a slot),
 *  - device-private memory ("VRAM": what memremap_pages'd MEMORY_DEVICE_PRIVATE pages and
 *    test_hmm's dmirror chunks stand for), the target of migrate_vma.
 *
 * Slot allocation is a bitmap: 4 KiB allocations first-fit from the bottom, 2 MiB
 * (512 aligned slots) from the top, so small allocations do not fragment every big block.
 * The pool is fixed-size (bounded by maxStorageBufferBindingSize): a full pool is ENOMEM
 * and the driver evicts, as UVM does when VRAM is full.
 */
import { StagingCache } from './staging.js';
import { DeviceBuffers, type ByteRange } from './buffer-pool.js';
import { err } from '../errors.js';
import type { Scheduler } from '../sched/scheduler.js';
import { asDeviceError, ensureAlive, HOST_SCHEDULER } from './health.js';

export const PAGE_BYTES = 4096;
export const HUGE_SLOTS = 512;

export interface PagePoolOptions {
  slots: number;
  label?: string;
  /**
   * The machine's scheduler: readbacks wait for the GPU through it, so a seeded run decides
   * where a completion lands (default: plain awaits).
   */
  sched?: Scheduler;
}

export interface PagePoolStats {
  slots: number;
  used: number;
  hugeBlocks: number;
  /** queue.writeBuffer calls made by upload()/uploadPages(). */
  uploadWrites: number;
  bytesUploaded: number;
  readbacks: number;
  /** copyBufferToBuffer calls made by readback()/copy(). */
  copies: number;
}

export interface PageData {
  slot: number;
  data: Uint8Array;
}

export class PagePool {
  readonly device: GPUDevice;
  readonly label: string;
  readonly slots: number;
  readonly buffer: GPUBuffer;
  readonly sched: Scheduler;
  private readonly used: Uint32Array;
  /**
   * Slots ever allocated, a bit per 32 (one word of `used`): what destroy() has the device
   * pool zero before another owner gets the buffer (allocation is first-fit from the bottom
   * and 2 MiB blocks from the top, so this is two short runs, not the whole pool).
   */
  private readonly touched: Uint8Array;
  private readonly huge = new Set<number>(); // first slots of huge allocations
  private usedCount = 0;
  private lowHint = 0; // no free bit in used[0 .. lowHint)
  private readonly counters = { uploadWrites: 0, bytesUploaded: 0, readbacks: 0, copies: 0 };
  /** readback()'s staging buffers (the device's: a big one is kept for the next readback of that size). */
  private readonly readbacks: StagingCache;
  private destroyed = false;

  constructor(device: GPUDevice, opts: PagePoolOptions) {
    this.device = device;
    this.sched = opts.sched ?? HOST_SCHEDULER;
    this.readbacks = StagingCache.of(device);
    this.label = opts.label ?? 'page pool';
    const max = Math.floor(Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize) / PAGE_BYTES);
    if (!Number.isInteger(opts.slots) || opts.slots < 1 || opts.slots > max) {
      throw err('EINVAL', `${this.label}: ${opts.slots} slots; this device binds at most ${max} (${max * 4} KiB)`);
    }
    ensureAlive(device, this.label);
    this.slots = opts.slots;
    this.used = new Uint32Array(Math.ceil(opts.slots / 32));
    this.touched = new Uint8Array(this.used.length);
    // From the device's pool: a pool of this size freed before (a closed mirror's aperture,
    // a torn-down machine's device memory) is reused, zeroed, rather than created.
    this.buffer = DeviceBuffers.of(device).acquire({
      label: `${this.label} (${opts.slots} × 4 KiB)`,
      size: opts.slots * PAGE_BYTES,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
  }

  get stats(): PagePoolStats {
    return { slots: this.slots, used: this.usedCount, hugeBlocks: this.huge.size, ...this.counters };
  }

  get freeSlots(): number {
    return this.slots - this.usedCount;
  }

  isAllocated(slot: number): boolean {
    this.checkSlot(slot, 1, 'isAllocated');
    return (this.used[slot >>> 5] & (1 << (slot & 31))) !== 0;
  }

  /** One free slot, lowest first; ENOMEM when the pool is full. */
  alloc(): number {
    for (let w = this.lowHint; w < this.used.length; w++) {
      const bits = this.used[w];
      if (bits === 0xffffffff) continue;
      const b = 31 - Math.clz32(~bits & (bits + 1)); // lowest clear bit
      const slot = w * 32 + b;
      if (slot >= this.slots) break;
      this.used[w] = bits | (1 << b);
      this.touched[w] = 1;
      this.usedCount++;
      this.lowHint = w;
      return slot;
    }
    this.lowHint = this.used.length;
    throw err('ENOMEM', `${this.label}: all ${this.slots} slots in use`);
  }

  /** 512 contiguous, 512-aligned slots (for a 2 MiB leaf), highest first; returns the first. */
  allocHuge(): number {
    const words = HUGE_SLOTS / 32;
    for (let first = Math.floor(this.slots / HUGE_SLOTS) * HUGE_SLOTS - HUGE_SLOTS; first >= 0; first -= HUGE_SLOTS) {
      const w0 = first / 32;
      let free = true;
      for (let w = w0; w < w0 + words && free; w++) free = this.used[w] === 0;
      if (!free) continue;
      this.used.fill(0xffffffff, w0, w0 + words);
      this.touched.fill(1, w0, w0 + words);
      this.usedCount += HUGE_SLOTS;
      this.huge.add(first);
      return first;
    }
    throw err('ENOMEM', `${this.label}: no free aligned 2 MiB block (${this.freeSlots} slots free)`);
  }

  free(slot: number): void {
    this.checkSlot(slot, 1, 'free');
    if (this.huge.has(slot - (slot % HUGE_SLOTS))) {
      throw err('EINVAL', `${this.label}: slot ${slot} belongs to a huge allocation; use freeHuge`);
    }
    const w = slot >>> 5;
    const bit = 1 << (slot & 31);
    if (!(this.used[w] & bit)) throw err('EINVAL', `${this.label}: slot ${slot} is not allocated`);
    this.used[w] &= ~bit;
    this.usedCount--;
    if (w < this.lowHint) this.lowHint = w;
  }

  /** A huge allocation becomes 512 single-slot allocations (a device THP split). */
  splitHuge(first: number): void {
    this.checkSlot(first, HUGE_SLOTS, 'splitHuge');
    if (!this.huge.delete(first)) throw err('EINVAL', `${this.label}: ${first} is not a huge allocation`);
  }

  freeHuge(first: number): void {
    this.checkSlot(first, HUGE_SLOTS, 'freeHuge');
    if (!this.huge.delete(first)) throw err('EINVAL', `${this.label}: ${first} is not a huge allocation`);
    const w0 = first / 32;
    this.used.fill(0, w0, w0 + HUGE_SLOTS / 32);
    this.usedCount -= HUGE_SLOTS;
    if (w0 < this.lowHint) this.lowHint = w0;
  }

  /** Writes data (a multiple of 4 KiB) into slots [slot, slot + data.length / 4096): one writeBuffer. */
  /** Part of a page: `bytes` at byte offset `offset` of the pool (a multiple of 4). */
  uploadBytes(offset: number, bytes: Uint8Array): void {
    if (offset % 4 !== 0 || bytes.byteLength % 4 !== 0 || offset < 0 || offset + bytes.byteLength > this.slots * PAGE_BYTES) {
      throw err('EINVAL', `${this.label}: upload of ${bytes.byteLength} bytes at ${offset}`);
    }
    this.live('upload');
    this.device.queue.writeBuffer(this.buffer, offset, bytes as Uint8Array<ArrayBuffer>);
    this.counters.uploadWrites++;
  }

  upload(slot: number, data: Uint8Array): void {
    if (data.byteLength === 0 || data.byteLength % PAGE_BYTES !== 0) {
      throw err('EINVAL', `${this.label}: upload of ${data.byteLength} bytes, not a multiple of 4096`);
    }
    this.checkSlot(slot, data.byteLength / PAGE_BYTES, 'upload');
    this.live('upload');
    this.device.queue.writeBuffer(this.buffer, slot * PAGE_BYTES, data as Uint8Array<ArrayBuffer>);
    this.counters.uploadWrites++;
    this.counters.bytesUploaded += data.byteLength;
  }

  /** Uploads many pages, one writeBuffer per run of consecutive slots (in the order given). */
  uploadPages(pages: readonly PageData[]): void {
    for (const p of pages) {
      this.checkSlot(p.slot, 1, 'uploadPages');
      if (p.data.byteLength !== PAGE_BYTES) throw err('EINVAL', `${this.label}: page for slot ${p.slot} is ${p.data.byteLength} bytes`);
    }
    this.live('upload');
    for (const [start, len] of runs(pages.map((p) => p.slot))) {
      // Pages that already lie back to back in one ArrayBuffer (consecutive frames of one
      // RAM chunk, say) go up as one view, without a copy; the rest are gathered first.
      for (let k = 0; k < len;) {
        const first = pages[start + k].data;
        let n = 1;
        while (k + n < len) {
          const d = pages[start + k + n].data;
          if (d.buffer !== first.buffer || d.byteOffset !== first.byteOffset + n * PAGE_BYTES) break;
          n++;
        }
        if (n > 1 || len === 1) {
          this.upload(pages[start + k].slot, new Uint8Array(first.buffer, first.byteOffset, n * PAGE_BYTES));
          k += n;
          continue;
        }
        // Gather the following pages that are not back to back.
        let m = 1;
        while (k + m < len) {
          const a = pages[start + k + m - 1].data;
          const b = pages[start + k + m].data;
          if (b.buffer === a.buffer && b.byteOffset === a.byteOffset + PAGE_BYTES) break;
          m++;
        }
        if (m === 1) {
          this.upload(pages[start + k].slot, first);
        } else {
          // Through one reused gather buffer, a window at a time: writeBuffer copies the
          // bytes before it returns, and a fresh multi-MiB array per upload (zero-filled,
          // faulted in, collected) cost ten times the copy itself.
          const buf = gatherBuffer();
          for (let w = 0; w < m; w += GATHER_PAGES) {
            const n = Math.min(GATHER_PAGES, m - w);
            for (let j = 0; j < n; j++) buf.set(pages[start + k + w + j].data, j * PAGE_BYTES);
            this.upload(pages[start + k + w].slot, buf.subarray(0, n * PAGE_BYTES));
          }
        }
        k += m;
      }
    }
  }

  /**
   * Reads the given slots (any order, repeats allowed) into one array, slot k's bytes at
   * k * 4096: one copyBufferToBuffer per run of consecutive slots into one staging buffer,
   * one mapAsync.
   */
  readback(slotList: readonly number[]): Promise<Uint8Array> {
    return this.readbackWith(slotList, (bytes) => bytes.slice());
  }

  /**
   * readback(), handing the mapped bytes to `consume` before the staging buffer is unmapped
   * (the view is invalid afterwards): a caller that copies them somewhere anyway (device
   * pages into system frames) saves readback()'s own copy of the whole range.
   */
  async readbackWith<T>(slotList: readonly number[], consume: (bytes: Uint8Array) => T): Promise<T> {
    for (const s of slotList) this.checkSlot(s, 1, 'readback');
    this.live('readback');
    if (slotList.length === 0) return consume(new Uint8Array(0));
    const size = slotList.length * PAGE_BYTES;
    const staging = this.readbacks.take(size, `${this.label} readback`);
    let reuse = false;
    try {
      const enc = this.device.createCommandEncoder({ label: `${this.label} readback` });
      for (const [start, len] of runs(slotList)) {
        enc.copyBufferToBuffer(this.buffer, slotList[start] * PAGE_BYTES, staging, start * PAGE_BYTES, len * PAGE_BYTES);
        this.counters.copies++;
      }
      this.device.queue.submit([enc.finish()]);
      await this.sched.wait(staging.mapAsync(GPUMapMode.READ), `${this.label}: readback mapAsync`);
      this.counters.readbacks++;
      let out: T;
      try {
        out = consume(new Uint8Array(staging.getMappedRange(0, size)));
      } finally {
        staging.unmap();
      }
      reuse = !this.destroyed;
      return out;
    } catch (e) {
      throw await asDeviceError(this.device, e, `${this.label}: readback`, this.sched);
    } finally {
      this.readbacks.give(staging, reuse);
    }
  }

  /**
   * Copies n slots to another pool (migration: aperture → VRAM or back, the copy engine's
   * job in UVM / nouveau's dmem copy). Queued: visible to work submitted after this call.
   */
  copy(srcSlot: number, dst: PagePool, dstSlot: number, n = 1): void {
    this.checkSlot(srcSlot, n, 'copy (source)');
    dst.checkSlot(dstSlot, n, 'copy (destination)');
    if (dst.device !== this.device) throw err('EINVAL', `${this.label}: copy to a pool on another device`);
    this.live('copy');
    dst.live('copy');
    const enc = this.device.createCommandEncoder({ label: `${this.label} → ${dst.label}` });
    const bytes = n * PAGE_BYTES;
    if (dst === this) {
      // copyBufferToBuffer cannot use one buffer as both source and destination.
      const pool = DeviceBuffers.of(this.device);
      const tmp = pool.acquire({ label: `${this.label} bounce`, size: bytes, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      enc.copyBufferToBuffer(this.buffer, srcSlot * PAGE_BYTES, tmp, 0, bytes);
      enc.copyBufferToBuffer(tmp, 0, this.buffer, dstSlot * PAGE_BYTES, bytes);
      this.device.queue.submit([enc.finish()]);
      pool.release([{ buffer: tmp }]);
      this.counters.copies += 2;
      return;
    }
    enc.copyBufferToBuffer(this.buffer, srcSlot * PAGE_BYTES, dst.buffer, dstSlot * PAGE_BYTES, bytes);
    this.device.queue.submit([enc.finish()]);
    this.counters.copies++;
  }

  /** Zero-fills n slots (a fresh device page must not leak old contents). Queued. */
  zero(slot: number, n = 1): void {
    this.checkSlot(slot, n, 'zero');
    this.live('zero');
    const enc = this.device.createCommandEncoder({ label: `${this.label} zero` });
    enc.clearBuffer(this.buffer, slot * PAGE_BYTES, n * PAGE_BYTES);
    this.device.queue.submit([enc.finish()]);
  }

  /**
   * Hands the buffer back to the device's pool, every slot ever allocated zeroed first (the
   * next owner — another mirror, another machine — never sees these pages). Later calls
   * fail with ENODEV.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    DeviceBuffers.of(this.device).release([{ buffer: this.buffer, ranges: this.touchedRanges() }]);
  }

  /** Byte ranges of the runs of 32-slot words ever allocated. */
  private touchedRanges(): ByteRange[] {
    const out: ByteRange[] = [];
    const wordBytes = 32 * PAGE_BYTES;
    const end = this.slots * PAGE_BYTES;
    for (let w = 0; w < this.touched.length;) {
      if (!this.touched[w]) { w++; continue; }
      let v = w;
      while (v < this.touched.length && this.touched[v]) v++;
      const off = w * wordBytes;
      out.push([off, Math.min(v * wordBytes, end) - off]);
      w = v;
    }
    return out;
  }

  /** ENODEV once destroyed (the buffer may be another owner's now), or the device is lost. */
  private live(what: string): void {
    if (this.destroyed) throw err('ENODEV', `${this.label}: ${what}: pool destroyed`);
    ensureAlive(this.device, `${this.label}: ${what}`);
  }

  private checkSlot(slot: number, n: number, what: string): void {
    if (!Number.isInteger(slot) || !Number.isInteger(n) || slot < 0 || n < 1 || slot + n > this.slots) {
      throw err('EINVAL', `${this.label}: ${what}: slots [${slot}, +${n}) outside [0, ${this.slots})`);
    }
  }
}

/** Pages gathered per writeBuffer when an upload's pages are not back to back (4 MiB). */
const GATHER_PAGES = 1024;
let gather: Uint8Array | null = null;

/** The one gather buffer (JS is single-threaded and writeBuffer copies synchronously: never shared at once). */
function gatherBuffer(): Uint8Array {
  gather ??= new Uint8Array(GATHER_PAGES * PAGE_BYTES);
  return gather;
}

/** [start index, length] of each run of consecutive values in list. */
export function* runs(list: readonly number[]): Generator<[number, number]> {
  let start = 0;
  for (let k = 1; k <= list.length; k++) {
    if (k < list.length && list[k] === list[k - 1] + 1) continue;
    if (k > start) yield [start, k - start];
    start = k;
  }
}

/** The slots whose bits are set in a bitmap (bit b of word w: slot 32w + b), below `limit`. */
export function slotsOfBitmap(bits: Uint32Array, limit: number): number[] {
  const out: number[] = [];
  for (let w = 0; w < bits.length; w++) {
    let v = bits[w];
    while (v !== 0) {
      const b = 31 - Math.clz32(v & -v);
      const slot = w * 32 + b;
      if (slot < limit) out.push(slot);
      v = (v & ~(1 << b)) >>> 0;
    }
  }
  return out;
}
