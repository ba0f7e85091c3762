/**
 * Per-device buffer pools (issue 16, "nothing created on the fault path"), through the
 * public API:
 *  - a fresh READ on a second, newly opened mirror of the same device creates no GPU buffer
 *    (device.createBuffer wrapped by a counter for the READ's duration), every word right;
 *  - a newly opened mirror of a new machine, once one before it on the GPU closed, creates
 *    no buffer at open nor at its first READ: it reuses the earlier mirror's buffers;
 *  - isolation: every buffer a second machine's mirror reuses holds nothing of the first's
 *    (read raw off the GPU before it runs anything), and its READ of the very addresses the
 *    first mirror had mapped returns its own data, word by word, never the first's.
 */
import { describe, expect } from 'vitest';
import { PAGE_SIZE, type Machine } from '../../src/index.js';
import type { MachineFactory } from '../support/machine.js';
import { mirrorTest } from '../support/mirror.js';
import type { Dmirror } from '../../src/driver/dmirror.js';
import { DeviceBuffers } from '../../src/device/buffer-pool.js';
import { readBuffer } from '../../src/device/gpu.js';
import { ANON, RW } from './machines.js';
import { firstDiff } from './pages.js';

async function machine(machines: MachineFactory): Promise<Machine> {
  return machines({ devices: 1, aperturePages: 2048, devicePages: 1024, systemPages: 1 << 14 });
}

/** npages of distinct words, salted: no two salts share a word. */
function pattern(npages: number, salt: number): Uint8Array<ArrayBuffer> {
  const w = new Uint32Array(npages * (PAGE_SIZE / 4));
  for (let k = 0; k < w.length; k++) w[k] = ((salt << 24) | (k & 0xffffff)) >>> 0;
  return new Uint8Array(w.buffer);
}

/** Counts device.createBuffer calls while fn runs (the wrapper goes again afterwards). */
async function countCreates<T>(device: GPUDevice, fn: () => Promise<T>): Promise<{ value: T; created: string[] }> {
  const created: string[] = [];
  const orig = device.createBuffer;
  device.createBuffer = function (this: GPUDevice, desc: GPUBufferDescriptor): GPUBuffer {
    created.push(`${desc.label ?? '(unlabelled)'} ${desc.size} B`);
    return orig.call(this, desc);
  };
  try {
    return { value: await fn(), created };
  } finally {
    device.createBuffer = orig;
  }
}

const NPAGES = 256; // 1 MiB

describe('per-device buffer pools', () => {
  mirrorTest('a fresh READ on a second, newly opened mirror creates no GPU buffer', async ({ machines }) => {
    const m = await machine(machines);
    const p1 = m.spawn();
    const p2 = m.spawn();
    const a1 = await p1.mmap(0, NPAGES * PAGE_SIZE, RW, ANON);
    const a2 = await p2.mmap(0, NPAGES * PAGE_SIZE, RW, ANON);
    const d1 = pattern(NPAGES, 1);
    const d2 = pattern(NPAGES, 2);
    await p1.write(a1, d1);
    await p2.write(a2, d2);
    const m1 = (await m.devices[0].open(p1)) as Dmirror;
    const r1 = await m1.read(a1, NPAGES);
    expect(firstDiff(r1.data, d1)).toBeNull();
    const m2 = (await m.devices[0].open(p2)) as Dmirror;
    const device = m2.engine.device;
    const before = DeviceBuffers.of(device).stats.created;
    const { value: r2, created } = await countCreates(device, () => m2.read(a2, NPAGES));
    expect(r2.faults).toBeGreaterThan(0); // it was a fresh READ: it faulted
    expect(created).toEqual([]);
    expect(DeviceBuffers.of(device).stats.created).toBe(before);
    expect(firstDiff(r2.data, d2)).toBeNull();
    // And the first mirror still reads its own.
    expect(firstDiff((await m1.read(a1, NPAGES)).data, d1)).toBeNull();
  });

  mirrorTest('a new machine\'s mirror reuses a closed one\'s buffers: none created at open or READ, none of the old data visible', async ({ machines }) => {
    // Machine A: a mirror reads pattern 1 (its aperture, page table, fault ring, command
    // buffers fill with it), then A goes away.
    const ma = await machine(machines);
    const pa = ma.spawn();
    const addr = await pa.mmap(0, NPAGES * PAGE_SIZE, RW, ANON);
    const d1 = pattern(NPAGES, 1);
    await pa.write(addr, d1);
    const mirA = (await ma.devices[0].open(pa)) as Dmirror;
    expect(firstDiff((await mirA.read(addr, NPAGES)).data, d1)).toBeNull();
    const engA = mirA.engine;
    const device = engA.device;
    const oldAperture = engA.sysmem.buffer;
    const oldTable = engA.pt.buffer;
    await ma.destroy(); // (its teardown, at the test's end, finds every frame free)

    // Machine B, same options: its process maps the same addresses with other data.
    const { value: mirB, created: atOpen } = await countCreates(device, async () => {
      const mb = await machine(machines);
      const pb = mb.spawn();
      const b = await pb.mmap(0, NPAGES * PAGE_SIZE, RW, ANON);
      expect(b).toBe(addr);
      await pb.write(b, pattern(NPAGES, 2));
      return (await mb.devices[0].open(pb)) as Dmirror;
    });
    expect(atOpen).toEqual([]);
    const engB = mirB.engine;
    // Reused, not merely equal in size: the very buffers A's mirror had.
    expect(engB.sysmem.buffer).toBe(oldAperture);
    expect(engB.pt.buffer).toBe(oldTable);
    // Before B runs anything: the reused aperture and table hold zeros only.
    for (const [what, buf] of [['aperture', engB.sysmem.buffer], ['page table', engB.pt.buffer]] as const) {
      const raw = new Uint8Array(await readBuffer(device, buf));
      expect(firstDiff(raw, new Uint8Array(raw.byteLength)), `${what} of the new mirror holds old bytes`).toBeNull();
    }
    const d2 = pattern(NPAGES, 2);
    const { value: r, created } = await countCreates(device, () => mirB.read(addr, NPAGES));
    expect(r.faults).toBeGreaterThan(0);
    expect(created).toEqual([]);
    expect(firstDiff(r.data, d2)).toBeNull();
  });
});
