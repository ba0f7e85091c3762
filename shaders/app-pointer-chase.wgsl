// app-pointer-chase.wgsl — the pointer chase of UVM microbenchmarks (gpu_ext's, the SC'21
// artifact's): each invocation (chaser) follows `hops` links of a random cyclic permutation
// of the buffer's words — every load's address is the previous load's value, so each hop
// faults on its own, like a warp stalled on a dependent load. A chaser keeps how far it got
// in io (its registers across replays: position, hops done); when done it stores where it ended.
//
// Params: 0 hops, 1 next (the permutation, word offset), 2 out (word offset).
// io[IO_STATE + 2i], io[IO_STATE + 2i + 1]: chaser i's position and hops done.

fn invocation(c: ptr<function, Acc>, i: u32) -> bool {
  let hops = param(0u);
  let next = param(1u);
  let out = param(2u);
  var pos = ioLoad(IO_STATE + 2u * i);
  var k = ioLoad(IO_STATE + 2u * i + 1u);
  var ok = true;
  loop {
    if (k == hops) { break; }
    if (!reach(c, next + pos, false)) { ok = false; break; }
    pos = ld(c, next + pos);
    k += 1u;
  }
  if (ok) { ok = reach(c, out + i, true); }
  if (!ok) {
    ioStore(IO_STATE + 2u * i, pos);
    ioStore(IO_STATE + 2u * i + 1u, k);
    return false;
  }
  st(c, out + i, pos);
  return true;
}
