import { describe, expect, it } from 'vitest';
import type { FaultAccess, FaultRecord } from '../../src/device/fault-queue.js';
import { coalesce, dedupe, perFault, type WindowPolicy } from '../../src/driver/coalesce.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Machine } from '../../src/index.js';
import type { Process } from '../../src/mm/process.js';
import { machineTest } from '../support/machine.js';

const MiB = 1024 * 1024;
const BASE = 0x40000000; // 1 GiB: 2 MiB aligned
const P0 = BASE / PAGE_SIZE;

function rec(page: number, access: FaultAccess = 'read', source = 0): FaultRecord {
  return { page, access, source, protection: false };
}

/** Two adjacent VMAs of different protection ([BASE, +3 MiB) RW, [+3 MiB, +4 MiB) R), then a hole, then one more. */
async function layout(m: Machine): Promise<Process> {
  const p = m.spawn();
  await p.mmap(BASE, 3 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  await p.mmap(BASE + 3 * MiB, MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  await p.mmap(BASE + 6 * MiB, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  return p;
}

describe('coalescer', () => {
  it('drops duplicates keeping the most intrusive access (atomic > write > read)', () => {
    const want = dedupe([rec(5, 'read', 0), rec(5, 'write', 1), rec(5, 'read', 2), rec(6, 'atomic', 0), rec(6, 'write', 3), rec(7)]);
    expect([...want.entries()].sort()).toEqual([[5, 1], [6, 2], [7, 0]]);
  });

  machineTest('sorts, groups by window-aligned block, and counts what it dropped', async ({ machine }) => {
    const p = await layout(machine);
    const records = [rec(P0 + 20), rec(P0 + 3, 'write'), rec(P0 + 3), rec(P0 + 17, 'read', 4), rec(P0 + 600), rec(P0 + 3, 'read', 7)];
    const r = coalesce(p.mm, records, { window: 65536 });
    expect(r.fetched).toBe(6);
    expect(r.duplicates).toBe(2);
    expect(r.unique).toBe(4);
    // 64 KiB = 16 pages: pages 3 | 17, 20 | 600.
    expect(r.groups.map((g) => [g.start - BASE, g.end - BASE, g.pages.map((x) => x - P0), g.rank])).toEqual([
      [0, 65536, [3], 1],
      [65536, 131072, [17, 20], 0],
      [37 * 65536, 38 * 65536, [600], 0],
    ]);
  });

  machineTest('each window: streaming faults over one VMA give ceil(pages / window) groups', async ({ machine }) => {
    const p = await layout(machine);
    const records = Array.from({ length: 700 }, (_, i) => rec(P0 + i, i % 3 === 0 ? 'write' : 'read', i % 8));
    for (const [w, n] of [[4096, 700], [65536, Math.ceil(700 / 16)], [2 * MiB, 2], ['amd', 2]] as [WindowPolicy, number][]) {
      const r = coalesce(p.mm, records, { window: w });
      expect(r.groups.length, `window ${w}`).toBe(n);
      expect(r.groups.reduce((s, g) => s + g.pages.length, 0)).toBe(700);
      // A group faults with write access if any fault in it wrote.
      for (const g of r.groups) expect(g.rank).toBe(w === 4096 ? ((g.pages[0] - P0) % 3 === 0 ? 1 : 0) : 1);
    }
  });

  machineTest('a window never crosses a VMA boundary; holes are reported, not grouped', async ({ machine }) => {
    const p = await layout(machine);
    // 2 MiB block [2, 4) MiB spans the RW VMA's end at 3 MiB and the R VMA; 4-6 MiB is a hole.
    const pages = [P0 + 767, P0 + 768, P0 + 769, P0 + 1100, P0 + 1300, P0 + 1536];
    const r = coalesce(p.mm, pages.map((x) => rec(x)), { window: 2097152 });
    expect(r.holes.map((x) => x - P0)).toEqual([1100, 1300]);
    expect(r.groups.map((g) => [(g.start - BASE) / MiB, (g.end - BASE) / MiB, g.pages.map((x) => x - P0)])).toEqual([
      [2, 3, [767]],
      [3, 4, [768, 769]],
      [6, 7, [1536]],
    ]);
    expect(r.groups[0].vma).not.toBe(r.groups[1].vma);
  });

  machineTest('drops faults the mirror already serviced (stale), and AMD drops recently validated blocks', async ({ machine }) => {
    const p = await layout(machine);
    const records = [rec(P0 + 1), rec(P0 + 2, 'write'), rec(P0 + 600)];
    const r = coalesce(p.mm, records, { window: 65536, isMapped: (page, rank) => page === P0 + 1 || (page === P0 + 2 && rank === 0) });
    expect(r.stale).toBe(1);
    expect(r.groups.map((g) => g.pages.map((x) => x - P0))).toEqual([[2], [600]]);
    const amd = coalesce(p.mm, records, { window: 'amd', now: 10, lastValidated: (b) => (b === BASE ? 9 : undefined) });
    expect(amd.recent).toBe(2);
    expect(amd.groups.map((g) => g.pages.map((x) => x - P0))).toEqual([[600]]);
    const later = coalesce(p.mm, records, { window: 'amd', now: 12, lastValidated: (b) => (b === BASE ? 9 : undefined) });
    expect(later.recent).toBe(0);
  });

  machineTest('the per-fault baseline keeps every record, duplicates included', async ({ machine }) => {
    const p = await layout(machine);
    const r = perFault(p.mm, [rec(P0 + 1), rec(P0 + 1, 'write'), rec(P0 + 2), rec(P0 + 1100)]);
    expect(r.groups.map((g) => [g.pages[0] - P0, g.end - g.start, g.rank])).toEqual([[1, 4096, 0], [1, 4096, 1], [2, 4096, 0]]);
    expect(r.holes).toEqual([P0 + 1100]);
  });
});
