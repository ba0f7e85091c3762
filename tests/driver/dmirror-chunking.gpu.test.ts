/**
 * Mirror commands bigger than one GPU command: the driver splits them into chunks of at most
 * half the aperture (and the io buffer's cap), and when the aperture fills up it evicts the
 * entries outside the chunk being serviced (zap, flush, fence, write back, release) — so a
 * buffer several times the aperture reads and writes whole, every word checked.
 */
import { describe, expect } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import type { DmirrorDevice } from '../../src/driver/dmirror-device.js';
import { mirrorTest } from '../support/mirror.js';

const RW = PROT_READ | PROT_WRITE;
const APERTURE = 1024;
const NPAGES = 4 * APERTURE + 300; // several apertures, and a ragged last chunk
/** Room for the buffer twice over (its COW copies, the other command's buffer) and the rest. */
const SYSTEM_PAGES = 4 * NPAGES + 4096;

/** Word k of the buffer (k counted from the buffer's start), salted per pass. */
function word(k: number, salt: number): number {
  return (Math.imul(k + 1, 0x9e3779b1) ^ Math.imul(salt + 7, 0x85ebca6b)) >>> 0;
}

function pattern(npages: number, salt: number): Uint8Array<ArrayBuffer> {
  const w = new Uint32Array(npages * (PAGE_SIZE / 4));
  for (let k = 0; k < w.length; k++) w[k] = word(k, salt);
  return new Uint8Array(w.buffer);
}

function expectWords(bytes: Uint8Array, salt: number, what: string): void {
  expect(bytes.byteLength, `${what}: bytes`).toBe(NPAGES * PAGE_SIZE);
  const got = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const bad: string[] = [];
  let nbad = 0;
  for (let k = 0; k < got.length; k++) {
    if (got[k] !== word(k, salt)) {
      if (bad.length < 8) bad.push(`[${k}] got 0x${got[k].toString(16)} want 0x${word(k, salt).toString(16)}`);
      nbad++;
    }
  }
  expect(bad, `${what}: ${nbad} of ${got.length} words differ`).toEqual([]);
}

describe('dmirror chunking', () => {
  mirrorTest.override('machineOptions', { systemPages: SYSTEM_PAGES, aperturePages: APERTURE });

  mirrorTest('a command over a buffer 4x the aperture: chunked, evicted, every word read and written', async ({ proc, mirror }) => {
    expect(mirror.chunkPages).toBe(APERTURE / 2);
    const size = NPAGES * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, MAP_PRIVATE | MAP_ANONYMOUS);

    // CPU writes, device reads: a fault round in every chunk, but `faults` counts as
    // test_hmm's dmirror_read does — one dmirror_fault for a fresh buffer (issue 7, A.5).
    await proc.write(ptr, pattern(NPAGES, 1));
    const chunks = Math.ceil(NPAGES / mirror.chunkPages);
    const r1 = await mirror.read(ptr, NPAGES);
    expect(r1.cpages).toBe(NPAGES);
    expect(mirror.stats.chunks).toBe(chunks);
    expect(r1.faults).toBe(1);
    expectWords(r1.data, 1, 'device read');
    expect(mirror.stats.apertureReclaims).toBeGreaterThan(0);
    expect(mirror.engine.sysmem.stats.used).toBeLessThanOrEqual(APERTURE);

    // Device writes, CPU reads: the chunks evicted mid-command were written back first.
    const w = await mirror.write(ptr, pattern(NPAGES, 2));
    expect(w.cpages).toBe(NPAGES);
    expect(w.faults).toBe(1);
    expectWords(await proc.read(ptr, size), 2, 'CPU read after device write');

    // CPU writes again: the device sees the new data, including pages still mirrored.
    await proc.write(ptr, pattern(NPAGES, 3));
    const r2 = await mirror.read(ptr, NPAGES);
    expectWords(r2.data, 3, 'device read after CPU write');

    // Device write then device read, nothing from the CPU in between; the read into the
    // caller's poisoned buffer (every chunk lands in its place, nothing past the range).
    await mirror.write(ptr, pattern(NPAGES, 4));
    const into = new Uint8Array(size + PAGE_SIZE).fill(0xee);
    const r3 = await mirror.read(ptr, NPAGES, into);
    expect(r3.data.buffer).toBe(into.buffer);
    expectWords(r3.data, 4, 'device read after device write, into the caller\'s buffer');
    expect(into.subarray(size).every((b) => b === 0xee), 'past the range').toBe(true);
    expectWords(await proc.read(ptr, size), 4, 'CPU read at the end');
    await proc.munmap(ptr, size);
  });

  mirrorTest('a command within one chunk still reports one fault round', async ({ proc, mirror }) => {
    const n = mirror.chunkPages;
    const ptr = await proc.mmap(0, n * PAGE_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    await proc.write(ptr, pattern(n, 5));
    const r = await mirror.read(ptr, n);
    expect(r.faults).toBe(1);
    expect(mirror.stats.chunks).toBe(1);
    const words = new Uint32Array(r.data.buffer, r.data.byteOffset, r.data.byteLength / 4);
    let bad = 0;
    for (let k = 0; k < words.length; k++) if (words[k] !== word(k, 5)) bad++;
    expect(bad).toBe(0);
  });

  mirrorTest('two commands at once, each bigger than the aperture: both chunks stay pinned', async ({ proc, mirror }) => {
    const size = NPAGES * PAGE_SIZE;
    const a = await proc.mmap(0, size, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    const b = await proc.mmap(0, size, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    await proc.write(a, pattern(NPAGES, 6));
    const [ra, wb] = await Promise.all([mirror.read(a, NPAGES), mirror.write(b, pattern(NPAGES, 7))]);
    expect(wb.cpages).toBe(NPAGES);
    expectWords(ra.data, 6, 'read of a');
    expectWords(await proc.read(b, size), 7, 'CPU read of b');
  });
});
