// mirror-atomic.wgsl — the atomic kernel (appended to mirror-common.wgsl). Same bindings as
// mirror-access.wgsl, with the memory pools viewed as atomics.

@group(0) @binding(2) var<storage, read_write> aperture: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> vram: array<atomic<u32>>;

// io[i] = atomicAdd(va, 1) (the old value); needs VALID|WRITE|EXCLUSIVE — a device atomic
// is only allowed on a page the CPU gave up (make_device_exclusive), else an atomic fault.
@compute @workgroup_size(WG)
fn mirror_atomic_inc(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lidx: u32) {
  var a: Access;
  if (!decode(wg, nwg, lidx, &a)) { return; }
  let e = translate(a.pageLo, a.pageHi);
  let need = PTE_VALID | PTE_WRITE | PTE_EXCLUSIVE;
  if ((e & need) != need) {
    let prot = select(0u, ACCESS_PROTECTION, (e & PTE_VALID) != 0u);
    recordFault(a.rangePage, a.pageLo, a.pageHi, ACCESS_ATOMIC | prot, a.source);
    return;
  }
  let addr = (e >> PTE_INDEX_SHIFT) * WORDS_PER_PAGE + a.word;
  if ((e & PTE_DEVICE) != 0u) {
    io[a.i] = atomicAdd(&vram[addr], 1u);
  } else {
    io[a.i] = atomicAdd(&aperture[addr], 1u);
  }
  markDirty(e);
  markDone(a.i);
}
