/**
 * The mirror devices' public interface: lib/test_hmm.c's ioctls as methods. Declared apart
 * from the driver so the mm layer can name the type of Machine.devices without depending
 * on the driver (the driver implements it; src/system.ts puts devices on a machine).
 */
import type { Process } from './mm/process.js';

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

export interface Mirror {
  /** HMM_DMIRROR_READ. */
  read(addr: number, npages: number): Promise<MirrorResult & { data: Uint8Array }>;
  /** HMM_DMIRROR_WRITE. */
  write(addr: number, data: Uint8Array): Promise<MirrorResult>;
  /** HMM_DMIRROR_MIGRATE_TO_DEV. */
  migrateToDevice(addr: number, npages: number): Promise<MirrorResult & { data: Uint8Array }>;
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
  /** mmap of the device file itself (VM_MIXEDMAP). */
  mmap(length: number, prot: number, flags: number): Promise<number>;
  close(): Promise<void>;
}

export interface MirrorDevice {
  readonly index: number;
  open(proc: Process): Promise<Mirror>;
}
