/**
 * Errors of the kernel's kind. Every rejected call carries an errno name so that callers
 * (and tests) can match what the kernel's syscalls and ioctls return.
 */
export type Errno =
  | 'EINVAL' | 'EFAULT' | 'EPERM' | 'ENOENT' | 'EBUSY' | 'ENOMEM' | 'EAGAIN'
  | 'ESRCH' | 'EEXIST' | 'EACCES' | 'ENODEV' | 'EIO' | 'ETIMEDOUT' | 'EOVERFLOW' | 'EBADF'
  // A run stopped from outside (the lab's Stop), as a signal interrupts a syscall.
  | 'EINTR';

export class HmmError extends Error {
  readonly code: Errno;
  constructor(code: Errno, message: string) {
    super(`${code}: ${message}`);
    this.name = 'HmmError';
    this.code = code;
  }
}

/** A CPU access the kernel would answer with SIGSEGV (si_code SEGV_MAPERR or SEGV_ACCERR). */
export class SegmentationFault extends Error {
  readonly addr: number;
  readonly siCode: 'SEGV_MAPERR' | 'SEGV_ACCERR';
  constructor(addr: number, siCode: 'SEGV_MAPERR' | 'SEGV_ACCERR') {
    super(`SIGSEGV (${siCode}) at 0x${addr.toString(16)}`);
    this.name = 'SegmentationFault';
    this.addr = addr;
    this.siCode = siCode;
  }
}

export function err(code: Errno, message: string): HmmError {
  return new HmmError(code, message);
}

/** A CPU access past the end of a file mapping's backing file (SIGBUS, BUS_ADRERR). */
export class BusError extends Error {
  readonly addr: number;
  constructor(addr: number) {
    super(`SIGBUS (BUS_ADRERR) at 0x${addr.toString(16)}`);
    this.name = 'BusError';
    this.addr = addr;
  }
}
