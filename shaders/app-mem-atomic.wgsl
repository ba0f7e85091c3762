// app-mem-atomic.wgsl — the two pools as atomic words, for app kernels whose invocations set
// and clear bytes of words other invocations also change (bfs's bool arrays: Rodinia's
// `bool *`, one byte a node, so 4 nodes share a word).
@group(0) @binding(2) var<storage, read_write> aperture: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> vram: array<atomic<u32>>;

fn memLoad(dev: bool, a: u32) -> u32 {
  if (dev) { return atomicLoad(&vram[a]); }
  return atomicLoad(&aperture[a]);
}

fn memStore(dev: bool, a: u32, v: u32) {
  if (dev) { atomicStore(&vram[a], v); } else { atomicStore(&aperture[a], v); }
}

fn memOr(dev: bool, a: u32, v: u32) {
  if (dev) { atomicOr(&vram[a], v); } else { atomicOr(&aperture[a], v); }
}

fn memAnd(dev: bool, a: u32, v: u32) {
  if (dev) { atomicAnd(&vram[a], v); } else { atomicAnd(&aperture[a], v); }
}
