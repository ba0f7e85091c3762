/**
 * madvise(2) (mm/madvise.c): MADV_DONTNEED (zap, CLEAR; read lock), MADV_PAGEOUT (reclaim;
 * read lock), MADV_HUGEPAGE (VM_HUGEPAGE, splitting the VMA for a partial range; write lock).
 *
 * As in madvise_walk_vmas, a range with unmapped holes is applied to the mapped parts and then
 * fails with ENOMEM. Per-VMA EINVALs (hugetlb DONTNEED not starting on a 2 MiB boundary,
 * PAGEOUT of hugetlb) are checked for every VMA before anything is applied.
 */
import { err } from '../errors.js';
import { MADV_DONTNEED, MADV_HUGEPAGE, PMD_SIZE } from './constants.js';
import type { MmStruct } from './mm.js';
import { pageoutRange } from './reclaim.js';
import { MADV_PAGEOUT, validateMadvise } from './validate.js';
import { vmaModifyFlags } from './vma-ops.js';
import { isHugetlb, VM_HUGEPAGE } from './vma.js';
import { zapRange } from './zap.js';

export async function doMadvise(mm: MmStruct, addr: unknown, length: unknown, advice: unknown): Promise<void> {
  const args = validateMadvise(addr, length, advice);
  const write = args !== null && args.advice === MADV_HUGEPAGE; // madvise_need_mmap_write
  if (write) await mm.lock.writeLock();
  else await mm.lock.readLock();
  try {
    mm.checkAlive();
    if (args === null) return;
    const { start, end, advice: adv } = args;
    const vmas = mm.vmas.range(start, end);
    for (const v of vmas) {
      if (!isHugetlb(v)) continue;
      const s = Math.max(start, v.start);
      if (adv === MADV_PAGEOUT) throw err('EINVAL', `madvise: MADV_PAGEOUT on hugetlb VMA ${v}`);
      if (adv === MADV_DONTNEED && s % PMD_SIZE !== 0) throw err('EINVAL', `madvise: MADV_DONTNEED of hugetlb VMA ${v} at an unaligned start`);
    }
    // Bounds as they were: MADV_HUGEPAGE splits and merges VMAs as it goes.
    const spans = vmas.map((v) => ({ v, start: v.start, end: v.end }));
    let pos = start;
    let hole = false;
    for (const { v: v0, start: vs, end: ve } of spans) {
      if (vs > pos) hole = true;
      const s = Math.max(start, vs);
      let e = Math.min(end, ve);
      pos = ve;
      if (adv === MADV_DONTNEED) {
        // madvise_dontneed_free_valid_vma: a hugetlb end is rounded *down* to 2 MiB.
        if (isHugetlb(v0)) e -= e % PMD_SIZE;
        if (s < e) await zapRange(mm, s, e, 'CLEAR');
      } else if (adv === MADV_PAGEOUT) {
        await pageoutRange(mm, v0, s, e);
      } else if (!isHugetlb(v0)) {
        // hugepage_madvise(): set VM_HUGEPAGE (hugetlb VMAs are left alone).
        const v = mm.vmas.lookup(s)!;
        vmaModifyFlags(mm, v, s, e, v.flags | VM_HUGEPAGE);
      }
    }
    if (pos < end) hole = true;
    if (hole) throw err('ENOMEM', `madvise: [0x${start.toString(16)}, 0x${end.toString(16)}) has unmapped holes`);
  } finally {
    if (write) mm.lock.writeUnlock();
    else mm.lock.readUnlock();
  }
}
