/**
 * Argument checks of the mm syscalls, done before anything changes, with the kernel's errno
 * and, where it matters, the kernel's order of checks. These are the checks that need no
 * mm state; the ones that do (holes, hugetlb split alignment) sit in the syscalls, also
 * before any change.
 *
 * Departures, all towards "reject, change nothing":
 *  - Numbers that are not non-negative safe integers (NaN, Infinity, negatives, fractions):
 *    EINVAL (the kernel's unsigned longs cannot carry them).
 *  - Unknown prot/flags bits: EINVAL (the kernel ignores unknown mmap flags unless
 *    MAP_SHARED_VALIDATE; MAP_SHARED|MAP_PRIVATE, which is MAP_SHARED_VALIDATE, is EINVAL).
 *  - No file without MAP_ANONYMOUS (the kernel's EBADF), or a file with it: EINVAL.
 *  - A CPU access (Process.read/write) longer than MAX_RW_COUNT: EINVAL. read(2) and
 *    process_vm_readv would move MAX_RW_COUNT bytes and return a short count
 *    (rw_verify_area, import_iovec); an all-or-nothing access cannot be short.
 *  - Any call on an exited process: ESRCH (no syscall can reach a dead mm).
 */
import { err } from '../errors.js';
import {
  MADV_DONTNEED, MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_FIXED, MAP_FLAGS_MASK, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED,
  MAX_RW_COUNT, MMAP_MIN_ADDR, PAGE_SIZE, PMD_SIZE, PROT_MASK, TASK_SIZE,
} from './constants.js';
import { MAX_FILE_SIZE, MemFile } from './file.js';
import type { MemCore } from './pages.js';

export const MADV_PAGEOUT = 21;
const KNOWN_ADVICE = new Set([MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT]);

function ulong(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) {
    throw err('EINVAL', `${what} ${String(x)} is not a non-negative integer`);
  }
  return x;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

export interface MmapArgs {
  /** MAP_FIXED address, or the (aligned) hint, 0 for none. */
  addr: number;
  len: number;
  prot: number;
  flags: number;
  file: MemFile | null;
  /** File offset in pages (vm_pgoff). */
  pgoff: number;
  fixed: boolean;
  shared: boolean;
  hugetlb: boolean;
}

/**
 * ksys_mmap_pgoff + do_mmap's argument checks. `core` is the calling process's machine: a
 * file of another machine, like a closed one, is not in its file table (fget fails: EBADF).
 */
export function validateMmap(
  addr: unknown, length: unknown, prot: unknown, flags: unknown, file: unknown, offset: unknown, core: MemCore,
): MmapArgs {
  const a = ulong(addr, 'mmap: addr');
  const l = ulong(length, 'mmap: length');
  const p = ulong(prot, 'mmap: prot');
  const f = ulong(flags, 'mmap: flags');
  const off = ulong(offset ?? 0, 'mmap: offset');
  if (off % PAGE_SIZE !== 0) throw err('EINVAL', `mmap: offset ${off} is not page aligned`);
  if ((p & ~PROT_MASK) !== 0) throw err('EINVAL', `mmap: unknown prot bits 0x${p.toString(16)}`);
  if (f > 0x7fffffff || (f & ~MAP_FLAGS_MASK) !== 0) throw err('EINVAL', `mmap: unknown flags 0x${f.toString(16)}`);
  const type = f & (MAP_SHARED | MAP_PRIVATE);
  if (type !== MAP_SHARED && type !== MAP_PRIVATE) {
    throw err('EINVAL', 'mmap: exactly one of MAP_SHARED and MAP_PRIVATE is required');
  }
  const anon = (f & MAP_ANONYMOUS) !== 0;
  const hugetlb = (f & MAP_HUGETLB) !== 0;
  let mf: MemFile | null = null;
  if (file !== undefined && file !== null) {
    if (!(file instanceof MemFile) || file.kind !== 'tmpfs') throw err('EINVAL', 'mmap: not a user file');
    if (file.core !== core) throw err('EBADF', `mmap: ${file.name} belongs to another machine`);
    if (!file.isOpen) throw err('EBADF', `mmap: ${file.name} is closed`);
    if (anon) throw err('EINVAL', 'mmap: MAP_ANONYMOUS with a file');
    // A MAP_HUGETLB request for a file that is not on hugetlbfs.
    if (hugetlb) throw err('EINVAL', 'mmap: MAP_HUGETLB on a non-hugetlbfs file');
    mf = file;
  } else if (!anon) {
    throw err('EINVAL', 'mmap: no file and no MAP_ANONYMOUS');
  }
  if (l === 0) throw err('EINVAL', 'mmap: zero length');
  const align = hugetlb ? PMD_SIZE : PAGE_SIZE;
  const len = alignUp(l, align);
  if (len > TASK_SIZE) throw err('ENOMEM', `mmap: length ${l} exceeds the address space`);
  if (mf !== null && off + len > MAX_FILE_SIZE) throw err('EOVERFLOW', 'mmap: offset + length overflows the file');
  const fixed = (f & MAP_FIXED) !== 0;
  let where = a;
  if (fixed) {
    if (a % align !== 0) throw err('EINVAL', `mmap: MAP_FIXED address 0x${a.toString(16)} is not ${hugetlb ? '2 MiB' : 'page'} aligned`);
    if (a > TASK_SIZE - len) throw err('ENOMEM', 'mmap: MAP_FIXED range past TASK_SIZE');
    if (a < MMAP_MIN_ADDR) throw err('EPERM', `mmap: MAP_FIXED below mmap_min_addr (0x${MMAP_MIN_ADDR.toString(16)})`);
  } else {
    where = alignUp(a, align); // round_hint_to_min + PAGE_ALIGN (hugetlb: ALIGN to the huge size)
  }
  return {
    addr: where, len, prot: p, flags: f, file: mf, pgoff: mf === null ? 0 : off / PAGE_SIZE, fixed,
    shared: type === MAP_SHARED, hugetlb,
  };
}

/** do_vmi_munmap's checks: page-aligned start, non-empty range inside TASK_SIZE. */
export function validateMunmap(addr: unknown, length: unknown): { start: number; end: number } {
  const a = ulong(addr, 'munmap: addr');
  const l = ulong(length, 'munmap: length');
  if (a % PAGE_SIZE !== 0) throw err('EINVAL', `munmap: addr 0x${a.toString(16)} is not page aligned`);
  if (a > TASK_SIZE || l > TASK_SIZE - a) throw err('EINVAL', 'munmap: range past TASK_SIZE');
  const end = a + alignUp(l, PAGE_SIZE);
  if (end === a) throw err('EINVAL', 'munmap: zero length');
  if (end > TASK_SIZE) throw err('EINVAL', 'munmap: range rounds past TASK_SIZE');
  return { start: a, end };
}

/** do_mprotect_pkey's checks; null for a zero length (success, nothing to do). */
export function validateMprotect(addr: unknown, length: unknown, prot: unknown): { start: number; end: number; prot: number } | null {
  const a = ulong(addr, 'mprotect: addr');
  const l = ulong(length, 'mprotect: length');
  const p = ulong(prot, 'mprotect: prot');
  if (a % PAGE_SIZE !== 0) throw err('EINVAL', `mprotect: addr 0x${a.toString(16)} is not page aligned`);
  if (l === 0) return null;
  const end = a + alignUp(l, PAGE_SIZE);
  if (end > TASK_SIZE) throw err('ENOMEM', 'mprotect: range past TASK_SIZE is not mapped');
  if ((p & ~PROT_MASK) !== 0) throw err('EINVAL', `mprotect: unknown prot bits 0x${p.toString(16)}`);
  return { start: a, end, prot: p };
}

/** do_madvise's checks; null for a zero length (success). */
export function validateMadvise(addr: unknown, length: unknown, advice: unknown): { start: number; end: number; advice: number } | null {
  const a = ulong(addr, 'madvise: addr');
  const l = ulong(length, 'madvise: length');
  const adv = ulong(advice, 'madvise: advice');
  if (!KNOWN_ADVICE.has(adv)) throw err('EINVAL', `madvise: unsupported advice ${adv}`);
  if (a % PAGE_SIZE !== 0) throw err('EINVAL', `madvise: addr 0x${a.toString(16)} is not page aligned`);
  const end = a + alignUp(l, PAGE_SIZE);
  if (end > TASK_SIZE) throw err('ENOMEM', 'madvise: range past TASK_SIZE is not mapped');
  if (end === a) return null;
  return { start: a, end, advice: adv };
}

/** Process.read/write arguments (a CPU access past TASK_SIZE faults like any unmapped one). */
export function validateAccess(addr: unknown, length: unknown): { addr: number; len: number } {
  const a = ulong(addr, 'access: addr');
  const l = ulong(length, 'access: length');
  if (l > MAX_RW_COUNT) throw err('EINVAL', `access: length ${l} exceeds MAX_RW_COUNT`);
  if (a + l > Number.MAX_SAFE_INTEGER) throw err('EINVAL', 'access: range overflows');
  return { addr: a, len: l };
}
