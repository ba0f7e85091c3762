/**
 * A device file's own mmap that fills the mapping with driver pages (lib/test_hmm.c
 * dmirror_fops_mmap: for each page of the VMA, alloc_page(__GFP_ZERO) + vm_insert_page).
 *
 * vm_insert_page marks the VMA VM_MIXEDMAP and maps each page with a normal, refcounted PTE
 * (not pte_special: the page has a struct page; it is neither anonymous nor page cache) and
 * the VMA's vm_page_prot, so a MAP_PRIVATE mapping gets read-only PTEs even with PROT_WRITE
 * (a CPU write COW-copies the page into an anonymous one), a MAP_SHARED PROT_WRITE mapping
 * writable ones, PROT_NONE protnone ones. The VMA has a file with no ->fault: a hole (after
 * MADV_DONTNEED) is SIGBUS. fork copies its entries (vma_needs_copy), migrate_vma_setup
 * refuses it (VM_SPECIAL), hmm_range_fault accepts it (only VM_IO/VM_PFNMAP are refused).
 * munmap and exit drop the pages like any others; the file goes with the last VMA.
 */
import { err } from '../errors.js';
import { MAP_ANONYMOUS, MAP_HUGETLB, PAGE_SIZE } from './constants.js';
import { MemFile } from './file.js';
import { MmStruct } from './mm.js';
import { getUnmappedArea, unmapRange } from './mmap.js';
import { pteIndex, PTE_ACCESSED, PTE_PRESENT, PTE_PROTNONE, PTE_WRITE } from './page-table.js';
import { PG_KERNEL } from './pages.js';
import { validateMmap } from './validate.js';
import { protToVmFlags, Vma, VM_MAYWRITE, VM_MIXEDMAP, VM_SHARED, VM_WRITE, vmaAccessible } from './vma.js';

/**
 * mmap(2) of a device file whose mmap handler inserts fresh zeroed pages over the whole VMA,
 * in `target` (a Process or its MmStruct).
 * `flags`: MAP_SHARED or MAP_PRIVATE, optionally MAP_FIXED (then `addr` is the address,
 * otherwise a hint). Checked like mmap before anything changes (EINVAL for bad prot/flags,
 * MAP_ANONYMOUS or MAP_HUGETLB, zero length; ENOMEM when the pages or the address space run
 * out; EPERM for MAP_FIXED below mmap_min_addr). The caller must not hold mm's mmap lock.
 * Returns the mapping's address.
 */
export async function mmapDevicePages(
  target: MmStruct | { readonly mm: MmStruct }, length: number, prot: number, flags: number, addr = 0,
): Promise<number> {
  const mm = target instanceof MmStruct ? target : target.mm;
  if (typeof flags !== 'number' || !Number.isSafeInteger(flags) || flags < 0) throw err('EINVAL', `mmap: flags ${String(flags)}`);
  if ((flags & (MAP_ANONYMOUS | MAP_HUGETLB)) !== 0) throw err('EINVAL', 'mmap of a device file: MAP_ANONYMOUS/MAP_HUGETLB');
  // Everything else as mmap(2) checks a file mapping at offset 0 (MAP_ANONYMOUS only stands
  // in for "there is a file" here).
  const p = validateMmap(addr, length, prot, flags + MAP_ANONYMOUS, null, 0, mm.core);
  const core = mm.core;
  const npages = p.len / PAGE_SIZE;
  await mm.lock.writeLock();
  try {
    mm.checkAlive();
    // dmirror_fops_mmap fails with ENOMEM when alloc_page does; check first so that a
    // failing call changes nothing.
    if (npages > core.ram.availablePages) throw err('ENOMEM', `mmap of a device file: ${npages} pages, ${core.ram.availablePages} free`);
    const start = p.fixed ? p.addr : getUnmappedArea(mm, p.addr, p.len, PAGE_SIZE);
    const end = start + p.len;
    if (p.fixed) await unmapRange(mm, start, end);
    mm.checkAlive();
    const file = new MemFile(core, 'device', p.len, false);
    const vma = new Vma(start, end, protToVmFlags(p.prot) | (p.shared ? VM_SHARED : VM_MAYWRITE) | VM_MIXEDMAP, 0, file, null);
    mm.vmas.insert(vma);
    // vm_insert_page(): mk_pte(page, vma->vm_page_prot). No invalidation: the range is empty.
    const pte = !vmaAccessible(vma) ? PTE_PRESENT | PTE_PROTNONE
      : PTE_PRESENT | PTE_ACCESSED | (p.shared && (vma.flags & VM_WRITE) !== 0 ? PTE_WRITE : 0);
    for (let a = start; a < end; a += PAGE_SIZE) {
      const pfn = core.ram.alloc(); // zeroed; its one reference becomes the mapping's
      core.pageKind[pfn] = PG_KERNEL;
      mm.pgtable.pteTable(a, true)!.set(pteIndex(a), pfn, pte);
    }
    return start;
  } finally {
    mm.lock.writeUnlock();
  }
}
