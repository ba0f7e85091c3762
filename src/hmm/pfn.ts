/**
 * include/linux/hmm.h's hmm_pfns[] encoding, split in two typed arrays so a range of a
 * million pages costs 5 MB and no allocation per page: `pfns` holds the page frame number
 * and `flags` one byte of flags. As in the kernel, the same array is input (per-page
 * requests, HMM_PFN_REQ_*) and output (HMM_PFN_VALID/WRITE/ERROR and the map order).
 */

/** Output: the pfn is valid and the CPU maps it (at least readable). */
export const HMM_PFN_VALID = 0x80;
/** Output: the CPU maps it writable. */
export const HMM_PFN_WRITE = 0x40;
/** Output: the page can never be faulted (hole, no read permission, special mapping). */
export const HMM_PFN_ERROR = 0x20;
/** Output: log2 of the CPU mapping's size in pages (9 for a 2 MiB PMD): hmm_pfn_to_map_order(). */
export const HMM_PFN_ORDER_MASK = 0x1f;

/** Input: fault the page in if it isn't present (same bit as VALID, as in the kernel). */
export const HMM_PFN_REQ_FAULT = HMM_PFN_VALID;
/** Input: fault it writable. */
export const HMM_PFN_REQ_WRITE = HMM_PFN_WRITE;

/** The flags that survive from input to output (HMM_PFN_INOUT_FLAGS: none we model). */
export const HMM_PFN_INOUT_FLAGS = 0;

export function hmmPfnToMapOrder(flags: number): number {
  return flags & HMM_PFN_ORDER_MASK;
}

/** Per-page arrays for a range of `npages`. */
export interface HmmPfns {
  readonly pfns: Uint32Array;
  readonly flags: Uint8Array;
}

export function allocHmmPfns(npages: number): HmmPfns {
  return { pfns: new Uint32Array(npages), flags: new Uint8Array(npages) };
}
