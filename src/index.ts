/**
 * mirrorlab's public API: an emulated machine whose processes have Linux-like address spaces
 * (mmap/munmap/mprotect/madvise, demand paging, COW, fork/exit, swap, THP and hugetlb), and
 * GPU mirror devices driven through lib/test_hmm.c's interface.
 */
export {
  PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE,
  MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS, MAP_HUGETLB,
  MADV_DONTNEED, MADV_HUGEPAGE,
} from './mm/constants.js';
export { MADV_PAGEOUT } from './mm/validate.js';
export { MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP } from './mm/mremap.js';
export { HmmError, SegmentationFault, BusError, type Errno } from './errors.js';
// The machine users get from createMachine() is the mm's Machine with its mirror devices.
export {
  createMachine, System, System as Machine, type SystemOptions, type SystemOptions as MachineOptions,
} from './system.js';
export {
  HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_WRITE,
  HMM_DMIRROR_PROT_PMD, HMM_DMIRROR_PROT_PUD, HMM_DMIRROR_PROT_ZERO,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE, HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL,
  HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE, HMM_DMIRROR_FLAG_FAIL_ALLOC,
  type Mirror, type MirrorDevice, type MirrorResult,
} from './driver/uapi.js';
export { Process } from './mm/process.js';
export { GUP_PIN_COUNTING_BIAS, UserPages, type GupOptions } from './mm/gup.js';
export { MemFile } from './mm/file.js';
export type { MmStruct } from './mm/mm.js';
export type { DevPagemap, PagemapOptions, DevicePrivateFault } from './mm/pagemap.js';
export { checkFrameAccounting } from './mm/accounting.js';
