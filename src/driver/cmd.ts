/**
 * What every ioctl does with struct hmm_dmirror_cmd before touching anything: the range
 * checks, the VMA walk of dmirror_migrate_to_device/system, and dmirror_bounce_init.
 */
import { err } from '../errors.js';
import { PAGE_SIZE, TASK_SIZE } from '../mm/constants.js';
import type { MmStruct } from '../mm/mm.js';
import { VM_READ, VM_WRITE } from '../mm/vma.js';

function isInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n);
}

/** The command's range: page aligned, non-empty, inside the user address space. */
export function checkRange(addr: unknown, npages: unknown): { start: number; end: number; npages: number } {
  if (!isInt(addr) || addr < 0 || addr % PAGE_SIZE !== 0) throw err('EINVAL', `address ${String(addr)} is not page aligned`);
  if (!isInt(npages) || npages <= 0) throw err('EINVAL', `bad page count ${String(npages)}`);
  const end = addr + npages * PAGE_SIZE;
  if (end > TASK_SIZE) throw err('EINVAL', 'range past the end of the address space');
  return { start: addr, end, npages };
}

/**
 * The largest bounce buffer a command allocates (4 GiB: the longest typed array every JS
 * engine we run on gives). dmirror_bounce_init() vmallocs the command's whole size before it
 * touches anything, and a size vmalloc cannot give is -ENOMEM.
 */
export const MAX_BOUNCE_PAGES = 2 ** 20;

/** dmirror_bounce_init(): the command's bounce buffer, ENOMEM where it cannot be had. */
export function bounceInit(npages: number): Uint8Array {
  checkBounce(npages);
  try {
    return new Uint8Array(npages * PAGE_SIZE);
  } catch (e) {
    if (e instanceof RangeError) throw err('ENOMEM', `no bounce buffer of ${npages} pages: ${e.message}`);
    throw e;
  }
}

/** The bounce buffer's size check, before a command changes anything. */
export function checkBounce(npages: number): void {
  if (npages > MAX_BOUNCE_PAGES) throw err('ENOMEM', `no bounce buffer of ${npages} pages (at most ${MAX_BOUNCE_PAGES})`);
}

/**
 * The caller's buffer a command copies its result into (struct hmm_dmirror_cmd's ptr):
 * a view of its first npages pages; EFAULT where copy_to_user() would fault (too short),
 * EINVAL for anything but a byte array. Checked before the command changes anything.
 */
export function userBuffer(into: unknown, npages: number): Uint8Array {
  if (!(into instanceof Uint8Array)) throw err('EINVAL', 'the destination must be a Uint8Array');
  if (into.length < npages * PAGE_SIZE) throw err('EFAULT', `destination of ${into.length} bytes for ${npages} pages`);
  return into.subarray(0, npages * PAGE_SIZE);
}

/**
 * Every VMA piece of [start, end), EINVAL for a hole or a VMA without read permission. With
 * `maxPages`, pieces are at most that long, counted from each piece's start (the migration
 * loops' `next = min(end, addr + (PTRS_PER_PTE << PAGE_SHIFT))`, then the VMA's end).
 */
export function vmaPieces(mm: MmStruct, start: number, end: number, maxPages = Infinity): { start: number; end: number; write: boolean }[] {
  const out: { start: number; end: number; write: boolean }[] = [];
  for (let a = start; a < end;) {
    const vma = mm.vmas.lookup(a);
    if (vma === undefined || (vma.flags & VM_READ) === 0) throw err('EINVAL', `no readable VMA at 0x${a.toString(16)}`);
    const next = Math.min(end, vma.end, a + maxPages * PAGE_SIZE);
    out.push({ start: a, end: next, write: (vma.flags & VM_WRITE) !== 0 });
    a = next;
  }
  return out;
}

/**
 * Pages one migrate_vma_setup of HMM_DMIRROR_MIGRATE_TO_DEV/TO_SYS covers at most: test_hmm's
 * loops step by PTRS_PER_PTE (512) pages since the device-private THP series.
 */
export const MIGRATE_STEP_PAGES = 512;

/** Most pages one GPU command covers (its io buffer: 128 MiB, llvmpipe's binding limit). */
export const MAX_COMMAND_PAGES = 32768;
