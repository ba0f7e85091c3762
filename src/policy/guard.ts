/**
 * A policy behind a guard: every hook a user's policy has is called through a wrapper that
 * turns an exception into a kernel-style error naming the policy and the hook, and checks
 * what the hook answered before the engine acts on it (an action outside the four, a NaN or
 * infinite `until`, a page outside the range, a victim chunk not on the list).
 *
 * The model is a BPF struct_ops program under the verifier and the kernel's own checks: a
 * program that misbehaves does not take the kernel down with it, its answer is replaced by
 * the default the kernel would have used without it, and the fault is reported. So:
 *   decide             throws or answers nonsense: PolicyError at once (nothing has moved
 *                      yet: the engine asks before it touches the residency);
 *   cpuFault           the CPU's fault is the process's own: the page still comes home (the
 *                      default, MIGRATE), the failure is recorded and the run ends at the next
 *                      decide (a safe point: between batches);
 *   pickVictim, the eviction and prefetch hooks, migrated, accessCounters, stats:
 *                      mid-move hooks; the default is used (the list head, no prefetch, no
 *                      counter migrations), the failure recorded and raised at the next decide,
 *                      so the residency's bookkeeping stays true and device memory is never
 *                      over-committed.
 * `failure` holds the first failure; the runner marks the run failed with it.
 */
import { HmmError } from '../errors.js';
import type {
  AccessCounterBatch, ChunkList, CpuFaultBatch, Decisions, EvictionHooks, FaultGroup, MigrationBatch, MigrationPolicy, PageSink,
  PrefetchAction, PrefetchContext, PrefetchHooks, Region, ResidencyView, TreeNode,
} from './types.js';
import { DECIDE_MIGRATE, DECIDE_PIN, DECIDE_THROTTLE, PREFETCH_BYPASS, PREFETCH_DEFAULT, PREFETCH_ENTER_LOOP } from './types.js';

/**
 * The longest nap a THROTTLE or PIN may ask for, ns of virtual time (1000 s). UVM's own
 * throttling naps are microseconds to milliseconds (uvm_perf_thrashing: lapse 500 µs, nap
 * 1 ms); anything past this is a bug that would run the clock to Infinity.
 */
export const MAX_UNTIL_AHEAD_NS = 1e12;

/** A hook failed: what the policy is, which hook, what went wrong (EINVAL). */
export class PolicyError extends HmmError {
  readonly policy: string;
  readonly hook: string;
  constructor(policy: string, hook: string, what: string) {
    super('EINVAL', `policy "${policy}": hook ${hook} ${what}`);
    this.name = 'PolicyError';
    this.policy = policy;
    this.hook = hook;
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}`;
  return String(e);
}

/** The guarded policy: a MigrationPolicy with the first failure of its hooks. */
export interface GuardedPolicy extends MigrationPolicy {
  readonly guarded: MigrationPolicy;
  /** The first hook failure (null while the policy behaves). */
  readonly failure: PolicyError | null;
}

export function isGuarded(p: MigrationPolicy): p is GuardedPolicy {
  return (p as Partial<GuardedPolicy>).guarded !== undefined;
}

/** Check one answer slot: action in the hook's set, until finite and within MAX_UNTIL_AHEAD_NS. */
function checkDecision(out: Decisions, i: number, now: number, allowed: (a: number) => boolean): string | null {
  const a = out.action[i];
  if (!allowed(a)) return `returned action ${a} for entry ${i}`;
  const u = out.until[i];
  if (!Number.isFinite(u) || u < 0) return `returned until ${u} for entry ${i} (a time in ns, finite, ≥ 0)`;
  if ((a === DECIDE_THROTTLE || a === DECIDE_PIN) && u - now > MAX_UNTIL_AHEAD_NS) {
    return `returned until ${u} for entry ${i}, ${((u - now) / 1e9).toFixed(0)} s ahead (at most ${MAX_UNTIL_AHEAD_NS / 1e9} s)`;
  }
  return null;
}

const ANY_ACTION = (a: number): boolean => a >= 0 && a <= 3 && Number.isInteger(a);

/** Wrap `p` (idempotent: a guarded policy is returned as it is). */
export function guardPolicy(p: MigrationPolicy): GuardedPolicy {
  if (isGuarded(p)) return p;
  const name = p.name;
  let failure: PolicyError | null = null;
  const fail = (hook: string, what: string): PolicyError => {
    const e = new PolicyError(name, hook, what);
    failure ??= e;
    return e;
  };
  /** Run a hook; an exception becomes a PolicyError (recorded) and `onThrow` answers. */
  const call = <T>(hook: string, f: () => T, onThrow: () => T, raise: boolean): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof PolicyError) throw e;
      const pe = fail(hook, `threw: ${describe(e)}`);
      if (raise) throw pe;
      return onThrow();
    }
  };

  const g: GuardedPolicy = {
    name,
    guarded: p,
    get failure() {
      return failure;
    },
    decide(group: FaultGroup, view: ResidencyView, out: Decisions): void {
      // A failure recorded mid-move surfaces here, before anything of this batch moves.
      if (failure !== null) throw failure;
      try {
        p.decide(group, view, out);
      } catch (e) {
        if (e instanceof PolicyError) throw e;
        throw fail('decide', `threw: ${describe(e)}`);
      }
      const { action, until } = out;
      const now = group.now;
      for (let i = 0; i < group.count; i++) {
        // The common answer checked inline (an action of the four, a finite until ≥ 0 within
        // MAX_UNTIL_AHEAD_NS of a nap); anything else goes through checkDecision for its message.
        const a = action[i];
        const u = until[i];
        if (a <= 3 && u >= 0 && u < Infinity && ((a !== DECIDE_THROTTLE && a !== DECIDE_PIN) || u - now <= MAX_UNTIL_AHEAD_NS)) continue;
        const bad = checkDecision(out, i, now, ANY_ACTION);
        if (bad !== null) throw fail('decide', bad);
      }
    },
    ...(p.accessCounterRegionPages !== undefined ? { accessCounterRegionPages: p.accessCounterRegionPages } : {}),
    ...(p.reset ? { reset: () => call('reset', () => p.reset!(), () => undefined, true) } : {}),
  };
  const mut = g as { -readonly [K in keyof GuardedPolicy]: GuardedPolicy[K] };
  if (p.cpuFault) {
    mut.cpuFault = (batch: CpuFaultBatch, view: ResidencyView, out: Decisions): void => {
      let ok = true;
      call('cpuFault', () => p.cpuFault!(batch, view, out), () => { ok = false; }, false);
      for (let i = 0; ok && i < batch.count; i++) {
        // REMOTE is taken as MIGRATE (types.ts); anything else is not an answer.
        const bad = checkDecision(out, i, batch.now, ANY_ACTION);
        if (bad !== null) {
          fail('cpuFault', bad);
          ok = false;
        }
      }
      if (!ok) {
        // The process's own fault: the page comes home as without a policy.
        out.action.fill(DECIDE_MIGRATE, 0, batch.count);
        out.until.fill(0, 0, batch.count);
      }
    };
  }
  if (p.migrated) {
    mut.migrated = (batch: MigrationBatch, view: ResidencyView): void => {
      call('migrated', () => p.migrated!(batch, view), () => undefined, false);
    };
  }
  if (p.accessCounters) {
    mut.accessCounters = (batch: AccessCounterBatch, view: ResidencyView, out: PageSink): void => {
      const pushed: number[] = [];
      let ok = true;
      call('accessCounters', () => p.accessCounters!(batch, view, { push: (page: number) => { pushed.push(page); } }), () => { ok = false; }, false);
      for (const page of pushed) {
        if (!ok) break;
        if (!Number.isInteger(page) || page < 0 || page >= view.pageCount) {
          fail('accessCounters', `pushed page ${page}, outside the range (0 .. ${view.pageCount - 1})`);
          ok = false;
        }
      }
      if (ok) for (const page of pushed) out.push(page);
    };
  }
  if (p.stats) {
    mut.stats = (): Readonly<Record<string, number>> => call('stats', () => {
      const s = p.stats!();
      if (typeof s !== 'object' || s === null) throw fail('stats', `returned ${s === null ? 'null' : typeof s}, not a record of numbers`);
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(s)) {
        if (typeof v !== 'number') throw fail('stats', `returned ${k}: ${typeof v}, not a number`);
        out[k] = v;
      }
      return out;
    }, () => ({}), false);
  }
  if (p.prefetch) mut.prefetch = guardPrefetch(p.prefetch, call, fail);
  if (p.eviction) mut.eviction = guardEviction(p.eviction, call, fail);
  return g;
}

type Call = <T>(hook: string, f: () => T, onThrow: () => T, raise: boolean) => T;
type Fail = (hook: string, what: string) => PolicyError;

function guardPrefetch(h: PrefetchHooks, call: Call, fail: Fail): PrefetchHooks {
  const out: { -readonly [K in keyof PrefetchHooks]: PrefetchHooks[K] } = {
    ...(h.threshold !== undefined ? { threshold: h.threshold } : {}),
    ...(h.bigPagePages !== undefined ? { bigPagePages: h.bigPagePages } : {}),
    ...(h.offOnceOversubscribed !== undefined ? { offOnceOversubscribed: h.offOnceOversubscribed } : {}),
  };
  if (h.beforeCompute) {
    out.beforeCompute = (ctx: PrefetchContext, result: Region): PrefetchAction => {
      const a = call('prefetch.beforeCompute', () => h.beforeCompute!(ctx, result), () => PREFETCH_DEFAULT as PrefetchAction, false);
      if (a !== PREFETCH_DEFAULT && a !== PREFETCH_BYPASS && a !== PREFETCH_ENTER_LOOP) {
        fail('prefetch.beforeCompute', `returned ${String(a)} (PREFETCH_DEFAULT, _BYPASS or _ENTER_LOOP)`);
        return PREFETCH_DEFAULT;
      }
      if (a === PREFETCH_BYPASS) {
        const m = ctx.maxRegion;
        if (!Number.isInteger(result.first) || !Number.isInteger(result.outer) || result.first < m.first || result.outer > m.outer || result.first > result.outer) {
          fail('prefetch.beforeCompute', `bypassed with region [${result.first}, ${result.outer}), not within [${m.first}, ${m.outer})`);
          return PREFETCH_DEFAULT;
        }
      }
      return a;
    };
  }
  if (h.onTreeIter) {
    out.onTreeIter = (ctx: PrefetchContext, node: TreeNode): boolean => call('prefetch.onTreeIter', () => h.onTreeIter!(ctx, node) === true, () => false, false);
  }
  return out;
}

function guardEviction(h: EvictionHooks, call: Call, fail: Fail): EvictionHooks {
  const hook = (n: 'chunkActivate' | 'chunkUsed') => (device: number, chunk: number, now: number, list: ChunkList): void => {
    call(`eviction.${n}`, () => h[n]!(device, chunk, now, list), () => undefined, false);
  };
  const out: { -readonly [K in keyof EvictionHooks]: EvictionHooks[K] } = { name: h.name };
  if (h.chunkActivate) out.chunkActivate = hook('chunkActivate');
  if (h.chunkUsed) out.chunkUsed = hook('chunkUsed');
  if (h.chunkFreed) out.chunkFreed = (device: number, chunk: number): void => call('eviction.chunkFreed', () => h.chunkFreed!(device, chunk), () => undefined, false);
  if (h.evictionPrepare) {
    out.evictionPrepare = (device: number, now: number, list: ChunkList): void => call('eviction.evictionPrepare', () => h.evictionPrepare!(device, now, list), () => undefined, false);
  }
  // The default victim (pick_root_chunk_to_evict): the first chunk from the head not busy.
  const headVictim = (list: ChunkList, busy: ReadonlySet<number>): number => {
    for (let c = list.head(); c >= 0; c = list.next(c)) if (!busy.has(c)) return c;
    return -1;
  };
  // pickVictim is always guarded when the policy has one: a bad pick falls back to the head.
  if (h.pickVictim) {
    out.pickVictim = (device: number, now: number, list: ChunkList, busy: ReadonlySet<number>, full: (chunk: number) => boolean): number => {
      let threw = false;
      let v = call('eviction.pickVictim', () => h.pickVictim!(device, now, list, busy, full), () => { threw = true; return -1; }, false);
      if (threw) return headVictim(list, busy);
      // -1: the policy declines to evict (the page is then mapped remotely).
      if (v !== -1 && (!Number.isInteger(v) || !list.has(v) || busy.has(v))) {
        fail('eviction.pickVictim', `picked chunk ${v}, not an evictable chunk on the list`);
        v = headVictim(list, busy);
      }
      return v;
    };
  }
  // The sub-chunk granularity (UVM_Smart's random-4K, SL-64K) and its page pick: a pick that
  // throws or names a page not resident in the chunk falls back to the chunk's first resident page.
  if (h.granularityPages !== undefined) out.granularityPages = h.granularityPages;
  if (h.pickInChunk) {
    out.pickInChunk = (device: number, chunk: number, resident: readonly number[], now: number): number => {
      let threw = false;
      const p = call('eviction.pickInChunk', () => h.pickInChunk!(device, chunk, resident, now), () => { threw = true; return resident[0]; }, false);
      if (threw) return resident[0];
      if (!resident.includes(p)) {
        fail('eviction.pickInChunk', `picked page ${p}, not resident in chunk ${chunk}`);
        return resident[0];
      }
      return p;
    };
  }
  return out;
}
