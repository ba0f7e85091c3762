/**
 * Staging buffers for readbacks (copy into a MAP_READ buffer, mapAsync, slice, unmap). A
 * big one (a command's output, a migration's pages) is kept for the next readback of the
 * same size: creating a MAP_READ buffer of many MiB per call costs about as much as the
 * copy. Taken synchronously, so two readbacks at once never share one.
 */
const SPARE_MIN_BYTES = 1 << 20;

export class StagingCache {
  readonly #device: GPUDevice;
  #spare: GPUBuffer | null = null;

  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** A MAP_READ | COPY_DST buffer of `size` bytes: the spare one when it fits. */
  take(size: number, label: string): GPUBuffer {
    if (size >= SPARE_MIN_BYTES && this.#spare !== null) {
      const s = this.#spare;
      this.#spare = null;
      if (s.size === size) return s;
      s.destroy();
    }
    return this.#device.createBuffer({ label, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Hand a taken buffer back (unmapped): a big one is kept when `reuse`, the rest destroyed. */
  give(buffer: GPUBuffer, reuse: boolean): void {
    if (reuse && buffer.size >= SPARE_MIN_BYTES) {
      this.#spare?.destroy();
      this.#spare = buffer;
    } else {
      buffer.destroy();
    }
  }

  destroy(): void {
    this.#spare?.destroy();
    this.#spare = null;
  }
}
