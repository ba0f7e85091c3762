/**
 * The workloads by name: the vocabulary shared by the kernels (shaders/workloads.wgsl,
 * shaders/app-*.wgsl), the CPU-side patterns and the layers above (the experiment's configs
 * and CLI), which import it from here — the workloads know nothing of the experiment.
 *
 * Synthetic: access patterns with checkable values (patterns.ts). Applications: WGSL ports of
 * the benchmarks UVM studies run (Rodinia, PolyBench/GPU) and a pointer chase, each checked
 * against its CPU reference (apps/).
 */
export type SyntheticWorkload = 'stream' | 'strided' | 'random' | 'stencil' | 'gather' | 'pingpong' | 'hotset';
export const SYNTHETIC_WORKLOADS: readonly SyntheticWorkload[] = ['stream', 'strided', 'random', 'stencil', 'gather', 'pingpong', 'hotset'];

export type AppWorkload =
  | 'bfs' | 'hotspot' | 'backprop' | 'srad' | 'nw' | 'pathfinder'
  | '2dconv' | 'atax' | 'fdtd-2d' | 'gemm'
  | 'pointer-chase';
export const APP_WORKLOADS: readonly AppWorkload[] = [
  'bfs', 'hotspot', 'backprop', 'srad', 'nw', 'pathfinder', '2dconv', 'atax', 'fdtd-2d', 'gemm', 'pointer-chase',
];

export type WorkloadName = SyntheticWorkload | AppWorkload;
export const WORKLOADS: readonly WorkloadName[] = [...SYNTHETIC_WORKLOADS, ...APP_WORKLOADS];

export function isAppWorkload(name: string): name is AppWorkload {
  return (APP_WORKLOADS as readonly string[]).includes(name);
}
