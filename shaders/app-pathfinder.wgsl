// app-pathfinder.wgsl — Rodinia pathfinder (pathfinder.cu: dynproc_kernel): the cheapest
// path down a grid of weights, a row at a time: result[x] = wall[t][x] + min(prev[x-1],
// prev[x], prev[x+1]) (neighbours clamped at the edges). A launch advances `iteration` rows
// (the pyramid); one invocation computes a segment of SEG columns from the SEG + 2·iteration
// columns of gpuSrc above it and the shrinking trapezoid of wall rows (Rodinia's block does
// the same for 256 columns in shared memory), and stores the segment into gpuResult.
//
// Params: 0 cols, 1 startStep, 2 iteration (<= 10), 3 gpuWall, 4 gpuSrc, 5 gpuDst (word offsets).

const SEG: u32 = 16u;
const HALO: u32 = 10u;
const SPAN: u32 = 36u; // SEG + 2 * HALO

fn invocation(c: ptr<function, Acc>, i: u32) -> bool {
  let cols = param(0u);
  let start = param(1u);
  let iters = param(2u);
  let wall = param(3u);
  let src = param(4u);
  let dst = param(5u);
  let x0 = i * SEG;
  let x1 = min(x0 + SEG, cols) - 1u;
  // Columns of level k (0 = gpuSrc): [x0 - (iters - k), x1 + (iters - k)], clamped.
  let lo0 = u32(max(i32(x0) - i32(iters), 0));
  let hi0 = min(x1 + iters, cols - 1u);
  reachRun(c, src + lo0, hi0 - lo0 + 1u, false);
  for (var k = 1u; k <= iters; k++) {
    let lo = u32(max(i32(x0) - i32(iters - k), 0));
    let hi = min(x1 + iters - k, cols - 1u);
    reachRun(c, wall + cols * (start + k - 1u) + lo, hi - lo + 1u, false);
  }
  reachRun(c, dst + x0, x1 - x0 + 1u, true);
  if (!reached(c)) { return false; }
  // prev / next hold columns base .. base + SPAN - 1, base = x0 - HALO.
  let base = i32(x0) - i32(HALO);
  var prev: array<i32, SPAN>;
  var next: array<i32, SPAN>;
  for (var x = lo0; x <= hi0; x++) {
    prev[u32(i32(x) - base)] = bitcast<i32>(ld(c, src + x));
  }
  for (var k = 1u; k <= iters; k++) {
    let lo = u32(max(i32(x0) - i32(iters - k), 0));
    let hi = min(x1 + iters - k, cols - 1u);
    for (var x = lo; x <= hi; x++) {
      let left = select(x - 1u, 0u, x == 0u);
      let right = min(x + 1u, cols - 1u);
      let m = min(min(prev[u32(i32(left) - base)], prev[u32(i32(x) - base)]), prev[u32(i32(right) - base)]);
      next[u32(i32(x) - base)] = m + bitcast<i32>(ld(c, wall + cols * (start + k - 1u) + x));
    }
    for (var x = lo; x <= hi; x++) {
      prev[u32(i32(x) - base)] = next[u32(i32(x) - base)];
    }
  }
  for (var x = x0; x <= x1; x++) {
    st(c, dst + x, bitcast<u32>(prev[u32(i32(x) - base)]));
  }
  return true;
}
