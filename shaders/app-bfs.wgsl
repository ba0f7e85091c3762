// app-bfs.wgsl — Rodinia bfs (bfs.cu: Kernel, Kernel2), one invocation per node (a CUDA
// thread). Level-synchronous: Kernel expands the frontier (graph_mask) — each frontier
// node reads its Node, its edge list and the visited flag of each neighbour, and gives each
// unvisited neighbour cost + 1 and an updating_graph_mask flag; Kernel2 turns the updated
// nodes into the next frontier, marks them visited and sets the host's "over" flag.
// The flags are Rodinia's bool arrays, a byte a node (so the pools are atomic words:
// app-mem-atomic.wgsl). Loads that depend on loaded values are reached level by level: the
// edge list once the Node is resident, the neighbours' flags once the edge list is.
//
// Params: 0 nodes, 1 graph_nodes (2 words a node: starting, no_of_edges), 2 graph_mask,
// 3 updating_graph_mask, 4 graph_visited (byte arrays), 5 graph_edges, 6 cost (word offsets).
// io[IO_OUT]: Kernel2's "over" (some node was updated).

fn byteWord(arr: u32, node: u32) -> u32 {
  return arr + node / 4u;
}

fn getByte(c: ptr<function, Acc>, arr: u32, node: u32) -> u32 {
  return (ld(c, byteWord(arr, node)) >> (8u * (node % 4u))) & 0xffu;
}

// Sets (1) or clears (0) the node's byte with one atomic, as a byte store would.
fn putByte(c: ptr<function, Acc>, arr: u32, node: u32, v: u32) {
  let w = byteWord(arr, node);
  let e = entryOf(c, w);
  countAccess(&(*c).pend, e, w);
  let sh = 8u * (node % 4u);
  let dev = inDevice(e);
  if (v != 0u) {
    memOr(dev, poolAddr(e, w), v << sh);
  } else {
    memAnd(dev, poolAddr(e, w), ~(0xffu << sh));
  }
  markDirty(e);
}

fn expand(c: ptr<function, Acc>, tid: u32) -> bool {
  let nodes = param(1u);
  let mask = param(2u);
  let updating = param(3u);
  let visited = param(4u);
  let edges = param(5u);
  let cost = param(6u);
  if (!reach(c, byteWord(mask, tid), false)) { return false; }
  if (getByte(c, mask, tid) == 0u) { return true; }
  reach(c, byteWord(mask, tid), true);
  reachRun(c, nodes + 2u * tid, 2u, false);
  reach(c, cost + tid, false);
  if (!reached(c)) { return false; }
  let start = ld(c, nodes + 2u * tid);
  let n = ld(c, nodes + 2u * tid + 1u);
  if (!reachRun(c, edges + start, n, false)) { return false; }
  for (var k = 0u; k < n; k++) {
    reach(c, byteWord(visited, ld(c, edges + start + k)), false);
  }
  if (!reached(c)) { return false; }
  for (var k = 0u; k < n; k++) {
    let id = ld(c, edges + start + k);
    if (getByte(c, visited, id) == 0u) {
      reach(c, cost + id, true);
      reach(c, byteWord(updating, id), true);
    }
  }
  if (!reached(c)) { return false; }
  putByte(c, mask, tid, 0u);
  let next = ld(c, cost + tid) + 1u;
  for (var k = 0u; k < n; k++) {
    let id = ld(c, edges + start + k);
    if (getByte(c, visited, id) == 0u) {
      st(c, cost + id, next);
      putByte(c, updating, id, 1u);
    }
  }
  return true;
}

fn advance(c: ptr<function, Acc>, tid: u32) -> bool {
  let mask = param(2u);
  let updating = param(3u);
  let visited = param(4u);
  if (!reach(c, byteWord(updating, tid), false)) { return false; }
  if (getByte(c, updating, tid) == 0u) { return true; }
  reach(c, byteWord(mask, tid), true);
  reach(c, byteWord(visited, tid), true);
  reach(c, byteWord(updating, tid), true);
  if (!reached(c)) { return false; }
  putByte(c, mask, tid, 1u);
  putByte(c, visited, tid, 1u);
  putByte(c, updating, tid, 0u);
  ioStore(IO_OUT, 1u);
  return true;
}

fn invocation(c: ptr<function, Acc>, i: u32) -> bool {
  if (KERNEL == 0u) { return expand(c, i); }
  return advance(c, i);
}
