/**
 * npm run soak's command line (issue 19): --help prints the settings and starts nothing; a
 * word it does not know, or a bad setting, is exit 2 before the search starts.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { soakSettings } from '../../scripts/soak-args.js';

describe('npm run soak', () => {
  it('-- --help prints the usage and exits 0 without starting the soak', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', './scripts/wgsl-hooks.mjs', 'scripts/soak.ts', '--help'],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SOAK_RUNS: '1' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: npm run soak/);
    expect(r.stdout).not.toMatch(/^soak: /m);
  }, 90_000);

  it('settings: defaults, a bad one refused, an argument refused', () => {
    const d = soakSettings([], { SOAK_SEED: '5' });
    expect(d).toEqual({ kind: 'run', runs: 25000, seed: 5, protocols: ['seq', 'lock-fallback', 'valid-flag'] });
    expect(soakSettings([], { SOAK_RUNS: 'many' })).toEqual({ kind: 'error', message: 'SOAK_RUNS=many is not a positive integer' });
    expect(soakSettings([], { SOAK_PROTOCOLS: 'seq,v5' }).kind).toBe('error');
    expect(soakSettings(['--runs', '3'], {})).toMatchObject({ kind: 'error', message: /unexpected argument '--runs'/ });
    expect(soakSettings(['-h'], {})).toEqual({ kind: 'help' });
  });
});
