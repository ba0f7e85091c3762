// mirror-access.wgsl — read, write and probe kernels (appended to mirror-common.wgsl).
// Memory is reached through the leaf's slot: PTE_DEVICE selects the device-private pool
// ("VRAM"), otherwise the system-memory aperture (UVM's sysmem aperture / PCIe BAR path).

@group(0) @binding(2) var<storage, read_write> aperture: array<u32>;
@group(0) @binding(3) var<storage, read_write> vram: array<u32>;

// io[i] = *va; needs VALID.
@compute @workgroup_size(WG)
fn mirror_read(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
  var a: Access;
  if (!decode(wg, nwg, lidx, &a)) { return; }
  let e = translate(a.pageLo, a.pageHi);
  if ((e & PTE_VALID) == 0u) {
    recordFault(a.rangePage, a.pageLo, a.pageHi, ACCESS_READ, a.source);
    return;
  }
  let addr = (e >> PTE_INDEX_SHIFT) * WORDS_PER_PAGE + a.word;
  if ((e & PTE_DEVICE) != 0u) {
    io[a.i] = vram[addr];
  } else {
    io[a.i] = aperture[addr];
  }
  markDone(a.i);
}

// *va = io[i]; needs VALID|WRITE (a read-only PTE is a protection fault); marks the slot dirty.
@compute @workgroup_size(WG)
fn mirror_write(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lidx: u32) {
  var a: Access;
  if (!decode(wg, nwg, lidx, &a)) { return; }
  let e = translate(a.pageLo, a.pageHi);
  if ((e & (PTE_VALID | PTE_WRITE)) != (PTE_VALID | PTE_WRITE)) {
    let prot = select(0u, ACCESS_PROTECTION, (e & PTE_VALID) != 0u);
    recordFault(a.rangePage, a.pageLo, a.pageHi, ACCESS_WRITE | prot, a.source);
    return;
  }
  let addr = (e >> PTE_INDEX_SHIFT) * WORDS_PER_PAGE + a.word;
  if ((e & PTE_DEVICE) != 0u) {
    vram[addr] = io[a.i];
  } else {
    aperture[addr] = io[a.i];
  }
  markDirty(e);
  markDone(a.i);
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
