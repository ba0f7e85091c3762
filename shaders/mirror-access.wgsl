// mirror-access.wgsl — read, write and probe kernels (appended to mirror-common.wgsl).
// Memory is reached through the leaf's slot: PTE_DEVICE selects the device-private pool
// ("VRAM"), otherwise the system-memory aperture (UVM's sysmem aperture / PCIe BAR path).
// Both pools are viewed as vec4s: a page is 256 of them.

@group(0) @binding(2) var<storage, read_write> aperture: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> vram: array<vec4<u32>>;

// ACCESS_READ: io = *va.  ACCESS_WRITE: *va = io. 8 vec4s; when some words are already
// done (`prev` bits set: rare — replay makes words all-done or all-pending per page), each
// word that is not is moved alone: a whole-vec4 store would rewrite the done ones.
// (Marking the page dirty is the report pass's: mirrorReport.)
fn doAccess(access: u32, e: u32, j: u32, addr: u32, prev: u32) {
  let dev = inDevice(e);
  if (prev == 0u) {
    if (access == ACCESS_READ) {
      if (dev) {
        for (var k = 0u; k < VECS_PER_THREAD; k++) { io[j + k] = vram[addr + k]; }
      } else {
        for (var k = 0u; k < VECS_PER_THREAD; k++) { io[j + k] = aperture[addr + k]; }
      }
    } else {
      if (dev) {
        for (var k = 0u; k < VECS_PER_THREAD; k++) { vram[addr + k] = io[j + k]; }
      } else {
        for (var k = 0u; k < VECS_PER_THREAD; k++) { aperture[addr + k] = io[j + k]; }
      }
    }
    return;
  }
  for (var b = 0u; b < 32u; b++) {
    if ((prev & (1u << b)) != 0u) { continue; }
    let k = b / 4u;
    let c = b % 4u;
    if (access == ACCESS_READ) {
      if (dev) { io[j + k][c] = vram[addr + k][c]; } else { io[j + k][c] = aperture[addr + k][c]; }
    } else {
      if (dev) { vram[addr + k][c] = io[j + k][c]; } else { aperture[addr + k][c] = io[j + k][c]; }
    }
  }
}

// Needs VALID.
@compute @workgroup_size(WG)
fn mirror_read(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lidx: u32) {
  mirrorThread(wg, nwg, lidx, PTE_VALID, ACCESS_READ);
}

// mirror_read's first round over a range mapped everywhere (mirrorThreadFresh).
@compute @workgroup_size(WG)
fn mirror_read_fresh(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lidx: u32) {
  mirrorThreadFresh(wg, nwg, lidx, PTE_VALID, ACCESS_READ);
}

// A round of any engine op over a range the table maps nowhere (mirrorCold; in practice a
// command's first, over memory the device never touched): one thread per page, no pool
// touched, so this one pipeline serves mirror-atomic.wgsl's op too.
@compute @workgroup_size(WG)
fn mirror_cold(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lidx: u32) {
  mirrorCold(wg, nwg, lidx);
}

// Needs VALID|WRITE (a read-only PTE is a protection fault); its report marks the slot dirty.
@compute @workgroup_size(WG)
fn mirror_write(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lidx: u32) {
  mirrorThread(wg, nwg, lidx, PTE_VALID | PTE_WRITE, ACCESS_WRITE);
}

// Their report and record passes (mirrorReport, mirrorRecord in mirror-common.wgsl): one
// thread per range page.
@compute @workgroup_size(WG)
fn report_read(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lidx: u32) {
  mirrorReport(wg, nwg, lidx, PTE_VALID, ACCESS_READ);
}

@compute @workgroup_size(WG)
fn record_read(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lidx: u32) {
  mirrorRecord(wg, nwg, lidx, PTE_VALID, ACCESS_READ);
}

@compute @workgroup_size(WG)
fn report_write(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lidx: u32) {
  mirrorReport(wg, nwg, lidx, PTE_VALID | PTE_WRITE, ACCESS_WRITE);
}

@compute @workgroup_size(WG)
fn record_write(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lidx: u32) {
  mirrorRecord(wg, nwg, lidx, PTE_VALID | PTE_WRITE, ACCESS_WRITE);
}

// Debug walk (like UVM's test ioctls), one page per thread: for k < nwords, words 2k, 2k+1
// of io = page lo/hi in; word 2 * nwords + k = translate(page) out.
fn ioWord(k: u32) -> u32 {
  return io[k / 4u][k % 4u];
}

@compute @workgroup_size(WG)
fn mirror_probe(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lidx: u32) {
  let k = linearWorkgroup(wg, nwg) * WG + lidx;
  if (k >= params.nwords) { return; }
  let out = 2u * params.nwords + k;
  io[out / 4u][out % 4u] = translate(ioWord(2u * k), ioWord(2u * k + 1u));
}
