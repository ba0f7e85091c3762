/**
 * A lab run as the traces other tools read: Perfetto's trace-event JSON (src/trace/
 * perfetto.ts) on simulated or wall time, and uvm-eval's log (src/trace/uvm-eval.ts) from
 * the fault addresses each round recorded (LiveRun.rounds: at most MAX_ROUND_FAULTS a
 * round, evenly sampled, so a large round's batch lists a sample of its faults).
 */
import { PAGE_SIZE } from '../mm/constants.js';
import { toPerfetto, type PerfettoRun, type TraceFile } from '../trace/perfetto.js';
import { toUvmEval, type BatchOut } from '../trace/uvm-eval.js';
import type { LiveRun } from './view.js';

export function perfettoRun(r: LiveRun, axis: 'sim' | 'wall'): PerfettoRun | null {
  const res = r.result;
  if (res === null) return null;
  const s = r.series;
  const sim = axis === 'sim';
  return {
    result: res,
    batches: s.batch.map((_, i) => (sim ? [s.simStart[i], s.simEnd[i]] : [s.wallMs[i] - res.records[i].serviceMs, s.wallMs[i]])),
    rounds: r.rounds.map((rd) => ({ ms: sim ? rd.simMs : rd.wallMs, faults: rd.history.total })),
    invalidations: sim ? r.invalidations.simMs : r.invalidations.wallMs,
    ringFill: s.ringFill, toDevice: s.toDevice, toHost: s.toHost,
  };
}

export function labPerfetto(runs: readonly LiveRun[], axis: 'sim' | 'wall'): TraceFile {
  return toPerfetto(runs.map((r) => perfettoRun(r, axis)).filter((x): x is PerfettoRun => x !== null), axis === 'sim' ? 'simulated (cost model)' : 'wall');
}

export function labUvmEval(r: LiveRun): string {
  const out: BatchOut[] = [];
  const taken = new Map<number, number>();
  const each = Math.max(1, r.buffer.pages / r.processes);
  r.records.forEach((rec, i) => {
    const ri = r.series.roundIdx[i] ?? -1;
    const rd = r.rounds[ri];
    const from = taken.get(ri) ?? 0;
    const pages = rd ? rd.history.pages.slice(from, from + rec.fetched) : new Uint32Array(0);
    const access = rd ? rd.history.access.slice(from, from + rec.fetched) : new Uint8Array(0);
    taken.set(ri, from + pages.length);
    out.push({
      // Two processes: each one's pages at its own buffer's addresses (the same in each mm).
      faults: Array.from(pages, (p, k) => ({ va: r.buffer.start + (p % each) * PAGE_SIZE, access: access[k], utlb: 0 })),
      tsNs: Math.round(r.series.simStart[i] * 1e6), dtNs: Math.round(rec.serviceMs * 1e6), status: rec.ebusy > 0 ? 16 : 0,
    });
  });
  return toUvmEval(out);
}
