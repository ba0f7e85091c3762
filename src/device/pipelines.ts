/**
 * The mirror kernels' pipelines: one bind group layout shared by every kernel (params,
 * tables, aperture, vram, io, state, fault ring, dirty bits, done bitmaps), the engine's own
 * kernels (read, write, probe, atomic) and kernels of other files compiled against the same
 * layout (createKernels). Every source gets the generated ABI constants (src/device/abi.ts).
 */
import accessWgsl from '../../shaders/mirror-access.wgsl?raw';
import atomicWgsl from '../../shaders/mirror-atomic.wgsl?raw';
import gateWgsl from '../../shaders/mirror-gate.wgsl?raw';
import { err, HmmError } from '../errors.js';
import type { Scheduler } from '../sched/scheduler.js';
import { MIRROR_STORAGE_BUFFERS, withAbi } from './abi.js';
import { LEAF_POOLS, RANGE_POOLS, type LeafPool, type RangePool } from './page-table.js';
import type { MirrorOp } from './command.js';
import { withErrorScopes } from './gpu.js';

/** The engine's kernels: one per op, each op's report and record passes (mirrorReport, mirrorRecord), the probe, the fresh and cold variants. */
export type EnginePipelines = Record<MirrorOp | 'probe', GPUComputePipeline> & {
  /** mirror_read's first round over a range mapped everywhere: no done bitmap read or written (mirrorThreadFresh), per pool of the range's leaves (POOL). */
  readFresh: Record<RangePool, GPUComputePipeline>;
  /** Any op's round over a range the table maps nowhere: a thread per page, no word moved (mirrorCold). */
  cold: GPUComputePipeline;
  report: Record<MirrorOp, GPUComputePipeline>;
  record: Record<MirrorOp, GPUComputePipeline>;
  /** The stall gate of the application kernels and its indirect arguments (mirror-gate.wgsl). */
  gate: GPUComputePipeline;
  gateArgs: GPUComputePipeline;
  /** The gate's first pass: what each page of the command's range can be reached with. */
  gateReach: GPUComputePipeline;
};

/** One pipeline of a kernel file: its entry point and pipeline-overridable constants. */
export interface KernelVariant {
  entryPoint: string;
  constants?: Record<string, number>;
}

/** Runs fn in error scopes; a failure that is not an HmmError is EIO, naming `what`. */
async function compiling<T>(device: GPUDevice, sched: Scheduler, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await withErrorScopes(device, fn, sched);
  } catch (e) {
    if (e instanceof HmmError) throw e;
    throw err('EIO', `${what} failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

type EngineKernels = { layout: GPUBindGroupLayout; pipelines: EnginePipelines };

/**
 * The engine's kernels, compiled once per device and shared by every engine on it (a
 * device's mirrors, and the machines of one realm, which share the GPU device): a new
 * mirror compiles nothing, and on a JIT rasteriser (llvmpipe compiles a kernel at its
 * first dispatch) its first command pays no compile either. Only a finished compilation is
 * kept, so a failed one is retried by the next engine.
 */
const deviceKernels = new WeakMap<GPUDevice, EngineKernels>();

/** The shared bind group layout and the engine's own kernels. */
export async function createEnginePipelines(device: GPUDevice, label: string, sched: Scheduler): Promise<EngineKernels> {
  if (device.limits.maxStorageBuffersPerShaderStage < MIRROR_STORAGE_BUFFERS) {
    throw err('ENODEV', `${label}: the kernels bind ${MIRROR_STORAGE_BUFFERS} storage buffers; this device allows ${device.limits.maxStorageBuffersPerShaderStage} per stage`);
  }
  return compiling(device, sched, `${label}: creating the mirror engine`, async () => {
    const have = deviceKernels.get(device);
    if (have !== undefined) {
      // The same waits as a compilation (one per kernel file): under a SeededScheduler an
      // engine's creation then takes the same steps whether the kernels were cached or not,
      // so a seed replays the same interleaving in any test order.
      await Promise.all(['mirror-access.wgsl', 'mirror-atomic.wgsl', 'mirror-gate.wgsl'].map(() => sched.wait(Promise.resolve(), `${label}: createComputePipelineAsync`)));
      return have;
    }
    const made = await compileEngineKernels(device, label, sched);
    deviceKernels.set(device, made);
    return made;
  });
}

async function compileEngineKernels(device: GPUDevice, label: string, sched: Scheduler): Promise<EngineKernels> {
  const layout = device.createBindGroupLayout({
    label: `${label} bind group layout`,
    entries: [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
      { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } },
      ...[2, 3, 4, 5, 6, 7, 8].map((binding): GPUBindGroupLayoutEntry => (
        { binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } })),
    ],
  });
  const access = ['mirror_read', 'mirror_write', 'mirror_probe', 'report_read', 'report_write', 'record_read', 'record_write', 'mirror_cold'];
  const [[read, write, probe, reportRead, reportWrite, recordRead, recordWrite, cold, ...fresh], [atomic, reportAtomic, recordAtomic], [gate, gateArgs, gateReach]] = await Promise.all([
    compile(device, layout, label, 'mirror-access.wgsl', accessWgsl, [...access.map((entryPoint) => ({ entryPoint })), ...perPool({ entryPoint: 'mirror_read_fresh' })], sched),
    compile(device, layout, label, 'mirror-atomic.wgsl', atomicWgsl, ['mirror_atomic_inc', 'report_atomic', 'record_atomic'].map((entryPoint) => ({ entryPoint })), sched),
    compile(device, layout, label, 'mirror-gate.wgsl', gateWgsl, ['gate', 'gate_args', 'gate_reach'].map((entryPoint) => ({ entryPoint })), sched),
  ]);
  return {
    layout,
    pipelines: {
      read, write, probe, atomic, cold, gate, gateArgs, gateReach,
      readFresh: byPool(RANGE_POOLS, fresh, 0),
      report: { read: reportRead, write: reportWrite, atomic: reportAtomic },
      record: { read: recordRead, write: recordWrite, atomic: recordAtomic },
    },
  };
}

/** A variant once per pool of `pools` (RANGE_POOLS, or LEAF_POOLS for a kernel through the range's leaves), in its order: the POOL override. */
function perPool(v: KernelVariant, pools: readonly string[] = RANGE_POOLS): KernelVariant[] {
  return pools.map((_, POOL) => ({ entryPoint: v.entryPoint, constants: { ...v.constants, POOL } }));
}

/** The pipelines perPool's variants compiled to, from `at` in `made`, by pool. */
function byPool<P extends string>(pools: readonly P[], made: readonly GPUComputePipeline[], at: number): Record<P, GPUComputePipeline> {
  return Object.fromEntries(pools.map((pool, k) => [pool, made[at + k]])) as Record<P, GPUComputePipeline>;
}

/** A kernel's pipeline and, compiled per pool of the range's leaves, one per LEAF_POOLS (the POOL override). */
export interface KernelPipelines {
  pipeline: GPUComputePipeline;
  byPool: Readonly<Record<LeafPool, GPUComputePipeline>> | null;
}

/**
 * Compiles `wgsl` (after the ABI constants and mirror-common.wgsl), one pipeline per variant;
 * `pooled`: once per LEAF_POOLS instead (the POOL override), for a kernel whose host knows the
 * pool of the range's leaves each round (GpuPageTable.leafPool).
 */
export async function compileKernels(
  device: GPUDevice, layout: GPUBindGroupLayout, engineLabel: string, label: string, wgsl: string,
  variants: readonly KernelVariant[], sched: Scheduler, pooled = false,
): Promise<KernelPipelines[]> {
  const all = pooled ? variants.flatMap((v) => perPool(v, LEAF_POOLS)) : variants;
  const made = await compiling(device, sched, `${engineLabel}: compiling ${label}`, () => compile(device, layout, engineLabel, label, wgsl, all, sched));
  if (!pooled) return made.map((pipeline) => ({ pipeline, byPool: null }));
  return variants.map((_, k) => {
    const pools = byPool(LEAF_POOLS, made, LEAF_POOLS.length * k);
    return { pipeline: pools.mixed, byPool: pools };
  });
}

function compile(
  device: GPUDevice, layout: GPUBindGroupLayout, engineLabel: string, label: string, wgsl: string,
  variants: readonly KernelVariant[], sched: Scheduler,
): Promise<GPUComputePipeline[]> {
  const pipelineLayout = device.createPipelineLayout({ label: `${engineLabel} ${label} layout`, bindGroupLayouts: [layout] });
  const module = device.createShaderModule({ label, code: withAbi(wgsl) });
  return sched.wait(Promise.all(variants.map((v) => device.createComputePipelineAsync({
    label: `${engineLabel} ${v.entryPoint}${v.constants ? ` ${JSON.stringify(v.constants)}` : ''}`,
    layout: pipelineLayout,
    compute: { module, entryPoint: v.entryPoint, constants: v.constants },
  }))), `${engineLabel}: createComputePipelineAsync`);
}
