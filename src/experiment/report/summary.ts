/**
 * One run reduced to the numbers every format shows. Derived numbers (one definition each):
 *   duplicate ratio     duplicates / fetched            (share of fetched faults dropped as duplicates)
 *   coalescing factor   unique / rangeFaults            (unique faults serviced per hmm_range_fault call;
 *                                                        null when the run made no call)
 *   service µs/fault    serviceMs * 1000 / unique       (service time per unique fault: lower is
 *                                                        faster; null when nothing was serviced)
 */
import type { RunConfig, RunResult } from '../types.js';

export type RunStatus = 'ok' | 'error' | 'mismatch';

export interface RunSummary {
  /** 1-based run number, as in the table. */
  run: number;
  /** The run's settings (the table's setting columns come from the run schema). */
  config: RunConfig;
  fetched: number;
  duplicates: number;
  duplicateRatio: number;
  unique: number;
  rangeFaults: number;
  /** unique / rangeFaults; null when no hmm_range_fault call was made. */
  coalescingFactor: number | null;
  retries: number;
  ebusy: number;
  fallbacks: number;
  mirrorWrites: number;
  serviceMs: number;
  faultsPerSec: number;
  /** Service time per unique fault, µs; null when no fault was serviced. */
  serviceUsPerFault: number | null;
  wallMs: number;
  /** Stale mirror entries at the end of the run (the driver's audit); null: not measured. */
  stalePfns: number | null;
  stormOps: number;
  /** Bytes migrated (both ways); null until the runner migrates. */
  bytesMoved: number | null;
  status: RunStatus;
  error: string | null;
}

export function summarizeRun(r: RunResult, index: number): RunSummary {
  const t = r.totals;
  const c = r.config;
  const mismatch = r.verify.mismatches > 0;
  return {
    run: index + 1,
    config: c,
    fetched: t.fetched,
    duplicates: t.duplicates,
    duplicateRatio: t.fetched > 0 ? t.duplicates / t.fetched : 0,
    unique: t.unique,
    rangeFaults: t.rangeFaults,
    coalescingFactor: t.rangeFaults > 0 ? t.unique / t.rangeFaults : null,
    retries: t.retries,
    ebusy: t.ebusy,
    fallbacks: t.fallbacks,
    mirrorWrites: t.mirrorWrites,
    serviceMs: t.serviceMs,
    faultsPerSec: r.faultsPerSec,
    serviceUsPerFault: t.unique > 0 ? (t.serviceMs * 1000) / t.unique : null,
    wallMs: r.wallMs,
    stalePfns: r.stalePfns ?? null,
    stormOps: r.storm.ops,
    // Both ways; a run without a migration policy moves nothing it measures (—).
    bytesMoved: r.bytesMoved ? r.bytesMoved.toDevice + r.bytesMoved.toSystem : r.policy ? r.policy.bytesToDevice + r.policy.bytesToHost : null,
    status: !r.ok || r.error !== null ? 'error' : mismatch ? 'mismatch' : 'ok',
    error: r.error ?? (!r.ok ? 'failed' : mismatch ? `${r.verify.mismatches} of ${r.verify.checked} words wrong` : null),
  };
}

/** 'ok', 'error: <message>' or 'WRONG: <n> of <m> words wrong'. */
export function statusText(s: RunSummary): string {
  if (s.status === 'ok') return 'ok';
  if (s.status === 'mismatch') return `WRONG: ${s.error}`;
  return `error: ${s.error ?? 'failed'}`;
}
