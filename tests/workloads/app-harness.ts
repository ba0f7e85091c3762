/**
 * Application workloads in tests: one run through the experiment's runner — a fresh machine,
 * the buffer mirrored, a fault service with a migration policy (default first-touch + tree
 * prefetch + LRU eviction) — and the
 * checks every such test makes: every element compared with the CPU reference and none
 * wrong, the faults real, every launch run.
 */
import { expect } from 'vitest';
import { BASE_CONFIG } from '../../src/experiment/schema.js';
import { runOne } from '../../src/experiment/runner.js';
import type { RunConfig, RunResult } from '../../src/experiment/types.js';
import { appProgram } from '../../src/workloads/apps/index.js';
import { arrayWords } from '../../src/workloads/apps/program.js';
import type { AppWorkload } from '../../src/workloads/names.js';

export interface AppRunOptions {
  policy?: string;
  oversub?: number;
  seed?: number;
}

export function appConfig(workload: AppWorkload, sizeMiB: number, o: AppRunOptions = {}): RunConfig {
  return {
    ...BASE_CONFIG, preset: 'test', workload, sizeMiB, seed: o.seed ?? 5,
    policy: o.policy ?? 'first-touch+tree+lru', oversub: o.oversub ?? 1,
  };
}

/** Elements the CPU compares: every element of every array (u8: bytes) and every word between them. */
export function elementsOf(workload: AppWorkload, sizeMiB: number, seed = 5): number {
  const p = appProgram(workload, sizeMiB, seed);
  let n = p.pages * 1024;
  for (const a of p.arrays) n += a.kind === 'u8' ? a.length - arrayWords(a) : 0;
  return n;
}

/** Runs it and checks what every app test checks; returns the result for more. */
export async function runAppChecked(workload: AppWorkload, sizeMiB: number, o: AppRunOptions = {}): Promise<RunResult> {
  const r = await runOne(appConfig(workload, sizeMiB, o), {});
  expect(r.error).toBeNull();
  expect(r.ok).toBe(true);
  expect(r.verify.mismatches).toBe(0);
  expect(r.verify.checked).toBe(elementsOf(workload, sizeMiB, o.seed ?? 5));
  expect(r.faultRounds).toBeGreaterThan(0);
  expect(r.policy?.farFaults ?? 0).toBeGreaterThan(0);
  expect(r.policy?.mappedFrees).toBe(0);
  return r;
}
