/**
 * mremap(2) (mm/mremap.c): do_mremap with check_mremap_params, mremap_to (MREMAP_FIXED,
 * MREMAP_DONTUNMAP), mremap_at (shrink, expand in place or move), resize_is_valid, and
 * move_vma = copy_vma + move_page_tables + the unmap of the source (or, with
 * MREMAP_DONTUNMAP, the old VMA left in place and empty).
 *
 * move_page_tables moves every kind of entry as it is, under ONE MMU_NOTIFY_UNMAP
 * invalidation over the old range: present PTEs (with the page reference they hold), the
 * zero page, swap, device-private, device-exclusive and migration entries, and PMD leaves
 * whose 2 MiB extent is aligned at both ends (move_huge_pmd; a THP leaf that is not is split
 * first, under its own CLEAR invalidation, and its PTEs moved). The pages keep their anon
 * index (copy_vma keeps vm_pgoff), so the rmap (rmap.ts) still finds them; the CPU's next
 * touch at the new address faults device pages home there. The source's do_munmap then
 * sends the usual UNMAP over an empty range.
 *
 * All argument checks run before anything changes, in the kernel's order; EFAULT/EINVAL as
 * check_mremap_params, mremap_to and resize_is_valid answer. Departures: non-integer or
 * negative numbers are EINVAL (see validate.ts); a private hugetlb VMA moved with
 * MREMAP_DONTUNMAP keeps its reservations on both VMAs (clear_vma_resv_huge_pages not modelled).
 */
import { err } from '../errors.js';
import { PAGE_SIZE, PMD_PAGES, PMD_SIZE, TASK_SIZE } from './constants.js';
import { pmdAlignDown, splitHugePmd } from './huge.js';
import { invalidateEnd, invalidateStart, type MmStruct } from './mm.js';
import { checkHugetlbSplit, getUnmappedArea, unmapRange } from './mmap.js';
import { pmdIndex, pteIndex } from './page-table.js';
import { mergeAround } from './vma-ops.js';
import { isHugetlb, isShared, Vma, VM_IO, VM_PFNMAP } from './vma.js';

export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

/** VM_DONTEXPAND | VM_PFNMAP: mappings that may not grow (VM_IO stands in for VM_DONTEXPAND). */
const NO_EXPAND = VM_IO | VM_PFNMAP;

function ulong(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) throw err('EINVAL', `mremap: ${what} ${String(x)} is not a non-negative integer`);
  return x;
}

function pageAlign(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

interface Remap {
  addr: number;
  oldLen: number;
  newLen: number;
  flags: number;
  newAddr: number;
}

/** check_mremap_params(): the checks that need no mm state. */
function checkParams(r: Remap): void {
  if ((r.flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)) !== 0) throw err('EINVAL', `mremap: unknown flags 0x${r.flags.toString(16)}`);
  if (r.addr % PAGE_SIZE !== 0) throw err('EINVAL', 'mremap: old address not page aligned');
  if (pageAlign(r.newLen) === 0) throw err('EINVAL', 'mremap: zero new length');
  if (!impliesNewAddr(r)) return;
  if (r.newAddr % PAGE_SIZE !== 0) throw err('EINVAL', 'mremap: new address not page aligned');
  if ((r.flags & MREMAP_MAYMOVE) === 0) throw err('EINVAL', 'mremap: MREMAP_FIXED/DONTUNMAP without MREMAP_MAYMOVE');
  if ((r.flags & MREMAP_DONTUNMAP) !== 0 && r.oldLen !== r.newLen) throw err('EINVAL', 'mremap: MREMAP_DONTUNMAP cannot resize');
}

/** vrm_implies_new_addr(). */
function impliesNewAddr(r: Remap): boolean {
  return (r.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) !== 0;
}

/** resize_is_valid(). */
function resizeIsValid(r: Remap, vma: Vma): void {
  if (r.oldLen === 0 && !isShared(vma)) throw err('EINVAL', 'mremap: old_len 0 duplicates only shared mappings');
  if ((r.flags & MREMAP_DONTUNMAP) !== 0 && (vma.flags & NO_EXPAND) !== 0) throw err('EINVAL', 'mremap: MREMAP_DONTUNMAP of a VM_PFNMAP/VM_DONTEXPAND mapping');
  if (r.oldLen > vma.end - r.addr) throw err('EFAULT', 'mremap: old range crosses the end of its VMA');
  if (r.newLen === r.oldLen) return;
  if ((vma.flags & NO_EXPAND) !== 0) throw err('EFAULT', 'mremap: VM_PFNMAP/VM_DONTEXPAND mapping cannot be resized');
}

/** SYSCALL_DEFINE5(mremap) / do_mremap(). Returns the mapping's (new) address. */
export async function doMremap(
  mm: MmStruct, addr: unknown, oldLen: unknown, newLen: unknown, flags: unknown, newAddr: unknown = 0,
): Promise<number> {
  const r: Remap = {
    addr: ulong(addr, 'addr'), oldLen: ulong(oldLen, 'old_len'), newLen: ulong(newLen, 'new_len'),
    flags: ulong(flags, 'flags'), newAddr: ulong(newAddr, 'new_addr'),
  };
  checkParams(r);
  r.oldLen = pageAlign(r.oldLen);
  r.newLen = pageAlign(r.newLen);
  await mm.lock.writeLock();
  try {
    mm.checkAlive();
    const vma = mm.vmas.lookup(r.addr);
    if (vma === undefined) throw err('EFAULT', `mremap: nothing mapped at 0x${r.addr.toString(16)}`);
    if (isHugetlb(vma)) {
      // align_hugetlb().
      r.oldLen = Math.ceil(r.oldLen / PMD_SIZE) * PMD_SIZE;
      r.newLen = Math.ceil(r.newLen / PMD_SIZE) * PMD_SIZE;
      if (r.addr % PMD_SIZE !== 0 || r.newAddr % PMD_SIZE !== 0 || r.newLen > r.oldLen) {
        throw err('EINVAL', 'mremap: hugetlb range not 2 MiB aligned, or growing');
      }
    }
    return impliesNewAddr(r) ? await mremapTo(mm, r) : await mremapAt(mm, r, vma);
  } finally {
    mm.lock.writeUnlock();
  }
}

/** mremap_to(): MREMAP_FIXED and/or MREMAP_DONTUNMAP. */
async function mremapTo(mm: MmStruct, r: Remap): Promise<number> {
  if (r.newLen > TASK_SIZE || r.newAddr > TASK_SIZE - r.newLen) throw err('EINVAL', 'mremap: new range past TASK_SIZE');
  // vrm_overlaps().
  if (r.addr + r.oldLen > r.newAddr && r.newAddr + r.newLen > r.addr) throw err('EINVAL', 'mremap: old and new ranges overlap');
  let vma = mm.vmas.lookup(r.addr)!;
  // Checks that need no change made yet, hoisted so that a failing call changes nothing (the
  // kernel unmaps the destination first and then fails on them: the same errno).
  const keptLen = Math.min(r.oldLen, r.newLen);
  resizeIsValid({ ...r, oldLen: keptLen }, vma);
  if ((r.flags & MREMAP_FIXED) !== 0) {
    if (r.newAddr < 0x10000) throw err('EPERM', 'mremap: new address below mmap_min_addr');
    checkHugetlbSplit(mm, r.newAddr, r.newAddr + r.newLen);
    checkHugetlbSplit(mm, r.addr, r.addr + r.oldLen);
    await unmapRange(mm, r.newAddr, r.newAddr + r.newLen);
    mm.checkAlive();
  }
  if (r.newLen < r.oldLen) {
    await unmapRange(mm, r.addr + r.newLen, r.addr + r.oldLen); // shrink_vma
    r.oldLen = r.newLen;
  }
  vma = mm.vmas.lookup(r.addr)!;
  const dest = (r.flags & MREMAP_FIXED) !== 0 ? r.newAddr : getUnmappedArea(mm, r.newAddr, r.newLen, PAGE_SIZE);
  return moveVma(mm, r, vma, dest);
}

/** mremap_at(): no new address given; resize in place, or move when allowed. */
async function mremapAt(mm: MmStruct, r: Remap, vma: Vma): Promise<number> {
  if (r.newLen === r.oldLen) return r.addr;
  if (r.newLen < r.oldLen) {
    checkHugetlbSplit(mm, r.addr + r.newLen, r.addr + r.oldLen);
    await unmapRange(mm, r.addr + r.newLen, r.addr + r.oldLen);
    return r.addr;
  }
  resizeIsValid(r, vma);
  const delta = r.newLen - r.oldLen;
  // vrm_can_expand_in_place() + vma_expandable().
  if (vma.end - r.addr === r.oldLen && vma.end + delta <= TASK_SIZE && mm.vmas.findIntersection(vma.end, vma.end + delta) === undefined) {
    mm.vmas.adjust(vma, vma.start, vma.end + delta); // vma_merge_extend
    mergeAround(mm, vma);
    return r.addr;
  }
  if ((r.flags & MREMAP_MAYMOVE) === 0) throw err('ENOMEM', 'mremap: cannot grow in place and MREMAP_MAYMOVE not given');
  return moveVma(mm, r, vma, getUnmappedArea(mm, 0, r.newLen, PAGE_SIZE));
}

/**
 * move_vma(): copy_vma at `dest` (vm_pgoff kept: the pages keep their index), move the page
 * tables, then unmap the source — or, with MREMAP_DONTUNMAP, leave the old VMA, now empty
 * (dontunmap_complete: its anon_vma goes when the whole VMA moved).
 */
async function moveVma(mm: MmStruct, r: Remap, vma: Vma, dest: number): Promise<number> {
  const pgoff = vma.pageIndex(r.addr);
  if (r.oldLen === 0) {
    // The duplicate of a shared mapping (resize_is_valid allowed only that): a new VMA over
    // the same file pages; nothing to move, nothing to unmap.
    vma.file?.get();
    const dup = new Vma(dest, dest + r.newLen, vma.flags, pgoff, vma.file, null);
    mm.vmas.insert(dup);
    mergeAround(mm, dup);
    return dest;
  }
  vma.file?.get();
  const copy = new Vma(dest, dest + r.newLen, vma.flags, pgoff, vma.file, vma.anon);
  mm.vmas.insert(copy);
  await movePageTables(mm, r.addr, dest, r.oldLen);
  mergeAround(mm, copy);
  if ((r.flags & MREMAP_DONTUNMAP) !== 0) {
    const old = mm.vmas.lookup(r.addr)!;
    if (old.start === r.addr && old.end === r.addr + r.oldLen) old.anon = null; // unlink_anon_vmas
    mm.pgtable.freeEmpty(r.addr, r.addr + r.oldLen);
  } else {
    // unmap_source_vma(): its entries are gone; hugetlb reservations went with the copy.
    await unmapRange(mm, r.addr, r.addr + r.oldLen, { keepHugetlbResv: true });
  }
  return dest;
}

/**
 * move_page_tables(): one UNMAP invalidation over [old, old + len); each 2 MiB extent (cut
 * where either side crosses a PMD boundary) moves its PMD leaf whole when the extent is a
 * full aligned PMD on both sides (move_huge_pmd), else splits a THP leaf (split_huge_pmd)
 * and moves its PTEs one by one (move_ptes), whatever kind each entry is.
 */
async function movePageTables(mm: MmStruct, oldAddr: number, newAddr: number, len: number): Promise<void> {
  const oldEnd = oldAddr + len;
  const range = await invalidateStart(mm, oldAddr, oldEnd, 'UNMAP');
  try {
    const pt = mm.pgtable;
    for (let o = oldAddr, n = newAddr; o < oldEnd;) {
      const extent = Math.min(pmdAlignDown(o) + PMD_SIZE - o, pmdAlignDown(n) + PMD_SIZE - n, oldEnd - o);
      const opmd = pt.pmd(o, false);
      if (opmd !== null) {
        const oi = pmdIndex(o);
        if (opmd.isHuge(oi)) {
          if (extent === PMD_SIZE) {
            pt.freeEmpty(n, n + PMD_SIZE); // an empty PTE table left there would block the leaf
            const npmd = pt.pmd(n, true)!;
            const ni = pmdIndex(n);
            const pfn = opmd.pfn[oi];
            const f = opmd.flags[oi];
            opmd.setHuge(oi, 0, 0);
            npmd.setHuge(ni, pfn, f);
            o += extent;
            n += extent;
            continue;
          }
          await splitHugePmd(mm, pmdAlignDown(o));
        }
        const ot = pt.pteTable(o, false);
        if (ot !== null && ot.used > 0) {
          const nt = pt.pteTable(n, true)!;
          for (let k = 0, oj = pteIndex(o), nj = pteIndex(n); k < extent / PAGE_SIZE && k < PMD_PAGES; k++, oj++, nj++) {
            const f = ot.flags[oj];
            if (f === 0) continue;
            const pfn = ot.pfn[oj];
            ot.clear(oj);
            nt.set(nj, pfn, f);
          }
        }
      }
      o += extent;
      n += extent;
    }
    pt.freeEmpty(oldAddr, oldEnd);
  } finally {
    await invalidateEnd(mm, range);
  }
}
