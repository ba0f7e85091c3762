import { describe, expect, it } from 'vitest';
import {
  BusError, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_NONE, PROT_READ, PROT_WRITE, SegmentationFault,
} from '../../src/index.js';
import { PTE_SPECIAL, PTE_WRITE } from '../../src/mm/page-table.js';
import { PG_ANON } from '../../src/mm/pages.js';
import { account, entryAt, fill, isZero, PG, pattern } from './helpers.js';
import { machineTest } from '../support/machine.js';
import { expectBytes } from './helpers.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('demand paging', () => {
  machineTest('a read of fresh private anon memory maps the zero page read-only', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    expect(entryAt(p.mm, a)).toBeNull();
    const free = m.ram.freePages;
    expect(isZero(await p.read(a, 4 * PG))).toBe(true);
    const e = entryAt(p.mm, a + PG)!;
    expect(e.pfn).toBe(m.ram.zeroPfn);
    expect(e.flags & PTE_SPECIAL).toBe(PTE_SPECIAL);
    expect(e.flags & PTE_WRITE).toBe(0);
    expect(m.ram.freePages).toBe(free); // no frame allocated
    expect(m.ram.refcount[m.ram.zeroPfn]).toBe(1); // pte_special: no reference taken
    account(m);
    // A write replaces the zero page with a private zeroed frame.
    await p.write(a + PG + 10, fill(3, 0x77));
    const e2 = entryAt(p.mm, a + PG)!;
    expect(e2.pfn).not.toBe(m.ram.zeroPfn);
    expect(e2.flags & PTE_WRITE).toBe(PTE_WRITE);
    expect(m.core.pageKind[e2.pfn]).toBe(PG_ANON);
    expect(m.ram.refcount[e2.pfn]).toBe(1);
    const back = await p.read(a + PG, PG);
    expect(back[9]).toBe(0);
    expect(back[10]).toBe(0x77);
    expect(back[13]).toBe(0);
    expect(m.ram.data(m.ram.zeroPfn).every((x) => x === 0)).toBe(true);
    account(m);
  });

  machineTest('a write fault allocates directly and data round-trips across page boundaries', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 5 * PG, RW, ANON);
    const d = pattern(3 * PG + 100, 9);
    await p.write(a + PG - 50, d);
    expectBytes(await p.read(a + PG - 50, d.length), d);
    expect(entryAt(p.mm, a)!.flags & PTE_WRITE).toBe(PTE_WRITE);
    account(m);
  });
});

describe('bad accesses', () => {
  machineTest('SEGV_MAPERR for an unmapped address, SEGV_ACCERR for a permission miss', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, PROT_READ, ANON);
    const e1 = await p.read(a - PG, 1).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(SegmentationFault);
    expect(e1).toMatchObject({ siCode: 'SEGV_MAPERR', addr: a - PG });
    const e2 = await p.write(a + 5, fill(1, 1)).catch((e: unknown) => e);
    expect(e2).toMatchObject({ siCode: 'SEGV_ACCERR', addr: a + 5 });
    const n = await p.mmap(0, PG, PROT_NONE, ANON);
    await expect(p.read(n, 1)).rejects.toMatchObject({ siCode: 'SEGV_ACCERR' });
  });

  machineTest('a store never partially applies: a fault on the last page leaves earlier pages untouched', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 3 * PG, RW, ANON);
    await p.write(a, fill(3 * PG, 0x11));
    await p.mprotect(a + 2 * PG, PG, PROT_READ);
    await expect(p.write(a + PG, fill(2 * PG, 0xee))).rejects.toMatchObject({ siCode: 'SEGV_ACCERR', addr: a + 2 * PG });
    expect((await p.read(a, 3 * PG)).every((x) => x === 0x11)).toBe(true);
    // Across into an unmapped page: MAPERR, nothing written.
    await p.munmap(a + 2 * PG, PG);
    await expect(p.write(a + PG, fill(2 * PG, 0xee))).rejects.toMatchObject({ siCode: 'SEGV_MAPERR' });
    expect((await p.read(a, 2 * PG)).every((x) => x === 0x11)).toBe(true);
    // A read spanning a hole faults too.
    await expect(p.read(a + PG, 2 * PG)).rejects.toBeInstanceOf(SegmentationFault);
    account(m);
  });

  machineTest('SIGBUS past the end of a file mapping', async ({ machine: m }) => {
    const p = m.spawn();
    const f = m.createFile(PG + 100); // two pages' worth of i_size
    const a = await p.mmap(0, 4 * PG, RW, MAP_SHARED, f, 0);
    await p.write(a + PG, fill(200, 1)); // inside the last (partial) page: fine
    const e = await p.read(a + 2 * PG, 1).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BusError);
    expect(e).toMatchObject({ addr: a + 2 * PG });
    // Growing the file makes the page reachable.
    await f.pwrite(fill(PG, 3), 2 * PG);
    expect((await p.read(a + 2 * PG, PG)).every((x) => x === 3)).toBe(true);
    f.close();
  });
});
