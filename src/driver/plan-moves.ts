/**
 * A policy's plan performed (the moves half of PolicyPath): its steps in their order —
 * evictions home through the mirror's device memory (Devmem.evictPieces), migrations in
 * through migrate.ts (dmirrorMigrateIn) — and what really moved, read from the CPU page table
 * after each (a device-private entry of ours, or not): the PlanOutcome the engine commits.
 */
import { err } from '../errors.js';
import { PAGE_SIZE } from '../mm/constants.js';
import type { MmStruct } from '../mm/mm.js';
import { mappedPfn } from '../mm/pagewalk.js';
import { VM_WRITE } from '../mm/vma.js';
import type { Plan, PlanOutcome, PlanStep } from '../policy/plan.js';
import { CPU } from '../policy/types.js';

/**
 * What a mirror lends the policy attached to it (Dmirror.setPolicy): its own migrations, as
 * its ioctls make them, and which pfns are its device's memory. Nothing else of the mirror.
 */
export interface PolicyMover {
  /** MIGRATE_TO_DEV's per-VMA work over [start, end) (dmirrorMigrateIn). Caller holds the mmap read lock. */
  migrateIn(start: number, end: number, vmaWrite: boolean): Promise<void>;
  /** The device pages of `pieces` ([start, end) bytes) home in one copy (Devmem.evictPieces); returns pages moved. Caller holds the mmap read lock. */
  evict(pieces: readonly { start: number; end: number }[]): Promise<number>;
  /** Is pfn a page of this device's memory? */
  isDevicePage(pfn: number): boolean;
}

/** Pages a plan moved, as PolicyPathStats counts them. */
export interface MoveCounts {
  evictedOut: number;
  migratedIn: number;
  /** Pages planned onto the device that migrate_vma did not move. */
  skipped: number;
}

/** Contiguous runs of ascending pages: [first, outer). */
export function runs(pages: ArrayLike<number> & Iterable<number>): [number, number][] {
  const out: [number, number][] = [];
  for (const p of pages) {
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === p) last[1]++;
    else out.push([p, p + 1]);
  }
  return out;
}

const isEviction = (step: PlanStep): boolean => step.kind === 'move' && step.dst === CPU;

/**
 * Performs `plan` for the mirror of `device` whose managed range starts at `basePage` of
 * `mm`, adding to `counts`. A random-4K or SL-64K plan alternates an eviction with the
 * migration it makes room for, and each eviction's own readback cost 0.2-0.3 ms on llvmpipe:
 * when the evictions touch no page the plan moves in, they go first, in one copy. Evicting
 * first only frees device memory sooner, and with the pages disjoint every step ends where it
 * would have in order. Otherwise the steps run one by one, in order. Caller holds the mmap
 * read lock.
 */
export async function performPlan(plan: Plan, mover: PolicyMover, mm: MmStruct, basePage: number, device: number, counts: MoveCounts): Promise<PlanOutcome> {
  const { steps } = plan;
  // A move to another device is refused before anything moves.
  for (const s of steps) if (s.kind === 'move' && s.dst !== CPU && s.dst !== device) throw err('EINVAL', `policy moved pages to device ${s.dst}, not ${device}`);
  const abs = steps.map((s) => (s.kind === 'move' ? s.pages.map((p) => basePage + p).sort((a, b) => a - b) : null));
  const moved: (Set<number> | null)[] = steps.map(() => null);
  const landed = (k: number): void => {
    const pages = abs[k]!;
    const home = isEviction(steps[k]);
    const done = new Set<number>();
    for (const page of pages) {
      const pfn = mappedPfn(mm, page * PAGE_SIZE);
      if ((pfn >= 0 && mover.isDevicePage(pfn)) !== home) done.add(page - basePage);
    }
    if (!home) {
      counts.migratedIn += done.size;
      counts.skipped += pages.length - done.size;
    }
    moved[k] = done;
  };
  /** Step k's pages as byte ranges, a run each (what Devmem.evictPieces takes). */
  const pieces = (k: number): { start: number; end: number }[] => runs(abs[k]!).map(([s, e]) => ({ start: s * PAGE_SIZE, end: e * PAGE_SIZE }));
  const evictions = steps.flatMap((s, k) => (isEviction(s) ? [k] : []));
  const incoming = new Set<number>();
  steps.forEach((s, k) => { if (s.kind === 'move' && !isEviction(s)) for (const p of abs[k]!) incoming.add(p); });
  const upFront = evictions.length > 1 && evictions.every((k) => abs[k]!.every((p) => !incoming.has(p)));
  if (upFront) {
    counts.evictedOut += await mover.evict(evictions.flatMap(pieces));
    evictions.forEach(landed);
  }
  for (let k = 0; k < steps.length; k++) {
    const step = steps[k];
    if (step.kind !== 'move' || (upFront && isEviction(step))) continue;
    if (step.dst === CPU) {
      counts.evictedOut += await mover.evict(pieces(k));
    } else {
      for (const { start, end } of pieces(k)) {
        const vma = mm.vmas.lookup(start);
        await mover.migrateIn(start, end, vma !== undefined && (vma.flags & VM_WRITE) !== 0);
      }
    }
    landed(k);
  }
  return { moved: (k, p) => moved[k]?.has(p) ?? true };
}
