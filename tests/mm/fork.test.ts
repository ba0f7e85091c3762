import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { PTE_WRITE } from '../../src/mm/page-table.js';
import { account, entryAt, fill, PG, pattern, recordEvents } from './helpers.js';
import { machineTest } from '../support/machine.js';
import { expectBytes } from './helpers.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('fork and copy-on-write', () => {
  machineTest('shares frames write-protected, with PROTECTION_PAGE over the VMA before the change', async ({ machine: m }) => {
    const parent = m.spawn();
    const a = await parent.mmap(0, 4 * PG, RW, ANON);
    const d = pattern(4 * PG, 5);
    await parent.write(a, d);
    const pfn = entryAt(parent.mm, a)!.pfn;
    let writableInCallback = false;
    const rec = recordEvents(parent.mm, (r) => {
      if (r.event === 'PROTECTION_PAGE') writableInCallback = (entryAt(parent.mm, a)!.flags & PTE_WRITE) !== 0;
    });
    const child = await parent.fork();
    expect(writableInCallback).toBe(true);
    expect(rec.starts().map((e) => [e.event, e.start, e.end])).toEqual([['PROTECTION_PAGE', a, a + 4 * PG]]);
    expect(entryAt(parent.mm, a)!.flags & PTE_WRITE).toBe(0);
    expect(entryAt(child.mm, a)!.flags & PTE_WRITE).toBe(0);
    expect(entryAt(child.mm, a)!.pfn).toBe(pfn);
    expect(m.ram.refcount[pfn]).toBe(2);
    expectBytes(await child.read(a, 4 * PG), d);
    account(m);

    // Child writes: it gets a copy (CLEAR on the child's mm); the parent keeps the original.
    const crec = recordEvents(child.mm);
    await child.write(a + 10, fill(5, 0xcc));
    expect(crec.starts().map((e) => [e.event, e.start, e.end])).toEqual([['CLEAR', a, a + PG]]);
    expect(entryAt(child.mm, a)!.pfn).not.toBe(pfn);
    expect(m.ram.refcount[pfn]).toBe(1);
    expectBytes(await parent.read(a, 4 * PG), d);
    const cd = d.slice();
    cd.fill(0xcc, 10, 15);
    expectBytes(await child.read(a, 4 * PG), cd);

    // Parent writes to that page: it now holds the only reference, so it reuses it (no CLEAR).
    const before = rec.events.length;
    await parent.write(a + 20, fill(1, 0xdd));
    expect(rec.events.length).toBe(before);
    expect(entryAt(parent.mm, a)!.pfn).toBe(pfn);
    expect((await child.read(a + 20, 1))[0]).toBe(d[20]);

    // Parent writes a still-shared page: copy; child unaffected.
    await parent.write(a + PG, fill(PG, 0xab));
    expectBytes(await child.read(a + PG, PG), d.subarray(PG, 2 * PG));
    account(m);

    // When the child exits, the frames it shared are the parent's alone again: writes reuse.
    const shared = entryAt(parent.mm, a + 2 * PG)!.pfn;
    expect(m.ram.refcount[shared]).toBe(2);
    await child.exit();
    expect(m.ram.refcount[shared]).toBe(1);
    await parent.write(a + 2 * PG, fill(1, 1));
    expect(entryAt(parent.mm, a + 2 * PG)!.pfn).toBe(shared);
    account(m);
  });

  machineTest('shared anonymous memory stays shared across fork in both directions', async ({ machine: m }) => {
    const parent = m.spawn();
    const a = await parent.mmap(0, 2 * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
    await parent.write(a, fill(PG, 1));
    const child = await parent.fork();
    // Shared VMAs without anon_vma are not copied: the child refaults from the shmem cache.
    expect(entryAt(child.mm, a)).toBeNull();
    expect((await child.read(a, 1))[0]).toBe(1);
    expect(entryAt(child.mm, a)!.pfn).toBe(entryAt(parent.mm, a)!.pfn);
    await child.write(a + PG, fill(4, 9));
    expect((await parent.read(a + PG, 4))).toEqual(fill(4, 9));
    await parent.write(a, fill(1, 2));
    expect((await child.read(a, 1))[0]).toBe(2);
    account(m);
    await parent.exit();
    expect((await child.read(a, 1))[0]).toBe(2);
  });

  machineTest('zero-page PTEs and read-only private pages are shared too; grandchildren work', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 3 * PG, RW, ANON);
    await p.read(a, PG); // zero page
    await p.write(a + PG, fill(PG, 4));
    const c = await p.fork();
    expect(entryAt(c.mm, a)!.pfn).toBe(m.ram.zeroPfn);
    const g = await c.fork();
    expect(m.ram.refcount[entryAt(p.mm, a + PG)!.pfn]).toBe(3);
    await g.write(a + PG, fill(1, 5));
    expect((await p.read(a + PG, 1))[0]).toBe(4);
    expect((await c.read(a + PG, 1))[0]).toBe(4);
    expect((await g.read(a + PG, 1))[0]).toBe(5);
    account(m);
    await c.exit();
    account(m);
  });

  machineTest('exit sends RELEASE to legacy subscribers and then UNMAP', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await p.write(a, fill(2 * PG, 1));
    const log: string[] = [];
    p.mm.notifiers.register({
      release() { log.push('release'); },
      invalidateRangeStart(r) { log.push(`start:${r.event}`); return true; },
    });
    const iv: string[] = [];
    await p.mm.notifiers.insertInterval(a, 2 * PG, { invalidate(_s, r) { iv.push(r.event); return true; } });
    await p.exit();
    expect(log).toEqual(['release']);
    expect(iv).toEqual(['RELEASE', 'UNMAP']);
    expect(p.mm.pgtable.tables).toBe(1);
    await expect(p.read(a, 1)).rejects.toBeErrno('ESRCH');
    await expect(p.exit()).rejects.toBeErrno('ESRCH');
  });
});
