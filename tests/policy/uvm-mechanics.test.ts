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
    e.serviceGroup(0, all, new Uint8Array(64), 64, 64, 0);
    const f = e.serviceCpuFault(21, 1, 1_000);
    const home = [];
    for (let p = 0; p < 64; p++) if (e.residency.location(p) === -1) home.push(p);
    expect(home).toEqual(Array.from({ length: 16 }, (_, i) => 16 + i)); // pages 16..31, the fault's big page
    expect(f.ns).toBe(UVM_SMART.cpuFaultNs + transferNs(UVM_SMART, 16 * PAGE_SIZE));
    // HMM's one-page migrate_to_ram, by option.
    const one = new PolicyEngine(firstTouch(), { pages: 512, capacityPages: 512, cpuFaultPages: 1 });
    one.serviceGroup(0, all, new Uint8Array(64), 64, 64, 0);
    one.serviceCpuFault(21, 1, 1_000);
    expect(one.residency.stats.migrationsToHost).toBe(1);
  });
});
