/**
 * A pointer chase (gpu_ext's microbenchmark, UVM studies' latency probe): 1,024 chasers each
 * follow 64 links of one random cycle through every word of the buffer (Sattolo's algorithm,
 * from the seed), so nearly every hop lands on another page and no two hops of a chaser can
 * fault together. Not in UVM_Smart's set; default 8 MiB (the chain), like its 4–12 MB inputs.
 */
import chaseWgsl from '../../../shaders/app-pointer-chase.wgsl?raw';
import type { AppDef } from './def.js';
import { layout, POISON_U32, Rng, scaled, type AppArray, type AppProgram } from './program.js';

const CHASERS = 1024;
const HOPS = 64;
const DEFAULT_WORDS = 2 * 1024 * 1024;

const arraysOf = (words: number): Omit<AppArray, 'offset'>[] => [
  { name: 'next', length: words, kind: 'u32' },
  { name: 'out', length: CHASERS, kind: 'u32' },
];

function program(sizeMiB: number, seed: number): AppProgram {
  const words = scaled('pointer-chase', sizeMiB, POINTER_CHASE.defaultMiB, DEFAULT_WORDS, 1, 1024, 4096);
  const { arrays, pages, at } = layout(arraysOf(words));
  const next = at.next.offset;
  const out = at.out.offset;
  const rng = new Rng(seed, 10);
  const starts = Uint32Array.from({ length: CHASERS }, () => rng.below(words));
  return {
    shape: `${CHASERS} chasers × ${HOPS} hops over ${words} words`, arrays, pages, kernelWrites: [true],
    initial() {
      const mem = new Uint32Array(pages * 1024);
      // Sattolo: a uniformly random single cycle.
      const perm = new Uint32Array(words);
      for (let k = 0; k < words; k++) perm[k] = k;
      const r = new Rng(seed, 9);
      for (let k = words - 1; k > 0; k--) {
        const j = r.below(k);
        const t = perm[k];
        perm[k] = perm[j];
        perm[j] = t;
      }
      mem.set(perm, next);
      mem.fill(POISON_U32, out, out + CHASERS);
      return mem;
    },
    async run(host) {
      const state = new Uint32Array(2 * CHASERS);
      for (let i = 0; i < CHASERS; i++) state[2 * i] = starts[i];
      await host.launch(0, [HOPS, next, out], CHASERS, state);
    },
    cpu(_k, _p, _inv, mem) {
      for (let i = 0; i < CHASERS; i++) {
        let pos = starts[i];
        for (let k = 0; k < HOPS; k++) pos = mem[next + pos];
        mem[out + i] = pos;
      }
    },
  };
}

export const POINTER_CHASE: AppDef = {
  name: 'pointer-chase',
  suite: 'microbenchmark',
  pattern: 'dependent random loads: 1,024 chasers × 64 hops along one random cycle through the buffer, a fault per hop',
  defaultMiB: 8,
  uvmSmartMB: null,
  kernels: ['chase'],
  wgsl: chaseWgsl,
  program,
};
