/**
 * Rodinia hotspot (hotspot.cu): the chip's temperature on an n × n grid, `TOTAL_ITERATIONS`
 * steps of a 5-point thermal stencil, `PYRAMID_HEIGHT` steps per launch (the pyramid: each
 * cell reads the cone of cells within 2 steps), in 16 × 16 blocks, ping-ponging between MatrixTemp[0] and MatrixTemp[1], reading
 * MatrixPower every launch. UVM_Smart's input: 1024 × 1024, pyramid height 2, 8 iterations
 * (4 launches), 12 MB.
 */
import hotspotWgsl from '../../../shaders/app-hotspot.wgsl?raw';
import type { AppDef } from './def.js';
import { bits, f32, fr, layout, POISON_F32, Rng, scaled, type AppProgram } from './program.js';

const BS = 16;
const PYRAMID_HEIGHT = 2;
const TOTAL_ITERATIONS = 8;
const DEFAULT_N = 1024;
// hotspot.cu's chip (its #defines and main()'s constants).
const MAX_PD = 3.0e6;
const PRECISION = 0.001;
const SPEC_HEAT_SI = 1.75e6;
const K_SI = 100;
const FACTOR_CHIP = 0.5;
const T_CHIP = 0.0005;
const CHIP_HEIGHT = 0.016;
const CHIP_WIDTH = 0.016;
const AMB_TEMP = 80.0;

/** compute_tran_temp's constants for an n × n grid, as the kernel gets them (f32). */
export function hotspotConstants(n: number): { sdc: number; rx: number; ry: number; rz: number; amb: number } {
  const gh = CHIP_HEIGHT / n;
  const gw = CHIP_WIDTH / n;
  const cap = FACTOR_CHIP * SPEC_HEAT_SI * T_CHIP * gw * gh;
  const rx = gw / (2.0 * K_SI * T_CHIP * gh);
  const ry = gh / (2.0 * K_SI * T_CHIP * gw);
  const rz = T_CHIP / (K_SI * gh * gw);
  const maxSlope = MAX_PD / (FACTOR_CHIP * T_CHIP * SPEC_HEAT_SI);
  const step = PRECISION / maxSlope;
  return { sdc: fr(step / cap), rx: fr(1 / rx), ry: fr(1 / ry), rz: fr(1 / rz), amb: fr(AMB_TEMP) };
}

function program(sizeMiB: number, seed: number): AppProgram {
  const n = scaled('hotspot', sizeMiB, HOTSPOT.defaultMiB, DEFAULT_N, 2, BS, BS);
  const { arrays, pages, at } = layout([
    { name: 'MatrixPower', length: n * n, kind: 'f32' },
    { name: 'MatrixTemp[0]', length: n * n, kind: 'f32', tol: 1e-5 },
    { name: 'MatrixTemp[1]', length: n * n, kind: 'f32', tol: 1e-5 },
  ]);
  const power = at['MatrixPower'].offset;
  const temp = [at['MatrixTemp[0]'].offset, at['MatrixTemp[1]'].offset];
  const k = hotspotConstants(n);
  return {
    shape: `${n}×${n} grid, ${TOTAL_ITERATIONS} iterations (${TOTAL_ITERATIONS / PYRAMID_HEIGHT} launches of ${PYRAMID_HEIGHT})`,
    arrays, pages, kernelWrites: [true],
    initial() {
      const mem = new Uint32Array(pages * 1024);
      const f = f32(mem);
      const rng = new Rng(seed, 1);
      // Temperatures around 323–343 K and power up to 1e-3 per cell (the ranges of
      // Rodinia's temp_1024 / power_1024 inputs).
      for (let j = 0; j < n * n; j++) {
        f[temp[0] + j] = fr(323 + 20 * rng.unit());
        f[power + j] = fr(1e-3 * rng.unit());
      }
      mem.fill(POISON_F32, temp[1], temp[1] + n * n);
      return mem;
    },
    async run(host) {
      let src = 0;
      for (let t = 0; t < TOTAL_ITERATIONS; t += PYRAMID_HEIGHT) {
        const iters = Math.min(PYRAMID_HEIGHT, TOTAL_ITERATIONS - t);
        await host.launch(0, [n, iters, power, temp[src], temp[1 - src], bits(k.sdc), bits(k.rx), bits(k.ry), bits(k.rz), bits(k.amb)], n * n);
        src = 1 - src;
      }
    },
    cpu(_kernel, p, _invocations, mem) {
      // Every cell gets the serial stencil's value after `iters` steps (neighbours clamped
      // at the grid's edges), as in the WGSL (and in Rodinia's pyramid), in f32.
      const f = f32(mem);
      const [, iters, pw, src, dst] = p;
      let cur = f.slice(src, src + n * n);
      const nxt = new Float32Array(n * n);
      for (let it = 0; it < iters; it++) {
        for (let y = 0; y < n; y++) {
          const N = Math.max(y - 1, 0);
          const S = Math.min(y + 1, n - 1);
          for (let x = 0; x < n; x++) {
            const W = Math.max(x - 1, 0);
            const E = Math.min(x + 1, n - 1);
            const t = cur[y * n + x];
            const ns = fr(fr(fr(cur[S * n + x] + cur[N * n + x]) - fr(2 * t)) * k.ry);
            const ew = fr(fr(fr(cur[y * n + E] + cur[y * n + W]) - fr(2 * t)) * k.rx);
            const z = fr(fr(k.amb - t) * k.rz);
            nxt[y * n + x] = fr(t + fr(k.sdc * fr(fr(fr(f[pw + y * n + x] + ns) + ew) + z)));
          }
        }
        cur = nxt.slice();
      }
      f.set(cur, dst);
    },
  };
}

export const HOTSPOT: AppDef = {
  name: 'hotspot',
  suite: 'Rodinia',
  pattern: '5-point stencil, 2 steps a launch (a cell reads its 13-cell cone), 16×16 blocks, ping-pong between two grids, power read every launch',
  defaultMiB: 12,
  uvmSmartMB: 12,
  kernels: ['calculate_temp'],
  wgsl: hotspotWgsl,
  program,
};
