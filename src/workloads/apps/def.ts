/** What each application workload module exports: its description, its shader, its programs. */
import type { AppWorkload } from '../names.js';
import type { AppProgram } from './program.js';

export interface AppDef {
  name: AppWorkload;
  suite: 'Rodinia' | 'PolyBench/GPU' | 'microbenchmark';
  /** The access pattern in one line (README, --help, the lab). */
  pattern: string;
  /** Default --size: the footprint of UVM_Smart's input (benchmark_workingset.txt), or ours where it has none. */
  defaultMiB: number;
  /** UVM_Smart's working set for it, MB as benchmark_workingset.txt gives it (null: not in its set). */
  uvmSmartMB: number | null;
  /** The kernels of its shader, in KERNEL order (labels). */
  kernels: readonly string[];
  /** shaders/app-<name>.wgsl, and whether its pools are atomic words (app-mem-atomic.wgsl). */
  wgsl: string;
  atomicMemory?: boolean;
  /** The program at a size (MiB, scaled from defaultMiB) and seed; EINVAL for a size it cannot be. */
  program(sizeMiB: number, seed: number): AppProgram;
}
