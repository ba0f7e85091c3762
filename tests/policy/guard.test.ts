/**
 * The policy guard (src/policy/guard.ts): a hook that throws or answers nonsense becomes a
 * PolicyError naming the policy and the hook; the engine's bookkeeping stays true, device
 * memory is never over-committed, the clock stays finite, and a CPU fault still comes home.
 */
import { describe, expect, it } from 'vitest';
import { guardPolicy, isGuarded, MAX_UNTIL_AHEAD_NS, PolicyError } from '../../src/policy/guard.js';
import { builtinPolicy } from '../../src/policy/loader.js';
import {
  ACCESS_READ, CPU, DECIDE_MIGRATE, DECIDE_THROTTLE, PolicyEngine, type MigrationPolicy,
} from '../../src/policy/index.js';

const CP = 4;

function engine(p: MigrationPolicy, pages = 4 * CP, capacityPages = 2 * CP): PolicyEngine {
  return new PolicyEngine(guardPolicy(p), { pages, capacityPages, chunkPages: CP });
}

/** One fault group, its plan committed as done (the simulator's way). */
function group(e: PolicyEngine, pages: number[], now = 0): ReturnType<PolicyEngine['serviceGroup']> {
  const r = e.serviceGroup(0, Float64Array.from(pages), new Uint8Array(pages.length).fill(ACCESS_READ), pages.length, pages.length, now);
  e.commit(r.plan);
  return r;
}

function errorOf(f: () => unknown): PolicyError {
  try {
    f();
  } catch (e) {
    if (e instanceof PolicyError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

describe('guardPolicy', () => {
  it('a throwing decide is EINVAL naming the policy and the hook; nothing moved', () => {
    const e = engine({ name: 'boom', decide() { throw new TypeError('oops'); } });
    const pe = errorOf(() => group(e, [0, 1]));
    expect(pe.code).toBe('EINVAL');
    expect(pe.message).toBe('EINVAL: policy "boom": hook decide threw: TypeError: oops');
    expect(pe.policy).toBe('boom');
    expect(pe.hook).toBe('decide');
    expect(e.residency.location(0)).toBe(CPU);
    expect(e.residency.stats.migrationsToDevice).toBe(0);
  });

  it.each([
    ['an action outside the four', (out: { action: Uint8Array; until: Float64Array }) => { out.action[0] = 9; }, /returned action 9/],
    ['an infinite throttle', (out: { action: Uint8Array; until: Float64Array }) => { out.action[0] = DECIDE_THROTTLE; out.until[0] = Infinity; }, /until Infinity/],
    ['a NaN until', (out: { action: Uint8Array; until: Float64Array }) => { out.until[0] = NaN; }, /until NaN/],
    ['a throttle 30 years ahead', (out: { action: Uint8Array; until: Float64Array }) => { out.action[0] = DECIDE_THROTTLE; out.until[0] = 1e18; }, /s ahead/],
  ])('decide answering %s is refused before anything moves', (_what, bad, msg) => {
    const e = engine({ name: 'bad', decide: (_g, _v, out) => bad(out) });
    expect(() => group(e, [0])).toThrow(msg);
    expect(e.residency.location(0)).toBe(CPU);
    expect(e.stats.throttles).toBe(0);
  });

  it('a throttle up to the bound is taken', () => {
    const e = engine({ name: 'nap', decide: (_g, _v, out) => { out.action[0] = DECIDE_THROTTLE; out.until[0] = MAX_UNTIL_AHEAD_NS; } });
    expect(group(e, [0]).throttleUntil).toBe(MAX_UNTIL_AHEAD_NS);
  });

  it('a throwing cpuFault still brings the page home; the failure is raised at the next decide', () => {
    const e = engine({ name: 'cpu-boom', decide() {}, cpuFault() { throw new Error('no'); } });
    group(e, [0]);
    expect(e.residency.location(0)).toBe(0);
    const r = e.serviceCpuFault(0, ACCESS_READ, 10);
    e.commit(r.plan);
    expect(r.action).toBe(DECIDE_MIGRATE);
    expect(e.residency.location(0)).toBe(CPU);
    const g = e.policy;
    expect(isGuarded(g) && g.failure?.message).toBe('EINVAL: policy "cpu-boom": hook cpuFault threw: no');
    expect(() => group(e, [1])).toThrow(/hook cpuFault threw/);
    expect(e.residency.location(1)).toBe(CPU);
  });

  it('a cpuFault answering an infinite throttle is taken as MIGRATE (the clock never reaches Infinity)', () => {
    const e = engine({ name: 'cpu-inf', decide() {}, cpuFault: (_b, _v, out) => { out.action[0] = DECIDE_THROTTLE; out.until[0] = Infinity; } });
    group(e, [0]);
    const r = e.serviceCpuFault(0, ACCESS_READ, 10);
    e.commit(r.plan);
    expect(r.action).toBe(DECIDE_MIGRATE);
    expect(Number.isFinite(r.until)).toBe(true);
    expect(e.residency.location(0)).toBe(CPU);
  });

  it('keeps a sub-chunk eviction (random-4K frees one page, not the chunk) and tree-fits\' switch through the guard', () => {
    // The guard once dropped granularityPages and pickInChunk: random-4K and SL-64K then evicted whole chunks on the real path.
    const g = guardPolicy(builtinPolicy('first-touch+tree-fits+random4k')!);
    expect(g.eviction!.granularityPages).toBe(1);
    expect(g.prefetch!.offOnceOversubscribed).toBe(true);
    const e = engine(builtinPolicy('first-touch+random4k')!, 4 * CP, 2 * CP);
    group(e, [0, 1, 2, 3, CP, CP + 1, CP + 2, CP + 3]);
    group(e, [2 * CP]); // needs one page of room
    let home = 0;
    for (let p = 0; p < 2 * CP; p++) if (e.residency.location(p) === CPU) home++;
    expect(home).toBe(1);
  });

  it('a NaN victim falls back to the list head: device memory is never over-committed', () => {
    const e = engine({ name: 'nan-victim', decide() {}, eviction: { name: 'nan', pickVictim: () => NaN } }, 4 * CP, CP);
    group(e, [0, 1, 2, 3]);
    group(e, [CP]); // needs room: the victim
    expect(e.residency.freePages(0)).toBeGreaterThanOrEqual(0);
    let onDevice = 0;
    for (let p = 0; p < 4 * CP; p++) if (e.residency.location(p) === 0) onDevice++;
    expect(onDevice).toBeLessThanOrEqual(CP);
    expect(e.residency.location(CP)).toBe(0);
    expect(() => group(e, [2 * CP])).toThrow(/hook eviction\.pickVictim picked chunk NaN/);
  });

  it('an out-of-range access-counter page is refused and nothing migrates', () => {
    const e = engine({
      name: 'ac', decide: (_g, _v, out) => { out.action.fill(0); },
      accessCounters: (_b, _v, out) => { out.push(1e9); },
    });
    group(e, [0]); // REMOTE: counted
    e.residency.touchDevice(0, 0, 1);
    e.commit(e.serviceAccessCounters(0, 2).plan);
    expect(e.stats.accessCounterMigrations).toBe(0);
    expect(() => group(e, [1])).toThrow(/hook accessCounters pushed page 1000000000/);
  });

  it('a throwing stats() gives no figures and is a failure, not an exception', () => {
    const g = guardPolicy({ name: 's', decide() {}, stats() { throw new Error('x'); } });
    expect(g.stats?.()).toEqual({});
    expect(g.failure?.hook).toBe('stats');
  });

  it('keeps the optional hooks a policy lacks absent (no access counters, no prefetch)', () => {
    const g = guardPolicy({ name: 'plain', decide() {} });
    expect(g.accessCounters).toBeUndefined();
    expect(g.prefetch).toBeUndefined();
    expect(g.eviction).toBeUndefined();
    expect(guardPolicy(g)).toBe(g);
  });
});
