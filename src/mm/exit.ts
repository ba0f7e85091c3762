/**
 * exit_mmap() (mm/mmap.c): mmu_notifier_release (->release of legacy subscribers, a RELEASE
 * invalidation of interval ones), then one UNMAP invalidation over the whole address space
 * around zapping every VMA (unmap_vmas with 0..ULONG_MAX), then free_pgtables and the VMAs
 * (their files lose a reference; a file nobody else holds drops its page cache).
 */
import { TASK_SIZE } from './constants.js';
import { hugetlbVmOpClose } from './huge.js';
import { invalidateEnd, invalidateStart, type MmStruct } from './mm.js';
import { removeVma } from './vma-ops.js';
import { zapRangeLocked } from './zap.js';

export async function exitMmap(mm: MmStruct): Promise<void> {
  await mm.lock.writeLock();
  try {
    if (mm.exited) return;
    await mm.notifiers.release();
    const vmas = [...mm.vmas];
    const range = vmas.length > 0 ? await invalidateStart(mm, 0, TASK_SIZE, 'UNMAP') : null;
    try {
      for (const v of vmas) zapRangeLocked(mm, v.start, v.end);
      for (const v of vmas) {
        mm.pgtable.freeEmpty(v.start, v.end);
        hugetlbVmOpClose(mm, v);
        removeVma(mm, v);
      }
    } finally {
      mm.exited = true;
      mm.core.mms.delete(mm);
      await invalidateEnd(mm, range);
    }
  } finally {
    mm.lock.writeUnlock();
  }
}
