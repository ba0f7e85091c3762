/** The published preset (UVM_Smart's cells), the --uvm / --cost axes and their bad input. */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { expandPresets, parseArgs, CliError } from '../../src/experiment/cli.js';
import { main, publishedReport } from '../../src/experiment/main.js';
import {
  htmlPublished, PUBLISHED, PUBLISHED_CONFIGS, PUBLISHED_SETTINGS, PUBLISHED_STALLING_ISSUE, publishedRows, publishedRuns, publishedTable, publishedWorkload,
} from '../../src/experiment/published.js';
import { runOne } from '../../src/experiment/runner.js';
import { DEFAULT_WATCHDOG } from '../../src/experiment/watchdog.js';
import type { RunConfig } from '../../src/experiment/types.js';
import { BASE_CONFIG } from '../../src/experiment/cli.js';
import type { RunResult } from '../../src/experiment/types.js';
import { PAGE_SIZE, transferNs, UVM_SMART_SERIAL } from '../../src/policy/cost.js';
import { totals } from '../../src/driver/records.js';

describe('published preset', () => {
  it('runs every logged cell at UVM_Smart\'s working sets (backprop 17.5625 MiB, bfs 9.75, fdtd 18.0625, hotspot 12)', () => {
    const runs = expandPresets(parseArgs(['--preset', 'published']));
    const logged = PUBLISHED.reduce((n, b) => n + Object.values(b.cells).filter((c) => c !== null).length, 0);
    expect(runs.length).toBe(logged); // bfs at 125 % included: 7.8 MiB of device memory is 3.9 chunks
    expect(publishedRuns(BASE_CONFIG).length).toBe(logged);
    expect(new Set(publishedRuns(BASE_CONFIG).map((r) => r.sizeMiB))).toEqual(new Set([17.5625, 9.75, 18.0625, 12]));
    expect(runs.every((r) => r.preset === 'published' && r.policy?.startsWith('first-touch'))).toBe(true);
    expect(new Set(publishedRuns(BASE_CONFIG).map((r) => r.oversub))).toEqual(new Set([1, 1.1, 1.25]));
    expect(new Set(runs.map((r) => r.oversub))).toEqual(new Set([1, 1.1, 1.25]));
    expect(new Set(runs.map((r) => r.policy))).toEqual(new Set(['first-touch', 'first-touch+tree', 'first-touch+tree+lru', 'first-touch+tree-fits+random4k', 'first-touch+tree-fits+sl64k']));
  });

  it('runs the Rodinia/PolyBench ports under their own names, not the stand-ins', () => {
    const runs = expandPresets(parseArgs(['--preset', 'published']));
    expect(new Set(runs.map((r) => r.workload))).toEqual(new Set(['backprop', 'bfs', 'fdtd-2d', 'hotspot']));
    expect(PUBLISHED.every((b) => !publishedWorkload(b).standIn)).toBe(true);
  });

  it('leaves out a cell whose oversubscribed device memory is under 3 chunks at its size (bfs 7 MiB at 125 %: 5.6 MiB), and says so', () => {
    // At UVM_Smart's sizes every cell runs: bfs 9.75 MiB at 125 % leaves 7.8 MiB (3.9 chunks).
    expect(expandPresets(parseArgs(['--preset', 'published'])).length).toBe(publishedRuns(BASE_CONFIG).length);
    const runs = expandPresets(parseArgs(['--preset', 'published', '--size', '7']));
    expect(runs.some((r) => r.workload === 'bfs' && r.oversub === 1.25)).toBe(false);
    expect(runs.some((r) => r.workload === 'bfs' && r.oversub === 1.1)).toBe(true); // 6.4 MiB: 3 chunks and more
    // --size 4: no oversubscribed cell runs, every fitting one does.
    const small = expandPresets(parseArgs(['--preset', 'published', '--size', '4']));
    expect(small.length).toBe(8);
    expect(small.every((r) => r.oversub === 1)).toBe(true);
    // The table: "not run" for it, and the note names it; a cell merely absent (another shard's) is not named.
    const bfsOnDemand = runs.find((r) => r.workload === 'bfs' && r.policy === 'first-touch')!;
    const done: RunResult = {
      config: bfsOnDemand, ok: true, error: null, wallMs: 1000, rounds: 1, faultRounds: 1, totals: totals([]), records: [],
      storm: { ops: 0, byKind: {} }, verify: { checked: 1, mismatches: 0 }, faultsPerSec: 0,
      policy: {
        policy: 'first-touch', devicePages: 1, simTimeNs: 1e6, bytesToDevice: 0, bytesToHost: 0, farFaults: 10, faultRecords: 10,
        faultGroups: 1, cpuFaults: 0, thrashingEvents: 0, throttles: 0, pins: 0, evictions: 0, evictedPages: 0, prefetchedPages: 0,
        prefetchHits: 0, remotePages: 0, migratedIn: 0, evictedOut: 0, skipped: 0, mappedFrees: 0, faultServiceMs: 0, policyMs: 0,
        moveMs: 0, serviceMs: 0, simFaultsPerWallSec: 0, policyStats: {},
      },
    };
    const rows = publishedRows([done]);
    expect(rows.filter((r) => r.tooLittleMemory).map((r) => `${r.benchmark} ${r.config}`)).toEqual(['bfs TBN + LRU-2M, 125 %']);
    expect(publishedTable(rows)).toContain('| bfs | TBN + LRU-2M, 125 % | 10,057 | not run | — | 471.0 | not run | — |');
    const md = publishedReport({ runs: [done], adapter: 'test', generatedAt: 'now', node: 'v20', presets: ['published'] }, null);
    expect(md).toContain('not run: bfs TBN + LRU-2M, 125 % (');
  });

  it('uses the real port once its workload is registered, a named stand-in before', () => {
    const bfs = PUBLISHED.find((b) => b.name === 'bfs')!;
    expect(publishedWorkload(bfs, ['stream', 'gather'])).toEqual({ workload: 'gather', standIn: true });
    expect(publishedWorkload(bfs, ['stream', 'bfs'])).toEqual({ workload: 'bfs', standIn: false });
  });

  it('puts their number, ours and the ratio side by side', () => {
    const configs = publishedRuns(BASE_CONFIG, ['bfs']).filter((c) => String(c.workload) === 'bfs');
    const runs: RunResult[] = configs.map((config, i) => ({
      config, ok: true, error: null, wallMs: 1000, rounds: 1, faultRounds: 1, totals: totals([]), records: [],
      storm: { ops: 0, byKind: {} }, verify: { checked: 1, mismatches: 0 }, faultsPerSec: 0,
      policy: {
        policy: config.policy!, devicePages: 1, simTimeNs: 2_491 * 45_000 * (i + 1), bytesToDevice: 0, bytesToHost: 0, farFaults: 2_491 * 2 * (i + 1), faultRecords: 2_491 * 2 * (i + 1),
        faultGroups: 1, cpuFaults: 0, thrashingEvents: 0, throttles: 0, pins: 0, evictions: 0, evictedPages: 0, prefetchedPages: 0,
        prefetchHits: 0, remotePages: 0, migratedIn: 0, evictedOut: 0, skipped: 0, mappedFrees: 0, faultServiceMs: 0, policyMs: 0,
        moveMs: 0, serviceMs: 0, simFaultsPerWallSec: 0, policyStats: {},
      },
    }));
    const rows = publishedRows(runs, ['bfs']).filter((r) => r.benchmark === 'bfs');
    expect(rows[0]).toMatchObject({ config: 'on-demand, fits', theirs: { farFaults: 2491, simMs: 116.9 }, ours: { farFaults: 4982 }, faultRatio: 2 });
    expect(rows[0].timeRatio).toBeCloseTo(112.095 / 116.9, 5);
    const md = publishedTable(rows);
    expect(md).toContain('| bfs | on-demand, fits | 2,491 | 4,982 | 2.00x | 116.9 | 112.1 | 0.96x |');
    expect(md.split('\n').length).toBe(2 + 6);
    // --seeds: a cell's runs are averaged; one failed run fails the cell.
    const second = runs.map((r) => ({ ...r, config: { ...r.config, seed: 2 }, policy: { ...r.policy!, farFaults: r.policy!.farFaults + 2 } }));
    const bfsRow = (rs: RunResult[]) => publishedRows(rs, ['bfs']).find((r) => r.benchmark === 'bfs')!;
    expect(bfsRow([...runs, ...second]).ours!.farFaults).toBe(4983);
    expect(bfsRow([...runs, { ...second[0], ok: false }]).ours).toBeNull();
  });
});

describe('report.html\'s published section', () => {
  /** A run of each logged cell, ours = theirs × `scale(i)`, the i-th cell failed where scale is null. */
  function cells(scale: (i: number) => number | null): RunResult[] {
    // Every cell but bfs at 125 % (not run: the preset leaves it out when memory is too small).
    return publishedRuns(BASE_CONFIG).filter((c) => !(c.workload === 'bfs' && c.oversub === 1.25)).map((config, i) => {
      const b = PUBLISHED.find((x) => x.workload === config.workload)!;
      const cfg = PUBLISHED_CONFIGS.find((c) => c.policy === config.policy && c.oversub === config.oversub)!;
      const [ff, ms] = b.cells[cfg.id]!;
      const k = scale(i);
      return {
        config, ok: k !== null, error: k === null ? 'ETIMEDOUT: watchdog' : null, wallMs: 1000, rounds: 1, faultRounds: 1, totals: totals([]), records: [],
        storm: { ops: 0, byKind: {} }, verify: { checked: 1, mismatches: 0 }, faultsPerSec: 0,
        policy: {
          policy: config.policy!, devicePages: 1, simTimeNs: ms * 1e6 * (k ?? 1), bytesToDevice: 0, bytesToHost: 0, farFaults: ff * (k ?? 1), faultRecords: ff * (k ?? 1),
          faultGroups: 1, cpuFaults: 0, thrashingEvents: 0, throttles: 0, pins: 0, evictions: 0, evictedPages: 0, prefetchedPages: 0,
          prefetchHits: 0, remotePages: 0, migratedIn: 0, evictedOut: 0, skipped: 0, mappedFrees: 0, faultServiceMs: 0, policyMs: 0,
          moveMs: 0, serviceMs: 0, simFaultsPerWallSec: 0, policyStats: {},
        },
      };
    });
  }

  it('draws every logged cell: two bars each on a log axis (0.02x and 190x both visible), n/a for a failed or unrun cell', () => {
    const runs = cells((i) => (i === 3 ? null : [0.02, 190, 1, 5][i % 4]));
    const html = htmlPublished(runs);
    const rows = publishedRows(runs);
    expect(rows.length).toBe(20); // backprop 5, bfs 6, fdtd 5, hotspot 4
    // Every cell has a row in the table and a category in the figure.
    expect(html.match(/<tr><td>/g)!.length).toBe(rows.length);
    for (const r of rows) expect(html).toContain(`${r.benchmark} ${r.config.replace(/,? fits$/, '')}`);
    const bars = [...html.matchAll(/<rect class="bar" data-series="([^"]+)" data-category="([^"]+)" x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"/g)];
    const ran = rows.filter((r) => r.ours !== null).length;
    expect(bars.length).toBe(2 * ran);
    // 1x is the axis (no height); 0.02x and 190x are bars of real height on either side.
    const h = (cat: string): number => Number(bars.find((b) => b[2] === cat && b[1].startsWith('far faults'))![3]);
    expect(h('backprop on-demand')).toBeGreaterThan(20); // 0.02x
    expect(h('backprop TBN prefetch')).toBeGreaterThan(20); // 190x
    expect(h('backprop TBN + LRU-2M, 110 %')).toBeLessThan(1); // 1x
    expect(html).toContain('>190x<');
    expect(html).toContain('>0.02x<');
    // The failed cell (backprop TBN + random-4K, 110 %) and bfs at 125 % (not run) are n/a in the figure and named in the table.
    expect(html).toContain('<td>backprop</td><td>TBN + random-4K, 110 %</td><td>347</td><td>failed</td>');
    expect(html).toContain('<td>bfs</td><td>TBN + LRU-2M, 125 %</td><td>10,057</td><td>not run</td>');
    expect(html.match(/class="na"/g)!.length).toBe(2 * (rows.length - ran));
  });
});

describe('the published preset runs on UVM_Smart\'s terms (PUBLISHED_SETTINGS, PUBLISHED_STALLING_ISSUE)', () => {
  it('every cell has UVM_Smart\'s clock (uvm-smart-serial); the TBN cells that fit its stalling issue order (utlbFaults 1); other presets keep the defaults', () => {
    expect(PUBLISHED_SETTINGS).toEqual({ cost: 'uvm-smart-serial' });
    const runs = expandPresets(parseArgs(['--preset', 'published']));
    expect(runs.length).toBeGreaterThan(0);
    expect(runs.every((r) => r.cost === 'uvm-smart-serial')).toBe(true);
    const stalled = (r: RunConfig): boolean => r.utlbFaults === PUBLISHED_STALLING_ISSUE;
    expect(PUBLISHED_STALLING_ISSUE).toBe(1);
    expect(runs.filter(stalled).every((r) => r.policy === 'first-touch+tree' && r.oversub === 1)).toBe(true);
    expect(runs.filter((r) => !stalled(r)).every((r) => r.utlbFaults === undefined && !(r.policy === 'first-touch+tree' && r.oversub === 1))).toBe(true);
    expect(runs.filter(stalled).length).toBe(4); // backprop, bfs, fdtd, hotspot: TBN, fits
    const policies = expandPresets(parseArgs(['--preset', 'policies']));
    expect(policies.every((r) => r.cost === undefined && r.utlbFaults === undefined)).toBe(true);
  });
  it('the command line replaces them: --cost uvm-smart, --utlb-faults 0 (no limit)', () => {
    const runs = expandPresets(parseArgs(['--preset', 'published', '--cost', 'uvm-smart', '--utlb-faults', '0']));
    expect(runs.every((r) => r.cost === 'uvm-smart' && r.utlbFaults === 0)).toBe(true);
    expect(() => parseArgs(['--utlb-faults', '-1'])).toThrow(/--utlb-faults: '-1'/);
  });
  it('on the GPU: a cell\'s results name the clock, and each far fault added 45 µs to its simulated time', async () => {
    const config = (c: Partial<RunConfig>): RunConfig => ({
      ...BASE_CONFIG, ...PUBLISHED_SETTINGS, preset: 'published', workload: 'stream', sizeMiB: 0.25, policy: 'first-touch', oversub: 1, ...c,
    } as RunConfig);
    const a = await runOne(config({}), {});
    const b = await runOne(config({ costOpt: 'farFaultNs=1000000' }), {}); // 1 ms a far fault
    for (const r of [a, b]) {
      expect(r.error).toBeNull();
      expect(r.verify.mismatches).toBe(0);
    }
    expect(a.policy!.cost).toBe('uvm-smart-serial');
    const far = a.policy!.farFaults;
    expect(far).toBe(64); // 0.25 MiB, every page faulted once
    expect(b.policy!.farFaults).toBe(far);
    // The clock is serial in far faults: the knob's difference, times the far faults, exactly.
    expect(b.policy!.simTimeNs - a.policy!.simTimeNs).toBe(far * (1_000_000 - UVM_SMART_SERIAL.farFaultNs));
    expect(a.policy!.simTimeNs).toBeGreaterThan(far * (UVM_SMART_SERIAL.farFaultNs + transferNs(UVM_SMART_SERIAL, PAGE_SIZE)));
  });
  it('on the GPU: an on-demand cell\'s far faults and serial time do not depend on the issue order (why those cells run without the stall)', async () => {
    const config = (utlbFaults: number): RunConfig => ({
      ...BASE_CONFIG, ...PUBLISHED_SETTINGS, preset: 'published', workload: 'hotspot', sizeMiB: 0.1875, policy: 'first-touch', oversub: 1, utlbFaults,
    } as RunConfig);
    const free = await runOne(config(0), {});
    const stalled = await runOne(config(1), {});
    for (const r of [free, stalled]) {
      expect(r.error).toBeNull();
      expect(r.verify.mismatches).toBe(0);
    }
    expect(stalled.policy!.faultGroups).toBeGreaterThan(free.policy!.faultGroups); // the order did change
    expect(stalled.policy!.farFaults).toBe(free.policy!.farFaults);
    expect(stalled.policy!.simTimeNs).toBe(free.policy!.simTimeNs);
  });
  it('on the GPU: the stalling issue order under eviction completes (backprop TBN + LRU-2M at 110 %, 8 MiB): the uTLB queue is FIFO, so evicted low pages re-fault behind the high ones the invocations wait on', async () => {
    // With each uTLB's lowest page first this run livelocked: no invocation completed in 60
    // rounds, 5,136 pages in and 4,608 out (the watchdog's message; before utlb-issue.ts's queue).
    const r = await runOne({
      ...BASE_CONFIG, ...PUBLISHED_SETTINGS, preset: 'published', workload: 'backprop', sizeMiB: 8, policy: 'first-touch+tree+lru', oversub: 1.1, utlbFaults: 1,
    } as RunConfig, { watchdog: { ...DEFAULT_WATCHDOG, wallMs: Number.POSITIVE_INFINITY, rounds: 60 } });
    expect(r.error).toBeNull();
    expect(r.verify.checked).toBeGreaterThan(0);
    expect(r.verify.mismatches).toBe(0);
    expect(r.policy!.evictedOut).toBeGreaterThan(0); // oversubscribed: it did evict
  });
});

describe('--uvm and --cost', () => {
  it('take the known versions and models, as run axes', () => {
    const o = parseArgs(['--uvm', '575,590', '--cost', 'flat']);
    expect(o.overrides.uvm).toEqual(['575', '590']);
    expect(o.overrides.cost).toEqual(['flat']);
    expect(expandPresets({ ...o, presets: ['policies'] }).every((c) => c.cost === 'flat')).toBe(true);
  });
  it('an unknown --uvm version is a usage error naming it', () => {
    expect(() => parseArgs(['--uvm', '560'])).toThrow(CliError);
    expect(() => parseArgs(['--uvm', '560'])).toThrow(/--uvm: '560' is not a UVM version/);
    expect(() => parseArgs(['--cost', 'free'])).toThrow(/--cost: 'free'/);
  });
  it('exits 2 with the message and writes nothing', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'uvm-')), 'out');
    const errors: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((m: unknown) => { errors.push(String(m)); });
    try {
      expect(await main(['--preset', 'published', '--uvm', '999', '--out', dir])).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(errors.join('\n')).toContain("'999'");
    expect(existsSync(dir)).toBe(false);
  });
});
