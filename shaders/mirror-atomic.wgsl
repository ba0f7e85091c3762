// mirror-atomic.wgsl — the atomic kernel (appended to mirror-common.wgsl). Same bindings as
// mirror-access.wgsl, with the memory pools viewed as atomics.

@group(0) @binding(2) var<storage, read_write> aperture: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> vram: array<atomic<u32>>;

// io[i] = atomicAdd(va, 1): the old value.
fn doAccess(access: u32, e: u32, i: u32, addr: u32) {
  if ((e & PTE_DEVICE) != 0u) {
    io[i] = atomicAdd(&vram[addr], 1u);
  } else {
    io[i] = atomicAdd(&aperture[addr], 1u);
  }
}

// Needs VALID|WRITE|EXCLUSIVE — a device atomic is only allowed on a page the CPU gave up
// (make_device_exclusive); otherwise an atomic fault. Marks the slot dirty.
@compute @workgroup_size(WG)
fn mirror_atomic_inc(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lidx: u32) {
  mirrorInvocation(wg, nwg, lidx, PTE_VALID | PTE_WRITE | PTE_EXCLUSIVE, ACCESS_ATOMIC);
}
