/**
 * Rodinia pathfinder (pathfinder.cu): dynamic programming down a rows × cols grid of weights
 * (0–9), pyramid height 10: each launch advances 10 rows, reading gpuWall's next 10 rows and
 * ping-ponging between gpuResult[0] and gpuResult[1]. UVM_Smart's input: 50,000 columns ×
 * 200 rows (20 launches), 38.5 MB; --size scales the columns.
 */
import pathfinderWgsl from '../../../shaders/app-pathfinder.wgsl?raw';
import type { AppDef } from './def.js';
import { layout, POISON_U32, Rng, scaled, type AppArray, type AppProgram } from './program.js';

const ROWS = 200;
const PYRAMID_HEIGHT = 10;
const SEG = 16;
const DEFAULT_COLS = 50000;

const arraysOf = (cols: number): Omit<AppArray, 'offset'>[] => [
  { name: 'gpuResult[0]', length: cols, kind: 'i32' },
  { name: 'gpuResult[1]', length: cols, kind: 'i32' },
  { name: 'gpuWall', length: (ROWS - 1) * cols, kind: 'i32' },
];

function program(sizeMiB: number, seed: number): AppProgram {
  const cols = scaled('pathfinder', sizeMiB, PATHFINDER.defaultMiB, DEFAULT_COLS, 1, 100, 100);
  const { arrays, pages, at } = layout(arraysOf(cols));
  const result = [at['gpuResult[0]'].offset, at['gpuResult[1]'].offset];
  const wall = at.gpuWall.offset;
  return {
    shape: `${cols} columns × ${ROWS} rows, pyramid height ${PYRAMID_HEIGHT} (${Math.ceil((ROWS - 1) / PYRAMID_HEIGHT)} launches)`,
    arrays, pages, kernelWrites: [true],
    initial() {
      const mem = new Uint32Array(pages * 1024);
      const rng = new Rng(seed, 7);
      // init(): data[i][j] = rand() % 10; row 0 is gpuResult[0], the rest gpuWall.
      for (let j = 0; j < cols; j++) mem[result[0] + j] = rng.below(10);
      for (let k = 0; k < (ROWS - 1) * cols; k++) mem[wall + k] = rng.below(10);
      mem.fill(POISON_U32, result[1], result[1] + cols);
      return mem;
    },
    async run(host) {
      let src = 0;
      for (let t = 0; t < ROWS - 1; t += PYRAMID_HEIGHT) {
        const iters = Math.min(PYRAMID_HEIGHT, ROWS - t - 1);
        await host.launch(0, [cols, t, iters, wall, result[src], result[1 - src]], Math.ceil(cols / SEG));
        src = 1 - src;
      }
    },
    cpu(_k, p, _inv, mem) {
      const [, start, iters, , src, dst] = p;
      let prev = Int32Array.from(mem.subarray(src, src + cols));
      for (let k = 0; k < iters; k++) {
        const row = wall + cols * (start + k);
        const next = new Int32Array(cols);
        for (let x = 0; x < cols; x++) {
          next[x] = Math.min(prev[Math.max(x - 1, 0)], prev[x], prev[Math.min(x + 1, cols - 1)]) + (mem[row + x] | 0);
        }
        prev = next;
      }
      mem.set(new Uint32Array(prev.buffer), dst);
    },
  };
}

export const PATHFINDER: AppDef = {
  name: 'pathfinder',
  suite: 'Rodinia',
  pattern: 'row-by-row dynamic programming: each launch streams the next 10 rows of the wall once, ping-pong between two result rows',
  defaultMiB: 38.5,
  uvmSmartMB: 38.5,
  kernels: ['dynproc_kernel'],
  wgsl: pathfinderWgsl,
  program,
};
