/**
 * npm run bench:tenants — two tenants on one device (gpu_ext's evaluation, anchors.md: each
 * tenant's completion time alone, together without a policy, together with a priority), in the
 * policy simulator (src/policy/sim.ts, sharedDevice): two processes stream their own working
 * set (--pages, default 600 each) 4 times over a device that holds either alone but not both
 * (--capacity, default 800 pages: 1.5x oversubscribed together), tree prefetch, LRU-2M
 * eviction or the priority eviction (tenant A's chunks are never victims). Simulated time (the
 * cost model's clock), so the figures are the same on any machine.
 */
import {
  firstTouch, lruEviction, PAGE_SIZE, priorityEviction, simulate, streaming, treePrefetch, withHooks,
  type EvictionHooks, type TraceRecord,
} from '../src/policy/index.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const PAGES = arg('--pages', 600);
const CAPACITY = arg('--capacity', 800);
const B_OFFSET = Math.ceil(PAGES / 512) * 512; // tenant B starts at the next 2 MiB block

const tenant = (device: number, offset: number): TraceRecord[] =>
  streaming(PAGES, { passes: 4, gapNs: 200, device }).map((r) => ({ ...r, addr: r.addr + offset * PAGE_SIZE }));
const run = (trace: TraceRecord[], eviction: EvictionHooks): number[] =>
  simulate(trace, { policy: withHooks(firstTouch(), { prefetch: treePrefetch(), eviction }), sharedDevice: true, capacityPages: CAPACITY }).completionNs;

const a = tenant(0, 0);
const b = tenant(1, B_OFFSET);
const both = [...a, ...b].sort((x, y) => x.time - y.time);
const alone = [run(a, lruEviction())[0], run(b.map((r) => ({ ...r, proc: 0 })), lruEviction())[0]];
const lru = run(both, lruEviction());
const prio = run(both, priorityEviction((c) => c * 512 < B_OFFSET));
const ms = (ns: number): string => (ns / 1e6).toFixed(2);
console.log(`two tenants, ${PAGES} pages each, device ${CAPACITY} pages (simulated ms)\n`);
console.log('| tenant | alone | together, LRU-2M | together, priority to A |');
console.log('|---|---:|---:|---:|');
console.log(`| A | ${ms(alone[0])} | ${ms(lru[0])} | ${ms(prio[0])} |`);
console.log(`| B | ${ms(alone[1])} | ${ms(lru[1])} | ${ms(prio[1])} |`);
