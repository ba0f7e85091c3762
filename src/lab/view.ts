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
import type { LabEvent } from './session.js';
import type { MirrorSnapshot } from './snapshot.js';

/** Log lines kept (the oldest go first). */
export const LOG_LINES = 400;

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
  /** Scheduler ms since the run's start (the clock stops while paused). */
  simMs: number[];
  /** Wall ms since the run's start. */
  wallMs: number[];
  /** Fault ring fill of the replay that produced the batch, 0..1. */
  ringFill: number[];
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
  /** Migration policy (0 without one): pages and bytes moved each way, thrashing events. */
  migrationsToDevice: number;
  migrationsToHost: number;
  bytesToDevice: number;
  bytesToHost: number;
  thrashingEvents: number;
}

export type RunStatus = 'idle' | RunMode | 'done' | 'failed' | 'stopped';

export class LiveRun {
  config: RunConfig;
  status: RunStatus = 'running';
  held = false;
  readonly series: Series = {
    batch: [], fetched: [], unique: [], duplicates: [], coalescing: [], retriesTotal: [], ebusyTotal: [], simMs: [], wallMs: [], ringFill: [],
    toDevice: [], toHost: [], thrashing: [],
  };
  readonly counters: Counters = {
    batches: 0, fetched: 0, duplicates: 0, unique: 0, rangeFaults: 0, retries: 0, ebusy: 0, fallbacks: 0, rounds: 0,
    invalidations: 0, simMs: 0, wallMs: 0, migrationsToDevice: 0, migrationsToHost: 0, bytesToDevice: 0, bytesToHost: 0, thrashingEvents: 0,
  };
  readonly records: BatchRecord[] = [];
  readonly log: string[] = [];
  snapshot: MirrorSnapshot | null = null;
  ring = { faults: 0, capacity: 0, overflow: false };
  result: RunResult | null = null;
  pausedMs = 0;
  buffer = { start: 0, pages: 0 };
  #lastRing = 0;

  constructor(config: RunConfig) {
    this.config = config;
  }

  #line(s: string): void {
    this.log.push(s);
    if (this.log.length > LOG_LINES) this.log.splice(0, this.log.length - LOG_LINES);
  }

  /** Folds a batch of events in. */
  apply(events: readonly LabEvent[]): void {
    for (const e of events) this.#one(e);
  }

  #one(e: LabEvent): void {
    const c = this.counters;
    switch (e.kind) {
      case 'begin':
        this.buffer = { start: e.start, pages: e.pages };
        this.#line(`start: ${describeConfig(e.config)}; buffer 0x${e.start.toString(16)}, ${e.pages} pages`);
        break;
      case 'round':
        c.rounds++;
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
        c.simMs = r.t + r.serviceMs;
        c.wallMs = e.wallMs;
        const s = this.series;
        s.batch.push(r.index);
        s.fetched.push(r.fetched);
        s.unique.push(r.unique);
        s.duplicates.push(r.duplicates);
        s.coalescing.push(r.rangeFaults > 0 ? r.unique / r.rangeFaults : null);
        s.retriesTotal.push(c.retries);
        s.ebusyTotal.push(c.ebusy);
        s.simMs.push(c.simMs);
        s.wallMs.push(e.wallMs);
        s.ringFill.push(this.#lastRing);
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
        this.#line(`batch ${r.index} (replay ${r.round}): ${r.fetched} fetched, ${r.duplicates} dup, ${r.unique} unique in ${r.groups} group(s), ` +
          `${r.rangeFaults} range fault(s), ${r.retries} retr${r.retries === 1 ? 'y' : 'ies'}${r.ebusy ? `, ${r.ebusy} EBUSY` : ''}, ${r.serviceMs.toFixed(1)} ms` +
          (p && (p.migrationsToDevice || p.migrationsToHost) ? `; migrated ${p.migrationsToDevice} in, ${p.migrationsToHost} home${p.thrashingEvents ? `, ${p.thrashingEvents} thrashing` : ''}` : ''));
        break;
      }
      case 'invalidations':
        c.invalidations += e.total;
        for (const n of e.listed) {
          this.#line(`invalidate ${n.event} [0x${n.start.toString(16)}, 0x${n.end.toString(16)}) at ${n.simMs.toFixed(1)} ms`);
        }
        if (e.total > e.listed.length) this.#line(`… and ${e.total - e.listed.length} more invalidation(s)`);
        break;
      case 'snapshot':
        this.snapshot = e.snapshot;
        c.simMs = Math.max(c.simMs, e.simMs);
        c.wallMs = Math.max(c.wallMs, e.wallMs);
        break;
      case 'state':
        this.status = e.mode;
        this.held = e.held;
        if (e.held) this.#line(`held after batch ${c.batches - 1} (${e.mode})`);
        break;
      case 'end':
        this.finish(e.result, e.pausedMs);
        break;
    }
  }

  finish(result: RunResult, pausedMs = 0): void {
    this.result = result;
    this.pausedMs = pausedMs;
    this.held = false;
    this.status = result.ok ? 'done' : /^EINTR/.test(result.error ?? '') ? 'stopped' : 'failed';
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
    this.#line(`end: ${result.ok ? 'ok' : result.error}; ${result.totals.batches} batches, verified ${v.checked} words, ${v.mismatches} wrong` +
      `${result.storm.ops ? `; ${result.storm.ops} storm ops` : ''}${result.stalePfns !== undefined ? `; ${result.stalePfns} stale pfns` : ''}` +
      `${p ? `; ${p.policy}: ${p.bytesToDevice / PAGE_SIZE} page(s) migrated in, ${p.bytesToHost / PAGE_SIZE} home, ${p.thrashingEvents} thrashing, ${p.pins} pinned` : ''}`);
  }
}

export function describeConfig(c: RunConfig): string {
  const w = c.window === 'amd' ? 'amd' : c.window >= 1 << 20 ? `${c.window >> 20}m` : `${c.window >> 10}k`;
  return `${c.workload} ${c.sizeMiB} MiB, writes ${c.writeFraction}, window ${w}, batch ${c.batchSize}, ${c.replay}, ${c.protocol}, ` +
    `coalescing ${c.coalesce ? 'on' : 'off'}, storm ${c.stormRate}/s, seed ${c.seed}` +
    (c.policy !== undefined ? `, policy ${c.policy}, oversub ${c.oversub ?? 1}` : '');
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

/** The rows of the side-by-side comparison: [label, pinned, current]. */
export function compareRows(a: RunResult | null, b: RunResult | null): [string, string, string][] {
  const rows: [string, (r: RunResult) => string][] = [
    ['configuration', (r) => describeConfig(r.config)],
    ['status', (r) => (r.ok ? 'ok' : r.error ?? 'failed')],
    ['batches', (r) => String(r.totals.batches)],
    ['faults fetched', (r) => String(r.totals.fetched)],
    ['duplicates', (r) => String(r.totals.duplicates)],
    ['unique faults', (r) => String(r.totals.unique)],
    ['range-fault calls', (r) => String(r.totals.rangeFaults)],
    ['coalescing factor', (r) => (r.totals.rangeFaults > 0 ? (r.totals.unique / r.totals.rangeFaults).toFixed(2) : '—')],
    ['retries', (r) => String(r.totals.retries)],
    ['EBUSYs', (r) => String(r.totals.ebusy)],
    ['storm ops', (r) => String(r.storm.ops)],
    ['stale pfns', (r) => (r.stalePfns === undefined ? '—' : String(r.stalePfns))],
    ['migration policy', (r) => (r.policy ? `${r.policy.policy}, oversub ${r.config.oversub ?? 1}` : 'none')],
    ['bytes moved to device / home', (r) => (r.policy ? `${r.policy.bytesToDevice} / ${r.policy.bytesToHost}` : '0 / 0')],
    ['migrations to device / home', (r) => (r.policy ? `${r.policy.bytesToDevice / PAGE_SIZE} / ${r.policy.bytesToHost / PAGE_SIZE}` : '0 / 0')],
    ['thrashing events / pins', (r) => (r.policy ? `${r.policy.thrashingEvents} / ${r.policy.pins}` : '0 / 0')],
    ['service µs/fault', (r) => (r.totals.unique > 0 ? ((r.totals.serviceMs * 1000) / r.totals.unique).toFixed(1) : '—')],
    ['wall ms', (r) => r.wallMs.toFixed(0)],
    ['words verified / wrong', (r) => `${r.verify.checked} / ${r.verify.mismatches}`],
  ];
  return rows.map(([label, f]) => [label, a ? f(a) : '—', b ? f(b) : '—']);
}
