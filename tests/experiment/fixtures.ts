/**
 * Synthetic experiment data for the report and main tests: hand-made runs with known
 * numbers, and a fake runner whose results follow from the config (no GPU).
 */
import { emptyRecord, totals, type BatchRecord } from '../../src/driver/records.js';
import { BASE_CONFIG } from '../../src/experiment/cli.js';
import type { Runner } from '../../src/experiment/main.js';
import type { ExperimentReport, RunConfig, RunResult } from '../../src/experiment/types.js';

export function config(c: Partial<RunConfig> = {}): RunConfig {
  return { preset: 'coalescing', ...BASE_CONFIG, ...c };
}

export function rec(index: number, t: number, r: Partial<BatchRecord>): BatchRecord {
  return { ...emptyRecord(index, t, r.round ?? index), ...r };
}

export function result(cfg: RunConfig, records: BatchRecord[], extra: Partial<RunResult> = {}): RunResult {
  const tot = totals(records);
  return {
    config: cfg, ok: true, error: null, wallMs: 100, rounds: tot.rounds + 1, faultRounds: tot.rounds, totals: tot, records,
    storm: { ops: 0, byKind: {} }, verify: { checked: 1024, mismatches: 0 },
    faultsPerSec: tot.serviceMs > 0 ? (tot.unique / tot.serviceMs) * 1000 : 0, ...extra,
  };
}

/**
 * Three runs:
 *  #1 coalescing on:  fetched 256+256, duplicates 56+6, unique 200+250, 2+3 range faults → factor 90
 *  #2 coalescing off: fetched 128×3, no duplicates, unique 384, 384 range faults → factor 1
 *  #3 protocols valid-flag at 1000/s: EBUSY; fetched 100, unique 80, 4 range faults → factor 20,
 *     7 retries, 1 EBUSY; its error message has a comma and a pipe (quoting).
 */
export function syntheticReport(): ExperimentReport {
  const a = result(config({ coalesce: true }), [
    rec(0, 0, { fetched: 256, duplicates: 56, unique: 200, groups: 2, rangeFaults: 2, mirrorWrites: 2, serviceMs: 4 }),
    rec(1, 10, { fetched: 256, duplicates: 6, unique: 250, groups: 3, rangeFaults: 3, mirrorWrites: 3, serviceMs: 6 }),
  ]);
  const b = result(config({ coalesce: false }), [0, 1, 2].map((i) => rec(i, i * 5, {
    fetched: 128, unique: 128, groups: 128, rangeFaults: 128, mirrorWrites: 128, serviceMs: 20,
  })));
  const c = result(config({ preset: 'protocols', protocol: 'valid-flag', stormRate: 1000 }), [
    rec(0, 0, { fetched: 100, duplicates: 20, unique: 80, groups: 4, rangeFaults: 4, retries: 7, ebusy: 1, mirrorWrites: 3, serviceMs: 1000 }),
  ], { ok: false, error: 'EBUSY: range [0x1000, 0x2000) never became valid | gave up' });
  return {
    generatedAt: '2025-01-31T12:00:00.000Z', adapter: 'llvmpipe (fake)', node: 'v20.0.0', presets: ['coalescing', 'protocols'],
    runs: [a, b, c],
  };
}

/** Deterministic results from the config alone. */
export function fakeResult(cfg: RunConfig): RunResult {
  const pages = cfg.sizeMiB * 256;
  const records: BatchRecord[] = [];
  let left = pages;
  const windowPages = cfg.window === 'amd' ? 512 : cfg.window / 4096;
  const retryRate = cfg.protocol === 'seq' ? 1 : cfg.protocol === 'valid-flag' ? 0.5 : 0.2;
  for (let i = 0; left > 0; i++) {
    const unique = Math.min(cfg.batchSize, left);
    const dup = cfg.coalesce ? Math.floor(unique / 4) : 0;
    const rangeFaults = cfg.coalesce ? Math.ceil(unique / windowPages) : unique + dup;
    records.push(rec(i, i * 2, {
      fetched: unique + dup, duplicates: dup, unique, groups: rangeFaults, rangeFaults,
      retries: Math.round((cfg.stormRate / 1000) * retryRate * rangeFaults),
      fallbacks: cfg.protocol === 'lock-fallback' && cfg.stormRate >= 1000 ? 1 : 0,
      mirrorWrites: rangeFaults, serviceMs: 1 + rangeFaults * 0.1,
    }));
    left -= unique;
  }
  const ebusy = cfg.protocol === 'valid-flag' && cfg.stormRate >= 1000;
  if (ebusy) records[records.length - 1].ebusy = 1;
  return result(cfg, records, ebusy ? { ok: false, error: 'EBUSY: range never became valid' } : {});
}

export interface FakeRunner extends Runner {
  calls: RunConfig[];
  opened: number;
  closed: number;
}

export function fakeRunner(opts: { throwOn?: (c: RunConfig) => boolean; failOpen?: boolean; progress?: boolean } = {}): FakeRunner {
  const r: FakeRunner = {
    calls: [], opened: 0, closed: 0,
    async openExperiment() {
      r.opened++;
      if (opts.failOpen) throw new Error('no adapter');
      return { adapter: 'fake adapter', close: async () => { r.closed++; } };
    },
    async runOne(cfg, ctx) {
      r.calls.push(cfg);
      if (opts.progress) ctx.onProgress?.(`round 1 of ${cfg.workload}`);
      if (opts.throwOn?.(cfg)) throw new TypeError('boom');
      return fakeResult(cfg);
    },
  };
  return r;
}
