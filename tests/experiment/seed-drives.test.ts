/**
 * The seed drives every random choice (issue 19, "Seeds mean something"): no unseeded
 * randomness in src; a built-in policy's random eviction follows the run's seed (it was
 * seed 1 whatever --seed said); and on the GPU, the reuse workload (hotset) under a policy
 * with random eviction gives identical results for one seed twice and different ones for
 * another seed. (Storm timing: tests/workloads/storm.test.ts; graph generation: the apps'
 * own tests draw their inputs from the seed.) The GPU part: Node only.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BASE_CONFIG } from '../../src/experiment/cli.js';
import { runOne } from '../../src/experiment/runner.js';
import type { RunConfig, RunResult } from '../../src/experiment/types.js';
import { builtinPolicy, loadPolicy } from '../../src/policy/loader.js';
import type { ChunkList, MigrationPolicy } from '../../src/policy/types.js';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../..');
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : /\.ts$/.test(n) ? [p] : [];
  });
}

/** Ten victims random4k picks among 64 fully resident chunks (its draw is the chunk: UVM_Smart's random start). */
function victims(p: MigrationPolicy): number[] {
  const order = Array.from({ length: 64 }, (_, i) => i);
  const list: ChunkList = {
    length: order.length, head: () => 0, tail: () => order.length - 1,
    next: (c) => (c + 1 < order.length ? c + 1 : -1), prev: (c) => c - 1, has: (c) => c >= 0 && c < order.length,
    moveHead: () => {}, moveTail: () => {},
  };
  return Array.from({ length: 10 }, () => p.eviction!.pickVictim!(0, 0, list, new Set(), () => true));
}

describe('the seed drives every random choice', () => {
  it('no unseeded randomness in src (Math.random, crypto): every PRNG is mulberry32 or the apps\' Rng of a seed', () => {
    const found: string[] = [];
    for (const f of files(join(ROOT, 'src'))) {
      const code = readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
      for (const needle of ['Math.random', 'getRandomValues', 'randomUUID', 'randomBytes', 'randomInt', 'randomFill']) {
        if (code.includes(needle)) found.push(`${relative(ROOT, f)}: ${needle}`);
      }
    }
    expect(found).toEqual([]);
  });

  it('a built-in policy\'s random eviction follows the run\'s seed (loadPolicy gets it as option seed)', async () => {
    const a = victims(builtinPolicy('first-touch+random4k', 1)!);
    expect(victims(builtinPolicy('first-touch+random4k', 1)!)).toEqual(a);
    expect(victims(builtinPolicy('first-touch+random4k', 2)!)).not.toEqual(a);
    expect(victims(await loadPolicy('first-touch+random4k', { seed: 2 }))).toEqual(victims(builtinPolicy('first-touch+random4k', 2)!));
    expect(victims(await loadPolicy('first-touch+random4k', { seed: 3 }))).not.toEqual(a);
  });

  it('on the GPU: the reuse workload with random eviction, one seed twice identical, another seed different', async () => {
    // 4 MiB (1024 pages, two 2 MiB chunks) at 2x oversubscription: random4k evicts; the fault
    // ring does not overflow (its overflow would let GPU thread timing in: ringOverflows says so).
    const config = (seed: number): RunConfig => ({
      preset: 'test', ...BASE_CONFIG, workload: 'hotset', sizeMiB: 4, policy: 'first-touch+random4k', oversub: 2, writeFraction: 0.25, seed,
    });
    /** What the run did, without its wall-clock figures. */
    const outcome = (r: RunResult): unknown => {
      expect(r.error).toBeNull();
      expect(r.verify.mismatches).toBe(0);
      expect(r.ringOverflows).toBe(0);
      const p = r.policy!;
      return {
        sim: p.simTimeNs, toDev: p.bytesToDevice, toHost: p.bytesToHost, far: p.farFaults, groups: p.faultGroups, evictions: p.evictions,
        evicted: p.evictedPages, migratedIn: p.migratedIn, evictedOut: p.evictedOut, remote: p.remotePages, unique: r.totals.unique,
        fetched: r.totals.fetched, batches: r.totals.batches,
      };
    };
    const one = outcome(await runOne(config(1), {}));
    expect((one as { evictions: number }).evictions).toBeGreaterThan(0);
    expect(outcome(await runOne(config(1), {}))).toEqual(one);
    expect(outcome(await runOne(config(2), {}))).not.toEqual(one);
  });
});
