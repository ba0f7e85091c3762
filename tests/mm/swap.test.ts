import { describe, expect, it } from 'vitest';
import {
  MADV_HUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE,
} from '../../src/index.js';
import { PTE_WRITE, swpKind, SWP_SWAP } from '../../src/mm/page-table.js';
import { account, entryAt, expectBytes, fill, HUGE, PG, pattern, recordEvents } from './helpers.js';
import { machineTest } from '../support/machine.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('MADV_PAGEOUT and swap', () => {
  machineTest('swaps private anon pages out (CLEAR first, frame freed) and back in with contents', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    const d = pattern(4 * PG, 21);
    await p.write(a, d);
    const pfn = entryAt(p.mm, a + PG)!.pfn;
    let presentInCallback = 0;
    const rec = recordEvents(p.mm, (r) => {
      if (entryAt(p.mm, r.start)?.flags !== undefined && (entryAt(p.mm, r.start)!.flags & 1) === 1) presentInCallback++;
    });
    const free = m.ram.freePages;
    await p.madvise(a, 4 * PG, MADV_PAGEOUT);
    expect(rec.starts().map((e) => [e.event, e.start - a, e.end - a])).toEqual(
      [0, 1, 2, 3].map((i) => ['CLEAR', i * PG, (i + 1) * PG]),
    );
    expect(presentInCallback).toBe(4);
    expect(m.ram.freePages).toBe(free + 4);
    expect(m.ram.refcount[pfn]).toBe(0);
    const e = entryAt(p.mm, a + PG)!;
    expect(swpKind(e.flags)).toBe(SWP_SWAP);
    expect(m.swap.used).toBe(4);
    account(m);
    expectBytes(await p.read(a, 4 * PG), d);
    expect(m.swap.used).toBe(0);
    // An exclusive swapped-in page is mapped writable at once.
    expect(entryAt(p.mm, a)!.flags & PTE_WRITE).toBe(PTE_WRITE);
    account(m);
  });

  machineTest('swap entries survive fork (swap_duplicate) and each side swaps in its own copy', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await p.write(a, pattern(2 * PG, 22));
    await p.madvise(a, 2 * PG, MADV_PAGEOUT);
    const c = await p.fork();
    account(m);
    await c.write(a, fill(1, 0));
    expectBytes(await p.read(a, 2 * PG), pattern(2 * PG, 22));
    const cd = pattern(2 * PG, 22);
    cd[0] = 0;
    expectBytes(await c.read(a, 2 * PG), cd);
    account(m);
    await c.exit();
  });

  machineTest('pages shared after fork are skipped; zero-page PTEs too', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 3 * PG, RW, ANON);
    await p.write(a, fill(2 * PG, 1));
    await p.read(a + 2 * PG, 1);
    const c = await p.fork();
    await p.madvise(a, 3 * PG, MADV_PAGEOUT);
    expect(m.swap.used).toBe(0);
    expect(entryAt(p.mm, a)!.flags & 1).toBe(1);
    await c.exit();
  });

  machineTest('file and shared pages lose the mapping but keep their data in the page cache', async ({ machine: m }) => {
    const p = m.spawn();
    const s = await p.mmap(0, 2 * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
    await p.write(s, pattern(2 * PG, 23));
    await p.madvise(s, 2 * PG, MADV_PAGEOUT);
    expect(entryAt(p.mm, s)).toBeNull();
    expect(m.swap.used).toBe(0);
    expectBytes(await p.read(s, 2 * PG), pattern(2 * PG, 23));
    account(m);
  });

  machineTest('an exclusive THP is split and swapped out; hugetlb is EINVAL', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, HUGE, RW, ANON);
    await p.madvise(a, HUGE, MADV_HUGEPAGE);
    await p.write(a, pattern(HUGE, 24));
    await p.madvise(a, 8 * PG, MADV_PAGEOUT);
    expect(entryAt(p.mm, a)!.level).toBe('pte');
    expect(m.swap.used).toBe(8);
    account(m);
    expectBytes(await p.read(a, HUGE), pattern(HUGE, 24));
    const h = await p.mmap(0, HUGE, RW, ANON | MAP_HUGETLB);
    await expect(p.madvise(h, HUGE, MADV_PAGEOUT)).rejects.toBeErrno('EINVAL');
  });
});
