/**
 * The one PRNG of the tests: the seeded scheduler's mulberry32 (src/sched/seeded.ts), so a
 * failing seed replays and tests draw from the same generator as the interleavings.
 */
import { mulberry32 } from '../../src/sched/seeded.js';

/** Floats in [0, 1) from a seed. */
export function randomFloats(seed: number): () => number {
  return mulberry32(seed);
}

/** 32-bit unsigned integers from a seed (mulberry32's output before it is scaled to [0, 1)). */
export function randomU32(seed: number): () => number {
  const next = mulberry32(seed);
  return () => (next() * 2 ** 32) >>> 0;
}

/** n deterministic u32s, e.g. a buffer's contents, so failures reproduce. */
export function u32Data(n: number, seed = 0x9e3779b9): Uint32Array<ArrayBuffer> {
  const next = randomU32(seed);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = next();
  return out;
}

/** n deterministic bytes, never zero (so a page of them never looks like a fresh page). */
export function bytePattern(n: number, seed: number): Uint8Array {
  const next = randomU32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() & 0xff) | 1;
  return out;
}
