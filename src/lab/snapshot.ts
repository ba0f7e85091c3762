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
import { isDeviceExclusive, isDevicePrivate, isPresent, pteIndex, PTE_WRITE as CPU_PTE_WRITE } from '../mm/page-table.js';
import { mappedPfn } from '../mm/pagewalk.js';

/**
 * A page's state on each side, one byte per page per band. The CPU band is what the mm's
 * page table holds for the address; the GPU band is what the mirror's page table (the one
 * the device walks) holds. Invalidations and the policy's thrashing/pinned marks are
 * overlays (MirrorSnapshot.marks), never a state: a page being invalidated is still mapped
 * or not, on each side, and the strip shows both.
 */
export const CpuState = {
  /** No PTE (never touched, or unmapped). */
  none: 0,
  /** Present, read-only (COW-shared, mprotected, or the zero page). */
  read: 1,
  /** Present and writable. */
  write: 2,
  /** A device-private swap entry: the data lives in device memory. */
  device: 3,
  /** A device-exclusive entry (make_device_exclusive_range). */
  exclusive: 4,
  /** Swapped out, or a migration entry in flight. */
  swap: 5,
} as const;
export type CpuStateValue = (typeof CpuState)[keyof typeof CpuState];

export const GpuState = {
  /** The mirror maps nothing here. */
  none: 0,
  /** Mirrored read-only (a system page through the aperture). */
  read: 1,
  /** Mirrored writable. */
  write: 2,
  /** The mirror maps a device-private page. */
  device: 3,
  /** Device-exclusive (atomics granted). */
  exclusive: 4,
} as const;

export const CPU_STATE_NAMES: readonly string[] = ['no PTE', 'present, read-only', 'present, writable', 'device-private entry', 'device-exclusive entry', 'swap / migration entry'];
export const GPU_STATE_NAMES: readonly string[] = ['not mirrored', 'mirrored read', 'mirrored write', 'device page', 'exclusive'];

/** Overlay bits of MirrorSnapshot.marks. */
export const MARK_INVALIDATED = 1;
export const MARK_THRASHING = 2;

export interface MirrorSnapshot {
  /** One CpuState per page of the buffer. */
  cpu: Uint8Array;
  /** One GpuState per page of the buffer. */
  gpu: Uint8Array;
  /** Overlay bits per page: MARK_INVALIDATED (hit since the last snapshot), MARK_THRASHING (policy: thrashing or pinned). */
  marks: Uint8Array;
  /** Pages of the buffer the mirror maps (gpu band != none): what the page-table meter shows. */
  gpuMapped: number;
  pageTable: { leaves: number; hugeLeaves: number; tables: number; maxTables: number };
  aperture: { used: number; slots: number };
  faultRing: { capacity: number };
}

function cpuState(flags: number): CpuStateValue {
  if (flags === 0) return CpuState.none;
  if (isDeviceExclusive(flags)) return CpuState.exclusive;
  if (isDevicePrivate(flags)) return CpuState.device;
  if (isPresent(flags)) return (flags & CPU_PTE_WRITE) !== 0 ? CpuState.write : CpuState.read;
  return CpuState.swap;
}

/** Reads the states of [start, start + npages * PAGE_SIZE). `invalidated`: page offsets to mark. */
export function snapshotMirror(m: Dmirror, start: number, npages: number, invalidated?: ReadonlySet<number>, policy?: PolicyPath | null): MirrorSnapshot {
  const cpu = new Uint8Array(npages);
  const gpu = new Uint8Array(npages);
  const marks = new Uint8Array(npages);
  const pt = m.engine.pt;
  const res = policy?.engine.residency ?? null;
  const meter = policy?.engine.thrashing ?? null;
  const first = policy != null ? start / PAGE_SIZE - policy.basePage : 0;
  let gpuMapped = 0;
  for (let i = 0; i < npages; i++) {
    const addr = start + i * PAGE_SIZE;
    const p = first + i;
    if (res !== null && p >= 0 && p < res.pageCount && (res.pinned(p) || meter?.thrashing(p) === true)) marks[i] |= MARK_THRASHING;
    if (invalidated?.has(i)) marks[i] |= MARK_INVALIDATED;
    const t = m.mm.pgtable.pteTable(addr, false);
    // A huge PMD maps the page without a PTE table: mappedPfn's walk sees it.
    cpu[i] = t !== null ? cpuState(t.flags[pteIndex(addr)]) : mappedPfn(m.mm, addr) >= 0 ? CpuState.write : CpuState.none;
    const e = pt.lookup(addr / PAGE_SIZE);
    if (e === null) continue;
    gpuMapped++;
    gpu[i] = (e.flags & PTE_EXCLUSIVE) !== 0 ? GpuState.exclusive : (e.flags & PTE_DEVICE) !== 0 ? GpuState.device
      : (e.flags & PTE_WRITE) !== 0 ? GpuState.write : GpuState.read;
  }
  const s = pt.stats;
  return {
    cpu, gpu, marks, gpuMapped,
    pageTable: { leaves: s.leaves, hugeLeaves: s.hugeLeaves, tables: s.tables, maxTables: s.maxTables },
    aperture: { used: m.aperture.mapped, slots: m.aperture.mapped + m.aperture.freeSlots },
    faultRing: { capacity: m.engine.faults.capacity },
  };
}

/** Counts of each state in a band. */
export function bandCounts(band: Uint8Array, states: number): number[] {
  const out = new Array<number>(states).fill(0);
  for (const v of band) out[v]++;
  return out;
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

/**
 * Several processes' snapshots as one address strip: their buffers side by side (process 0's
 * pages first), the meters' counts summed (each mirror has its own page table and aperture).
 */
export function joinSnapshots(list: readonly MirrorSnapshot[]): MirrorSnapshot {
  if (list.length === 1) return list[0];
  const cat = (k: 'cpu' | 'gpu' | 'marks'): Uint8Array => {
    const out = new Uint8Array(list.reduce((n, s) => n + s[k].length, 0));
    let o = 0;
    for (const s of list) {
      out.set(s[k], o);
      o += s[k].length;
    }
    return out;
  };
  const sum = <T extends object>(f: (s: MirrorSnapshot) => T): T => {
    const out = { ...f(list[0]) } as Record<string, number>;
    for (const s of list.slice(1)) for (const [k, v] of Object.entries(f(s))) out[k] += v as number;
    return out as T;
  };
  return {
    cpu: cat('cpu'), gpu: cat('gpu'), marks: cat('marks'), gpuMapped: list.reduce((n, s) => n + s.gpuMapped, 0),
    pageTable: sum((s) => s.pageTable), aperture: sum((s) => s.aperture), faultRing: list[0].faultRing,
  };
}
