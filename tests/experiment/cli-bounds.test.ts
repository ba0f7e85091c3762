/**
 * Options a run can be left with unattended (issue 19): what would never finish is refused
 * with a message naming the bound.
 */
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/experiment/cli.js';
import { MAX_STORM_RATE } from '../../src/workloads/storm.js';

describe('CLI bounds', () => {
  it('--storm is bounded as the lab bounds it (1e6/s never finished)', () => {
    expect(parseArgs(['--storm', String(MAX_STORM_RATE)]).overrides.stormRate).toEqual([MAX_STORM_RATE]);
    expect(() => parseArgs(['--storm', '1e6'])).toThrow(`--storm: '1e6' is not a rate (invalidations per second, 0 to ${MAX_STORM_RATE})`);
    expect(() => parseArgs(['--storm', '0,5001'])).toThrow(/'5001' is not a rate/);
  });
});
