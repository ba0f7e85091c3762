// app-atax.wgsl — PolyBench/GPU atax (atax_kernel1, atax_kernel2), one invocation per CUDA
// thread: kernel 0, thread i: tmp[i] = Σj A[i][j]·x[j] (a row of A); kernel 1, thread j:
// y[j] = Σi A[i][j]·tmp[i] (a column of A: a page a step once a row is a page).
//
// Params: 0 NX, 1 NY, 2 A, 3 x, 4 y, 5 tmp (word offsets).

fn invocation(c: ptr<function, Acc>, t: u32) -> bool {
  let nx = param(0u);
  let ny = param(1u);
  let A = param(2u);
  let x = param(3u);
  let y = param(4u);
  let tmp = param(5u);
  if (KERNEL == 0u) {
    reachRun(c, A + t * ny, ny, false);
    reachRun(c, x, ny, false);
    reach(c, tmp + t, true);
    if (!reached(c)) { return false; }
    var s = 0.0;
    for (var j = 0u; j < ny; j++) {
      s += ldf(c, A + t * ny + j) * ldf(c, x + j);
    }
    stf(c, tmp + t, s);
    return true;
  }
  for (var i = 0u; i < nx; i++) {
    reach(c, A + i * ny + t, false);
  }
  reachRun(c, tmp, nx, false);
  reach(c, y + t, true);
  if (!reached(c)) { return false; }
  var s = 0.0;
  for (var i = 0u; i < nx; i++) {
    s += ldf(c, A + i * ny + t) * ldf(c, tmp + i);
  }
  stf(c, y + t, s);
  return true;
}
