/**
 * The experiment's data: what one run is configured with and what it measured. The runner
 * (runner.ts) produces these, the report (report.ts) renders them to a table, JSON, CSV and
 * a self-contained HTML page with plots.
 */
import type { BatchRecord, Totals } from '../driver/records.js';
import type { SchemeResult } from './mm-tour.js';
import type { RunConfig } from './schema.js';
import type { SweepIdentity } from './sweep-id.js';

export type { RunConfig, TraceWorkload } from './schema.js';

/** What a policy run measured: the virtual clock's figures and the real work beside them. */
export interface PolicyRunResult {
  policy: string;
  /** The UVM parameter set and the cost model the simulated figures come from. */
  uvm?: string;
  cost?: string;
  devicePages: number;
  /** Simulated (virtual-clock) time, ns: identical for a seed. */
  simTimeNs: number;
  bytesToDevice: number;
  bytesToHost: number;
  /** UVM_Smart's far faults: distinct pages not on the device in each serviced batch (PolicyEngine.stats). */
  farFaults: number;
  /** The fault buffer records those batches held ((uTLB, page) pairs, duplicates included). */
  faultRecords: number;
  faultGroups: number;
  cpuFaults: number;
  thrashingEvents: number;
  throttles: number;
  pins: number;
  evictions: number;
  evictedPages: number;
  prefetchedPages: number;
  prefetchHits: number;
  remotePages: number;
  /** Pages migrate_vma really moved in / home by eviction; planned moves it skipped. */
  migratedIn: number;
  evictedOut: number;
  skipped: number;
  /** Device pages freed while a mirror still mapped them (a stale entry): must be 0. */
  mappedFrees: number;
  /** Wall ms of fault servicing: the servicer's batches plus the policy's command-end work. */
  faultServiceMs: number;
  /** Of it: the policy layer (engine, residency, prefetch, eviction order), the moves, the rest. */
  policyMs: number;
  moveMs: number;
  serviceMs: number;
  /** Simulated faults serviced per wall second of the real work (farFaults / wallMs). */
  simFaultsPerWallSec: number;
  policyStats: Record<string, number>;
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
  /** With a policy: its simulated figures and real moves. */
  policy?: PolicyRunResult;
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
  /**
   * Rounds whose fault ring overflowed (faults the GPU could not record: the run's fault
   * counts then depend on GPU thread timing, not only on the seed). 0: every fault recorded.
   */
  ringOverflows?: number;
  /** Position of this run's config in the whole sweep (set when the sweep was sharded). */
  sweepIndex?: number;
  /** The live lab's figures (src/lab/session.ts): its cost-model clock and the invalidations it saw. */
  lab?: LabRunFigures;
  /** config.processes > 1: each process's own figures (records name theirs: BatchRecord.proc). */
  processes?: ProcessResult[];
}

/** One process of a several-process run: its batches and faults, its check, its policy's moves. */
export interface ProcessResult {
  batches: number;
  fetched: number;
  unique: number;
  verify: { checked: number; mismatches: number };
  /** With a policy: its clock and what migrate_vma really did for this process's mirror. */
  simTimeNs?: number;
  migratedIn?: number;
  skipped?: number;
  remotePages?: number;
}

export interface LabRunFigures {
  /** Simulated time at the end, ns, on the cost model named (src/lab/sim-clock.ts). */
  simNs: number;
  cost: string;
  /** mmu notifier invalidations over the buffer. */
  invalidations: number;
  /** Simulated time at each batch record's end, ns (records[i]). */
  batchSimNs?: number[];
}

export interface ExperimentReport {
  generatedAt: string;
  adapter: string;
  node: string;
  presets: string[];
  runs: RunResult[];
  /** The 'mm' preset (mm-tour.ts, CPU only): seq vs valid-flag under CPU invalidations. */
  mm?: SchemeResult[];
  /** --shard K/N: which part of the sweep this report holds (of `total` configs). */
  shard?: { k: number; n: number; total: number };
  /** The mm preset's parameters, when it ran. */
  mmOptions?: { pages: number; rounds: number; seed: number };
  /** The sweep this report is (a part of): plan hash, project version, command (merge checks them). */
  sweep?: SweepIdentity;
}
