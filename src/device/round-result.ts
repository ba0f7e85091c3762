/**
 * What a mirror-engine round reports (RoundResult, with the workgroup TLB's statistics) and
 * the per-device record of device loss every engine on a device reads.
 */
import type { FaultRecord } from './fault-queue.js';

export interface RoundResult {
  faults: FaultRecord[];
  overflow: boolean;
  /** Invocations that completed in this round. */
  completed: number;
  /** Invocations left not done by this round (each will be replayed). */
  missed: number;
  /** Invocations done so far, out of `total`. */
  done: number;
  total: number;
  finished: boolean;
  /** A counting command's (CommandDesc.counters) remote accesses this round, per region (MirrorCommand.accessCounts). */
  counters?: Uint32Array;
  /** The workgroup TLBs of this round (the engine's own kernels; zero for a kernel of createKernels). */
  tlb: TlbStats;
  /**
   * Workgroups of a gated command (an application kernel's) the stall gate did not run this
   * round: none of the pages they missed became reachable, so they would only have missed
   * again; their faults were re-issued as a replay finds them (mirror-gate.wgsl). 0 otherwise.
   */
  stalled: number;
}

/**
 * A round's translation statistics, counted on the GPU (like UVM's per-GPU TLB/fault
 * statistics): `lookups` = threads that needed a translation (one per 32 words not done),
 * `walks` = page walks done for them (one per page per workgroup). Every lookup that did not
 * walk was served from workgroup memory.
 */
export interface TlbStats {
  lookups: number;
  walks: number;
  /** (lookups - walks) / lookups; 0 when nothing was looked up. */
  hitRate: number;
}

export function tlbStats(lookups: number, walks: number): TlbStats {
  return { lookups, walks, hitRate: lookups === 0 ? 0 : (lookups - walks) / lookups };
}

/**
 * device.lost, watched once per device: what every engine on the device reads. A callback
 * per engine would live as long as the device's lost promise — for ever on a healthy
 * device — and keep every engine ever created on it reachable, buffers' wrappers and all.
 */
const lostRecords = new WeakMap<GPUDevice, { info: GPUDeviceLostInfo | null }>();

export function lostRecord(device: GPUDevice): { info: GPUDeviceLostInfo | null } {
  let rec = lostRecords.get(device);
  if (rec === undefined) {
    const r: { info: GPUDeviceLostInfo | null } = { info: null };
    void device.lost.then((info) => { r.info = info; });
    lostRecords.set(device, r);
    rec = r;
  }
  return rec;
}
