// app-gemm.wgsl — PolyBench/GPU gemm (gemm_kernel), one invocation per element of C (a CUDA
// thread), row-major: C[i][j] = β·C[i][j] + Σk α·A[i][k]·B[k][j] — a row of A, a column of B.
//
// Params: 0 NI, 1 NJ, 2 NK, 3 A, 4 B, 5 C (word offsets), 6 α, 7 β (f32).

fn invocation(c: ptr<function, Acc>, t: u32) -> bool {
  let nj = param(1u);
  let nk = param(2u);
  let A = param(3u);
  let B = param(4u);
  let C = param(5u);
  let i = t / nj;
  let j = t % nj;
  reachRun(c, A + i * nk, nk, false);
  for (var k = 0u; k < nk; k++) {
    reach(c, B + k * nj + j, false);
  }
  reach(c, C + t, true);
  if (!reached(c)) { return false; }
  let alpha = paramf(6u);
  var s = ldf(c, C + t) * paramf(7u);
  for (var k = 0u; k < nk; k++) {
    s += alpha * ldf(c, A + i * nk + k) * ldf(c, B + k * nj + j);
  }
  stf(c, C + t, s);
  return true;
}
