// app-2dconv.wgsl — PolyBench/GPU 2DConvolution (Convolution2D_kernel), one invocation per
// output element (a CUDA thread), row-major: B[i][j] = the 3 × 3 weighted sum of A around
// (i, j), for the interior; border threads do nothing.
//
// Params: 0 NI, 1 NJ, 2 A, 3 B (word offsets).

fn invocation(c: ptr<function, Acc>, i: u32) -> bool {
  let ni = param(0u);
  let nj = param(1u);
  let A = param(2u);
  let B = param(3u);
  let r = i / nj;
  let q = i % nj;
  if (r == 0u || q == 0u || r >= ni - 1u || q >= nj - 1u) { return true; }
  for (var d = 0u; d < 3u; d++) {
    reachRun(c, A + (r - 1u + d) * nj + q - 1u, 3u, false);
  }
  reach(c, B + r * nj + q, true);
  if (!reached(c)) { return false; }
  let up = A + (r - 1u) * nj + q;
  let mid = A + r * nj + q;
  let dn = A + (r + 1u) * nj + q;
  let v = 0.2 * ldf(c, up - 1u) + 0.5 * ldf(c, up) + -0.8 * ldf(c, up + 1u)
    + -0.3 * ldf(c, mid - 1u) + 0.6 * ldf(c, mid) + -0.9 * ldf(c, mid + 1u)
    + 0.4 * ldf(c, dn - 1u) + 0.7 * ldf(c, dn) + 0.1 * ldf(c, dn + 1u);
  stf(c, B + r * nj + q, v);
  return true;
}
