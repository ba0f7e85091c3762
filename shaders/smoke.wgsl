// Smoke kernel: out[i] = (in[i] * 3u + i) ^ params.key for i < params.count.
// Proves a real dispatch ran: every element depends on its index, its input and a uniform.
// Elements at i >= count are left untouched (tests poison them to check bounds handling).

struct Params {
  count: u32,
  key: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= params.count) {
    return;
  }
  dst[i] = (src[i] * 3u + i) ^ params.key;
}
