/** Page-pattern buffers and comparisons shared by the mirror tests (browser-safe: no Buffer). */
import { words } from '../../src/device/abi.js';
import { PAGE_SIZE } from '../../src/index.js';

export const WORDS = PAGE_SIZE / 4;

/** n pages, every u32 of page p equal to value(p). */
export function pagesOf(n: number, value: (p: number) => number): Uint8Array<ArrayBuffer> {
  const w = new Uint32Array(n * WORDS);
  for (let p = 0; p < n; p++) w.fill(value(p), p * WORDS, (p + 1) * WORDS);
  return new Uint8Array(w.buffer);
}


const hex = (v: number): string => `0x${v.toString(16)}`;

/** null when equal, else where the first differing u32 is. */
export function firstDiff(got: Uint8Array, want: Uint8Array): string | null {
  if (got.byteLength !== want.byteLength) return `length ${got.byteLength}, want ${want.byteLength}`;
  const a = words(got);
  const b = words(want);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `word ${i} (page ${Math.floor(i / WORDS)}): ${hex(a[i])}, want ${hex(b[i])}`;
  return null;
}
