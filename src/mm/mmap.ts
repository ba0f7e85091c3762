/**
 * mmap(2) and munmap(2) (mm/mmap.c do_mmap / mmap_region, mm/vma.c do_vmi_munmap), and
 * get_unmapped_area's top-down search. Both run under the mmap write lock; every check that
 * can fail (the hugetlb reservation included) runs before the first change.
 */
import { err } from '../errors.js';
import { MMAP_MIN_ADDR, PAGE_SIZE, PMD_SIZE, TASK_SIZE } from './constants.js';
import { hugetlbFileSetup, shmemZeroSetup, type MemFile } from './file.js';
import { hugetlbVmOpClose, splitPartialHugePmds } from './huge.js';
import { invalidateEnd, invalidateStart, TASK_UNMAPPED_BASE, type MmStruct } from './mm.js';
import { validateMmap, validateMunmap } from './validate.js';
import { isolateRange, mergeAround, removeVma } from './vma-ops.js';
import { isHugetlb, protToVmFlags, Vma, VM_HUGETLB, VM_MAYWRITE, VM_SHARED } from './vma.js';
import { zapRangeLocked } from './zap.js';

/**
 * hugetlb_vm_op_split: a hugetlb VMA can only be cut at 2 MiB boundaries. EINVAL if
 * [start, end) cuts one elsewhere (checked before any change).
 */
export function checkHugetlbSplit(mm: MmStruct, start: number, end: number): void {
  for (const a of [start, end]) {
    const v = mm.vmas.lookup(a);
    if (v !== undefined && isHugetlb(v) && v.start !== a && a % PMD_SIZE !== 0) {
      throw err('EINVAL', `cannot split hugetlb VMA ${v} at 0x${a.toString(16)}`);
    }
  }
}

/**
 * get_unmapped_area(): the hint if [hint, hint+len) is free and in bounds, else the highest
 * fit below mmap_base (vm_unmapped_area top-down), else bottom-up above TASK_UNMAPPED_BASE.
 */
export function getUnmappedArea(mm: MmStruct, hint: number, len: number, align: number): number {
  if (hint !== 0 && hint >= MMAP_MIN_ADDR && hint <= TASK_SIZE - len && mm.vmas.findIntersection(hint, hint + len) === undefined) {
    return hint;
  }
  const low = Math.max(PAGE_SIZE, MMAP_MIN_ADDR);
  const a = mm.vmas.findGapTopDown(len, low, mm.mmapBase, align)
    ?? mm.vmas.findGapBottomUp(len, TASK_UNMAPPED_BASE, TASK_SIZE, align);
  if (a === undefined) throw err('ENOMEM', `no free ${len}-byte range in the address space`);
  return a;
}

/**
 * Unmap [start, end) under the write lock (the core of do_vmi_munmap, also MAP_FIXED's
 * replacement): split straddling THPs (CLEAR) and VMAs, then one UNMAP invalidation around
 * zapping the PTEs, removing the VMAs and freeing empty page tables.
 */
export async function unmapRange(mm: MmStruct, start: number, end: number, opts: { keepHugetlbResv?: boolean } = {}): Promise<void> {
  if (mm.vmas.findIntersection(start, end) === undefined) return;
  await splitPartialHugePmds(mm, start, end);
  const doomed = isolateRange(mm, start, end);
  const range = await invalidateStart(mm, start, end, 'UNMAP');
  try {
    for (const v of doomed) zapRangeLocked(mm, v.start, v.end);
    for (const v of doomed) {
      // mremap's move leaves the reservations to the copy (clear_vma_resv_huge_pages).
      if (opts.keepHugetlbResv !== true) hugetlbVmOpClose(mm, v);
      removeVma(mm, v);
    }
    mm.pgtable.freeEmpty(start, end);
  } finally {
    await invalidateEnd(mm, range);
  }
}

export async function doMmap(
  mm: MmStruct, addr: unknown, length: unknown, prot: unknown, flags: unknown, file: unknown, offset: unknown,
): Promise<number> {
  const p = validateMmap(addr, length, prot, flags, file, offset, mm.core);
  // fget(): the call holds the file, so a close() racing with it cannot free it.
  p.file?.get();
  // The file reference the new VMA is to own; dropped (fput) if the call fails before that.
  let vfile: MemFile | null = null;
  try {
    await mm.lock.writeLock();
    try {
      mm.checkAlive();
      let start: number;
      if (p.fixed) {
        start = p.addr;
        checkHugetlbSplit(mm, start, start + p.len);
      } else {
        const thpAlign = p.file === null && !p.shared && !p.hugetlb && p.addr === 0 && p.len % PMD_SIZE === 0;
        start = getUnmappedArea(mm, p.addr, p.len, p.hugetlb || thpAlign ? PMD_SIZE : PAGE_SIZE);
      }
      const end = start + p.len;
      let pgoff = p.pgoff;
      if (p.hugetlb) {
        // hugetlb_reserve_pages: ENOMEM here, before MAP_FIXED has unmapped anything, so a
        // failed call changes nothing. Departure: __mmap_region unmaps the old VMAs first
        // (vms_clean_up_area, whose hugetlb_vm_op_close returns their reservations) and
        // leaves the range empty if the reservation then fails; here a MAP_FIXED hugetlb
        // mapping replacing another at the pool's limit is ENOMEM with the old one kept.
        vfile = hugetlbFileSetup(mm.core, p.len, p.shared ? null : mm);
        pgoff = 0;
      } else if (p.file === null && p.shared) {
        vfile = shmemZeroSetup(mm.core, p.len);
        pgoff = 0;
      } else if (p.file === null) {
        pgoff = start / PAGE_SIZE; // anonymous private: vm_pgoff = addr >> PAGE_SHIFT
      } else {
        p.file.get(); // get_file() for the VMA
        vfile = p.file;
      }
      // Nothing can fail from here on (but an allocation of the VMA itself).
      if (p.fixed) await unmapRange(mm, start, end);
      mm.checkAlive();
      const vmFlags = protToVmFlags(p.prot) | (p.shared ? VM_SHARED : VM_MAYWRITE) | (p.hugetlb ? VM_HUGETLB : 0);
      const vma = new Vma(start, end, vmFlags, pgoff, vfile, null);
      vfile = null;
      mm.vmas.insert(vma);
      mergeAround(mm, vma);
      return start;
    } finally {
      mm.lock.writeUnlock();
    }
  } finally {
    vfile?.put();
    p.file?.put(); // fput() of the call's reference
  }
}

export async function doMunmap(mm: MmStruct, addr: unknown, length: unknown): Promise<void> {
  const { start, end } = validateMunmap(addr, length);
  await mm.lock.writeLock();
  try {
    mm.checkAlive();
    checkHugetlbSplit(mm, start, end);
    await unmapRange(mm, start, end);
  } finally {
    mm.lock.writeUnlock();
  }
}
