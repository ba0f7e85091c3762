/**
 * Staging buffers for readbacks (copy into a MAP_READ buffer, mapAsync, slice, unmap), one
 * cache per device, shared by its engines and page pools. Buffers come from the device's
 * buffer pool (src/device/buffer-pool.ts) and go back to it. Kept here for the next take of
 * their size, without the pool's zeroing: big ones (a command's output, a migration's pages:
 * creating a MAP_READ buffer of many MiB per call costs about as much as the copy), and
 * small ones one per size (the dirty bitmaps every write-back drains come back at the same
 * size every call). Every readback copies into the whole range it maps before it maps it,
 * so what an earlier owner left in a kept buffer never shows. Taken synchronously, so two
 * readbacks at once never share one.
 */
import { DeviceBuffers } from './buffer-pool.js';

const SPARE_MIN_BYTES = 1 << 20;
/** Big staging buffers kept per device (a command's output and a migration's pages, two mirrors' worth). */
const MAX_SPARES = 4;
/** Sizes of small staging buffers kept at most (per device: a few mirrors' bitmaps and probes). */
const SMALL_SPARES = 8;

const caches = new WeakMap<GPUDevice, StagingCache>();

export class StagingCache {
  readonly #pool: DeviceBuffers;
  /** Big spare buffers, least recently given back first. */
  readonly #spares: GPUBuffer[] = [];
  /** Small ones (a dirty bitmap, a probe), one of each size. */
  readonly #small = new Map<number, GPUBuffer>();

  private constructor(device: GPUDevice) {
    this.#pool = DeviceBuffers.of(device);
  }

  /** The cache of `device`. */
  static of(device: GPUDevice): StagingCache {
    let c = caches.get(device);
    if (c === undefined) {
      c = new StagingCache(device);
      caches.set(device, c);
    }
    return c;
  }

  /** A MAP_READ | COPY_DST buffer of `size` bytes: a spare one of that size when there is one. */
  take(size: number, label: string): GPUBuffer {
    if (size < SPARE_MIN_BYTES) {
      const s = this.#small.get(size);
      if (s !== undefined) {
        this.#small.delete(size);
        return s;
      }
    } else {
      const k = this.#spares.findIndex((b) => b.size === size);
      if (k >= 0) return this.#spares.splice(k, 1)[0];
    }
    return this.#pool.acquire({ label, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Hand a taken buffer back (unmapped): kept for the next take of its size when `reuse`, else to the device pool. */
  give(buffer: GPUBuffer, reuse: boolean): void {
    const keep = reuse && buffer.mapState === 'unmapped';
    if (keep && buffer.size >= SPARE_MIN_BYTES) {
      this.#spares.push(buffer);
      if (this.#spares.length > MAX_SPARES) this.#pool.release([{ buffer: this.#spares.shift()! }]);
    } else if (keep && !this.#small.has(buffer.size) && this.#small.size < SMALL_SPARES) {
      this.#small.set(buffer.size, buffer);
    } else {
      this.#pool.release([{ buffer }]);
    }
  }
}
