/**
 * File handles as the kernel checks them: a file of another machine is not in this
 * process's file table (EBADF), a closed handle is EBADF for mmap, pread and pwrite even
 * while a mapping keeps the file alive, pread at or past the end is a short read, and data
 * accessors refuse lengths no transfer could carry with an errno rather than a RangeError.
 */
import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, type Machine, type Process } from '../../src/index.js';
import { MAX_RW_COUNT } from '../../src/mm/constants.js';
import { MAX_FILE_SIZE } from '../../src/mm/file.js';
import { account, expectBytes, PG, pageTableSnapshot, pattern, vmaList } from './helpers.js';
import { machineTest } from '../support/machine.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** Everything a rejected call must leave as it was. */
function state(m: Machine, p: Process): unknown {
  return { vmas: vmaList(p), pt: pageTableSnapshot(p.mm), free: m.ram.freePages, files: [...m.files].map((f) => f.name) };
}

describe('file handles', () => {
  machineTest('mmap of a file of another machine is EBADF and changes nothing on either machine', async ({ machine: m1, machines }) => {
    const m2 = await machines({ systemPages: 4096 });
    const p = m1.spawn();
    const q = m2.spawn();
    const a = await p.mmap(0, PG, RW, ANON);
    await p.write(a, pattern(PG, 1));
    const f = m2.createFile(PG);
    await f.pwrite(pattern(PG, 2), 0);
    const qa = await q.mmap(0, PG, RW, MAP_SHARED, f, 0);
    const s1 = state(m1, p);
    const s2 = state(m2, q);
    for (const flags of [MAP_SHARED, MAP_PRIVATE]) await expect(p.mmap(0, PG, RW, flags, f, 0)).rejects.toBeErrno('EBADF');
    expect(state(m1, p)).toEqual(s1);
    expect(state(m2, q)).toEqual(s2);
    account(m1);
    account(m2);
    expectBytes(await q.read(qa, PG), pattern(PG, 2));
    f.close();
    // (Both are the fixture's: destroyed at teardown, every frame free.)
  });

  machineTest('a closed handle is EBADF for mmap, pread and pwrite, even while a mapping keeps the file', async ({ machine: m }) => {
    const p = m.spawn();
    const f = m.createFile(2 * PG);
    await f.pwrite(pattern(2 * PG, 3), 0);
    const a = await p.mmap(0, 2 * PG, RW, MAP_SHARED, f, 0);
    f.close(); // the mapping still holds the file (get_file), but the descriptor is gone
    const s = state(m, p);
    await expect(p.mmap(0, PG, RW, MAP_SHARED, f, 0)).rejects.toBeErrno('EBADF');
    await expect(f.pread(PG, 0)).rejects.toBeErrno('EBADF');
    await expect(f.pwrite(pattern(PG, 4), 0)).rejects.toBeErrno('EBADF');
    expect(state(m, p)).toEqual(s);
    expectBytes(await p.read(a, 2 * PG), pattern(2 * PG, 3));
    await p.munmap(a, 2 * PG); // the last reference: the file and its cache go
    expect(m.files.size).toBe(0);
    await expect(p.mmap(0, PG, RW, MAP_SHARED, f, 0)).rejects.toBeErrno('EBADF');
    await expect(f.pread(1, 0)).rejects.toBeErrno('EBADF');
    await expect(f.pwrite(pattern(1, 5), 0)).rejects.toBeErrno('EBADF');
    expect(m.files.size).toBe(0);
  });

  machineTest('pread at or past the end is a short read (0 bytes), never an error', async ({ machine: m }) => {
    const f = m.createFile(PG + 100);
    await f.pwrite(pattern(PG + 100, 6), 0);
    expectBytes(await f.pread(PG, PG), pattern(PG + 100, 6).subarray(PG));
    expect((await f.pread(10, PG + 100)).length).toBe(0);
    expect((await f.pread(10, 5 * PG)).length).toBe(0);
    // Past s_maxbytes filemap_read returns 0 as well; the length is clamped, not checked.
    expect((await f.pread(10, MAX_FILE_SIZE)).length).toBe(0);
    expect((await f.pread(PG, MAX_FILE_SIZE + PG)).length).toBe(0);
    expect((await f.pread(Number.MAX_SAFE_INTEGER, 0)).length).toBe(PG + 100);
    f.close();
  });

  machineTest('pread of more than MAX_RW_COUNT bytes is a short read of MAX_RW_COUNT (vfs_read clamps)', async ({ machine: m }) => {
    const f = m.createFile(2 ** 40); // sparse: holes read as zero
    await f.pwrite(pattern(PG, 7), 0);
    const got = await f.pread(2 ** 33, 0);
    expect(got.length).toBe(MAX_RW_COUNT);
    expectBytes(got.subarray(0, PG), pattern(PG, 7));
    expect(got[MAX_RW_COUNT - 1]).toBe(0);
    f.close();
  });

  machineTest('Process.read/write longer than MAX_RW_COUNT is EINVAL (not a RangeError) and changes nothing', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, pattern(4 * PG, 8));
    const s = state(m, p);
    for (const len of [2 ** 33, 2 ** 31, MAX_RW_COUNT + 1, Number.MAX_SAFE_INTEGER - a]) {
      await expect(p.read(a, len)).rejects.toBeErrno('EINVAL');
    }
    // A view longer than MAX_RW_COUNT whose bytes are never touched.
    const big = new Uint8Array(new ArrayBuffer(MAX_RW_COUNT + PG), 0, MAX_RW_COUNT + 1);
    await expect(p.write(a, big)).rejects.toBeErrno('EINVAL');
    expect(state(m, p)).toEqual(s);
    expectBytes(await p.read(a, 4 * PG), pattern(4 * PG, 8));
    account(m);
  });
});
