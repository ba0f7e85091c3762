/**
 * Rodinia backprop (backprop_cuda.cu): one training step of a 3-layer perceptron with n_in
 * inputs, 16 hidden units and 1 output — the input-to-hidden forward pass on the GPU
 * (per-block partial sums), the rest of the forward pass and the error terms on the host
 * (which reads the partial sums and row 0 of the weights from managed memory, and writes
 * hidden_delta into it), then the input-to-hidden weight update on the GPU. UVM_Smart's
 * input: n_in = 131,056 (17.56 MB: two 8.5 MB weight matrices, the input units, hidden_delta).
 */
import backpropWgsl from '../../../shaders/app-backprop.wgsl?raw';
import type { AppDef } from './def.js';
import { bits, f32, fr, layout, POISON_F32, Rng, scaled, type AppArray, type AppHost, type AppProgram } from './program.js';

const HID = 16;
const DEFAULT_IN = 131056;
// backprop.h
const ETA = fr(0.3);
const MOMENTUM = fr(0.3);
const TARGET = 0.1;

const arraysOf = (nIn: number): Omit<AppArray, 'offset'>[] => [
  { name: 'input_units', length: nIn + 1, kind: 'f32' },
  { name: 'input_weights', length: (nIn + 1) * (HID + 1), kind: 'f32', tol: 1e-4 },
  { name: 'input_prev_weights', length: (nIn + 1) * (HID + 1), kind: 'f32', tol: 1e-4 },
  { name: 'hidden_partial_sum', length: nIn, kind: 'f32', tol: 1e-4 },
  { name: 'hidden_delta', length: HID + 1, kind: 'f32', tol: 1e-3 },
];

const squash = (x: number): number => 1.0 / (1.0 + Math.exp(-x));

function program(sizeMiB: number, seed: number): AppProgram {
  const nIn = scaled('backprop', sizeMiB, BACKPROP.defaultMiB, DEFAULT_IN, 1, HID, HID);
  const blocks = nIn / HID;
  const { arrays, pages, at } = layout(arraysOf(nIn));
  const [units, w, oldw, partial, delta] = ['input_units', 'input_weights', 'input_prev_weights', 'hidden_partial_sum', 'hidden_delta'].map((k) => at[k].offset);
  const params = [blocks, units, w, oldw, partial, delta, bits(ETA), bits(MOMENTUM)];
  // The hidden-to-output weights (host memory in Rodinia's step too), from the seed.
  const rngH = new Rng(seed, 6);
  const who = Float32Array.from({ length: HID + 1 }, () => rngH.unit());

  /** The host's part between the kernels: bpnn_train_cuda's CPU code, on what the GPU left. */
  async function hostStep(host: AppHost): Promise<void> {
    const ps = new Float32Array((await host.read(partial, nIn)).buffer);
    const row0 = new Float32Array((await host.read(w, HID + 1)).buffer);
    const hidden = new Float64Array(HID + 1);
    hidden[0] = 1;
    for (let j = 1; j <= HID; j++) {
      let sum = 0;
      for (let k = 0; k < blocks; k++) sum = fr(sum + ps[k * HID + j - 1]);
      sum = fr(sum + row0[j]);
      hidden[j] = fr(squash(sum));
    }
    // bpnn_layerforward (hidden -> 1 output), bpnn_output_error, bpnn_hidden_error.
    let o = 0;
    for (let j = 0; j <= HID; j++) o += who[j] * hidden[j];
    o = squash(o);
    const deltaO = o * (1 - o) * (TARGET - o);
    const d = new Float32Array(HID + 1);
    for (let j = 1; j <= HID; j++) d[j] = hidden[j] * (1 - hidden[j]) * deltaO * who[j];
    await host.write(delta, new Uint32Array(d.buffer));
  }

  return {
    shape: `${nIn} input units, ${HID} hidden, 1 output`, arrays, pages, kernelWrites: [true, true],
    initial() {
      const mem = new Uint32Array(pages * 1024);
      const f = f32(mem);
      const rng = new Rng(seed, 5);
      for (let k = 1; k <= nIn; k++) f[units + k] = rng.unit();
      for (let k = 0; k < (nIn + 1) * (HID + 1); k++) f[w + k] = rng.unit();
      mem.fill(POISON_F32, partial, partial + nIn);
      mem.fill(POISON_F32, delta, delta + HID + 1);
      return mem;
    },
    async run(host) {
      await host.launch(0, params, blocks * 256);
      await hostStep(host);
      await host.launch(1, params, blocks * 256);
    },
    cpu(kernel, _p, _inv, mem) {
      const f = f32(mem);
      for (let by = 0; by < blocks; by++) {
        if (kernel === 0) {
          for (let ty = 0; ty < HID; ty++) {
            let s = 0;
            for (let r = 0; r < HID; r++) s = fr(s + fr(f[w + (HID + 1) * (HID * by + r + 1) + ty + 1] * f[units + HID * by + r + 1]));
            f[partial + by * HID + ty] = s;
          }
          continue;
        }
        for (let ty = 0; ty < HID; ty++) {
          for (let tx = 0; tx < HID; tx++) {
            const index = (HID + 1) * HID * by + (HID + 1) * ty + tx + 1 + (HID + 1);
            const dx = f[delta + tx + 1];
            const d = fr(fr(fr(ETA * dx) * f[units + HID * by + ty + 1]) + fr(MOMENTUM * f[oldw + index]));
            f[w + index] = fr(f[w + index] + d);
            f[oldw + index] = d;
            if (by === 0 && ty === 0) {
              const d0 = fr(fr(ETA * dx) + fr(MOMENTUM * f[oldw + tx + 1]));
              f[w + tx + 1] = fr(f[w + tx + 1] + d0);
              f[oldw + tx + 1] = d0;
            }
          }
        }
      }
    },
  };
}

export const BACKPROP: AppDef = {
  name: 'backprop',
  suite: 'Rodinia',
  pattern: 'two sweeps over the weight matrix in 16-row blocks: read (forward pass) then read-modify-write with its momentum copy (weight update); host reads the partial sums between',
  defaultMiB: 17.5625,
  uvmSmartMB: 17.5625,
  kernels: ['bpnn_layerforward_CUDA', 'bpnn_adjust_weights_cuda'],
  wgsl: backpropWgsl,
  program,
};
