/**
 * Every PTE change a device may have cached is preceded by invalidate_range_start with the
 * kernel's event over the right range: checked from inside the callback (the PTE is still the
 * old one) for each operation, with an interval notifier as the subscriber.
 */
import { describe, expect, it } from 'vitest';
import {
  MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE,
} from '../../src/index.js';
import type { MmStruct } from '../../src/mm/mm.js';
import type { MmuNotifierRange } from '../../src/mm/notifier.js';
import { entryAt, fill, HUGE, PG } from './helpers.js';
import { machineTest } from '../support/machine.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

type Seen = { event: string; start: number; end: number; old: string };

/** An interval notifier over everything that records each range and the entry at `probe`. */
async function watch(mm: MmStruct, probe: () => number): Promise<Seen[]> {
  const seen: Seen[] = [];
  await mm.notifiers.insertInterval(0, 2 ** 47, {
    invalidate(_sub, r: MmuNotifierRange) {
      const e = entryAt(mm, probe());
      seen.push({ event: r.event, start: r.start, end: r.end, old: e === null ? 'none' : `${e.level}:${e.pfn}:${e.flags}` });
      return true;
    },
  });
  return seen;
}

function key(mm: MmStruct, a: number): string {
  const e = entryAt(mm, a);
  return e === null ? 'none' : `${e.level}:${e.pfn}:${e.flags}`;
}

describe('invalidation before every PTE change', () => {
  machineTest('COW break in the fault path: CLEAR over the page, old shared PTE seen', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await p.write(a, fill(2 * PG, 1));
    const c = await p.fork();
    const before = key(c.mm, a + PG);
    const seen = await watch(c.mm, () => a + PG);
    await c.write(a + PG + 7, fill(1, 2));
    expect(seen).toEqual([{ event: 'CLEAR', start: a + PG, end: a + 2 * PG, old: before }]);
    expect(key(c.mm, a + PG)).not.toBe(before);
  });

  machineTest('zero page → private page on write: CLEAR (wp_page_copy)', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, PG, RW, ANON);
    await p.read(a, 1);
    const before = key(p.mm, a);
    const seen = await watch(p.mm, () => a);
    await p.write(a, fill(1, 1));
    expect(seen).toEqual([{ event: 'CLEAR', start: a, end: a + PG, old: before }]);
  });

  machineTest('a first-touch fault of an empty PTE sends nothing', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, PG, RW, ANON);
    const seen = await watch(p.mm, () => a);
    await p.write(a, fill(1, 1));
    await p.read(a, 1);
    expect(seen).toEqual([]);
  });

  machineTest('munmap UNMAP, mprotect PROTECTION_VMA, DONTNEED CLEAR, PAGEOUT CLEAR, fork PROTECTION_PAGE, MAP_FIXED UNMAP', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 8 * PG, RW, ANON);
    await p.write(a, fill(8 * PG, 3));
    let probe = a;
    const seen = await watch(p.mm, () => probe);
    const step = async (addr: number, op: () => Promise<unknown>): Promise<Seen[]> => {
      probe = addr;
      const before = key(p.mm, addr);
      const n = seen.length;
      await op();
      const got = seen.slice(n);
      for (const s of got) expect(s.old).toBe(before);
      return got;
    };
    expect(await step(a, () => p.mprotect(a, 2 * PG, PROT_READ))).toMatchObject([{ event: 'PROTECTION_VMA', start: a, end: a + 2 * PG }]);
    expect(await step(a + 2 * PG, () => p.madvise(a + 2 * PG, PG, MADV_DONTNEED))).toMatchObject([{ event: 'CLEAR', start: a + 2 * PG, end: a + 3 * PG }]);
    expect(await step(a + 3 * PG, () => p.madvise(a + 3 * PG, PG, MADV_PAGEOUT))).toMatchObject([{ event: 'CLEAR', start: a + 3 * PG, end: a + 4 * PG }]);
    expect(await step(a + 4 * PG, () => p.munmap(a + 4 * PG, PG))).toMatchObject([{ event: 'UNMAP', start: a + 4 * PG, end: a + 5 * PG }]);
    expect(await step(a + 5 * PG, () => p.mmap(a + 5 * PG, PG, RW, ANON | MAP_FIXED))).toMatchObject([{ event: 'UNMAP', start: a + 5 * PG, end: a + 6 * PG }]);
    const f = await step(a + 6 * PG, () => p.fork());
    // One per VMA with an anon_vma: [a, +2) r--, [a+2, +4) rw-, and [a+5, +8) (the MAP_FIXED
    // piece merged with its neighbour).
    expect(f.map((s) => [s.event, (s.start - a) / PG, (s.end - a) / PG])).toEqual([
      ['PROTECTION_PAGE', 0, 2], ['PROTECTION_PAGE', 2, 4], ['PROTECTION_PAGE', 5, 8],
    ]);
    expect(f.some((s) => s.start <= a + 6 * PG && s.end > a + 6 * PG)).toBe(true);
  });

  machineTest('THP split: CLEAR over the 2 MiB block while the PMD leaf is still there', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, HUGE, RW, ANON);
    await p.madvise(a, HUGE, MADV_HUGEPAGE);
    await p.write(a, fill(HUGE, 4));
    const before = key(p.mm, a);
    expect(before.startsWith('pmd')).toBe(true);
    const seen = await watch(p.mm, () => a);
    await p.madvise(a + 3 * PG, PG, MADV_DONTNEED);
    expect(seen).toEqual([
      { event: 'CLEAR', start: a, end: a + HUGE, old: before },
      expect.objectContaining({ event: 'CLEAR', start: a + 3 * PG, end: a + 4 * PG }),
    ]);
  });

  machineTest('exit: RELEASE then one UNMAP over the address space, PTEs still mapped in the callback', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, PG, RW, ANON);
    await p.write(a, fill(1, 1));
    const before = key(p.mm, a);
    const seen = await watch(p.mm, () => a);
    await p.exit();
    expect(seen.map((s) => [s.event, s.old])).toEqual([['RELEASE', before], ['UNMAP', before]]);
    expect(seen[1]).toMatchObject({ start: 0, end: 2 ** 47 });
  });

  machineTest('nothing is sent when nobody subscribes (hasSubscriptions fast path)', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await p.write(a, fill(2 * PG, 1));
    await p.munmap(a, PG);
    expect(p.mm.notifiers.stats.invalidations).toBe(0);
  });
});
