/**
 * The mirror kernels' word-level bookkeeping: a thread serves 32 words (one done word) with
 * one page walk; words already done must not run again even when their done word is only
 * partly set — the per-word path of read, write and atomic.
 */
import { describe, expect } from 'vitest';
import { MirrorEngine, WORDS_PER_PAGE, type MirrorCommand, type MirrorOp } from '../../src/device/mirror-engine.js';
import { PTE_EXCLUSIVE, PTE_WRITE } from '../../src/device/page-table.js';
import { gpuTest as test } from '../support/gpu.js';
import { bit, expectAllEqual, patternPage, patternWord, POISON } from './mirror-helpers.js';

const NPAGES = 3;
const WORDS = NPAGES * WORDS_PER_PAGE;

/** Done-bit patterns, one per done word: none, all, and ragged ones. */
function donePattern(): Uint32Array<ArrayBuffer> {
  const bits = new Uint32Array(WORDS / 32);
  for (let w = 0; w < bits.length; w++) {
    const kind = w % 6;
    bits[w] = [0, 0xffffffff, 0x0000ffff, 0xaaaaaaaa, 0x80000001, 0x0f0f00f0][kind];
  }
  return bits;
}

/** Marks the given words done, as an earlier round would have (prev bitmap, parity 0). */
function presetDone(e: MirrorEngine, cmd: MirrorCommand, bits: Uint32Array<ArrayBuffer>): void {
  e.device.queue.writeBuffer(cmd.doneBits, 0, bits);
  let n = 0;
  for (const v of bits) {
    let x = v;
    while (x !== 0) { x &= x - 1; n++; }
  }
  // The state's done count (word 0) follows the bitmap.
  e.device.queue.writeBuffer(cmd.state, 0, Uint32Array.of(n));
  cmd.setDone(n);
}

describe('mirror kernels, partly done words', () => {
  test.for(['read', 'write', 'atomic'] as MirrorOp[])('%s: only the words not yet done run', async (op, { gpu }) => {
    const e = await MirrorEngine.create(gpu.device, { apertureSlots: 64, deviceSlots: 64 });
    try {
      const base = 2 ** 32 - 1; // crosses into the high word
      const flags = op === 'read' ? 0 : op === 'write' ? PTE_WRITE : PTE_WRITE | PTE_EXCLUSIVE;
      const slots: number[] = [];
      for (let p = 0; p < NPAGES; p++) {
        const slot = e.sysmem.alloc();
        e.sysmem.upload(slot, patternPage(base + p));
        e.pt.map(base + p, slot, flags);
        slots.push(slot);
      }
      const data = new Uint32Array(WORDS).map((_, i) => (i * 7 + 0x51000000) >>> 0);
      const init = op === 'write' ? data : new Uint32Array(WORDS).fill(POISON);
      const cmd = e.createCommand({ op, page: base, npages: NPAGES, data: init });
      const bits = donePattern();
      presetDone(e, cmd, bits);
      const r = await e.runRound(cmd);
      expect(r).toMatchObject({ faults: [], finished: true, done: WORDS });
      const mem = new Uint32Array((await e.sysmem.readback(slots)).buffer);
      const out = await cmd.readOutput();
      const wantMem = new Uint32Array(WORDS);
      const wantOut = new Uint32Array(WORDS);
      for (let i = 0; i < WORDS; i++) {
        const orig = patternWord(base + Math.floor(i / WORDS_PER_PAGE), i % WORDS_PER_PAGE);
        const ran = !bit(bits, i);
        wantMem[i] = op === 'write' ? (ran ? data[i] : orig) : op === 'atomic' ? (ran ? (orig + 1) >>> 0 : orig) : orig;
        wantOut[i] = op === 'write' ? data[i] : ran ? orig : POISON;
      }
      expectAllEqual(mem, wantMem, `${op}: memory`);
      expectAllEqual(out, wantOut, `${op}: io`);
      expect((await cmd.readDone()).every((w) => w === 0xffffffff)).toBe(true);
      const dirty = (await e.writebackDirty()).map((d) => d.slot);
      expect(dirty).toEqual(op === 'read' ? [] : slots);
    } finally {
      e.destroy();
    }
  });
});
