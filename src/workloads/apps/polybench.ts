/**
 * PolyBench/GPU (Grauer-Gray et al., InPar 2012): 2DCONV, ATAX, FDTD-2D, GEMM — one
 * module each would be four near-copies of the same few lines, so they share this one; each
 * has its own shader (shaders/app-<name>.wgsl). Sizes are UVM_Smart's (benchmark_workingset.txt:
 * 2DCONV 1024², ATAX 1200², FDTD-2D 1200² × 5 steps); GEMM, not in its set, PolyBench/GPU's
 * 512³. Initial data are PolyBench's init_array formulas (2DCONV's and GEMM's random
 * inputs from the seed), the kernels its CUDA ones, the constants its #defines.
 */
import convWgsl from '../../../shaders/app-2dconv.wgsl?raw';
import ataxWgsl from '../../../shaders/app-atax.wgsl?raw';
import fdtdWgsl from '../../../shaders/app-fdtd-2d.wgsl?raw';
import gemmWgsl from '../../../shaders/app-gemm.wgsl?raw';
import type { AppDef } from './def.js';
import { bits, f32, fr, layout, POISON_F32, Rng, scaled, type AppArray, type AppProgram } from './program.js';

const STEP = 16;

/** The size (MiB) of a layout: the default size is the footprint of the default input. */
function mib(arrays: Parameters<typeof layout>[0]): number {
  return layout(arrays).pages / 256;
}

// ---- 2DCONV ----------------------------------------------------------------------------

const CONV_N = 1024;
const convArrays = (n: number): Omit<AppArray, 'offset'>[] => [
  { name: 'A', length: n * n, kind: 'f32' },
  { name: 'B', length: n * n, kind: 'f32', tol: 1e-5 },
];
const CONV_W = [0.2, 0.5, -0.8, -0.3, 0.6, -0.9, 0.4, 0.7, 0.1].map(fr);

function conv(sizeMiB: number, seed: number): AppProgram {
  const n = scaled('2dconv', sizeMiB, CONV2D.defaultMiB, CONV_N, 2, STEP, STEP);
  const { arrays, pages, at } = layout(convArrays(n));
  const A = at.A.offset;
  const B = at.B.offset;
  return {
    shape: `${n}×${n}`, arrays, pages, kernelWrites: [true],
    initial() {
      const mem = new Uint32Array(pages * 1024);
      const f = f32(mem);
      const rng = new Rng(seed, 3);
      for (let k = 0; k < n * n; k++) f[A + k] = rng.unit();
      mem.fill(POISON_F32, B, B + n * n);
      return mem;
    },
    async run(host) {
      await host.launch(0, [n, n, A, B], n * n);
    },
    cpu(_k, _p, _inv, mem) {
      const f = f32(mem);
      for (let i = 1; i < n - 1; i++) {
        for (let j = 1; j < n - 1; j++) {
          let s = 0;
          let w = 0;
          for (let di = -1; di <= 1; di++) {
            for (let dj = -1; dj <= 1; dj++) {
              const term = fr(CONV_W[w++] * f[A + (i + di) * n + j + dj]);
              s = w === 1 ? term : fr(s + term);
            }
          }
          f[B + i * n + j] = s;
        }
      }
    },
  };
}

export const CONV2D: AppDef = {
  name: '2dconv', suite: 'PolyBench/GPU',
  pattern: '3×3 convolution: each output reads 3 consecutive rows of the input, one pass, input and output streamed',
  defaultMiB: mib(convArrays(CONV_N)), uvmSmartMB: 8, kernels: ['Convolution2D_kernel'], wgsl: convWgsl, program: conv,
};

// ---- ATAX ------------------------------------------------------------------------------

const ATAX_N = 1200;
const ataxArrays = (n: number): Omit<AppArray, 'offset'>[] => [
  { name: 'A', length: n * n, kind: 'f32' },
  { name: 'x', length: n, kind: 'f32' },
  { name: 'y', length: n, kind: 'f32', tol: 1e-4 },
  { name: 'tmp', length: n, kind: 'f32', tol: 1e-4 },
];

function atax(sizeMiB: number, _seed: number): AppProgram {
  const n = scaled('atax', sizeMiB, ATAX.defaultMiB, ATAX_N, 2, STEP, STEP);
  const { arrays, pages, at } = layout(ataxArrays(n));
  const [A, x, y, tmp] = [at.A.offset, at.x.offset, at.y.offset, at.tmp.offset];
  const params = [n, n, A, x, y, tmp];
  return {
    shape: `${n}×${n}`, arrays, pages, kernelWrites: [true, true],
    initial() {
      const mem = new Uint32Array(pages * 1024);
      const f = f32(mem);
      // atax.cu's init_array: x[i] = i·π, A[i][j] = i·(j+1) / NX.
      for (let i = 0; i < n; i++) {
        f[x + i] = i * Math.PI;
        for (let j = 0; j < n; j++) f[A + i * n + j] = (i * (j + 1)) / n;
      }
      mem.fill(POISON_F32, y, y + n);
      mem.fill(POISON_F32, tmp, tmp + n);
      return mem;
    },
    async run(host) {
      await host.launch(0, params, n);
      await host.launch(1, params, n);
    },
    cpu(kernel, _p, _inv, mem) {
      const f = f32(mem);
      for (let t = 0; t < n; t++) {
        let s = 0;
        for (let k = 0; k < n; k++) {
          s = kernel === 0 ? fr(s + fr(f[A + t * n + k] * f[x + k])) : fr(s + fr(f[A + k * n + t] * f[tmp + k]));
        }
        f[(kernel === 0 ? tmp : y) + t] = s;
      }
    },
  };
}

export const ATAX: AppDef = {
  name: 'atax', suite: 'PolyBench/GPU',
  pattern: 'y = Aᵀ(Ax): one launch reads A by rows, the next by columns (a page a step)',
  defaultMiB: 6.1875, uvmSmartMB: 6.1875, kernels: ['atax_kernel1', 'atax_kernel2'], wgsl: ataxWgsl, program: atax,
};

// ---- FDTD-2D ---------------------------------------------------------------------------

const FDTD_N = 1200;
const FDTD_TMAX = 5;
const fdtdArrays = (n: number): Omit<AppArray, 'offset'>[] => [
  { name: '_fict_', length: FDTD_TMAX, kind: 'f32' },
  { name: 'ex', length: n * (n + 1), kind: 'f32', tol: 1e-4 },
  { name: 'ey', length: (n + 1) * n, kind: 'f32', tol: 1e-4 },
  { name: 'hz', length: n * n, kind: 'f32', tol: 1e-4 },
];

function fdtd(sizeMiB: number, _seed: number): AppProgram {
  const n = scaled('fdtd-2d', sizeMiB, FDTD2D.defaultMiB, FDTD_N, 2, STEP, STEP);
  const { arrays, pages, at } = layout(fdtdArrays(n));
  const [fict, ex, ey, hz] = [at._fict_.offset, at.ex.offset, at.ey.offset, at.hz.offset];
  return {
    shape: `${n}×${n}, ${FDTD_TMAX} time steps (${3 * FDTD_TMAX} launches)`, arrays, pages, kernelWrites: [true, true, true],
    initial() {
      const mem = new Uint32Array(pages * 1024);
      const f = f32(mem);
      // fdtd2d.cu's init_arrays.
      for (let t = 0; t < FDTD_TMAX; t++) f[fict + t] = t;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n + 1; j++) f[ex + i * (n + 1) + j] = (i * (j + 1) + 1) / n;
      }
      for (let i = 0; i < n + 1; i++) {
        for (let j = 0; j < n; j++) f[ey + i * n + j] = (i * (j + 2) + 2) / n;
      }
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) f[hz + i * n + j] = (i * (j + 3) + 3) / n;
      }
      return mem;
    },
    async run(host) {
      for (let t = 0; t < FDTD_TMAX; t++) {
        for (let k = 0; k < 3; k++) await host.launch(k, [n, n, fict, ex, ey, hz, t], n * n);
      }
    },
    cpu(kernel, p, _inv, mem) {
      const f = f32(mem);
      const t = p[6];
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          if (kernel === 0) {
            f[ey + i * n + j] = i === 0 ? f[fict + t] : fr(f[ey + i * n + j] - fr(0.5 * fr(f[hz + i * n + j] - f[hz + (i - 1) * n + j])));
          } else if (kernel === 1) {
            if (j > 0) f[ex + i * (n + 1) + j] = fr(f[ex + i * (n + 1) + j] - fr(0.5 * fr(f[hz + i * n + j] - f[hz + i * n + j - 1])));
          } else if (i < n - 1 && j < n - 1) {
            const d = fr(fr(fr(f[ex + i * (n + 1) + j + 1] - f[ex + i * (n + 1) + j]) + f[ey + (i + 1) * n + j]) - f[ey + i * n + j]);
            f[hz + i * n + j] = fr(f[hz + i * n + j] - fr(fr(0.7) * d));
          }
        }
      }
    },
  };
}

export const FDTD2D: AppDef = {
  name: 'fdtd-2d', suite: 'PolyBench/GPU',
  pattern: '2-D finite-difference time domain: 3 launches a time step, each sweeping one field in place from its neighbours in the other two',
  defaultMiB: 18.0625, uvmSmartMB: 18.0625, kernels: ['fdtd_step1_kernel', 'fdtd_step2_kernel', 'fdtd_step3_kernel'],
  wgsl: fdtdWgsl, program: fdtd,
};

// ---- GEMM ------------------------------------------------------------------------------

const GEMM_N = 512;
const GEMM_ALPHA = 32412;
const GEMM_BETA = 2123;
const gemmArrays = (n: number): Omit<AppArray, 'offset'>[] => [
  { name: 'A', length: n * n, kind: 'f32' },
  { name: 'B', length: n * n, kind: 'f32' },
  { name: 'C', length: n * n, kind: 'f32', tol: 1e-4 },
];

function gemm(sizeMiB: number, seed: number): AppProgram {
  const n = scaled('gemm', sizeMiB, GEMM.defaultMiB, GEMM_N, 2, STEP, STEP);
  const { arrays, pages, at } = layout(gemmArrays(n));
  const [A, B, C] = [at.A.offset, at.B.offset, at.C.offset];
  return {
    shape: `${n}×${n}×${n}`, arrays, pages, kernelWrites: [true],
    initial() {
      const mem = new Uint32Array(pages * 1024);
      const f = f32(mem);
      const rng = new Rng(seed, 4);
      for (let k = 0; k < n * n; k++) {
        f[A + k] = rng.unit();
        f[B + k] = rng.unit();
        f[C + k] = rng.unit();
      }
      return mem;
    },
    async run(host) {
      await host.launch(0, [n, n, n, A, B, C, bits(GEMM_ALPHA), bits(GEMM_BETA)], n * n);
    },
    cpu(_k, _p, _inv, mem) {
      const f = f32(mem);
      const col = new Float32Array(n);
      for (let j = 0; j < n; j++) {
        for (let k = 0; k < n; k++) col[k] = f[B + k * n + j];
        for (let i = 0; i < n; i++) {
          let s = fr(f[C + i * n + j] * GEMM_BETA);
          for (let k = 0; k < n; k++) s = fr(s + fr(fr(GEMM_ALPHA * f[A + i * n + k]) * col[k]));
          f[C + i * n + j] = s;
        }
      }
    },
  };
}

export const GEMM: AppDef = {
  name: 'gemm', suite: 'PolyBench/GPU',
  pattern: 'C = αAB + βC, a thread an element: a row of A, a column of B (a page every other step at 512²), C in place',
  defaultMiB: mib(gemmArrays(GEMM_N)), uvmSmartMB: null, kernels: ['gemm_kernel'], wgsl: gemmWgsl, program: gemm,
};
