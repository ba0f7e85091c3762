/** The migration-policy lab (issue 9): interface, built-ins, loader, cost model, traces, simulator. */
export * from './types.js';
export * from './cost.js';
export * from './residency.js';
export * from './plan.js';
export * from './engine.js';
export * from './prefetch-tree.js';
export * from './thrashing.js';
export * from './eviction.js';
export * from './builtins.js';
export * from './loader.js';
export * from './trace.js';
export * from './sim.js';
export * from './workloads.js';
export * from './uvm-params.js';
export * from './service-loop.js';
