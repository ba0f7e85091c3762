/** Constants of the emulated x86-64 mm: 4 KiB base pages, 2 MiB PMD huge pages, 47-bit user VA. */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const PMD_SHIFT = 21;
export const PMD_SIZE = 1 << PMD_SHIFT; // 2 MiB
export const PMD_PAGES = PMD_SIZE / PAGE_SIZE; // 512
export const TASK_SIZE = 2 ** 47;
/** Lowest address mmap hands out or accepts for MAP_FIXED (vm.mmap_min_addr). */
export const MMAP_MIN_ADDR = 0x10000;

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_MASK = PROT_READ | PROT_WRITE;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_HUGETLB = 0x40000;
export const MAP_FLAGS_MASK = MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_HUGETLB;

export const MADV_DONTNEED = 4;
export const MADV_HUGEPAGE = 14;

/**
 * MAX_RW_COUNT (include/linux/fs.h: INT_MAX & PAGE_MASK): the most bytes one read/write
 * transfers; vfs_read/rw_verify_area and import_iovec clamp longer requests to it.
 */
export const MAX_RW_COUNT = 0x7fffffff - (0x7fffffff % PAGE_SIZE);
