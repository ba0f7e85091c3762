/**
 * Migration policies on the real fault path (issue 9; node only: Dawn on the GPU). The
 * PolicyEngine decides each batch, the driver moves pages with migrate_vma into the
 * device's private memory and home again (evictions, the CPU's faults), and every run's
 * data is verified word by word (the GPU's checks, each invocation's result, the CPU's
 * read-back of the whole buffer). The known results, at small sizes.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatTrace, pingPong, type TraceRecord } from '../../src/policy/index.js';
import { BASE_CONFIG } from '../../src/experiment/cli.js';
import { runOne } from '../../src/experiment/runner.js';
import type { PolicyRunResult, RunConfig, RunResult } from '../../src/experiment/types.js';

function config(c: Partial<RunConfig>): RunConfig {
  return { preset: 'test', ...BASE_CONFIG, sizeMiB: 1, ...c };
}

async function run(c: Partial<RunConfig>): Promise<RunResult & { policy: PolicyRunResult }> {
  const r = await runOne(config(c), {});
  expect(r.error).toBeNull();
  expect(r.ok).toBe(true);
  expect(r.verify.mismatches).toBe(0);
  expect(r.verify.checked).toBeGreaterThan(0);
  expect(r.policy).toBeDefined();
  expect(r.policy!.skipped).toBe(0); // the residency never planned what migrate_vma did not do
  expect(r.policy!.mappedFrees).toBe(0); // no device page freed while a mirror mapped it
  return r as RunResult & { policy: PolicyRunResult };
}

/** The simulated figures (everything but the wall-clock ones). */
function simulated(p: PolicyRunResult): Partial<PolicyRunResult> {
  const { policyMs: _a, moveMs: _b, serviceMs: _c, simFaultsPerWallSec: _d, faultServiceMs: _e, ...rest } = p;
  return rest;
}

/** 8 pages, 40 GPU/CPU hand-offs: each hand-off well inside NVIDIA's 500 µs lapse. */
const PINGPONG: Partial<RunConfig> = { workload: 'pingpong', sizeMiB: 8 / 256, phases: 40 };

describe('policies on the real fault path', () => {
  it('first touch: every faulted page moves into device memory (the CPU page table holds our device page)', async () => {
    const { policy: p } = await run({ workload: 'stream', policy: 'first-touch' });
    expect(p.migratedIn).toBe(256);
    expect(p.bytesToDevice).toBe(256 * 4096);
    expect(p.bytesToHost).toBe(0); // the harness's read-back is not part of the run
    expect(p.simTimeNs).toBeGreaterThan(0);
  });

  it('remote-only moves nothing and maps through the aperture', async () => {
    const { policy: p } = await run({ workload: 'stream', policy: 'remote-only' });
    expect(p.migratedIn + p.bytesToDevice + p.bytesToHost).toBe(0);
    expect(p.remotePages).toBe(256);
  });

  it('ping-pong thrashes under first touch, not under thrashing detection or the minimum lifetime', async () => {
    const ft = (await run({ ...PINGPONG, policy: 'first-touch' })).policy;
    const th = (await run({ ...PINGPONG, policy: 'thrashing' })).policy;
    const ml = (await run({ ...PINGPONG, policy: 'min-lifetime' })).policy;
    // The CPU really faulted device pages home: once a CPU phase, the 64 KiB big page bringing
    // all 8 pages (uvm_va_block_cpu_fault's path), 20 CPU phases in 40 hand-offs.
    expect(ft.cpuFaults).toBe(20);
    expect(ft.thrashingEvents).toBeGreaterThan(200);
    expect(th.throttles).toBeGreaterThan(0);
    expect(th.thrashingEvents).toBeLessThan(ft.thrashingEvents / 2);
    expect(ml.thrashingEvents).toBe(0);
  });

  it('tree prefetch cuts far faults on streaming by at least half against first touch', async () => {
    const ft = (await run({ workload: 'stream', sizeMiB: 4, policy: 'first-touch' })).policy;
    const tree = (await run({ workload: 'stream', sizeMiB: 4, policy: 'first-touch+tree' })).policy;
    expect(tree.prefetchedPages).toBeGreaterThan(0);
    expect(tree.prefetchHits).toBeGreaterThan(0);
    expect(tree.farFaults * 2).toBeLessThanOrEqual(ft.farFaults);
  });

  it('--utlb-faults 1: each round\'s batches hold at most one page a uTLB (8 uTLBs), every page still arrives and the data is right', async () => {
    const free = await run({ workload: 'stream', policy: 'first-touch' });
    const held = await run({ workload: 'stream', policy: 'first-touch', utlbFaults: 1 });
    expect(Math.max(...free.records.map((b) => b.unique))).toBeGreaterThan(8);
    expect(Math.max(...held.records.map((b) => b.unique))).toBeLessThanOrEqual(8);
    expect(held.policy.migratedIn).toBe(256); // nothing lost: the stalled uTLBs' misses fault in later rounds
    expect(held.policy.farFaults).toBe(256); // each page once, as without the limit
    expect(free.policy.farFaults).toBe(256);
    expect(held.faultRounds).toBeGreaterThan(free.faultRounds);
  });

  it('1.5x oversubscription completes with evictions moved home through migrate_vma', async () => {
    const { policy: p } = await run({ workload: 'stream', sizeMiB: 4, policy: 'first-touch+tree+lru', oversub: 1.5 });
    expect(p.devicePages).toBe(Math.ceil(1024 / 1.5));
    expect(p.evictions).toBeGreaterThan(0);
    expect(p.evictedOut).toBe(p.evictedPages);
    expect(p.bytesToHost).toBe(p.evictedPages * 4096);
  });

  it('access counters migrate remotely accessed pages after the round', async () => {
    const { policy: p } = await run({ workload: 'stream', sizeMiB: 2, policy: 'access-counters' });
    expect(p.remotePages).toBeGreaterThan(0);
    expect(p.migratedIn).toBe(512);
  });

  it('same seed, same simulated results', async () => {
    const c: Partial<RunConfig> = { workload: 'random', sizeMiB: 2, policy: 'thrashing+tree+lfu', oversub: 1.5, seed: 7 };
    const a = (await run(c)).policy;
    const b = (await run(c)).policy;
    expect(simulated(b)).toEqual(simulated(a));
  });

  it('the example user policy loads from its file; its remote leases lapse (shot down) and pages then migrate', async () => {
    const r = await run({ workload: 'pingpong', sizeMiB: 1, policy: './examples/my-policy.ts' });
    expect(r.policy.policy).toBe('second-touch-cpu-aware');
    expect(r.policy.policyStats.remote).toBeGreaterThan(0);
    expect(r.policy.migratedIn).toBeGreaterThan(0); // only after a lease lapsed and the page faulted again
    expect(r.policy.pins).toBeGreaterThan(0);
  });

  it('a run records its faults as a trace; a trace replays as a workload on the real path, verified', async () => {
    const rec: TraceRecord[] = [];
    const r = await runOne(config({ ...PINGPONG, phases: 4, policy: 'first-touch' }), { recordTrace: rec });
    expect(r.verify.mismatches).toBe(0);
    expect(rec.filter((x) => x.proc === 0).length).toBeGreaterThan(0);
    expect(rec.filter((x) => x.proc === -1).length).toBe(r.policy!.cpuFaults);
    expect(rec.some((x) => x.proc === -1)).toBe(true); // the CPU's faults home
    const dir = mkdtempSync(join(tmpdir(), 'trace-'));
    const recorded = join(dir, 'recorded.csv');
    writeFileSync(recorded, formatTrace(rec, 'csv'));
    const replay = await run({ workload: `trace:${recorded}`, policy: 'first-touch' });
    expect(replay.policy.migratedIn).toBeGreaterThan(0);
    expect(replay.policy.cpuFaults).toBeGreaterThan(0);
    // A published-style trace (JSONL): CPU and device alternate on 4 pages.
    const pp = join(dir, 'pp.jsonl');
    writeFileSync(pp, formatTrace(pingPong(6, { pages: 4 }), 'jsonl'));
    const a = await run({ workload: `trace:${pp}`, policy: 'first-touch' });
    const b = await run({ workload: `trace:${pp}`, policy: 'min-lifetime' });
    expect(a.policy.thrashingEvents).toBeGreaterThan(0);
    expect(b.policy.thrashingEvents).toBe(0);
  });

  it('a bad policy is a clear error', async () => {
    await expect(runOne(config({ policy: 'no-such-policy' }), {})).rejects.toThrow(/not a built-in/);
  });
});
