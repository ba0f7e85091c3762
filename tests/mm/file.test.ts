import { describe, expect, it } from 'vitest';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { PTE_WRITE } from '../../src/mm/page-table.js';
import { PG_FILE } from '../../src/mm/pages.js';
import { account, entryAt, fill, isZero, PG, pattern, recordEvents } from './helpers.js';
import { machineTest } from '../support/machine.js';
import { expectBytes } from './helpers.js';

const RW = PROT_READ | PROT_WRITE;

describe('file mappings and the page cache', () => {
  machineTest('MAP_SHARED maps the page-cache frames: pread/pwrite and stores are coherent', async ({ machine: m }) => {
    const p = m.spawn();
    const f = m.createFile(4 * PG);
    await f.pwrite(pattern(4 * PG, 1), 0);
    const a = await p.mmap(0, 4 * PG, RW, MAP_SHARED, f, 0);
    expectBytes(await p.read(a, 4 * PG), pattern(4 * PG, 1));
    const e = entryAt(p.mm, a)!;
    expect(e.pfn).toBe(f.cache.get(0));
    expect(m.core.pageKind[e.pfn]).toBe(PG_FILE);
    expect(m.ram.refcount[e.pfn]).toBe(2); // cache + mapping
    await p.write(a + PG + 3, fill(4, 0x42));
    expect(await f.pread(4, PG + 3)).toEqual(fill(4, 0x42));
    await f.pwrite(fill(2, 0x24), 2 * PG);
    expect(await p.read(a + 2 * PG, 2)).toEqual(fill(2, 0x24));
    // pread short at EOF, holes read zero.
    expect((await f.pread(100, 4 * PG - 10)).length).toBe(10);
    account(m);
    f.close();
    // The mapping keeps the file alive.
    expect(await p.read(a + PG + 3, 4)).toEqual(fill(4, 0x42));
  });

  machineTest('a file offset maps the right pages', async ({ machine: m }) => {
    const p = m.spawn();
    const f = m.createFile(8 * PG);
    await f.pwrite(pattern(8 * PG, 2), 0);
    const a = await p.mmap(0, 2 * PG, PROT_READ, MAP_SHARED, f, 3 * PG);
    expectBytes(await p.read(a, 2 * PG), pattern(8 * PG, 2).subarray(3 * PG, 5 * PG));
    f.close();
  });

  machineTest('MAP_PRIVATE reads the cache page and copies on write; the file is untouched', async ({ machine: m }) => {
    const p = m.spawn();
    const f = m.createFile(2 * PG);
    await f.pwrite(fill(2 * PG, 0x10), 0);
    const a = await p.mmap(0, 2 * PG, RW, MAP_PRIVATE, f, 0);
    expect((await p.read(a, 1))[0]).toBe(0x10);
    const cachePfn = f.cache.get(0)!;
    expect(entryAt(p.mm, a)!.pfn).toBe(cachePfn);
    expect(entryAt(p.mm, a)!.flags & PTE_WRITE).toBe(0);
    // Until written, the private mapping sees pwrite()s to the file.
    await f.pwrite(fill(1, 0x11), 0);
    expect((await p.read(a, 1))[0]).toBe(0x11);
    const rec = recordEvents(p.mm);
    await p.write(a + 1, fill(1, 0x99));
    expect(rec.starts().map((e) => e.event)).toEqual(['CLEAR']);
    expect(entryAt(p.mm, a)!.pfn).not.toBe(cachePfn);
    expect(await f.pread(2, 0)).toEqual(new Uint8Array([0x11, 0x10]));
    expect(await p.read(a, 2)).toEqual(new Uint8Array([0x11, 0x99]));
    // A write fault on an untouched page copies directly (do_cow_fault).
    await p.write(a + PG, fill(1, 0x77));
    expect((await f.pread(1, PG))[0]).toBe(0x10);
    account(m);
    // DONTNEED drops the private copy: the next read sees the page cache again.
    await p.madvise(a, 2 * PG, MADV_DONTNEED);
    expect(await p.read(a, 2)).toEqual(new Uint8Array([0x11, 0x10]));
    expect((await p.read(a + PG, 1))[0]).toBe(0x10);
    f.close();
    account(m);
  });

  machineTest('the last unmap of a closed file frees its page cache', async ({ machine: m }) => {
    const p = m.spawn();
    const f = m.createFile(3 * PG);
    await f.pwrite(fill(3 * PG, 5), 0);
    const a = await p.mmap(0, 3 * PG, RW, MAP_SHARED, f, 0);
    await p.read(a, 3 * PG);
    const free = m.ram.freePages;
    f.close();
    expect(m.ram.freePages).toBe(free);
    await p.munmap(a, 3 * PG);
    expect(m.ram.freePages).toBe(free + 3);
    expect(m.files.has(f)).toBe(false);
  });
});

describe('MADV_DONTNEED', () => {
  machineTest('private anon: zaps with CLEAR (PTE still there in the callback), next touch is zero', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    await p.write(a, pattern(4 * PG, 3));
    let present = false;
    const rec = recordEvents(p.mm, (r) => {
      if (r.event === 'CLEAR') present = entryAt(p.mm, a + PG) !== null;
    });
    const free = m.ram.freePages;
    await p.madvise(a + PG, 2 * PG, MADV_DONTNEED);
    expect(present).toBe(true);
    expect(rec.starts().map((e) => [e.event, e.start, e.end])).toEqual([['CLEAR', a + PG, a + 3 * PG]]);
    expect(m.ram.freePages).toBe(free + 2);
    expect(entryAt(p.mm, a + PG)).toBeNull();
    expect(isZero(await p.read(a + PG, 2 * PG))).toBe(true);
    expectBytes(await p.read(a, PG), pattern(4 * PG, 3).subarray(0, PG));
    account(m);
  });

  machineTest('shared anon and shared file: data survives in the page cache', async ({ machine: m }) => {
    const p = m.spawn();
    const s = await p.mmap(0, 2 * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
    await p.write(s, pattern(2 * PG, 4));
    await p.madvise(s, 2 * PG, MADV_DONTNEED);
    expect(entryAt(p.mm, s)).toBeNull();
    expectBytes(await p.read(s, 2 * PG), pattern(2 * PG, 4));
    const f = m.createFile(2 * PG);
    const fa = await p.mmap(0, 2 * PG, RW, MAP_SHARED, f, 0);
    await p.write(fa, pattern(2 * PG, 5));
    await p.madvise(fa, 2 * PG, MADV_DONTNEED);
    expectBytes(await f.pread(2 * PG, 0), pattern(2 * PG, 5));
    expectBytes(await p.read(fa, 2 * PG), pattern(2 * PG, 5));
    f.close();
    account(m);
  });

  machineTest('applies to the mapped parts of a range with holes, then fails with ENOMEM', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 3 * PG, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    await p.write(a, fill(3 * PG, 1));
    await p.munmap(a + PG, PG);
    await expect(p.madvise(a, 3 * PG, MADV_DONTNEED)).rejects.toBeErrno('ENOMEM');
    expect(isZero(await p.read(a, PG))).toBe(true);
    expect(isZero(await p.read(a + 2 * PG, PG))).toBe(true);
  });
});
