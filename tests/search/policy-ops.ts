/**
 * The concurrency search's policy path (issue 19): a seeded "chaos" migration policy that
 * exercises every decision the driver performs for a policy — migrations, remote maps with
 * and without a lease, throttles, pins, access-counter migrations, CPU faults home (migrated,
 * throttled, pinned) and random eviction under oversubscription — and the invariant checked
 * at quiescence: the policy's residency (its record of where pages live) agrees with the CPU
 * page table (a page it places on its device is a device-private entry of that device there,
 * and every such entry is one it places there).
 *
 * Every choice comes from the case's own PRNG (mulberry32 of the policy seed), so a case
 * replays exactly under its scheduler seed.
 */
import fc from 'fast-check';
import type { Dmirror } from '../../src/driver/dmirror.js';
import type { PolicyPath } from '../../src/driver/policy-path.js';
import { PAGE_SIZE, type Process } from '../../src/index.js';
import { isDevicePrivate } from '../../src/mm/page-table.js';
import { entryAt } from '../../src/mm/pagewalk.js';
import { random4kEviction } from '../../src/policy/eviction.js';
import { CPU, DECIDE_MIGRATE, DECIDE_PIN, DECIDE_REMOTE, DECIDE_THROTTLE, type MigrationPolicy } from '../../src/policy/types.js';
import { mulberry32 } from '../../src/sched/seeded.js';

/** How a case's policies are made (one policy object per attached mirror, each from `seed`). */
export interface PolicyCfg {
  /** The policies' PRNG seed (decisions, victims). */
  seed: number;
  /** Device memory the policy may fill, in pages: below the range's pages it must evict. */
  capacity: number;
  /** Eviction chunk, in pages (1: a page at a time; 512: UVM's 2 MiB root chunk, the whole range). */
  chunkPages: number;
  /** Random 4K eviction (a seeded victim) or the default LRU of chunks. */
  randomEviction: boolean;
  /** Tree prefetch on. */
  prefetch: boolean;
}

export const policyCfgArb: fc.Arbitrary<PolicyCfg> = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  capacity: fc.constantFrom(1, 2, 3, 4),
  chunkPages: fc.constantFrom(1, 2, 512),
  randomEviction: fc.boolean(),
  prefetch: fc.boolean(),
});

/** Per decision: what the chaos policy answers (REMOTE with a lease half the time). */
const THROTTLE_NS = 20_000;
const PIN_NS = 200_000;

/**
 * The chaos policy: each page of each group is migrated (45 %), mapped remotely (20 %, half of
 * them with a lease that lapses), throttled (15 %, never more than twice in a row for a page:
 * the replay must make progress) or pinned (20 %); a CPU fault brings the page home (60 %),
 * throttles the CPU (20 %) or brings it home pinned (20 %); each access-counter readout
 * migrates half the counted regions.
 */
export function chaosPolicy(cfg: PolicyCfg, which: number): MigrationPolicy & { decisions: Record<string, number> } {
  const rnd = mulberry32((cfg.seed ^ Math.imul(which + 1, 0x9e3779b9)) >>> 0);
  const throttledRun = new Map<number, number>();
  const decisions: Record<string, number> = { migrate: 0, remote: 0, lease: 0, throttle: 0, pin: 0, cpuHome: 0, cpuThrottle: 0, cpuPin: 0, counted: 0 };
  const policy: MigrationPolicy & { decisions: Record<string, number> } = {
    name: `chaos-${which}`,
    decisions,
    accessCounterRequestBytes: 4,
    decide(g, _v, out) {
      for (let i = 0; i < g.count; i++) {
        const p = g.pages[i];
        const x = rnd();
        const run = throttledRun.get(p) ?? 0;
        if (x < 0.15 && run < 2) {
          throttledRun.set(p, run + 1);
          out.action[i] = DECIDE_THROTTLE;
          out.until[i] = g.now + THROTTLE_NS;
          decisions.throttle++;
          continue;
        }
        throttledRun.delete(p);
        if (x < 0.35) {
          out.action[i] = DECIDE_PIN;
          out.until[i] = g.now + PIN_NS;
          decisions.pin++;
        } else if (x < 0.55) {
          out.action[i] = DECIDE_REMOTE;
          const lease = rnd() < 0.5;
          out.until[i] = lease ? g.now + 1 : 0; // a lease lapses by the command's end: the entry goes
          decisions[lease ? 'lease' : 'remote']++;
        } else {
          out.action[i] = DECIDE_MIGRATE;
          decisions.migrate++;
        }
      }
    },
    cpuFault(b, _v, out) {
      for (let i = 0; i < b.count; i++) {
        const x = rnd();
        if (x < 0.2) {
          out.action[i] = DECIDE_THROTTLE;
          out.until[i] = b.now + THROTTLE_NS;
          decisions.cpuThrottle++;
        } else if (x < 0.4) {
          out.action[i] = DECIDE_PIN;
          out.until[i] = b.now + PIN_NS;
          decisions.cpuPin++;
        } else {
          decisions.cpuHome++;
        }
      }
    },
    accessCounters(b, v, out) {
      for (let i = 0; i < b.count; i++) {
        if (rnd() < 0.5 && v.location(b.pages[i]) === CPU && !v.pinned(b.pages[i])) {
          out.push(b.pages[i]);
          decisions.counted++;
        }
      }
    },
    ...(cfg.prefetch ? { prefetch: { threshold: 51, bigPagePages: 2 } } : {}),
    ...(cfg.randomEviction ? { eviction: random4kEviction((cfg.seed * 7 + which) >>> 0) } : {}),
  };
  return policy;
}

/**
 * The residency against the CPU page table, page by page: [] when they agree, else one line a
 * disagreement. `path.view()` first applies what the invalidations told it (as before any
 * decision). Pages of an exited process are all home by definition.
 */
export function residencyDisagreements(path: PolicyPath, mirror: Dmirror, proc: Process, base: number, npages: number): string[] {
  const res = path.view();
  const out: string[] = [];
  for (let p = 0; p < npages; p++) {
    const e = proc.mm.exited ? null : entryAt(proc.mm, base + p * PAGE_SIZE);
    const onDev = e !== null && isDevicePrivate(e.flags) && mirror.device.devmem.pagemap.contains(e.pfn);
    const claimed = res.location(p) === path.device;
    if (onDev !== claimed) {
      out.push(`page ${p}: the residency says ${claimed ? 'on the device' : 'in system memory'}, the CPU table ${onDev ? `maps device pfn ${e?.pfn}` : e === null ? 'maps nothing' : `maps pfn ${e.pfn}`}`);
    }
  }
  return out;
}
