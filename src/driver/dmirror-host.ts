/**
 * What a mirror (Dmirror) needs of its device, and the counters it keeps: the types between
 * src/driver/dmirror.ts and the device that opens it.
 */
import type { GpuContext } from '../device/gpu.js';
import type { PagePool } from '../device/page-pool.js';
import type { Machine } from '../mm/machine.js';
import type { Devmem } from './devmem.js';

/** Counters of one mirror, for tests and the experiment. */
export interface DmirrorStats {
  commands: number;
  rounds: number;
  faultRecords: number;
  invalidations: number;
  skippedOwnMigrations: number;
  /** GPU commands a mirror command was split into (one per chunk). */
  chunks: number;
  /** Times a full aperture made the driver zap the entries outside the chunks in flight (MirrorPt's aperture reclaim). */
  apertureReclaims: number;
}

/**
 * What a mirror needs of its device (DmirrorDevice implements it): the GPU, the device's
 * memory, and the set of open mirrors it leaves at close. The device is also the
 * dev_private_owner of hmm_range_fault and the owner of its MIGRATE invalidations.
 */
export interface DmirrorHost {
  readonly index: number;
  readonly machine: Machine;
  readonly gpu: GpuContext;
  readonly vram: PagePool;
  readonly devmem: Devmem;
  readonly options: { readonly aperturePages: number; readonly faultRecords?: number; readonly ownMigrationSetsSeq?: boolean; readonly ownReadOnlyWriteMigrates?: boolean; readonly skipStalled?: boolean };
  /** The mirrors open on the device (each Dmirror leaves it at close). */
  readonly mirrors: Set<object>;
}
