/**
 * Policies by name: a built-in ("first-touch", "thrashing+tree+lfu", ...) or a user module
 * (`--policy ./my-policy.ts`). A module exports a policy object or a factory returning one, as
 * `default`, `policy` or `createPolicy`. What is wrong with it is refused with EINVAL naming the
 * module and the missing or malformed hook, before anything runs.
 *
 * Built-in grammar: BASE[+tree|+tree-fits][+EVICTION], BASE one of BUILTIN_POLICIES, EVICTION
 * one of EVICTIONS (lru | fifo | mru | lfu | random4k | sl64k). `tree-fits` is tree prefetch
 * until the device first has to evict, then none (UVM_Smart's -hwprefetch_oversub 0).
 */
import type { MigrationPolicy } from './types.js';
import {
  IPDPS20_ACCESS_COUNTERS, NVIDIA_ACCESS_COUNTERS, accessCounters, cpuDeviceBackoff, firstTouch, minLifetime,
  remoteOnly, thrashingDetection, treePrefetch, withHooks,
} from './builtins.js';
import { EVICTIONS } from './eviction.js';
import { err } from '../errors.js';

export const BUILTIN_POLICIES: Readonly<Record<string, () => MigrationPolicy>> = Object.freeze({
  'remote-only': remoteOnly,
  'first-touch': firstTouch,
  'access-counters': () => accessCounters(NVIDIA_ACCESS_COUNTERS, 'access-counters'),
  'access-counters-ipdps20': () => accessCounters(IPDPS20_ACCESS_COUNTERS, 'access-counters-ipdps20'),
  thrashing: () => thrashingDetection(),
  'min-lifetime': () => minLifetime(),
  backoff: () => cpuDeviceBackoff(),
});

/** A built-in by name, or null when `spec` is not built-in grammar. */
export function builtinPolicy(spec: string, seed = 1): MigrationPolicy | null {
  const [base, ...mods] = spec.split('+');
  const make = Object.hasOwn(BUILTIN_POLICIES, base) ? BUILTIN_POLICIES[base] : undefined;
  if (!make) return null;
  let tree = false;
  let fits = false;
  let eviction: string | undefined;
  for (const m of mods) {
    if ((m === 'tree' || m === 'tree-fits') && !tree) {
      tree = true;
      fits = m === 'tree-fits';
    } else if (Object.hasOwn(EVICTIONS, m) && eviction === undefined) eviction = m;
    else throw err('EINVAL', `policy "${spec}": unknown modifier "${m}" (tree, tree-fits, ${Object.keys(EVICTIONS).join(', ')})`);
  }
  const p = make();
  if (!tree && eviction === undefined) return p;
  return withHooks(p, {
    ...(tree ? { prefetch: treePrefetch(51, fits) } : {}),
    ...(eviction !== undefined ? { eviction: EVICTIONS[eviction](seed) } : {}),
  });
}

const OPTIONAL_HOOKS = ['cpuFault', 'migrated', 'accessCounters', 'reset', 'stats'] as const;

/** Check that `obj` is a MigrationPolicy; EINVAL naming `where` and the first thing missing. */
export function validatePolicy(obj: unknown, where: string): MigrationPolicy {
  if (typeof obj !== 'object' || obj === null) throw err('EINVAL', `${where}: not a policy object (got ${obj === null ? 'null' : typeof obj})`);
  const o = obj as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name === '') throw err('EINVAL', `${where}: missing name (a non-empty string)`);
  if (typeof o.decide !== 'function') throw err('EINVAL', `${where}: missing hook decide(group, view, out)`);
  for (const h of OPTIONAL_HOOKS) {
    if (o[h] !== undefined && typeof o[h] !== 'function') throw err('EINVAL', `${where}: hook ${h} is not a function`);
  }
  const rp = o.accessCounterRegionPages;
  if (rp !== undefined && (typeof rp !== 'number' || !Number.isSafeInteger(rp) || rp < 1 || rp > 2 ** 31)) {
    throw err('EINVAL', `${where}: accessCounterRegionPages must be a whole number of pages, 1 .. 2^31`);
  }
  const rb = o.accessCounterRequestBytes;
  if (rb !== undefined && (typeof rb !== 'number' || !Number.isSafeInteger(rb) || rb < 4 || rb > 4096 || rb % 4 !== 0)) {
    throw err('EINVAL', `${where}: accessCounterRequestBytes must be a multiple of 4 bytes, 4 .. 4096`);
  }
  if (o.prefetch !== undefined) {
    const pf = o.prefetch as Record<string, unknown>;
    if (typeof pf !== 'object' || pf === null) throw err('EINVAL', `${where}: prefetch is not an object of hooks`);
    for (const h of ['beforeCompute', 'onTreeIter']) {
      if (pf[h] !== undefined && typeof pf[h] !== 'function') throw err('EINVAL', `${where}: hook prefetch.${h} is not a function`);
    }
    if (pf.threshold !== undefined && !(typeof pf.threshold === 'number' && pf.threshold >= 0 && pf.threshold <= 100)) {
      throw err('EINVAL', `${where}: prefetch.threshold must be a percentage 0..100`);
    }
    if (pf.bigPagePages !== undefined && !(Number.isInteger(pf.bigPagePages) && (pf.bigPagePages as number) >= 1)) {
      throw err('EINVAL', `${where}: prefetch.bigPagePages must be a positive integer`);
    }
    if (pf.offOnceOversubscribed !== undefined && typeof pf.offOnceOversubscribed !== 'boolean') {
      throw err('EINVAL', `${where}: prefetch.offOnceOversubscribed must be a boolean`);
    }
  }
  if (o.eviction !== undefined) {
    const ev = o.eviction as Record<string, unknown>;
    if (typeof ev !== 'object' || ev === null) throw err('EINVAL', `${where}: eviction is not an object of hooks`);
    if (typeof ev.name !== 'string' || ev.name === '') throw err('EINVAL', `${where}: missing eviction.name`);
    for (const h of ['chunkActivate', 'chunkUsed', 'chunkFreed', 'evictionPrepare', 'pickVictim']) {
      if (ev[h] !== undefined && typeof ev[h] !== 'function') throw err('EINVAL', `${where}: hook eviction.${h} is not a function`);
    }
  }
  return obj as MigrationPolicy;
}

function looksLikePath(spec: string): boolean {
  return spec.startsWith('.') || /^(?:\/|[A-Za-z]:[\\/])/.test(spec) || /\.(m?[jt]s)$/.test(spec);
}

/**
 * A policy from a built-in name or a module path (resolved against `cwd`). `options` go to a
 * factory export; the runner puts the run's seed in them (`seed`, unless --policy-opt sets
 * one), so a module's random choices can follow the seed as the built-ins' do.
 */
export async function loadPolicy(spec: string, options: Readonly<Record<string, unknown>> = {},
  cwd?: string): Promise<MigrationPolicy> {
  if (typeof spec !== 'string' || spec === '') throw err('EINVAL', 'policy: empty specifier');
  // The run's seed (options.seed: the runner passes it) seeds a built-in's random choices (random4k's victims).
  const builtin = builtinPolicy(spec, typeof options.seed === 'number' ? options.seed : 1);
  if (builtin) return builtin;
  if (!looksLikePath(spec)) {
    throw err('EINVAL', `policy "${spec}": not a built-in (${Object.keys(BUILTIN_POLICIES).join(', ')}) nor a module path`);
  }
  // Node's path, url and fs only for a path (load-module.ts, imported here): a built-in must
  // load where there is no process (the lab's worker, the browser's test runner).
  const { importPolicyModule } = await import('./load-module.js');
  return policyFromModule(await importPolicyModule(spec, cwd), spec, options);
}

/**
 * The policy a loaded module exports (default, policy or createPolicy; a factory is called
 * with `options`), checked. Shared with the lab's worker, which imports a user's module from
 * a Blob URL (src/lab/policy-module.ts).
 */
export function policyFromModule(mod: Record<string, unknown>, spec: string, options: Readonly<Record<string, unknown>> = {}): MigrationPolicy {
  const exp = mod.default ?? mod.policy ?? mod.createPolicy;
  if (exp === undefined) {
    throw err('EINVAL', `policy module ${spec}: missing export (default, policy or createPolicy)`);
  }
  let obj: unknown = exp;
  if (typeof exp === 'function') {
    try {
      obj = (exp as (o: Readonly<Record<string, unknown>>) => unknown)(options);
    } catch (e) {
      throw err('EINVAL', `policy module ${spec}: factory threw: ${(e as Error).message}`);
    }
  }
  return validatePolicy(obj, `policy module ${spec}`);
}
