/**
 * The policy path's bookkeeping against what others do to its range (issue 19; node only:
 * Dawn on the GPU). The residency is the policy's record of where pages live: after
 * MADV_DONTNEED, munmap or an explicit MIGRATE_TO_SYS it must not claim a page on the device
 * that the CPU page table does not hold there, and a page it lost faults again (no remote
 * access counted as a local hit). A policy is attached to one mirror: another open() does not
 * detach it, and close() does.
 */
import { describe, expect } from 'vitest';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Process } from '../../src/index.js';
import type { Dmirror } from '../../src/driver/dmirror.js';
import type { PolicyPath } from '../../src/driver/policy-path.js';
import { mappedPfn } from '../../src/mm/pagewalk.js';
import { CPU, firstTouch, type MigrationPolicy } from '../../src/policy/index.js';
import { mirrorTest } from '../support/mirror.js';
import { firstDiff, pagesOf } from '../driver/pages.js';

const ADDR = 0x4000_0000;
const N = 8;
const tag = (p: number): number => (0x9a000000 | p) >>> 0;

/** N tagged pages at ADDR in `proc`, `policy` attached to `mirror`, then a GPU read of them all. */
async function setup(proc: Process, mirror: Dmirror, policy: MigrationPolicy = firstTouch()): Promise<PolicyPath> {
  await proc.mmap(ADDR, N * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  await proc.write(ADDR, pagesOf(N, tag));
  const path = mirror.setPolicy(policy, { start: ADDR, npages: N, capacityPages: N })!;
  expect(firstDiff((await mirror.read(ADDR, N)).data, pagesOf(N, tag))).toBeNull();
  return path;
}

/** Pages the residency places on device 0, and those the CPU page table holds in device memory. */
function onDevice(path: PolicyPath, mirror: Dmirror): { claimed: number[]; real: number[] } {
  const res = path.view();
  const pages = Array.from({ length: N }, (_, p) => p);
  return {
    claimed: pages.filter((p) => res.location(p) === 0),
    real: pages.filter((p) => mirror.device.devmem.pagemap.contains(mappedPfn(mirror.mm, ADDR + p * PAGE_SIZE))),
  };
}

/** A first-touch policy that counts its cpuFault calls. */
function countingFirstTouch(): MigrationPolicy & { calls: number } {
  const base = firstTouch();
  const p = { ...base, name: 'first-touch-counting', calls: 0, cpuFault: () => { p.calls++; } };
  return p;
}

describe('the residency follows invalidations', () => {
  mirrorTest('MADV_DONTNEED, munmap and MIGRATE_TO_SYS: no page claimed on the device that is not there; a dropped page faults and moves again', async ({ proc, mirror }) => {
    const path = await setup(proc, mirror);
    expect(onDevice(path, mirror)).toEqual({ claimed: [0, 1, 2, 3, 4, 5, 6, 7], real: [0, 1, 2, 3, 4, 5, 6, 7] });
    await proc.madvise(ADDR, 2 * PAGE_SIZE, MADV_DONTNEED); // pages 0, 1: gone (demand-zero next)
    expect((await mirror.migrateToSystem(ADDR + 2 * PAGE_SIZE, 2)).cpages).toBe(2); // 2, 3: home
    await proc.munmap(ADDR + 6 * PAGE_SIZE, 2 * PAGE_SIZE); // 6, 7: unmapped
    expect(onDevice(path, mirror)).toEqual({ claimed: [4, 5], real: [4, 5] });
    expect(path.view().usedPages(0)).toBe(2);
    const home = path.view().stats.bytesToHost;
    expect(home).toBe(2 * PAGE_SIZE); // MIGRATE_TO_SYS copied two pages; DONTNEED and munmap copied nothing
    // The dropped pages are not device hits: the GPU faults on them and first touch moves them again.
    const before = path.engine.stats.farFaults;
    const { data } = await mirror.read(ADDR, 2);
    expect(firstDiff(data, new Uint8Array(2 * PAGE_SIZE))).toBeNull(); // demand-zero
    expect(path.engine.stats.farFaults).toBeGreaterThan(before);
    expect(onDevice(path, mirror)).toEqual({ claimed: [0, 1, 4, 5], real: [0, 1, 4, 5] });
  });
});

describe('a policy is attached to its mirror', () => {
  mirrorTest('another open() of the device does not detach it: the CPU fault still reaches its hook and its record', async ({ machine, proc, mirror }) => {
    const policy = countingFirstTouch();
    const path = await setup(proc, mirror, policy);
    const other = await machine.devices[0].open(machine.spawn());
    expect(firstDiff(await proc.read(ADDR, PAGE_SIZE), pagesOf(1, tag))).toBeNull(); // CPU fault: page 0 comes home
    expect(policy.calls).toBe(1);
    expect(path.stats.cpuFaults).toBe(1);
    // Page 0 came home (with its big page): the record says what the CPU table holds.
    const after = onDevice(path, mirror);
    expect(after.claimed).toEqual(after.real);
    expect(after.real).not.toContain(0);
    expect(path.view().location(0)).toBe(CPU);
    await other.close();
  });

  mirrorTest('close() detaches it: a later CPU fault on a page it moved does not call it', async ({ proc, mirror }) => {
    const policy = countingFirstTouch();
    const path = await setup(proc, mirror, policy);
    await mirror.close();
    expect(firstDiff(await proc.read(ADDR, PAGE_SIZE), pagesOf(1, tag))).toBeNull();
    expect(policy.calls).toBe(0);
    expect(path.stats.cpuFaults).toBe(0);
  });
});

describe('a policy attached late starts from the page table', () => {
  mirrorTest('pages an explicit MIGRATE_TO_DEV put on the device before setPolicy are on the device in its record (the search found it claiming system memory)', async ({ proc, mirror }) => {
    await proc.mmap(ADDR, N * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    await proc.write(ADDR, pagesOf(N, tag));
    expect((await mirror.migrateToDevice(ADDR + 2 * PAGE_SIZE, 3)).cpages).toBe(3); // pages 2, 3, 4
    const path = mirror.setPolicy(firstTouch(), { start: ADDR, npages: N, capacityPages: N })!;
    expect(onDevice(path, mirror)).toEqual({ claimed: [2, 3, 4], real: [2, 3, 4] });
    expect(path.view().usedPages(0)).toBe(3);
    // A GPU read of all: first touch moves the other five; the three were not moved again.
    expect(firstDiff((await mirror.read(ADDR, N)).data, pagesOf(N, tag))).toBeNull();
    expect(path.stats.migratedIn).toBe(5);
    expect(onDevice(path, mirror)).toEqual({ claimed: [0, 1, 2, 3, 4, 5, 6, 7], real: [0, 1, 2, 3, 4, 5, 6, 7] });
  });
});
