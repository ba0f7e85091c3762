/**
 * Helpers for the device-layer tests: a deterministic page pattern, element-by-element
 * comparison, and a toy fault service standing in for the driver (the real one, tying
 * faults to the mm through hmm_range_fault, comes later).
 */
import { expect } from 'vitest';
import type { FaultRecord } from '../../src/device/fault-queue.js';
import { WORDS_PER_PAGE, type MirrorCommand, type MirrorEngine } from '../../src/device/mirror-engine.js';
import { replayCommand, type CommandOutcome } from '../../src/device/replay.js';
import { PTE_EXCLUSIVE, PTE_WRITE } from '../../src/device/page-table.js';

export { POISON } from '../../src/device/smoke.js';

/** Word w of page p's contents: depends on both halves of p, so a wrong page shows. */
export function patternWord(page: number, w: number, salt = 0): number {
  const lo = page % 2 ** 32;
  const hi = Math.floor(page / 2 ** 32);
  return (Math.imul(lo ^ Math.imul(hi + 1, 0x9e3779b1) ^ salt, 0x85ebca6b) + Math.imul(w, 0x27d4eb2f) + 1) >>> 0;
}

export function patternPage(page: number, salt = 0): Uint8Array<ArrayBuffer> {
  const words = new Uint32Array(WORDS_PER_PAGE);
  for (let w = 0; w < WORDS_PER_PAGE; w++) words[w] = patternWord(page, w, salt);
  return new Uint8Array(words.buffer);
}

/** Compares every element and reports the first few mismatches with their index. */
export function expectAllEqual(got: Uint32Array, want: Uint32Array, what = ''): void {
  expect(got.length, `${what} length`).toBe(want.length);
  const bad: string[] = [];
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) bad.push(`[${i}] got 0x${got[i].toString(16)} want 0x${want[i].toString(16)}`);
  }
  expect(bad.slice(0, 8), `${what}: ${bad.length} of ${want.length} elements differ`).toEqual([]);
}

export function bit(bits: Uint32Array, i: number): boolean {
  return (bits[i >>> 5] & (1 << (i & 31))) !== 0;
}

/** The replay loop with a plain function as its fault service (a toy driver's). */
export function runToCompletion(
  engine: MirrorEngine, cmd: MirrorCommand, fn: (faults: FaultRecord[]) => Promise<void>, maxRounds?: number,
): Promise<CommandOutcome> {
  return replayCommand(engine, cmd, { service: (r) => fn(r.faults) }, { maxRounds });
}

/**
 * A toy driver: on a fault, back the page with a fresh aperture slot holding patternPage
 * (or upgrade the mapping's rights in place), granting what the access needs.
 */
export function toyService(engine: MirrorEngine, log: FaultRecord[][] = []) {
  return async (faults: FaultRecord[]): Promise<void> => {
    log.push(faults);
    for (const f of faults) {
      const need = f.access === 'read' ? 0 : f.access === 'write' ? PTE_WRITE : PTE_WRITE | PTE_EXCLUSIVE;
      const cur = engine.pt.lookup(f.page);
      if (cur) {
        if ((cur.flags & need) !== need) engine.pt.map(f.page, cur.slot, (cur.flags & 0xe) | need);
        continue;
      }
      const slot = engine.sysmem.alloc();
      engine.sysmem.upload(slot, patternPage(f.page));
      engine.pt.map(f.page, slot, need);
    }
  };
}
