/**
 * Small synthetic traces for the policy lab (the access patterns the papers measure):
 * streaming (linear page touch, Allen & Ge's "linear page touch"), CPU/device ping-pong (the
 * seed thread's thrashing case), and seeded random touch.
 */
import { ACCESS_READ, ACCESS_WRITE, CPU } from './types.js';
import { PAGE_SIZE } from './cost.js';
import type { TraceRecord } from './trace.js';
import { mulberry32 } from '../sched/seeded.js';

export const TRACE_BASE = 0x7f00_0000_0000;

/** A device reads pages [0, pages) in order, `passes` times, one page every gapNs. */
export function streaming(pages: number, opts: { passes?: number; gapNs?: number; device?: number } = {}): TraceRecord[] {
  const passes = opts.passes ?? 1;
  const gap = opts.gapNs ?? 1_000;
  const out: TraceRecord[] = [];
  for (let k = 0; k < passes; k++) {
    for (let i = 0; i < pages; i++) {
      out.push({ time: (k * pages + i) * gap, addr: TRACE_BASE + i * PAGE_SIZE, access: ACCESS_READ, proc: opts.device ?? 0 });
    }
  }
  return out;
}

/**
 * Device and CPU take turns writing the same pages: the device at 2k * interval, the CPU at
 * (2k + 1) * interval, `iterations` times each.
 */
export function pingPong(iterations: number, opts: { pages?: number; intervalNs?: number; device?: number } = {}): TraceRecord[] {
  const pages = opts.pages ?? 1;
  const iv = opts.intervalNs ?? 10_000;
  const out: TraceRecord[] = [];
  for (let k = 0; k < iterations; k++) {
    for (let i = 0; i < pages; i++) {
      out.push({ time: 2 * k * iv, addr: TRACE_BASE + i * PAGE_SIZE, access: ACCESS_WRITE, proc: opts.device ?? 0 });
    }
    for (let i = 0; i < pages; i++) {
      out.push({ time: (2 * k + 1) * iv, addr: TRACE_BASE + i * PAGE_SIZE, access: ACCESS_WRITE, proc: CPU });
    }
  }
  return out;
}

/** Seeded random touch of `pages` pages, a `cpuShare` of the accesses from the CPU. */
export function randomTouch(seed: number, pages: number, accesses: number,
  opts: { cpuShare?: number; gapNs?: number } = {}): TraceRecord[] {
  const rnd = mulberry32(seed);
  const gap = opts.gapNs ?? 500;
  const cpuShare = opts.cpuShare ?? 0.1;
  const out: TraceRecord[] = [];
  for (let i = 0; i < accesses; i++) {
    const page = Math.floor(rnd() * pages);
    const proc = rnd() < cpuShare ? CPU : 0;
    const access = rnd() < 0.3 ? ACCESS_WRITE : ACCESS_READ;
    out.push({ time: i * gap, addr: TRACE_BASE + page * PAGE_SIZE, access, proc });
  }
  return out;
}
