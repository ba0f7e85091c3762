/**
 * Batch spans (issue 18): the driver's batch service records its parts — fetch, mmap lock
 * wait and hold, coalesce, policy, migration, hmm_range_fault, mirror update — as spans in
 * each batch record (src/driver/phases.ts), and the Perfetto export nests them in the batch's
 * slice. Real runs on the GPU (Dawn), the spans checked against the record's own figures.
 */
import { describe, expect, it } from 'vitest';
import { BASE_CONFIG } from '../../src/experiment/schema.js';
import { runOne } from '../../src/experiment/runner.js';
import type { RunConfig, RunResult } from '../../src/experiment/types.js';
import { MAX_BATCH_SPANS } from '../../src/driver/phases.js';
import { SERVICE_PHASES, type ServicePhase } from '../../src/driver/records.js';
import { checkTraceEvents, toPerfetto, type TraceEvent } from '../../src/trace/perfetto.js';

const config = (c: Partial<RunConfig>): RunConfig => ({ preset: 'test', ...BASE_CONFIG, workload: 'stream', sizeMiB: 0.5, window: 65536, batchSize: 16, ...c });
const EPS = 1e-6;

function phasesSeen(r: RunResult): Set<ServicePhase> {
  return new Set(r.records.flatMap((x) => (x.spans ?? []).map((s) => s.phase)));
}

/** Every span inside its batch's service; the batch-lock parts inside the hold; totals agree. */
function checkSpans(r: RunResult, batchLock: boolean): void {
  expect(r.records.length).toBeGreaterThan(1);
  for (const rec of r.records) {
    const spans = rec.spans!;
    expect(spans.length).toBeGreaterThan(0);
    expect(spans.length).toBeLessThanOrEqual(MAX_BATCH_SPANS + 1);
    expect(spans[0].phase).toBe('fetch');
    for (const s of spans) {
      expect(SERVICE_PHASES).toContain(s.phase);
      expect(s.start).toBeGreaterThanOrEqual(-EPS);
      expect(s.end).toBeGreaterThanOrEqual(s.start);
      expect(s.end).toBeLessThanOrEqual(rec.serviceMs + EPS);
    }
    // The totals per part cover at least the spans kept.
    for (const p of SERVICE_PHASES) {
      const kept = spans.filter((s) => s.phase === p).reduce((n, s) => n + s.end - s.start, 0);
      expect(rec.phaseMs![p] ?? 0).toBeGreaterThanOrEqual(kept - EPS);
    }
    expect(rec.phaseMs!['mmap lock wait'] ?? 0).toBeCloseTo(batchLock ? rec.mmapLockWaitMs : 0, 6);
    const held = spans.filter((s) => s.phase === 'mmap lock held');
    if (batchLock) {
      expect(held).toHaveLength(1);
      expect(held[0].end - held[0].start).toBeCloseTo(rec.mmapLockHoldMs, 6);
      for (const s of spans) {
        if (s.phase === 'fetch' || s.phase === 'mmap lock wait' || s.phase === 'mmap lock held') continue;
        expect(s.start).toBeGreaterThanOrEqual(held[0].start - EPS);
        expect(s.end).toBeLessThanOrEqual(held[0].end + EPS);
      }
    } else {
      expect(held).toHaveLength(0);
    }
  }
}

/** Perfetto: each batch slice's service slices lie within it, and there are some of each part named. */
function checkNesting(r: RunResult, want: readonly ServicePhase[]): void {
  const tf = toPerfetto([{ result: r }], 'wall');
  expect(checkTraceEvents(tf)).toEqual([]);
  const xs = tf.traceEvents.filter((e) => e.ph === 'X' && e.tid === 1);
  const batches = xs.filter((e) => e.cat === 'fault');
  const parts = xs.filter((e) => e.cat === 'service');
  expect(batches).toHaveLength(r.records.length);
  const within = (c: TraceEvent, p: TraceEvent): boolean => c.ts >= p.ts - EPS && c.ts + c.dur! <= p.ts + p.dur! + EPS;
  for (const c of parts) expect(batches.filter((b) => within(c, b))).toHaveLength(1);
  // The parts under the batch's lock nest in its "mmap lock held" slice.
  for (const held of parts.filter((c) => c.name === 'mmap lock held')) {
    const b = batches.find((x) => within(held, x))!;
    const locked = parts.filter((c) => within(c, b) && c !== held && c.name !== 'fetch' && c.name !== 'mmap lock wait');
    expect(locked.length).toBeGreaterThan(0);
    for (const c of locked) expect(within(c, held)).toBe(true);
  }
  const names = new Set(parts.map((c) => c.name));
  for (const p of want) expect(names).toContain(p);
}

describe('batch service spans', () => {
  it('seq: fetch, lock wait, hold, and inside it coalesce, hmm_range_fault, mirror update; Perfetto nests them', async () => {
    const r = await runOne(config({ protocol: 'seq' }), {});
    expect(r.ok).toBe(true);
    checkSpans(r, true);
    const seen = phasesSeen(r);
    for (const p of ['fetch', 'mmap lock wait', 'mmap lock held', 'coalesce', 'hmm_range_fault', 'mirror update'] as const) expect(seen).toContain(p);
    expect(seen).not.toContain('migration');
    checkNesting(r, ['fetch', 'mmap lock held', 'coalesce', 'hmm_range_fault', 'mirror update']);
  });

  it('valid-flag takes no batch lock: no wait or hold spans, the rest as seq', async () => {
    const r = await runOne(config({ protocol: 'valid-flag', writeFraction: 0 }), {});
    expect(r.ok).toBe(true);
    checkSpans(r, false);
    const seen = phasesSeen(r);
    expect(seen).toContain('hmm_range_fault');
    expect(seen).toContain('mirror update');
  });

  it('a migration policy adds policy and migration spans under the lock', async () => {
    const r = await runOne(config({ policy: 'first-touch', oversub: 1.5 }), {});
    expect(r.ok).toBe(true);
    checkSpans(r, true);
    const seen = phasesSeen(r);
    expect(seen).toContain('policy');
    expect(seen).toContain('migration');
    checkNesting(r, ['policy', 'migration', 'coalesce']);
  });
});
