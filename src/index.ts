/**
 * mirrorlab's public API: an emulated machine whose processes have Linux-like address spaces
 * (mmap/munmap/mprotect/madvise, demand paging, COW, fork/exit, swap, THP and hugetlb).
 */
export {
  PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE,
  MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS, MAP_HUGETLB,
  MADV_DONTNEED, MADV_HUGEPAGE,
} from './mm/constants.js';
export { MADV_PAGEOUT } from './mm/validate.js';
export { HmmError, SegmentationFault, BusError, type Errno } from './errors.js';
export { createMachine, Machine, type MachineOptions, type MirrorDevice } from './mm/machine.js';
export { Process } from './mm/process.js';
export { MemFile } from './mm/file.js';
export type { MmStruct } from './mm/mm.js';
export type { DevPagemap, PagemapOptions, DevicePrivateFault } from './mm/pagemap.js';
export { checkFrameAccounting } from './mm/accounting.js';
