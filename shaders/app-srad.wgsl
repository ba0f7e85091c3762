// app-srad.wgsl — Rodinia srad_v2 (srad_kernel.cu: srad_cuda_1, srad_cuda_2), speckle-
// reducing anisotropic diffusion, one invocation per pixel (a CUDA thread), row-major.
// Neighbours are clamped at the image's edges.
//   kernel 0: the directional derivatives of J and the diffusion coefficient c (from the
//     ROI statistic q0sqr the host computed), stored into C, E_C, W_C, N_C, S_C;
//   kernel 1: J += λ/4 · (the divergence: c of the pixel, its south and east neighbours,
//     times the derivatives).
//
// Params: 0 rows, 1 cols, 2 J, 3 C, 4 E_C, 5 W_C, 6 N_C, 7 S_C (word offsets), 8 q0sqr,
// 9 lambda (f32).

fn invocation(c: ptr<function, Acc>, k: u32) -> bool {
  let rows = param(0u);
  let cols = param(1u);
  let J = param(2u);
  let C = param(3u);
  let EC = param(4u);
  let WC = param(5u);
  let NC = param(6u);
  let SC = param(7u);
  let y = k / cols;
  let x = k % cols;
  let iN = select(y - 1u, 0u, y == 0u) * cols + x;
  let iS = min(y + 1u, rows - 1u) * cols + x;
  let iW = y * cols + select(x - 1u, 0u, x == 0u);
  let iE = y * cols + min(x + 1u, cols - 1u);
  if (KERNEL == 0u) {
    reach(c, J + k, false);
    reach(c, J + iN, false);
    reach(c, J + iS, false);
    reach(c, J + iW, false);
    reach(c, J + iE, false);
    reach(c, C + k, true);
    reach(c, EC + k, true);
    reach(c, WC + k, true);
    reach(c, NC + k, true);
    reach(c, SC + k, true);
    if (!reached(c)) { return false; }
    let q0sqr = paramf(8u);
    let jc = ldf(c, J + k);
    let n = ldf(c, J + iN) - jc;
    let s = ldf(c, J + iS) - jc;
    let w = ldf(c, J + iW) - jc;
    let e = ldf(c, J + iE) - jc;
    let g2 = (n * n + s * s + w * w + e * e) / (jc * jc);
    let l = (n + s + w + e) / jc;
    let num = (0.5 * g2) - ((1.0 / 16.0) * (l * l));
    var den = 1.0 + (0.25 * l);
    let qsqr = num / (den * den);
    den = (qsqr - q0sqr) / (q0sqr * (1.0 + q0sqr));
    let cv = clamp(1.0 / (1.0 + den), 0.0, 1.0);
    stf(c, C + k, cv);
    stf(c, EC + k, e);
    stf(c, WC + k, w);
    stf(c, NC + k, n);
    stf(c, SC + k, s);
    return true;
  }
  reach(c, C + k, false);
  reach(c, C + iS, false);
  reach(c, C + iE, false);
  reach(c, NC + k, false);
  reach(c, SC + k, false);
  reach(c, WC + k, false);
  reach(c, EC + k, false);
  reach(c, J + k, true);
  if (!reached(c)) { return false; }
  let cc = ldf(c, C + k);
  let dsum = cc * ldf(c, NC + k) + ldf(c, C + iS) * ldf(c, SC + k) + cc * ldf(c, WC + k) + ldf(c, C + iE) * ldf(c, EC + k);
  stf(c, J + k, ldf(c, J + k) + 0.25 * paramf(9u) * dsum);
  return true;
}
