/**
 * The workloads by name: the vocabulary shared by the kernels (shaders/workloads.wgsl), the
 * CPU-side patterns and the layers above (the experiment's configs and CLI), which import it
 * from here — the workloads know nothing of the experiment.
 */
export type WorkloadName = 'stream' | 'strided' | 'random' | 'stencil' | 'gather' | 'pingpong' | 'hotset';
export const WORKLOADS: readonly WorkloadName[] = ['stream', 'strided', 'random', 'stencil', 'gather', 'pingpong', 'hotset'];
