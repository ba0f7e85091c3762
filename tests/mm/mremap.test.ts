/**
 * mremap(2) as mm/mremap.c has it: the argument checks (check_mremap_params, mremap_to,
 * resize_is_valid) with nothing changed after a failure, move_vma/move_page_tables moving
 * every kind of entry under one UNMAP invalidation of the old range, THP leaves moved whole
 * when aligned and split when not, MREMAP_DONTUNMAP leaving the old VMA empty, in-place
 * growth and shrink, and device pages faulted home at the new address.
 */
import { describe, expect } from 'vitest';
import {
  MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_FIXED, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE,
  PROT_READ, PROT_WRITE, type Errno,
} from '../../src/index.js';
import { isDevicePrivate, isMigration, PMD_HUGE } from '../../src/mm/page-table.js';
import { FakeDevice, withRead } from './fake-device.js';
import { account, entryAt, expectBytes, HUGE, PG, pageTableSnapshot, pattern, recordEvents, vmaList } from './helpers.js';
import { machineTest } from '../support/machine.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const MOVE = MREMAP_MAYMOVE | MREMAP_FIXED;

describe('mremap: bad input as the kernel answers it, nothing changed', () => {
  machineTest('check_mremap_params, mremap_to and resize_is_valid errnos', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 8 * PG, RW, ANON);
    await p.write(a, pattern(8 * PG, 1));
    const far = await p.mmap(0, 16 * PG, RW, ANON);
    await p.munmap(far, 16 * PG);
    const before = { vmas: vmaList(p), pt: pageTableSnapshot(p.mm), acct: account(m) };
    const cases: [string, () => Promise<number>, Errno][] = [
      ['unknown flag', () => p.mremap(a, PG, PG, 8), 'EINVAL'],
      ['unaligned old address', () => p.mremap(a + 1, PG, PG, MREMAP_MAYMOVE), 'EINVAL'],
      ['zero new length', () => p.mremap(a, PG, 0, MREMAP_MAYMOVE), 'EINVAL'],
      ['unaligned new address', () => p.mremap(a, PG, PG, MOVE, far + 1), 'EINVAL'],
      ['FIXED without MAYMOVE', () => p.mremap(a, PG, PG, MREMAP_FIXED, far), 'EINVAL'],
      ['DONTUNMAP resizing', () => p.mremap(a, PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, far), 'EINVAL'],
      ['overlapping ranges', () => p.mremap(a, 4 * PG, 4 * PG, MOVE, a + 2 * PG), 'EINVAL'],
      ['new range past TASK_SIZE', () => p.mremap(a, PG, PG, MOVE, 2 ** 47 - PG / 2 - PG / 2 + PG), 'EINVAL'],
      ['nothing mapped at the old address', () => p.mremap(far, PG, PG, MOVE, far + 8 * PG), 'EFAULT'],
      ['old range past its VMA', () => p.mremap(a, 9 * PG, 9 * PG, MOVE, far), 'EFAULT'],
      ['old_len 0 of a private mapping', () => p.mremap(a, 0, PG, MOVE, far), 'EINVAL'],
      ['grow in place blocked, no MAYMOVE', async () => {
        const b = await p.mmap(a + 8 * PG, PG, RW, ANON | MAP_FIXED);
        try {
          return await p.mremap(a, 8 * PG, 10 * PG, 0);
        } finally {
          await p.munmap(b, PG);
        }
      }, 'ENOMEM'],
      ['negative length', () => p.mremap(a, -PG, PG, MREMAP_MAYMOVE), 'EINVAL'],
    ];
    for (const [what, call, code] of cases) {
      await expect(call(), what).rejects.toBeErrno(code);
      expect(vmaList(p), what).toEqual(before.vmas);
      expect(pageTableSnapshot(p.mm), what).toEqual(before.pt);
      expect(account(m).usedFrames, what).toBe(before.acct.usedFrames);
    }
    expectBytes(await p.read(a, 8 * PG), pattern(8 * PG, 1));
  });

  machineTest('a dead process: ESRCH', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, PG, RW, ANON);
    await p.exit();
    await expect(p.mremap(a, PG, PG, MREMAP_MAYMOVE)).rejects.toBeErrno('ESRCH');
  });
});

describe('mremap: move_vma and move_page_tables', () => {
  machineTest('MAYMOVE|FIXED moves present, zero-page and swap-free entries; old range unmapped; one UNMAP', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, pattern(2 * PG, 2));
    await p.read(a + 2 * PG, 1); // zero page
    const dst = await p.mmap(0, 8 * PG, RW, ANON);
    await p.munmap(dst, 8 * PG);
    const pfn0 = entryAt(p.mm, a)!.pfn;
    const used = account(m).usedFrames;
    const rec = recordEvents(p.mm);
    const got = await p.mremap(a, 4 * PG, 4 * PG, MOVE, dst + 4 * PG);
    expect(got).toBe(dst + 4 * PG);
    // move_page_tables' UNMAP over the old range first, then the source's do_munmap.
    expect(rec.starts()[0]).toMatchObject({ event: 'UNMAP', start: a, end: a + 4 * PG });
    expect(entryAt(p.mm, got)!.pfn).toBe(pfn0); // the same frame, moved, not copied
    expect(entryAt(p.mm, a)).toBeNull();
    expect(account(m).usedFrames).toBe(used);
    expect(p.mm.vmas.lookup(a)).toBeUndefined();
    const v = p.mm.vmas.lookup(got)!;
    expect(v.pgoff).toBe(a / PG); // copy_vma keeps vm_pgoff
    expectBytes(await p.read(got, 2 * PG), pattern(2 * PG, 2));
    expect((await p.read(got + 2 * PG, 2 * PG)).every((x) => x === 0)).toBe(true);
    await expect(p.read(a, 1)).rejects.toThrow();
  });

  machineTest('grows by moving (MAYMOVE), shrinks in place, grows in place into free space', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, pattern(4 * PG, 3));
    // Shrink: the tail is unmapped, the address stays.
    expect(await p.mremap(a, 4 * PG, 2 * PG, 0)).toBe(a);
    expect(p.mm.vmas.lookup(a)!.end).toBe(a + 2 * PG);
    // Grow in place into the freed tail.
    expect(await p.mremap(a, 2 * PG, 6 * PG, 0)).toBe(a);
    expect(p.mm.vmas.lookup(a)!.end).toBe(a + 6 * PG);
    expectBytes(await p.read(a, 2 * PG), pattern(2 * PG, 3));
    expect((await p.read(a + 2 * PG, 4 * PG)).every((x) => x === 0)).toBe(true);
    // Blocked above: MAYMOVE moves it.
    await p.mmap(a + 6 * PG, PG, RW, ANON | MAP_FIXED);
    const b = await p.mremap(a, 6 * PG, 12 * PG, MREMAP_MAYMOVE);
    expect(b).not.toBe(a);
    expectBytes(await p.read(b, 2 * PG), pattern(2 * PG, 3));
    expect(p.mm.vmas.lookup(b)!.end - b).toBe(12 * PG);
  });

  machineTest('moving the middle of a VMA splits it; moving it back merges all three (vm_pgoff contiguous again)', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, pattern(4 * PG, 13));
    const dst = await p.mmap(0, 2 * PG, RW, ANON);
    await p.munmap(dst, 2 * PG);
    const n0 = vmaList(p).length;
    await p.mremap(a + PG, 2 * PG, 2 * PG, MOVE, dst);
    expect(vmaList(p).length).toBe(n0 + 2); // [a, a+1) and [a+3, a+4) and the moved piece
    expect(p.mm.vmas.lookup(dst)!.pgoff).toBe((a + PG) / PG);
    await p.mremap(dst, 2 * PG, 2 * PG, MOVE, a + PG);
    expect(vmaList(p).length).toBe(n0);
    expect(p.mm.vmas.lookup(a)).toMatchObject({ start: a, end: a + 4 * PG, pgoff: a / PG });
    expectBytes(await p.read(a, 4 * PG), pattern(4 * PG, 13));
  });

  machineTest('DONTUNMAP leaves the old anonymous VMA, empty: it reads zeros', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, pattern(4 * PG, 4));
    const dst = await p.mmap(0, 4 * PG, RW, ANON);
    await p.munmap(dst, 4 * PG);
    const got = await p.mremap(a, 4 * PG, 4 * PG, MOVE | MREMAP_DONTUNMAP, dst);
    expect(got).toBe(dst);
    expect(p.mm.vmas.lookup(a)).toBeDefined();
    expect(entryAt(p.mm, a)).toBeNull();
    expect((await p.read(a, 4 * PG)).every((x) => x === 0)).toBe(true);
    expectBytes(await p.read(dst, 4 * PG), pattern(4 * PG, 4));
  });

  machineTest('an aligned THP moves as one PMD leaf (move_huge_pmd); an unaligned one is split', async ({ machine: m }) => {
    const p = m.spawn();
    const raw = await p.mmap(0, 8 * HUGE, RW, ANON);
    const a = Math.ceil(raw / HUGE) * HUGE;
    await p.madvise(a, HUGE, MADV_HUGEPAGE);
    await p.write(a, pattern(HUGE, 5));
    const head = entryAt(p.mm, a)!;
    expect(head.level).toBe('pmd');
    const dst = a + 3 * HUGE;
    await p.mremap(a, HUGE, HUGE, MOVE, dst);
    const moved = entryAt(p.mm, dst)!;
    expect(moved).toMatchObject({ level: 'pmd', pfn: head.pfn });
    expectBytes(await p.read(dst, HUGE), pattern(HUGE, 5));
    // Now to an address that is not 2 MiB aligned: split, PTEs moved.
    const dst2 = a + 5 * HUGE + 16 * PG;
    await p.mremap(dst, HUGE, HUGE, MOVE, dst2);
    expect(entryAt(p.mm, dst2)!.level).toBe('pte');
    expect(entryAt(p.mm, dst2)!.flags & PMD_HUGE).toBe(0);
    expectBytes(await p.read(dst2, HUGE), pattern(HUGE, 5));
  });

  machineTest('shared mappings: the file pages move; old_len 0 duplicates the mapping', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
    await p.write(a, pattern(2 * PG, 6));
    const dup = await p.mremap(a, 0, 2 * PG, MREMAP_MAYMOVE);
    expect(dup).not.toBe(a);
    expectBytes(await p.read(dup, 2 * PG), pattern(2 * PG, 6));
    await p.write(dup, pattern(PG, 7));
    expectBytes(await p.read(a, PG), pattern(PG, 7));
  });
});

describe('mremap of hugetlb', () => {
  machineTest('align_hugetlb: 2 MiB-aligned moves carry the PMD leaf; unaligned or growing is EINVAL', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, HUGE, RW, ANON | MAP_HUGETLB);
    await p.write(a, pattern(PG, 11));
    const leaf = entryAt(p.mm, a)!;
    const far = await p.mmap(0, 8 * HUGE, RW, ANON);
    await p.munmap(far, 8 * HUGE);
    const dst = Math.ceil(far / HUGE) * HUGE + HUGE;
    await expect(p.mremap(a, HUGE, HUGE, MOVE, dst + PG)).rejects.toBeErrno('EINVAL');
    await expect(p.mremap(a, HUGE, 2 * HUGE, MREMAP_MAYMOVE)).rejects.toBeErrno('EINVAL');
    expect(await p.mremap(a, HUGE, HUGE, MOVE, dst)).toBe(dst);
    expect(entryAt(p.mm, dst)).toMatchObject({ level: 'pmd', pfn: leaf.pfn });
    expectBytes(await p.read(dst, PG), pattern(PG, 11));
    // The reservation went with the copy: a second write fault there still has its page.
    await p.write(dst + HUGE - PG, pattern(PG, 12));
    expectBytes(await p.read(dst + HUGE - PG, PG), pattern(PG, 12));
  });
});

describe('mremap of device-private memory', () => {
  machineTest('half migrated range: device entries move, the CPU faults them home at the new address', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 64);
    const p = m.spawn();
    const a = await p.mmap(0, 8 * PG, RW, ANON);
    await p.write(a, pattern(8 * PG, 8));
    await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 4 * PG));
    expect(isDevicePrivate(entryAt(p.mm, a)!.flags)).toBe(true);
    const devPfn = entryAt(p.mm, a)!.pfn;
    const dst = await p.mmap(0, 8 * PG, RW, ANON);
    await p.munmap(dst, 8 * PG);
    await p.mremap(a, 8 * PG, 8 * PG, MOVE, dst);
    expect(entryAt(p.mm, dst)).toMatchObject({ pfn: devPfn });
    expect(isDevicePrivate(entryAt(p.mm, dst)!.flags)).toBe(true);
    expectBytes(await p.read(dst, 8 * PG), pattern(8 * PG, 8));
    expect(dev.migrationsToRam).toBe(4);
    expect(isDevicePrivate(entryAt(p.mm, dst)!.flags)).toBe(false);
    expect(dev.free.length).toBe(64); // every device page came home and was freed
  });

  machineTest('a fork-shared device page moved in the parent is still found by the rmap (both come home)', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 8);
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await p.write(a, pattern(2 * PG, 9));
    await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 2 * PG));
    const c = await p.fork();
    const dst = await p.mmap(0, 2 * PG, RW, ANON);
    await p.munmap(dst, 2 * PG);
    await p.mremap(a, 2 * PG, 2 * PG, MOVE, dst);
    // The child's touch migrates the shared page: remove_migration_ptes must reach the
    // parent's entry at its new address, or the parent keeps a migration entry forever.
    expectBytes(await c.read(a, PG), pattern(PG, 9));
    const pe = entryAt(p.mm, dst)!;
    expect(isMigration(pe.flags)).toBe(false);
    expectBytes(await p.read(dst, 2 * PG), pattern(2 * PG, 9));
    expectBytes(await c.read(a, 2 * PG), pattern(2 * PG, 9));
    await c.exit();
  });
});
