/**
 * The pages a trace spans from its first 2 MiB-aligned page (as trace-run.ts lays a trace
 * over the buffer), without trace-run's Node imports, so the page can say it before a run.
 */
import type { TraceRecord } from '../policy/trace.js';

const PAGE = 4096;

export function tracePagesOf(recs: readonly TraceRecord[]): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of recs) {
    const p = Math.floor(r.addr / PAGE);
    lo = Math.min(lo, p);
    hi = Math.max(hi, p);
  }
  return recs.length === 0 ? 0 : hi - Math.floor(lo / 512) * 512 + 1;
}
