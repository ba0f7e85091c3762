/**
 * --cost-opt KEY=VALUE (issue 19): the cost model's knobs over its preset (--cost NAME), an
 * axis of the sweep through the run schema (a comma list sweeps, a repeat adds to every run's),
 * validated before anything runs (an unknown knob or a bad value: exit 2 naming it, nothing
 * written), and shown in the results (the policy table's cost model, runs.csv's cost_opt).
 * The GPU run at the end: Node only.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { BASE_CONFIG, CliError, describeConfig, expandPresets, parseArgs, USAGE } from '../../src/experiment/cli.js';
import { EXIT_USAGE } from '../../src/experiment/exit-codes.js';
import { main } from '../../src/experiment/main.js';
import { RUN_KEY } from '../../src/experiment/report/columns.js';
import { POLICY_COLUMNS } from '../../src/experiment/report/policy.js';
import { runOne } from '../../src/experiment/runner.js';
import { costKnobPairs } from '../../src/experiment/schema.js';
import type { RunConfig } from '../../src/experiment/types.js';
import { COST_KNOBS, costWithKnobs, FLAT, UVM_SMART } from '../../src/policy/cost.js';
import { fakeRunner } from './fixtures.js';

describe('--cost-opt', () => {
  it('is an axis: a comma list sweeps, a repeat adds to every run; --help lists the knobs', () => {
    const o = parseArgs(['--cost-opt', 'faultGroupNs=0,faultGroupNs=90000', '--cost-opt', 'launchNs=0']);
    expect(o.overrides.costOpt).toEqual(['faultGroupNs=0;launchNs=0', 'faultGroupNs=90000;launchNs=0']);
    const runs = expandPresets(parseArgs(['--preset', 'policies', '--workload', 'stream', '--size', '4', '--policy', 'first-touch', '--oversub', '1', '--cost', 'flat', '--cost-opt', 'faultNs=5,faultNs=6']));
    expect(runs.map((r) => [r.cost, r.costOpt])).toEqual([['flat', 'faultNs=5'], ['flat', 'faultNs=6']]);
    expect(describeConfig(runs[0])).toContain('costopt=faultNs=5');
    expect(RUN_KEY.map((c) => c.csv)).toContain('cost_opt');
    expect(USAGE).toContain('--cost-opt');
    for (const k of COST_KNOBS) expect(USAGE).toContain(k);
  });

  it('the knobs over the preset: its figures, a name that says so, a later pair winning', () => {
    const c = costWithKnobs(FLAT, costKnobPairs('faultGroupNs=20000;bandwidthBytesPerSec=32000000000;faultGroupNs=1000'));
    expect(c.faultGroupNs).toBe(1000);
    expect(c.bandwidthBytesPerSec).toBe(32_000_000_000);
    expect(c.transfer).toBe('flat');
    expect(c.launchNs).toBe(FLAT.launchNs);
    expect(c.name).toBe('flat+faultGroupNs=20000+bandwidthBytesPerSec=32000000000+faultGroupNs=1000');
    expect(costWithKnobs(UVM_SMART, costKnobPairs('transfer=flat')).transfer).toBe('flat');
    expect(costWithKnobs(UVM_SMART, [])).toBe(UVM_SMART);
  });

  it('refuses an unknown knob or a bad value, naming it', () => {
    const refused: [string, RegExp][] = [
      ['latencyNs=5', /--cost-opt: 'latencyNs=5'.*'latencyNs' is not a cost knob/],
      ['faultGroupNs=-1', /faultGroupNs must be a non-negative integer/],
      ['faultGroupNs=1.5', /faultGroupNs must be a non-negative integer/],
      ['faultGroupNs=x', /cost faultGroupNs 'x' is not a number/],
      ['bandwidthBytesPerSec=0', /bandwidthBytesPerSec must be a positive integer/],
      ['transfer=fast', /transfer 'fast' is not flat or curve/],
      ['curveA=0', /curveA and curveB must be positive/],
      ['faultNs', /is not cost knobs KEY=VALUE/],
      ['faultNs=', /is not cost knobs KEY=VALUE/],
    ];
    for (const [raw, re] of refused) {
      expect(() => parseArgs(['--cost-opt', raw]), raw).toThrow(CliError);
      expect(() => parseArgs(['--cost-opt', raw]), raw).toThrow(re);
    }
  });

  it('a bad knob exits 2 with the message and writes nothing', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'cost-opt-')), 'out');
    const errors: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((m: unknown) => { errors.push(String(m)); });
    const runner = fakeRunner();
    try {
      expect(await main(['--preset', 'policies', '--policy', 'first-touch', '--cost-opt', 'bogus=1', '--out', dir], runner)).toBe(EXIT_USAGE);
    } finally {
      spy.mockRestore();
    }
    expect(errors.join('\n')).toContain("'bogus' is not a cost knob");
    expect(existsSync(dir)).toBe(false);
    expect(runner.calls).toEqual([]);
  });

  it('on the GPU: the run is clocked with the knobs, and its results name them', async () => {
    const config = (c: Partial<RunConfig>): RunConfig => ({ preset: 'test', ...BASE_CONFIG, workload: 'stream', sizeMiB: 0.5, policy: 'first-touch', oversub: 1, ...c });
    const base = await runOne(config({}), {});
    const slow = await runOne(config({ costOpt: 'faultGroupNs=1000000000' }), {}); // 1 s a fault group
    for (const r of [base, slow]) {
      expect(r.error).toBeNull();
      expect(r.verify.mismatches).toBe(0);
    }
    expect(base.policy!.cost).toBe('uvm-smart');
    expect(slow.policy!.cost).toBe('uvm-smart+faultGroupNs=1000000000');
    // The clock charged the knob's figure for each group serviced (the base run, 45 µs a group, took less than a second).
    expect(slow.policy!.faultGroups).toBeGreaterThan(0);
    expect(base.policy!.simTimeNs).toBeLessThan(1e9);
    expect(slow.policy!.simTimeNs).toBeGreaterThanOrEqual(slow.policy!.faultGroups * 1e9);
    const col = POLICY_COLUMNS.find((c) => c.csv === 'cost_model')!;
    expect(col.head).toBe('cost model');
  });
});
