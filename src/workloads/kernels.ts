/**
 * The workload kernels (shaders/workloads.wgsl) compiled for one mirror engine — against
 * its bind group layout, so a workload command runs through the engine's round machinery
 * (flush, dispatch, fault drain, replay) exactly like the driver's own read/write commands.
 * One entry point (`workload`), one pipeline per workload selected by its override
 * constant KIND. Compiled once per engine, on first use.
 */
import workloadsWgsl from '../../shaders/workloads.wgsl?raw';
import type { MirrorEngine, MirrorKernel } from '../device/mirror-engine.js';
import { SYNTHETIC_WORKLOADS, type SyntheticWorkload } from './names.js';
import { WORKLOAD_KINDS } from './patterns.js';

/** The WGSL's KIND_* constants, from WORKLOAD_KINDS (TS is their single source). */
function kindConstants(): string {
  return SYNTHETIC_WORKLOADS.map((w) => `const KIND_${w.toUpperCase()}: u32 = ${WORKLOAD_KINDS[w]}u;\n`).join('');
}

export type WorkloadKernels = Readonly<Record<SyntheticWorkload, MirrorKernel>>;

const compiled = new WeakMap<MirrorEngine, Promise<WorkloadKernels>>();

export function workloadKernels(engine: MirrorEngine): Promise<WorkloadKernels> {
  let p = compiled.get(engine);
  if (p === undefined) {
    const variants = SYNTHETIC_WORKLOADS.map((w) => ({ entryPoint: 'workload', constants: { KIND: WORKLOAD_KINDS[w] } }));
    p = engine.createKernels('workloads.wgsl', kindConstants() + workloadsWgsl, variants, { rangeLeaves: true }).then((ks) => {
      const out = {} as Record<SyntheticWorkload, MirrorKernel>;
      SYNTHETIC_WORKLOADS.forEach((w, k) => { out[w] = ks[k]; });
      return out;
    });
    compiled.set(engine, p);
    p.catch(() => compiled.delete(engine));
  }
  return p;
}
