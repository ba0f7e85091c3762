/**
 * NVIDIA UVM's mechanics where they change results (issue 15), each at its source's boundary,
 * on the pure policy layer (the simulator and the engine the driver calls).
 */
import { describe, expect, it } from 'vitest';
import {
  ACCESS_READ, DECIDE_THROTTLE, PAGE_SIZE, TRACE_BASE, simulate, type MigrationPolicy, type TraceRecord,
} from '../../src/policy/index.js';

describe('throttling (uvm_gpu_replayable_faults.c: service_fault_batch_block_locked)', () => {
  it('a throttled fault does not hold back another page\'s replay: the device goes on, the page waits its nap', () => {
    const NAP_END = 1_000_000_000; // 1 s of virtual time
    const moved: { page: number; at: number }[] = [];
    const policy: MigrationPolicy = {
      name: 'throttle-page-0',
      decide(g, _v, out) {
        for (let i = 0; i < g.count; i++) {
          if (g.pages[i] === 0 && g.now < NAP_END) {
            out.action[i] = DECIDE_THROTTLE;
            out.until[i] = NAP_END;
          }
        }
      },
      migrated(b) {
        for (let i = 0; i < b.count; i++) moved.push({ page: b.pages[i], at: b.now });
      },
    };
    const trace: TraceRecord[] = [{ time: 0, addr: TRACE_BASE, access: ACCESS_READ, proc: 0 }];
    for (let p = 1; p < 100; p++) trace.push({ time: p * 10_000, addr: TRACE_BASE + p * PAGE_SIZE, access: ACCESS_READ, proc: 0 });
    const r = simulate(trace, { policy });
    const others = moved.filter((m) => m.page !== 0);
    expect(others.length).toBe(99);
    // Every other page was serviced long before page 0's nap ended (~1 ms of work, not 1 s).
    expect(Math.max(...others.map((m) => m.at))).toBeLessThan(10_000_000);
    const zero = moved.filter((m) => m.page === 0);
    expect(zero.length).toBe(1);
    expect(zero[0].at).toBeGreaterThanOrEqual(NAP_END); // replayed after its nap, then serviced
    expect(r.simTimeNs).toBeGreaterThanOrEqual(NAP_END);
  });
});

describe('CPU faults on device pages (uvm_va_block_cpu_fault: the same make_resident path)', () => {
  it('a CPU fault brings the 64 KiB big page home: 16 pages, one transfer', async () => {
    const { PolicyEngine } = await import('../../src/policy/engine.js');
    const { firstTouch } = await import('../../src/policy/builtins.js');
    const { transferNs, UVM_SMART } = await import('../../src/policy/cost.js');
    const e = new PolicyEngine(firstTouch(), { pages: 512, capacityPages: 512 });
    const all = Float64Array.from({ length: 64 }, (_, i) => i);
    e.commit(e.serviceGroup(0, all, new Uint8Array(64), 64, 64, 0).plan); // the plans done as planned
    const f = e.serviceCpuFault(21, 1, 1_000);
    e.commit(f.plan);
    const home = [];
    for (let p = 0; p < 64; p++) if (e.residency.location(p) === -1) home.push(p);
    expect(home).toEqual(Array.from({ length: 16 }, (_, i) => 16 + i)); // pages 16..31, the fault's big page
    expect(f.ns).toBe(UVM_SMART.cpuFaultNs + transferNs(UVM_SMART, 16 * PAGE_SIZE));
    // HMM's one-page migrate_to_ram, by option.
    const one = new PolicyEngine(firstTouch(), { pages: 512, capacityPages: 512, cpuFaultPages: 1 });
    one.commit(one.serviceGroup(0, all, new Uint8Array(64), 64, 64, 0).plan);
    one.commit(one.serviceCpuFault(21, 1, 1_000).plan);
    expect(one.residency.stats.migrationsToHost).toBe(1);
  });
});

describe('prefetch tree clipped to the VMA (uvm_perf_prefetch.c: init_bitmap_tree_from_region)', () => {
  const setup = async (pages: number, regions?: [number, number][]) => {
    const { PolicyEngine } = await import('../../src/policy/engine.js');
    const { firstTouch, treePrefetch, withHooks } = await import('../../src/policy/builtins.js');
    const e = new PolicyEngine(withHooks(firstTouch(), { prefetch: treePrefetch() }), { pages, capacityPages: pages });
    if (regions) e.setRegions(regions);
    return e;
  };
  const fault = (e: Awaited<ReturnType<typeof setup>>, from: number, to: number) => {
    const pages = Float64Array.from({ length: to - from }, (_, i) => from + i);
    const r = e.serviceGroup(0, pages, new Uint8Array(pages.length), pages.length, pages.length, 0);
    e.commit(r.plan);
    return r;
  };

  it('a 100-page VMA: 60 faulted pages are > 51 % of its 100-leaf tree, so the other 40 come too', async () => {
    const e = await setup(100);
    const r = fault(e, 0, 60);
    expect(r.prefetched).toBe(40); // the root is the VMA's 100 pages, not a 128- or 512-page node
    // 34 faulted pages grow to 48 (big page 32..47): > 51 % of the 64-page node, not of the 100.
    const e2 = await setup(100);
    expect(fault(e2, 0, 34).prefetched).toBe(64 - 34);
  });

  it('a VMA starting mid-block: the tree starts at the 64 KiB boundary below it and never leaves the VMA', async () => {
    // Two VMAs in one 2 MiB block: [0, 100) and [100, 512). Faults on 100..399 of the second.
    const e = await setup(512, [[0, 100], [100, 512]]);
    const r = fault(e, 100, 400);
    // 300 of the second VMA's 412 pages (+ growth of the big page 96..111 from 100) pass 51 %:
    // the whole VMA comes, and nothing of the first one.
    expect(r.prefetched).toBe(412 - 300);
    for (let p = 0; p < 100; p++) expect(e.residency.location(p)).toBe(-1);
    for (let p = 100; p < 512; p++) expect(e.residency.location(p)).toBe(0);
  });
});
