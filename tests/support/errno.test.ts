/** The errno matchers themselves: what passes, what fails and what a failure says. */
import { describe, expect, it } from 'vitest';
import { err } from '../../src/errors.js';

describe('toBeErrno / toThrowErrno', () => {
  it('pass on the right code (or one of several), fail on another, a plain error, or no error', async () => {
    await expect(Promise.reject(err('EINVAL', 'x'))).rejects.toBeErrno('EINVAL');
    await expect(Promise.reject(err('EIO', 'x'))).rejects.toBeErrno(['ENODEV', 'EIO']);
    await expect(Promise.reject(err('EIO', 'x'))).rejects.not.toBeErrno('EINVAL');
    expect(err('EPERM', 'x')).toBeErrno('EPERM');
    expect(() => { throw err('EFAULT', 'y'); }).toThrowErrno('EFAULT');
    await expect(expect(Promise.reject(err('EFAULT', 'x')), 'my label').rejects.toBeErrno('EINVAL'))
      .rejects.toThrow(/my label: expected the rejection to be HmmError EINVAL, got HmmError EFAULT/);
    await expect(expect(Promise.resolve(1)).rejects.toBeErrno('EINVAL')).rejects.toThrow();
    expect(() => expect(new Error('plain')).toBeErrno('EINVAL')).toThrow(/got Error: plain/);
    expect(() => expect(() => 1).toThrowErrno('EFAULT')).toThrow(/it returned/);
    expect(() => expect(() => Promise.reject(err('EFAULT', 'z'))).toThrowErrno('EFAULT')).toThrow(/returned a promise/);
  });
});
