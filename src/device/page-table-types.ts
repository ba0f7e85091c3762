/** The mirrored page table's (page-table.ts) result, statistics and option types. */

/** What unmap() removed: the caller frees the slot(s) and writes back if dirty. */
export interface UnmappedLeaf {
  /** First page the leaf mapped (2 MiB aligned for a huge leaf). */
  page: number;
  npages: 1 | 512;
  /** The leaf's slot (a huge leaf's first slot). */
  slot: number;
  /** Entry flags (PTE_*), VALID included. */
  flags: number;
  huge: boolean;
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
