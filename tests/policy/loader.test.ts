/** Loading policies: built-in names and user modules; a bad module is refused naming what is missing. */
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { HmmError } from '../../src/errors.js';
import {
  BUILTIN_POLICIES, TRACE_BASE, builtinPolicy, loadPolicy, simulate, validatePolicy,
} from '../../src/policy/index.js';

const here = dirname(fileURLToPath(import.meta.url));

async function refusal(p: Promise<unknown>): Promise<HmmError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(HmmError);
    return e as HmmError;
  }
  throw new Error('not refused');
}

describe('built-in policies', () => {
  it('are all loadable, with prefetch and eviction modifiers', async () => {
    for (const n of Object.keys(BUILTIN_POLICIES)) expect((await loadPolicy(n)).name).toBe(n);
    const p = await loadPolicy('thrashing+tree+lfu');
    expect(p.name).toBe('thrashing+tree+lfu');
    expect(p.prefetch?.threshold).toBe(51);
    expect(p.eviction?.name).toBe('lfu');
  });
  it('refuse unknown names and modifiers with EINVAL', async () => {
    expect((await refusal(loadPolicy('nope'))).message).toMatch(/EINVAL: policy "nope": not a built-in/);
    expect(() => builtinPolicy('first-touch+tree+tree')).toThrow(/unknown modifier "tree"/);
    expect(() => builtinPolicy('first-touch+lru+lfu')).toThrow(/unknown modifier "lfu"/);
    expect((await refusal(loadPolicy(''))).code).toBe('EINVAL');
  });
});

describe('user policy modules', () => {
  it('loads a default-exported policy and runs it', async () => {
    const p = await loadPolicy('./fixtures/good-policy.ts', {}, here);
    expect(p.name).toBe('writes-migrate');
    const r = simulate([
      { time: 0, addr: TRACE_BASE, access: 0, proc: 0 },
      { time: 0, addr: TRACE_BASE + 4096, access: 1, proc: 0 },
    ], { policy: p });
    expect(r.migrationsToDevice).toBe(1);
    expect(r.remoteAccesses).toBe(1);
  });
  it('calls a factory export with the options', async () => {
    expect((await loadPolicy('./fixtures/factory-policy.ts', { tag: 'x' }, here)).name).toBe('factory-x');
  });
  it('names the missing hook', async () => {
    const e = await refusal(loadPolicy('./fixtures/missing-decide.ts', {}, here));
    expect(e.code).toBe('EINVAL');
    expect(e.message).toMatch(/missing-decide\.ts: missing hook decide\(group, view, out\)/);
  });
  it('names a malformed hook', async () => {
    const e = await refusal(loadPolicy('./fixtures/bad-hook.ts', {}, here));
    expect(e.message).toMatch(/EINVAL: .*bad-hook\.ts: hook eviction\.pickVictim is not a function/);
  });
  it('names a missing export', async () => {
    const e = await refusal(loadPolicy('./fixtures/no-export.ts', {}, here));
    expect(e.message).toMatch(/missing export \(default, policy or createPolicy\)/);
  });
  it('ENOENT for a module that is not there', async () => {
    expect((await refusal(loadPolicy('./fixtures/absent.ts', {}, here))).code).toBe('ENOENT');
  });
  it('validatePolicy checks name, threshold and eviction name', () => {
    expect(() => validatePolicy({ decide() {} }, 'm')).toThrow(/m: missing name/);
    expect(() => validatePolicy({ name: 'a', decide() {}, prefetch: { threshold: 120 } }, 'm')).toThrow(/percentage/);
    expect(() => validatePolicy({ name: 'a', decide() {}, eviction: {} }, 'm')).toThrow(/missing eviction\.name/);
    expect(() => validatePolicy(null, 'm')).toThrow(/not a policy object/);
  });
});
