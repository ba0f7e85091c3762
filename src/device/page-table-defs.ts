/** The mirrored page table's (page-table.ts) entry format, result, statistics and option types, and its argument checks. */
import { err } from '../errors.js';

export const PTE_VALID = 0x1;
export const PTE_WRITE = 0x2;
export const PTE_EXCLUSIVE = 0x4;
export const PTE_DEVICE = 0x8;
export const PTE_HUGE = 0x10;
/** Flags a caller may pass to map()/mapHuge() (VALID is implied, HUGE is mapHuge's). */
export const PTE_LEAF_FLAGS = PTE_WRITE | PTE_EXCLUSIVE | PTE_DEVICE;
export const PTE_INDEX_SHIFT = 8;
/** Table indices and slots are 24-bit. */
export const PTE_INDEX_LIMIT = 2 ** 24;

export const PT_ENTRIES = 512;
export const PT_TABLE_BYTES = PT_ENTRIES * 4;
/** Page numbers are < 2^35 (VA < 2^47, 4 KiB pages). */
export const PT_MAX_PAGE = 2 ** 35;
/** Pages per huge (level-1) leaf. */
export const HUGE_PAGES = 512;

/** Builds an entry; index < 2^24 so index * 256 + flags stays below 2^32. */
export function makeEntry(index: number, flags: number): number {
  return index * 256 + (flags & 0xff);
}
export const entryIndex = (entry: number): number => Math.floor(entry / 256);
export const entryFlags = (entry: number): number => entry % 256;

/** [root, level 2, level 1, level 0] indices of a page number. */
export function levelIndices(page: number): [number, number, number, number] {
  return [Math.floor(page / 2 ** 27) % 512, Math.floor(page / 2 ** 18) % 512, Math.floor(page / 2 ** 9) % 512, page % 512];
}

/**
 * What unmapRuns() removed: one huge leaf, or `npages` 4 KiB leaves of consecutive pages on
 * consecutive slots with the same flags. The caller frees the slot(s) and writes back if dirty.
 */
export interface LeafRun {
  /** First page the leaves mapped (2 MiB aligned for a huge leaf). */
  page: number;
  npages: number;
  /** The first leaf's slot (a huge leaf's first slot). */
  slot: number;
  /** Entry flags (PTE_*), VALID included. */
  flags: number;
  huge: boolean;
}

/** What unmap() removed: one leaf (4 KiB or huge). */
export interface UnmappedLeaf extends LeafRun {
  npages: 1 | 512;
}

export interface PteLookup {
  /** The entry as the GPU's translate() returns it (huge: slot advanced to the subpage). */
  entry: number;
  slot: number;
  flags: number;
  huge: boolean;
}

export interface PageTableStats {
  /** Live tables, root included. */
  tables: number;
  /** Tables the GPU buffer holds now. */
  tableCapacity: number;
  maxTables: number;
  leaves: number;
  hugeLeaves: number;
  /** Entries changed on the host and not yet flushed. */
  dirtyEntries: number;
  flushes: number;
  /** queue.writeBuffer calls made by flush(). */
  writes: number;
  bytesWritten: number;
  /** Times the GPU buffer was reallocated bigger. */
  grows: number;
}

export interface GpuPageTableOptions {
  label?: string;
  /** Tables the first GPU buffer holds (default 16). */
  initialTables?: number;
  /** Cap on tables (default and ceiling: what maxStorageBufferBindingSize allows, ≤ 2^24). */
  maxTables?: number;
  /** flush() merges runs separated by ≤ this many clean entries into one write (default 0). */
  mergeGap?: number;
  /** Slots beyond these are rejected by map() (the sizes of the two page pools). */
  apertureSlots?: number;
  deviceSlots?: number;
}

/**
 * Which pool the leaves of a range are in, as the host knows it (GpuPageTable.poolOf,
 * leafPool): the value of a kernel's POOL override (mirror-common.wgsl), index in this list.
 * 'mixed': each entry says (PTE_DEVICE); 'system' / 'device': every leaf is in the aperture /
 * in VRAM.
 */
export const RANGE_POOLS = ['mixed', 'system', 'device'] as const;
export type RangePool = (typeof RANGE_POOLS)[number];

/**
 * What a kernel that translates through the range's leaves is compiled for (GpuPageTable.leafPool,
 * the POOL override): a pool of RANGE_POOLS, or 'resident': every page of the range has a leaf
 * in VRAM with read and write rights, so no access can miss and the kernel's miss path compiles
 * out (reach in app-access.wgsl and workloads.wgsl). llvmpipe runs both sides of every branch,
 * so that path cost a whole-grid hotspot round half its time though no access took it.
 */
export const LEAF_POOLS = [...RANGE_POOLS, 'resident'] as const;
export type LeafPool = (typeof LEAF_POOLS)[number];

/** A page number the table can hold, [0, 2^35) (EINVAL otherwise). */
export function checkPage(page: number, what: string): void {
  if (!Number.isSafeInteger(page) || page < 0 || page >= PT_MAX_PAGE) {
    throw err('EINVAL', `${what}: page ${page} outside [0, 2^35)`);
  }
}

/** [page, page + npages) within the table's reach, with at least `min` pages (EINVAL otherwise). */
export function checkRange(page: number, npages: number, min: 0 | 1, what: string): void {
  checkPage(page, what);
  if (!Number.isSafeInteger(npages) || npages < min || page + npages > PT_MAX_PAGE) {
    throw err('EINVAL', `${what}: bad range [0x${page.toString(16)}, +${npages})`);
  }
}

export const HOLE = 1, IN_SYSTEM = 2, IN_DEVICE = 4; // rangeBits: a page without a leaf with the flags asked; a leaf in the aperture; in VRAM
export const poolOfBits = (bits: number): RangePool => (bits & IN_SYSTEM ? (bits & IN_DEVICE ? 'mixed' : 'system') : 'device');
