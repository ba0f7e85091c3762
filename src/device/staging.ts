/**
 * Staging buffers for readbacks (copy into a MAP_READ buffer, mapAsync, slice, unmap), one
 * cache per device, shared by its engines and page pools. Buffers come from the device's
 * buffer pool (src/device/buffer-pool.ts) and go back to it; a big one (a command's output,
 * a migration's pages) is kept here for the next readback of that size without the pool's
 * zeroing: every readback copies into the whole range it maps before it maps it, so what an
 * earlier owner left there never shows. Taken synchronously, so two readbacks at once never
 * share one.
 */
import { DeviceBuffers } from './buffer-pool.js';

const SPARE_MIN_BYTES = 1 << 20;
/** Big staging buffers kept per device (a command's output and a migration's pages, two mirrors' worth). */
const MAX_SPARES = 4;

const caches = new WeakMap<GPUDevice, StagingCache>();

export class StagingCache {
  readonly #pool: DeviceBuffers;
  /** Spare buffers, least recently given back first. */
  readonly #spares: GPUBuffer[] = [];

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
    if (size >= SPARE_MIN_BYTES) {
      const k = this.#spares.findIndex((b) => b.size === size);
      if (k >= 0) return this.#spares.splice(k, 1)[0];
    }
    return this.#pool.acquire({ label, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Hand a taken buffer back (unmapped): a big one is kept when `reuse`, the rest go to the device pool. */
  give(buffer: GPUBuffer, reuse: boolean): void {
    if (reuse && buffer.size >= SPARE_MIN_BYTES && buffer.mapState === 'unmapped') {
      this.#spares.push(buffer);
      if (this.#spares.length > MAX_SPARES) this.#pool.release([{ buffer: this.#spares.shift()! }]);
    } else {
      this.#pool.release([{ buffer }]);
    }
  }
}
