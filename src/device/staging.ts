/**
 * Staging buffers for readbacks (copy into a MAP_READ buffer, mapAsync, slice, unmap). A
 * big one (a command's output, a migration's pages) is kept for the next readback of the
 * same size: creating a MAP_READ buffer of many MiB per call costs about as much as the
 * copy. Small ones (the dirty bitmaps every write-back drains) are kept one per size: they
 * come back at the same size every call. Taken synchronously, so two readbacks at once never
 * share one.
 */
const SPARE_MIN_BYTES = 1 << 20;
/** Sizes of small staging buffers kept at most. */
const SMALL_SPARES = 4;

export class StagingCache {
  readonly #device: GPUDevice;
  #spare: GPUBuffer | null = null;
  /** Small ones (a dirty bitmap, a probe), one of each size: the same sizes come back every call. */
  readonly #small = new Map<number, GPUBuffer>();

  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** A MAP_READ | COPY_DST buffer of `size` bytes: a spare one when it fits. */
  take(size: number, label: string): GPUBuffer {
    if (size < SPARE_MIN_BYTES) {
      const s = this.#small.get(size);
      if (s !== undefined) {
        this.#small.delete(size);
        return s;
      }
    } else if (this.#spare !== null) {
      const s = this.#spare;
      this.#spare = null;
      if (s.size === size) return s;
      s.destroy();
    }
    return this.#device.createBuffer({ label, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Hand a taken buffer back (unmapped): kept for the next take of its size when `reuse`, else destroyed. */
  give(buffer: GPUBuffer, reuse: boolean): void {
    if (reuse && buffer.size >= SPARE_MIN_BYTES) {
      this.#spare?.destroy();
      this.#spare = buffer;
    } else if (reuse && !this.#small.has(buffer.size) && this.#small.size < SMALL_SPARES) {
      this.#small.set(buffer.size, buffer);
    } else {
      buffer.destroy();
    }
  }

  destroy(): void {
    this.#spare?.destroy();
    this.#spare = null;
    for (const b of this.#small.values()) b.destroy();
    this.#small.clear();
  }
}
