/**
 * hugetlb reservations (mm/hugetlb.c hugetlb_reserve_pages): MAP_HUGETLB reserves its huge
 * pages at mmap time, so a mapping larger than the pool fails there with ENOMEM instead of
 * raising SIGBUS at some later fault. A fault consumes the reservation of its page; munmap
 * and exit give back what was not consumed (hugetlb_vm_op_close for the private owner, the
 * file's release for shared mappings). Reserved blocks are not handed to other allocations.
 *
 * systemPages 2048: 4 blocks of 2 MiB, the first holding the zero page: a pool of 3.
 */
import { describe, expect, it } from 'vitest';
import { BusError, MAP_ANONYMOUS, MAP_FIXED, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, type Machine, type Process } from '../../src/index.js';
import { machineTest } from '../support/machine.js';
import { account, destroyAndCheckEmpty, expectBytes, fill, HUGE, PG, pageTableSnapshot, pattern, vmaList } from './helpers.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const HUGE_ANON = ANON | MAP_HUGETLB;
const HUGE_SHARED = MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB;

function state(m: Machine, p: Process): unknown {
  return { vmas: vmaList(p), pt: pageTableSnapshot(p.mm), free: m.ram.freePages, files: m.files.size };
}

async function rejected(call: Promise<unknown>): Promise<unknown> {
  return call.then(() => null, (e: unknown) => e);
}

describe('hugetlb reservations', () => {
  machineTest.override('systemPages', 2048);

  machineTest.for([['private', HUGE_ANON], ['shared', HUGE_SHARED]] as const)('a MAP_HUGETLB mapping larger than the pool is ENOMEM at mmap and changes nothing (%s)', async ([, flags], { machine: m }) => {
    const p = m.spawn();
    const s = state(m, p);
    await expect(p.mmap(0, 4 * HUGE, RW, flags)).rejects.toBeErrno('ENOMEM');
    expect(state(m, p)).toEqual(s);
    account(m);
    // The whole pool can be mapped; after that not one more huge page.
    const a = await p.mmap(0, 3 * HUGE, RW, flags);
    const s2 = state(m, p);
    await expect(p.mmap(0, HUGE, RW, HUGE_ANON)).rejects.toBeErrno('ENOMEM');
    await expect(p.mmap(0, HUGE, RW, HUGE_SHARED)).rejects.toBeErrno('ENOMEM');
    expect(state(m, p)).toEqual(s2);
    // Every page of the mapping can then be faulted: the reservation guarantees it.
    for (let i = 0; i < 3; i++) await p.write(a + i * HUGE + 8, pattern(8, i + 1));
    for (let i = 0; i < 3; i++) expectBytes(await p.read(a + i * HUGE + 8, 8), pattern(8, i + 1));
    account(m);
  });

  machineTest('reserved huge pages are not handed to 4 KiB or THP allocations', async ({ machine: m }) => {
    const p = m.spawn();
    const h = await p.mmap(0, 3 * HUGE, RW, HUGE_ANON);
    // 511 single frames are left outside the pool (block 0 beside the zero page).
    const a = await p.mmap(0, 512 * PG, RW, ANON);
    await p.write(a, fill(511 * PG, 3));
    const s = state(m, p);
    await expect(p.write(a + 511 * PG, fill(1, 4))).rejects.toBeErrno('ENOMEM');
    expect(state(m, p)).toEqual(s);
    account(m);
    for (let i = 0; i < 3; i++) await p.write(h + i * HUGE, fill(HUGE, i + 5));
    for (let i = 0; i < 3; i++) expect((await p.read(h + i * HUGE + HUGE - 1, 1))[0]).toBe(i + 5);
    account(m);
  });

  machineTest('a fault consumes its reservation; munmap, MAP_FIXED and exit give the rest back', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 3 * HUGE, RW, HUGE_ANON);
    expect(m.ram.hugeReserved).toBe(3);
    await p.write(a, fill(1, 1));
    expect(m.ram.hugeReserved).toBe(2);
    account(m);
    await p.munmap(a + 2 * HUGE, HUGE); // unfaulted: its reservation goes back
    expect(m.ram.hugeReserved).toBe(1);
    const b = await p.mmap(0, HUGE, RW, HUGE_SHARED); // fits again
    expect(m.ram.hugeReserved).toBe(2);
    account(m);
    // The pool is spoken for: MAP_FIXED over the faulted block cannot reserve its
    // replacement (the reservation comes before the unmap) and leaves the old mapping be.
    const s = state(m, p);
    await expect(p.mmap(a, HUGE, RW, HUGE_ANON | MAP_FIXED)).rejects.toBeErrno('ENOMEM');
    expect(state(m, p)).toEqual(s);
    await p.munmap(b, HUGE); // the shared file goes, and its reservation with it
    expect(m.ram.hugeReserved).toBe(1);
    // Now it fits: the old page is freed, the new one reserved, then consumed by a fault.
    await p.mmap(a, HUGE, RW, HUGE_ANON | MAP_FIXED);
    expect(m.ram.hugeReserved).toBe(2);
    expect((await p.read(a, 1))[0]).toBe(0);
    expect(m.ram.hugeReserved).toBe(1);
    account(m);
    await p.munmap(a, 2 * HUGE);
    expect(m.ram.hugeReserved).toBe(0);
    account(m);
    const c = m.spawn();
    await c.mmap(0, 3 * HUGE, RW, HUGE_SHARED);
    expect(m.ram.hugeReserved).toBe(3);
    await c.exit();
    expect(m.ram.hugeReserved).toBe(0);
    await p.mmap(0, 3 * HUGE, RW, HUGE_ANON);
    account(m);
    await destroyAndCheckEmpty(m);
    expect(m.ram.hugeReserved).toBe(0);
  });

  machineTest('private: the reservations stay with the mapping that made them; a fork child has none', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 3 * HUGE, RW, HUGE_ANON);
    const c = await p.fork();
    // The child faults without a reservation and the pool has nothing unreserved: SIGBUS
    // (hugetlb_no_page for a non-owner of a private mapping), not the parent's page.
    expect(await rejected(c.write(a, fill(1, 9)))).toBeInstanceOf(BusError);
    for (let i = 0; i < 3; i++) await p.write(a + i * HUGE, fill(1, i + 1));
    expect(m.ram.hugeReserved).toBe(0);
    account(m);
    await c.exit();
    expect((await p.read(a + HUGE, 1))[0]).toBe(2);
  });

  machineTest('private: the owner\'s exit releases its unconsumed reservations while the child lives', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * HUGE, RW, HUGE_ANON);
    await p.write(a, fill(1, 1));
    const c = await p.fork();
    expect(m.ram.hugeReserved).toBe(1);
    await p.exit();
    expect(m.ram.hugeReserved).toBe(0);
    await c.write(a + HUGE, fill(1, 2)); // an unreserved page from the pool
    expect((await c.read(a, 1))[0]).toBe(1);
    account(m);
  });

  machineTest('shared: a reservation belongs to the file; unmapping one of two mappings keeps it', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 2 * HUGE, RW, HUGE_SHARED);
    const c = await p.fork();
    await c.write(a + HUGE, fill(1, 7)); // the child consumes the file's reservation of page 1
    expect(m.ram.hugeReserved).toBe(1);
    await p.munmap(a, 2 * HUGE);
    expect(m.ram.hugeReserved).toBe(1); // the child still maps the file
    await c.write(a, fill(1, 6));
    expect(m.ram.hugeReserved).toBe(0);
    account(m);
    await c.munmap(a, 2 * HUGE);
    expect(m.files.size).toBe(0);
    expect(m.ram.freePages).toBe(2047);
    account(m);
  });
});
