/**
 * The workloads' access patterns and values on the CPU side, bit for bit what
 * shaders/workloads.wgsl computes: the hash, the value of a word at a phase, which words are
 * written, which word invocation i touches. Used to initialise the buffer before a run, to
 * build a command's io (header, gather indices, poisoned results area) and to verify
 * everything afterwards — the GPU's mismatch count, every invocation's result word, and
 * every word of the buffer as the CPU reads it back.
 *
 * Values: f(w) = val(w, 0) is what the CPU writes before a run; a write stores
 * g(w) = val(w, phase) (phase 1 for the one-shot workloads). Whether an access writes is a
 * property of the word (isWriteWord), so several invocations hitting one word never race.
 */
import { err } from '../errors.js';
import type { SyntheticWorkload } from './names.js';
import { WORDS_PER_PAGE } from '../device/abi.js';
import { PAGE_SIZE } from '../mm/constants.js';

/** Words of the workload header at the start of io (HDR_WORDS in workloads.wgsl). */
export const HDR_WORDS = 16;
export const HDR_WS = 0;
export const HDR_STRIDE = 1;
export const HDR_SEED = 2;
export const HDR_WTHR = 3;
export const HDR_WIDTH = 4;
export const HDR_PHASE = 5;
export const HDR_ACTIVE = 6;
export const HDR_FLAGS = 7;
export const HDR_KEY0 = 8;
export const HDR_KEYW = 9;
export const HDR_KEYR = 10;
export const HDR_WKEY = 11;
/** Pingpong's final check: compare with the phase, write nothing. */
export const FLAG_NO_WRITE = 1;
/** What the results area holds before a run (any value no result can be is fine; ~w ≠ this for w < 2^32 - 0x21524110). */
export const RESULT_POISON = 0xdeadbeef;
/** writeFraction → threshold on a 24-bit hash (WTHR). */
export const WRITE_THRESHOLD_ONE = 1 << 24;

const GOLDEN = 0x9e3779b9;

/**
 * Each workload's KIND in workloads.wgsl: the value of its pipeline's override constant
 * KIND (one entry point, one pipeline per workload); kernels.ts generates the WGSL's
 * KIND_* constants from this table.
 */
export const WORKLOAD_KINDS: Readonly<Record<SyntheticWorkload, number>> = {
  stream: 0,
  strided: 1,
  random: 2,
  stencil: 3,
  gather: 4,
  pingpong: 5,
  hotset: 6,
};

/** lowbias32: hash32 in workloads.wgsl. */
export function hash32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The key values of phase `phase` derive from. */
export function phaseKey(seed: number, phase: number): number {
  return hash32(seed ^ hash32((phase + 0x632be5ab) >>> 0));
}

/** val(w, phase) for the phase's key. */
export function valueOf(w: number, key: number): number {
  return hash32(Math.imul(w, GOLDEN) ^ key);
}

export function writeKey(seed: number): number {
  return hash32(seed ^ 0x5bd1e995);
}

/** Is buffer word w a write word? Derived from f(w) (isWriteF in workloads.wgsl). */
export function isWriteWord(w: number, key0: number, thr: number): boolean {
  return valueOf(w, key0) >>> 8 < thr;
}

export function writeThreshold(fraction: number): number {
  return Math.round(fraction * WRITE_THRESHOLD_ONE);
}

export interface WorkloadSpec {
  name: SyntheticWorkload;
  /** Buffer start, a page-aligned byte address in the process. */
  start: number;
  /** Buffer size in bytes, whole pages. */
  sizeBytes: number;
  /** Bytes the accesses fall in, from the start (default sizeBytes); whole pages. */
  workingSetBytes?: number;
  /** Fraction of the working set's words that are written (0..1); the others are read and checked. */
  writeFraction: number;
  seed: number;
  /** strided: bytes between consecutive accesses (default 4096: a page per access); whole words, at most the working set. Dividing it, every word is touched. */
  stride?: number;
  /** stencil: grid width in words (default 1024: a row per page); must divide the working set's words, ≥ 3 rows. */
  width?: number;
  /** pingpong: hand-offs (GPU on odd phases, CPU on even ones; default 4). */
  phases?: number;
  /** pingpong: concurrent CPU "threads" of each CPU phase (default 2). */
  cpuThreads?: number;
}

/** A spec resolved into the numbers the kernel works with. */
export interface WorkloadPlan {
  name: SyntheticWorkload;
  startPage: number;
  npages: number;
  /** Words in the buffer = the command's invocations. */
  nwords: number;
  /** Working set in words. */
  ws: number;
  strideWords: number;
  width: number;
  seed: number;
  thr: number;
  phases: number;
  cpuThreads: number;
  key0: number;
  wkey: number;
}

function whole(v: number, unit: number): boolean {
  return Number.isSafeInteger(v) && v > 0 && v % unit === 0;
}

export function resolveWorkload(spec: WorkloadSpec): WorkloadPlan {
  if (!(spec.name in WORKLOAD_KINDS)) throw err('EINVAL', `unknown workload ${String(spec.name)}`);
  if (!Number.isSafeInteger(spec.start) || spec.start < 0 || spec.start % PAGE_SIZE !== 0) throw err('EINVAL', `workload start ${spec.start} is not page aligned`);
  if (!whole(spec.sizeBytes, PAGE_SIZE)) throw err('EINVAL', `workload size ${spec.sizeBytes} is not a whole number of pages`);
  const wsBytes = spec.workingSetBytes ?? spec.sizeBytes;
  if (!whole(wsBytes, PAGE_SIZE) || wsBytes > spec.sizeBytes) throw err('EINVAL', `working set ${wsBytes} must be whole pages, at most the size`);
  if (!(spec.writeFraction >= 0 && spec.writeFraction <= 1)) throw err('EINVAL', `write fraction ${spec.writeFraction}`);
  if (!Number.isInteger(spec.seed) || spec.seed < 0 || spec.seed > 0xffffffff) throw err('EINVAL', `seed ${spec.seed}`);
  const nwords = spec.sizeBytes / 4;
  if (nwords + HDR_WORDS > 2 ** 32 - 1) throw err('EINVAL', 'workload too big');
  const ws = wsBytes / 4;
  const strideBytes = spec.stride ?? PAGE_SIZE;
  if (!whole(strideBytes, 4) || strideBytes > wsBytes) throw err('EINVAL', `stride ${strideBytes} must be whole words, at most the working set (${wsBytes} bytes)`);
  const width = spec.width ?? WORDS_PER_PAGE;
  if (!Number.isSafeInteger(width) || width < 3 || ws % width !== 0 || ws / width < 3) {
    throw err('EINVAL', `stencil width ${width} must divide the working set's ${ws} words into at least 3 rows of at least 3`);
  }
  const phases = spec.phases ?? 4;
  if (!Number.isSafeInteger(phases) || phases < 1 || phases > 1000) throw err('EINVAL', `phases ${phases}`);
  const cpuThreads = spec.cpuThreads ?? 2;
  if (!Number.isSafeInteger(cpuThreads) || cpuThreads < 1) throw err('EINVAL', `cpuThreads ${cpuThreads}`);
  return {
    name: spec.name, startPage: spec.start / PAGE_SIZE, npages: spec.sizeBytes / PAGE_SIZE, nwords, ws,
    strideWords: strideBytes / 4, width, seed: spec.seed >>> 0, thr: writeThreshold(spec.writeFraction), phases, cpuThreads,
    key0: phaseKey(spec.seed, 0), wkey: writeKey(spec.seed),
  };
}

/** Does the kernel write anything (its op: the fault servicer's and the driver's view)? */
export function writes(plan: WorkloadPlan): boolean {
  return plan.thr > 0;
}

/** Invocations that do something (pingpong: one per working-set word; others: all). */
export function activeInvocations(plan: WorkloadPlan): number {
  return plan.name === 'pingpong' ? plan.ws : plan.nwords;
}

/** The command's io: header, then the gather indices or the poisoned results area. */
export function commandIo(plan: WorkloadPlan, phase: number, flags = 0, indices?: Uint32Array): Uint32Array {
  const io = new Uint32Array(HDR_WORDS + plan.nwords);
  io[HDR_WS] = plan.ws;
  io[HDR_STRIDE] = plan.strideWords;
  io[HDR_SEED] = plan.seed;
  io[HDR_WTHR] = plan.thr;
  io[HDR_WIDTH] = plan.width;
  io[HDR_PHASE] = phase;
  io[HDR_ACTIVE] = activeInvocations(plan);
  io[HDR_FLAGS] = flags;
  io[HDR_KEY0] = plan.key0;
  io[HDR_KEYW] = phaseKey(plan.seed, phase);
  io[HDR_KEYR] = phaseKey(plan.seed, phase - 1);
  io[HDR_WKEY] = plan.wkey;
  if (plan.name === 'gather') {
    if (indices === undefined || indices.length !== plan.nwords) throw err('EINVAL', 'gather needs one index per word');
    io.set(indices, HDR_WORDS);
  } else {
    io.fill(RESULT_POISON, HDR_WORDS);
  }
  return io;
}

/**
 * Gather's index buffer: sparse-matrix-like column indices. Each run of 32 invocations (one
 * GPU thread) picks a random segment of the working set and reads 32 indices scattered
 * over ±2 pages around it, so consecutive indices share pages often but not always.
 */
export function gatherIndices(plan: WorkloadPlan): Uint32Array {
  const out = new Uint32Array(plan.nwords);
  const key = hash32(plan.seed ^ 0x1b873593);
  const spread = 4 * WORDS_PER_PAGE;
  for (let i = 0; i < plan.nwords; i++) {
    const base = hash32(Math.floor(i / 32) ^ key);
    const off = hash32(i ^ key ^ 0x85ebca6b) % spread;
    out[i] = (base + off) % plan.ws;
  }
  return out;
}

/** The word invocation i targets (the stencil's centre), as targetOf in workloads.wgsl. */
export function targetOf(plan: WorkloadPlan, i: number, indices?: Uint32Array): number {
  const ws = plan.ws;
  switch (plan.name) {
    case 'strided': {
      const s = plan.strideWords;
      const j = i % ws;
      const rows = Math.ceil(ws / s);
      return ((j % rows) * s + Math.floor(j / rows)) % ws;
    }
    case 'random':
      return hash32((i ^ plan.wkey ^ 0x2545f491) >>> 0) % ws;
    case 'gather':
      return indices![i] % ws;
    case 'hotset':
      return hotsetTarget(ws, plan.wkey, i);
    default:
      return i % ws;
  }
}

/**
 * hotset (random with reuse): draws with replacement of 64-word runs, 7 of 8 from a hot set
 * of an eighth of the pages (placed by the seed), the rest from any page; so which pages are
 * touched, how often and in what order all follow the seed. u32 arithmetic as in the WGSL.
 */
export function hotsetTarget(ws: number, wkey: number, i: number): number {
  const h = hash32((Math.floor(i / 64) ^ wkey ^ 0x68e31da4) >>> 0);
  const pages = Math.max(1, Math.floor(ws / WORDS_PER_PAGE));
  const hot = Math.max(1, Math.floor(pages / 8));
  const r = hash32((h ^ 0x9e3779b9) >>> 0);
  const page = (h & 7) !== 0 ? ((hash32(wkey) % pages) + (r % hot)) % pages : r % pages;
  return (page * WORDS_PER_PAGE + ((h >>> 3) % 16) * 64 + (i % 64)) % ws;
}

/** The 4 neighbours of stencil cell w (the centre is w itself). */
export function stencilNeighbours(plan: WorkloadPlan, w: number): [number, number, number, number] {
  const W = plan.width;
  const H = plan.ws / W;
  const x = w % W;
  const y = Math.floor(w / W);
  return [y * W + ((x + W - 1) % W), y * W + ((x + 1) % W), ((y + H - 1) % H) * W + x, ((y + 1) % H) * W + x];
}

/** f(w): what every buffer word holds before a run. */
export function initialWords(plan: WorkloadPlan, firstWord: number, count: number): Uint32Array {
  const out = new Uint32Array(count);
  for (let k = 0; k < count; k++) out[k] = valueOf(firstWord + k, plan.key0);
  return out;
}

/**
 * What a one-shot run (stream … gather) leaves: for each buffer word, whether the kernel
 * wrote it (a write word some invocation targets), and how many reads the kernel checked.
 */
export function oneShotEffect(plan: WorkloadPlan, indices?: Uint32Array): { written: Uint8Array; gpuChecks: number } {
  const written = new Uint8Array(plan.nwords);
  const isW = new Uint8Array(plan.ws);
  for (let w = 0; w < plan.ws; w++) isW[w] = isWriteWord(w, plan.key0, plan.thr) ? 1 : 0;
  let gpuChecks = 0;
  for (let i = 0; i < plan.nwords; i++) {
    const w = targetOf(plan, i, indices);
    if (plan.name === 'stencil') gpuChecks += 5;
    else if (isW[w] === 0) gpuChecks++;
    if (isW[w] === 1) written[w] = 1;
  }
  return { written, gpuChecks };
}

/** The expected result word of invocation i (RESULT_POISON: never runs). */
export function resultOf(plan: WorkloadPlan, i: number, indices?: Uint32Array): number {
  if (i >= activeInvocations(plan)) return RESULT_POISON;
  return ~targetOf(plan, i, indices) >>> 0;
}
