/**
 * dmirror->flags (lib/test_hmm.c, HMM_DMIRROR_FLAGS): test switches of one open mirror.
 * HMM_DMIRROR_FLAG_FAIL_ALLOC makes the next huge allocation of a migration fail, once.
 */
import { err } from '../errors.js';
import { HMM_DMIRROR_FLAG_FAIL_ALLOC, HMM_DMIRROR_FLAGS_MASK } from './uapi.js';

export class DmirrorFlags {
  #flags = 0;

  /** HMM_DMIRROR_FLAGS: EINVAL (changing nothing) for an unknown bit. */
  set(flags: number): void {
    if (!Number.isSafeInteger(flags) || flags < 0 || (flags & ~HMM_DMIRROR_FLAGS_MASK) !== 0) {
      throw err('EINVAL', `HMM_DMIRROR_FLAGS: unknown flags 0x${Number(flags).toString(16)}`);
    }
    this.#flags = flags;
  }

  /** dmirror_devmem_alloc_page's check: true (and the flag cleared) when FAIL_ALLOC is set. */
  takeFailAlloc(): boolean {
    if ((this.#flags & HMM_DMIRROR_FLAG_FAIL_ALLOC) === 0) return false;
    this.#flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;
    return true;
  }
}
