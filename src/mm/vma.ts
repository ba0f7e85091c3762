/**
 * struct vm_area_struct and the vm_flags bits we model (include/linux/mm.h), plus the pure
 * helpers that decide VMA compatibility (mm/vma.c: is_mergeable_vma, is_mergeable_anon_vma).
 * VMAs live in the mm's VmaTree; their bounds change only through VmaTree.adjust().
 */
import { PAGE_SIZE, PROT_READ, PROT_WRITE } from './constants.js';
import type { MemFile } from './file.js';

export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_SHARED = 0x8;
export const VM_MAYWRITE = 0x20;
/** Special mappings that hmm_range_fault refuses (no struct pages behind them). */
export const VM_PFNMAP = 0x400;
export const VM_IO = 0x4000;
/** A device file's own mapping of pages it inserts (vm_insert_page), e.g. dmirror's mmap. */
export const VM_MIXEDMAP = 0x10000000;
export const VM_HUGETLB = 0x400000;
export const VM_HUGEPAGE = 0x20000000;
/** The access bits that mprotect rewrites. */
export const VM_ACCESS_FLAGS = VM_READ | VM_WRITE;

let anonIds = 0;
/**
 * struct anon_vma: the identity of a private mapping's anonymous pages, created on the first
 * anonymous fault (anon_vma_prepare) and shared by the pieces a split makes. Only its
 * identity matters here (vma_merge refuses to merge two VMAs with different anon_vmas).
 */
export class AnonVma {
  readonly id = ++anonIds;
}

export class Vma {
  start: number;
  end: number;
  flags: number;
  /** vm_pgoff: in pages. Anonymous private VMAs use start/PAGE_SIZE, like the kernel. */
  pgoff: number;
  /** vm_file: a user MemFile, the shmem file of a shared anonymous mapping, or hugetlbfs. */
  file: MemFile | null;
  anon: AnonVma | null;

  constructor(start: number, end: number, flags: number, pgoff: number, file: MemFile | null, anon: AnonVma | null) {
    this.start = start;
    this.end = end;
    this.flags = flags;
    this.pgoff = pgoff;
    this.file = file;
    this.anon = anon;
  }

  get pages(): number {
    return (this.end - this.start) / PAGE_SIZE;
  }

  /** linear_page_index(): the file page (or anon pgoff) that addr maps. */
  pageIndex(addr: number): number {
    return this.pgoff + Math.floor((addr - this.start) / PAGE_SIZE);
  }

  toString(): string {
    return `[0x${this.start.toString(16)}-0x${this.end.toString(16)} ${vmFlagsString(this.flags)} pgoff=${this.pgoff}${this.file ? ' ' + this.file.name : ''}]`;
  }
}

export function isShared(v: Vma): boolean {
  return (v.flags & VM_SHARED) !== 0;
}
export function isHugetlb(v: Vma): boolean {
  return (v.flags & VM_HUGETLB) !== 0;
}
/** A private anonymous VMA (the only kind THP serves here). */
export function isPrivateAnon(v: Vma): boolean {
  return v.file === null && (v.flags & VM_SHARED) === 0;
}
/** is_cow_mapping(): private and may be written, i.e. every private mapping here. */
export function isCowMapping(v: Vma): boolean {
  return (v.flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
}
/** vma_is_accessible(): x86 maps PROT_WRITE-only readable, so any access bit allows loads. */
export function vmaAccessible(v: Vma): boolean {
  return (v.flags & VM_ACCESS_FLAGS) !== 0;
}

/** calc_vm_prot_bits(). */
export function protToVmFlags(prot: number): number {
  return ((prot & PROT_READ) !== 0 ? VM_READ : 0) | ((prot & PROT_WRITE) !== 0 ? VM_WRITE : 0);
}

/** is_mergeable_anon_vma(): both absent, the same, or one not yet created. */
function anonCompatible(a: AnonVma | null, b: AnonVma | null): boolean {
  return a === null || b === null || a === b;
}

/**
 * can_vma_merge_after/before: `a` directly followed by `b` may become one VMA. Hugetlb VMAs
 * never merge here (hugetlb_vm_ops has ->close, which forbids removing a VMA in a merge).
 */
export function canMerge(a: Vma, b: Vma): boolean {
  return a.end === b.start
    && a.flags === b.flags
    && a.file === b.file
    && (a.flags & VM_HUGETLB) === 0
    && a.pgoff + a.pages === b.pgoff
    && anonCompatible(a.anon, b.anon);
}

export function vmFlagsString(f: number): string {
  return ((f & VM_READ) ? 'r' : '-') + ((f & VM_WRITE) ? 'w' : '-') + ((f & VM_SHARED) ? 's' : 'p')
    + ((f & VM_HUGETLB) ? ' ht' : '') + ((f & VM_HUGEPAGE) ? ' hg' : '');
}
