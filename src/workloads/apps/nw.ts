/**
 * Rodinia nw (needle.cu): Needleman-Wunsch global alignment of two random sequences of
 * length n (a 16 × 16-tiled (n+1)² score matrix, penalty 10), 2·n/16 - 1 launches, one per
 * anti-diagonal of tiles — so each launch touches a diagonal band of both matrices.
 * UVM_Smart's input: n = 1024 (127 launches, 8.125 MB). The substitution scores come from
 * a 10 × 10 symmetric matrix drawn from the seed (Rodinia indexes BLOSUM62 with residues
 * 1–10; any such table gives the same access pattern).
 */
import nwWgsl from '../../../shaders/app-nw.wgsl?raw';
import type { AppDef } from './def.js';
import { layout, POISON_U32, Rng, scaled, type AppArray, type AppProgram } from './program.js';

const BS = 16;
const DEFAULT_N = 1024;
const PENALTY = 10;

const arraysOf = (n: number): Omit<AppArray, 'offset'>[] => [
  { name: 'reference', length: (n + 1) * (n + 1), kind: 'i32' },
  { name: 'input_itemsets', length: (n + 1) * (n + 1), kind: 'i32' },
];

function program(sizeMiB: number, seed: number): AppProgram {
  const n = scaled('nw', sizeMiB, NW.defaultMiB, DEFAULT_N, 2, BS, BS);
  const cols = n + 1;
  const width = n / BS;
  const { arrays, pages, at } = layout(arraysOf(n));
  const ref = at.reference.offset;
  const items = at.input_itemsets.offset;
  return {
    shape: `2 sequences of ${n}, ${2 * width - 1} launches`, arrays, pages, kernelWrites: [true, true],
    initial() {
      const mem = new Uint32Array(pages * 1024);
      const rng = new Rng(seed, 8);
      const score = new Int32Array(11 * 11);
      for (let a = 1; a <= 10; a++) {
        for (let b = a; b <= 10; b++) {
          const s = a === b ? 4 + rng.below(8) : rng.below(9) - 4;
          score[a * 11 + b] = s;
          score[b * 11 + a] = s;
        }
      }
      const s1 = Int32Array.from({ length: cols }, () => 1 + rng.below(10));
      const s2 = Int32Array.from({ length: cols }, () => 1 + rng.below(10));
      for (let i = 1; i < cols; i++) {
        for (let j = 1; j < cols; j++) mem[ref + i * cols + j] = score[s1[i] * 11 + s2[j]] >>> 0;
      }
      // Row 0 and column 0: the gap penalties; the rest must be computed: poisoned.
      mem.fill(POISON_U32, items, items + cols * cols);
      for (let i = 0; i < cols; i++) {
        mem[items + i * cols] = (-i * PENALTY) >>> 0;
        mem[items + i] = (-i * PENALTY) >>> 0;
      }
      return mem;
    },
    async run(host) {
      for (let i = 1; i <= width; i++) await host.launch(0, [n, i, ref, items, PENALTY], i);
      for (let i = width - 1; i >= 1; i--) await host.launch(1, [n, i, ref, items, PENALTY], i);
    },
    cpu(kernel, p, invocations, mem) {
      const d = p[1];
      for (let b = 0; b < invocations; b++) {
        const bx = kernel === 0 ? b : b + width - d;
        const by = kernel === 0 ? d - 1 - b : width - b - 1;
        for (let i = by * BS + 1; i <= by * BS + BS; i++) {
          for (let j = bx * BS + 1; j <= bx * BS + BS; j++) {
            const diag = (mem[items + (i - 1) * cols + j - 1] | 0) + (mem[ref + i * cols + j] | 0);
            const left = (mem[items + i * cols + j - 1] | 0) - PENALTY;
            const up = (mem[items + (i - 1) * cols + j] | 0) - PENALTY;
            mem[items + i * cols + j] = Math.max(diag, left, up) >>> 0;
          }
        }
      }
    },
  };
}

export const NW: AppDef = {
  name: 'nw',
  suite: 'Rodinia',
  pattern: 'wavefront over 16×16 tiles: a launch per anti-diagonal, each touching a diagonal band of the score and reference matrices',
  defaultMiB: 8.125,
  uvmSmartMB: 8.125,
  kernels: ['needle_cuda_shared_1', 'needle_cuda_shared_2'],
  wgsl: nwWgsl,
  program,
};
