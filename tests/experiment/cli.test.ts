import { describe, expect, it } from 'vitest';
import {
  BASE_CONFIG, CliError, configKey, describeConfig, expandPresets, parseArgs, PRESET_BATCH_SIZES, PRESET_STORM_RATES,
  resolvePresets, USAGE, wantsMm, WINDOWS,
} from '../../src/experiment/cli.js';
import { APP_WORKLOADS, SYNTHETIC_WORKLOADS } from '../../src/workloads/names.js';
import { APPS, appProgram } from '../../src/workloads/apps/index.js';

function err(argv: string[]): string {
  try {
    parseArgs(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    return (e as Error).message;
  }
  throw new Error(`parseArgs(${JSON.stringify(argv)}) did not throw`);
}

describe('parseArgs', () => {
  it('defaults: the quick set and the mm preset, no overrides', () => {
    const o = parseArgs([]);
    expect(o.presets).toEqual(['quick', 'mm']);
    expect(o.presetGiven).toBe(false);
    expect(o.overrides).toEqual({});
    expect(o).toMatchObject({ out: null, quiet: false, help: false, json: null, mmPages: 256, mmRounds: 2000 });
  });

  it('parses every option, as "--opt value" and "--opt=value", with comma lists', () => {
    const o = parseArgs([
      '--preset', 'windows,protocols', '--workload=random,gather', '--size', '0.5', '--window', '4k,64K,2m,amd',
      '--batch=32', '--replay', 'once', '--protocol', 'lock-fallback,seq', '--no-coalesce', '--storm', '0,2500.5',
      '--seed=7', '--writes', '0', '--out', 'out/x', '--quiet', '--pages', '64', '--rounds', '10', '--json', 'r.json',
    ]);
    expect(o.presets).toEqual(['windows', 'protocols']);
    expect(o.presetGiven).toBe(true);
    expect(o.overrides).toEqual({
      workload: ['random', 'gather'], sizeMiB: [0.5], window: [4096, 65536, 2097152, 'amd'], batchSize: [32], replay: ['once'],
      protocol: ['lock-fallback', 'seq'], coalesce: [false], stormRate: [0, 2500.5], seed: [7], writeFraction: [0],
    });
    expect(o).toMatchObject({ out: 'out/x', quiet: true, json: 'r.json', mmPages: 64, mmRounds: 10 });
  });

  it('accepts byte counts for windows and drops repeated list values', () => {
    expect(parseArgs(['--window', '4096,65536,2097152,4k']).overrides.window).toEqual([4096, 65536, 2097152]);
  });

  it('--adapter: auto, opengles or vulkan (default null: MIRRORLAB_ADAPTER decides)', () => {
    expect(parseArgs([]).adapter).toBeNull();
    expect(parseArgs(['--adapter', 'vulkan']).adapter).toBe('vulkan');
    expect(parseArgs(['--adapter=opengles']).adapter).toBe('opengles');
    expect(err(['--adapter', 'metal'])).toBe("--adapter: 'metal' is not an adapter (one of auto, opengles, vulkan)");
    expect(err(['--adapter'])).toBe('--adapter needs a value');
  });

  it('-h and --help ask for the usage text', () => {
    expect(parseArgs(['-h']).help).toBe(true);
    expect(parseArgs(['--help']).help).toBe(true);
  });

  it.for(['--preset', '--workload', '--size', '--window', '--batch', '--replay', '--protocol', '--no-coalesce', '--storm', '--seed', '--seeds', '--out', '--quiet', '--adapter'])(
    'the usage text lists %s', (opt) => {
      expect(USAGE).toContain(opt);
    });

  it.each([
    [['--frobnicate'], /unknown option '--frobnicate'/],
    [['--presets', 'all'], /unknown option '--presets' \(did you mean --preset\?\)/],
    [['stream'], /unexpected argument 'stream'/],
    [['--batch'], /--batch needs a value/],
    [['--batch', '--quiet'], /--batch needs a value/],
    [['--out='], /--out needs a value/],
    [['--quiet=yes'], /--quiet takes no value/],
    [['--preset', 'fast'], /--preset: 'fast' is not a preset \(one of quick, coalescing, windows, batches, protocols, mm, policies, published, all\)/],
    [['--preset', 'windows,'], /--preset: empty value in 'windows,'/],
    [['--workload', 'streem'], /--workload: 'streem' is not a workload \(one of stream, strided, random, stencil, gather, pingpong, hotset, bfs, hotspot/],
    [['--window', '8k'], /--window: '8k' is not a window \(one of 4k, 64k, 2m, amd\)/],
    [['--batch', '0'], /--batch: '0' is not a positive integer/],
    [['--batch', '1.5'], /--batch: '1.5' is not a positive integer/],
    [['--batch', 'many'], /--batch: 'many' is not a positive integer/],
    [['--batch', '-4'], /--batch: '-4' is not a positive integer/],
    [['--replay', 'never'], /--replay: 'never' is not a replay policy \(one of block, batch, batch-flush, once\)/],
    [['--protocol', 'rcu'], /--protocol: 'rcu' is not a retry protocol \(one of seq, valid-flag, lock-fallback\)/],
    [['--storm', '-1'], /--storm: '-1' is not a rate/],
    [['--storm', 'lots'], /--storm: 'lots' is not a rate/],
    [['--seed', '4294967296'], /--seed: '4294967296' is not a seed/],
    [['--seed', '-1'], /--seed: '-1' is not a seed/],
    [['--size', '0'], /--size: '0' is not a size in MiB/],
    [['--size', '0.001'], /--size: '0.001' is not a whole number of 4 KiB pages/],
    [['--writes', '1.5'], /--writes: '1.5' is not a fraction between 0 and 1/],
    [['--pages', '0'], /--pages: '0' is not a positive integer/],
  ])('rejects %j with a clear message', (argv, message) => {
    expect(err(argv)).toMatch(message);
  });
});

describe('expandPresets', () => {
  const expand = (argv: string[]) => expandPresets(parseArgs(argv));

  it('counts: coalescing 2 a workload, windows 8, batches 8, protocols 12, quick 13, mm 0, all 28 + coalescing', () => {
    expect(expand(['--preset', 'coalescing'])).toHaveLength(2 * SYNTHETIC_WORKLOADS.length);
    expect(expand(['--preset', 'windows'])).toHaveLength(8);
    expect(expand(['--preset', 'batches'])).toHaveLength(8);
    expect(expand(['--preset', 'protocols'])).toHaveLength(12);
    expect(expand(['--preset', 'quick'])).toHaveLength(13);
    expect(expand(['--preset', 'mm'])).toHaveLength(0);
    expect(expand(['--preset', 'all'])).toHaveLength(28 + 2 * SYNTHETIC_WORKLOADS.length);
    expect(expand([])).toHaveLength(13); // the default: quick (+ the mm preset, which has no GPU runs)
    expect(expand(['--preset', 'windows,windows,all'])).toHaveLength(28 + 2 * SYNTHETIC_WORKLOADS.length);
  });

  it('coalescing: on and off for each workload, everything else at the base values', () => {
    const runs = expand(['--preset', 'coalescing']);
    for (const w of SYNTHETIC_WORKLOADS) {
      expect(runs.filter((r) => r.workload === w).map((r) => r.coalesce).sort()).toEqual([false, true]);
    }
    for (const r of runs) expect({ ...r, workload: BASE_CONFIG.workload, coalesce: true, preset: '' }).toEqual({ ...BASE_CONFIG, preset: '' });
    expect(new Set(runs.map((r) => r.preset))).toEqual(new Set(['coalescing']));
  });

  it('windows: each window for stream and random', () => {
    const runs = expand(['--preset', 'windows']);
    for (const w of ['stream', 'random']) expect(runs.filter((r) => r.workload === w).map((r) => r.window)).toEqual([...WINDOWS]);
    expect(runs.every((r) => r.coalesce && r.batchSize === BASE_CONFIG.batchSize)).toBe(true);
  });

  it('batches: 32, 64, 256, 1024 with the default replay policy', () => {
    const runs = expand(['--preset', 'batches']);
    expect(PRESET_BATCH_SIZES).toEqual([32, 64, 256, 1024]);
    for (const w of ['stream', 'random']) expect(runs.filter((r) => r.workload === w).map((r) => r.batchSize)).toEqual([32, 64, 256, 1024]);
    expect(runs.every((r) => r.replay === 'batch-flush')).toBe(true);
  });

  it('protocols: the three protocols under rising storm rates on one workload', () => {
    const runs = expand(['--preset', 'protocols']);
    expect(new Set(runs.map((r) => r.workload)).size).toBe(1);
    for (const p of ['seq', 'valid-flag', 'lock-fallback']) {
      expect(runs.filter((r) => r.protocol === p).map((r) => r.stormRate)).toEqual([...PRESET_STORM_RATES]);
    }
    expect(PRESET_STORM_RATES).toEqual([0, 100, 1000, 5000]);
  });

  it('quick: coalescing on/off for stream and random, and the protocols at 0, 1000, 5000/s, labelled with those presets', () => {
    const runs = expand([]);
    expect(runs.filter((r) => r.preset === 'coalescing').map((r) => `${r.workload}:${r.coalesce}`))
      .toEqual(['stream:true', 'stream:false', 'random:true', 'random:false']);
    const prot = runs.filter((r) => r.preset === 'protocols');
    expect(prot).toHaveLength(9);
    expect(new Set(prot.map((r) => r.stormRate))).toEqual(new Set([0, 1000, 5000]));
  });

  it('an option fixes its axis in every run; runs that become identical merge', () => {
    const seqOnly = expand(['--preset', 'protocols', '--protocol', 'seq']);
    expect(seqOnly.map((r) => [r.protocol, r.stormRate])).toEqual([['seq', 0], ['seq', 100], ['seq', 1000], ['seq', 5000]]);
    expect(expand(['--preset', 'coalescing', '--workload', 'random']).map((r) => r.coalesce)).toEqual([true, false]);
    expect(expand(['--preset', 'windows', '--window', '64k']).map((r) => [r.workload, r.window])).toEqual([['stream', 65536], ['random', 65536]]);
    expect(expand(['--preset', 'protocols', '--storm', '0,5000'])).toHaveLength(6);
    const perFault = expand(['--preset', 'batches', '--no-coalesce', '--size', '2']);
    expect(perFault).toHaveLength(8);
    expect(perFault.every((r) => !r.coalesce && r.sizeMiB === 2)).toBe(true);
    const seeds = expand(['--preset', 'windows', '--seed', '1,2,3']);
    expect(seeds).toHaveLength(24);
    expect(new Set(seeds.map((r) => configKey(r))).size).toBe(24);
    expect(expand(['--preset', 'protocols', '--workload', 'random,gather'])).toHaveLength(24);
  });

  it('every expanded run is unique within its preset', () => {
    const runs = expand(['--preset', 'all']);
    expect(new Set(runs.map((r) => configKey(r))).size).toBe(runs.length);
  });

  it('mm: only through wantsMm; all includes it', () => {
    expect(wantsMm(parseArgs([]))).toBe(true);
    expect(wantsMm(parseArgs(['--preset', 'all']))).toBe(true);
    expect(wantsMm(parseArgs(['--preset', 'windows']))).toBe(false);
    expect(resolvePresets(['all', 'mm', 'windows'])).toEqual(['coalescing', 'windows', 'batches', 'protocols', 'mm']);
  });

  it('describes a run for the progress line', () => {
    const [r] = expand(['--preset', 'windows', '--window', '64k', '--workload', 'stream']);
    expect(describeConfig(r, ['workload', 'window'])).toBe('windows stream window=64k');
    expect(describeConfig(r)).toContain('storm=0/s');
  });
});

describe('policy lab options (issue 9)', () => {
  it('--policy and --oversub are axes; the policies preset sweeps policy × workload × oversubscription', async () => {
    const { PRESET_POLICIES, POLICY_WORKLOADS, PRESET_OVERSUBS, APP_POLICY_RUNS } = await import('../../src/experiment/cli.js');
    const o = parseArgs(['--preset', 'policies', '--policy', 'first-touch,./x.ts', '--oversub', '1,3']);
    expect(o.overrides.policy).toEqual(['first-touch', './x.ts']);
    expect(o.overrides.oversub).toEqual([1, 3]);
    const all = expandPresets(parseArgs(['--preset', 'policies']));
    // ... and each application workload at its default size: on-demand and prefetch when it
    // fits, prefetch + LRU oversubscribed where that leaves at least 3 chunks (6 MiB).
    const appRuns = APP_WORKLOADS.flatMap((w) => APP_POLICY_RUNS.filter((r) => r.oversub === 1 || appProgram(w, APPS[w].defaultMiB, 1).pages / r.oversub >= 6 * 256).map((r) => ({ w, ...r })));
    // gemm (3 MiB) is never oversubscribed; pathfinder (38.5 MiB) is.
    expect(appRuns.filter((r) => r.w === 'gemm').length).toBe(2);
    expect(appRuns.filter((r) => r.w === 'pathfinder').length).toBe(3);
    expect(all.length).toBe(PRESET_POLICIES.length * POLICY_WORKLOADS.length * PRESET_OVERSUBS.length + appRuns.length);
    for (const r of appRuns) {
      expect(all.filter((c) => c.workload === r.w && c.policy === r.policy && c.oversub === r.oversub && c.sizeMiB === APPS[r.w].defaultMiB)).toHaveLength(1);
    }
    expect(new Set(all.map((c) => configKey(c))).size).toBe(all.length);
    expect(() => parseArgs(['--oversub', '0.5'])).toThrow(/--oversub: '0.5' is not an oversubscription factor/);
    // pingpong's shape (8 pages, 40 hand-offs) does not make a second stream run of the same config.
    const stream = expandPresets(parseArgs(['--preset', 'policies', '--workload', 'stream', '--size', '1', '--policy', 'first-touch', '--oversub', '1']));
    expect(stream.length).toBe(1);
  });

  it('--workload trace:FILE and --record-trace FILE take .jsonl or .csv', () => {
    expect(parseArgs(['--workload', 'stream,trace:t/a.jsonl']).overrides.workload).toEqual(['stream', 'trace:t/a.jsonl']);
    expect(() => parseArgs(['--workload', 'trace:a.txt'])).toThrow(/a trace \(trace:FILE.jsonl or trace:FILE.csv\)/);
    expect(parseArgs(['--record-trace', 'out/x.csv']).recordTrace).toBe('out/x.csv');
    expect(() => parseArgs(['--record-trace', 'x.bin'])).toThrow(/ending in .jsonl or .csv/);
  });

  it('--shard K/N splits a sweep into interleaved parts that cover it exactly once', async () => {
    const { shardOf } = await import('../../src/experiment/cli.js');
    expect(parseArgs(['--shard', '2/3']).shard).toEqual({ k: 2, n: 3 });
    expect(() => parseArgs(['--shard', '4/3'])).toThrow(/a shard K\/N/);
    expect(() => parseArgs(['--shard', 'x'])).toThrow(/a shard K\/N/);
    const items = Array.from({ length: 10 }, (_, i) => i);
    const parts = [1, 2, 3].map((k) => shardOf(items, { k, n: 3 }).map((x) => x.index));
    expect(parts.flat().sort((a, b) => a - b)).toEqual(items);
    expect(parts[1]).toEqual([1, 4, 7]);
  });
});
