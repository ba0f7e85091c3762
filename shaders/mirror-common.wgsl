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
// 32 consecutive words (8 vec4s), all in one page; 32 threads serve a page and a WG-thread
// workgroup serves PAGES_PER_WG consecutive pages of the range (WG is the engine's, up to
// what the adapter allows: src/device/abi.ts). The mirror kernels translate through a TLB
// in workgroup memory (tlbFill): one walk and one done-word load per page per workgroup,
// the leaf broadcast to the page's threads; a workgroup is a uTLB and sends one fault
// record per page it missed (tlbReport). The workload kernels (workloads.wgsl) keep a
// per-thread translation cache and record through the per-(uTLB, page) pending filter.

// Constants (PTE_* entry bits of src/device/page-table.ts, ACCESS_* fault codes, sizes,
// STATE_MISSED) are not written here: src/device/abi.ts generates them from the TS and
// prepends them to every kernel. ACCESS_PROTECTION is set in a record's access word when the
// PTE was valid but lacked the right (UVM's write/atomic fault types, as opposed to an
// invalid PDE/PTE).

// state[] layout (words): 0 reserved for kernels of other files (createKernels: e.g. the
// workloads' mismatch count; zeroed with the command, never by a round), 1 words left not
// done by this round (reset each round), 2 the TLB's lookups and 3 its walks this round (mirror
// kernels; reset each round), then the pending bitmap at pendOff (cleared every round), then (only
// when counting: cntOff != 0) the access counters at cntOff (cleared every round). The done
// bitmaps are in done[] (see mirrorThread). There is no done counter: every word not done
// before a round is either done by it or counted missed, so the host knows the done count
// is nwords - missed. A round of a mirror kernel that faults nowhere touches two global
// atomics per workgroup (the TLB statistics), none per thread.

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

// The uTLB word `i` of a workload command goes through (256-word blocks, TLB_BLOCK_WORDS).
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

// A miss of a workload kernel's thread. The words stay not-done (they are replayed next round); the first miss of this
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

// The workgroup's TLB (a GPU's L1 TLB / uTLB, here in workgroup memory): one entry per page
// the workgroup serves, filled by one walk per page (tlbFill; the entries do not change
// during a dispatch, so a walk is good for the whole round) and broadcast to the page's 32
// threads. tlbWork gathers, before the barrier, what the page's threads have to do: per
// thread that has words not done, 1 << 16 plus those words (at most 32 threads and 1024
// words a page) — the workgroup reduction the uTLB's report is made from.
var<workgroup> tlbLeaf: array<u32, PAGES_PER_WG>;
var<workgroup> tlbWork: array<atomic<u32>, PAGES_PER_WG>;

// The done bitmaps: this round reads `prev` (bits of words done in earlier rounds) and writes
// `next`; params.parity says which half is which.
fn prevDoneIndex(w: u32) -> u32 {
  return select(0u, params.doneWords, params.parity != 0u) + w;
}

fn nextDoneIndex(w: u32) -> u32 {
  return select(params.doneWords, 0u, params.parity != 0u) + w;
}

// Both for a kernel whose thread owns done word w (the workload kernels).
struct DoneWord {
  prev: u32,
  nextIndex: u32,
}

fn doneWord(w: u32) -> DoneWord {
  return DoneWord(done[prevDoneIndex(w)], nextDoneIndex(w));
}

// TLB fill, by thread `t` < PAGES_PER_WG for the workgroup's page t (range page rp): the
// one walk of the page this round. A page past the range is not walked.
fn tlbFill(t: u32, rp: u32) {
  var e = 0u;
  if (rp < params.npages) {
    let pageLo = params.vaLo + rp;
    e = translate(pageLo, params.vaHi + select(0u, 1u, pageLo < params.vaLo));
  }
  tlbLeaf[t] = e;
}

// After the barrier, thread t < PAGES_PER_WG does its page's per-page bookkeeping when the
// page had work and may be accessed: its dirty bit (a write or atomic) and its access count
// — once per page, not per thread.
fn tlbPageBookkeeping(t: u32, rp: u32, need: u32, access: u32) {
  let work = atomicLoad(&tlbWork[t]);
  let e = tlbLeaf[t];
  if (work == 0u || (e & need) != need) { return; }
  countRemote(e, rp, work & 0xffffu);
  if (access != ACCESS_READ) { markDirty(e); }
}

// Thread 0 reports for the whole workgroup — the uTLB's side of the fault buffer (UVM: a
// uTLB sends one fault per outstanding (page, access), and no more while it waits for the
// replay): one record per page that missed with words to do, its slots reserved with one
// atomicAdd on PUT; the words left not done added to the missed count with one atomic; and
// the TLB's statistics (lookups: threads that needed a translation; walks: pages walked)
// with one atomic each. The record's source is the workgroup's uTLB id (linear workgroup %
// nsources; faultSourceOf in TS).
fn tlbReport(wgi: u32, need: u32, access: u32) {
  var walks = 0u;
  var lookups = 0u;
  var misses = 0u;
  var missed = 0u;
  for (var t = 0u; t < PAGES_PER_WG; t++) {
    if (wgi * PAGES_PER_WG + t >= params.npages) { break; }
    walks++;
    let work = atomicLoad(&tlbWork[t]);
    lookups += work >> 16u;
    if (work != 0u && (tlbLeaf[t] & need) != need) {
      misses++;
      missed += work & 0xffffu;
    }
  }
  if (walks == 0u) { return; }
  atomicAdd(&state[STATE_TLB_LOOKUPS], lookups);
  atomicAdd(&state[STATE_TLB_WALKS], walks);
  if (misses == 0u) { return; }
  atomicAdd(&state[STATE_MISSED], missed);
  var slot = atomicAdd(&ring.put, misses);
  let cap = arrayLength(&ring.records);
  let source = wgi % params.nsources;
  for (var t = 0u; t < PAGES_PER_WG; t++) {
    let e = tlbLeaf[t];
    if (atomicLoad(&tlbWork[t]) == 0u || (e & need) == need) { continue; }
    if (slot >= cap) {
      // Buffer full: drop the record, flag overflow. Nothing is lost: the words are not
      // done, so the replay faults again.
      atomicStore(&ring.overflow, 1u);
      break;
    }
    let rp = wgi * PAGES_PER_WG + t;
    let pageLo = params.vaLo + rp;
    let pageHi = params.vaHi + select(0u, 1u, pageLo < params.vaLo);
    let prot = select(0u, ACCESS_PROTECTION, (e & PTE_VALID) != 0u);
    ring.records[slot] = FaultRecord(pageLo, pageHi, access | prot, source);
    slot++;
  }
}

// One thread of a mirror kernel: done word w = the thread's global index, words 32w .. 32w +
// 31 of the command, vec4s 8w .. 8w + 7 of io, in range page w / 32. `need`: entry bits the
// access requires; `access`: ACCESS_* for the fault record and for doAccess (defined by each
// kernel file: doAccess(access, e, j, addr, prev) does the access for io vec4s j .. j + 7 at
// pool vec4s addr .. addr + 7, leaving alone the words whose bit is set in `prev` — done
// in an earlier round).
//
// Before the one barrier: the thread loads its done word and adds what it has to do to its
// page's tlbWork; threads 0 .. PAGES_PER_WG - 1 walk a page each. After it: the translation
// is a workgroup-memory lookup, then the copy and one done-word store; the bookkeeping is
// per page (tlbPageBookkeeping) and per workgroup (tlbReport). Done bits are
// double-buffered: this round reads `prev` and writes `next` (the host flips params.parity
// between rounds), so a bit set this round is never seen this round.
fn mirrorThread(wg: vec3<u32>, nwg: vec3<u32>, lidx: u32, need: u32, access: u32) {
  let wgi = linearWorkgroup(wg, nwg);
  let w = wgi * WG + lidx;
  let t = lidx / THREADS_PER_PAGE;
  let inRange = w / THREADS_PER_PAGE < params.npages; // the last workgroup may run past the range
  var prev = 0xffffffffu;
  if (inRange) { prev = done[prevDoneIndex(w)]; }
  if (prev != 0xffffffffu) { atomicAdd(&tlbWork[t], (1u << 16u) + countOneBits(~prev)); }
  if (lidx < PAGES_PER_WG) { tlbFill(lidx, wgi * PAGES_PER_WG + lidx); }
  workgroupBarrier();
  if (lidx < PAGES_PER_WG) { tlbPageBookkeeping(lidx, wgi * PAGES_PER_WG + lidx, need, access); }
  if (lidx == 0u) { tlbReport(wgi, need, access); }
  if (!inRange) { return; }
  let nextW = nextDoneIndex(w);
  let e = tlbLeaf[t];
  if (prev != 0xffffffffu && (e & need) == need) {
    let addr = (e >> PTE_INDEX_SHIFT) * VECS_PER_PAGE + (w % THREADS_PER_PAGE) * VECS_PER_THREAD;
    doAccess(access, e, w * VECS_PER_THREAD, addr, prev);
    done[nextW] = 0xffffffffu;
  } else {
    done[nextW] = prev;
  }
}
