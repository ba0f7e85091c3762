import { describe, expect, it } from 'vitest';
import {
  BusError, MADV_DONTNEED, MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_FIXED, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, PROT_READ,
  PROT_WRITE, type Machine,
} from '../../src/index.js';
import { PMD_HUGE, PTE_SPECIAL, PTE_WRITE } from '../../src/mm/page-table.js';
import { VM_HUGEPAGE } from '../../src/mm/vma.js';
import { account, entryAt, fill, HUGE, PG, pattern, recordEvents, vmaList } from './helpers.js';
import { machineTest } from '../support/machine.js';
import { expectBytes } from './helpers.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('hugetlb', () => {
  machineTest('rounds the length to 2 MiB, aligns the address, maps PMD leaves from the pool', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, HUGE + PG, RW, ANON | MAP_HUGETLB);
    expect(a % HUGE).toBe(0);
    expect(vmaList(p)[0]).toMatchObject({ start: a, end: a + 2 * HUGE });
    await p.write(a + HUGE - 8, pattern(16, 1));
    const e = entryAt(p.mm, a)!;
    expect(e.level).toBe('pmd');
    expect(e.flags & PMD_HUGE).toBe(PMD_HUGE);
    expect(m.ram.isHead(e.pfn)).toBe(true);
    expect(entryAt(p.mm, a + HUGE)!.level).toBe('pmd');
    expectBytes(await p.read(a + HUGE - 8, 16), pattern(16, 1));
    account(m);
  });

  machineTest('munmap/mprotect/MAP_FIXED must cut hugetlb VMAs at 2 MiB boundaries (EINVAL)', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * HUGE, RW, ANON | MAP_HUGETLB);
    await p.write(a, fill(16, 1));
    const vmas = vmaList(p);
    await expect(p.munmap(a, PG)).rejects.toBeErrno('EINVAL');
    await expect(p.munmap(a + PG, HUGE)).rejects.toBeErrno('EINVAL');
    await expect(p.mprotect(a, HUGE + PG, PROT_READ)).rejects.toBeErrno('EINVAL');
    await expect(p.mmap(a + PG, PG, RW, ANON | MAP_FIXED)).rejects.toBeErrno('EINVAL');
    await expect(p.mmap(a + PG, HUGE, RW, ANON | MAP_FIXED | MAP_HUGETLB)).rejects.toBeErrno('EINVAL');
    await expect(p.madvise(a + PG, PG, MADV_DONTNEED)).rejects.toBeErrno('EINVAL');
    expect(vmaList(p)).toEqual(vmas);
    await p.mprotect(a + HUGE, HUGE, PROT_READ);
    expect(vmaList(p)).toHaveLength(2);
    await p.munmap(a + HUGE, HUGE);
    expect((await p.read(a, 1))[0]).toBe(1);
    account(m);
  });

  machineTest('private hugetlb is shared and write-protected across fork, copied on write', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, HUGE, RW, ANON | MAP_HUGETLB);
    await p.write(a, fill(HUGE, 7));
    const head = entryAt(p.mm, a)!.pfn;
    const c = await p.fork();
    expect(entryAt(c.mm, a)!.pfn).toBe(head);
    expect(m.ram.refcount[head]).toBe(2);
    expect(entryAt(p.mm, a)!.flags & PTE_WRITE).toBe(0);
    const rec = recordEvents(c.mm);
    await c.write(a + 100, fill(1, 8));
    expect(rec.starts().map((e) => [e.event, e.start, e.end])).toEqual([['CLEAR', a, a + HUGE]]);
    expect(entryAt(c.mm, a)!.pfn).not.toBe(head);
    expect((await p.read(a + 100, 1))[0]).toBe(7);
    expect((await c.read(a + 99, 2))).toEqual(new Uint8Array([7, 8]));
    await p.write(a, fill(1, 9)); // now exclusive: reuse
    expect(entryAt(p.mm, a)!.pfn).toBe(head);
    account(m);
  });

  machineTest('shared hugetlb is visible across fork; DONTNEED keeps its data', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, HUGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB);
    await p.write(a, fill(8, 3));
    const c = await p.fork();
    await c.write(a + 8, fill(8, 4));
    expect(await p.read(a, 16)).toEqual(new Uint8Array([...fill(8, 3), ...fill(8, 4)]));
    // DONTNEED rounds a hugetlb end down: a 4 KiB request does nothing.
    await p.madvise(a, PG, MADV_DONTNEED);
    expect(entryAt(p.mm, a)).not.toBeNull();
    await p.madvise(a, HUGE, MADV_DONTNEED);
    expect(entryAt(p.mm, a)).toBeNull();
    expect((await p.read(a + 8, 1))[0]).toBe(4);
    account(m);
  });

  machineTest('a mapping larger than the pool is ENOMEM at mmap (hugetlb_reserve_pages), not SIGBUS at a fault', async ({ machines }) => {
    const m = await machines({ systemPages: 2048 }); // 4 blocks: the first holds the zero page
    const p = m.spawn();
    await expect(p.mmap(0, 4 * HUGE, RW, ANON | MAP_HUGETLB)).rejects.toBeErrno('ENOMEM');
    const a = await p.mmap(0, 3 * HUGE, RW, ANON | MAP_HUGETLB);
    for (let i = 0; i < 3; i++) await p.write(a + i * HUGE, fill(1, 1));
    // A fork child's private fault has no reservation: with the pool empty, that is SIGBUS.
    const c = await p.fork();
    await expect(c.write(a, fill(1, 2))).rejects.toBeInstanceOf(BusError);
    account(m);
  });
});

describe('transparent huge pages (MADV_HUGEPAGE)', () => {
  machineTest('MADV_HUGEPAGE on part of a VMA splits it and sets VM_HUGEPAGE', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 4 * HUGE, RW, ANON);
    await p.madvise(a + HUGE, 2 * HUGE, MADV_HUGEPAGE);
    expect(vmaList(p).map((v) => [v.start - a, v.end - a, (v.flags & VM_HUGEPAGE) !== 0])).toEqual([
      [0, HUGE, false], [HUGE, 3 * HUGE, true], [3 * HUGE, 4 * HUGE, false],
    ]);
  });

  machineTest('faults map a PMD leaf; partial munmap splits it (CLEAR over 2 MiB first) and keeps data', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * HUGE, RW, ANON);
    await p.madvise(a, 2 * HUGE, MADV_HUGEPAGE);
    const d = pattern(2 * HUGE, 11);
    await p.write(a, d);
    const e = entryAt(p.mm, a)!;
    expect(e.level).toBe('pmd');
    expect(m.ram.isHead(e.pfn)).toBe(true);
    expect(entryAt(p.mm, a + HUGE)!.level).toBe('pmd');
    account(m);
    let stillHuge = false;
    const rec = recordEvents(p.mm, (r) => {
      if (r.event === 'CLEAR') stillHuge = entryAt(p.mm, a)!.level === 'pmd';
    });
    const free = m.ram.freePages;
    await p.munmap(a + 4 * PG, 2 * PG);
    expect(stillHuge).toBe(true);
    expect(rec.starts().map((r) => [r.event, r.start - a, r.end - a])).toEqual([
      ['CLEAR', 0, HUGE], ['UNMAP', 4 * PG, 6 * PG],
    ]);
    expect(entryAt(p.mm, a)!.level).toBe('pte');
    expect(entryAt(p.mm, a + 4 * PG)).toBeNull();
    expect(m.ram.freePages).toBe(free + 2); // the exclusive THP was split: the hole is freed
    expectBytes(await p.read(a, 4 * PG), d.subarray(0, 4 * PG));
    expectBytes(await p.read(a + 6 * PG, HUGE - 6 * PG), d.subarray(6 * PG, HUGE));
    expect(entryAt(p.mm, a + HUGE)!.level).toBe('pmd'); // the other THP untouched
    account(m);
  });

  machineTest('partial DONTNEED and mprotect split the PMD too', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * HUGE, RW, ANON);
    await p.madvise(a, 2 * HUGE, MADV_HUGEPAGE);
    await p.write(a, fill(2 * HUGE, 0x3c));
    await p.madvise(a + PG, PG, MADV_DONTNEED);
    expect(entryAt(p.mm, a)!.level).toBe('pte');
    expect((await p.read(a + PG, 1))[0]).toBe(0);
    expect((await p.read(a, 1))[0]).toBe(0x3c);
    await p.mprotect(a + HUGE + PG, PG, PROT_READ);
    expect(entryAt(p.mm, a + HUGE)!.level).toBe('pte');
    expect(entryAt(p.mm, a + HUGE + PG)!.flags & PTE_WRITE).toBe(0);
    await expect(p.write(a + HUGE + PG, fill(1, 1))).rejects.toMatchObject({ siCode: 'SEGV_ACCERR' });
    expect((await p.read(a + HUGE + PG, 1))[0]).toBe(0x3c);
    // A whole-PMD DONTNEED drops the leaf without splitting.
    const free = m.ram.freePages;
    await p.munmap(a + HUGE, HUGE);
    expect(m.ram.freePages).toBe(free + 512);
    account(m);
  });

  machineTest('THP COW after fork: the writer splits and copies one 4 KiB page', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, HUGE, RW, ANON);
    await p.madvise(a, HUGE, MADV_HUGEPAGE);
    const d = pattern(HUGE, 12);
    await p.write(a, d);
    const head = entryAt(p.mm, a)!.pfn;
    const c = await p.fork();
    expect(entryAt(c.mm, a)).toMatchObject({ level: 'pmd', pfn: head });
    expect(m.ram.refcount[head]).toBe(2);
    account(m);
    await c.write(a + 5 * PG, fill(1, 0));
    expect(entryAt(c.mm, a)!.level).toBe('pte');
    expect(entryAt(c.mm, a)!.pfn).toBe(head); // still maps the shared subpage
    expect(entryAt(c.mm, a + 5 * PG)!.pfn).not.toBe(head + 5);
    expect(entryAt(p.mm, a)!.level).toBe('pmd');
    expectBytes(await p.read(a, HUGE), d);
    const cd = d.slice();
    cd[5 * PG] = 0;
    expectBytes(await c.read(a, HUGE), cd);
    account(m);
    await p.write(a, fill(1, 1)); // parent splits too
    expect(entryAt(p.mm, a)!.level).toBe('pte');
    account(m);
    await c.exit();
    account(m);
  });

  machineTest('falls back to PTEs when no 2 MiB block is free and for unaligned VMA ends', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0x40000000 + PG, HUGE, RW, ANON);
    expect(a).toBe(0x40000000 + PG);
    await p.madvise(a, HUGE, MADV_HUGEPAGE);
    await p.write(a, fill(1, 1));
    expect(entryAt(p.mm, a)!.level).toBe('pte');
  });
});

describe('huge zero page', () => {
  /** A 2 MiB-aligned THP-enabled private anonymous block of `prot`. */
  async function thpBlock(p: ReturnType<Machine['spawn']>, prot = RW): Promise<number> {
    const raw = await p.mmap(0, 2 * HUGE, prot, ANON);
    const a = Math.ceil(raw / HUGE) * HUGE;
    await p.madvise(a, HUGE, MADV_HUGEPAGE);
    return a;
  }

  machineTest('a read fault maps the huge zero page (special, read-only PMD), one folio shared by every mapping; the last unmap frees it', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await thpBlock(p);
    const b = await thpBlock(p);
    expect(m.ram.hugeZero).toBe(-1);
    expectBytes(await p.read(a + 5 * PG, 8), new Uint8Array(8));
    expectBytes(await p.read(b, 8), new Uint8Array(8));
    const e = entryAt(p.mm, a)!;
    expect(e.level).toBe('pmd');
    expect(e.pfn).toBe(m.ram.hugeZero);
    expect(entryAt(p.mm, b)!.pfn).toBe(m.ram.hugeZero);
    expect(e.flags & (PTE_SPECIAL | PTE_WRITE)).toBe(PTE_SPECIAL);
    const c = await p.fork();
    // No anon_vma yet: fork copies nothing (copy_page_range's skip); the child's read maps it too.
    expect(entryAt(c.mm, a)).toBeNull();
    await c.read(a, 1);
    expect(entryAt(c.mm, a)!.pfn).toBe(m.ram.hugeZero);
    account(m);
    await c.exit();
    await p.munmap(a, HUGE);
    await p.munmap(b, HUGE);
    expect(m.ram.hugeZero, 'freed with its last mapping').toBe(-1);
    account(m);
  });

  machineTest('a write to it gets a fresh THP (do_huge_zero_wp_pmd); with no 2 MiB free it splits into small zero pages and copies one', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await thpBlock(p);
    await p.read(a, 1);
    const rec = recordEvents(p.mm);
    await p.write(a + PG, fill(4, 3));
    const e = entryAt(p.mm, a)!;
    expect(e.level).toBe('pmd');
    expect(m.ram.isHead(e.pfn) && e.pfn !== m.ram.hugeZero).toBe(true);
    expect(e.flags & PTE_WRITE).toBe(PTE_WRITE);
    expect(rec.events.some((x) => x.event === 'CLEAR' && x.start === a && x.end === a + HUGE)).toBe(true);
    expectBytes(await p.read(a + PG, 4), fill(4, 3));

    const b = await thpBlock(p);
    await p.read(b, 1);
    const held: number[] = [];
    for (;;) {
      try {
        held.push(m.ram.allocHuge());
      } catch {
        break;
      }
    }
    await p.write(b + 7 * PG, fill(4, 9));
    expect(entryAt(p.mm, b + 7 * PG)!.level).toBe('pte');
    expect(entryAt(p.mm, b)!.pfn, 'the rest: the small zero page').toBe(m.ram.zeroPfn);
    expect(entryAt(p.mm, b)!.flags & PTE_SPECIAL).toBe(PTE_SPECIAL);
    expectBytes(await p.read(b + 7 * PG, 4), fill(4, 9));
    expect(m.ram.hugeZero, 'its only mapping split away').toBe(-1);
    for (const h of held) m.ram.put(h);
    account(m);
  });

  machineTest('partial DONTNEED of it splits into small zero pages', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await thpBlock(p, PROT_READ);
    await p.read(a, 1);
    await p.madvise(a + PG, PG, MADV_DONTNEED);
    expect(entryAt(p.mm, a)!.level).toBe('pte');
    expect(entryAt(p.mm, a + PG)).toBeNull();
    expect(entryAt(p.mm, a + 2 * PG)!.pfn).toBe(m.ram.zeroPfn);
    expectBytes(await p.read(a, 3 * PG), new Uint8Array(3 * PG));
    account(m);
  });
});
