/**
 * The experiment's data: what one run is configured with and what it measured. The runner
 * (runner.ts) produces these, the report (report.ts) renders them to a table, JSON, CSV and
 * a self-contained HTML page with plots.
 */
import type { WindowPolicy } from '../driver/coalesce.js';
import type { BatchRecord, Totals } from '../driver/records.js';
import type { RetryProtocol } from '../driver/retry.js';
import type { ReplayPolicy } from '../driver/servicer.js';
import type { WorkloadName } from '../workloads/names.js';
import type { SchemeResult } from './mm-tour.js';

export interface RunConfig {
  /** Which preset produced it, e.g. 'coalescing', 'windows', 'batches', 'protocols'. */
  preset: string;
  workload: WorkloadName;
  /** Size of the mirrored buffer, in MiB. */
  sizeMiB: number;
  /** Fraction of accesses that write, 0..1. */
  writeFraction: number;
  window: WindowPolicy;
  batchSize: number;
  replay: ReplayPolicy;
  protocol: RetryProtocol;
  /** false: the per-fault baseline. */
  coalesce: boolean;
  /** CPU-side invalidations per second while the workload runs (0 = none). */
  stormRate: number;
  seed: number;
}

export interface StormStats {
  ops: number;
  byKind: Record<string, number>;
}

export interface RunResult {
  config: RunConfig;
  ok: boolean;
  /** HmmError code and message when the run failed (e.g. EBUSY under valid-flag). */
  error: string | null;
  wallMs: number;
  rounds: number;
  faultRounds: number;
  totals: Totals;
  records: BatchRecord[];
  storm: StormStats;
  /** Words the workload checked and how many were wrong (must be 0). */
  verify: { checked: number; mismatches: number };
  /** Unique faults serviced per second of service time. */
  faultsPerSec: number;
  /**
   * Mirror entries that no longer reach the page the CPU maps, counted by the driver's
   * audit at the end of the run (after the storm stopped); absent when no mirror was open.
   */
  stalePfns?: number;
  /** Bytes migrated each way (migration policies); absent until the runner migrates. */
  bytesMoved?: { toDevice: number; toSystem: number };
  /**
   * Set by the experiment driver (main.ts) when this run's config equals an earlier run's
   * except for the preset: the result is that run's (index into ExperimentReport.runs), not
   * a second measurement.
   */
  reusedFrom?: number;
}

export interface ExperimentReport {
  generatedAt: string;
  adapter: string;
  node: string;
  presets: string[];
  runs: RunResult[];
  /** The 'mm' preset (mm-tour.ts, CPU only): seq vs valid-flag under CPU invalidations. */
  mm?: SchemeResult[];
  /** The mm preset's parameters, when it ran. */
  mmOptions?: { pages: number; rounds: number; seed: number };
}
