// mirror-gate.wgsl — the stall gate of the application kernels (appended to mirror-common.wgsl;
// the engine's, compiled once per device). A workgroup of an application kernel
// (app-access.wgsl) is a warp group that faulted: on a GPU it stays stalled until the driver
// replays (uvm_gpu_replayable_faults.c push_replay_on_gpu: host_hal->replay_faults makes the
// uTLBs retry their stalled accesses), and the retry of an access whose page is still not in
// faults again, on the same page: the warp is not re-executed. Re-executing such a workgroup
// from scratch — what a round without the gate does — computes nothing new: its invocations
// reach the same pages and miss the same ones. So before the kernel, one thread per workgroup
// of the command decides, from the list of pages the workgroup missed in its last run (its miss
// list, left by the kernel, see app-access.wgsl) and the entries now in the table:
//   * done: every invocation done — nothing to run;
//   * stalled: a valid miss list, no invocation all of whose missed pages are now reachable
//     with the accesses it missed them with, and no entry revoked since that run
//     (params.replayAll == 0): not run; its done words carried over, its misses counted, and
//     the faults of its pages still missing re-issued through the same per-(uTLB, page)
//     pending filter the kernel uses — the records a re-execution would have sent;
//   * runnable: anything else (never run, list overflowed, an invocation's missed pages all
//     in, an entry revoked): appended to the run list the kernel is dispatched over
//     (indirectly, through the arguments gate_args leaves in the engine's args buffer, bound
//     here as io[0]).
// Why it is exact: an invocation that missed did no store (app-access.wgsl: it returns false
// before any) and keeps its progress in io only when it made some (the pointer chase); what
// it does when re-run is a function of io and the entries it reaches. With no entry revoked
// every page it reached is still reachable, and while some of its missed pages are still
// missing it reaches nothing new (the contract in app-access.wgsl) and misses those again.
// One thing does differ: the loads a re-execution makes before its miss (bfs's mask byte; the
// pointer chase saves its hops and makes none) are not made again, as a stalled warp does not
// re-issue the loads it completed, so the access counters count them once.
//
// done[] (params.gateOff, words; plain words, as every load from state[] is an atomic, which
// llvmpipe runs lane by lane): the run list (one word per workgroup of the command), then per
// workgroup GATE_HEAD_WORDS + MISS_LIST + 2 WG words: a header (0: never written, or more
// pages missed than fit; else 1 | (the fewest entries an invocation missed) << 8 | (the
// entries) << 16), the entries still missing (a 64-bit mask: the kernel's run leaves all of
// them, the gate clears each as its page comes in: with no right revoked, reachability only
// grows, so each round it looks at those alone), MISS_LIST entries (0: empty, else (range
// page + 1) | (the kinds it missed with: bit 30 read, bit 31 write)) and each invocation's
// mask of the entries it missed (two words; 0: it did not miss).

fn doAccess(access: u32, e: u32, j: u32, addr: u32, prev: u32) {}

// Before every round of a kernel that translates through the range's leaves (the application
// kernels and the synthetic workloads; gated or not): a thread per page of the command's range
// walks it once and leaves its leaf at leafOff in done[] (where tlbFill leaves it for an engine
// kernel's report pass). The kernel translates through these leaves (rangeLeaf in
// mirror-common.wgsl: one load, no walk), and the gate tests a page of a list with one
// plain load: a round's lists name the same pages many times over (a hotspot workgroup's ~50
// rows, shared with its neighbours).
@compute @workgroup_size(WG)
fn gate_reach(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lidx: u32) {
  let rp = linearWorkgroup(wg, nwg) * WG + lidx;
  if (rp >= params.npages) { return; }
  let pageLo = params.vaLo + rp;
  done[params.leafOff + rp] = translate(pageLo, params.vaHi + select(0u, 1u, pageLo < params.vaLo));
}

// The lowest entry of a 64-bit entry mask (bit k: entry k), taken out of it; MISS_LIST once
// it is empty.
fn takeLowest(bits: ptr<function, vec2<u32>>) -> u32 {
  for (var h = 0u; h < 2u; h++) {
    let x = (*bits)[h];
    if (x != 0u) {
      (*bits)[h] = x & (x - 1u);
      return h * 32u + firstTrailingBit(x);
    }
  }
  return MISS_LIST;
}

// Could an access with `kinds` (bit 0 read, bit 1 write) go through entry e now?
fn reachableNow(e: u32, kinds: u32) -> bool {
  let rd = (kinds & 1u) != 0u && (e & PTE_VALID) != 0u;
  let wr = (kinds & 2u) != 0u && (e & (PTE_VALID | PTE_WRITE)) == (PTE_VALID | PTE_WRITE);
  return rd || wr;
}

@compute @workgroup_size(WG)
fn gate(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
  let g = linearWorkgroup(wg, nwg) * WG + lidx;
  if (g >= gateGroups()) { return; }
  let t0 = g * PAGES_PER_WG;
  let t1 = min(t0 + PAGES_PER_WG, params.doneWords);
  var undone = 0u;
  for (var t = t0; t < t1; t++) { undone += countOneBits(~done[prevDoneIndex(t)]); }
  let list = gateListOf(g);
  let head = done[list];
  var run = undone != 0u && (params.replayAll != 0u || head == 0u);
  // The entries still missing (bit k: entry k; the kernel's run left them all, this gate
  // clears each as its page comes in: with no right revoked, reachability only grows), and
  // which of those are valid entries (a write's protection fault).
  var wait = vec2<u32>(0u);
  var prot = vec2<u32>(0u);
  if (undone != 0u && !run) {
    let was = vec2<u32>(done[list + 1u], done[list + 2u]);
    var left = was;
    loop {
      let k = takeLowest(&left);
      if (k == MISS_LIST) { break; }
      let m = done[gateEntryOf(list, k)]; // (in use: the kernel wrote every entry it set a bit for)
      let e = done[params.leafOff + (m & MISS_PAGE_MASK) - 1u];
      if (reachableNow(e, m >> 30u)) { continue; }
      wait[k / 32u] |= 1u << (k % 32u);
      if ((e & PTE_VALID) != 0u) { prot[k / 32u] |= 1u << (k % 32u); }
    }
    if (any(wait != was)) {
      done[list + 1u] = wait.x;
      done[list + 2u] = wait.y;
    }
    // Wake it when an invocation's missed entries are all in.
    // (Fewer entries in than the fewest an invocation missed: none can be complete.)
    let entries = head >> 16u;
    if (entries - countOneBits(wait.x) - countOneBits(wait.y) >= ((head >> 8u) & 0xffu)) {
      for (var j = 0u; j < WG; j++) {
        let masks = gateMaskOf(list, j);
        let lo = done[masks];
        let hi = done[masks + 1u];
        if ((lo | hi) != 0u && (lo & wait.x) == 0u && (hi & wait.y) == 0u) {
          run = true;
          break;
        }
      }
    }
  }
  if (run) {
    done[params.gateOff + atomicAdd(&state[STATE_GATE_RUN], 1u)] = g;
    return;
  }
  // Done or stalled: the done words as they were (the kernel, not run, writes no `next`).
  for (var t = t0; t < t1; t++) { done[nextDoneIndex(t)] = done[prevDoneIndex(t)]; }
  if (undone == 0u) { return; }
  atomicAdd(&state[STATE_MISSED], undone);
  atomicAdd(&state[STATE_GATE_STALLED], 1u);
  // The faults of the pages still missing, as flushFault words them: a write if it missed
  // with one, a protection fault if the entry is valid (only a write can then lack its right).
  // A full ring keeps none of them (recordFault would drop each and flag the overflow), and
  // it stays full for the rest of the round: flag it once and skip the pending filter's
  // atomics, which would only guard records that cannot be appended either.
  if (atomicLoad(&ring.put) >= arrayLength(&ring.records)) {
    atomicStore(&ring.overflow, 1u);
    return;
  }
  let src = sourceOf(g * WG);
  var left = wait;
  loop {
    let k = takeLowest(&left);
    if (k == MISS_LIST) { break; }
    let m = done[gateEntryOf(list, k)];
    let rp = (m & MISS_PAGE_MASK) - 1u;
    let pageLo = params.vaLo + rp;
    let pageHi = params.vaHi + select(0u, 1u, pageLo < params.vaLo);
    let protection = ((prot[k / 32u] >> (k % 32u)) & 1u) != 0u;
    recordFault(rp, pageLo, pageHi, select(ACCESS_READ, ACCESS_WRITE, (m >> 31u) != 0u) | select(0u, ACCESS_PROTECTION, protection), src);
  }
}

// The run list's dispatch arguments (one thread, after gate): x, y for dispatchWorkgroupsIndirect,
// 2-D past the 65,535 workgroups every WebGPU device allows in one dimension.
@compute @workgroup_size(1)
fn gate_args() {
  let n = atomicLoad(&state[STATE_GATE_RUN]);
  let x = min(n, MAX_WG_X);
  io[0] = vec4<u32>(x, select(0u, (n + MAX_WG_X - 1u) / MAX_WG_X, n != 0u), 1u, 0u);
}
