/** What each application workload module exports: its description, its shader, its programs. */
import type { AppWorkload } from '../names.js';
import type { AppProgram } from './program.js';

export interface AppDef {
  name: AppWorkload;
  suite: 'Rodinia' | 'PolyBench/GPU' | 'microbenchmark';
  /** The access pattern in one line (README, --help, the lab). */
  pattern: string;
  /**
   * Default --size, MiB: UVM_Smart's working-set figure (benchmark_workingset.txt), at which
   * the input is UVM_Smart's; other sizes scale the input in proportion (the buffer mirrored
   * is the program's footprint, AppProgram.pages: its arrays at 64 KiB boundaries, which for
   * srad includes the 5 arrays UVM_Smart leaves in cudaMalloc'd memory). Not in its set:
   * the footprint of our default input.
   */
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
