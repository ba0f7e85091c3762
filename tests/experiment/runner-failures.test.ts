/**
 * The runner's ways out (GPU, Node only): a policy that misbehaves fails its run with an
 * error naming the policy and the hook, the process's own CPU reads still succeed, and every
 * path out of a run destroys its machine.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BASE_CONFIG } from '../../src/experiment/cli.js';
import { runOne } from '../../src/experiment/runner.js';
import type { RunConfig } from '../../src/experiment/types.js';
import { DECIDE_MIGRATE, type MigrationPolicy } from '../../src/policy/types.js';
import { System } from '../../src/system.js';

function config(c: Partial<RunConfig>): RunConfig {
  return { preset: 'test', ...BASE_CONFIG, sizeMiB: 8 / 256, policy: 'user', ...c };
}

const migrateAll: MigrationPolicy['decide'] = (g, _v, out) => { out.action.fill(DECIDE_MIGRATE, 0, g.count); };

afterEach(() => { vi.restoreAllMocks(); });

describe('runner: failed runs and machines', () => {
  it('a policy whose stats() throws: the run fails naming the hook, and its machine is destroyed', async () => {
    const destroy = vi.spyOn(System.prototype, 'destroy');
    const policy: MigrationPolicy = { name: 'stats-boom', decide: migrateAll, stats() { throw new Error('no stats'); } };
    const r = await runOne(config({ workload: 'stream' }), { policy });
    expect(destroy).toHaveBeenCalledTimes(1);
    expect(r.ok).toBe(false);
    expect(r.error).toBe('EINVAL: policy "stats-boom": hook stats threw: no stats');
  });

  it('a decide that answers an invalid action fails the run (EINVAL, policy and hook named), machine destroyed', async () => {
    const destroy = vi.spyOn(System.prototype, 'destroy');
    const policy: MigrationPolicy = { name: 'bad-action', decide: (g, _v, out) => { out.action.fill(7, 0, g.count); } };
    const r = await runOne(config({ workload: 'stream' }), { policy });
    expect(destroy).toHaveBeenCalledTimes(1);
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/^EINVAL: policy "bad-action": hook decide returned action 7/);
  });

  it('a throwing cpuFault does not fail the CPU\'s own reads: the pages come home, the data is right, the run is failed', async () => {
    const policy: MigrationPolicy = { name: 'cpu-boom', decide: migrateAll, cpuFault() { throw new RangeError('cpu hook'); } };
    const r = await runOne(config({ workload: 'pingpong', phases: 2, writeFraction: 0.5 }), { policy });
    // The CPU's phase faulted on all 8 device pages and every one came home (no EFAULT for the
    // process); the run then ended at the next batch's decide, failed with the hook's error.
    expect(r.policy?.cpuFaults).toBe(8);
    expect(r.policy?.bytesToHost).toBe(8 * 4096);
    expect(r.verify.mismatches).toBe(0);
    expect(r.ok).toBe(false);
    expect(r.error).toBe('EINVAL: policy "cpu-boom": hook cpuFault threw: RangeError: cpu hook');
  });
});
