// mirror-common.wgsl — shared by every mirror kernel (prepended in TS: WGSL has no #include).
//
// The GPU half of an HMM device mirror (lib/test_hmm.c "dmirror", NVIDIA UVM, nouveau):
//   * `tables` is the mirrored page table, walked like a GPU MMU walks its PDEs/PTEs;
//   * `ring` is the replayable fault buffer a miss is reported through (UVM's
//     GMMU fault buffer: PUT advanced by the GPU, drained by the driver);
//   * `done` holds the per-command done bitmaps (replay: a faulted word simply runs again
//     next round), `state` the counters and the per-(uTLB, page) pending bitmap that
//     filters duplicate fault records;
//   * `dirty` is a per-slot bitmap the driver writes back from (the PTE dirty bit, per slot).
// Bindings 2 (aperture) and 3 (vram) are declared by each kernel file: array<vec4<u32>>
// for read/write, array<atomic<u32>> for atomics. All files share one bind group layout.
//
// Work layout: a command is `npages * 1024` words — the "invocations" of the host-side
// model: each has a done bit and is replayed until done. A thread serves one done word:
// 32 consecutive words (8 vec4s), all in one page; 32 threads serve a page and a 256-thread
// workgroup serves 8 consecutive pages of the range. So the page walk is done once per 32
// words, not once per word, and within a page (a warp on a GPU) every thread walks the same
// entries; the walk sits before any branch, and costs no more than that on CPU rasterisers
// (llvmpipe, SwiftShader) where every storage load is a per-lane gather.

// Constants (PTE_* entry bits of src/device/page-table.ts, ACCESS_* fault codes, sizes,
// STATE_MISSED) are not written here: src/device/abi.ts generates them from the TS and
// prepends them to every kernel. ACCESS_PROTECTION is set in a record's access word when the
// PTE was valid but lacked the right (UVM's write/atomic fault types, as opposed to an
// invalid PDE/PTE).

// state[] layout (words): 0 reserved for kernels of other files (createKernels: e.g. the
// workloads' mismatch count; zeroed with the command, never by a round), 1 words left not
// done by this round (reset each round), 2..3 reserved, then the pending bitmap at pendOff (cleared every round), then (only
// when counting: cntOff != 0) the access counters at cntOff (cleared every round). The done
// bitmaps are in done[] (see mirrorThread). There is no done counter: every word not done
// before a round is either done by it or counted missed, so the host knows the done count
// is nwords - missed, and a round that faults nowhere touches no global atomic at all.

struct Params {
  vaLo: u32,        // first page of the range, low 32 bits
  vaHi: u32,        // ... high bits (page numbers reach 2^35)
  npages: u32,
  nwords: u32,      // npages * 1024 (or probe count for the probe kernel)
  nsources: u32,    // uTLBs sharing the fault filter
  pendOff: u32,     // word offset of the pending bitmap in state[]
  cntOff: u32,      // word offset of the access counters in state[]; 0: not counting
  devDirtyOff: u32, // word offset of the device pool's dirty bits in dirty[]
  doneWords: u32,   // words of one done bitmap
  parity: u32,      // 0: done[] holds prev then next; 1: next then prev
  cntFirst: u32,    // the range's first page's offset in its counter region (< cntPages)
  cntPages: u32,    // pages per counter region (the policy's granularity: 512 = 2 MiB)
}

struct FaultRecord {
  pageLo: u32,
  pageHi: u32,
  access: u32,
  source: u32,
}

struct FaultRing {
  put: atomic<u32>,      // next record index; may run past capacity (then overflow is set)
  overflow: atomic<u32>, // a record was dropped: the host must replay to find it again
  _pad0: u32,
  _pad1: u32,
  records: array<FaultRecord>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> tables: array<u32>;
// The command's data, a vec4 per thread (word w is io[w / 4][w % 4]).
@group(0) @binding(4) var<storage, read_write> io: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> state: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> ring: FaultRing;
@group(0) @binding(7) var<storage, read_write> dirty: array<atomic<u32>>;
// Two done bitmaps of doneWords words each. Plain loads/stores: within a round a word is
// written by one thread and only in the bitmap nobody reads this round.
@group(0) @binding(8) var<storage, read_write> done: array<u32>;

// WG threads a workgroup, THREADS_PER_PAGE (one per done word) a page, VECS_PER_THREAD
// vec4s (32 words) a thread. Words [256k, 256k + 256) of a command report through uTLB
// k % nsources (TLB_BLOCK_WORDS; faultSourceOf in TS): a page spans 4 blocks.

// The page walk. Level indices: bits [27..35] (root), [18..26], [9..17], [0..8] of the page
// number; table t's entries sit at tables[t * 512 ..]; table 0 is the root (the PDB).
// Returns the leaf entry, with a huge leaf's slot already advanced to the 4 KiB subpage,
// or 0 when any level is invalid. Branch-free: an invalid level walks on through the root
// (a harmless in-bounds read) and the validity is carried along, so when the page number
// is uniform the four loads stay uniform (no divergent control flow around them).
fn translate(pageLo: u32, pageHi: u32) -> u32 {
  let i3 = ((pageLo >> 27u) | (pageHi << 5u)) & 511u;
  let i2 = (pageLo >> 18u) & 511u;
  let i1 = (pageLo >> 9u) & 511u;
  let i0 = pageLo & 511u;
  let e3 = tables[i3];
  let v3 = (e3 & PTE_VALID) != 0u;
  let e2 = tables[select(0u, e3 >> PTE_INDEX_SHIFT, v3) * PT_ENTRIES + i2];
  let v2 = v3 & ((e2 & PTE_VALID) != 0u);
  let e1 = tables[select(0u, e2 >> PTE_INDEX_SHIFT, v2) * PT_ENTRIES + i1];
  let v1 = v2 & ((e1 & PTE_VALID) != 0u);
  let huge = (e1 & PTE_HUGE) != 0u;
  let e0 = tables[select(0u, e1 >> PTE_INDEX_SHIFT, v1 & !huge) * PT_ENTRIES + i0];
  // 2 MiB leaf at the PDE level: slots are contiguous, so the subpage is base + i0.
  let hugeLeaf = (((e1 >> PTE_INDEX_SHIFT) + i0) << PTE_INDEX_SHIFT) | (e1 & 0xffu);
  return select(0u, select(e0, hugeLeaf, huge), v1);
}

// Linear workgroup index over a 1-D or 2-D dispatch (2-D past 65535 workgroups).
fn linearWorkgroup(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wg.x + wg.y * nwg.x;
}

// The uTLB word `i` of the command goes through.
fn sourceOf(i: u32) -> u32 {
  return (i / TLB_BLOCK_WORDS) % params.nsources;
}

// Marks the slot's page dirty (the GPU wrote it): the host writes back exactly these.
fn markDirty(entry: u32) {
  let slot = entry >> PTE_INDEX_SHIFT;
  let w = select(0u, params.devDirtyOff, (entry & PTE_DEVICE) != 0u) + slot / 32u;
  let bit = 1u << (slot % 32u);
  if ((atomicLoad(&dirty[w]) & bit) == 0u) {
    atomicOr(&dirty[w], bit);
  }
}

// A miss. The words stay not-done (they are replayed next round); the first miss of this
// source on this page appends a record to the fault buffer — the uTLB's filtering of
// outstanding faults. Other sources may append duplicates: the host coalesces them.
fn recordFault(rangePage: u32, pageLo: u32, pageHi: u32, access: u32, source: u32) {
  let b = source * params.npages + rangePage;
  let bit = 1u << (b % 32u);
  let w = params.pendOff + b / 32u;
  if ((atomicLoad(&state[w]) & bit) != 0u) { return; }
  if ((atomicOr(&state[w], bit) & bit) != 0u) { return; }
  let slot = atomicAdd(&ring.put, 1u);
  if (slot >= arrayLength(&ring.records)) {
    // Buffer full: drop the record, flag overflow. Nothing is lost: the words are not
    // done, so the replay faults again.
    atomicStore(&ring.overflow, 1u);
    return;
  }
  ring.records[slot] = FaultRecord(pageLo, pageHi, access, source);
}

// Access counters (NVIDIA's per-region remote-access counters, uvm_gpu_access_counters.c; the
// hardware counts accesses that go over the link and the driver reads them out): one counter
// per cntPages-page region of the command's range, region r = (cntFirst + rangePage) / cntPages,
// counting the words accessed through an aperture (system memory) entry. Device-local
// entries (PTE_DEVICE) are not counted. The unit is one word accessed by one invocation;
// a thread adds its words to a region with one atomicAdd, so the cost is an atomic per thread
// (per region run, workloads.wgsl), never per word; a command not counting (cntOff == 0)
// skips it on a uniform branch.
fn countRemote(e: u32, rangePage: u32, words: u32) {
  if (params.cntOff == 0u || (e & PTE_DEVICE) != 0u || words == 0u) { return; }
  atomicAdd(&state[params.cntOff + (params.cntFirst + rangePage) / params.cntPages], words);
}

// The done bitmaps of done word w: this round reads `prev` (bits of words done in earlier
// rounds) and writes `next`; params.parity says which half is which (see mirrorThread).
struct DoneWord {
  prev: u32,
  nextIndex: u32,
}

fn doneWord(w: u32) -> DoneWord {
  let odd = params.parity != 0u;
  let prevW = select(0u, params.doneWords, odd) + w;
  let nextW = select(params.doneWords, 0u, odd) + w;
  return DoneWord(done[prevW], nextW);
}

// One thread of a kernel: done word w = the thread's global index, words 32w .. 32w + 31
// of the command, vec4s 8w .. 8w + 7 of io, in range page w / 32. `need`: entry bits the
// access requires; `access`: ACCESS_* for the fault record and for doAccess (defined by each
// kernel file: doAccess(access, e, j, addr, prev) does the access for io vec4s j .. j + 7 at
// pool vec4s addr .. addr + 7, leaving alone the words whose bit is set in `prev` — done
// in an earlier round).
//
// Done bits are double-buffered: this round reads `prev` and writes `next` (the host flips
// params.parity between rounds), so a bit set this round is never seen this round. The 32
// words of a done word see the same entry (the tables do not change during a dispatch), so
// they share one outcome, and their thread does the bookkeeping for all 32: next word,
// missed count, dirty bit, fault record. No barriers, and no atomics unless it missed.
fn mirrorThread(wg: vec3<u32>, nwg: vec3<u32>, lidx: u32, need: u32, access: u32) {
  let w = linearWorkgroup(wg, nwg) * WG + lidx;
  let rangePage = w / THREADS_PER_PAGE;
  let pageLo = params.vaLo + rangePage;
  let pageHi = params.vaHi + select(0u, 1u, pageLo < params.vaLo);
  let e = translate(pageLo, pageHi);
  let ok = (e & need) == need;
  if (rangePage >= params.npages) { return; } // the last workgroup may run past the range
  let d = doneWord(w);
  let prev = d.prev;
  let nextW = d.nextIndex;
  if (prev == 0xffffffffu) {
    done[nextW] = prev;
    return;
  }
  if (ok) {
    let addr = (e >> PTE_INDEX_SHIFT) * VECS_PER_PAGE + (w % THREADS_PER_PAGE) * VECS_PER_THREAD;
    doAccess(access, e, w * VECS_PER_THREAD, addr, prev);
    countRemote(e, rangePage, countOneBits(~prev));
    done[nextW] = 0xffffffffu;
    if (access != ACCESS_READ) { markDirty(e); }
  } else {
    done[nextW] = prev;
    atomicAdd(&state[STATE_MISSED], countOneBits(~prev));
    let prot = select(0u, ACCESS_PROTECTION, (e & PTE_VALID) != 0u);
    recordFault(rangePage, pageLo, pageHi, access | prot, sourceOf(w * 32u));
  }
}
