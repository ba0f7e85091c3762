// app-fdtd-2d.wgsl — PolyBench/GPU fdtd2d (fdtd_step1/2/3_kernel), one invocation per grid
// point (a CUDA thread), row-major over NX × NY; 3 launches a time step, each updating one
// field in place from the others:
//   kernel 0: ey[i][j] -= 0.5·(hz[i][j] - hz[i-1][j])   (row 0: ey[0][j] = _fict_[t])
//   kernel 1: ex[i][j] -= 0.5·(hz[i][j] - hz[i][j-1])   (j > 0; ex is NX × (NY + 1))
//   kernel 2: hz[i][j] -= 0.7·(ex[i][j+1] - ex[i][j] + ey[i+1][j] - ey[i][j])   (i < NX-1, j < NY-1)
//
// Params: 0 NX, 1 NY, 2 _fict_, 3 ex, 4 ey, 5 hz (word offsets), 6 t.

fn invocation(c: ptr<function, Acc>, k: u32) -> bool {
  let nx = param(0u);
  let ny = param(1u);
  let fict = param(2u);
  let ex = param(3u);
  let ey = param(4u);
  let hz = param(5u);
  let t = param(6u);
  let i = k / ny;
  let j = k % ny;
  if (KERNEL == 0u) {
    let w = ey + i * ny + j;
    if (i == 0u) {
      reach(c, fict + t, false);
    } else {
      reach(c, hz + i * ny + j, false);
      reach(c, hz + (i - 1u) * ny + j, false);
    }
    reach(c, w, true);
    if (!reached(c)) { return false; }
    if (i == 0u) {
      st(c, w, ld(c, fict + t));
    } else {
      stf(c, w, ldf(c, w) - 0.5 * (ldf(c, hz + i * ny + j) - ldf(c, hz + (i - 1u) * ny + j)));
    }
    return true;
  }
  if (KERNEL == 1u) {
    if (j == 0u) { return true; }
    let w = ex + i * (ny + 1u) + j;
    reachRun(c, hz + i * ny + j - 1u, 2u, false);
    reach(c, w, true);
    if (!reached(c)) { return false; }
    stf(c, w, ldf(c, w) - 0.5 * (ldf(c, hz + i * ny + j) - ldf(c, hz + i * ny + j - 1u)));
    return true;
  }
  if (i >= nx - 1u || j >= ny - 1u) { return true; }
  let w = hz + i * ny + j;
  let e0 = ex + i * (ny + 1u) + j;
  reachRun(c, e0, 2u, false);
  reach(c, ey + (i + 1u) * ny + j, false);
  reach(c, ey + i * ny + j, false);
  reach(c, w, true);
  if (!reached(c)) { return false; }
  stf(c, w, ldf(c, w) - 0.7 * (ldf(c, e0 + 1u) - ldf(c, e0) + ldf(c, ey + (i + 1u) * ny + j) - ldf(c, ey + i * ny + j)));
  return true;
}
