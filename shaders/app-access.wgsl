// app-access.wgsl — how the application workloads (Rodinia, PolyBench/GPU, the pointer
// chase: shaders/app-*.wgsl) reach mirrored memory. Prepended to each of their kernel files
// (after mirror-common.wgsl, same bind group layout), and followed by one of
// app-mem-plain.wgsl / app-mem-atomic.wgsl, which declare the two pools and memLoad/memStore.
//
// A launch is one command over the workload's whole buffer (the Params range): its
// invocations are the CUDA threads (or, where the original shares a tile in shared memory,
// the thread blocks) of the original kernel, invocation i = done bit i. The kernel file
// defines `fn invocation(c: ptr<function, Acc>, i: u32) -> bool`, which
//   1. reaches every word it will touch (reach: translated through the mirror with the
//      rights it needs; a miss notes a fault for that page and the invocation goes on
//      reaching the rest, as a warp issues its independent loads before it stalls);
//      loads whose address depends on a loaded value are reached, loaded, then the next
//      level reached — so a pointer's target faults only once the pointer is resident;
//   2. returns false if anything missed (no store done: it runs again next round, after
//      the driver serviced its faults), or
//   3. does its loads and stores and returns true (its done bit is set; it never runs again
//      in this launch).
// So every store of a launch happens exactly once, whatever the faults, and a launch's
// result does not depend on how its rounds fell. A kernel that keeps state across rounds (the
// pointer chase: how far along the chain it is) keeps it in io, like a stalled warp's
// registers.
//
// Words are numbered from the buffer's start (range word w = range page w / 1024, word
// w % 1024); each load and store through an aperture entry is one access for the access
// counters (countRemote in mirror-common.wgsl, batched per thread as in workloads.wgsl).
//
// io (u32 words): [IO_ACTIVE] invocations that run (also the command's invocation count,
// params.nwords, which is what the entry point goes by); from
// IO_PARAMS the launch's parameters (u32, or f32 bits); from IO_OUT words the kernel
// writes for the host (a flag, a sum); from IO_STATE per-invocation state (the pointer chase).

// mirrorThread (mirror-common.wgsl) calls the kernel file's doAccess; app kernels never call
// mirrorThread, so this only has to compile.
fn doAccess(access: u32, e: u32, j: u32, addr: u32, prev: u32) {}

const IO_ACTIVE: u32 = 0u;
const IO_PARAMS: u32 = 1u;
const IO_OUT: u32 = 48u;
const IO_STATE: u32 = 64u;

fn ioLoad(k: u32) -> u32 {
  return io[k / 4u][k % 4u];
}

fn ioStore(k: u32, v: u32) {
  io[k / 4u][k % 4u] = v;
}

fn param(k: u32) -> u32 {
  return ioLoad(IO_PARAMS + k);
}

fn paramf(k: u32) -> f32 {
  return bitcast<f32>(ioLoad(IO_PARAMS + k));
}

// Per-thread access state: the fault not yet recorded and the remote accesses not yet
// counted (mirror-common.wgsl's Pending).
struct Acc {
  pend: Pending,
  src: u32,
  missed: bool,
  // The workgroup miss-list entries this invocation missed (bit k: entry k; the stall gate's,
  // see listMiss), low and high 32.
  missLo: u32,
  missHi: u32,
}

fn accNew(src: u32) -> Acc {
  return Acc(pendingNew(), src, false, 0u, 0u);
}

// The mirror entry of the range page holding word w (rangeLeaf, mirror-common.wgsl).
fn entryOf(c: ptr<function, Acc>, w: u32) -> u32 {
  return rangeLeaf(w);
}

// Can word w be accessed (write: with write rights)? If not, note the fault, remember that
// this invocation missed, and say no.
fn reach(c: ptr<function, Acc>, w: u32, write: bool) -> bool {
  if (POOL == POOL_RESIDENT) { return true; } // (every page is in VRAM with both rights: no miss path compiled)
  let e = entryOf(c, w);
  let need = select(PTE_VALID, PTE_VALID | PTE_WRITE, write);
  if ((e & need) == need) { return true; }
  // The workgroup (a uTLB) records each page it missed once, at its end (app()), with every
  // access it missed it with; a page past its miss list is recorded here, by the invocation.
  let k = listMiss(w / WORDS_PER_PAGE, select(1u, 2u, write) | select(0u, MISS_VALID, (e & PTE_VALID) != 0u));
  if (k == MISS_LIST) { pendFault(&(*c).pend, e, w, write, (*c).src); }
  if (k < 32u) { (*c).missLo |= 1u << k; } else if (k < MISS_LIST) { (*c).missHi |= 1u << (k - 32u); }
  (*c).missed = true;
  return false;
}

// Reaches words [w, w + n) (a row, a contiguous run): one translation per page.
fn reachRun(c: ptr<function, Acc>, w: u32, n: u32, write: bool) -> bool {
  if (n == 0u) { return true; }
  var ok = true;
  var p = w / WORDS_PER_PAGE;
  let last = (w + n - 1u) / WORDS_PER_PAGE;
  loop {
    ok = reach(c, max(p * WORDS_PER_PAGE, w), write) && ok;
    if (p == last) { break; }
    p += 1u;
  }
  return ok;
}

// Starts an invocation: nothing missed yet. Its end: did everything it reached translate?
fn begin(c: ptr<function, Acc>) {
  (*c).missed = false;
}

fn reached(c: ptr<function, Acc>) -> bool {
  return !(*c).missed;
}

fn ld(c: ptr<function, Acc>, w: u32) -> u32 {
  let e = entryOf(c, w);
  countAccess(&(*c).pend, e, w);
  return memLoad(inDevice(e), poolAddr(e, w));
}

fn st(c: ptr<function, Acc>, w: u32, v: u32) {
  let e = entryOf(c, w);
  countAccess(&(*c).pend, e, w);
  memStore(inDevice(e), poolAddr(e, w), v);
  markDirty(e);
}

fn ldf(c: ptr<function, Acc>, w: u32) -> f32 {
  return bitcast<f32>(ld(c, w));
}

fn stf(c: ptr<function, Acc>, w: u32, v: f32) {
  st(c, w, bitcast<u32>(v));
}

// The kernel this pipeline runs (one pipeline per kernel of the file, KERNEL folded in).
override KERNEL: u32 = 0u;

// The workgroup's miss list: the distinct pages its invocations missed this run and the kinds
// they missed them with (bit 0 read, bit 1 write; MISS_VALID), an open-addressed set in
// workgroup memory (key: range page + 1; 0 empty). The workgroup's fault records are made from
// it at the end of the run (the uTLB's coalescing), and for the stall gate (mirror-gate.wgsl)
// it is written to done[] (gateListOf) with each invocation's mask of the entries it missed.
// More pages than MISS_LIST: the rest are recorded by each invocation that misses them, the
// list is marked invalid and the gate runs the workgroup every round.
//
// The contract the gate relies on, which every kernel here keeps: an invocation loads only
// from pages it reached, and what it reaches next depends only on such loads, made before any
// reach of it has missed (the kernels check reached(c) before loading: the pointer chase and
// bfs reach level by level). So once an invocation has missed the pages M, it misses at least
// the pages of M still missing whatever came in meanwhile, and reaches nothing new until all of
// M is in: the gate wakes a workgroup only when some invocation's whole M is reachable.
var<workgroup> wgMissPage: array<atomic<u32>, MISS_LIST>;
var<workgroup> wgMissKind: array<atomic<u32>, MISS_LIST>;
var<workgroup> wgMissFull: atomic<u32>;
// The entries in use (bit k: entry k), low and high 32: what the gate starts waiting on.
var<workgroup> wgMissUsed: array<atomic<u32>, 2>;
// The fewest entries an invocation of the workgroup missed (the gate's quick test: fewer pages
// in than that, and no invocation can be complete).
var<workgroup> wgMinMissed: atomic<u32>;

// Bit 2 of a kind: the page's entry is valid (its miss is a protection fault: only a write can
// lack its right). Not in the gate's list entries, which keep bits 0-1.
const MISS_VALID: u32 = 4u;

fn listMiss(rp: u32, kind: u32) -> u32 {
  var k = (rp * 0x9e3779b9u) >> (32u - MISS_LIST_BITS);
  // Bounded: a full set (or a run of spurious compare-exchange failures) marks the list full.
  for (var n = 0u; n < 2u * MISS_LIST; n++) {
    let r = atomicCompareExchangeWeak(&wgMissPage[k], 0u, rp + 1u);
    if (r.exchanged || r.old_value == rp + 1u) {
      atomicOr(&wgMissKind[k], kind);
      if (r.exchanged) { atomicOr(&wgMissUsed[k / 32u], 1u << (k % 32u)); }
      return k;
    }
    if (r.old_value != 0u) { k = (k + 1u) % MISS_LIST; }
  }
  atomicStore(&wgMissFull, 1u);
  return MISS_LIST;
}

// The workgroup a run-list entry names (the stall gate's run list when the command is gated,
// else the dispatch's own), or NO_GROUP past the list's end (a 2-D indirect grid's tail).
var<workgroup> wgGroup: u32;
const NO_GROUP: u32 = 0xffffffffu;

fn groupOf(lw: u32) -> u32 {
  if (params.gateOff == 0u) { return lw; }
  if (lw >= atomicLoad(&state[STATE_GATE_RUN])) { return NO_GROUP; }
  return done[params.gateOff + lw];
}

// One thread: invocation i (the command's CommandDesc.invocations: one thread each, never 32
// to a thread — llvmpipe ends a shader invocation's loops after 65,535 iterations in all, so
// 32 long invocations in one thread would cut the last ones short). A workgroup serves
// PAGES_PER_WG done words; its threads set their bits in workgroup memory, and the first
// thread of each done word stores it and counts the word's misses (the engine's missed count).
var<workgroup> wgDone: array<atomic<u32>, PAGES_PER_WG>;

@compute @workgroup_size(WG)
fn app(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lidx: u32) {
  if (lidx == 0u) {
    wgGroup = groupOf(linearWorkgroup(wg, nwg));
    atomicStore(&wgMinMissed, MISS_LIST);
  }
  let g = workgroupUniformLoad(&wgGroup);
  if (g == NO_GROUP) { return; }
  let i = g * WG + lidx;
  let t = i / 32u;
  let bit = 1u << (i % 32u);
  var missLo = 0u;
  var missHi = 0u;
  if (t < params.doneWords) {
    var ok = true;
    // Past the last invocation (the last done word's tail): done from the start.
    if (i < params.nwords && (done[prevDoneIndex(t)] & bit) == 0u) {
      var c = accNew(sourceOf(i));
      begin(&c);
      ok = invocation(&c, i);
      flushFault(&c.pend, c.src);
      flushCount(&c.pend);
      if (!ok) {
        missLo = c.missLo;
        missHi = c.missHi;
        if ((missLo | missHi) != 0u) { atomicMin(&wgMinMissed, countOneBits(missLo) + countOneBits(missHi)); }
      }
    }
    if (ok) { atomicOr(&wgDone[lidx / 32u], bit); }
  }
  workgroupBarrier();
  // The uTLB's fault records (uTLB fault coalescing: one per page missed, after the
  // workgroup's reduction in its miss set, not one per invocation): a write if any invocation
  // missed the page with one, a protection fault if its entry is valid, through the same
  // per-(uTLB, page, access kind) pending filter (a workgroup is in one uTLB: sourceOf is constant over
  // its TLB_BLOCK_WORDS invocations).
  if (lidx < MISS_LIST) {
    let p = atomicLoad(&wgMissPage[lidx]);
    if (p != 0u) {
      let kinds = atomicLoad(&wgMissKind[lidx]);
      let rp = p - 1u;
      let pageLo = params.vaLo + rp;
      let access = select(ACCESS_READ, ACCESS_WRITE, (kinds & 2u) != 0u) | select(0u, ACCESS_PROTECTION, (kinds & MISS_VALID) != 0u);
      recordFault(rp, pageLo, params.vaHi + select(0u, 1u, pageLo < params.vaLo), access, sourceOf(g * WG));
    }
  }
  if (lidx % 32u == 0u && t < params.doneWords) {
    let bits = atomicLoad(&wgDone[lidx / 32u]);
    done[nextDoneIndex(t)] = bits;
    if (bits != 0xffffffffu) { atomicAdd(&state[STATE_MISSED], countOneBits(~bits)); }
  }
  if (params.gateOff != 0u) {
    // The miss list for the gate's next round (after the barrier: every miss is in the set).
    let list = gateListOf(g);
    if (lidx < MISS_LIST) {
      let p = atomicLoad(&wgMissPage[lidx]);
      done[gateEntryOf(list, lidx)] = select(0u, p | ((atomicLoad(&wgMissKind[lidx]) & 3u) << 30u), p != 0u);
    }
    // The head: 0 no valid list; else 1 | the fewest entries an invocation missed << 8 | the
    // entries << 16; and every entry still missing (the table does not change during a round).
    if (lidx == 0u) {
      let lo = atomicLoad(&wgMissUsed[0]);
      let hi = atomicLoad(&wgMissUsed[1]);
      let head = 1u | (atomicLoad(&wgMinMissed) << 8u) | ((countOneBits(lo) + countOneBits(hi)) << 16u);
      done[list] = select(head, 0u, atomicLoad(&wgMissFull) != 0u);
      done[list + 1u] = lo;
      done[list + 2u] = hi;
    }
    let masks = gateMaskOf(list, lidx);
    done[masks] = missLo;
    done[masks + 1u] = missHi;
  }
}
