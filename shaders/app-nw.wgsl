// app-nw.wgsl — Rodinia nw (needle_kernel.cu: needle_cuda_shared_1 / _2), Needleman-Wunsch
// alignment scores over an (n+1) × (n+1) matrix in 16 × 16 tiles, a launch per anti-diagonal
// of tiles: kernel 0 the upper-left triangle (diagonal d has d + 1 tiles), kernel 1 the
// lower-right one. One invocation per tile (a CUDA block): it reads the row above and the
// column left of its tile and the tile of the reference matrix, and fills the tile row by row:
//   itemsets[i][j] = max(itemsets[i-1][j-1] + reference[i][j], itemsets[i][j-1] - penalty,
//                        itemsets[i-1][j] - penalty)
//
// Params: 0 n (a multiple of 16), 1 the launch's diagonal i (Rodinia's loop variable),
// 2 reference, 3 itemsets (word offsets), 4 penalty.

const BS: u32 = 16u;

fn invocation(c: ptr<function, Acc>, b: u32) -> bool {
  let n = param(0u);
  let d = param(1u);
  let ref_ = param(2u);
  let items = param(3u);
  let penalty = bitcast<i32>(param(4u));
  let width = n / BS;
  var bx: u32;
  var by: u32;
  if (KERNEL == 0u) {
    bx = b;
    by = d - 1u - b;
  } else {
    bx = b + width - d;
    by = width - b - 1u;
  }
  let cols = n + 1u;
  let i0 = by * BS + 1u;
  let j0 = bx * BS + 1u;
  reachRun(c, items + (i0 - 1u) * cols + j0 - 1u, BS + 1u, false);
  for (var r = 0u; r < BS; r++) {
    reach(c, items + (i0 + r) * cols + j0 - 1u, false);
    reachRun(c, items + (i0 + r) * cols + j0, BS, true);
    reachRun(c, ref_ + (i0 + r) * cols + j0, BS, false);
  }
  if (!reached(c)) { return false; }
  for (var r = 0u; r < BS; r++) {
    let i = i0 + r;
    for (var q = 0u; q < BS; q++) {
      let j = j0 + q;
      let diag = bitcast<i32>(ld(c, items + (i - 1u) * cols + j - 1u)) + bitcast<i32>(ld(c, ref_ + i * cols + j));
      let left = bitcast<i32>(ld(c, items + i * cols + j - 1u)) - penalty;
      let up = bitcast<i32>(ld(c, items + (i - 1u) * cols + j)) - penalty;
      st(c, items + i * cols + j, bitcast<u32>(max(diag, max(left, up))));
    }
  }
  return true;
}
