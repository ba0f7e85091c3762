/**
 * Runs as a Chrome trace-event JSON file (the "JSON Object Format" that ui.perfetto.dev and
 * chrome://tracing open): one process per run, and in it
 *   thread 1 "fault batches"   each batch a complete slice (ph X) with its figures as args,
 *                              and nested in it the service's parts its record carries
 *                              (src/driver/phases.ts): fetch, mmap lock wait, mmap lock
 *                              held and in it coalesce, policy, migration, hmm_range_fault,
 *                              mirror update
 *   thread 2 "rounds"          each round of the command (launch or replay) a slice up to
 *                              the next round
 *   thread 3 "invalidations"   each mmu notifier invalidation an instant (ph i)
 *   counters (ph C)            faults per batch (fetched, unique), migrations each way
 *                              (running totals), fault ring fill
 * Times are µs (the format's unit) on the clock given: the cost model's simulated time or
 * wall time. Slices on one thread nest properly (a child never outlasts its parent), which
 * the tests check.
 */
import type { RunResult } from '../experiment/types.js';

export interface TraceEvent {
  name: string;
  ph: 'X' | 'i' | 'C' | 'M';
  ts: number;
  pid: number;
  tid: number;
  dur?: number;
  s?: 't' | 'p' | 'g';
  cat?: string;
  args?: Record<string, number | string>;
}

export interface PerfettoRun {
  result: RunResult;
  /** Each batch's [start, end] in ms on the run's clock (default: its record's t and serviceMs). */
  batches?: [number, number][];
  /** Each round's start, ms, and the faults it recorded. */
  rounds?: { ms: number; faults: number }[];
  /** Invalidations' times, ms. */
  invalidations?: number[];
  /** Per batch: the fault ring's fill, 0..1, and pages migrated to the device / home. */
  ringFill?: number[];
  toDevice?: number[];
  toHost?: number[];
}

export interface TraceFile {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms' | 'ns';
  metadata: Record<string, string>;
}

const us = (ms: number): number => Math.round(ms * 1000 * 1000) / 1000;

export function toPerfetto(runs: readonly PerfettoRun[], clock: 'simulated (cost model)' | 'wall'): TraceFile {
  const ev: TraceEvent[] = [];
  runs.forEach((run, k) => {
    const pid = k + 1;
    const r = run.result;
    const c = r.config;
    ev.push({ name: 'process_name', ph: 'M', ts: 0, pid, tid: 0, args: { name: `run ${pid}: ${c.workload} ${c.protocol} window ${String(c.window)} batch ${c.batchSize}${c.policy ? ` ${c.policy}` : ''} seed ${c.seed}` } });
    for (const [tid, name] of [[1, 'fault batches'], [2, 'rounds'], [3, 'invalidations']] as const) {
      ev.push({ name: 'thread_name', ph: 'M', ts: 0, pid, tid, args: { name } });
    }
    // Several processes (config.processes): each one's mirror has its own servicer, so each
    // one's batches get a thread of their own (P0's the first).
    const procs = Math.max(1, ...r.records.map((x) => (x.proc ?? 0) + 1));
    const batchTid = (proc: number): number => (proc === 0 ? 1 : 3 + proc);
    for (let p = 1; p < procs; p++) ev.push({ name: 'thread_name', ph: 'M', ts: 0, pid, tid: batchTid(p), args: { name: `fault batches, process ${p}` } });
    let toDev = 0;
    let toHost = 0;
    const prevEnd: number[] = [];
    r.records.forEach((rec, i) => {
      // One servicer services batches one after another: from the records alone, a batch
      // starts when it was fetched or when the one before it ended, whichever is later.
      const proc = rec.proc ?? 0;
      const tid = batchTid(proc);
      const t0 = Math.max(rec.t, prevEnd[proc] ?? -Infinity);
      // A process's batches never overlap on its thread (its servicer runs one at a time).
      const given = run.batches?.[i];
      const s = given === undefined ? t0 : Math.max(given[0], prevEnd[proc] ?? -Infinity);
      const e = given === undefined ? t0 + rec.serviceMs : Math.max(given[1], s);
      prevEnd[proc] = e;
      const ts = us(s);
      const dur = Math.max(0, us(e) - ts);
      ev.push({
        name: `batch ${rec.index}`, cat: 'fault', ph: 'X', ts, dur, pid, tid,
        args: {
          round: rec.round, fetched: rec.fetched, duplicates: rec.duplicates, unique: rec.unique, groups: rec.groups,
          rangeFaults: rec.rangeFaults, retries: rec.retries, ebusy: rec.ebusy, serviceMs: rec.serviceMs,
        },
      });
      // The service's parts (the record's spans, phases.ts) nested in the slice, scaled into
      // it: on wall time as measured, on simulated time the slice is the cost model's charge
      // and the parts keep their wall-time proportions. Each is clipped to the slice.
      const f = rec.serviceMs > 0 ? dur / us(rec.serviceMs) : 0;
      const end = ts + dur;
      const part = (name: string, from: number, to: number): void => {
        const a = Math.min(end, ts + from * f);
        const b = Math.min(end, ts + to * f);
        // A part too short for the clock (0 ms) is still a slice: it happened, in this order.
        if (b >= a) ev.push({ name, cat: 'service', ph: 'X', ts: a, dur: b - a, pid, tid });
      };
      if (rec.spans !== undefined) {
        for (const sp of rec.spans) part(sp.phase, us(sp.start), us(sp.end));
      } else {
        // A record from before the spans (an older export): the lock's wait and hold only.
        const wait = us(rec.mmapLockWaitMs);
        part('mmap lock wait', 0, wait);
        part('mmap lock held', wait, wait + us(rec.mmapLockHoldMs));
      }
      ev.push({ name: 'faults', ph: 'C', ts, pid, tid: 0, args: { fetched: rec.fetched, unique: rec.unique } });
      if (run.ringFill) ev.push({ name: 'fault ring fill', ph: 'C', ts, pid, tid: 0, args: { fill: run.ringFill[i] ?? 0 } });
      toDev += run.toDevice?.[i] ?? 0;
      toHost += run.toHost?.[i] ?? 0;
      if (run.toDevice || run.toHost) ev.push({ name: 'migrations (running total)', ph: 'C', ts, pid, tid: 0, args: { toDevice: toDev, home: toHost } });
    });
    const rounds = run.rounds ?? [];
    rounds.forEach((rd, i) => {
      const ts = us(rd.ms);
      const end = i + 1 < rounds.length ? us(rounds[i + 1].ms) : ts;
      ev.push({ name: `round ${i + 1}`, cat: 'round', ph: 'X', ts, dur: Math.max(0, end - ts), pid, tid: 2, args: { faults: rd.faults } });
    });
    for (const t of run.invalidations ?? []) ev.push({ name: 'invalidate', cat: 'mmu_notifier', ph: 'i', s: 't', ts: us(t), pid, tid: 3 });
  });
  return { traceEvents: ev, displayTimeUnit: 'ms', metadata: { clock, generator: 'mirrorlab' } };
}

/** Problems with a trace-event file: the format's required fields, and nesting per thread. */
export function checkTraceEvents(v: unknown): string[] {
  const out: string[] = [];
  if (typeof v !== 'object' || v === null || !Array.isArray((v as { traceEvents?: unknown }).traceEvents)) return ['no traceEvents array'];
  const evs = (v as { traceEvents: unknown[] }).traceEvents;
  const open = new Map<string, { end: number; name: string }[]>();
  const xs: { key: string; ts: number; end: number; name: string; i: number }[] = [];
  evs.forEach((e, i) => {
    const o = e as Record<string, unknown>;
    const where = `event ${i}`;
    if (typeof o !== 'object' || o === null) { out.push(`${where}: not an object`); return; }
    if (typeof o.name !== 'string') out.push(`${where}: name`);
    if (!['X', 'i', 'I', 'C', 'M', 'B', 'E'].includes(String(o.ph))) out.push(`${where}: ph ${String(o.ph)}`);
    for (const k of ['ts', 'pid', 'tid']) if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) out.push(`${where}: ${k}`);
    if (o.ph === 'X' && (typeof o.dur !== 'number' || o.dur < 0)) out.push(`${where}: dur`);
    if (o.ph === 'C' && (typeof o.args !== 'object' || o.args === null || Object.values(o.args).some((x) => typeof x !== 'number'))) out.push(`${where}: counter args must be numbers`);
    if (o.ph === 'i' && o.s !== undefined && !['t', 'p', 'g'].includes(String(o.s))) out.push(`${where}: s`);
    if (o.ph === 'X' && typeof o.ts === 'number' && typeof o.dur === 'number') xs.push({ key: `${String(o.pid)}/${String(o.tid)}`, ts: o.ts, end: o.ts + o.dur, name: String(o.name), i });
  });
  xs.sort((a, b) => a.key.localeCompare(b.key) || a.ts - b.ts || b.end - a.end);
  for (const x of xs) {
    const stack = open.get(x.key) ?? [];
    // (Times are µs to the ns: sums of them carry floating-point noise well below that.)
    while (stack.length && stack[stack.length - 1].end <= x.ts + 1e-6) stack.pop();
    const parent = stack[stack.length - 1];
    if (parent && x.end > parent.end + 1e-6) out.push(`event ${x.i} (${x.name}) overlaps ${parent.name} on ${x.key} without nesting`);
    stack.push({ end: x.end, name: x.name });
    open.set(x.key, stack);
  }
  return out;
}
