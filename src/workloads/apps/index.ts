/**
 * The application workloads by name, and the one way to get an instance: appProgram(name,
 * sizeMiB, seed). Each lives in its own module with its own shader (shaders/app-<name>.wgsl).
 */
import { err } from '../../errors.js';
import type { AppWorkload } from '../names.js';
import type { AppDef } from './def.js';
import { BACKPROP } from './backprop.js';
import { BFS } from './bfs.js';
import { HOTSPOT } from './hotspot.js';
import { NW } from './nw.js';
import { PATHFINDER } from './pathfinder.js';
import { POINTER_CHASE } from './pointer-chase.js';
import { SRAD } from './srad.js';
import { ATAX, CONV2D, FDTD2D, GEMM } from './polybench.js';
import type { AppProgram } from './program.js';

export type { AppDef } from './def.js';
export type { AppProgram } from './program.js';

export const APPS: Readonly<Record<AppWorkload, AppDef>> = {
  bfs: BFS,
  hotspot: HOTSPOT,
  backprop: BACKPROP,
  srad: SRAD,
  nw: NW,
  pathfinder: PATHFINDER,
  '2dconv': CONV2D,
  atax: ATAX,
  'fdtd-2d': FDTD2D,
  gemm: GEMM,
  'pointer-chase': POINTER_CHASE,
};

export function appDef(name: string): AppDef {
  const d = (APPS as Readonly<Record<string, AppDef>>)[name];
  if (d === undefined) throw err('EINVAL', `unknown workload ${name}`);
  return d;
}

/**
 * Device memory, in 2 MiB chunks (UVM's eviction unit), below which an oversubscribed run of
 * an application workload is refused: an invocation is replayed whole, so the pages it
 * touches — one or two in each of its arrays — must be resident at once, and eviction frees
 * whole chunks; with too few chunks each fault would evict a page another of its faults
 * brought in. It was 4 while the batch service fetched the lowest addresses first, which
 * starved a launch's high pages (fetch-order.ts); with the oldest-first fetch bfs at 125 %
 * (9.75 MiB, 1,997 pages: 3.9 chunks) completes (11,104 far faults, measured), so 3 is the
 * bound now. Below 3 chunks is not measured.
 */
export const MIN_OVERSUB_CHUNKS = 3;
const CHUNK_PAGES = 512;

/** Does `pages` of working set at `oversub` leave the device memory an application run needs? */
export function oversubLeavesEnough(pages: number, oversub: number): boolean {
  const devicePages = Math.ceil(pages / oversub);
  return devicePages >= pages || devicePages >= MIN_OVERSUB_CHUNKS * CHUNK_PAGES;
}

export interface AppRunLimits {
  /** Working set / device memory (absent or 1: fits). */
  oversub?: number;
  /** The largest buffer one command binds on the device. */
  maxBufferBytes: number;
}

/**
 * The program a run of `name` at `sizeMiB` would run, checked against the device: EINVAL
 * naming the workload when the size is too small for it, the footprint (a bfs graph) is more
 * than the device binds in one buffer, or the oversubscribed device memory is too small.
 */
export function checkAppRun(name: string, sizeMiB: number, seed: number, limits: AppRunLimits): AppProgram {
  const p = appProgram(name, sizeMiB, seed);
  const bytes = p.pages * 4096;
  if (bytes > limits.maxBufferBytes) {
    throw err('EINVAL', `${name} at ${sizeMiB} MiB (${p.shape}) needs ${(bytes / 2 ** 20).toFixed(2)} MiB; this device binds at most ${(limits.maxBufferBytes / 2 ** 20).toFixed(0)} MiB in one buffer`);
  }
  const oversub = limits.oversub ?? 1;
  const devicePages = Math.ceil(p.pages / oversub);
  if (!oversubLeavesEnough(p.pages, oversub)) {
    throw err('EINVAL', `${name} at ${sizeMiB} MiB oversubscribed ${oversub}x leaves ${(devicePages / 256).toFixed(2)} MiB of device memory; an application workload needs at least ${MIN_OVERSUB_CHUNKS} chunks (${MIN_OVERSUB_CHUNKS * 2} MiB) when oversubscribed (run it at a larger size)`);
  }
  return p;
}

/** The instance of `name` at `sizeMiB` (EINVAL: a size it cannot be). */
export function appProgram(name: string, sizeMiB: number, seed: number): AppProgram {
  return appDef(name).program(sizeMiB, seed);
}
