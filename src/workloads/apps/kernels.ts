/**
 * An application workload's kernels compiled for one mirror engine: shaders/app-access.wgsl
 * (the access layer and the entry point), the pools' declarations (plain or atomic words),
 * then the workload's own file — one pipeline per kernel, selected by the override constant
 * KERNEL. Compiled once per engine and workload, on first use.
 */
import accessWgsl from '../../../shaders/app-access.wgsl?raw';
import atomicWgsl from '../../../shaders/app-mem-atomic.wgsl?raw';
import plainWgsl from '../../../shaders/app-mem-plain.wgsl?raw';
import type { MirrorEngine, MirrorKernel } from '../../device/mirror-engine.js';
import type { AppDef } from './def.js';

const compiled = new WeakMap<MirrorEngine, Map<string, Promise<MirrorKernel[]>>>();

export function appKernels(engine: MirrorEngine, def: AppDef): Promise<MirrorKernel[]> {
  let perEngine = compiled.get(engine);
  if (perEngine === undefined) {
    perEngine = new Map();
    compiled.set(engine, perEngine);
  }
  let p = perEngine.get(def.name);
  if (p === undefined) {
    const src = accessWgsl + (def.atomicMemory ? atomicWgsl : plainWgsl) + def.wgsl;
    const variants = def.kernels.map((_, k) => ({ entryPoint: 'app', constants: { KERNEL: k } }));
    const q = engine.createKernels(`app-${def.name}.wgsl`, src, variants, { stallGate: true });
    perEngine.set(def.name, q);
    q.catch(() => perEngine.delete(def.name));
    p = q;
  }
  return p;
}
