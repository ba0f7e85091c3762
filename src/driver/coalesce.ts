/**
 * Fault coalescing: one batch of fault records from the device's event queue becomes a
 * few ranges for hmm_range_fault. After NVIDIA UVM's fault servicing
 * (uvm_gpu_fault_buffer: dedup at fetch keeping the most intrusive access, sort by
 * address, service per 2 MiB va_block clipped to the VMA under HMM) and the seed thread's
 * argument (Ralph Campbell, 2019): the VMA found with find_vma bounds how far faults may
 * be coalesced.
 *
 * A group covers one window-aligned block of virtual addresses clipped to one VMA (and to
 * the command's range: a device faults only what it runs over). The whole clipped block is
 * faulted (fault-around, as AMD's svm_range_restore_pages faults its
 * granularity), with write access if any fault in it wrote. The caller holds the mmap lock
 * (find_vma).
 */
import type { FaultAccess, FaultRecord } from '../device/fault-queue.js';
import { PAGE_SIZE } from '../mm/constants.js';
import type { MmStruct } from '../mm/mm.js';
import { VM_ACCESS_FLAGS, VM_WRITE, type Vma } from '../mm/vma.js';

/** The coalescing window. 'amd' = 2 MiB granularity plus AMD's drop of faults on ranges validated in the last 2 ms. */
export type WindowPolicy = 4096 | 65536 | 2097152 | 'amd';

export const ACCESS_RANK: Record<FaultAccess, number> = { read: 0, write: 1, atomic: 2 };
/** AMD: faults within this long of the range's last validation are dropped (svm_range_restore_pages). */
export const AMD_RECENT_MS = 2;

export function windowBytes(w: WindowPolicy): number {
  return w === 'amd' ? 2 * 1024 * 1024 : w;
}

export interface FaultGroup {
  /** Byte range to fault: the window block clipped to the VMA. */
  start: number;
  end: number;
  /** The unique faulted pages inside it, ascending. */
  pages: number[];
  /** Most intrusive access in the group (rank: 0 read, 1 write, 2 atomic). */
  rank: number;
  vma: Vma;
}

export interface CoalesceResult {
  fetched: number;
  duplicates: number;
  /** Pages whose mirror entry already allowed the access (serviced since the fault was queued). */
  stale: number;
  /** Pages dropped by AMD's recently-validated filter. */
  recent: number;
  unique: number;
  groups: FaultGroup[];
  /** Faulted pages with no VMA: the faulting accesses fail (EFAULT). */
  holes: number[];
  /**
   * Faulted pages whose VMA forbids the access (a write or atomic to a VMA without VM_WRITE,
   * anything to PROT_NONE): fatal as UVM's uvm_va_block_check_logical_permissions makes them;
   * `readable`: a read of the page would be allowed (its read faults are not fatal).
   */
  denied: { page: number; readable: boolean }[];
}

/** Does `vma` allow an access of `rank` (0 read, 1 write, 2 atomic)? */
function allows(vma: Vma, rank: number): boolean {
  return (vma.flags & VM_ACCESS_FLAGS) !== 0 && (rank === 0 || (vma.flags & VM_WRITE) !== 0);
}

export interface CoalesceOptions {
  window: WindowPolicy;
  /** Mirror lookup: does the device already map `page` with at least `rank`? */
  isMapped?: (page: number, rank: number) => boolean;
  /** For 'amd': when (scheduler ms) the block starting at this byte address was last validated. */
  lastValidated?: (blockStart: number) => number | undefined;
  now?: number;
  /** Byte range groups never extend past (the command's range: a device only faults what it runs over). */
  clip?: { start: number; end: number };
}

/** Deduplicate (most intrusive access wins) and sort: page → rank. */
export function dedupe(records: readonly FaultRecord[]): Map<number, number> {
  const want = new Map<number, number>();
  for (const r of records) {
    const rank = ACCESS_RANK[r.access];
    const had = want.get(r.page);
    if (had === undefined || rank > had) want.set(r.page, rank);
  }
  return want;
}

export function coalesce(mm: MmStruct, records: readonly FaultRecord[], opts: CoalesceOptions): CoalesceResult {
  const want = dedupe(records);
  const W = windowBytes(opts.window);
  const res: CoalesceResult = {
    fetched: records.length, duplicates: records.length - want.size, stale: 0, recent: 0, unique: 0, groups: [], holes: [], denied: [],
  };
  const pages = [...want.keys()].sort((a, b) => a - b);
  let vma: Vma | undefined;
  let cur: FaultGroup | null = null;
  for (const page of pages) {
    const rank = want.get(page)!;
    if (opts.isMapped?.(page, rank)) {
      res.stale++;
      continue;
    }
    const addr = page * PAGE_SIZE;
    if (vma === undefined || addr < vma.start || addr >= vma.end) vma = mm.vmas.find(addr);
    if (vma === undefined || vma.start > addr) {
      res.holes.push(page);
      vma = undefined;
      continue;
    }
    if (!allows(vma, rank)) {
      res.denied.push({ page, readable: allows(vma, 0) });
      continue;
    }
    const block = Math.floor(addr / W) * W;
    if (opts.window === 'amd' && opts.lastValidated !== undefined && opts.now !== undefined) {
      const t = opts.lastValidated(block);
      if (t !== undefined && opts.now - t < AMD_RECENT_MS) {
        res.recent++;
        continue;
      }
    }
    res.unique++;
    if (cur !== null && cur.vma === vma && addr < cur.end && addr >= cur.start) {
      cur.pages.push(page);
      if (rank > cur.rank) cur.rank = rank;
      continue;
    }
    const lo = Math.max(block, vma.start, opts.clip?.start ?? 0);
    const hi = Math.min(block + W, vma.end, opts.clip?.end ?? Infinity);
    cur = { start: lo, end: hi, pages: [page], rank, vma };
    res.groups.push(cur);
  }
  return res;
}

/** The per-fault baseline: every record on its own, duplicates included, no window. */
export function perFault(mm: MmStruct, records: readonly FaultRecord[]): CoalesceResult {
  const res: CoalesceResult = {
    fetched: records.length, duplicates: 0, stale: 0, recent: 0, unique: 0, groups: [], holes: [], denied: [],
  };
  for (const r of records) {
    const addr = r.page * PAGE_SIZE;
    const vma = mm.vmas.find(addr);
    if (vma === undefined || vma.start > addr) {
      res.holes.push(r.page);
      continue;
    }
    if (!allows(vma, ACCESS_RANK[r.access])) {
      res.denied.push({ page: r.page, readable: allows(vma, 0) });
      continue;
    }
    res.unique++;
    res.groups.push({ start: addr, end: addr + PAGE_SIZE, pages: [r.page], rank: ACCESS_RANK[r.access], vma });
  }
  return res;
}
