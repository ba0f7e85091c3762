// app-hotspot.wgsl — Rodinia hotspot's calculate_temp (hotspot.cu), one invocation per
// grid cell (a CUDA thread of a 16 × 16 block). The original loads a tile with halos into
// shared memory and runs `iteration` steps there (the pyramid); what each stored cell gets
// is the serial stencil's value after those steps, neighbours clamped at the grid's edges —
// computed here from the cell's cone: step 1 at the cell and its 4 neighbours, step 2 at
// the cell. The cells of a 16 × 16 block are consecutive invocations, so a launch reaches
// the pages in the original's order: a block's rows, block after block along the grid.
//
// Params: 0 n (grid rows = cols), 1 iteration (1 or 2), 2 power, 3 temp_src, 4 temp_dst
// (array word offsets), 5 step/Cap, 6 1/Rx, 7 1/Ry, 8 1/Rz, 9 ambient temperature (f32).

const BS: u32 = 16u;

// The cell of block-ordered invocation i: blocks of BS × BS cells, row-major within the
// block, blocks row-major over the grid (n is a multiple of BS).
fn cellOf(i: u32, n: u32) -> vec2<u32> {
  let blk = i / (BS * BS);
  let k = i % (BS * BS);
  let bcols = n / BS;
  return vec2<u32>((blk % bcols) * BS + k % BS, (blk / bcols) * BS + k / BS);
}

// The 4 neighbours (N, S, W, E) of (x, y), clamped at the edges; k = 0 is the cell itself.
fn around(x: u32, y: u32, k: u32, n: u32) -> vec2<u32> {
  switch k {
    case 1u: { return vec2<u32>(x, select(y - 1u, 0u, y == 0u)); }
    case 2u: { return vec2<u32>(x, min(y + 1u, n - 1u)); }
    case 3u: { return vec2<u32>(select(x - 1u, 0u, x == 0u), y); }
    case 4u: { return vec2<u32>(min(x + 1u, n - 1u), y); }
    default: { return vec2<u32>(x, y); }
  }
}

// One step of the stencil at (x, y) from temp_src (t_ and its neighbours) and power.
fn stepAt(c: ptr<function, Acc>, x: u32, y: u32, n: u32) -> f32 {
  let src = param(3u);
  let t = ldf(c, src + y * n + x);
  let p = ldf(c, param(2u) + y * n + x);
  let N = around(x, y, 1u, n);
  let S = around(x, y, 2u, n);
  let W = around(x, y, 3u, n);
  let E = around(x, y, 4u, n);
  let tn = ldf(c, src + N.y * n + N.x);
  let ts = ldf(c, src + S.y * n + S.x);
  let tw = ldf(c, src + W.y * n + W.x);
  let te = ldf(c, src + E.y * n + E.x);
  return formula(t, p, tn, ts, tw, te);
}

fn formula(t: f32, p: f32, tn: f32, ts: f32, tw: f32, te: f32) -> f32 {
  return t + paramf(5u) * (p + (ts + tn - 2.0 * t) * paramf(7u) + (te + tw - 2.0 * t) * paramf(6u)
    + (paramf(9u) - t) * paramf(8u));
}

fn invocation(c: ptr<function, Acc>, i: u32) -> bool {
  let n = param(0u);
  let iters = param(1u);
  let cell = cellOf(i, n);
  let x = cell.x;
  let y = cell.y;
  // The cone: every cell within `iters` steps (a diamond), and the power under it.
  let r = i32(iters);
  for (var dy = -r; dy <= r; dy++) {
    let yy = u32(clamp(i32(y) + dy, 0, i32(n) - 1));
    let span = r - abs(dy);
    let xa = u32(clamp(i32(x) - span, 0, i32(n) - 1));
    let xb = u32(clamp(i32(x) + span, 0, i32(n) - 1));
    reachRun(c, param(3u) + yy * n + xa, xb - xa + 1u, false);
    if (abs(dy) < r) { reachRun(c, param(2u) + yy * n + xa, xb - xa + 1u, false); }
  }
  reach(c, param(4u) + y * n + x, true);
  if (!reached(c)) { return false; }
  var v: f32;
  if (iters == 1u) {
    v = stepAt(c, x, y, n);
  } else {
    var s: array<f32, 5>;
    for (var k = 0u; k < 5u; k++) {
      let q = around(x, y, k, n);
      s[k] = stepAt(c, q.x, q.y, n);
    }
    v = formula(s[0], ldf(c, param(2u) + y * n + x), s[1], s[2], s[3], s[4]);
  }
  stf(c, param(4u) + y * n + x, v);
  return true;
}
