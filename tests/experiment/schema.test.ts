/**
 * The run schema (src/experiment/schema.ts): every consumer derives an axis from its one
 * entry, and --seeds (an axis added as that one entry) runs each cell N times and folds them
 * into a mean and a 95 % interval.
 */
import { describe, expect, it } from 'vitest';
import { describeConfig, expandPresets, parseArgs, USAGE } from '../../src/experiment/cli.js';
import { RUN_KEY } from '../../src/experiment/report/columns.js';
import { cellTables, interval, toCellsCsv, tQuantile975 } from '../../src/experiment/report/cells.js';
import { csvField } from '../../src/experiment/report/tables.js';
import { AXES, AXIS_ORDER, axisDef, BASE_CONFIG, cellKey } from '../../src/experiment/schema.js';
import { LAB_FIELDS, LAB_KEYS } from '../../src/lab/config.js';
import { config, result } from './fixtures.js';

/** A valid text for axes whose values are names, not numbers. */
const SAMPLE: Partial<Record<string, string>> = { policy: 'first-touch', uvm: '590', cost: 'flat', policyOpt: 'k=1', costOpt: 'faultNs=1' };

describe('run schema', () => {
  it.for(AXIS_ORDER)('%s: one entry gives the CLI option, --help line, progress text, CSV key and (when it has one) the lab field', (k) => {
    const d = axisDef(k);
    expect(USAGE).toContain(d.flag);
    expect(RUN_KEY.map((c) => c.csv)).toContain(d.csv);
    const c = { ...config(), ...(d.base === undefined ? {} : { [k]: d.base }) };
    expect(describeConfig(c)).toContain(d.describe(c[k]));
    expect(LAB_FIELDS.some((f) => f.key === k)).toBe(d.lab !== undefined);
    if (d.flagSets === undefined) {
      const v = d.base ?? d.parse(SAMPLE[k] ?? '2', d.flag);
      expect(parseArgs([d.flag, d.text(v)]).overrides[k]).toEqual([v]);
    } else {
      expect(parseArgs([d.flag]).overrides[k]).toEqual([d.flagSets]);
    }
  });

  it('the base config holds every required axis and no optional one', () => {
    for (const k of AXIS_ORDER) expect(k in BASE_CONFIG).toBe(!AXES[k].optional);
    expect(LAB_KEYS).not.toContain('seeds'); // the lab runs one
  });
});

describe('--seeds N', () => {
  it('runs each cell N times with seeds seed..seed+N-1, consecutively', () => {
    const runs = expandPresets(parseArgs(['--preset', 'windows', '--window', '4k,64k', '--workload', 'stream', '--seed', '7', '--seeds', '3']));
    expect(runs.map((r) => [r.window, r.seed])).toEqual([[4096, 7], [4096, 8], [4096, 9], [65536, 7], [65536, 8], [65536, 9]]);
    expect(runs.every((r) => r.seeds === 3)).toBe(true);
    expect(new Set(runs.map(cellKey)).size).toBe(2);
    expect(cellKey(config())).toBeNull(); // a lone run is no cell
    expect(() => parseArgs(['--seeds', '2,3'])).toThrow(/--seeds: '2,3' is not a positive integer/);
    expect(() => parseArgs(['--seeds', '0'])).toThrow(/positive integer/);
  });

  it('t quantiles and the interval: mean ± t(0.975, n-1)·s/√n', () => {
    expect(tQuantile975(1)).toBeCloseTo(12.706, 3);
    expect(tQuantile975(30)).toBeCloseTo(2.042, 3);
    expect(tQuantile975(60)).toBeCloseTo(2.0003, 3);
    expect(tQuantile975(1e9)).toBeCloseTo(1.96, 3);
    const iv = interval([1, 2, 3]);
    expect(iv.mean).toBe(2);
    expect(iv.half).toBeCloseTo(4.303 / Math.sqrt(3), 6);
    expect(interval([5]).half).toBeNaN();
  });

  it('the report folds a cell into one row of means and intervals (markdown and cells.csv)', () => {
    const mk = (seed: number, wallMs: number) => result(config({ seed, seeds: 3 }), [], { wallMs });
    const other = result(config({ seed: 1, seeds: 3, window: 4096 }), [], { wallMs: 50 });
    const report = { generatedAt: '', adapter: '', node: '', presets: ['coalescing'], runs: [mk(1, 100), mk(2, 110), mk(3, 120), other] };
    const md = cellTables(report);
    expect(md).toMatch(/mean ± 95 % interval/);
    const rows = md.split('\n').filter((l) => /^\| \d/.test(l));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain(`110 ± ${Number((4.303 * 10 / Math.sqrt(3)).toPrecision(4))}`);
    expect(rows[0]).toMatch(/^\| 3 \| 1–3 \|/);
    const csv = toCellsCsv(report, csvField).trim().split('\n');
    expect(csv[0]).toContain('wall_ms_mean,wall_ms_ci95');
    expect(csv).toHaveLength(3);
    expect(cellTables({ ...report, runs: [result(config(), [])] })).toBe('');
  });
});
