/**
 * Two tenants on one device (gpu_ext's evaluation, anchors.md: completion time of each alone,
 * together without a policy, together with a priority): two processes' streams share the
 * device's memory under oversubscription.
 */
import { describe, expect, it } from 'vitest';
import {
  firstTouch, lruEviction, PAGE_SIZE, priorityEviction, simulate, streaming, TRACE_BASE, treePrefetch, withHooks,
  type EvictionHooks, type TraceRecord,
} from '../../src/policy/index.js';

const PAGES = 600; // each tenant's working set
const CAPACITY = 800; // the device: 1.5x oversubscribed by the two together, each fits alone
const B_OFFSET = 1024; // tenant B's pages start at the next 2 MiB block

function tenant(device: number, offset: number): TraceRecord[] {
  return streaming(PAGES, { passes: 4, gapNs: 200, device }).map((r) => ({ ...r, addr: r.addr + offset * PAGE_SIZE }));
}

function run(trace: TraceRecord[], eviction: EvictionHooks): number[] {
  const policy = withHooks(firstTouch(), { prefetch: treePrefetch(), eviction });
  return simulate(trace, { policy, sharedDevice: true, capacityPages: CAPACITY }).completionNs;
}

describe('two tenants sharing one device', () => {
  const a = tenant(0, 0);
  const b = tenant(1, B_OFFSET);
  const aloneA = run(a, lruEviction())[0];
  const aloneB = run(b.map((r) => ({ ...r, proc: 0 })), lruEviction())[0];
  const together = run([...a, ...b].sort((x, y) => x.time - y.time), lruEviction());
  // Chunks of tenant A's pages (the trace's pages count from TRACE_BASE's 2 MiB block).
  const protectA = (chunk: number) => chunk * 512 < B_OFFSET;
  const prioA = run([...a, ...b].sort((x, y) => x.time - y.time), priorityEviction(protectA));

  it('alone, each fits: no tenant waits for the other', () => {
    expect(aloneA).toBeGreaterThan(0);
    expect(aloneB).toBe(aloneA); // the same stream, shifted
  });
  it('together without a policy both slow down (each evicts the other)', () => {
    expect(together[0]).toBeGreaterThan(aloneA * 1.5);
    expect(together[1]).toBeGreaterThan(aloneB * 1.5);
  });
  it('with tenant A prioritised, A completes as if alone; B pays, but less than under LRU (no mutual thrashing)', () => {
    expect(prioA[0]).toBeLessThanOrEqual(aloneA * 1.05);
    expect(prioA[1]).toBeGreaterThan(aloneB);
    expect(prioA[1]).toBeLessThan(together[1]);
  });
});
