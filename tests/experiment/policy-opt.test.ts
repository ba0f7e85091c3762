/**
 * --policy-opt KEY=VALUE (issue 19): options for a policy module's factory, an axis of the
 * sweep (a comma list sweeps them, a repeat adds to every run's), reaching the loader.
 */
import { describe, expect, it } from 'vitest';
import { expandPresets, parseArgs } from '../../src/experiment/cli.js';
import { policyOptions } from '../../src/experiment/schema.js';
import { loadPolicy } from '../../src/policy/loader.js';

describe('--policy-opt', () => {
  it('is an axis: a comma list sweeps, a repeat adds to every run', () => {
    const o = parseArgs(['--policy-opt', 'lapse=500,lapse=1000', '--policy-opt', 'tag=a']);
    expect(o.overrides.policyOpt).toEqual(['lapse=500;tag=a', 'lapse=1000;tag=a']);
    const runs = expandPresets(parseArgs(['--preset', 'policies', '--workload', 'stream', '--size', '4', '--policy', 'first-touch', '--oversub', '1', '--policy-opt', 'k=1,k=2']));
    expect(runs.map((r) => r.policyOpt)).toEqual(['k=1', 'k=2']);
  });

  it('refuses what is not KEY=VALUE', () => {
    expect(() => parseArgs(['--policy-opt', 'lapse'])).toThrow(/--policy-opt: 'lapse' is not options KEY=VALUE/);
    expect(() => parseArgs(['--policy-opt', '=3'])).toThrow(/is not options KEY=VALUE/);
  });

  it('reaches a factory as typed options', async () => {
    expect(policyOptions('a=1;b=x;c=true;d=false;e=')).toEqual({ a: 1, b: 'x', c: true, d: false, e: '' });
    const p = await loadPolicy('./tests/policy/fixtures/factory-policy.ts', policyOptions('tag=hot'));
    expect(p.name).toBe('factory-hot');
  });
});
