/** Shared helpers for the mm tests: patterns, snapshots, notifier recorders (machines: tests/support/machine.ts). */
import { expect } from 'vitest';
import type { Process } from '../../src/index.js';
import type { Machine as MmMachine } from '../../src/mm/machine.js';
import { checkFrameAccounting } from '../../src/mm/accounting.js';
import type { MmStruct } from '../../src/mm/mm.js';
import type { MmuNotifierRange } from '../../src/mm/notifier.js';
import { pmdIndex, pteIndex } from '../../src/mm/page-table.js';
import { bytePattern } from '../support/prng.js';

export const PG = 4096;
export const HUGE = 2 * 1024 * 1024;

/** A distinctive, position-dependent byte pattern (never a zero byte), from the tests' one PRNG. */
export function pattern(len: number, seed: number): Uint8Array {
  return bytePattern(len, seed);
}

export function fill(len: number, byte: number): Uint8Array {
  return new Uint8Array(len).fill(byte);
}

export function isZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

/** The VMA list as plain data. */
export function vmaList(p: Process): { start: number; end: number; flags: number; pgoff: number; file: string | null }[] {
  return [...p.mm.vmas].map((v) => ({ start: v.start, end: v.end, flags: v.flags, pgoff: v.pgoff, file: v.file?.name ?? null }));
}

/** The PTE/PMD entry at addr: { level, pfn, flags } or null. */
export function entryAt(mm: MmStruct, addr: number): { level: 'pte' | 'pmd'; pfn: number; flags: number } | null {
  const pmd = mm.pgtable.pmd(addr, false);
  if (pmd === null) return null;
  const i = pmdIndex(addr);
  if (pmd.isHuge(i)) return { level: 'pmd', pfn: pmd.pfn[i], flags: pmd.flags[i] };
  const t = pmd.tables[i];
  if (t === null || t.flags[pteIndex(addr)] === 0) return null;
  return { level: 'pte', pfn: t.pfn[pteIndex(addr)], flags: t.flags[pteIndex(addr)] };
}

/** Every non-none entry of the mm, as "addr:level:pfn:flags" strings. */
export function pageTableSnapshot(mm: MmStruct): string[] {
  const out: string[] = [];
  mm.pgtable.forEachPmd((base, pmd) => {
    for (let i = 0; i < 512; i++) {
      const a = base + i * HUGE;
      if (pmd.isHuge(i)) out.push(`${a.toString(16)}:pmd:${pmd.pfn[i]}:${pmd.flags[i]}`);
      const t = pmd.tables[i];
      if (t === null) continue;
      for (let j = 0; j < 512; j++) if (t.flags[j] !== 0) out.push(`${(a + j * PG).toString(16)}:pte:${t.pfn[j]}:${t.flags[j]}`);
    }
  });
  return out;
}

export interface RecordedEvent {
  event: string;
  start: number;
  end: number;
  owner: unknown;
  phase: 'start' | 'end';
}

/**
 * A legacy mmu_notifier recording every start/end; `onStart` runs inside the start callback
 * (to look at the PTEs before they change).
 */
export function recordEvents(mm: MmStruct, onStart?: (r: MmuNotifierRange) => void): { events: RecordedEvent[]; starts(): RecordedEvent[] } {
  const events: RecordedEvent[] = [];
  mm.notifiers.register({
    invalidateRangeStart(r) {
      events.push({ event: r.event, start: r.start, end: r.end, owner: r.owner, phase: 'start' });
      onStart?.(r);
      return true;
    },
    invalidateRangeEnd(r) {
      events.push({ event: r.event, start: r.start, end: r.end, owner: r.owner, phase: 'end' });
    },
  });
  return { events, starts: () => events.filter((e) => e.phase === 'start') };
}

export function account(m: MmMachine): ReturnType<typeof checkFrameAccounting> {
  return checkFrameAccounting(m);
}

/** After destroy: every frame but the zero page is free, nothing in swap. */
export async function destroyAndCheckEmpty(m: MmMachine): Promise<void> {
  await m.destroy();
  const r = checkFrameAccounting(m);
  expect(r.usedFrames).toBe(1);
  expect(r.swapSlots).toBe(0);
  expect(m.ram.freePages).toBe(m.ram.npages - 1);
}

/** Fast byte comparison (vitest's deep equality is slow on MiB-sized arrays). */
export function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  if (actual.length === expected.length && Buffer.from(actual.buffer, actual.byteOffset, actual.length)
    .equals(Buffer.from(expected.buffer, expected.byteOffset, expected.length))) return;
  let i = 0;
  while (i < Math.min(actual.length, expected.length) && actual[i] === expected[i]) i++;
  expect.fail(`bytes differ at ${i} (lengths ${actual.length}/${expected.length}): got ${actual[i]}, expected ${expected[i]}`);
}
