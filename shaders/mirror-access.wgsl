// mirror-access.wgsl — read, write and probe kernels (appended to mirror-common.wgsl).
// Memory is reached through the leaf's slot: PTE_DEVICE selects the device-private pool
// ("VRAM"), otherwise the system-memory aperture (UVM's sysmem aperture / PCIe BAR path).

@group(0) @binding(2) var<storage, read_write> aperture: array<u32>;
@group(0) @binding(3) var<storage, read_write> vram: array<u32>;

// ACCESS_READ: io[i] = *va.  ACCESS_WRITE: *va = io[i].
fn doAccess(access: u32, e: u32, i: u32, addr: u32) {
  let dev = (e & PTE_DEVICE) != 0u;
  if (access == ACCESS_READ) {
    if (dev) { io[i] = vram[addr]; } else { io[i] = aperture[addr]; }
  } else {
    if (dev) { vram[addr] = io[i]; } else { aperture[addr] = io[i]; }
  }
}

// Needs VALID.
@compute @workgroup_size(WG)
fn mirror_read(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lidx: u32) {
  mirrorInvocation(wg, nwg, lidx, PTE_VALID, ACCESS_READ);
}

// Needs VALID|WRITE (a read-only PTE is a protection fault); marks the slot dirty.
@compute @workgroup_size(WG)
fn mirror_write(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lidx: u32) {
  mirrorInvocation(wg, nwg, lidx, PTE_VALID | PTE_WRITE, ACCESS_WRITE);
}

// Debug walk (like UVM's test ioctls): for k < nwords, io[2k], io[2k+1] = page lo/hi in;
// io[2 * nwords + k] = translate(page) out.
@compute @workgroup_size(WG)
fn mirror_probe(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lidx: u32) {
  let k = linearWorkgroup(wg, nwg) * WG + lidx;
  if (k >= params.nwords) { return; }
  io[2u * params.nwords + k] = translate(io[2u * k], io[2u * k + 1u]);
}
