/**
 * A read-only look at one mirror and the buffer it mirrors, for the lab's live views. It
 * changes nothing and takes no lock: it runs at the runner's replay boundary, where the
 * servicer holds none and no GPU work of the run is in flight, so what it reads is settled.
 *
 * What it reads (all public surfaces; nothing in src/driver or src/device was changed):
 *   - the CPU page table of the mirrored mm: mappedPfn() (src/mm/pagewalk.ts) for "is a page
 *     there", and the PTE's flags (mm.pgtable.pteTable, isDevicePrivate/isDeviceExclusive
 *     from src/mm/page-table.ts) for device-private and device-exclusive entries;
 *   - the GPU page table the device walks: mirror.engine.pt.lookup(page) (VALID, WRITE,
 *     EXCLUSIVE, DEVICE bits) and mirror.engine.pt.stats (leaves, tables, maxTables);
 *   - the system-memory aperture: mirror.aperture.mapped / freeSlots;
 *   - the fault ring's capacity: mirror.engine.faults.capacity (its fill per replay comes
 *     from the runner's onRound);
 *   - invalidations: an mmu interval notifier of the lab's own over the buffer
 *     (watchInvalidations), which only records ranges and returns true;
 *   - with a migration policy: its residency (PolicyPath.engine.residency, the view the
 *     policy decides from) for pinned pages and pages whose latest move was thrashing
 *     (uvm_perf_thrashing's test); device residency itself is read from the page tables.
 */
import type { Dmirror } from '../driver/dmirror.js';
import type { PolicyPath } from '../driver/policy-path.js';
import { PTE_DEVICE, PTE_EXCLUSIVE, PTE_WRITE } from '../device/page-table.js';
import { PAGE_SIZE } from '../mm/constants.js';
import { isDeviceExclusive, isDevicePrivate, pteIndex } from '../mm/page-table.js';
import { mappedPfn } from '../mm/pagewalk.js';

/** A page's state, one byte per page in the strip. */
export const PageState = {
  /** Nothing mapped (never touched, swapped out). */
  none: 0,
  /** Present for the CPU, not mirrored. */
  cpu: 1,
  mirroredRead: 2,
  mirroredWrite: 3,
  /** In device memory (device-private entry, or the mirror maps a device page). */
  device: 4,
  /** Device-exclusive (atomics granted). */
  exclusive: 5,
  /** Hit by an invalidation since the last snapshot. */
  invalidated: 6,
  /** Thrashing or pinned: from the migration policy's residency (none without a policy). */
  thrashing: 7,
} as const;
export type PageStateValue = (typeof PageState)[keyof typeof PageState];

export const PAGE_STATE_NAMES: readonly string[] = [
  'not present', 'CPU only', 'mirrored read', 'mirrored write', 'device-resident', 'exclusive', 'being invalidated',
  'thrashing / pinned',
];

export interface MirrorSnapshot {
  /** One PageState per page of the buffer. */
  pages: Uint8Array;
  pageTable: { leaves: number; tables: number; maxTables: number };
  aperture: { used: number; slots: number };
  faultRing: { capacity: number };
}

/** Reads the states of [start, start + npages * PAGE_SIZE). `invalidated`: page offsets to mark. */
export function snapshotMirror(m: Dmirror, start: number, npages: number, invalidated?: ReadonlySet<number>, policy?: PolicyPath | null): MirrorSnapshot {
  const pages = new Uint8Array(npages);
  const pt = m.engine.pt;
  const res = policy?.engine.residency ?? null;
  const first = policy != null ? start / PAGE_SIZE - policy.basePage : 0;
  for (let i = 0; i < npages; i++) {
    const addr = start + i * PAGE_SIZE;
    const p = first + i;
    if (res !== null && p >= 0 && p < res.pageCount && (res.pinned(p) || res.thrashing(p))) {
      pages[i] = PageState.thrashing;
      continue;
    }
    const t = m.mm.pgtable.pteTable(addr, false);
    const cpuFlags = t === null ? 0 : t.flags[pteIndex(addr)];
    const e = pt.lookup(addr / PAGE_SIZE);
    // Where a page is now wins over "invalidated": a migration invalidates the pages it
    // moves (MMU_NOTIFY_MIGRATE), and the strip shows where they went.
    if ((e !== null && (e.flags & PTE_EXCLUSIVE) !== 0) || isDeviceExclusive(cpuFlags)) pages[i] = PageState.exclusive;
    else if ((e !== null && (e.flags & PTE_DEVICE) !== 0) || isDevicePrivate(cpuFlags)) pages[i] = PageState.device;
    else if (invalidated?.has(i)) pages[i] = PageState.invalidated;
    else if (e !== null) pages[i] = (e.flags & PTE_WRITE) !== 0 ? PageState.mirroredWrite : PageState.mirroredRead;
    else pages[i] = mappedPfn(m.mm, addr) >= 0 ? PageState.cpu : PageState.none;
  }
  const s = pt.stats;
  return {
    pages,
    pageTable: { leaves: s.leaves, tables: s.tables, maxTables: s.maxTables },
    aperture: { used: m.aperture.mapped, slots: m.aperture.mapped + m.aperture.freeSlots },
    faultRing: { capacity: m.engine.faults.capacity },
  };
}

export interface InvalidationNote {
  start: number;
  end: number;
  event: string;
}

/**
 * Watches invalidations over [start, end) with an interval notifier of its own (inserted
 * under the mmap read lock, as dmirror's open does): each is reported, nothing is zapped.
 */
export async function watchInvalidations(m: Dmirror, start: number, end: number, note: (n: InvalidationNote) => void): Promise<void> {
  await m.mm.lock.readLock();
  try {
    await m.mm.notifiers.insertInterval(start, end - start, {
      invalidate: (_sub, range) => {
        note({ start: Math.max(range.start, start), end: Math.min(range.end, end), event: range.event });
        return true;
      },
    });
  } finally {
    m.mm.lock.readUnlock();
  }
}
