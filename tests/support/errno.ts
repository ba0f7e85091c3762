/**
 * The one errno assertion of the tests: a call the kernel would answer with -EINVAL must
 * reject (or throw) an HmmError whose code is EINVAL.
 *
 *   await expect(fd.read(addr, n)).rejects.toBeErrno('EINVAL');
 *   await expect(p, 'read after close').rejects.toBeErrno('EBADF');   // the label prefixes a failure
 *   expect(() => pt.map(-1, 0)).toThrowErrno('EINVAL');
 *   expect(caught).toBeErrno(['ENODEV', 'EIO']);                      // any of these
 *
 * Registered for both projects by tests/support/setup.ts; browser-safe (no node: imports).
 */
import { expect } from 'vitest';
import { HmmError, type Errno } from '../../src/errors.js';

type Codes = Errno | readonly Errno[];

function want(codes: Codes): readonly Errno[] {
  return typeof codes === 'string' ? [codes] : codes;
}

function show(codes: Codes): string {
  const c = want(codes);
  return c.length === 1 ? c[0] : `one of ${c.join(', ')}`;
}

function describeError(e: unknown): string {
  if (e instanceof HmmError) return `HmmError ${e.code} (${e.message})`;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return `the value ${String(e)}`;
}

function verdict(received: unknown, codes: Codes, isNot: boolean, what: string): { pass: boolean; message: () => string } {
  const pass = received instanceof HmmError && want(codes).includes(received.code);
  return {
    pass,
    message: () => (isNot
      ? `expected ${what} not to be ${show(codes)}, got ${describeError(received)}`
      : `expected ${what} to be HmmError ${show(codes)}, got ${describeError(received)}`),
  };
}

expect.extend({
  toBeErrno(received: unknown, codes: Codes) {
    return verdict(received, codes, this.isNot, this.promise === 'rejects' ? 'the rejection' : 'the error');
  },
  toThrowErrno(received: unknown, codes: Codes) {
    if (typeof received !== 'function') throw new TypeError('toThrowErrno expects a function (use .rejects.toBeErrno for a promise)');
    let caught: unknown;
    let threw = false;
    try {
      const r: unknown = received();
      if (r instanceof Promise) {
        r.catch(() => {});
        throw new TypeError('toThrowErrno: the function returned a promise; use `await expect(p).rejects.toBeErrno(...)`');
      }
    } catch (e) {
      if (e instanceof TypeError && e.message.startsWith('toThrowErrno:')) throw e;
      caught = e;
      threw = true;
    }
    if (!threw) return { pass: false, message: () => `expected the call to throw HmmError ${show(codes)}, it returned` };
    return verdict(caught, codes, this.isNot, 'the thrown error');
  },
});

declare module 'vitest' {
  interface Matchers<T = any> {
    /** The value (or, after `.rejects`, the rejection) is an HmmError with this code (or one of these). */
    toBeErrno(codes: Codes): void;
    /** The function throws, synchronously, an HmmError with this code (or one of these). */
    toThrowErrno(codes: Codes): void;
  }
}
