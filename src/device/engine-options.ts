/** A MirrorEngine's options (MirrorEngine.create) and the counters it keeps (MirrorEngine.stats). */
import type { Scheduler } from '../sched/scheduler.js';
import type { PagePool } from './page-pool.js';

export interface MirrorEngineOptions {
  label?: string;
  /** System-memory aperture slots (default 4096 = 16 MiB). */
  apertureSlots?: number;
  /** Device-private memory slots (default 4096 = 16 MiB); ignored when `vram` is given. */
  deviceSlots?: number;
  /**
   * Device-private memory shared with other engines of the same device (one per mirrored
   * process, as dmirror has one page table per open file but one memory per device). The
   * engine does not destroy a shared pool.
   */
  vram?: PagePool;
  /** Fault buffer records (default 4096). */
  faultCapacity?: number;
  /**
   * The buffer holds faultSpill × faultCapacity records, so that a round that overflows the
   * ring keeps a deterministic faultCapacity of them, not the GPU threads' race (FaultQueue;
   * default FAULT_SPILL, 8; 1: the first written, as the hardware's ring keeps).
   */
  faultSpill?: number;
  /** uTLBs that filter faults independently (default 8). */
  faultSources?: number;
  /** Page-table options (initial size, cap, flush run merging). */
  initialTables?: number;
  maxTables?: number;
  mergeGap?: number;
  /** Run each round inside validation/OOM/internal error scopes (default true). */
  checkErrors?: boolean;
  /** Test hook: pretend maxComputeWorkgroupsPerDimension is this small (forces 2-D dispatch). */
  maxWorkgroupsPerDimension?: number;
  /**
   * The machine's scheduler (MemCore.sched): every wait for the GPU (mapAsync,
   * onSubmittedWorkDone, popErrorScope) is a Scheduler.wait, so under a SeededScheduler a
   * GPU completion lands at a seed-determined point. Default: plain awaits.
   */
  sched?: Scheduler;
  /**
   * Gate the commands of stall-gated kernels (the application workloads'): a workgroup whose
   * missed pages all still miss, with no entry revoked, is not re-run; its faults are
   * re-issued (mirror-gate.wgsl). The same outputs, and round by round the same records (but
   * which ones an overflowing ring keeps) and access counts (but the loads a re-run makes
   * before its miss); default true (false: every round re-runs every workgroup not done).
   */
  skipStalled?: boolean;
}

export interface MirrorEngineStats {
  rounds: number;
  faultRecords: number;
  overflows: number;
  dispatches: number;
  /** syncWalkers() calls, and those that returned at once (no kernel in flight). */
  walkerSyncs: number;
  walkerSyncsSkipped: number;
  /** TLB lookups and page walks over every round (RoundResult.tlb). */
  tlbLookups: number;
  tlbWalks: number;
  /** Rounds run quiet: a read over a fully mapped range, without report and record passes. */
  quietRounds: number;
  /** Workgroups the stall gate did not run (RoundResult.stalled), over every round. */
  stalledWorkgroups: number;
  /**
   * Rounds run cold: an engine kernel over a range the table maps nowhere (every word
   * misses), one thread per page instead of 32 (mirror_cold); report and record as usual.
   */
  coldRounds: number;
}
