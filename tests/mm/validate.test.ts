import { forge } from '../support/forge.js';
import { describe, expect } from 'vitest';
import {
  MADV_DONTNEED, MAP_ANONYMOUS, MAP_FIXED, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE,
  type Errno, type Machine, type MemFile, type Process,
} from '../../src/index.js';
import { TASK_SIZE } from '../../src/mm/constants.js';
import { fill, HUGE, PG, pageTableSnapshot, vmaList } from './helpers.js';
import { machineTest, type MachineFactory } from '../support/machine.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** `machines` makes another machine (torn down with the test, as `m` is). */
interface Ctx { p: Process; m: Machine; a: number; f: MemFile; h: number; machines: MachineFactory }

/** [name, call, errno]. `a` is a 4-page RW anon mapping with data; `h` a 2 MiB hugetlb one. */
const cases: [string, (c: Ctx) => Promise<unknown>, Errno][] = [
  ['mmap zero length', (c) => c.p.mmap(0, 0, RW, ANON), 'EINVAL'],
  ['mmap negative length', (c) => c.p.mmap(0, -4096, RW, ANON), 'EINVAL'],
  ['mmap NaN length', (c) => c.p.mmap(0, NaN, RW, ANON), 'EINVAL'],
  ['mmap Infinity length', (c) => c.p.mmap(0, Infinity, RW, ANON), 'EINVAL'],
  ['mmap fractional length', (c) => c.p.mmap(0, 4096.5, RW, ANON), 'EINVAL'],
  ['mmap length past TASK_SIZE', (c) => c.p.mmap(0, TASK_SIZE + PG, RW, ANON), 'ENOMEM'],
  ['mmap unknown prot bit', (c) => c.p.mmap(0, PG, 0x4, ANON), 'EINVAL'],
  ['mmap unknown flag bit', (c) => c.p.mmap(0, PG, RW, ANON | 0x100), 'EINVAL'],
  ['mmap SHARED|PRIVATE', (c) => c.p.mmap(0, PG, RW, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS), 'EINVAL'],
  ['mmap neither SHARED nor PRIVATE', (c) => c.p.mmap(0, PG, RW, MAP_ANONYMOUS), 'EINVAL'],
  ['mmap file with MAP_ANONYMOUS', (c) => c.p.mmap(0, PG, RW, ANON, c.f, 0), 'EINVAL'],
  ['mmap no file without MAP_ANONYMOUS', (c) => c.p.mmap(0, PG, RW, MAP_PRIVATE), 'EINVAL'],
  ['mmap unaligned offset', (c) => c.p.mmap(0, PG, RW, MAP_SHARED, c.f, 100), 'EINVAL'],
  ['mmap negative offset', (c) => c.p.mmap(0, PG, RW, MAP_SHARED, c.f, -PG), 'EINVAL'],
  ['mmap offset overflow', (c) => c.p.mmap(0, PG, RW, MAP_SHARED, c.f, TASK_SIZE), 'EOVERFLOW'],
  ['mmap MAP_HUGETLB with a file', (c) => c.p.mmap(0, HUGE, RW, MAP_SHARED | MAP_HUGETLB, c.f, 0), 'EINVAL'],
  ['mmap MAP_FIXED unaligned', (c) => c.p.mmap(c.a + 1, PG, RW, ANON | MAP_FIXED), 'EINVAL'],
  ['mmap MAP_FIXED hugetlb unaligned', (c) => c.p.mmap(c.a, HUGE, RW, ANON | MAP_FIXED | MAP_HUGETLB), 'EINVAL'],
  ['mmap MAP_FIXED past TASK_SIZE', (c) => c.p.mmap(TASK_SIZE - PG, 2 * PG, RW, ANON | MAP_FIXED), 'ENOMEM'],
  ['mmap MAP_FIXED below mmap_min_addr', (c) => c.p.mmap(0, PG, RW, ANON | MAP_FIXED), 'EPERM'],
  ['mmap MAP_FIXED cutting hugetlb', (c) => c.p.mmap(c.h + PG, PG, RW, ANON | MAP_FIXED), 'EINVAL'],
  ['munmap unaligned', (c) => c.p.munmap(c.a + 1, PG), 'EINVAL'],
  ['munmap zero length', (c) => c.p.munmap(c.a, 0), 'EINVAL'],
  ['munmap past TASK_SIZE', (c) => c.p.munmap(TASK_SIZE - PG, 2 * PG), 'EINVAL'],
  ['munmap rounding past TASK_SIZE', (c) => c.p.munmap(TASK_SIZE - PG, PG + 1), 'EINVAL'],
  ['munmap NaN', (c) => c.p.munmap(NaN, PG), 'EINVAL'],
  ['munmap hugetlb unaligned', (c) => c.p.munmap(c.h, PG), 'EINVAL'],
  ['mprotect unaligned', (c) => c.p.mprotect(c.a + 1, PG, PROT_READ), 'EINVAL'],
  ['mprotect unknown prot', (c) => c.p.mprotect(c.a, PG, 0x10), 'EINVAL'],
  ['mprotect over a hole', (c) => c.p.mprotect(c.a, 8 * PG, PROT_READ), 'ENOMEM'],
  ['mprotect unmapped', (c) => c.p.mprotect(0x10000, PG, PROT_READ), 'ENOMEM'],
  ['mprotect past TASK_SIZE', (c) => c.p.mprotect(TASK_SIZE - PG, 2 * PG, PROT_READ), 'ENOMEM'],
  ['mprotect hugetlb unaligned', (c) => c.p.mprotect(c.h, PG, PROT_READ), 'EINVAL'],
  ['mprotect negative length', (c) => c.p.mprotect(c.a, -1, PROT_READ), 'EINVAL'],
  ['madvise unknown advice', (c) => c.p.madvise(c.a, PG, 12345), 'EINVAL'],
  ['madvise unaligned', (c) => c.p.madvise(c.a + 1, PG, MADV_DONTNEED), 'EINVAL'],
  ['madvise hugetlb unaligned start', (c) => c.p.madvise(c.h + PG, PG, MADV_DONTNEED), 'EINVAL'],
  ['madvise unmapped', (c) => c.p.madvise(0x10000, PG, MADV_DONTNEED), 'ENOMEM'],
  ['write non-Uint8Array', (c) => c.p.write(c.a, forge<Uint8Array>([1, 2])), 'EINVAL'],
  ['read negative length', (c) => c.p.read(c.a, -1), 'EINVAL'],
  ['read longer than MAX_RW_COUNT', (c) => c.p.read(c.a, 2 ** 33), 'EINVAL'],
  ['mmap a file of another machine', async (c) => c.p.mmap(0, PG, RW, MAP_SHARED, (await c.machines()).createFile(PG), 0), 'EBADF'],
  ['mmap hugetlb larger than the pool', (c) => c.p.mmap(0, 64 * HUGE, RW, ANON | MAP_HUGETLB), 'ENOMEM'],
];

async function setup(m: Machine, machines: MachineFactory): Promise<Ctx> {
  const p = m.spawn();
  const f = m.createFile(4 * PG);
  const a = await p.mmap(0, 4 * PG, RW, ANON);
  await p.write(a, fill(4 * PG, 0x5e));
  const h = await p.mmap(0, HUGE, RW, ANON | MAP_HUGETLB);
  await p.write(h, fill(8, 1));
  return { m, p, a, f, h, machines };
}

describe('bad input is rejected with the kernel errno and changes nothing', () => {
  machineTest.for(cases)('%s', async ([, call, code], { machine, machines }) => {
    const c = await setup(machine, machines);
    const vmas = vmaList(c.p);
    const pt = pageTableSnapshot(c.p.mm);
    const free = c.m.ram.freePages;
    await expect(call(c)).rejects.toBeErrno(code);
    expect(vmaList(c.p)).toEqual(vmas);
    expect(pageTableSnapshot(c.p.mm)).toEqual(pt);
    expect(c.m.ram.freePages).toBe(free);
  });

  machineTest('zero-length mprotect/madvise succeed; munmap of nothing succeeds', async ({ machine, machines }) => {
    const c = await setup(machine, machines);
    await c.p.mprotect(c.a, 0, PROT_READ);
    await c.p.madvise(c.a, 0, MADV_DONTNEED);
    await c.p.munmap(0x10000, PG);
    expect(vmaList(c.p)).toHaveLength(2);
  });

  machineTest('calls after exit are ESRCH', async ({ machine, machines }) => {
    const c = await setup(machine, machines);
    await c.p.exit();
    for (const call of [
      () => c.p.mmap(0, PG, RW, ANON), () => c.p.munmap(c.a, PG), () => c.p.mprotect(c.a, PG, PROT_READ),
      () => c.p.madvise(c.a, PG, MADV_DONTNEED), () => c.p.read(c.a, 1), () => c.p.write(c.a, fill(1, 1)),
      () => c.p.fork(), () => c.p.exit(),
    ]) await expect(call()).rejects.toBeErrno('ESRCH');
  });

  machineTest('a closed file cannot be mapped or read (EBADF: fdget fails)', async ({ machine, machines }) => {
    const c = await setup(machine, machines);
    c.f.close();
    await expect(c.p.mmap(0, PG, RW, MAP_SHARED, c.f, 0)).rejects.toBeErrno('EBADF');
    await expect(c.f.pread(1, 0)).rejects.toBeErrno('EBADF');
    expect(() => c.m.createFile(-1)).toThrowErrno('EINVAL');
  });
});
