// app-mem-plain.wgsl — the two pools as plain words, for app kernels whose invocations
// never store to a word another invocation of the same launch stores to (see app-access.wgsl).
@group(0) @binding(2) var<storage, read_write> aperture: array<u32>;
@group(0) @binding(3) var<storage, read_write> vram: array<u32>;

fn memLoad(dev: bool, a: u32) -> u32 {
  if (dev) { return vram[a]; }
  return aperture[a];
}

fn memStore(dev: bool, a: u32, v: u32) {
  if (dev) { vram[a] = v; } else { aperture[a] = v; }
}
