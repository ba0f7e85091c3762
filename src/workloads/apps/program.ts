/**
 * What an application workload is (Rodinia, PolyBench/GPU, the pointer chase): a program of
 * kernel launches over arrays laid out in one mirrored buffer, driven by host code between
 * launches, with the same kernels written twice — in WGSL (shaders/app-*.wgsl, run through
 * the mirror: faults, batching, coalescing, the retry loop, the policy) and in TypeScript
 * (the CPU reference). The host code is written once: `run(host)` drives the GPU through
 * the real fault path and, given the CPU host, computes the reference with the same launches
 * in the same order (bfs's "over" flag, srad's ROI statistics and backprop's hidden layer
 * are then computed from what each side's kernels produced, as the originals' host code does).
 */
import { err } from '../../errors.js';
import { WORDS_PER_PAGE } from '../../device/abi.js';

/** io words (app-access.wgsl): invocations that run, the parameters, the outputs, per-invocation state. */
export const IO_ACTIVE = 0;
export const IO_PARAMS = 1;
export const IO_OUT = 48;
export const IO_STATE = 64;
/** Arrays are placed at 64 KiB boundaries: UVM_Smart's working sets count small arrays as 64 KB. */
export const ARRAY_ALIGN_WORDS = 65536 / 4;
/** A poisoned f32 output word (a NaN: no tolerance accepts it) and a poisoned integer one. */
export const POISON_F32 = 0x7fc0dead;
export const POISON_U32 = 0xdeadbeef;

export type ElemKind = 'u32' | 'i32' | 'f32' | 'u8';

/** One array of the program, in the buffer. */
export interface AppArray {
  name: string;
  /** First word, from the buffer's start (a multiple of ARRAY_ALIGN_WORDS). */
  offset: number;
  /** Elements (u8: bytes, packed four to a word). */
  length: number;
  kind: ElemKind;
  /** f32: relative tolerance of the check against the CPU (GPUs may fuse a multiply-add; WGSL's division is 2.5 ULP). */
  tol?: number;
}

/** Where a program runs: the mirror (run.ts) or the CPU (the reference). */
export interface AppHost {
  /**
   * One kernel launch over the buffer: kernel `kernel` of the program's shader, its
   * parameters (u32 words; f32 as bits), `invocations` of it; resolves to the io after the
   * launch (the kernel's outputs from IO_OUT). `state`: per-invocation state words, from IO_STATE.
   */
  launch(kernel: number, params: ArrayLike<number>, invocations: number, state?: Uint32Array): Promise<Uint32Array>;
  /** The CPU reads / writes words of the buffer (on the mirror: through the process, CPU faults and all). */
  read(word: number, n: number): Promise<Uint32Array>;
  write(word: number, data: Uint32Array): Promise<void>;
}

/** One instance of an application workload: its size fixed, its data generated from the seed. */
export interface AppProgram {
  /** "hotspot 1024×1024, 8 iterations (4 launches of 2)". */
  readonly shape: string;
  readonly arrays: readonly AppArray[];
  /** Pages of the buffer. */
  readonly pages: number;
  /** Whether each kernel stores (the command's op). */
  readonly kernelWrites: readonly boolean[];
  /** The buffer before the run: inputs, and poison in every word a kernel must write. */
  initial(): Uint32Array;
  /** The host code: the launches, and what the host does between them. */
  run(host: AppHost): Promise<void>;
  /** Kernel `kernel` on the CPU over `mem`: what the WGSL does, invocation by invocation. */
  cpu(kernel: number, params: Uint32Array, invocations: number, mem: Uint32Array, io: Uint32Array): void;
}

/** Lays arrays out one after the other at 64 KiB boundaries. */
export function layout(specs: readonly Omit<AppArray, 'offset'>[]): { arrays: AppArray[]; pages: number; at: Record<string, AppArray> } {
  let next = 0;
  const arrays: AppArray[] = [];
  for (const s of specs) {
    const words = s.kind === 'u8' ? Math.ceil(s.length / 4) : s.length;
    arrays.push({ ...s, offset: next });
    next += Math.ceil(words / ARRAY_ALIGN_WORDS) * ARRAY_ALIGN_WORDS;
  }
  const last = arrays[arrays.length - 1];
  const end = last.offset + (last.kind === 'u8' ? Math.ceil(last.length / 4) : last.length);
  return { arrays, pages: Math.ceil(end / WORDS_PER_PAGE), at: Object.fromEntries(arrays.map((a) => [a.name, a])) };
}

/** Words an array's elements take. */
export function arrayWords(a: AppArray): number {
  return a.kind === 'u8' ? Math.ceil(a.length / 4) : a.length;
}

/**
 * The dimension at `sizeMiB` of a problem whose default dimension `base` is UVM_Smart's at
 * `defaultMiB`: scaled by (size / default)^(1/power) (power 2 for an n × n grid), rounded to
 * a multiple of `step`; EINVAL below `min`.
 */
export function scaled(app: string, sizeMiB: number, defaultMiB: number, base: number, power: number, step: number, min: number): number {
  if (!(sizeMiB > 0) || !Number.isFinite(sizeMiB)) throw err('EINVAL', `${app}: size ${sizeMiB} MiB`);
  const n = Math.round((base * (sizeMiB / defaultMiB) ** (1 / power)) / step) * step;
  if (n < min) throw err('EINVAL', `${app}: ${sizeMiB} MiB is too small (at least ${min} ${power === 1 ? '' : 'per side '}needs about ${(defaultMiB * (min / base) ** power).toFixed(2)} MiB)`);
  return n;
}

/** A seeded PRNG (xorshift32 over a splitmix'd seed): the workloads' input data. */
export class Rng {
  #s: number;
  constructor(seed: number, stream: number) {
    let z = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    this.#s = (z ^ (z >>> 16)) >>> 0 || 0x6d2b79f5;
  }
  u32(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s;
  }
  /** [0, 1) in steps of 2^-24 (exact in f32). */
  unit(): number {
    return (this.u32() >>> 8) / 16777216;
  }
  /** [0, n). */
  below(n: number): number {
    return Math.floor(this.unit() * n);
  }
}

/** f32 views of a word buffer (the CPU kernels compute in f32, Math.fround at each step). */
export function f32(mem: Uint32Array): Float32Array {
  return new Float32Array(mem.buffer, mem.byteOffset, mem.length);
}

export const fr = Math.fround;

/** A float's bits (params are u32 words). */
export function bits(x: number): number {
  const f = new Float32Array([x]);
  return new Uint32Array(f.buffer)[0];
}
