/**
 * The GPU ABI of the mirror kernels, in one place: what the TS side and the WGSL side must
 * agree on.
 *  - Constants are TypeScript's: wgslConstants() generates them as a WGSL `const` block that
 *    is prepended to every kernel's source at pipeline creation (withAbi), so the shaders
 *    never spell a flag or a size by hand.
 *  - Struct layouts are the WGSL's: offsets and sizes are read from the shader source with
 *    webgpu-utils (makeShaderDataDefinitions), and Params is written through a structured
 *    view of it, never through hand-counted offsets.
 */
import './float16.js';
import { makeShaderDataDefinitions, makeStructuredView, type StructuredView, type VariableDefinition } from 'webgpu-utils';
import commonWgsl from '../../shaders/mirror-common.wgsl?raw';
import { FAULT_ACCESS_PROTECTION } from './fault-queue.js';
import { PAGE_BYTES } from './page-pool.js';
import { PT_ENTRIES, PTE_DEVICE, PTE_EXCLUSIVE, PTE_HUGE, PTE_INDEX_SHIFT, PTE_VALID, PTE_WRITE, RANGE_POOLS, LEAF_POOLS } from './page-table.js';

/** Threads per workgroup. */
export const MIRROR_WORKGROUP_SIZE = 256;
/** Threads per page: one per done word (32 words each). */
export const MIRROR_THREADS_PER_PAGE = 32;
/** Range pages one workgroup serves. */
export const MIRROR_PAGES_PER_WORKGROUP = MIRROR_WORKGROUP_SIZE / MIRROR_THREADS_PER_PAGE;
/**
 * Words per uTLB block of the workload kernels (workloads.wgsl): words [256k, 256k + 256)
 * report through uTLB k % nsources. The engine's own kernels report per workgroup
 * (faultSourceOf).
 */
export const MIRROR_TLB_BLOCK_WORDS = 256;
export const WORDS_PER_PAGE = PAGE_BYTES / 4;

/**
 * The uTLB id the engine's kernels give invocation `word` of a command (for tests and
 * tracing): a workgroup is a uTLB, workgroup k reporting as uTLB k % faultSources.
 */
export function faultSourceOf(word: number, faultSources: number): number {
  return Math.floor(word / (MIRROR_WORKGROUP_SIZE * 32)) % faultSources;
}

/** Bytes as u32 words: a view when 4-byte aligned (a page's, always), else a copy. */
export function words(b: Uint8Array): Uint32Array {
  if (b.byteOffset % 4 === 0) return new Uint32Array(b.buffer, b.byteOffset, b.byteLength >> 2);
  return new Uint32Array(b.slice().buffer);
}
/** Storage buffers the kernels bind (tables, aperture, vram, io, state, faults, dirty, done). */
export const MIRROR_STORAGE_BUFFERS = 8;
/** Fault record access codes (FaultQueue decodes them). */
export const ACCESS_READ = 1;
export const ACCESS_WRITE = 2;
export const ACCESS_ATOMIC = 3;
/**
 * Pending-filter bits per (uTLB, page) in state[] (recordFault): one per access kind, bit
 * `access & 3`, so a uTLB's outstanding read does not swallow its write or atomic on the same
 * page (each reaches the fault buffer once; the service keeps the most intrusive, as UVM's
 * merge of duplicate entries into one access_type_mask does, uvm_gpu_replayable_faults.c).
 */
export const PEND_BITS_PER_PAGE = 4;
/** state[] words: 0 is a kernel's own counter, 1 the words a round left not done. */
export const STATE_MISSED = 1;
/** state[] words: the workgroup TLB's lookups and page walks this round (mirror kernels). */
export const STATE_TLB_LOOKUPS = 2;
export const STATE_TLB_WALKS = 3;
/** state[] words 4..6: the record pass's indirect dispatch arguments (x, y, z), set by the report pass when a page missed. */
export const STATE_RECORD_ARGS = 4;
/** state[] words: the stall gate's runnable workgroups this round (its run list's length) and its stalled ones (mirror-gate.wgsl). */
export const STATE_GATE_RUN = 7;
export const STATE_GATE_STALLED = 8;
export const STATE_HEADER_WORDS = 12;
/**
 * Distinct pages a workgroup's miss list holds (mirror-gate.wgsl; a power of two): a
 * hotspot block of 16 rows misses up to ~56 (a row a page, two arrays, the halo); a
 * workgroup that misses more is run every round.
 */
export const MISS_LIST = 64;
/**
 * A miss list's head: the header word, then the entries still missing (a 64-bit mask, two
 * words: the gate clears an entry's bit once its page is reachable, so each round it walks
 * only those).
 */
export const GATE_HEAD_WORDS = 3;
/** state[] words of a workgroup's miss list: its head, its entries and each invocation's mask of them (two words). */
export const GATE_LIST_WORDS = GATE_HEAD_WORDS + MISS_LIST + 2 * MIRROR_WORKGROUP_SIZE;
/** state[] words per workgroup of a gated command: its run-list word and its miss list. */
export const GATE_WORDS_PER_GROUP = 1 + GATE_LIST_WORDS;
/** Workgroups a dispatch may have in one dimension on every WebGPU device (the limit's default). */
export const MAX_WORKGROUPS_X = 65535;

/** The constants every kernel sees, as WGSL: TypeScript is their single source. */
export function wgslConstants(): string {
  const u32: Record<string, number> = {
    PTE_VALID, PTE_WRITE, PTE_EXCLUSIVE, PTE_DEVICE, PTE_HUGE, PTE_INDEX_SHIFT, PT_ENTRIES,
    WORDS_PER_PAGE, VECS_PER_PAGE: WORDS_PER_PAGE / 4,
    ACCESS_READ, ACCESS_WRITE, ACCESS_ATOMIC, ACCESS_PROTECTION: FAULT_ACCESS_PROTECTION, PEND_BITS_PER_PAGE,
    STATE_MISSED, STATE_TLB_LOOKUPS, STATE_TLB_WALKS, STATE_RECORD_ARGS, STATE_GATE_RUN, STATE_GATE_STALLED,
    MISS_LIST, MISS_LIST_BITS: Math.log2(MISS_LIST), GATE_HEAD_WORDS, GATE_LIST_WORDS, MISS_PAGE_MASK: 2 ** 30 - 1, MAX_WG_X: MAX_WORKGROUPS_X, WG: MIRROR_WORKGROUP_SIZE, THREADS_PER_PAGE: MIRROR_THREADS_PER_PAGE,
    PAGES_PER_WG: MIRROR_PAGES_PER_WORKGROUP,
    VECS_PER_THREAD: WORDS_PER_PAGE / 4 / MIRROR_THREADS_PER_PAGE, TLB_BLOCK_WORDS: MIRROR_TLB_BLOCK_WORDS,
    POOL_SYSTEM: RANGE_POOLS.indexOf('system'), POOL_DEVICE: RANGE_POOLS.indexOf('device'), POOL_RESIDENT: LEAF_POOLS.indexOf('resident'),
  };
  const lines = Object.entries(u32).map(([k, v]) => `const ${k}: u32 = ${v}u;`);
  return `// Generated from src/device/abi.ts (wgslConstants): do not edit here.\n${lines.join('\n')}\n`;
}

/** A kernel's full source: the generated constants, mirror-common.wgsl, then the kernel file. */
export function withAbi(kernelWgsl: string): string {
  return wgslConstants() + commonWgsl + kernelWgsl;
}

type ParamsLayout = { def: VariableDefinition; bytes: number; parityOffset: number; replayAllOffset: number };
let layout: ParamsLayout | null = null;

/**
 * struct Params as the WGSL lays it out, read on first use (webgpu-utils' reflection names
 * GPUShaderStage, which Node only has once a GPU was acquired: src/device/gpu.ts).
 */
function paramsLayout(): ParamsLayout {
  if (layout === null) {
    const defs = makeShaderDataDefinitions(withAbi(''));
    const def = defs.uniforms.params;
    const fields = defs.structs.Params.fields;
    layout = { def, bytes: def.size, parityOffset: fields.parity.offset, replayAllOffset: fields.replayAll.offset };
  }
  return layout;
}

/** sizeof(struct Params). */
export function paramsBytes(): number {
  return paramsLayout().bytes;
}

/** offsetof(struct Params, parity): the one field a round rewrites. */
export function parityOffset(): number {
  return paramsLayout().parityOffset;
}

/** offsetof(struct Params, replayAll): a gated command's round rewrites it too. */
export function replayAllOffset(): number {
  return paramsLayout().replayAllOffset;
}

/** The fields of struct Params (mirror-common.wgsl), all u32. */
export interface Params {
  vaLo: number;
  vaHi: number;
  npages: number;
  nwords: number;
  nsources: number;
  pendOff: number;
  devDirtyOff: number;
  doneWords: number;
  parity: number;
  /** Access counters (countRemote): their word offset in state[] (0: not counting), the range's first page's offset in its region, pages a region. */
  cntOff: number;
  cntFirst: number;
  cntPages: number;
  /** Word offset in the done buffer of the leaves the TLB fill leaves for the report pass (2 * doneWords). */
  leafOff: number;
  /** The stall gate (mirror-gate.wgsl): its words' offset in state[] (0: not gated), and 1 when every workgroup must run this round (an entry was revoked). */
  gateOff: number;
  replayAll: number;
}

/** Params as the uniform buffer holds them. */
export function encodeParams(p: Partial<Params>): ArrayBuffer {
  const view: StructuredView = makeStructuredView(paramsLayout().def);
  view.set(p);
  return view.arrayBuffer;
}
