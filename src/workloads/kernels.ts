/**
 * The workload kernels (shaders/workloads.wgsl) compiled for one mirror engine — against
 * its bind group layout, so a workload command runs through the engine's round machinery
 * (flush, dispatch, fault drain, replay) exactly like the driver's own read/write commands.
 * Compiled once per engine, on first use.
 */
import workloadsWgsl from '../../shaders/workloads.wgsl?raw';
import type { MirrorEngine, MirrorKernel } from '../device/mirror-engine.js';
import { WORKLOADS, type WorkloadName } from './names.js';
import { ENTRY_POINTS } from './patterns.js';

export type WorkloadKernels = Readonly<Record<WorkloadName, MirrorKernel>>;

const compiled = new WeakMap<MirrorEngine, Promise<WorkloadKernels>>();

export function workloadKernels(engine: MirrorEngine): Promise<WorkloadKernels> {
  let p = compiled.get(engine);
  if (p === undefined) {
    p = engine.createKernels('workloads.wgsl', workloadsWgsl, WORKLOADS.map((w) => ENTRY_POINTS[w])).then((ks) => {
      const out = {} as Record<WorkloadName, MirrorKernel>;
      WORKLOADS.forEach((w, k) => { out[w] = ks[k]; });
      return out;
    });
    compiled.set(engine, p);
    p.catch(() => compiled.delete(engine));
  }
  return p;
}
