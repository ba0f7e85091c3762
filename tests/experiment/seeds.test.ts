/**
 * Seeds mean something (issue 19): hotset, random with reuse (draws with replacement, a hot
 * set placed by the seed), touches a different set of pages under a different seed, the same
 * under the same seed; its data is verified word by word like every workload's.
 */
import { describe, expect, it } from 'vitest';
import { BASE_CONFIG } from '../../src/experiment/cli.js';
import { runOne } from '../../src/experiment/runner.js';
import type { RunConfig } from '../../src/experiment/types.js';
import { WORDS_PER_PAGE } from '../../src/device/abi.js';
import { hotsetTarget } from '../../src/workloads/patterns.js';
import { writeKey } from '../../src/workloads/patterns.js';

function config(c: Partial<RunConfig>): RunConfig {
  return { preset: 'test', ...BASE_CONFIG, workload: 'hotset', sizeMiB: 1, policy: 'first-touch', oversub: 1, ...c };
}

/** The pages hotset's invocations target for a seed (the CPU's copy of the kernel's choice). */
function pagesOf(seed: number, ws: number): Set<number> {
  const s = new Set<number>();
  for (let i = 0; i < ws; i++) s.add(Math.floor(hotsetTarget(ws, writeKey(seed), i) / WORDS_PER_PAGE));
  return s;
}

describe('seeds', () => {
  it('hotset reuses a hot set: fewer distinct pages than random, and which ones follow the seed', () => {
    const ws = 256 * WORDS_PER_PAGE;
    const a = pagesOf(1, ws);
    const b = pagesOf(2, ws);
    expect(a.size).toBeLessThan(256);
    expect(a.size).toBeGreaterThan(256 / 8);
    expect([...a].sort()).not.toEqual([...b].sort());
    expect(pagesOf(1, ws)).toEqual(a);
  });

  it('on the GPU: verified, and the pages moved follow the seed', async () => {
    const one = await runOne(config({ seed: 1 }), {});
    const two = await runOne(config({ seed: 2 }), {});
    for (const r of [one, two]) {
      expect(r.error).toBeNull();
      expect(r.verify.mismatches).toBe(0);
      expect(r.verify.checked).toBeGreaterThan(0);
    }
    const ws = 256 * WORDS_PER_PAGE;
    // First touch moves each touched page in once (the whole buffer fits): the touched set.
    expect(one.policy!.bytesToDevice / 4096).toBe(pagesOf(1, ws).size);
    expect(two.policy!.bytesToDevice / 4096).toBe(pagesOf(2, ws).size);
  });
});
