/**
 * The mirror devices' user API (lib/test_hmm_uapi.h): the ioctls as methods of an open
 * file, and HMM_DMIRROR_PROT_*, SNAPSHOT's byte per page. The driver implements it
 * (Dmirror, DmirrorDevice); src/system.ts puts devices on a machine.
 */
import type { Process } from '../mm/process.js';

/** HMM_DMIRROR_PROT_* (lib/test_hmm_uapi.h): SNAPSHOT's byte per page. */
export const HMM_DMIRROR_PROT_ERROR = 0xff;
export const HMM_DMIRROR_PROT_NONE = 0x00;
export const HMM_DMIRROR_PROT_READ = 0x01;
export const HMM_DMIRROR_PROT_WRITE = 0x02;
export const HMM_DMIRROR_PROT_PMD = 0x04;
export const HMM_DMIRROR_PROT_PUD = 0x08;
export const HMM_DMIRROR_PROT_ZERO = 0x10;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30;
export const HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL = 0x40;
export const HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE = 0x50;

/** HMM_DMIRROR_FLAGS' bit: the mirror's next device or system allocation of a huge page fails once. */
export const HMM_DMIRROR_FLAG_FAIL_ALLOC = 1 << 0;
/** Every HMM_DMIRROR_FLAGS bit the driver knows. */
export const HMM_DMIRROR_FLAGS_MASK = HMM_DMIRROR_FLAG_FAIL_ALLOC;

/** struct hmm_dmirror_cmd's results. */
export interface MirrorResult {
  /** Pages the command completed. */
  cpages: number;
  /**
   * The command's fault rounds, counted as lib/test_hmm.c counts dmirror_fault calls: 1 for
   * a fresh buffer, whatever the number of GPU commands (chunks) the driver split it into;
   * one more for each round that faulted again (pages invalidated meanwhile).
   */
  faults: number;
}

/** An open /dev/hmm_dmirrorN. */
export interface Mirror {
  /**
   * HMM_DMIRROR_READ. `into`: the caller's buffer (the command's ptr, as for migrateToDevice):
   * `data` is then a view of its first npages * 4096 bytes (EFAULT if shorter, nothing read).
   * A read of several GPU chunks fills it chunk by chunk, so an error in a later chunk leaves
   * the earlier ones there (dmirror_read copies out only at the end: a departure).
   */
  read(addr: number, npages: number, into?: Uint8Array): Promise<MirrorResult & { data: Uint8Array }>;
  /** HMM_DMIRROR_WRITE. */
  write(addr: number, data: Uint8Array): Promise<MirrorResult>;
  /**
   * HMM_DMIRROR_MIGRATE_TO_DEV. `into`: the caller's buffer for the read-back (struct
   * hmm_dmirror_cmd's ptr, which dmirror copy_to_user()s into): `data` is then a view of its
   * first npages * 4096 bytes (EFAULT if it is shorter, nothing migrated); without it, a new
   * array.
   */
  migrateToDevice(addr: number, npages: number, into?: Uint8Array): Promise<MirrorResult & { data: Uint8Array }>;
  /** HMM_DMIRROR_MIGRATE_TO_SYS. */
  migrateToSystem(addr: number, npages: number): Promise<MirrorResult>;
  /** HMM_DMIRROR_SNAPSHOT: one HMM_DMIRROR_PROT_* byte per page. */
  snapshot(addr: number, npages: number): Promise<Uint8Array>;
  /** HMM_DMIRROR_EXCLUSIVE. */
  exclusive(addr: number, npages: number): Promise<MirrorResult & { data: Uint8Array }>;
  /** HMM_DMIRROR_CHECK_EXCLUSIVE: EPERM while any page is still exclusive. */
  checkExclusive(addr: number, npages: number): Promise<void>;
  /** HMM_DMIRROR_RELEASE: evict every device page to system memory. */
  release(): Promise<void>;
  /**
   * HMM_DMIRROR_FLAGS: set the mirror's test flags (HMM_DMIRROR_FLAG_*; EINVAL for unknown
   * bits). FAIL_ALLOC is consumed by the next huge allocation a migration of this mirror
   * makes (a 2 MiB device folio, or the 2 MiB frame a device THP comes home into).
   */
  setFlags(flags: number): Promise<void>;
  /** mmap of the device file itself (VM_MIXEDMAP). */
  mmap(length: number, prot: number, flags: number): Promise<number>;
  close(): Promise<void>;
}

/** /dev/hmm_dmirrorN. */
export interface MirrorDevice {
  readonly index: number;
  open(proc: Process): Promise<Mirror>;
}
