/**
 * Rodinia srad_v2 (srad.cu): speckle-reducing anisotropic diffusion of a rows × cols image,
 * `NITER` iterations of two launches; before each, the host reads the region of interest
 * (rows and columns 0–127) of J from managed memory to compute q0sqr, as srad.cu's loop does.
 * UVM_Smart's input: 1024 × 1024 (its 4 MB counts J, the one managed array; C and the four
 * derivative arrays are cudaMalloc'd device memory there, mirrored here too: 24 MiB).
 */
import sradWgsl from '../../../shaders/app-srad.wgsl?raw';
import type { AppDef } from './def.js';
import { bits, f32, fr, layout, POISON_F32, Rng, scaled, type AppArray, type AppProgram } from './program.js';

const DEFAULT_N = 1024;
const NITER = 4;
const LAMBDA = fr(0.5);
const ROI = 128;
const NAMES = ['J', 'C', 'E_C', 'W_C', 'N_C', 'S_C'] as const;

const arraysOf = (n: number): Omit<AppArray, 'offset'>[] => NAMES.map((name) => ({ name, length: n * n, kind: 'f32', tol: 1e-3 }));

function program(sizeMiB: number, seed: number): AppProgram {
  const n = scaled('srad', sizeMiB, SRAD.defaultMiB, DEFAULT_N, 2, 16, 16);
  const { arrays, pages, at } = layout(arraysOf(n));
  const [J, C, EC, WC, NC, SC] = NAMES.map((k) => at[k].offset);
  const roi = Math.min(ROI, n);
  return {
    shape: `${n}×${n} image, ${NITER} iterations (${2 * NITER} launches)`, arrays, pages, kernelWrites: [true, true],
    initial() {
      const mem = new Uint32Array(pages * 1024);
      const f = f32(mem);
      const rng = new Rng(seed, 11);
      // random_matrix, then J = exp(I).
      for (let k = 0; k < n * n; k++) f[J + k] = Math.exp(rng.unit());
      for (const a of [C, EC, WC, NC, SC]) mem.fill(POISON_F32, a, a + n * n);
      return mem;
    },
    async run(host) {
      for (let it = 0; it < NITER; it++) {
        let sum = 0;
        let sum2 = 0;
        for (let r = 0; r < roi; r++) {
          const row = new Float32Array((await host.read(J + r * n, roi)).buffer);
          for (let q = 0; q < roi; q++) {
            sum = fr(sum + row[q]);
            sum2 = fr(sum2 + fr(row[q] * row[q]));
          }
        }
        const size = roi * roi;
        const mean = fr(sum / size);
        const vr = fr(fr(sum2 / size) - fr(mean * mean));
        const q0sqr = fr(vr / fr(mean * mean));
        const p = [n, n, J, C, EC, WC, NC, SC, bits(q0sqr), bits(LAMBDA)];
        await host.launch(0, p, n * n);
        await host.launch(1, p, n * n);
      }
    },
    cpu(kernel, p, _inv, mem) {
      const f = f32(mem);
      const q0sqr = new Float32Array(new Uint32Array([p[8]]).buffer)[0];
      for (let y = 0; y < n; y++) {
        for (let x = 0; x < n; x++) {
          const k = y * n + x;
          const iN = Math.max(y - 1, 0) * n + x;
          const iS = Math.min(y + 1, n - 1) * n + x;
          const iW = y * n + Math.max(x - 1, 0);
          const iE = y * n + Math.min(x + 1, n - 1);
          if (kernel === 0) {
            const jc = f[J + k];
            const nn = fr(f[J + iN] - jc);
            const s = fr(f[J + iS] - jc);
            const w = fr(f[J + iW] - jc);
            const e = fr(f[J + iE] - jc);
            const g2 = fr(fr(fr(fr(fr(nn * nn) + fr(s * s)) + fr(w * w)) + fr(e * e)) / fr(jc * jc));
            const l = fr(fr(fr(fr(nn + s) + w) + e) / jc);
            const num = fr(fr(0.5 * g2) - fr(0.0625 * fr(l * l)));
            let den = fr(1 + fr(0.25 * l));
            const qsqr = fr(num / fr(den * den));
            den = fr(fr(qsqr - q0sqr) / fr(q0sqr * fr(1 + q0sqr)));
            const cv = Math.min(1, Math.max(0, fr(1 / fr(1 + den))));
            f[C + k] = cv;
            f[EC + k] = e;
            f[WC + k] = w;
            f[NC + k] = nn;
            f[SC + k] = s;
          } else {
            const cc = f[C + k];
            const d = fr(fr(fr(fr(cc * f[NC + k]) + fr(f[C + iS] * f[SC + k])) + fr(cc * f[WC + k])) + fr(f[C + iE] * f[EC + k]));
            f[J + k] = fr(f[J + k] + fr(fr(0.25 * LAMBDA) * d));
          }
        }
      }
    },
  };
}

export const SRAD: AppDef = {
  name: 'srad',
  suite: 'Rodinia',
  pattern: '5-point stencil in two launches an iteration (derivatives out to 5 arrays, then the update of J in place); the host reads a 128×128 corner of J before each',
  defaultMiB: 4,
  uvmSmartMB: 4,
  kernels: ['srad_cuda_1', 'srad_cuda_2'],
  wgsl: sradWgsl,
  program,
};
