/**
 * performPlan (src/driver/plan-moves.ts), the moves half of the policy path, against a mover
 * that records its calls and keeps "device pages" as a set of pfns over a real mm: a plan's
 * evictions go first, in one copy, only when they touch no page the plan moves in; any other
 * plan runs step by step, in order; a move to another device is refused before anything moves;
 * and the outcome says, per step, which pages are where the step sent them.
 */
import { describe, expect } from 'vitest';
import { performPlan, type MoveCounts, type PolicyMover } from '../../src/driver/plan-moves.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Machine } from '../../src/index.js';
import type { MmStruct } from '../../src/mm/mm.js';
import { mappedPfn } from '../../src/mm/pagewalk.js';
import type { Plan, PlanStep } from '../../src/policy/plan.js';
import { CPU } from '../../src/policy/types.js';
import { machineTest as test } from '../support/machine.js';

const DEVICE = 0;

/** A mover over `mm`: migrateIn marks the pages' pfns as device pages, evict unmarks them; every call logged. */
function fakeMover(mm: MmStruct): { mover: PolicyMover; calls: string[] } {
  const onDevice = new Set<number>();
  const calls: string[] = [];
  const pfns = (start: number, end: number): number[] => {
    const out: number[] = [];
    for (let a = start; a < end; a += PAGE_SIZE) out.push(mappedPfn(mm, a));
    return out;
  };
  const mover: PolicyMover = {
    async migrateIn(start, end) {
      calls.push(`in ${start / PAGE_SIZE}-${end / PAGE_SIZE}`);
      for (const pfn of pfns(start, end)) onDevice.add(pfn);
    },
    async evict(pieces) {
      calls.push(`evict ${pieces.map((p) => `${p.start / PAGE_SIZE}-${p.end / PAGE_SIZE}`).join(',')}`);
      let n = 0;
      for (const p of pieces) for (const pfn of pfns(p.start, p.end)) if (onDevice.delete(pfn)) n++;
      return n;
    },
    isDevicePage: (pfn) => onDevice.has(pfn),
  };
  return { mover, calls };
}

/** A process with `npages` written pages, a fake mover over its mm, zero counts. */
async function setup(machine: Machine, npages: number): Promise<{ mm: MmStruct; base: number; mover: PolicyMover; calls: string[]; counts: MoveCounts }> {
  const p = machine.spawn();
  const start = await p.mmap(0, npages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  await p.write(start, new Uint8Array(npages * PAGE_SIZE).fill(1));
  return { mm: p.mm, base: start / PAGE_SIZE, ...fakeMover(p.mm), counts: { evictedOut: 0, migratedIn: 0, skipped: 0 } };
}

const move = (dst: number, ...pages: number[]): PlanStep => ({ kind: 'move', dst, cause: dst === CPU ? 'eviction' : 'fault', pages: Float64Array.from(pages) });
const plan = (...steps: PlanStep[]): Plan => ({ device: DEVICE, now: 0, steps, used: [], allocFailures: 0 });

describe('performPlan', () => {
  test('disjoint evictions go first, in one copy; the migrations follow in order', async ({ machine }) => {
    const { mm, base, mover, calls, counts } = await setup(machine, 16);
    await performPlan(plan(move(DEVICE, 0, 1, 2, 3)), mover, mm, base, DEVICE, counts);
    calls.length = 0;
    // A random-4K plan: evict one page, bring one in, twice.
    const out = await performPlan(plan(move(CPU, 0), move(DEVICE, 8), move(CPU, 2), move(DEVICE, 9, 10)), mover, mm, base, DEVICE, counts);
    expect(calls).toEqual([`evict ${base}-${base + 1},${base + 2}-${base + 3}`, `in ${base + 8}-${base + 9}`, `in ${base + 9}-${base + 11}`]);
    expect([out.moved(0, 0), out.moved(1, 8), out.moved(2, 2), out.moved(3, 9), out.moved(3, 10)]).toEqual([true, true, true, true, true]);
    expect(counts).toEqual({ evictedOut: 2, migratedIn: 7, skipped: 0 });
  });

  test('an eviction of a page the plan also moves in keeps the order, step by step', async ({ machine }) => {
    const { mm, base, mover, calls, counts } = await setup(machine, 16);
    await performPlan(plan(move(DEVICE, 0)), mover, mm, base, DEVICE, counts);
    calls.length = 0;
    // Evict 0, bring 5 in, evict 5 again: evicting first would find 5 not there yet.
    const out = await performPlan(plan(move(CPU, 0), move(DEVICE, 5), move(CPU, 5)), mover, mm, base, DEVICE, counts);
    expect(calls).toEqual([`evict ${base}-${base + 1}`, `in ${base + 5}-${base + 6}`, `evict ${base + 5}-${base + 6}`]);
    expect([out.moved(0, 0), out.moved(1, 5), out.moved(2, 5)]).toEqual([true, true, true]);
    expect(counts.evictedOut).toBe(2);
  });

  test('a move to another device is EINVAL before anything moves', async ({ machine }) => {
    const { mm, base, mover, calls, counts } = await setup(machine, 4);
    await expect(performPlan(plan(move(CPU, 0), move(DEVICE, 1), move(CPU, 2), move(3, 3)), mover, mm, base, DEVICE, counts)).rejects.toBeErrno('EINVAL');
    expect(calls).toEqual([]);
    expect(counts).toEqual({ evictedOut: 0, migratedIn: 0, skipped: 0 });
  });
});
