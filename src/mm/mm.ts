/**
 * struct mm_struct: the page table, the VMA tree, mmap_lock and the notifier subscriptions
 * of one address space, plus the notifier bracket every PTE change goes through.
 */
import { err } from '../errors.js';
import { TASK_SIZE } from './constants.js';
import { MmapLock } from './mmap-lock.js';
import { MmuNotifierSubscriptions, mmuNotifierRange, type MmuNotifierRange, type MmuNotifyEvent } from './notifier.js';
import { PageTable } from './page-table.js';
import type { MemCore } from './pages.js';
import { VmaTree } from './vma-tree.js';
import type { Vma } from './vma.js';

/**
 * mm->mmap_base of the default (top-down) layout: below TASK_SIZE by the stack gap
 * (mmap_base(): at least 128 MiB plus the stack guard gap, no randomisation here).
 */
export const MMAP_BASE = TASK_SIZE - 128 * 1024 * 1024 - 256 * 4096;
/** TASK_UNMAPPED_BASE: where the bottom-up fallback search starts (TASK_SIZE / 3, aligned). */
export const TASK_UNMAPPED_BASE = Math.floor(TASK_SIZE / 3 / 4096) * 4096;

let mmIds = 0;

export class MmStruct {
  readonly id = ++mmIds;
  readonly core: MemCore;
  readonly pgtable = new PageTable();
  readonly vmas = new VmaTree<Vma>();
  readonly lock: MmapLock;
  readonly notifiers: MmuNotifierSubscriptions;
  readonly mmapBase = MMAP_BASE;
  /** Set by exit_mmap: the address space is gone and every call on it fails with ESRCH. */
  exited = false;

  constructor(core: MemCore) {
    this.core = core;
    this.lock = new MmapLock(core.sched);
    this.notifiers = new MmuNotifierSubscriptions(core.sched);
    core.mms.add(this);
  }

  /** Callers that took the lock check this: a racing exit() may have torn the mm down. */
  checkAlive(): void {
    if (this.exited) throw err('ESRCH', `mm ${this.id} has exited`);
  }
}

/**
 * mmu_notifier_invalidate_range_start() over [start, end) with `event`, skipped when nothing
 * listens (mm_has_notifiers). Returns the range to hand to invalidateEnd, or null.
 */
export async function invalidateStart(
  mm: MmStruct, start: number, end: number, event: MmuNotifyEvent, owner?: unknown,
): Promise<MmuNotifierRange | null> {
  if (!mm.notifiers.hasSubscriptions || !(start < end)) return null;
  const range = mmuNotifierRange(start, end, event, owner === undefined ? {} : { owner });
  await mm.notifiers.invalidateRangeStart(range);
  return range;
}

/** mmu_notifier_invalidate_range_end() for a range invalidateStart returned. */
export async function invalidateEnd(mm: MmStruct, range: MmuNotifierRange | null): Promise<void> {
  if (range !== null) await mm.notifiers.invalidateRangeEnd(range);
}
