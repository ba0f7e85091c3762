/**
 * UVM_Smart's own mechanics where its published table depends on them (GPGPU-Sim UVM_Smart,
 * src/gpgpu-sim/gpu-sim.cc): what it counts as a far fault (gmmu_t::cycle,
 * do_hardware_prefetch), its oversubscribed prefetcher switch
 * (update_hardware_prefetcher_oversubscribed) and its random eviction (page_eviction_procedure).
 */
import { describe, expect, it } from 'vitest';
import {
  commitPlan, CPU, PAGE_SIZE, Planner, PolicyEngine, Residency, transferNs, UVM_SMART, UVM_SMART_SERIAL, type CostModel,
} from '../../src/policy/index.js';
import { builtinPolicy } from '../../src/policy/loader.js';
import { random4kEviction } from '../../src/policy/eviction.js';
import { ACCESS_READ } from '../../src/policy/types.js';
import { StallingIssue } from '../../src/driver/utlb-issue.js';
import type { FaultRecord } from '../../src/device/fault-queue.js';

/** One fault group on device 0 of `pages` (distinct, ascending), folding `records` fault records; committed. */
function fault(e: PolicyEngine, pages: number[], records: number, now = 0): { prefetched: number } {
  const r = e.serviceGroup(0, Float64Array.from(pages), new Uint8Array(pages.length).fill(ACCESS_READ), pages.length, records, now);
  e.commit(r.plan);
  return { prefetched: r.prefetched };
}

describe('far faults as UVM_Smart counts them (Total_memory_access_page_fault)', () => {
  it('a page not on the device counts once a group however many records fold it; a page already there (prefetched) does not', () => {
    const e = new PolicyEngine(builtinPolicy('first-touch+tree')!, { pages: 1024, capacityPages: 1024 });
    // 3 distinct pages from 20 records (several uTLBs each): 3 far faults, 20 records.
    fault(e, [0, 1, 2], 20);
    expect(e.stats.farFaults).toBe(3);
    expect(e.stats.faultRecords).toBe(20);
    // Their 64 KiB basic block came with them (pages 3..15): faults on 5 and 15 find them there
    // (UVM_Smart merges them into the in-flight entry: mf_page_fault_pending), page 16 is new.
    expect(e.residency.location(15)).toBe(0);
    fault(e, [5, 15, 16], 9);
    expect(e.stats.farFaults).toBe(4);
    expect(e.stats.faultRecords).toBe(29);
  });
});

describe('tree-fits: TBN until the device is oversubscribed (UVM_Smart -hwprefetch_oversub 0)', () => {
  const run = (spec: string): number[] => {
    // 64 pages of device memory for 256 (64-page chunks): four 16-page basic blocks fill it (far enough apart
    // that no tree node above a block passes the threshold: each fault brings its block only).
    const e = new PolicyEngine(builtinPolicy(spec)!, { pages: 256, capacityPages: 64, chunkPages: 64 });
    const prefetched: number[] = [];
    for (const p of [0, 64, 128, 192, 32, 96]) prefetched.push(fault(e, [p], 1).prefetched);
    return prefetched;
  };
  it('prefetches the basic block while memory fits, nothing once a fault had to evict; +tree keeps prefetching', () => {
    // Faults 0, 64, 128, 192 fill the device (each brings its 15 neighbours): the 4th leaves no page free.
    expect(run('first-touch+tree-fits')).toEqual([15, 15, 15, 15, 0, 0]);
    const tree = run('first-touch+tree');
    expect(tree.slice(0, 4)).toEqual([15, 15, 15, 15]);
    expect(tree[4]).toBeGreaterThan(0);
    expect(tree[5]).toBeGreaterThan(0);
  });
});

describe('random-4K as UVM_Smart evicts (eviction_policy::RANDOM)', () => {
  const CP = 4;
  /** Chunks of 4 pages; `resident` pages on device 0 (capacity = their count); then page 40 needs room. */
  const evicted = (resident: number[], seed: number): number[] => {
    const res = new Residency({ pages: 64, capacityPages: resident.length, chunkPages: CP, eviction: random4kEviction(seed) });
    const place = (pages: number[]): void => {
      const pl = new Planner(res);
      pl.begin(0, 0);
      pl.toDevice(0, pages, pages.length, 'fault', new Set(), null);
      commitPlan(res, pl.end());
    };
    place(resident);
    place([40]);
    return resident.filter((p) => res.location(p) === CPU);
  };
  it('the victim is the first page of a fully resident chunk, whatever the draw', () => {
    // Chunk 1 (pages 4..7) is the only one with every page resident.
    for (let seed = 1; seed <= 20; seed++) expect(evicted([0, 1, 4, 5, 6, 7, 9, 10], seed)).toEqual([4]);
  });
  it('among several full chunks the draw decides, each evicting its first page', () => {
    const seen = new Set<string>();
    for (let seed = 1; seed <= 30; seed++) seen.add(evicted([0, 1, 2, 3, 8, 9, 10, 11], seed).join());
    expect([...seen].sort()).toEqual(['0', '8']);
  });
  it('with no full chunk it takes a random chunk\'s lowest resident page', () => {
    for (let seed = 1; seed <= 10; seed++) expect(['1', '5']).toContain(evicted([1, 2, 5, 6], seed).join());
  });
});

describe('a uTLB stalled on its outstanding faults (utlbFaults)', () => {
  const rec = (source: number, page: number): FaultRecord => ({ page, access: 'read', source, protection: false });
  const round = [rec(0, 9), rec(0, 3), rec(1, 7), rec(0, 5), rec(1, 2), rec(2, 4)];
  /** One round on fresh queues: every miss the same age, so each uTLB's lowest pages go. */
  const issueLimit = (rs: readonly FaultRecord[], limit: number | undefined): readonly FaultRecord[] => new StallingIssue(limit).issue(rs, 0);
  it('keeps each uTLB\'s lowest N pages of the round, drops the rest; no limit keeps all', () => {
    const pages = (rs: readonly FaultRecord[]): string[] => rs.map((r) => `${r.source}:${r.page}`).sort();
    expect(pages(issueLimit(round, 1))).toEqual(['0:3', '1:2', '2:4']);
    expect(pages(issueLimit(round, 2))).toEqual(['0:3', '0:5', '1:2', '1:7', '2:4']);
    expect(issueLimit(round, undefined)).toBe(round);
    expect(issueLimit(round, 3).length).toBe(round.length);
  });
  it('queues FIFO across rounds: a miss left waiting goes before a page that faults again after it was issued', () => {
    // uTLB 0 misses pages 10 and 500 (an invocation over two arrays); 10 goes first. Evicted
    // before the invocation finished, 10 faults again: the lowest-page order would issue it
    // again ahead of 500 every round (the starvation the FIFO ends); the queue issues 500.
    const stall = new StallingIssue(1);
    const pages = (rs: readonly FaultRecord[]): number[] => rs.map((r) => r.page);
    expect(pages(stall.issue([rec(0, 500), rec(0, 10)], 0))).toEqual([10]);
    expect(pages(stall.issue([rec(0, 10), rec(0, 500), rec(1, 3)], 1))).toEqual([500, 3]);
    expect(pages(issueLimit([rec(0, 10), rec(0, 500)], 1))).toEqual([10]);
    // 10 has waited since round 1, 7 only since round 2: 10 first, then 7.
    expect(pages(stall.issue([rec(0, 7), rec(0, 10)], 2))).toEqual([10]);
    expect(pages(stall.issue([rec(0, 7)], 3))).toEqual([7]);
    // A page that stopped faulting leaves the queue: 900 waits from round 4, not from earlier.
    expect(pages(stall.issue([rec(0, 900), rec(0, 20)], 4))).toEqual([20]);
    expect(pages(stall.issue([rec(0, 30), rec(0, 900)], 5))).toEqual([900]);
    // A round that faulted nowhere empties every queue: 30 (waiting since round 5) starts over.
    expect(stall.issue([], 6)).toEqual([]);
    expect(pages(stall.issue([rec(0, 30), rec(0, 25)], 7))).toEqual([25]);
    expect(pages(stall.issue([rec(0, 25), rec(0, 30), rec(0, 20)], 8))).toEqual([30]);
  });
});

describe('uvm-smart-serial: UVM_Smart\'s own time (calculate_sim_prof: kernel_time + mf_page_fault_outstanding × page_fault_latency)', () => {
  /** The service ns of one fault group of `pages` on a fresh engine under `cost` (`policy` default first-touch: no prefetch). */
  const groupNs = (cost: CostModel, pages: number[], policy = 'first-touch', preload: number[] = []): { ns: number; far: number } => {
    const e = new PolicyEngine(builtinPolicy(policy)!, { pages: 4096, capacityPages: 4096, cost });
    if (preload.length > 0) fault(e, preload, preload.length);
    const before = e.stats.farFaults;
    const r = e.serviceGroup(0, Float64Array.from(pages), new Uint8Array(pages.length).fill(ACCESS_READ), pages.length, pages.length, 0);
    e.commit(r.plan);
    return { ns: r.ns, far: e.stats.farFaults - before };
  };
  const PAGE = transferNs(UVM_SMART, PAGE_SIZE); // one 4 KiB transfer on the curve (~1.76 µs)

  it('is 45 µs a far fault (66,645 cycles at 1,481 MHz), no per-batch or launch charge, each faulted page its own transfer', () => {
    expect(UVM_SMART_SERIAL).toMatchObject({ farFaultNs: 45_000, faultGroupNs: 0, faultNs: 0, faultTransfer: 'page', transfer: 'curve', launchNs: 0 });
    expect(Math.round(66_645 / 1.481)).toBe(45_000);
    expect(UVM_SMART).toMatchObject({ farFaultNs: 0, faultTransfer: 'run' }); // the default clock is unchanged
  });

  it('N far faults add exactly N × 45 µs (+ N one-page copies); a page already on the device adds nothing', () => {
    for (const n of [1, 2, 7, 100]) {
      const pages = Array.from({ length: n }, (_, i) => i * 3);
      const { ns, far } = groupNs(UVM_SMART_SERIAL, pages);
      expect(far).toBe(n);
      expect(ns).toBe(n * (45_000 + PAGE));
    }
    // Pages 0 and 3 are resident already: of the 4 faulted pages only 6 and 9 are far faults.
    const { ns, far } = groupNs(UVM_SMART_SERIAL, [0, 3, 6, 9], 'first-touch', [0, 3]);
    expect(far).toBe(2);
    expect(ns).toBe(2 * (45_000 + PAGE));
  });

  it('a batch of 256 contiguous pages costs 256 × one page under it, and not under the per-batch uvm-smart clock', () => {
    const batch = Array.from({ length: 256 }, (_, i) => i);
    const one = groupNs(UVM_SMART_SERIAL, [0]).ns;
    expect(groupNs(UVM_SMART_SERIAL, batch).ns).toBe(256 * one);
    expect(one).toBe(45_000 + PAGE);
    // NVIDIA's per-batch service: one 45 µs for the batch and its pages copied as one 1 MiB run.
    const perBatch = groupNs(UVM_SMART, batch).ns;
    expect(perBatch).toBe(45_000 + transferNs(UVM_SMART, 256 * PAGE_SIZE));
    expect(perBatch).toBeLessThan(256 * groupNs(UVM_SMART, [0]).ns / 50);
  });

  it('prefetched pages are no far faults: TBN\'s basic block adds its copy, not 45 µs a page', () => {
    // A fault on page 0 under the tree prefetcher brings its 64 KiB block (pages 1..15) as one run.
    const { ns, far } = groupNs(UVM_SMART_SERIAL, [0], 'first-touch+tree');
    expect(far).toBe(1);
    expect(ns).toBe(45_000 + PAGE + transferNs(UVM_SMART, 15 * PAGE_SIZE));
  });
});
