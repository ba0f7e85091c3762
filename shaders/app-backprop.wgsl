// app-backprop.wgsl — Rodinia backprop (backprop_cuda_kernel.cu), one invocation per CUDA
// thread of 16 × 16 blocks: block `by` covers input rows 16·by + 1 .. 16·by + 16, thread
// (ty, tx) the weight of row 16·by + ty + 1 to hidden unit tx + 1 (the weights are a
// (n_in + 1) × 17 matrix, row-major).
//   kernel 0, bpnn_layerforward_CUDA: every thread loads its input unit and weight (the
//     block's shared tile); thread (ty, 0) stores hidden_partial_sum[16·by + ty], the sum
//     over the block's 16 rows of weight · input for hidden unit ty + 1 (Rodinia reduces the
//     tile in shared memory; it also writes the reduced tile back over the weights, which
//     the host never reads, and that is left out here so that the launch stays
//     deterministic under replay);
//   kernel 1, bpnn_adjust_weights_cuda: every weight and its momentum term updated from
//     hidden_delta and the input unit; block 0's row ty = 0 threads also update row 0.
//
// Params: 0 blocks, 1 input_units, 2 input_weights, 3 input_prev_weights,
// 4 hidden_partial_sum, 5 hidden_delta (word offsets), 6 ETA, 7 MOMENTUM (f32).

const HID: u32 = 16u;

fn invocation(c: ptr<function, Acc>, i: u32) -> bool {
  let units = param(1u);
  let w = param(2u);
  let oldw = param(3u);
  let partial = param(4u);
  let delta = param(5u);
  let by = i / 256u;
  let ty = (i / 16u) % 16u;
  let tx = i % 16u;
  let index = (HID + 1u) * HID * by + (HID + 1u) * ty + tx + 1u + (HID + 1u);
  let indexIn = HID * by + ty + 1u;
  if (KERNEL == 0u) {
    reach(c, units + indexIn, false);
    reach(c, w + index, false);
    if (tx == 0u) {
      reachRun(c, units + HID * by + 1u, HID, false);
      for (var r = 0u; r < HID; r++) {
        reach(c, w + (HID + 1u) * (HID * by + r + 1u) + ty + 1u, false);
      }
      reach(c, partial + by * HID + ty, true);
    }
    if (!reached(c)) { return false; }
    // The thread's loads into the block's tile.
    _ = ldf(c, w + index) * ldf(c, units + indexIn);
    if (tx == 0u) {
      var s = 0.0;
      for (var r = 0u; r < HID; r++) {
        s += ldf(c, w + (HID + 1u) * (HID * by + r + 1u) + ty + 1u) * ldf(c, units + HID * by + r + 1u);
      }
      stf(c, partial + by * HID + ty, s);
    }
    return true;
  }
  let eta = paramf(6u);
  let momentum = paramf(7u);
  let ix = tx + 1u;
  reach(c, delta + ix, false);
  reach(c, units + indexIn, false);
  reach(c, w + index, true);
  reach(c, oldw + index, true);
  let corner = by == 0u && ty == 0u;
  if (corner) {
    reach(c, w + ix, true);
    reach(c, oldw + ix, true);
  }
  if (!reached(c)) { return false; }
  let dx = ldf(c, delta + ix);
  let d = eta * dx * ldf(c, units + indexIn) + momentum * ldf(c, oldw + index);
  stf(c, w + index, ldf(c, w + index) + d);
  stf(c, oldw + index, d);
  if (corner) {
    let d0 = eta * dx + momentum * ldf(c, oldw + ix);
    stf(c, w + ix, ldf(c, w + ix) + d0);
    stf(c, oldw + ix, d0);
  }
  return true;
}
