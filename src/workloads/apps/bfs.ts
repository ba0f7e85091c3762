/**
 * Rodinia bfs (bfs.cu): breadth-first search from node 0, level-synchronous — per level,
 * Kernel (expand the frontier) then Kernel2 (the next frontier), until Kernel2 updated
 * nothing. The graph is generated from the seed: UVM_Smart's graph has 261,444 nodes and
 * 1,568,420 edges (9.75 MB); ours has the same number of nodes, 6 edges a node (degrees 4–8),
 * the first edge of node u to u + 1 (so every node is reached) and the rest uniformly random,
 * so its levels (about 8) are a random graph's.
 */
import bfsWgsl from '../../../shaders/app-bfs.wgsl?raw';
import { IO_OUT, layout, POISON_U32, Rng, scaled, type AppProgram } from './program.js';
import type { AppDef } from './def.js';

const DEFAULT_NODES = 261444;
const DEGREE = 6;

function program(sizeMiB: number, seed: number): AppProgram {
  const n = scaled('bfs', sizeMiB, BFS.defaultMiB, DEFAULT_NODES, 1, 1, 16);
  const edgesN = DEGREE * n;
  const { arrays, pages, at } = layout([
    { name: 'graph_nodes', length: 2 * n, kind: 'u32' },
    { name: 'graph_mask', length: n, kind: 'u8' },
    { name: 'updating_graph_mask', length: n, kind: 'u8' },
    { name: 'graph_visited', length: n, kind: 'u8' },
    { name: 'graph_edges', length: edgesN, kind: 'u32' },
    { name: 'cost', length: n, kind: 'i32' },
  ]);
  const off = (name: string): number => at[name].offset;
  const params = [n, off('graph_nodes'), off('graph_mask'), off('updating_graph_mask'), off('graph_visited'), off('graph_edges'), off('cost')];
  const bytes = (mem: Uint8Array, name: string): Uint8Array => mem.subarray(off(name) * 4, off(name) * 4 + n);
  return {
    shape: `graph of ${n} nodes, ${edgesN} edges`,
    arrays, pages, kernelWrites: [true, true],
    initial() {
      const mem = new Uint32Array(pages * 1024);
      const rng = new Rng(seed, 2);
      // Degrees 6 + a(u) - a(u-1), a in 0..2: 4 to 8, exactly 6n in all.
      const a = Uint8Array.from({ length: n }, () => rng.below(3));
      const nodes = off('graph_nodes');
      const edges = off('graph_edges');
      let e = 0;
      for (let u = 0; u < n; u++) {
        const deg = DEGREE + a[u] - a[(u + n - 1) % n];
        mem[nodes + 2 * u] = e;
        mem[nodes + 2 * u + 1] = deg;
        mem[edges + e++] = (u + 1) % n;
        for (let k = 1; k < deg; k++) mem[edges + e++] = rng.below(n);
      }
      const b = new Uint8Array(mem.buffer);
      bytes(b, 'graph_mask')[0] = 1;
      bytes(b, 'graph_visited')[0] = 1;
      // Rodinia starts cost at -1; no kernel reads the cost of a node not yet reached, so
      // every node's must be written: start them poisoned.
      mem.fill(POISON_U32, off('cost'), off('cost') + n);
      mem[off('cost')] = 0;
      return mem;
    },
    async run(host) {
      for (;;) {
        await host.launch(0, params, n);
        const io = await host.launch(1, params, n);
        if (io[IO_OUT] === 0) break;
      }
    },
    cpu(kernel, _p, _invocations, mem, io) {
      const b = new Uint8Array(mem.buffer, mem.byteOffset, mem.byteLength);
      const mask = bytes(b, 'graph_mask');
      const upd = bytes(b, 'updating_graph_mask');
      const vis = bytes(b, 'graph_visited');
      const nodes = off('graph_nodes');
      const edges = off('graph_edges');
      const cost = off('cost');
      for (let tid = 0; tid < n; tid++) {
        if (kernel === 0) {
          if (!mask[tid]) continue;
          mask[tid] = 0;
          const start = mem[nodes + 2 * tid];
          const end = start + mem[nodes + 2 * tid + 1];
          for (let k = start; k < end; k++) {
            const id = mem[edges + k];
            if (!vis[id]) {
              mem[cost + id] = mem[cost + tid] + 1;
              upd[id] = 1;
            }
          }
        } else if (upd[tid]) {
          mask[tid] = 1;
          vis[tid] = 1;
          upd[tid] = 0;
          io[IO_OUT] = 1;
        }
      }
    },
  };
}

export const BFS: AppDef = {
  name: 'bfs',
  suite: 'Rodinia',
  pattern: 'level-synchronous graph traversal: frontier flags streamed, edge lists read where the frontier is, neighbours\' flags and costs scattered at random; 2 launches a level',
  defaultMiB: 9.75,
  uvmSmartMB: 9.75,
  kernels: ['Kernel', 'Kernel2'],
  wgsl: bfsWgsl,
  atomicMemory: true,
  program,
};
