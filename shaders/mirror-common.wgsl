// mirror-common.wgsl — shared by every mirror kernel (prepended in TS: WGSL has no #include).
//
// The GPU half of an HMM device mirror (lib/test_hmm.c "dmirror", NVIDIA UVM, nouveau):
//   * `tables` is the mirrored page table, walked like a GPU MMU walks its PDEs/PTEs;
//   * `ring` is the replayable fault buffer a miss is reported through (UVM's
//     GMMU fault buffer: PUT advanced by the GPU, drained by the driver);
//   * `done` holds the per-command done bitmaps (replay: a faulted word simply runs again
//     next round), `state` the counters and the per-(uTLB, page, access kind) pending bitmap that
//     filters duplicate fault records;
//   * `dirty` is a per-slot bitmap the driver writes back from (the PTE dirty bit, per slot).
// Bindings 2 (aperture) and 3 (vram) are declared by each kernel file: array<vec4<u32>>
// for read/write, array<atomic<u32>> for atomics. All files share one bind group layout.
//
// Work layout: a command is `npages * 1024` words — the "invocations" of the host-side
// model: each has a done bit and is replayed until done. A thread serves one done word:
// 32 consecutive words (8 vec4s), all in one page; 32 threads serve a page and a WG-thread
// workgroup serves PAGES_PER_WG consecutive pages of the range (WG is the engine's, up to
// src/device/abi.ts). The mirror kernels translate through a TLB in workgroup memory
// (tlbFill): one walk per page per workgroup, the leaf broadcast to the page's threads, and
// their threads touch no atomic (mirror_read_fresh, the commonest round, through the range's
// leaves instead: one walk per page per round, no barrier; see mirrorThreadFresh); a second dispatch in the same pass, the report pass
// (mirrorReport, one thread per page), turns what the round did into per-page bookkeeping
// and one fault record per missed page per uTLB (a workgroup of the first dispatch). The
// split is measured: on llvmpipe the mere presence of the fault path (atomics, record
// stores) in the copy kernel cost 0.4-1.0x of a bare copy's time, even untaken. The
// workload kernels (workloads.wgsl) and the application kernels (app-access.wgsl) translate
// through the range's leaves (gate_reach, mirror-gate.wgsl) and record through the
// per-(uTLB, page, access kind) pending filter.

// Constants (PTE_* entry bits of src/device/page-table.ts, ACCESS_* fault codes, sizes,
// STATE_MISSED) are not written here: src/device/abi.ts generates them from the TS and
// prepends them to every kernel. ACCESS_PROTECTION is set in a record's access word when the
// PTE was valid but lacked the right (UVM's write/atomic fault types, as opposed to an
// invalid PDE/PTE).

// state[] layout (words): 0 reserved for kernels of other files (createKernels: e.g. the
// workloads' mismatch count; zeroed with the command, never by a round), 1 words left not
// done by this round (reset each round), 2 the TLB's lookups and 3 its walks this round (mirror
// kernels; reset each round), 4..6 the record pass's indirect dispatch (x, y, z; reset each
// round), 7 and 8 the stall gate's runnable and stalled workgroups (mirror-gate.wgsl; reset each round),
// 9..11 reserved, then the pending bitmap at pendOff (cleared every round), then (only
// when counting: cntOff != 0) the access counters at cntOff (cleared every round). The done
// bitmaps are in done[] (see mirrorThread). There is no done counter: every word not done
// before a round is either done by it or counted missed, so the host knows the done count
// is nwords - missed. A round of a mirror kernel that faults nowhere touches two global
// atomics per report workgroup (the TLB statistics), none per thread.

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
  leafOff: u32,     // word offset in done[] of the leaves tlbFill leaves for the report pass
  gateOff: u32,     // word offset in done[] of the stall gate's run list and miss lists; 0: not gated
  replayAll: u32,   // 1: the gate runs every workgroup with work this round (an entry was revoked)
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
// Two done bitmaps of doneWords words each, then (at leafOff) one leaf per range page. Plain
// loads/stores: within a round a word is written by one thread and only in the bitmap
// nobody reads this round; the report pass reads both after the kernel's dispatch.
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

// The stall gate's words in state[] (mirror-gate.wgsl writes the run list, app-access.wgsl
// the lists): the workgroups of a gated command, and workgroup g's miss list — after the run
// list (a word per workgroup), GATE_LIST_WORDS each.
fn gateGroups() -> u32 {
  return (params.doneWords + PAGES_PER_WG - 1u) / PAGES_PER_WG;
}

fn gateListOf(g: u32) -> u32 {
  return params.gateOff + gateGroups() + g * GATE_LIST_WORDS;
}

// A list's words (abi.ts GATE_HEAD_WORDS): list + 0 the header; list + 1, + 2 the mask of
// entries still missing; then entry k; then invocation j's mask of the entries it missed.
fn gateEntryOf(list: u32, k: u32) -> u32 {
  return list + GATE_HEAD_WORDS + k;
}

fn gateMaskOf(list: u32, j: u32) -> u32 {
  return list + GATE_HEAD_WORDS + MISS_LIST + 2u * j;
}

// Linear workgroup index over a 1-D or 2-D dispatch (2-D past 65535 workgroups).
fn linearWorkgroup(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wg.x + wg.y * nwg.x;
}

// The uTLB word `i` of a workload command goes through (256-word blocks, TLB_BLOCK_WORDS).
fn sourceOf(i: u32) -> u32 {
  return (i / TLB_BLOCK_WORDS) % params.nsources;
}

// POOL (a pipeline override; RANGE_POOLS and LEAF_POOLS in page-table-defs.ts): 0, each entry says
// where its page is (PTE_DEVICE); POOL_SYSTEM / POOL_DEVICE, every leaf of the range is in the
// aperture / in VRAM, as the host checked after the flush (GpuPageTable.poolOf for
// mirror_read_fresh, leafPool for a kernel that translates through the range's leaves);
// POOL_RESIDENT (leafPool's kernels only), every page has a VRAM leaf with write rights, so
// nothing can miss either (reach compiles to true). llvmpipe runs both sides
// of a branch for every 8-lane batch, so a load or store per pool behind the entry's bit costs
// both pools' accesses, and a remote-access count is made for every access; a known pool
// compiles the other side out.
override POOL: u32 = 0u;

fn inDevice(e: u32) -> bool {
  return select((e & PTE_DEVICE) != 0u, POOL == POOL_DEVICE || POOL == POOL_RESIDENT, POOL != 0u);
}

// The mirror entry of the range page holding word w, for a kernel that translates through
// the range's leaves (app-access.wgsl, workloads.wgsl): the leaf gate_reach (mirror-gate.wgsl)
// left at leafOff before the kernel, one walk per page of the range a round (the entries do not
// change during a dispatch). So a translation is one load — where a per-thread cache of walked
// entries walked the 4-level table on llvmpipe, which runs both sides of every branch for each
// 8-lane batch, on every access, hit or not.
fn rangeLeaf(w: u32) -> u32 {
  return done[params.leafOff + w / WORDS_PER_PAGE];
}

// Marks the slot's page dirty (the GPU wrote it): the host writes back exactly these.
fn markDirty(entry: u32) {
  let slot = entry >> PTE_INDEX_SHIFT;
  let w = select(0u, params.devDirtyOff, inDevice(entry)) + slot / 32u;
  let bit = 1u << (slot % 32u);
  if ((atomicLoad(&dirty[w]) & bit) == 0u) {
    atomicOr(&dirty[w], bit);
  }
}

// A miss of a workload kernel's thread. The words stay not-done (they are replayed next round); the first miss of this
// source on this page with this access kind appends a record to the fault buffer — the uTLB's
// filtering of outstanding faults, per kind (PEND_BITS_PER_PAGE), so which of a uTLB's
// workgroups gets there first cannot hide a write behind a read. Other sources, and other
// kinds, may append duplicates: the host coalesces them.
fn recordFault(rangePage: u32, pageLo: u32, pageHi: u32, access: u32, source: u32) {
  let b = (source * params.npages + rangePage) * PEND_BITS_PER_PAGE + (access & 3u);
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
  if (params.cntOff == 0u || inDevice(e) || words == 0u) { return; }
  atomicAdd(&state[params.cntOff + (params.cntFirst + rangePage) / params.cntPages], words);
}

// What a thread of a kernel with its own translation (workloads.wgsl's Ctx, app-access.wgsl's
// Acc) holds back to write once: the fault it has yet to record, the page
// and the most intrusive access its invocations missed it with (bit 0 read, bit 1 write),
// recorded when the page changes and at the end (the pending filter keeps one record per
// (uTLB, page) and round, so the write is kept, as UVM keeps a fault's most intrusive
// access); and its remote accesses not yet added to their access counter, the region (see
// countRemote) and the words, added when the region changes and at the end, so a run of
// accesses to one region costs one atomicAdd.
struct Pending {
  faultPage: u32,
  faultKinds: u32,
  faultEntry: u32,
  cntRegion: u32,
  cntWords: u32,
}

fn pendingNew() -> Pending {
  return Pending(0xffffffffu, 0u, 0u, 0xffffffffu, 0u);
}

// Records the pending fault, if any, from uTLB `src`.
fn flushFault(p: ptr<function, Pending>, src: u32) {
  if ((*p).faultKinds == 0u) { return; }
  let rp = (*p).faultPage;
  let pageLo = params.vaLo + rp;
  let pageHi = params.vaHi + select(0u, 1u, pageLo < params.vaLo);
  let wr = ((*p).faultKinds & 2u) != 0u;
  // A protection fault: the entry is valid but lacks the right (only a write can lack it).
  let prot = select(0u, ACCESS_PROTECTION, ((*p).faultEntry & PTE_VALID) != 0u);
  recordFault(rp, pageLo, pageHi, select(ACCESS_READ, ACCESS_WRITE, wr) | prot, src);
  (*p).faultKinds = 0u;
}

// Word w missed through entry e: the fault pends (the previous page's is recorded first).
fn pendFault(p: ptr<function, Pending>, e: u32, w: u32, wr: bool, src: u32) {
  let rp = w / WORDS_PER_PAGE;
  if (rp != (*p).faultPage) {
    flushFault(p, src);
    (*p).faultPage = rp;
    (*p).faultEntry = e;
  }
  (*p).faultKinds |= select(1u, 2u, wr);
}

// Adds the pending remote accesses to their region's counter (countRemote, batched).
fn flushCount(p: ptr<function, Pending>) {
  if ((*p).cntWords == 0u) { return; }
  atomicAdd(&state[params.cntOff + (*p).cntRegion], (*p).cntWords);
  (*p).cntWords = 0u;
}

// One access to word w through entry e: counted when remote (an aperture entry) and counting.
fn countAccess(p: ptr<function, Pending>, e: u32, w: u32) {
  if (params.cntOff == 0u || inDevice(e)) { return; }
  let r = (params.cntFirst + w / WORDS_PER_PAGE) / params.cntPages;
  if (r != (*p).cntRegion) {
    flushCount(p);
    (*p).cntRegion = r;
  }
  (*p).cntWords += 1u;
}

// The pool word of range word w, through entry e (reached before).
fn poolAddr(e: u32, w: u32) -> u32 {
  return (e >> PTE_INDEX_SHIFT) * WORDS_PER_PAGE + w % WORDS_PER_PAGE;
}

// The workgroup's TLB (a GPU's L1 TLB, here in workgroup memory): one entry per page the
// workgroup serves, filled at the start of the dispatch by one walk per page (tlbFill; the
// entries do not change during a dispatch, so a walk is good for the whole round) and
// broadcast to the page's 32 threads through workgroup memory.
var<workgroup> tlbLeaf: array<u32, PAGES_PER_WG>;

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

// TLB fill, by thread t < PAGES_PER_WG for the workgroup's page t: the one walk of the page
// this round (a page past the range is not walked). The leaf is also left in done[] at
// leafOff for the round's report pass (mirrorReport), which so needs no walk of its own.
fn tlbFill(t: u32, wgi: u32) {
  let rp = wgi * PAGES_PER_WG + t;
  var e = 0u;
  if (rp < params.npages) {
    let pageLo = params.vaLo + rp;
    e = translate(pageLo, params.vaHi + select(0u, 1u, pageLo < params.vaLo));
    done[params.leafOff + rp] = e;
  }
  tlbLeaf[t] = e;
}

// One thread of a mirror kernel: done word w = the thread's global index, words 32w .. 32w +
// 31 of the command, vec4s 8w .. 8w + 7 of io, in range page w / 32. `need`: entry bits the
// access requires; `access`: ACCESS_* for doAccess (defined by each kernel file:
// doAccess(access, e, j, addr, prev) does the access for io vec4s j .. j + 7 at pool vec4s
// addr .. addr + 7, leaving alone the words whose bit is set in `prev` — done in an earlier
// round).
//
// Threads 0 .. PAGES_PER_WG - 1 fill the TLB; after the barrier the translation is a
// workgroup-memory lookup, then the copy and one done-word store: no atomic, no fault
// record — a thread that misses only leaves its done word as it was. What the round did per
// page (faults, dirty bits, access counts, TLB statistics) is the report pass's, which reads
// it back from the done bitmaps (mirrorReport). Done bits are double-buffered: this round
// reads `prev` and writes `next` (the host flips params.parity between rounds), so a bit
// set this round is never seen this round.
fn mirrorThread(wg: vec3<u32>, nwg: vec3<u32>, lidx: u32, need: u32, access: u32) {
  let wgi = linearWorkgroup(wg, nwg);
  if (lidx < PAGES_PER_WG) { tlbFill(lidx, wgi); }
  workgroupBarrier();
  let w = wgi * WG + lidx;
  if (w / THREADS_PER_PAGE >= params.npages) { return; } // the last workgroup may run past the range
  let prev = done[prevDoneIndex(w)];
  let nextW = nextDoneIndex(w);
  let e = tlbLeaf[lidx / THREADS_PER_PAGE];
  if (prev != 0xffffffffu && (e & need) == need) {
    let addr = (e >> PTE_INDEX_SHIFT) * VECS_PER_PAGE + (w % THREADS_PER_PAGE) * VECS_PER_THREAD;
    doAccess(access, e, w * VECS_PER_THREAD, addr, prev);
    done[nextW] = 0xffffffffu;
  } else {
    done[nextW] = prev;
  }
}

// A first round that cannot miss (mirrorThread's fresh variant): the host knows no word of
// the command is done yet (its done count is 0) and that the table maps the whole range
// with the access's rights (the engine's quiet rounds: GpuPageTable.covers after the
// flush), so every thread moves its 32 words and neither done bitmap is read or written:
// the engine records the finish on the host (MirrorCommand.setDone; readDone answers
// all-done for it). Its translation is the range's leaves, walked once per page by gate_reach
// earlier in the same pass (mirror-gate.wgsl; the application kernels' path): one load per
// thread, no workgroup TLB. Measured on llvmpipe, the TLB's fill and workgroup barrier made
// this kernel 1.18x / 1.27x a bare copy's GPU time at 4 / 64 MiB; through the leaves 1.03x /
// 1.01x (a throwaway timing of queue.submit, which runs the work on Dawn's GL backend). The
// leaf is still checked, so no word is ever moved through an entry without the rights (were
// the host wrong, the words of that page would stay as the io held them: covers() is what it
// trusts).
//
// Under a known pool (POOL, above) the leaf's PTE_DEVICE is still checked against it, so an
// entry in the other pool moves nothing, like one without the rights.
fn mirrorThreadFresh(wg: vec3<u32>, nwg: vec3<u32>, lidx: u32, need: u32, access: u32) {
  let wgi = linearWorkgroup(wg, nwg);
  let w = wgi * WG + lidx;
  if (w / THREADS_PER_PAGE >= params.npages) { return; }
  let e = rangeLeaf(w * (WORDS_PER_PAGE / THREADS_PER_PAGE)); // its first word's page
  let mask = need | select(0u, PTE_DEVICE, POOL != 0u);
  if ((e & mask) == (need | select(0u, PTE_DEVICE, POOL == POOL_DEVICE))) {
    let addr = (e >> PTE_INDEX_SHIFT) * VECS_PER_PAGE + (w % THREADS_PER_PAGE) * VECS_PER_THREAD;
    doAccess(access, e, w * VECS_PER_THREAD, addr, 0u);
  }
}

// A cold round: the engine's kernel over a range where the table maps no page at all (the
// host knows it: GpuPageTable.mapsNone after the round's flush), so no word can move — a
// GPU's first touch of a range nobody mapped for it yet, where every access faults in the
// MMU's walk before any data moves. One thread per range page instead of 32: the page's
// one walk (the leaf left at leafOff, for the report and record passes, exactly as tlbFill
// leaves it), and its 32 done words carried from `prev` to `next` unchanged (what
// mirrorThread's 32 threads store for a page they cannot access). No workgroup TLB, no
// barrier, no 32-word copies; op-independent (it never touches a pool), so one pipeline
// serves read, write and atomic. The report and record passes then run as in any round:
// the same missed count, fault records and done bitmaps as a normal round gives (and the
// same TLB figures: the report pass counts the range's shape, as for a quiet round).
fn mirrorCold(wg: vec3<u32>, nwg: vec3<u32>, lidx: u32) {
  let rp = linearWorkgroup(wg, nwg) * WG + lidx;
  if (rp >= params.npages) { return; }
  let pageLo = params.vaLo + rp;
  done[params.leafOff + rp] = translate(pageLo, params.vaHi + select(0u, 1u, pageLo < params.vaLo));
  let w0 = rp * THREADS_PER_PAGE;
  let p0 = prevDoneIndex(w0);
  let n0 = nextDoneIndex(w0);
  for (var k = 0u; k < THREADS_PER_PAGE; k++) { done[n0 + k] = done[p0 + k]; }
}

// The report pass, after mirrorThread's dispatch in the same pass: one thread per range
// page, reading what the round did from the leaf tlbFill left and, where it matters, the
// page's 32 done words before (prev) or after (next) the round. A page whose words were done
// by this round gets its access count (countRemote) and, for a write or atomic, its dirty
// bit, once for the page. A page that missed with words left not done adds them to the
// missed count and makes the record pass run (mirrorRecord, dispatched indirectly through state[STATE_RECORD_ARGS]: zero
// workgroups in a round that faulted nowhere). The TLB's statistics for the round (like
// UVM's per-GPU counters), one atomic each per report workgroup: lookups — one per thread
// of the range (each read its page's entry from workgroup memory); walks — one per page
// (one walk per page per workgroup).
//
// Why three passes: measured on llvmpipe, the fault-record code (the ring's atomics and
// stores) in a kernel costs that kernel 0.4-1.0x of a bare copy's time even when no thread
// takes it, so neither the copy nor this pass, which run every round, holds it.
fn mirrorReport(wg: vec3<u32>, nwg: vec3<u32>, lidx: u32, need: u32, access: u32) {
  let wgi = linearWorkgroup(wg, nwg);
  let rp = wgi * WG + lidx;
  if ((access != ACCESS_READ || params.cntOff != 0u) && rp < params.npages) {
    // Accessed: the words this round did (those not done before it). A plain read that
    // does not count has nothing to do here, and reads no done word.
    let e = done[params.leafOff + rp];
    if ((e & need) == need) {
      let p0 = prevDoneIndex(rp * THREADS_PER_PAGE);
      var work = 0u;
      for (var k = 0u; k < THREADS_PER_PAGE; k++) { work += countOneBits(~done[p0 + k]); }
      if (work != 0u) {
        countRemote(e, rp, work);
        if (access != ACCESS_READ) { markDirty(e); }
      }
    }
  }
  // One thread per report workgroup does the rest, serially over the workgroup's pages: on
  // a SIMD CPU rasteriser (llvmpipe) a divergent branch with global atomics costs every lane
  // even when none takes it (measured: ~1x a bare copy), a loop in one lane does not.
  if (lidx != 0u) { return; }
  let first = wgi * WG;
  let pages = min(WG, params.npages - min(params.npages, first));
  if (pages == 0u) { return; }
  atomicAdd(&state[STATE_TLB_LOOKUPS], pages * THREADS_PER_PAGE);
  atomicAdd(&state[STATE_TLB_WALKS], pages);
  var missed = 0u;
  for (var t = 0u; t < pages; t++) {
    if ((done[params.leafOff + first + t] & need) != need) { missed += pageMissed(first + t); }
  }
  if (missed != 0u) {
    atomicAdd(&state[STATE_MISSED], missed);
    atomicStore(&state[STATE_RECORD_ARGS], (params.npages + WG - 1u) / WG);
    atomicStore(&state[STATE_RECORD_ARGS + 1u], 1u);
    atomicStore(&state[STATE_RECORD_ARGS + 2u], 1u);
  }
}

// The words of range page rp a round left not done (after its dispatch: the next bitmap).
fn pageMissed(rp: u32) -> u32 {
  let n0 = nextDoneIndex(rp * THREADS_PER_PAGE);
  var missed = 0u;
  for (var k = 0u; k < THREADS_PER_PAGE; k++) { missed += countOneBits(~done[n0 + k]); }
  return missed;
}

// The record pass (only in a round with a miss): one thread per range page. A page that
// missed with words to do gets one record from the uTLB of the workgroup that served it
// (range page / PAGES_PER_WG, % nsources; faultSourceOf in TS) — UVM's uTLB sends one
// fault per outstanding (page, access), and no more while it waits for the replay — after
// a workgroup reduction: one atomicAdd on PUT per workgroup. (Its state[] binding is a
// stand-in: state holds its indirect arguments, and a buffer may not be both in one dispatch.)
var<workgroup> rptMisses: atomic<u32>;
var<workgroup> rptBase: u32;

fn mirrorRecord(wg: vec3<u32>, nwg: vec3<u32>, lidx: u32, need: u32, access: u32) {
  let rp = linearWorkgroup(wg, nwg) * WG + lidx;
  var missed = 0u;
  var e = 0u;
  var local = 0u;
  if (rp < params.npages) {
    e = done[params.leafOff + rp];
    if ((e & need) != need) { missed = pageMissed(rp); }
    if (missed != 0u) { local = atomicAdd(&rptMisses, 1u); }
  }
  let n = workgroupUniformLoad(&rptMisses);
  if (n == 0u) { return; }
  if (lidx == 0u) { rptBase = atomicAdd(&ring.put, n); }
  let base = workgroupUniformLoad(&rptBase);
  if (missed == 0u) { return; }
  let slot = base + local;
  if (slot >= arrayLength(&ring.records)) {
    // Buffer full: drop the record, flag overflow. Nothing is lost: the words are not
    // done, so the replay faults again.
    atomicStore(&ring.overflow, 1u);
    return;
  }
  let pageLo = params.vaLo + rp;
  let pageHi = params.vaHi + select(0u, 1u, pageLo < params.vaLo);
  let prot = select(0u, ACCESS_PROTECTION, (e & PTE_VALID) != 0u);
  ring.records[slot] = FaultRecord(pageLo, pageHi, access | prot, (rp / PAGES_PER_WG) % params.nsources);
}
