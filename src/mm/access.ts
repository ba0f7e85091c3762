/**
 * The CPU: loads and stores through the page table, as the MMU walks it, and the x86 page
 * fault handler (arch/x86/mm/fault.c do_user_addr_fault) when a walk fails: take the mmap
 * read lock, find_vma, access_error, handle_mm_fault, and turn its failures into signals.
 *
 * An access is all-or-nothing: every page is faulted in first (a fatal fault throws before
 * any byte moves), then one synchronous pass re-walks every page and copies. If that pass
 * finds a page gone again (an invalidation raced with us), the whole access is retried.
 */
import { BusError, err, SegmentationFault } from '../errors.js';
import { PAGE_SIZE } from './constants.js';
import { handleMmFault, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV } from './fault.js';
import type { MmStruct } from './mm.js';
import { PTE_ACCESSED, PTE_DIRTY, PTE_PRESENT, PTE_PROTNONE, PTE_WRITE } from './page-table.js';
import { entrySlot, followEntry } from './pagewalk.js';
import { validateAccess } from './validate.js';
import { VM_WRITE, vmaAccessible } from './vma.js';

/** The walk's slot, reused: an access walks every page it touches. */
const slot = entrySlot();

/**
 * The hardware walk of one page: the 4 KiB of RAM it maps, or null (a fault). On success the
 * accessed (and, for a store, dirty) bit is set as the MMU would.
 */
export function cpuWalk(mm: MmStruct, a: number, write: boolean): Uint8Array | null {
  if (!followEntry(mm, a, slot)) return null;
  const { table, i } = slot;
  const need = PTE_PRESENT | (write ? PTE_WRITE : 0);
  const f = table.flags[i];
  if ((f & (need | PTE_PROTNONE)) !== need) return null;
  table.flags[i] = f | PTE_ACCESSED | (write ? PTE_DIRTY : 0);
  const pfn = table.pfn[i] + slot.sub;
  const core = mm.core;
  if (pfn >= core.ram.npages) { // a device-coherent page, loaded and stored in place
    if (write) core.markWritten(pfn);
    return core.pageData(pfn);
  }
  if (write) core.ram.markWritten(pfn);
  return core.ram.data(pfn);
}

/** do_user_addr_fault() for the byte at `addr`. Throws the signal a fatal fault raises. */
export async function cpuFault(mm: MmStruct, addr: number, write: boolean): Promise<void> {
  await mm.lock.readLock();
  try {
    mm.checkAlive();
    const vma = mm.vmas.find(addr);
    if (vma === undefined || vma.start > addr) throw new SegmentationFault(addr, 'SEGV_MAPERR');
    if (write ? (vma.flags & VM_WRITE) === 0 : !vmaAccessible(vma)) throw new SegmentationFault(addr, 'SEGV_ACCERR');
    const r = await handleMmFault(mm, vma, addr, { write });
    if ((r & VM_FAULT_SIGBUS) !== 0) throw new BusError(addr);
    if ((r & VM_FAULT_SIGSEGV) !== 0) throw new SegmentationFault(addr, 'SEGV_ACCERR');
    if ((r & VM_FAULT_OOM) !== 0) throw err('ENOMEM', `out of memory handling a fault at 0x${addr.toString(16)}`);
  } finally {
    mm.lock.readUnlock();
  }
}

/** Fault in every page of [addr, addr+len) until each one walks. */
async function faultInAll(mm: MmStruct, addr: number, len: number, write: boolean): Promise<void> {
  const end = addr + len;
  for (let p = addr - (addr % PAGE_SIZE); p < end; p += PAGE_SIZE) {
    let tries = 0;
    while (cpuWalk(mm, p, write) === null) {
      mm.checkAlive();
      await cpuFault(mm, Math.max(p, addr), write);
      if (++tries > 1000) throw new Error(`fault at 0x${p.toString(16)} does not resolve`);
    }
  }
}

/** One synchronous pass: walk every page; if all walk, run `op` on each piece. */
function accessPass(
  mm: MmStruct, addr: number, len: number, write: boolean, op: (page: Uint8Array, off: number, n: number, pos: number) => void,
): boolean {
  const end = addr + len;
  const pages: Uint8Array[] = [];
  for (let p = addr - (addr % PAGE_SIZE); p < end; p += PAGE_SIZE) {
    const page = cpuWalk(mm, p, write);
    if (page === null) return false;
    pages.push(page);
  }
  let k = 0;
  for (let pos = addr; pos < end; k++) {
    const off = pos % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - off, end - pos);
    op(pages[k], off, n, pos - addr);
    pos += n;
  }
  return true;
}

/** A CPU load of `length` bytes. */
export async function cpuRead(mm: MmStruct, addr: unknown, length: unknown): Promise<Uint8Array> {
  const { addr: a, len } = validateAccess(addr, length);
  mm.checkAlive();
  const out = new Uint8Array(len);
  if (len === 0) return out;
  for (;;) {
    await faultInAll(mm, a, len, false);
    if (accessPass(mm, a, len, false, (page, off, n, pos) => out.set(page.subarray(off, off + n), pos))) return out;
  }
}

/** A CPU store of `data`; nothing is written unless every page can be. */
export async function cpuWrite(mm: MmStruct, addr: unknown, data: unknown): Promise<void> {
  if (!(data instanceof Uint8Array)) throw err('EINVAL', 'write: data must be a Uint8Array');
  const { addr: a, len } = validateAccess(addr, data.length);
  mm.checkAlive();
  if (len === 0) return;
  for (;;) {
    await faultInAll(mm, a, len, true);
    if (accessPass(mm, a, len, true, (page, off, n, pos) => page.set(data.subarray(pos, pos + n), off))) return;
  }
}
