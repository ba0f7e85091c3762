/**
 * The runner's ways out (GPU, Node only): a policy that misbehaves fails its run with an
 * error naming the policy and the hook, the process's own CPU reads still succeed, and every
 * path out of a run destroys its machine.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BASE_CONFIG } from '../../src/experiment/cli.js';
import { runOne } from '../../src/experiment/runner.js';
import type { RunConfig } from '../../src/experiment/types.js';
import { DECIDE_MIGRATE, DECIDE_THROTTLE, type MigrationPolicy } from '../../src/policy/types.js';
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
    // The CPU's phase faulted on the device pages and every one came home (no EFAULT for the
    // process): its first fault brought the 64 KiB big page, all 8 (uvm_va_block_cpu_fault's
    // path); the run then ended at the next batch's decide, failed with the hook's error.
    expect(r.policy?.cpuFaults).toBe(1);
    expect(r.policy?.bytesToHost).toBe(8 * 4096);
    expect(r.verify.mismatches).toBe(0);
    expect(r.ok).toBe(false);
    expect(r.error).toBe('EINVAL: policy "cpu-boom": hook cpuFault threw: RangeError: cpu hook');
  });

  it('the watchdog ends a run whose policy throttles every fault, naming the policy and what it kept doing', async () => {
    const destroy = vi.spyOn(System.prototype, 'destroy');
    const policy: MigrationPolicy = {
      name: 'always-throttle',
      decide: (g, _v, out) => { out.action.fill(DECIDE_THROTTLE, 0, g.count); out.until.fill(g.now + 50e6, 0, g.count); },
    };
    const r = await runOne(config({ workload: 'stream' }), { policy, watchdog: { simNs: 1e9, wallMs: Infinity } });
    expect(destroy).toHaveBeenCalledTimes(1);
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/^ETIMEDOUT: watchdog: no progress for 1\.\d s of simulated time \(bound 1\.0 s\), \d+ rounds: policy "always-throttle" kept throttling \(\d+ faults throttled, nothing mapped\)/);
    expect(r.policy?.simTimeNs).toBeLessThan(2e9);
  });

  it('the wall bound ends a run that makes no progress whatever the simulated clock does', async () => {
    const policy: MigrationPolicy = {
      name: 'nap-0', decide: (g, _v, out) => { out.action.fill(DECIDE_THROTTLE, 0, g.count); out.until.fill(g.now, 0, g.count); },
    };
    const r = await runOne(config({ workload: 'stream' }), { policy, watchdog: { simNs: Infinity, wallMs: 0 } });
    expect(r.error).toMatch(/^ETIMEDOUT: watchdog: no progress for [\d.]+ s of wall time .*policy "nap-0" kept throttling/);
  });

  it('the rounds bound ends a run in which no invocation completes, counted in replay rounds (no clock involved)', async () => {
    const policy: MigrationPolicy = {
      name: 'nap-0', decide: (g, _v, out) => { out.action.fill(DECIDE_THROTTLE, 0, g.count); out.until.fill(g.now, 0, g.count); },
    };
    let rounds = 0;
    const r = await runOne(config({ workload: 'stream' }), {
      policy, watchdog: { simNs: Infinity, wallMs: Infinity, rounds: 12 }, observer: { beforeRound: async () => { rounds++; } },
    });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/^ETIMEDOUT: watchdog: no invocation completed for 13 rounds \(bound 12\): policy "nap-0" kept throttling \(\d+ faults throttled, nothing mapped\): a livelock/);
    // Ended at the 14th round's gate (the command's first round is the 1st): the observer's gate runs after the watchdog's.
    expect(rounds).toBe(13);
  });

  it('a run that progresses is never stopped by the watchdog, however tight', async () => {
    const r = await runOne(config({ workload: 'stream', policy: 'first-touch' }), { watchdog: { simNs: 0, wallMs: Infinity } });
    expect(r.error).toBeNull();
  });

  it('a run says whether its fault ring overflowed (rounds that lost faults), as the rounds reported it', async () => {
    let seen = 0;
    const r = await runOne(config({ workload: 'random', sizeMiB: 1, policy: undefined }), { observer: { onRound: (x) => { if (x.overflow) seen++; } } });
    expect(r.ok).toBe(true);
    expect(r.ringOverflows).toBe(seen);
  });
});
