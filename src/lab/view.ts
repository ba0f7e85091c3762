/**
 * The page's view models, pure (no DOM) so Node tests them: a run as the events of its
 * stream fold into it (counters, the plots' columns, the log), the comparison of two runs,
 * and export/import of finished runs.
 */
import type { BatchRecord } from '../driver/records.js';
import { PAGE_SIZE } from '../mm/constants.js';
import { toBatchCsv, toCsv, toJson } from '../experiment/report.js';
import type { ExperimentReport, RunConfig, RunResult } from '../experiment/types.js';
import type { RunMode } from './controller.js';
import type { LabEvent, RoundFaults } from './session.js';
import { MARK_INVALIDATED, type MirrorSnapshot } from './snapshot.js';
import { verdictOf, type EndState, type Verdict } from './verdict.js';

/** Log lines kept (the oldest go first; the page draws only the visible ones). */
export const LOG_LINES = 5000;

/**
 * The log: a bounded ring of the newest lines. `total` counts every line ever pushed, so a
 * reader that has shown `total` lines knows exactly which are new even after the oldest
 * have gone; the end line is the last pushed, so it is always kept.
 */
export class LogRing {
  readonly capacity: number;
  readonly #lines: string[] = [];
  #head = 0;
  #total = 0;

  constructor(capacity = LOG_LINES) {
    this.capacity = capacity;
  }

  push(line: string): void {
    if (this.#lines.length < this.capacity) this.#lines.push(line);
    else {
      this.#lines[this.#head] = line;
      this.#head = (this.#head + 1) % this.capacity;
    }
    this.#total++;
  }

  /** Lines pushed since the beginning (kept or not). */
  get total(): number {
    return this.#total;
  }

  /** Lines kept now. */
  get length(): number {
    return this.#lines.length;
  }

  /** The i-th kept line, oldest first. */
  at(i: number): string {
    return this.#lines[(this.#head + i) % this.#lines.length];
  }

  /** The kept lines, oldest first. */
  toArray(): string[] {
    return [...this.#lines.slice(this.#head), ...this.#lines.slice(0, this.#head)];
  }
}

/** A round of the command: when it ran and the faults it recorded (the per-page history). */
export interface RoundPoint {
  /** The process whose command ran it (0 in a one-process run). */
  proc: number;
  simMs: number;
  wallMs: number;
  history: RoundFaults;
}

/** The address space at one moment (the heat map's column). */
export interface StripFrame {
  simMs: number;
  wallMs: number;
  cpu: Uint8Array;
  gpu: Uint8Array;
}

/** Heat-map columns kept: when full, every other one goes (the time axis keeps its span). */
export const MAX_FRAMES = 512;

/** The plots' columns: x is the batch index, one array per series (uPlot's data layout). */
export interface Series {
  batch: number[];
  fetched: number[];
  unique: number[];
  duplicates: number[];
  /** unique / range-fault calls of the batch; null when it made none. */
  coalescing: (number | null)[];
  retriesTotal: number[];
  ebusyTotal: number[];
  /** Simulated ms (the cost model's clock, sim-clock.ts) at the batch's end. */
  simMs: number[];
  /**
   * The batch's span on simulated time: from when its service began (after the round that
   * recorded it and the batch before) to its end. One process: simStart..simMs. Several:
   * each on its own process's clock (the device's time, simMs, is the later clock).
   */
  simStart: number[];
  simEnd: number[];
  /** Index in LiveRun.rounds of the round whose faults the batch holds (-1: none seen). */
  roundIdx: number[];
  /** Wall ms since the run's start. */
  wallMs: number[];
  /** Fault ring fill of the replay that produced the batch, 0..1. */
  ringFill: number[];
  /** The workgroup TLBs' hit rate in the round that produced the batch, 0..1 (lookups served without a walk). */
  tlbHitRate: number[];
  /** The process whose mirror serviced the batch (0 in a one-process run). */
  proc: number[];
  /** Migration policy: pages moved to the device / home, and thrashing events, per batch (0 without one). */
  toDevice: number[];
  toHost: number[];
  thrashing: number[];
}

export interface Counters {
  batches: number;
  fetched: number;
  duplicates: number;
  unique: number;
  rangeFaults: number;
  retries: number;
  ebusy: number;
  fallbacks: number;
  rounds: number;
  invalidations: number;
  simMs: number;
  wallMs: number;
  /** The device's workgroup TLBs over the run: translations looked up and page walks done. */
  tlbLookups: number;
  tlbWalks: number;
  /** Workgroups the stall gate did not re-run (RoundResult.stalled), over the run. */
  stalledWorkgroups: number;
  /** Migration policy (0 without one): pages and bytes moved each way, thrashing events. */
  migrationsToDevice: number;
  migrationsToHost: number;
  bytesToDevice: number;
  bytesToHost: number;
  thrashingEvents: number;
}

export type RunStatus = 'idle' | RunMode | EndState;

export class LiveRun {
  config: RunConfig;
  status: RunStatus = 'running';
  held = false;
  readonly series: Series = {
    batch: [], fetched: [], unique: [], duplicates: [], coalescing: [], retriesTotal: [], ebusyTotal: [], simMs: [], simStart: [], simEnd: [], roundIdx: [], wallMs: [], ringFill: [], tlbHitRate: [],
    proc: [], toDevice: [], toHost: [], thrashing: [],
  };
  /** Processes of the run (config.processes), and each one's batches and faults so far. */
  processes = 1;
  readonly perProcess: { batches: number; fetched: number; unique: number; rangeFaults: number }[] = [{ batches: 0, fetched: 0, unique: 0, rangeFaults: 0 }];
  readonly counters: Counters = {
    batches: 0, fetched: 0, duplicates: 0, unique: 0, rangeFaults: 0, retries: 0, ebusy: 0, fallbacks: 0, rounds: 0,
    invalidations: 0, simMs: 0, wallMs: 0, tlbLookups: 0, tlbWalks: 0, stalledWorkgroups: 0, migrationsToDevice: 0, migrationsToHost: 0, bytesToDevice: 0, bytesToHost: 0, thrashingEvents: 0,
  };
  readonly records: BatchRecord[] = [];
  readonly log = new LogRing();
  snapshot: MirrorSnapshot | null = null;
  /** Each round's time and recorded faults, in order. */
  readonly rounds: RoundPoint[] = [];
  /** Address-space frames over time (the heat map), at most MAX_FRAMES. */
  readonly frames: StripFrame[] = [];
  /** Invalidation instants (sim and wall ms), as many as the stream carried. */
  readonly invalidations: { simMs: number[]; wallMs: number[] } = { simMs: [], wallMs: [] };
  /**
   * Per page, the snapshot count at which an invalidation last hit it (the strip's overlay
   * fades over the snapshots after).
   */
  invalidatedAt: Int32Array = new Int32Array(0);
  snapshots = 0;
  /** The command's progress at the last round: invocations done of total. */
  progress = { done: 0, total: 0 };
  ring = { faults: 0, capacity: 0, overflow: false };
  result: RunResult | null = null;
  pausedMs = 0;
  buffer = { start: 0, pages: 0 };
  /** Per process, the index in `rounds` of its latest round. */
  #lastRound: number[] = [];
  #lastRing = 0;
  #lastTlb = 0;
  /** Per process: simulated ms of its latest round and of its latest batch's end. */
  #lastRoundSim: number[] = [];
  #lastEndSim: number[] = [];

  constructor(config: RunConfig) {
    this.config = config;
    this.#processes(config.processes ?? 1);
  }

  #processes(n: number): void {
    this.processes = n;
    while (this.perProcess.length < n) this.perProcess.push({ batches: 0, fetched: 0, unique: 0, rangeFaults: 0 });
  }

  /** A finished run read back from an export: its batches folded in, its result kept. */
  static fromResult(r: RunResult): LiveRun {
    const lr = new LiveRun(r.config);
    const sim = r.lab?.batchSimNs;
    lr.apply(r.records.map((rec, i) => ({ kind: 'batch' as const, rec, wallMs: rec.t + rec.serviceMs, simMs: (sim?.[i] ?? 0) / 1e6 })));
    lr.finish(r);
    return lr;
  }

  #line(s: string): void {
    this.log.push(s);
  }

  /** Folds a batch of events in. */
  apply(events: readonly LabEvent[]): void {
    for (const e of events) this.#one(e);
  }

  #one(e: LabEvent): void {
    // Once the run has ended its figures are the result's and its end line is the log's last:
    // events the worker flushed after the end (a storm's last invalidations) change neither.
    if (this.result !== null && e.kind !== 'end') return;
    const c = this.counters;
    switch (e.kind) {
      case 'begin':
        this.buffer = { start: e.start, pages: e.pages };
        this.#processes(e.processes ?? 1);
        this.invalidatedAt = new Int32Array(e.pages).fill(-1_000_000);
        this.#line(`start: ${describeConfig(e.config)}; ` + (this.processes > 1
          ? `${this.processes} processes, each a buffer at 0x${e.start.toString(16)} of its own, ${e.pages / this.processes} pages each (P0's pages first in the strip)`
          : `buffer 0x${e.start.toString(16)}, ${e.pages} pages`));
        break;
      case 'round':
        c.rounds++;
        this.#lastRound[e.proc ?? 0] = this.rounds.length;
        this.rounds.push({ proc: e.proc ?? 0, simMs: e.simMs, wallMs: e.wallMs, history: e.history });
        this.progress = { done: e.done, total: e.total };
        this.#lastRoundSim[e.proc ?? 0] = e.procSimMs ?? e.simMs;
        c.tlbLookups += e.tlbLookups;
        c.tlbWalks += e.tlbWalks;
        c.stalledWorkgroups += e.stalled;
        this.#lastTlb = e.tlbLookups > 0 ? (e.tlbLookups - e.tlbWalks) / e.tlbLookups : 0;
        this.ring = { faults: e.faults, capacity: e.capacity, overflow: e.overflow };
        this.#lastRing = e.capacity > 0 ? Math.min(1, e.faults / e.capacity) : 0;
        break;
      case 'batch': {
        const r = e.rec;
        this.records.push(r);
        c.batches++;
        c.fetched += r.fetched;
        c.duplicates += r.duplicates;
        c.unique += r.unique;
        c.rangeFaults += r.rangeFaults;
        c.retries += r.retries;
        c.ebusy += r.ebusy;
        c.fallbacks += r.fallbacks;
        c.simMs = e.simMs;
        c.wallMs = e.wallMs;
        const s = this.series;
        s.batch.push(r.index);
        s.fetched.push(r.fetched);
        s.unique.push(r.unique);
        s.duplicates.push(r.duplicates);
        s.coalescing.push(r.rangeFaults > 0 ? r.unique / r.rangeFaults : null);
        s.retriesTotal.push(c.retries);
        s.ebusyTotal.push(c.ebusy);
        const proc0 = r.proc ?? 0;
        const end = e.procSimMs ?? e.simMs;
        s.simStart.push(Math.min(end, Math.max(this.#lastRoundSim[proc0] ?? 0, this.#lastEndSim[proc0] ?? 0)));
        s.simEnd.push(end);
        this.#lastEndSim[proc0] = end;
        s.simMs.push(c.simMs);
        s.roundIdx.push(this.#lastRound[r.proc ?? 0] ?? -1);
        s.wallMs.push(e.wallMs);
        s.ringFill.push(this.#lastRing);
        s.tlbHitRate.push(this.#lastTlb);
        const proc = r.proc ?? 0;
        s.proc.push(proc);
        this.#processes(Math.max(this.processes, proc + 1));
        const pp = this.perProcess[proc];
        pp.batches++;
        pp.fetched += r.fetched;
        pp.unique += r.unique;
        pp.rangeFaults += r.rangeFaults;
        const p = e.policy;
        if (p) {
          c.migrationsToDevice += p.migrationsToDevice;
          c.migrationsToHost += p.migrationsToHost;
          c.bytesToDevice += p.bytesToDevice;
          c.bytesToHost += p.bytesToHost;
          c.thrashingEvents += p.thrashingEvents;
        }
        s.toDevice.push(p?.migrationsToDevice ?? 0);
        s.toHost.push(p?.migrationsToHost ?? 0);
        s.thrashing.push(p?.thrashingEvents ?? 0);
        this.#line(`${this.processes > 1 ? `P${proc} ` : ''}batch ${r.index} (replay ${r.round}): ${r.fetched} fetched, ${r.duplicates} dup, ${r.unique} unique in ${r.groups} group(s), ` +
          `${r.rangeFaults} range fault(s), ${r.retries} retr${r.retries === 1 ? 'y' : 'ies'}${r.ebusy ? `, ${r.ebusy} EBUSY` : ''}, ${r.serviceMs.toFixed(1)} ms` +
          (p && (p.migrationsToDevice || p.migrationsToHost) ? `; migrated ${p.migrationsToDevice} in, ${p.migrationsToHost} home${p.thrashingEvents ? `, ${p.thrashingEvents} thrashing` : ''}` : ''));
        break;
      }
      case 'invalidations':
        c.invalidations += e.total;
        this.invalidations.simMs.push(...e.simMs);
        this.invalidations.wallMs.push(...e.wallMs);
        for (const n of e.listed) {
          this.#line(`${n.proc !== undefined ? `P${n.proc} ` : ''}invalidate ${n.event} [0x${n.start.toString(16)}, 0x${n.end.toString(16)}) at ${n.simMs.toFixed(1)} ms`);
        }
        if (e.total > e.listed.length) this.#line(`… and ${e.total - e.listed.length} more invalidation(s)`);
        break;
      case 'snapshot':
        this.snapshot = e.snapshot;
        this.snapshots++;
        e.snapshot.marks.forEach((m, i) => { if (m & MARK_INVALIDATED && i < this.invalidatedAt.length) this.invalidatedAt[i] = this.snapshots; });
        this.#frame({ simMs: e.simMs, wallMs: e.wallMs, cpu: e.snapshot.cpu, gpu: e.snapshot.gpu });
        c.simMs = Math.max(c.simMs, e.simMs);
        c.wallMs = Math.max(c.wallMs, e.wallMs);
        break;
      case 'state':
        this.status = e.mode;
        this.held = e.held;
        if (e.held) this.#line(c.batches === 0 ? 'held before the first batch' : `held after ${c.batches} batch${c.batches === 1 ? '' : 'es'} (${e.mode})`);
        break;
      case 'end':
        this.finish(e.result, e.pausedMs);
        break;
    }
  }

  #frame(f: StripFrame): void {
    if (this.frames.length >= MAX_FRAMES) {
      // Keep every other frame: the map keeps the whole run at half the time resolution.
      for (let i = 1, j = 2; j < this.frames.length; i++, j += 2) this.frames[i] = this.frames[j];
      this.frames.length = Math.ceil(this.frames.length / 2);
    }
    this.frames.push(f);
  }

  /** The run's verdict, once it has ended (verdict.ts). */
  get verdict(): Verdict | null {
    return this.result === null ? null : verdictOf(this.result);
  }

  /**
   * The run's result: the first one wins (the worker's 'end' event and the page's own
   * ending of a stopped run may both arrive; the run ends once and logs one end line).
   */
  finish(result: RunResult, pausedMs = 0): void {
    if (this.result !== null) return;
    this.result = result;
    this.pausedMs = pausedMs;
    this.held = false;
    const verdict = verdictOf(result);
    this.status = verdict.state;
    const c0 = this.counters;
    // The table's figures are the run's: the live ones end on them.
    c0.wallMs = result.wallMs;
    if (result.lab) {
      c0.simMs = result.lab.simNs / 1e6;
      c0.invalidations = result.lab.invalidations;
    }
    const p = result.policy;
    if (p) {
      // The run's totals count moves after the last batch too (the final CPU phase's faults).
      const c = this.counters;
      c.bytesToDevice = p.bytesToDevice;
      c.bytesToHost = p.bytesToHost;
      c.migrationsToDevice = p.bytesToDevice / PAGE_SIZE;
      c.migrationsToHost = p.bytesToHost / PAGE_SIZE;
      c.thrashingEvents = p.thrashingEvents;
    }
    const v = result.verify;
    this.#line(`end: ${verdict.text}; ${result.totals.batches} batches, verified ${v.checked} words, ${v.mismatches} wrong` +
      `${result.storm.ops ? `; ${result.storm.ops} storm ops` : ''}${result.stalePfns !== undefined ? `; ${result.stalePfns} stale pfns` : ''}` +
      `${p ? `; ${p.policy}: ${p.bytesToDevice / PAGE_SIZE} page(s) migrated in, ${p.bytesToHost / PAGE_SIZE} home, ${p.thrashingEvents} thrashing, ${p.pins} pinned` : ''}` +
      (result.processes ?? []).map((q, i) => `; P${i}: ${q.batches} batches, ${q.unique} unique faults, ${q.verify.mismatches} wrong of ${q.verify.checked}` +
        `${q.migratedIn !== undefined ? `, ${q.migratedIn} migrated in, ${q.skipped ?? 0} skipped (device full)` : ''}`).join(''));
  }
}

export function describeConfig(c: RunConfig): string {
  const w = c.window === 'amd' ? 'amd' : c.window >= 1 << 20 ? `${c.window >> 20}m` : `${c.window >> 10}k`;
  return `${c.workload} ${c.sizeMiB} MiB, writes ${c.writeFraction}, window ${w}, batch ${c.batchSize}, ${c.replay}, ${c.protocol}, ` +
    `coalescing ${c.coalesce ? 'on' : 'off'}, storm ${c.stormRate}/s, seed ${c.seed}` +
    (c.policy !== undefined ? `, policy ${c.policy}, oversub ${c.oversub ?? 1}` : '') + ((c.processes ?? 1) > 1 ? `, ${c.processes} processes` : '');
}

/**
 * The counters a scenario is compared by across the worker boundary: what the run did, not
 * how long it took (times differ between any two runs).
 */
export function runCounters(r: RunResult): Record<string, number | string | boolean> {
  const t = r.totals;
  return {
    ok: r.ok, rounds: r.rounds, faultRounds: r.faultRounds, batches: t.batches, fetched: t.fetched, duplicates: t.duplicates,
    unique: t.unique, groups: t.groups, rangeFaults: t.rangeFaults, retries: t.retries, ebusy: t.ebusy, mirrorWrites: t.mirrorWrites,
    verifyChecked: r.verify.checked, verifyMismatches: r.verify.mismatches, stormOps: r.storm.ops, stalePfns: r.stalePfns ?? -1,
  };
}

/** A lab export: the experiment's report shape, so the CLI's tools and the report read it. */
export function labReport(runs: readonly RunResult[], adapter: string, agent: string): ExperimentReport {
  return { generatedAt: new Date().toISOString(), adapter, node: agent, presets: ['lab'], runs: [...runs] };
}

export function exportJson(report: ExperimentReport): string {
  return toJson(report);
}

export function exportCsv(report: ExperimentReport): { runs: string; batches: string } {
  return { runs: toCsv(report), batches: toBatchCsv(report) };
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads an export back (toJson's "Infinity" strings become numbers again); throws on anything else. */
export function importJson(text: string): ExperimentReport {
  const v: unknown = JSON.parse(text, (_k, x: unknown) => (x === 'Infinity' ? Infinity : x === '-Infinity' ? -Infinity : x));
  if (!isObj(v) || !Array.isArray(v.runs)) throw new Error('not a mirrorlab export: no "runs" list');
  v.runs.forEach((r: unknown, i) => {
    if (!isObj(r) || !isObj(r.config) || !isObj(r.totals) || !Array.isArray(r.records) || !isObj(r.storm) || !isObj(r.verify)) {
      throw new Error(`run ${i + 1} is not a run result (config, totals, records, storm, verify)`);
    }
  });
  return {
    generatedAt: String(v.generatedAt ?? ''), adapter: String(v.adapter ?? ''), node: String(v.node ?? ''),
    presets: Array.isArray(v.presets) ? v.presets.map(String) : [], runs: v.runs as RunResult[],
  };
}
