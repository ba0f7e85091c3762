// workloads.wgsl — the experiment's workload kernels (appended to mirror-common.wgsl, like
// mirror-access.wgsl; same bind group layout, so the same 8 storage buffers).
//
// A workload command covers the mirrored buffer: the Params range [vaLo, +npages) is the
// buffer and its npages * 1024 words are the command's invocations. Invocation i computes
// the buffer word(s) it touches from i and the workload header, translates each through the
// mirror, and — only when every one of them translates with the rights it needs — does its
// accesses and sets its done bit. Otherwise it records a fault for each page that missed
// (through the per-(uTLB, page, access kind) pending filter, uTLB = sourceOf(i)) and stays not-done, to
// be replayed next round. So an invocation's accesses happen exactly once, in one round.
//
// Values (must match src/workloads/patterns.ts):
//   val(w, p) = hash(w * GOLDEN ^ key(seed, p))   the value of buffer word w at phase p
//                                                  (the keys come in the header)
//   f(w) = val(w, 0)                               what the CPU wrote before the run
//   g(w) = val(w, phase)                           what a write stores (phase 1 one-shot)
//   isWrite(w) = f(w) >> 8 < writeThr              (writeThr = fraction * 2^24)
// Whether an access writes is a property of the word, not of the invocation: every access
// to a "write word" writes g, every access to a "read word" reads and checks f. Several
// invocations may hit one word (random, gather, a working set smaller than the buffer):
// they all store the same g or all read an f nobody changes, so there are no races — except
// the stencil's reads of write words, which accept f or g (written or not yet).
//
// Access counters (countRemote in mirror-common.wgsl): each load and each store of a word
// through an aperture entry is one access (a stencil invocation makes 5 or 6, pingpong's write
// words 2); device-local ones are not counted.
//
// Reads are checked in the kernel: each word that does not hold what it should adds one to
// state[STATE_CHECK] (persistent across rounds: the per-round clear starts at word 1).
// Each invocation also stores its result word into io (results area, see below) so the host
// can tell that every invocation ran, with the mapping it should have.
//
// io layout (u32 words; io is array<vec4<u32>>):
//   [0, 16)           the workload header (HDR_*)
//   [16, 16 + nwords) per invocation: gather's index in, then every kernel's result out
//                     (~target word; the stencil's centre, pingpong's word)
// The results area starts out as anything (the host poisons it): every invocation stores
// its word once, when it is done; gather reads its index before that store.

@group(0) @binding(2) var<storage, read_write> aperture: array<u32>;
@group(0) @binding(3) var<storage, read_write> vram: array<u32>;

// mirrorThread (mirror-common.wgsl) calls the kernel file's doAccess; the workload kernels
// have their own thread function and never call mirrorThread, so this only has to compile.
fn doAccess(access: u32, e: u32, j: u32, addr: u32, prev: u32) {}

// state[0]: reads that did not hold the expected value (the rest of state[] is the engine's).
const STATE_CHECK: u32 = 0u;

// Workload header words.
const HDR_WS: u32 = 0u;        // working set in words (a multiple of 1024, <= nwords)
const HDR_STRIDE: u32 = 1u;    // strided: words between consecutive accesses (1 .. ws)
const HDR_SEED: u32 = 2u;
const HDR_WTHR: u32 = 3u;      // write threshold: fraction * 2^24 (0 .. 2^24)
const HDR_WIDTH: u32 = 4u;     // stencil: grid width in words (divides ws)
const HDR_PHASE: u32 = 5u;     // the phase writes store; reads of write words expect phase - 1 (pingpong)
const HDR_ACTIVE: u32 = 6u;    // invocations that do anything (pingpong: ws); the rest are done at once
const HDR_FLAGS: u32 = 7u;     // FLAG_*
// The keys, computed by the host from the seed (patterns.ts: phaseKey(seed, p) =
// hash(seed ^ hash(p + 0x632be5ab)), writeKey(seed) = hash(seed ^ 0x5bd1e995)).
const HDR_KEY0: u32 = 8u;      // phaseKey(seed, 0)
const HDR_KEYW: u32 = 9u;      // phaseKey(seed, phase)
const HDR_KEYR: u32 = 10u;     // phaseKey(seed, phase - 1)
const HDR_WKEY: u32 = 11u;     // writeKey(seed)
const HDR_WORDS: u32 = 16u;
const FLAG_NO_WRITE: u32 = 1u; // pingpong: check phase, write nothing (the final check)

const GOLDEN: u32 = 0x9e3779b9u;

// lowbias32 (Chris Wellons' hash prospector): a bijection on u32 with good avalanche.
fn hash32(x: u32) -> u32 {
  var h = x;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

fn valueOf(w: u32, key: u32) -> u32 {
  return hash32((w * GOLDEN) ^ key);
}

// Is a word whose f is `f` a write word? (Derived from f, which a read needs anyway.)
fn isWriteF(f: u32, thr: u32) -> bool {
  return (f >> 8u) < thr;
}

fn ioLoad(k: u32) -> u32 {
  return io[k / 4u][k % 4u];
}

fn ioStore(k: u32, v: u32) {
  io[k / 4u][k % 4u] = v;
}

// Per-thread context: the header, and the last translation (the entries do not change
// during a dispatch, so a page walked once is good for every later access to it).
struct Ctx {
  ws: u32,
  stride: u32,
  thr: u32,
  width: u32,
  phase: u32,
  nactive: u32,
  flags: u32,
  key0: u32,    // phaseKey(seed, 0): f
  keyW: u32,    // phaseKey(seed, phase): what writes store
  keyR: u32,    // phaseKey(seed, phase - 1): what pingpong reads of write words expect
  wkey: u32,    // writeKey(seed): random's targets
  mismatches: u32,
  // The fault and remote accesses held back (mirror-common.wgsl's Pending). A thread's 32
  // invocations report through one uTLB (a 32-word run lies in one 256-word block), so the
  // pending filter's one record per (uTLB, page) is the thread's one record per page.
  pend: Pending,
}

fn loadCtx() -> Ctx {
  return Ctx(
    ioLoad(HDR_WS), ioLoad(HDR_STRIDE), ioLoad(HDR_WTHR), ioLoad(HDR_WIDTH), ioLoad(HDR_PHASE),
    ioLoad(HDR_ACTIVE), ioLoad(HDR_FLAGS),
    ioLoad(HDR_KEY0), ioLoad(HDR_KEYW), ioLoad(HDR_KEYR), ioLoad(HDR_WKEY),
    0u, pendingNew());
}

// The mirror entry of the buffer page holding word w (rangeLeaf, mirror-common.wgsl).
fn entryOf(c: ptr<function, Ctx>, w: u32) -> u32 {
  return rangeLeaf(w);
}

// Can word w be accessed (write: with write rights)? If not, note the fault (recorded by
// flushFault, filtered per (uTLB, page) like the engine's kernels) and say no.
fn reach(c: ptr<function, Ctx>, w: u32, write: bool, src: u32) -> bool {
  if (POOL == POOL_RESIDENT) { return true; } // (every page is in VRAM with both rights: no miss path compiled)
  let e = entryOf(c, w);
  let need = select(PTE_VALID, PTE_VALID | PTE_WRITE, write);
  if ((e & need) == need) { return true; }
  pendFault(&(*c).pend, e, w, write, src);
  return false;
}

fn loadWord(c: ptr<function, Ctx>, w: u32) -> u32 {
  let e = entryOf(c, w);
  let a = poolAddr(e, w);
  countAccess(&(*c).pend, e, w);
  if (inDevice(e)) { return vram[a]; }
  return aperture[a];
}

fn storeWord(c: ptr<function, Ctx>, w: u32, v: u32) {
  let e = entryOf(c, w);
  let a = poolAddr(e, w);
  countAccess(&(*c).pend, e, w);
  if (inDevice(e)) { vram[a] = v; } else { aperture[a] = v; }
  markDirty(e);
}

fn check(c: ptr<function, Ctx>, got: u32, want: u32) {
  if (got != want) { (*c).mismatches += 1u; }
}

// One access to word w: a write word gets g, a read word is checked against f.
fn single(c: ptr<function, Ctx>, w: u32, src: u32) -> bool {
  let f = valueOf(w, (*c).key0);
  let write = isWriteF(f, (*c).thr);
  if (!reach(c, w, write, src)) { return false; }
  if (write) {
    storeWord(c, w, valueOf(w, (*c).keyW));
  } else {
    check(c, loadWord(c, w), f);
  }
  return true;
}

// Stencil: the 5-point neighbourhood of cell w on a width × (ws / width) torus; every
// neighbour is read and checked, then a write centre gets g.
fn stencil(c: ptr<function, Ctx>, w: u32, src: u32) -> bool {
  let W = (*c).width;
  let H = (*c).ws / W;
  let x = w % W;
  let y = w / W;
  var n = array<u32, 5>(
    w,
    y * W + (x + W - 1u) % W,
    y * W + (x + 1u) % W,
    ((y + H - 1u) % H) * W + x,
    ((y + 1u) % H) * W + x);
  let writeC = isWriteF(valueOf(w, (*c).key0), (*c).thr);
  var ok = reach(c, w, writeC, src);
  for (var k = 1u; k < 5u; k++) {
    ok = reach(c, n[k], false, src) && ok;
  }
  if (!ok) { return false; }
  for (var k = 0u; k < 5u; k++) {
    let v = loadWord(c, n[k]);
    let f = valueOf(n[k], (*c).key0);
    if (isWriteF(f, (*c).thr)) {
      if (v != f && v != valueOf(n[k], (*c).keyW)) { (*c).mismatches += 1u; }
    } else {
      check(c, v, f);
    }
  }
  if (writeC) { storeWord(c, w, valueOf(w, (*c).keyW)); }
  return true;
}

// Pingpong: word w = i; a write word must hold phase - 1's value and gets phase's (unless
// FLAG_NO_WRITE: it must hold phase's); a read word must still hold f.
fn pingpong(c: ptr<function, Ctx>, w: u32, src: u32) -> bool {
  let noWrite = ((*c).flags & FLAG_NO_WRITE) != 0u;
  let f = valueOf(w, (*c).key0);
  let ww = isWriteF(f, (*c).thr);
  let write = ww && !noWrite;
  if (!reach(c, w, write, src)) { return false; }
  let v = loadWord(c, w);
  if (!ww) {
    check(c, v, f);
  } else if (noWrite) {
    check(c, v, valueOf(w, (*c).keyW));
  } else {
    check(c, v, valueOf(w, (*c).keyR));
    storeWord(c, w, valueOf(w, (*c).keyW));
  }
  return true;
}

// KIND_STREAM .. KIND_PINGPONG are generated from src/workloads/patterns.ts (WORKLOAD_KINDS)
// and prepended by src/workloads/kernels.ts.

// The buffer word invocation i targets (the stencil's centre).
fn targetOf(c: ptr<function, Ctx>, kind: u32, i: u32) -> u32 {
  let ws = (*c).ws;
  switch kind {
    case KIND_STRIDED: {
      // Column-major over a ⌈ws / s⌉ × s matrix (s = stride): consecutive invocations are
      // s words apart; when s divides ws this is (j·s mod ws) + ⌊j·s / ws⌋, j = i mod ws, and
      // covers every word; otherwise the last row wraps (some words twice, some never).
      let s = (*c).stride;
      let j = i % ws;
      let rows = (ws + s - 1u) / s;
      return ((j % rows) * s + j / rows) % ws;
    }
    case KIND_RANDOM: {
      return hash32(i ^ (*c).wkey ^ 0x2545f491u) % ws;
    }
    case KIND_GATHER: {
      return ioLoad(HDR_WORDS + i) % ws;
    }
    case KIND_HOTSET: {
      // Random with reuse (hotsetTarget in src/workloads/patterns.ts, bit for bit).
      let h = hash32((i / 64u) ^ (*c).wkey ^ 0x68e31da4u);
      let pages = max(1u, ws / 1024u);
      let hot = max(1u, pages / 8u);
      let r = hash32(h ^ 0x9e3779b9u);
      var page = r % pages;
      if ((h & 7u) != 0u) { page = (hash32((*c).wkey) % pages + r % hot) % pages; }
      return (page * 1024u + ((h >> 3u) % 16u) * 64u + i % 64u) % ws;
    }
    default: { // stream, stencil, pingpong
      return i % ws;
    }
  }
}

// One thread: done word t, invocations 32t .. 32t + 31 (the engine's work layout, so the
// engine's dispatch grid, done bitmaps and missed count apply unchanged).
fn workloadThread(wg: vec3<u32>, nwg: vec3<u32>, lidx: u32, kind: u32) {
  let t = linearWorkgroup(wg, nwg) * WG + lidx;
  if (t >= params.doneWords) { return; }
  let d = doneWord(t);
  let prev = d.prev;
  let nextW = d.nextIndex;
  if (prev == 0xffffffffu) {
    done[nextW] = prev;
    return;
  }
  var c = loadCtx();
  var bits = prev;
  for (var b = 0u; b < 32u; b++) {
    let bit = 1u << b;
    if ((prev & bit) != 0u) { continue; }
    let i = t * 32u + b;
    if (i >= c.nactive) { bits |= bit; continue; }
    let w = targetOf(&c, kind, i);
    let src = sourceOf(i);
    var ok: bool;
    switch kind {
      case KIND_STENCIL: { ok = stencil(&c, w, src); }
      case KIND_PINGPONG: { ok = pingpong(&c, w, src); }
      default: { ok = single(&c, w, src); }
    }
    if (ok) {
      bits |= bit;
      ioStore(HDR_WORDS + i, ~w);
    }
  }
  flushFault(&c.pend, sourceOf(t * 32u));
  flushCount(&c.pend);
  done[nextW] = bits;
  if (bits != 0xffffffffu) { atomicAdd(&state[STATE_MISSED], countOneBits(~bits)); }
  if (c.mismatches != 0u) { atomicAdd(&state[STATE_CHECK], c.mismatches); }
}

// The workload this pipeline runs: one entry point, one pipeline per workload, each with
// its KIND (a pipeline-overridable constant, so the switch folds away at compile time).
override KIND: u32 = 0u;

@compute @workgroup_size(WG)
fn workload(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lidx: u32) {
  workloadThread(wg, nwg, lidx, KIND);
}
