/**
 * The per-device buffer pool on its own (src/device/buffer-pool.ts): a buffer handed back is
 * reused by the next acquire of the same size and usage, zeroed over what its owner wrote;
 * a page pool names only the slots it ever allocated, and those are zeroed; a buffer handed
 * back twice is a bug that throws; a destroyed page pool refuses work (ENODEV) instead of
 * writing into a buffer that may be another owner's now.
 */
import { describe, expect } from 'vitest';
import { DeviceBuffers } from '../../src/device/buffer-pool.js';
import { readBuffer } from '../../src/device/gpu.js';
import { PagePool } from '../../src/device/page-pool.js';
import { gpuTest as test } from '../support/gpu.js';

/** (GPUBufferUsage exists once the GPU is loaded.) */
const usage = (): number => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

describe('DeviceBuffers', () => {
  test('reuse: same buffer back, every word zero; created counts only new ones', async ({ gpu }) => {
    const pool = DeviceBuffers.of(gpu.device);
    const size = 3 * 4096 + 12; // an odd size no other test uses
    const s0 = pool.stats;
    const a = pool.acquire({ label: 'a', size, usage: usage() });
    gpu.device.queue.writeBuffer(a, 0, new Uint32Array(size / 4).fill(0xdeadbeef));
    pool.release([{ buffer: a }]);
    expect(() => pool.release([{ buffer: a }])).toThrow(/twice/);
    const b = pool.acquire({ label: 'b', size, usage: usage() });
    expect(b).toBe(a);
    expect(b.label).toBe('b');
    const words = new Uint32Array(await readBuffer(gpu.device, b));
    expect(words.findIndex((w) => w !== 0)).toBe(-1);
    const c = pool.acquire({ label: 'c', size, usage: usage() }); // none waits now: a new one
    expect(c).not.toBe(b);
    expect(pool.stats.created - s0.created).toBe(2);
    expect(pool.stats.reused - s0.reused).toBe(1);
    pool.release([{ buffer: b }, { buffer: c }]);
  });

  test('a page pool zeroes the slots it allocated, and refuses work once destroyed', async ({ gpu }) => {
    const slots = 96 + 7; // a size of its own
    const p1 = new PagePool(gpu.device, { slots, label: 'p1' });
    const first = p1.alloc();
    const page = new Uint8Array(4096).fill(0xa5);
    p1.upload(first, page);
    const buffer = p1.buffer;
    const zeroed = DeviceBuffers.of(gpu.device).stats.zeroedBytes;
    p1.destroy();
    // One 32-slot word was touched: 128 KiB zeroed, not the whole pool.
    expect(DeviceBuffers.of(gpu.device).stats.zeroedBytes - zeroed).toBe(32 * 4096);
    expect(() => p1.upload(first, page)).toThrowErrno('ENODEV');
    await expect(p1.readback([first])).rejects.toBeErrno('ENODEV');
    const p2 = new PagePool(gpu.device, { slots, label: 'p2' });
    try {
      expect(p2.buffer).toBe(buffer);
      const raw = new Uint8Array(await readBuffer(gpu.device, p2.buffer));
      expect(raw.findIndex((x) => x !== 0)).toBe(-1);
    } finally {
      p2.destroy();
    }
  });
});
