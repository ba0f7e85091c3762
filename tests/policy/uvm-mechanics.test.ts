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
