/**
 * Access counters on the real fault path (issue 9; node only: Dawn on the GPU): the mirror's
 * kernels count remote word accesses per region of the policy's granularity, the driver reads
 * them after each round and hands what they counted to the policy's accessCounters hook between
 * rounds and at the command's end (uvm_gpu_access_counters.c) — not the per-page touch estimate.
 * A region migrates exactly when the GPU's count reaches the threshold, before the next round;
 * device-local accesses are not counted.
 */
import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Process } from '../../src/index.js';
import type { Dmirror } from '../../src/driver/dmirror.js';
import type { PolicyPath } from '../../src/driver/policy-path.js';
import {
  accessCounters, computeNs, linkNs, NVIDIA_ACCESS_COUNTERS, remoteOnly, validatePolicy, DECIDE_REMOTE, type AccessCounterBatch, type MigrationPolicy,
} from '../../src/policy/index.js';
import { HmmError } from '../../src/errors.js';
import { firstDiff, pagesOf } from '../driver/pages.js';
import { mirrorTest } from '../support/mirror.js';

const ADDR = 0x4000_0000; // 2 MiB aligned: the managed range is one NVIDIA region
const NPAGES = 512;
const WORDS = PAGE_SIZE / 4;
/** 128-byte memory requests a page read makes (the default counting unit). */
const REQUESTS = PAGE_SIZE / 128;
const tag = (p: number): number => (0xac000000 | p) >>> 0;

describe('GPU access counters on the policy path', () => {
  mirrorTest.override('machineOptions', { systemPages: 4096, devicePages: NPAGES, aperturePages: 1024 });

  async function setup({ proc, mirror }: { proc: Process; mirror: Dmirror }, policy: MigrationPolicy): Promise<{ proc: Process; mirror: Dmirror; path: PolicyPath }> {
    const buf = await proc.mmap(ADDR, NPAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    expect(buf).toBe(ADDR);
    await proc.write(buf, pagesOf(NPAGES, tag));
    const path = mirror.setPolicy(policy, { start: buf, npages: NPAGES, capacityPages: NPAGES })!;
    return { proc, mirror, path };
  }

  /** A policy that maps every fault remotely and logs each access-counter batch it gets (pages, counts). */
  function counterLog(): { policy: MigrationPolicy; seen: { pages: number[]; counts: number[] }[] } {
    const seen: { pages: number[]; counts: number[] }[] = [];
    const policy: MigrationPolicy = {
      name: 'counter-log',
      decide(g, _v, out) {
        out.action.fill(DECIDE_REMOTE, 0, g.count);
      },
      accessCounters(b: AccessCounterBatch) {
        seen.push({ pages: Array.from(b.pages.subarray(0, b.count)), counts: Array.from(b.counts.subarray(0, b.count)) });
      },
    };
    return { policy, seen };
  }

  async function readPages(mirror: Dmirror, first: number, n: number): Promise<void> {
    const { data } = await mirror.read(ADDR + first * PAGE_SIZE, n);
    expect(firstDiff(data, pagesOf(n, (k) => tag(first + k)))).toBeNull();
  }

  mirrorTest('a region migrates exactly when the GPU counted the threshold (3 pages of 128-byte requests), not one read before', async ({ proc, mirror: m0 }) => {
    const { mirror, path } = await setup({ proc, mirror: m0 }, accessCounters({ regionPages: NPAGES, threshold: 3 * REQUESTS, scaleByRoundTrips: false, subregionPages: NPAGES }, 'ac-3-pages'));
    expect(path.gpuCounters).toEqual({ regionPages: NPAGES, origin: ADDR / PAGE_SIZE });
    expect(mirror.engine.accessCounters).toEqual(path.gpuCounters);
    await readPages(mirror, 0, 1);
    expect(path.stats.countedAccesses).toBe(WORDS);
    expect(path.stats.migratedIn).toBe(0);
    await readPages(mirror, 7, 1);
    expect(path.stats.countedAccesses).toBe(2 * WORDS);
    expect(path.stats.migratedIn).toBe(0); // 64 < 96 requests
    await readPages(mirror, 300, 1);
    expect(path.stats.countedAccesses).toBe(3 * WORDS);
    expect(path.stats.migratedIn).toBe(NPAGES); // the 96th request: the whole region moves
    expect(path.engine.stats.accessCounterMigrations).toBe(NPAGES);
    // Now device-local: read again, nothing counted.
    await readPages(mirror, 0, 8);
    expect(path.stats.countedAccesses).toBe(3 * WORDS);
  });

  mirrorTest("NVIDIA's 256 per 2 MiB counts memory requests: 7 pages read remotely do not reach it, the 8th does; its 64 KiB sub-region moves", async ({ proc, mirror: m0 }) => {
    // 1024 words a page = 32 requests of 128 bytes; 256 requests = 8 pages.
    const { mirror, path } = await setup({ proc, mirror: m0 }, accessCounters(NVIDIA_ACCESS_COUNTERS));
    await readPages(mirror, 5, 7);
    expect(path.stats.countedAccesses).toBe(7 * WORDS);
    expect(path.stats.migratedIn).toBe(0);
    await readPages(mirror, 12, 1);
    // Pages 5..12 lie in sub-regions 0 (0..15): those 16 pages move, not the 2 MiB.
    expect(path.stats.migratedIn).toBe(16);
  });

  mirrorTest('a user policy without a granularity gets a counter a page: each page read, with its count', async ({ proc, mirror: m0 }) => {
    const { policy, seen } = counterLog();
    const { mirror, path } = await setup({ proc, mirror: m0 }, policy);
    expect(path.gpuCounters).toEqual({ regionPages: 1, origin: ADDR / PAGE_SIZE });
    await readPages(mirror, 5, 3);
    await readPages(mirror, 6, 1);
    expect(seen).toEqual([
      { pages: [5, 6, 7], counts: [REQUESTS, REQUESTS, REQUESTS] },
      { pages: [6], counts: [REQUESTS] },
    ]);
  });

  mirrorTest('between rounds: what a round counted is handed over before the replay, as UVM services notifications while the kernel runs', async ({ proc, mirror: m0 }) => {
    const { policy, seen } = counterLog();
    const { mirror } = await setup({ proc, mirror: m0 }, policy);
    await readPages(mirror, 5, 1); // page 5 mapped remotely
    seen.length = 0;
    // Round 1 reads page 5 (counted) and faults on 6, 7; round 2 reads them. Each count once.
    await readPages(mirror, 5, 3);
    expect(seen).toEqual([
      { pages: [5], counts: [REQUESTS] },
      { pages: [6, 7], counts: [REQUESTS, REQUESTS] },
    ]);
  });

  mirrorTest('a region notified in a round migrates before the next: that round\'s accesses are local, not counted', async ({ proc, mirror: m0 }) => {
    const { mirror, path } = await setup({ proc, mirror: m0 }, accessCounters({ regionPages: NPAGES, threshold: 2 * REQUESTS, scaleByRoundTrips: false, subregionPages: NPAGES }, 'ac-2-pages'));
    await readPages(mirror, 0, 1);
    expect(path.stats.countedAccesses).toBe(WORDS);
    expect(path.stats.migratedIn).toBe(0);
    // Round 1: page 0 again (the 64th request: notified) and faults on 1, 2; the region moves
    // before round 2, which reads 1 and 2 in device memory. At the command's end they would
    // have been read remotely first (4 pages counted).
    await readPages(mirror, 0, 3);
    expect(path.stats.migratedIn).toBe(NPAGES);
    expect(path.stats.countedAccesses).toBe(2 * WORDS);
    await readPages(mirror, 0, 8);
    expect(path.stats.countedAccesses).toBe(2 * WORDS);
  });

  mirrorTest('remote traffic is charged from the GPU\'s own counts, for any policy: the bytes the kernel read remotely, at the link\'s rate', async ({ proc, mirror: m0 }) => {
    const { mirror, path } = await setup({ proc, mirror: m0 }, remoteOnly());
    expect(path.gpuCounters).toEqual({ regionPages: 1, origin: ADDR / PAGE_SIZE });
    await readPages(mirror, 0, 8); // faults, then mapped remotely
    const cost = path.cost;
    const step = async (n: number): Promise<number> => {
      const t0 = path.now;
      await readPages(mirror, 0, n);
      return path.now - t0;
    };
    // No faults now: a launch, the roofline charge, and n pages of words (whole 128-byte requests) over the link.
    for (const n of [1, 4]) {
      expect(await step(n)).toBe(cost.launchNs + computeNs(cost, n * PAGE_SIZE) + cost.remoteAccessNs + linkNs(cost, n * PAGE_SIZE));
    }
  });

  mirrorTest('the counting unit is configurable: 4-byte requests count words', async ({ proc, mirror: m0 }) => {
    const seen: number[] = [];
    const policy: MigrationPolicy = {
      name: 'word-counter', accessCounterRequestBytes: 4,
      decide(g, _v, out) {
        out.action.fill(DECIDE_REMOTE, 0, g.count);
      },
      accessCounters(b: AccessCounterBatch) {
        seen.push(...Array.from(b.counts.subarray(0, b.count)));
      },
    };
    const { mirror } = await setup({ proc, mirror: m0 }, policy);
    await readPages(mirror, 9, 1);
    expect(seen).toEqual([WORDS]);
    expect(() => validatePolicy({ name: 'x', decide: () => undefined, accessCounterRequestBytes: 6 }, 'test')).toThrow(HmmError);
  });

  it('a policy module with a bad granularity is EINVAL', () => {
    const base = { name: 'x', decide: () => undefined };
    for (const bad of [0, -16, 1.5, '512', 2 ** 31 + 1]) {
      expect(() => validatePolicy({ ...base, accessCounterRegionPages: bad }, 'test')).toThrow(HmmError);
    }
    expect(validatePolicy({ ...base, accessCounterRegionPages: 16 }, 'test').accessCounterRegionPages).toBe(16);
  });
});

describe('CPU faults on device pages on the real path (uvm_va_block_cpu_fault: the 64 KiB big page comes home)', () => {
  mirrorTest.override('machineOptions', { systemPages: 4096, devicePages: 64, aperturePages: 1024 });

  mirrorTest('a CPU fault brings 16 pages home in one migrate_to_ram; the rest stay on the device; data intact', async ({ machine: m, proc, mirror }) => {
    const n = 32;
    const buf = await proc.mmap(ADDR, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    await proc.write(buf, pagesOf(n, tag));
    const { firstTouch } = await import('../../src/policy/builtins.js');
    const path = mirror.setPolicy(firstTouch(), { start: buf, npages: n, capacityPages: 64 })!;
    await mirror.read(buf, n); // every page migrates into device memory
    expect(path.stats.migratedIn).toBe(n);
    const devmem = m.devices[0].devmem;
    const before = devmem.cpuFaults;
    const got = await proc.read(buf + 21 * PAGE_SIZE, 4); // page 21: big page 16..31
    expect(new Uint32Array(got.buffer, got.byteOffset, 1)[0]).toBe(tag(21));
    expect(devmem.cpuFaults - before).toBe(1);
    const home = Array.from({ length: n }, (_, p) => path.engine.residency.location(p) === -1);
    expect(home.slice(16)).toEqual(new Array(16).fill(true));
    expect(home.slice(0, 16)).toEqual(new Array(16).fill(false));
    // The CPU reads the rest of the big page without another fault; page 3 faults once more.
    await proc.read(buf + 16 * PAGE_SIZE, 16 * PAGE_SIZE);
    expect(devmem.cpuFaults - before).toBe(1);
    expect(firstDiff(await proc.read(buf, n * PAGE_SIZE), pagesOf(n, tag))).toBeNull();
    expect(devmem.cpuFaults - before).toBe(2);
    expect(m.devices[0].stats.mappedFrees).toBe(0);
  });
});
