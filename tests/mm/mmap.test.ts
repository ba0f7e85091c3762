import { describe, expect, it } from 'vitest';
import {
  MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_NONE, PROT_READ, PROT_WRITE, SegmentationFault,
} from '../../src/index.js';
import { MMAP_BASE } from '../../src/mm/mm.js';
import { VM_READ, VM_SHARED, VM_WRITE } from '../../src/mm/vma.js';
import { account, entryAt, fill, HUGE, PG, pattern, recordEvents, vmaList } from './helpers.js';
import { machineTest } from '../support/machine.js';
import { expectBytes } from './helpers.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('mmap placement', () => {
  machineTest('places mappings top-down below mmap_base and merges adjacent anonymous ones', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 3 * PG, RW, ANON);
    expect(a + 3 * PG).toBe(MMAP_BASE);
    const b = await p.mmap(0, 2 * PG, RW, ANON);
    expect(b + 2 * PG).toBe(a);
    // Same flags, contiguous pgoff, no anon_vma yet: one VMA.
    expect(vmaList(p)).toHaveLength(1);
    expect(vmaList(p)[0]).toMatchObject({ start: b, end: a + 3 * PG });
    // Different protection: no merge.
    const c = await p.mmap(0, PG, PROT_READ, ANON);
    expect(c + PG).toBe(b);
    expect(vmaList(p)).toHaveLength(2);
  });

  machineTest('honours a free hint and searches when the hint is taken', async ({ machine: m }) => {
    const p = m.spawn();
    const hint = 0x10000000;
    expect(await p.mmap(hint, PG, RW, ANON)).toBe(hint);
    const again = await p.mmap(hint, PG, RW, ANON);
    expect(again).not.toBe(hint);
    // An unaligned hint is rounded up.
    expect(await p.mmap(0x20000123, PG, RW, ANON)).toBe(0x20001000);
  });

  machineTest('aligns PMD-multiple anonymous mappings to 2 MiB (thp_get_unmapped_area)', async ({ machine: m }) => {
    const p = m.spawn();
    await p.mmap(0, 5 * PG, RW, ANON);
    const a = await p.mmap(0, 2 * HUGE, RW, ANON);
    expect(a % HUGE).toBe(0);
  });

  machineTest('MAP_FIXED replaces existing mappings with an UNMAP invalidation first', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, fill(4 * PG, 0xaa));
    let sawOld = false;
    const rec = recordEvents(p.mm, (r) => {
      if (r.event === 'UNMAP') sawOld = entryAt(p.mm, a + PG) !== null;
    });
    const b = await p.mmap(a + PG, 2 * PG, PROT_READ, ANON | MAP_FIXED);
    expect(b).toBe(a + PG);
    expect(rec.starts()).toEqual([{ event: 'UNMAP', start: a + PG, end: a + 3 * PG, owner: null, phase: 'start' }]);
    expect(sawOld).toBe(true);
    expect(vmaList(p).map((v) => [v.start, v.end, v.flags & (VM_READ | VM_WRITE)])).toEqual([
      [a, a + PG, VM_READ | VM_WRITE], [a + PG, a + 3 * PG, VM_READ], [a + 3 * PG, a + 4 * PG, VM_READ | VM_WRITE],
    ]);
    // The replacement reads as zero; its neighbours keep their data.
    expect(Array.from(await p.read(a + PG, 2 * PG)).every((x) => x === 0)).toBe(true);
    expect((await p.read(a, PG)).every((x) => x === 0xaa)).toBe(true);
    expect((await p.read(a + 3 * PG, PG)).every((x) => x === 0xaa)).toBe(true);
    account(m);
  });
});

describe('munmap', () => {
  machineTest('splits VMAs, frees frames, and a hole is a no-op', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 8 * PG, RW, ANON);
    await p.write(a, pattern(8 * PG, 1));
    const before = m.ram.freePages;
    await p.munmap(a + 2 * PG, 3 * PG);
    expect(m.ram.freePages).toBe(before + 3);
    expect(vmaList(p).map((v) => [v.start, v.end])).toEqual([[a, a + 2 * PG], [a + 5 * PG, a + 8 * PG]]);
    // pgoff of the upper piece follows its address.
    expect(vmaList(p)[1].pgoff).toBe((a + 5 * PG) / PG);
    await expect(p.read(a + 2 * PG, 1)).rejects.toBeInstanceOf(SegmentationFault);
    expectBytes(await p.read(a + 5 * PG, 3 * PG), pattern(8 * PG, 1).subarray(5 * PG));
    await p.munmap(a + 2 * PG, 3 * PG); // already unmapped: success
    await p.munmap(0x100000, PG);
    account(m);
    const rec = recordEvents(p.mm);
    await p.munmap(a, 8 * PG);
    expect(rec.starts().map((e) => [e.event, e.start, e.end])).toEqual([['UNMAP', a, a + 8 * PG]]);
    expect(vmaList(p)).toEqual([]);
    expect(p.mm.pgtable.tables).toBe(1);
  });
});

describe('mprotect', () => {
  machineTest('splits and re-merges VMAs and write-protects PTEs with PROTECTION_VMA first', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 6 * PG, RW, ANON);
    await p.write(a, pattern(6 * PG, 2));
    let wasWritable = false;
    const rec = recordEvents(p.mm, (r) => {
      if (r.event === 'PROTECTION_VMA') wasWritable = (entryAt(p.mm, a + 2 * PG)!.flags & 2) !== 0;
    });
    await p.mprotect(a + 2 * PG, 2 * PG, PROT_READ);
    expect(wasWritable).toBe(true);
    expect(rec.starts().map((e) => [e.event, e.start, e.end])).toEqual([['PROTECTION_VMA', a + 2 * PG, a + 4 * PG]]);
    expect(vmaList(p).map((v) => [v.start, v.end, v.flags & 3])).toEqual([
      [a, a + 2 * PG, 3], [a + 2 * PG, a + 4 * PG, 1], [a + 4 * PG, a + 6 * PG, 3],
    ]);
    expect(entryAt(p.mm, a + 2 * PG)!.flags & 2).toBe(0);
    await expect(p.write(a + 2 * PG, fill(1, 1))).rejects.toMatchObject({ siCode: 'SEGV_ACCERR' });
    // Reading still works; data intact.
    expectBytes(await p.read(a, 6 * PG), pattern(6 * PG, 2));
    // Restoring merges back into one VMA; exclusive anon pages become writable again.
    await p.mprotect(a + 2 * PG, 2 * PG, RW);
    expect(vmaList(p)).toHaveLength(1);
    expect(entryAt(p.mm, a + 2 * PG)!.flags & 2).toBe(2);
    await p.write(a + 2 * PG, fill(PG, 0x5a));
    // PROT_NONE: data kept, both loads and stores fault.
    await p.mprotect(a, 6 * PG, PROT_NONE);
    await expect(p.read(a, 1)).rejects.toMatchObject({ siCode: 'SEGV_ACCERR' });
    await p.mprotect(a, 6 * PG, PROT_READ);
    expect((await p.read(a + 2 * PG, PG)).every((x) => x === 0x5a)).toBe(true);
    account(m);
  });

  machineTest('ENOMEM over a hole changes nothing', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.munmap(a + PG, PG);
    const before = vmaList(p);
    await expect(p.mprotect(a, 4 * PG, PROT_READ)).rejects.toBeErrno('ENOMEM');
    expect(vmaList(p)).toEqual(before);
  });

  machineTest('a shared mapping regains write on mprotect(RW)', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
    await p.write(a, fill(2 * PG, 3));
    await p.mprotect(a, 2 * PG, PROT_READ);
    expect(vmaList(p)[0].flags & VM_SHARED).toBe(VM_SHARED);
    expect(entryAt(p.mm, a)!.flags & 2).toBe(0);
    await p.mprotect(a, 2 * PG, RW);
    expect(entryAt(p.mm, a)!.flags & 2).toBe(2);
  });
});

describe('vma_merge rules for files and shared anon', () => {
  machineTest('merges contiguous file offsets of one file, never two shmem objects or a pgoff gap', async ({ machine: m }) => {
    const p = m.spawn();
    const f = m.createFile(16 * PG);
    const a = await p.mmap(0x30000000, 2 * PG, RW, MAP_SHARED, f, 0);
    await p.mmap(a + 2 * PG, 2 * PG, RW, MAP_SHARED, f, 2 * PG); // contiguous: merges
    expect(vmaList(p)).toHaveLength(1);
    await p.mmap(a + 4 * PG, PG, RW, MAP_SHARED, f, 8 * PG); // pgoff gap: separate
    expect(vmaList(p)).toHaveLength(2);
    const s = await p.mmap(0x40000000, PG, RW, MAP_SHARED | MAP_ANONYMOUS);
    await p.mmap(s + PG, PG, RW, MAP_SHARED | MAP_ANONYMOUS);
    expect(vmaList(p)).toHaveLength(4); // each shared anon mapping has its own shmem file
    // Private anon VMAs with different anon_vmas do not merge back after a munmap hole is refilled.
    const x = await p.mmap(0x50000000, 3 * PG, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    await p.write(x, fill(3 * PG, 1));
    await p.munmap(x + PG, PG);
    await p.mmap(x + PG, PG, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    expect(vmaList(p).filter((v) => v.start >= x && v.end <= x + 3 * PG)).toHaveLength(1); // null anon merges both sides
    f.close();
  });
});
