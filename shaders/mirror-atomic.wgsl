// mirror-atomic.wgsl — the atomic kernel (appended to mirror-common.wgsl). Same bindings as
// mirror-access.wgsl, with the memory pools viewed as atomics (one word each).

@group(0) @binding(2) var<storage, read_write> aperture: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> vram: array<atomic<u32>>;

// io word = atomicAdd(va, 1): the old value, for each of the 32 words not done yet.
fn doAccess(access: u32, e: u32, j: u32, addr: u32, prev: u32) {
  let dev = (e & PTE_DEVICE) != 0u;
  for (var b = 0u; b < 32u; b++) {
    if ((prev & (1u << b)) != 0u) { continue; }
    let k = b / 4u;
    let c = b % 4u;
    let a = (addr + k) * 4u + c;
    if (dev) {
      io[j + k][c] = atomicAdd(&vram[a], 1u);
    } else {
      io[j + k][c] = atomicAdd(&aperture[a], 1u);
    }
  }
}

// Needs VALID|EXCLUSIVE — a device atomic is only allowed on a page the CPU gave up
// (make_device_exclusive); otherwise an atomic fault. An exclusive entry carries no WRITE
// (test_hmm's ATOMIC tag is not its WRITE tag): a plain write to it faults and revokes it.
// Its report marks the slot dirty.
@compute @workgroup_size(WG)
fn mirror_atomic_inc(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lidx: u32) {
  mirrorThread(wg, nwg, lidx, PTE_VALID | PTE_EXCLUSIVE, ACCESS_ATOMIC);
}

@compute @workgroup_size(WG)
fn report_atomic(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lidx: u32) {
  mirrorReport(wg, nwg, lidx, PTE_VALID | PTE_EXCLUSIVE, ACCESS_ATOMIC);
}

@compute @workgroup_size(WG)
fn record_atomic(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lidx: u32) {
  mirrorRecord(wg, nwg, lidx, PTE_VALID | PTE_EXCLUSIVE, ACCESS_ATOMIC);
}
