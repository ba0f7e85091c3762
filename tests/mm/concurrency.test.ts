/**
 * Concurrent CPU tasks and a mirroring "device" under the SeededScheduler. The device caches
 * translations outside of active invalidations and drops them on invalidate_range_start (whose
 * callback also yields, like a shootdown). Invariant: a cached translation always matches the
 * CPU page table (same pfn; no lost write permission) — i.e. no PTE changes without an
 * invalidation covering it having started first.
 */
import { describe, expect } from 'vitest';
import {
  HmmError, MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE,
  MAP_SHARED, PROT_READ, PROT_WRITE, SegmentationFault,
} from '../../src/index.js';
import { checkFrameAccounting } from '../../src/mm/accounting.js';
import type { MmStruct } from '../../src/mm/mm.js';
import { isPresent, PTE_WRITE } from '../../src/mm/page-table.js';
import { mulberry32, SeededScheduler } from '../../src/sched/seeded.js';
import { entryAt, HUGE, PG } from './helpers.js';
import { machineTest, type MachineFactory } from '../support/machine.js';

function translation(mm: MmStruct, a: number): { pfn: number; write: boolean } | null {
  const e = entryAt(mm, a);
  if (e === null || !isPresent(e.flags)) return null;
  return { pfn: e.level === 'pmd' ? e.pfn + Math.floor((a % HUGE) / PG) : e.pfn, write: (e.flags & PTE_WRITE) !== 0 };
}

async function run(machines: MachineFactory, seed: number): Promise<void> {
  const sched = new SeededScheduler(seed);
  const m = await machines({ systemPages: 4096, scheduler: sched });
  const p = m.spawn();
  const rand = mulberry32(seed ^ 0x5bd1e995);
  const base = await p.mmap(0, 4 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  await p.madvise(base, 2 * HUGE, MADV_HUGEPAGE);
  const npages = (4 * HUGE) / PG;
  const cache = new Map<number, { pfn: number; write: boolean }>();
  const active: { start: number; end: number; event: string }[] = [];
  const violations: string[] = [];
  const verify = (where: string): void => {
    for (const [a, c] of cache) {
      const t = translation(p.mm, a);
      if (t === null || t.pfn !== c.pfn || (c.write && !t.write)) {
        violations.push(`${where}: 0x${a.toString(16)} cached ${JSON.stringify(c)} now ${JSON.stringify(t)}`);
      }
    }
  };
  p.mm.notifiers.register({
    async invalidateRangeStart(r) {
      verify(`start ${r.event}`);
      for (const a of [...cache.keys()]) if (a >= r.start && a < r.end) cache.delete(a);
      active.push(r);
      await sched.yield('device-shootdown');
      return true;
    },
    invalidateRangeEnd(r) {
      active.splice(active.findIndex((x) => x.start === r.start && x.end === r.end && x.event === r.event), 1);
    },
  });
  let running = 3;
  let cachedCount = 0;
  const device = (async () => {
    while (running > 0) {
      for (let k = 0; k < 16; k++) {
        const a = base + Math.floor(rand() * npages) * PG;
        if (active.some((r) => a >= r.start && a < r.end)) continue;
        const t = translation(p.mm, a);
        if (t !== null) {
          cache.set(a, t);
          cachedCount++;
        }
      }
      verify('device');
      await sched.yield('device-walk');
    }
  })();
  const ignorable = (e: unknown): boolean => e instanceof SegmentationFault || (e instanceof HmmError && e.code === 'ENOMEM');
  const cpu = async (id: number): Promise<void> => {
    const children = [];
    for (let i = 0; i < 60; i++) {
      const a = base + Math.floor(rand() * npages) * PG;
      const n = 1 + Math.floor(rand() * 3);
      const op = rand();
      await sched.yield(`cpu${id}`);
      try {
        if (op < 0.35) await p.write(a, new Uint8Array(n * PG).fill(id * 16 + (i % 16)));
        else if (op < 0.5) await p.read(a, n * PG);
        else if (op < 0.6) await p.madvise(a, n * PG, MADV_DONTNEED);
        else if (op < 0.68) await p.madvise(a, n * PG, MADV_PAGEOUT);
        else if (op < 0.78) await p.mprotect(a, n * PG, rand() < 0.5 ? PROT_READ : PROT_READ | PROT_WRITE);
        else if (op < 0.84) await p.mmap(a, n * PG, PROT_READ | PROT_WRITE, (rand() < 0.5 ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED);
        else if (op < 0.9) await p.munmap(a, n * PG);
        else if (op < 0.95) children.push(await p.fork());
        else await p.mmap(a, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      } catch (e) {
        if (!ignorable(e)) throw e;
      }
    }
    for (const c of children) await c.exit();
  };
  await Promise.all([cpu(1), cpu(2), cpu(3)].map((t) => t.finally(() => { running--; })));
  await device;
  expect(violations).toEqual([]);
  expect(cachedCount).toBeGreaterThan(20);
  expect(p.mm.notifiers.stats.invalidations).toBeGreaterThan(50);
  checkFrameAccounting(m);
  await m.destroy();
  expect(checkFrameAccounting(m).usedFrames).toBe(1);
}

describe('concurrent faults, syscalls and a mirroring device (seeded)', () => {
  machineTest.for([11, 12, 13, 14, 15, 16, 17, 18])('seed %s', async (seed, { machines }) => {
    await run(machines, seed);
  });
});
