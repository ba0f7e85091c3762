/**
 * The concurrency search's harness: a generated program (a few threads of CPU operations and
 * device commands, over two processes and two mirror devices) run on a fresh machine under a
 * SeededScheduler — the case's seed decides the interleaving, GPU completions included — with
 * the invariants checked after every operation and at quiescence:
 *
 *  (a) a device read returns, word for word, only values the page held during the read (every
 *      write, by the CPU or a device, stores a value no other write stores: `History`);
 *  (b) no mirror entry maps a frame or device page the CPU does not map at that address with
 *      at least that permission (a CPU migration entry excepted: a migration in flight, whose
 *      migrating mirror maps the new page before migrate_vma_finalize, as test_hmm's
 *      dmirror_migrate_finalize_and_map does);
 *  (c) nothing of one process is reachable from another's mirror (no entry of P's mirror maps
 *      a page only another process maps);
 *  (d) frames and device pages are accounted for (checkFrameAccounting: refcounts, and free
 *      frames zeroed), and at quiescence every allocated device page is mapped by a CPU entry.
 *  (e) at quiescence, each attached migration policy's residency (its record of where pages
 *      live) agrees with the CPU page table (policy-ops.ts: residencyDisagreements).
 *
 * A third of the cases run the policy path (policyCaseArb): seeded chaos policies attached to
 * some mirrors (migrations, remote maps, throttles, pins, access-counter migrations, CPU
 * faults home, random eviction past a small capacity), device memory that runs out, mirrors
 * as a plain open() user gets them (test_hmm's dmirror_fault servicer), and the exit of a
 * mirrored process; `reached` says which of these a case got to.
 *
 * Everything goes through the public API (a machine from tests/support/teardown.ts's
 * standaloneMachine: createMachine, ended with the test fixtures' leak check;
 * devices[i].open(proc), Process and Mirror methods); the read-only inspection of a mirror's table (inspectMirror) reads the
 * driver's engine state under the mirror's update lock, as Dmirror.audit does.
 *
 * Used by tests/search/concurrency-search.test.ts (a fixed number of cases in `npm test`) and
 * scripts/soak.ts (`npm run soak`: a hundred times more).
 */
import { forge } from '../support/forge.js';
import fc from 'fast-check';
import { PTE_DEVICE, PTE_EXCLUSIVE, PTE_WRITE } from '../../src/device/page-table.js';
import type { Dmirror } from '../../src/driver/dmirror.js';
import type { DmirrorDevice } from '../../src/driver/dmirror-device.js';
import type { RetryProtocol } from '../../src/driver/retry.js';
import {
  HmmError, MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MREMAP_DONTUNMAP,
  MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SIZE, PROT_READ, PROT_WRITE, SegmentationFault, type Process,
} from '../../src/index.js';
import { checkFrameAccounting } from '../../src/mm/accounting.js';
import type { MmStruct } from '../../src/mm/mm.js';
import {
  isDeviceExclusive, isDevicePrivate, isMigration, isPresent, pmdIndex, pteIndex, PTE_PROTNONE,
  PTE_WRITE as CPU_PTE_WRITE, swpWritable,
} from '../../src/mm/page-table.js';
import { SeededScheduler } from '../../src/sched/seeded.js';
import { takeUncapturedErrors } from '../../src/device/gpu.js';
import type { PolicyPath } from '../../src/driver/policy-path.js';
import { chaosPolicy, policyCfgArb, residencyDisagreements, type PolicyCfg } from './policy-ops.js';
import { standaloneMachine } from '../support/teardown.js';

export type Protocol = Extract<RetryProtocol, 'seq' | 'lock-fallback' | 'valid-flag'>;
export const PROTOCOLS: readonly Protocol[] = ['seq', 'lock-fallback', 'valid-flag'];

/** Pages of each process's buffer (small: the GPU is llvmpipe on two shared cores). */
export const NPAGES = 4;
const BASE = 0x1000_0000;
/** The THP region of a case with THP operations: one 2 MiB-aligned, THP-enabled block. */
export const THP_PAGES = 512;
const THP_BASE = 0x2000_0000;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

// ---------------------------------------------------------------------------------------
// Programs.

type Proc = 0 | 1;
type Dev = 0 | 1;
export type Op =
  | { k: 'cpu-write'; p: Proc; page: number } // a fresh value (breaks COW after a fork)
  | { k: 'dontneed'; p: Proc; page: number; n: number }
  | { k: 'pageout'; p: Proc; page: number; n: number }
  | { k: 'mprotect-ro'; p: Proc; page: number; n: number } // read-only, then read-write again
  | { k: 'remap'; p: Proc; page: number; n: number } // munmap, then mmap MAP_FIXED (zero)
  | { k: 'fork'; p: Proc; page: number } // fork; the child writes a page (COW) and exits
  /** mremap(MAYMOVE|FIXED) of the pages elsewhere (DONTUNMAP or not), a while, then back. */
  | { k: 'mremap'; p: Proc; page: number; n: number; dontUnmap: boolean }
  /** pin_user_pages (FOLL_WRITE, maybe FOLL_LONGTERM): the pinned bytes read, held a while, unpinned. */
  | { k: 'pin'; p: Proc; page: number; n: number; longterm: boolean }
  | { k: 'dev-read'; p: Proc; d: Dev; page: number; n: number }
  | { k: 'dev-write'; p: Proc; d: Dev; page: number }
  | { k: 'to-dev'; p: Proc; d: Dev; page: number; n: number }
  | { k: 'to-sys'; p: Proc; d: Dev; page: number; n: number }
  | { k: 'exclusive'; p: Proc; d: Dev; page: number; n: number }
  | { k: 'snapshot'; p: Proc; d: Dev; page: number; n: number }
  | { k: 'close'; p: Proc; d: Dev }
  /**
   * The THP region (THP_PAGES pages at THP_BASE, MADV_HUGEPAGE, one 2 MiB folio at the
   * start): migrate it whole to a device or back, a device read or write of one page, a CPU
   * store (brings a device THP home whole), a DONTNEED of one page (splits the PMD).
   */
  | { k: 'thp-to-dev'; p: Proc; d: Dev }
  | { k: 'thp-to-sys'; p: Proc; d: Dev }
  | { k: 'thp-dev-read'; p: Proc; d: Dev; page: number }
  | { k: 'thp-dev-write'; p: Proc; d: Dev; page: number }
  | { k: 'thp-cpu-write'; p: Proc; page: number }
  | { k: 'thp-dontneed'; p: Proc; page: number }
  /** plain: as a plain open() user gets it (test_hmm's dmirror_fault servicer, no setServicer). */
  | { k: 'open'; p: Proc; d: Dev; plain?: boolean }
  /** A CPU read (a device page comes home through the policy's cpuFault), its data checked. */
  | { k: 'cpu-read'; p: Proc; page: number }
  /** Attach a fresh chaos policy (the case's PolicyCfg) to the mirror, or detach its policy. */
  | { k: 'policy'; p: Proc; d: Dev; on: boolean }
  /** The process exits with its mirrors open (mmu_notifier_release reaches them). */
  | { k: 'exit'; p: Proc }
  /**
   * Think time measured in GPU completions: n fences, each landing at a seeded point among
   * the other GPU work. (A CPU yield would not do: GPU completions are collected only when the
   * ready set drains, so a yielding thread runs ahead of every GPU command in flight.)
   */
  | { k: 'pause'; n: number };

export interface Case {
  /** The SeededScheduler's seed: the interleaving. */
  seed: number;
  /** Threads run concurrently; each runs its operations in order. */
  threads: Op[][];
  /** The chaos policies' settings (policy-ops.ts) and the mirrors they start attached to ([process, device]). */
  policy?: PolicyCfg & { attach: readonly (readonly [Proc, Dev])[] };
  /** Device memory of each device, in pages (default 32: small values exhaust it). */
  vram?: number;
  /** The mirrors on device 1 open as a plain open() user's (the default servicer). */
  plain?: boolean;
}

/** P0 is the focus (two mirrors racing each other); P1 mostly competes for device memory. */
const proc = fc.oneof({ arbitrary: fc.constant<Proc>(0), weight: 3 }, { arbitrary: fc.constant<Proc>(1), weight: 1 });
const dev = fc.constantFrom<Dev>(0, 1);
/** Low pages more often: races need two operations on one page. */
const page = fc.oneof({ arbitrary: fc.integer({ min: 0, max: 1 }), weight: 3 }, { arbitrary: fc.integer({ min: 0, max: NPAGES - 1 }), weight: 1 });
const span = fc.integer({ min: 1, max: 2 });

/** One operation. Device commands weigh more: the races of interest are driver races. */
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ k: fc.constant('cpu-write' as const), p: proc, page }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('dontneed' as const), p: proc, page, n: span }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('pageout' as const), p: proc, page, n: span }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('mprotect-ro' as const), p: proc, page, n: span }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('remap' as const), p: proc, page, n: span }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('fork' as const), p: proc, page }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('mremap' as const), p: proc, page, n: span, dontUnmap: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('pin' as const), p: proc, page, n: span, longterm: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('dev-read' as const), p: proc, d: dev, page, n: span }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('dev-write' as const), p: proc, d: dev, page }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('to-dev' as const), p: proc, d: dev, page, n: span }), weight: 4 },
  { arbitrary: fc.record({ k: fc.constant('to-sys' as const), p: proc, d: dev, page, n: span }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('exclusive' as const), p: proc, d: dev, page, n: span }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('snapshot' as const), p: proc, d: dev, page, n: span }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('close' as const), p: proc, d: dev }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('open' as const), p: proc, d: dev }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('pause' as const), n: fc.integer({ min: 1, max: 10 }) }), weight: 4 },
);

/** Any program: threads of one to three operations of any kind. */
export const generalCaseArb: fc.Arbitrary<Case> = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  threads: fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 4 }),
});

/**
 * A same-page race: three or four threads, each some think time then one operation, all on
 * one page of P0 (through either mirror, or the CPU), placement changes weighted up, and now
 * and then a background command on another page that keeps one mirror's lock busy. Races
 * between two mirrors of one process over one page are what the invalidation/fault protocols
 * exist for, and random programs reach them too rarely.
 */
export const raceCaseArb: fc.Arbitrary<Case> = fc.integer({ min: 0, max: 1 }).chain((x) => {
  const on = (k: Op['k'], extra: object = {}): fc.Arbitrary<Op> =>
    forge<fc.Arbitrary<Op>>(fc.record({ k: fc.constant(k), p: fc.constant<Proc>(0), page: fc.constant(x), ...extra }));
  const n1 = { n: fc.constant(1) };
  const racer = fc.oneof(
    { arbitrary: on('to-dev', { d: dev, ...n1 }), weight: 4 },
    { arbitrary: on('dontneed', n1), weight: 3 },
    { arbitrary: on('dev-write', { d: dev }), weight: 3 },
    { arbitrary: on('dev-read', { d: dev, ...n1 }), weight: 2 },
    { arbitrary: on('to-sys', { d: dev, ...n1 }), weight: 2 },
    { arbitrary: on('cpu-write'), weight: 2 },
    { arbitrary: on('exclusive', { d: dev, ...n1 }), weight: 1 },
    { arbitrary: on('snapshot', { d: dev, ...n1 }), weight: 1 },
    { arbitrary: on('pageout', n1), weight: 1 },
    { arbitrary: on('mprotect-ro', n1), weight: 1 },
    { arbitrary: on('remap', n1), weight: 1 },
    { arbitrary: on('fork'), weight: 1 },
    { arbitrary: on('mremap', { ...n1, dontUnmap: fc.boolean() }), weight: 1 },
    { arbitrary: on('pin', { ...n1, longterm: fc.boolean() }), weight: 1 },
  );
  const background: fc.Arbitrary<Op> = fc.record({ k: fc.constant('dev-write' as const), p: fc.constant<Proc>(0), d: dev, page: fc.constant(x + 2) });
  const thread = (op: fc.Arbitrary<Op>): fc.Arbitrary<Op[]> => fc.tuple(fc.integer({ min: 0, max: 10 }), op)
    .map(([n, o]) => (n === 0 ? [o] : [{ k: 'pause', n } as Op, o]));
  const after: fc.Arbitrary<Op[]> = fc.constantFrom<Op[]>(
    [], [{ k: 'pause', n: 10 }, { k: 'to-dev', p: 1, d: 0, page: x, n: 1 }, { k: 'dev-read', p: 0, d: 0, page: x, n: 1 }]);
  return fc.record({
    seed: fc.integer({ min: 1, max: 0x7fffffff }),
    racers: fc.array(thread(racer), { minLength: 2, maxLength: 3 }),
    bg: fc.array(background, { minLength: 0, maxLength: 1 }),
    after,
  }).map(({ seed, racers, bg, after: tail }) => ({
    seed, threads: [...racers, ...bg.map((o) => [o]), ...(tail.length > 0 ? [tail] : [])],
  }));
});

/**
 * A program on the policy path: chaos policies (policy-ops.ts) attached to some mirrors, device
 * memory sometimes smaller than what the processes migrate (exhaustion: migrate_vma skips what
 * it cannot allocate), the mirrors on device 1 sometimes a plain open() user's, and operations
 * weighted to what a policy acts on: device reads and writes over the range (policy
 * migrations, remote maps, throttles, pins, evictions past the policy's capacity, the access
 * counters' migrations at each command's end), CPU reads and writes (CPU faults home through
 * the policy's cpuFault), policies attached and detached while commands run, and P1's exit
 * with its mirrors open.
 */
const anyPage = fc.integer({ min: 0, max: NPAGES - 1 });
const wide = fc.integer({ min: 1, max: NPAGES });
export const policyOpArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ k: fc.constant('dev-read' as const), p: proc, d: dev, page: fc.constant(0), n: wide }), weight: 6 },
  { arbitrary: fc.record({ k: fc.constant('dev-write' as const), p: proc, d: dev, page: anyPage }), weight: 5 },
  { arbitrary: fc.record({ k: fc.constant('cpu-read' as const), p: proc, page: anyPage }), weight: 4 },
  { arbitrary: fc.record({ k: fc.constant('cpu-write' as const), p: proc, page: anyPage }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('to-dev' as const), p: proc, d: dev, page, n: span }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('to-sys' as const), p: proc, d: dev, page, n: span }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('dontneed' as const), p: proc, page, n: span }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('policy' as const), p: proc, d: dev, on: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('exit' as const), p: fc.constant<Proc>(1) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('open' as const), p: proc, d: dev, plain: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('close' as const), p: proc, d: dev }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('fork' as const), p: proc, page }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('pin' as const), p: proc, page, n: span, longterm: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('mprotect-ro' as const), p: proc, page, n: span }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('remap' as const), p: proc, page, n: span }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('pause' as const), n: fc.integer({ min: 1, max: 10 }) }), weight: 3 },
);
const mirrorArb = fc.constantFrom<readonly [Proc, Dev]>([0, 0], [0, 1], [1, 0], [1, 1]);
export const policyCaseArb: fc.Arbitrary<Case> = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  threads: fc.array(fc.array(policyOpArb, { minLength: 1, maxLength: 4 }), { minLength: 2, maxLength: 4 }),
  policy: fc.tuple(policyCfgArb, fc.uniqueArray(mirrorArb, { minLength: 1, maxLength: 3, selector: ([p, d]) => p * 2 + d }))
    .map(([cfg, attach]) => ({ ...cfg, attach })),
  vram: fc.constantFrom(3, 5, 32),
  plain: fc.boolean(),
});

/**
 * What the search draws: a third general programs, a third same-page races, a third policy
 * programs, each printed (in a failure report) as its readable program.
 */
export const caseArb: fc.Arbitrary<Case> = fc.oneof(generalCaseArb, raceCaseArb, policyCaseArb)
  .map((c) => Object.defineProperty({ ...c }, fc.toStringMethod, { value: () => showCase(c), enumerable: false }));

/** Pages of the THP region the THP operations touch: its first, one inside, its last. */
const thpPage = fc.constantFrom(0, 1, 300, THP_PAGES - 1);

/**
 * Programs with THP migration among the operations: two or three threads mixing the THP
 * region's operations with the small buffer's migrations, stores and DONTNEEDs (P0 mostly).
 */
export const thpCaseArb: fc.Arbitrary<Case> = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  threads: fc.array(fc.array(fc.oneof(
    { arbitrary: fc.record({ k: fc.constant('thp-to-dev' as const), p: proc, d: dev }), weight: 4 },
    { arbitrary: fc.record({ k: fc.constant('thp-to-sys' as const), p: proc, d: dev }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('thp-dev-read' as const), p: proc, d: dev, page: thpPage }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('thp-dev-write' as const), p: proc, d: dev, page: thpPage }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('thp-cpu-write' as const), p: proc, page: thpPage }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('thp-dontneed' as const), p: proc, page: thpPage }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('to-dev' as const), p: proc, d: dev, page, n: span }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('cpu-write' as const), p: proc, page }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('pause' as const), n: fc.integer({ min: 1, max: 10 }) }), weight: 3 },
  ), { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 }),
}).map((c) => Object.defineProperty({ ...c }, fc.toStringMethod, { value: () => showCase(c), enumerable: false }));

/** Whether a case touches the THP region (its machine then has one and room for device THPs). */
function hasThp(c: Case): boolean {
  return c.threads.some((t) => t.some((o) => o.k.startsWith('thp-')));
}

/** Violation kinds of a result, each once. */
export function kindsOf(r: CaseResult): ViolationKind[] {
  return [...new Set(r.violations.map((v) => v.kind))];
}

/** A readable one-line form of a program (for failure reports). */
export function showCase(c: Case): string {
  const op = (o: Op): string => {
    const args = Object.entries(o).filter(([k]) => k !== 'k').map(([k, v]) => `${k}${v}`).join(' ');
    return `${o.k}(${args})`;
  };
  const extra = [
    c.policy !== undefined ? `policy ${JSON.stringify(c.policy)}` : '', c.vram !== undefined ? `vram ${c.vram}` : '', c.plain === true ? 'plain dev1' : '',
  ].filter((x) => x !== '').join(', ');
  return `seed ${c.seed}${extra !== '' ? ` (${extra})` : ''}: ${c.threads.map((t, i) => `T${i}[${t.map(op).join(', ')}]`).join(' || ')}`;
}

// ---------------------------------------------------------------------------------------
// Value history: which values each page of each process may hold at each logical tick.

type Value = number | 'gone';
/** One change of a page: it took effect at some point in [t0, t1], or (failed) maybe not at all. */
interface Change {
  t0: number;
  t1: number; // Infinity while running
  /** The value the change stores; several when it restores one of several (mremap back). */
  values: readonly Value[];
  ok: boolean;
}

/**
 * Concurrent changes of one page may land in either order, so a value is possible at time t
 * unless a change that began after it was done, succeeded, and was done by t. A failed change
 * may or may not have happened: its value stays possible, and it overwrites nothing for sure.
 */
class History {
  tick = 0;
  readonly changes: Change[][];
  constructor(init: (page: number) => number, pages = NPAGES) {
    this.changes = Array.from({ length: pages }, (_, p) => [{ t0: 0, t1: 0, values: [init(p)], ok: true }]);
  }

  now(): number {
    return ++this.tick;
  }

  /** Runs `action`, which changes pages [first, first + n) to `next(page)`. */
  async change(first: number, n: number, next: (page: number) => Value | readonly Value[], action: () => Promise<unknown>): Promise<void> {
    const t0 = this.now();
    const mine: Change[] = [];
    for (let k = 0; k < n; k++) {
      const v = next(first + k);
      const c: Change = { t0, t1: Infinity, values: Array.isArray(v) ? v : [v as Value], ok: true };
      this.changes[first + k].push(c);
      mine.push(c);
    }
    try {
      await action();
    } catch (e) {
      for (const c of mine) c.ok = false;
      throw e;
    } finally {
      const t1 = this.now();
      for (const c of mine) c.t1 = t1;
    }
  }

  /** Values page `p` may have held at some time in [t0, t1]. */
  during(p: number, t0: number, t1: number): Set<Value> {
    const list = this.changes[p];
    const out = new Set<Value>();
    for (const c of list) {
      if (c.t0 > t1) continue; // not begun yet
      const overwritten = list.some((d) => d !== c && d.ok && d.t0 > c.t1 && d.t1 < t0);
      if (!overwritten) for (const v of c.values) out.add(v);
    }
    return out;
  }

  /** Values page `p` may hold now. */
  current(p: number): Set<Value> {
    const t = this.now();
    return this.during(p, t, t);
  }
}

// ---------------------------------------------------------------------------------------
// Inspection (read-only).

interface CpuEntry {
  pfn: number;
  write: boolean;
  migration: boolean;
}

/** What the CPU maps at addr (follow_page without side effects), or null. */
function cpuEntry(mm: MmStruct, addr: number): CpuEntry | null {
  const pmd = mm.pgtable.pmd(addr, false);
  if (pmd === null) return null;
  const i = pmdIndex(addr);
  if (pmd.isHuge(i)) {
    const f = pmd.flags[i];
    const pfn = pmd.pfn[i] + pteIndex(addr);
    if (isDevicePrivate(f)) return { pfn, write: swpWritable(f), migration: false };
    if (isMigration(f)) return { pfn, write: swpWritable(f), migration: true };
    return { pfn, write: (f & CPU_PTE_WRITE) !== 0 && (f & PTE_PROTNONE) === 0, migration: false };
  }
  const t = pmd.tables[i];
  if (t === null) return null;
  const f = t.flags[pteIndex(addr)];
  const pfn = t.pfn[pteIndex(addr)];
  if (isPresent(f)) return { pfn, write: (f & CPU_PTE_WRITE) !== 0 && (f & PTE_PROTNONE) === 0, migration: false };
  if (isDevicePrivate(f) || isDeviceExclusive(f)) return { pfn, write: swpWritable(f), migration: false };
  if (isMigration(f)) return { pfn, write: swpWritable(f), migration: true };
  return null;
}

export interface MirrorEntry {
  page: number;
  pfn: number;
  write: boolean;
  exclusive: boolean;
  device: boolean;
}

/**
 * Every entry the mirror maps in [addr, addr + npages pages), read under its update lock —
 * or null when that lock is taken (an invalidation or an install is running): the check never
 * waits, so checking does not change which interleavings a seed produces beyond its own steps.
 */
export function inspectMirror(m: Dmirror, addr: number, npages: number): MirrorEntry[] | null {
  if (!m.lock.tryLock()) return null;
  try {
    const out: MirrorEntry[] = [];
    for (let p = addr / PAGE_SIZE; p < addr / PAGE_SIZE + npages; p++) {
      const e = m.engine.pt.lookup(p);
      if (e === null) continue;
      const device = (e.flags & PTE_DEVICE) !== 0;
      out.push({
        page: p, device, write: (e.flags & PTE_WRITE) !== 0, exclusive: (e.flags & PTE_EXCLUSIVE) !== 0,
        pfn: device ? m.device.devmem.pagemap.basePfn + e.slot : m.aperture.pfnOf(e.slot) ?? -1,
      });
    }
    return out;
  } finally {
    m.lock.unlock();
  }
}

// ---------------------------------------------------------------------------------------
// Running a case.

export type ViolationKind = 'stale-read' | 'stale-entry' | 'cross-process' | 'accounting' | 'device-leak' | 'residency' | 'crash' | 'gpu-error' | 'deadlock';

/**
 * What a case reached on the policy path (so the search can show it covers it): pages the
 * policies migrated in, evicted, throttled faults, pins, access-counter migrations, CPU faults
 * they decided, device memory found exhausted, exits of a mirrored process, and faults
 * serviced by the default (plain open()) servicer.
 */
export interface Reached {
  policyMigrations: number;
  evictions: number;
  throttles: number;
  pins: number;
  counterMigrations: number;
  cpuFaults: number;
  exhausted: number;
  exits: number;
  plainFaults: number;
}
const noneReached = (): Reached => ({
  policyMigrations: 0, evictions: 0, throttles: 0, pins: 0, counterMigrations: 0, cpuFaults: 0, exhausted: 0, exits: 0, plainFaults: 0,
});
export interface Violation {
  kind: ViolationKind;
  detail: string;
}

export interface CaseResult {
  violations: Violation[];
  /** Scheduler steps (resumptions) the case took. */
  steps: number;
  /** The scheduler's trace (labels in resumption order). */
  trace: string[];
  /** What each operation returned, per thread (errno or 'ok'), for replay comparisons. */
  outcomes: string[][];
  /** Nondeterministic points (an outstanding GPU wait given up on): 0 in a deterministic run. */
  graceExpirations: number;
  reached: Reached;
}

export interface RunOptions {
  protocol: Protocol;
  /** Stop checking after this many violations (a broken run repeats itself). */
  maxViolations?: number;
}

/** Errors a racing operation may rightly get: an errno, or SIGSEGV for a CPU access. */
function benign(e: unknown): boolean {
  return e instanceof HmmError || e instanceof SegmentationFault;
}

function errName(e: unknown): string {
  if (e instanceof HmmError) return e.code;
  if (e instanceof SegmentationFault) return 'SIGSEGV';
  return `${(e as Error)?.name ?? 'throw'}: ${(e as Error)?.message ?? String(e)}`;
}

const wordsOf = (v: number): Uint8Array => new Uint8Array(new Uint32Array(PAGE_SIZE / 4).fill(v).buffer);

/** Runs one case on a fresh machine and returns what broke. */
export async function runCase(c: Case, opts: RunOptions): Promise<CaseResult> {
  const maxViolations = opts.maxViolations ?? 8;
  const sched = new SeededScheduler(c.seed);
  const violations: Violation[] = [];
  const violate = (kind: ViolationKind, detail: string): void => {
    if (violations.length < maxViolations) violations.push({ kind, detail });
  };
  const thp = hasThp(c);
  // With THP operations: room for the THP regions and for one 2 MiB run of VRAM per device
  // beside the small buffers' pages (a second THP falls back to 4 KiB pages, or ENOMEM).
  // (Outside vitest too, under scripts/soak.ts: no fixture; teardown() is the fixtures' leak check.)
  const { machine: m, teardown: endMachine } = await standaloneMachine({
    devices: 2, systemPages: thp ? 8192 : 2048, devicePages: thp ? (c.vram ?? 32) + 2 * THP_PAGES : c.vram ?? 32, aperturePages: 512, scheduler: sched,
  });
  const devs = [...m.devices];
  const procs: Process[] = [m.spawn(), m.spawn()];
  let gen = 0;
  /** mremap ops so far: each moves its pages to a scratch range no other one uses. */
  let remaps = 0;
  /** A value no other write stores: generation, process and page. */
  const fresh = (p: Proc, pg: number): number => ((++gen << 8) | (p << 4) | pg) >>> 0;
  const hist: History[] = [];
  /** The THP regions' histories (cases with THP operations). */
  const thist: History[] = [];
  const mirrors: (Dmirror | null)[][] = [[null, null], [null, null]];
  const allMirrors: Dmirror[] = [];
  const outcomes: string[][] = c.threads.map(() => []);
  let deadlocked = false;
  const reached = noneReached();
  /** Every policy attached (its stats are summed at the end), and the one each mirror has now. */
  const paths: PolicyPath[] = [];
  const policyOf = new Map<Dmirror, PolicyPath>();
  let policies = 0;

  const open = async (p: Proc, d: Dev, plain = false): Promise<Dmirror> => {
    const fd = await devs[d].open(procs[p]);
    if (!plain) fd.setServicer({ protocol: opts.protocol });
    allMirrors.push(fd);
    return fd;
  };
  const attach = (fd: Dmirror, on: boolean): void => {
    const cfg = c.policy;
    if (cfg === undefined) return;
    const path = fd.setPolicy(on ? chaosPolicy(cfg, policies++) : null,
      { start: BASE, npages: NPAGES, capacityPages: cfg.capacity, chunkPages: cfg.chunkPages });
    if (path === null) policyOf.delete(fd);
    else {
      paths.push(path);
      policyOf.set(fd, path);
    }
  };
  /** A device command: faults the default servicer took count as reached. */
  const plainCount = async <T>(fd: Dmirror, run: () => Promise<T>): Promise<T> => {
    const s = fd.servicer;
    const before = s.records.length;
    try {
      return await run();
    } finally {
      if (s.opts.rangePages > 0) reached.plainFaults += s.records.length - before;
    }
  };

  try {
    for (const p of [0, 1] as const) {
      const base = await procs[p].mmap(BASE, NPAGES * PAGE_SIZE, RW, ANON | MAP_FIXED);
      if (base !== BASE) throw new Error(`mmap gave 0x${base.toString(16)}`);
      const init = Array.from({ length: NPAGES }, (_, pg) => fresh(p, pg));
      const buf = new Uint8Array(NPAGES * PAGE_SIZE);
      init.forEach((v, pg) => buf.set(wordsOf(v), pg * PAGE_SIZE));
      await procs[p].write(BASE, buf);
      hist.push(new History((pg) => init[pg]));
      if (thp) {
        const t = await procs[p].mmap(THP_BASE, THP_PAGES * PAGE_SIZE, RW, ANON | MAP_FIXED);
        if (t !== THP_BASE) throw new Error(`mmap gave 0x${t.toString(16)}`);
        await procs[p].madvise(THP_BASE, THP_PAGES * PAGE_SIZE, MADV_HUGEPAGE);
        const tinit = Array.from({ length: THP_PAGES }, (_, pg) => fresh(p, pg & 0xf));
        const tbuf = new Uint8Array(THP_PAGES * PAGE_SIZE);
        tinit.forEach((v, pg) => tbuf.set(wordsOf(v), pg * PAGE_SIZE));
        await procs[p].write(THP_BASE, tbuf);
        thist.push(new History((pg) => tinit[pg], THP_PAGES));
      }
      for (const d of [0, 1] as const) mirrors[p][d] = await open(p, d, d === 1 && c.plain === true);
    }
    for (const [p, d] of c.policy?.attach ?? []) attach(mirrors[p][d]!, true);

    /** (a): every word of every page of a device read is a value the page held meanwhile. */
    const checkData = (p: Proc, first: number, data: Uint8Array, t0: number, t1: number, what: string, hs: History[] = hist): void => {
      const words = new Uint32Array(data.buffer, data.byteOffset, data.byteLength / 4);
      const n = data.byteLength / PAGE_SIZE;
      for (let k = 0; k < n; k++) {
        const ok = hs[p].during(first + k, t0, t1);
        for (let w = 0; w < PAGE_SIZE / 4; w++) {
          const v = words[k * (PAGE_SIZE / 4) + w];
          if (!ok.has(v)) {
            violate('stale-read', `${what}: P${p} page ${first + k} word ${w} = 0x${v.toString(16)}, held ${[...ok].map((x) => typeof x === 'number' ? `0x${x.toString(16)}` : x).join('|')} (${describeValue(v)})`);
            break;
          }
        }
      }
    };

    /** (b), (c): every open mirror's entries against the CPU page tables. */
    const checkMirrors = (when: string): void => {
      for (const d of devs) if (d.vram.freeSlots === 0) reached.exhausted++;
      for (const p of [0, 1] as const) {
        for (const d of [0, 1] as const) {
          const fd = mirrors[p][d];
          if (fd === null) continue;
          const entries = inspectMirror(fd, BASE, NPAGES);
          if (entries === null) continue; // busy: checked after a later step
          if (thp) entries.push(...(inspectMirror(fd, THP_BASE, THP_PAGES) ?? []));
          for (const e of entries) {
            const addr = e.page * PAGE_SIZE;
            const cpu = procs[p].mm.exited ? null : cpuEntry(procs[p].mm, addr);
            if (cpu !== null && cpu.migration) continue; // a migration in flight (see the header)
            if (cpu === null || cpu.pfn !== e.pfn || (e.write && !cpu.write)) {
              const other = procs.findIndex((q, i) => i !== p && !q.mm.exited && cpuEntry(q.mm, addr)?.pfn === e.pfn);
              violate(other >= 0 ? 'cross-process' : 'stale-entry',
                `${when}: P${p}'s mirror on dev${d} maps page ${e.page - BASE / PAGE_SIZE} to ${e.device ? 'device' : 'frame'} pfn ${e.pfn}${e.write ? ' (write)' : ''}${e.exclusive ? ' (exclusive)' : ''}; the CPU maps ${cpu === null ? 'nothing' : `pfn ${cpu.pfn}${cpu.write ? ' (write)' : ' (read-only)'}`}${other >= 0 ? `; P${other} maps pfn ${e.pfn} there` : ''}`);
            }
          }
        }
      }
    };

    const addrOf = (pg: number): number => BASE + pg * PAGE_SIZE;
    const clip = (pg: number, n: number): number => Math.min(n, NPAGES - pg);

    const gpu = devs[0].gpu.device;
    takeUncapturedErrors(gpu); // (the GPU is shared: nothing of an earlier case's)
    const exec = async (op: Op): Promise<void> => {
      if (op.k === 'pause') {
        for (let i = 0; i < op.n; i++) await sched.wait(gpu.queue.onSubmittedWorkDone(), 'search: pause');
        return;
      }
      const P = procs[op.p];
      const h = hist[op.p];
      switch (op.k) {
        case 'thp-to-dev':
        case 'thp-to-sys':
        case 'thp-dev-read':
        case 'thp-dev-write':
        case 'thp-cpu-write':
        case 'thp-dontneed':
          return execThp(op);
        case 'cpu-write': {
          const v = fresh(op.p, op.page);
          await h.change(op.page, 1, () => v, () => P.write(addrOf(op.page), wordsOf(v)));
          return;
        }
        case 'cpu-read': {
          const t0 = h.now();
          const data = await P.read(addrOf(op.page), PAGE_SIZE);
          checkData(op.p, op.page, data, t0, h.now(), `P${op.p} cpu-read(${op.page})`);
          return;
        }
        case 'exit': {
          await h.change(0, NPAGES, () => 'gone', () => P.exit());
          reached.exits++;
          return;
        }
        case 'policy': {
          const fd = mirrors[op.p][op.d];
          if (fd === null) throw new HmmError('EBADF', 'mirror closed');
          attach(fd, op.on);
          return;
        }
        case 'dontneed': {
          const n = clip(op.page, op.n);
          await h.change(op.page, n, () => 0, () => P.madvise(addrOf(op.page), n * PAGE_SIZE, MADV_DONTNEED));
          return;
        }
        case 'pageout':
          await P.madvise(addrOf(op.page), clip(op.page, op.n) * PAGE_SIZE, MADV_PAGEOUT);
          return;
        case 'mprotect-ro': {
          const n = clip(op.page, op.n);
          await P.mprotect(addrOf(op.page), n * PAGE_SIZE, PROT_READ);
          await sched.yield('search: read-only a while');
          await P.mprotect(addrOf(op.page), n * PAGE_SIZE, RW);
          return;
        }
        case 'remap': {
          const n = clip(op.page, op.n);
          await h.change(op.page, n, () => 'gone', () => P.munmap(addrOf(op.page), n * PAGE_SIZE));
          await sched.yield('search: hole a while');
          await h.change(op.page, n, () => 0, () => P.mmap(addrOf(op.page), n * PAGE_SIZE, RW, ANON | MAP_FIXED));
          return;
        }
        case 'fork': {
          const child = await P.fork();
          try {
            // The child's store breaks COW; its value must never reach the parent's mirrors.
            await child.write(addrOf(op.page), wordsOf(fresh(op.p, op.page) | 0x80));
          } catch (e) {
            if (!benign(e)) throw e;
          } finally {
            await child.exit();
          }
          return;
        }
        case 'mremap': {
          // Out to a scratch range of its own, a while, then back over whatever is there by
          // then: the pages hold again what they held when they left.
          const n = clip(op.page, op.n);
          const scratch = BASE + (64 + 8 * ++remaps) * PAGE_SIZE;
          const flags = MREMAP_MAYMOVE | MREMAP_FIXED | (op.dontUnmap ? MREMAP_DONTUNMAP : 0);
          let left: Value[][] = [];
          const tOut = h.now();
          await h.change(op.page, n, () => (op.dontUnmap ? 0 : 'gone'), () => P.mremap(addrOf(op.page), n * PAGE_SIZE, n * PAGE_SIZE, flags, scratch));
          left = Array.from({ length: n }, (_, k) => [...h.during(op.page + k, tOut, h.now())].filter((v) => v !== 'gone'));
          try {
            await sched.yield('search: moved away a while');
          } finally {
            await h.change(op.page, n, (pg) => left[pg - op.page], () => P.mremap(scratch, n * PAGE_SIZE, n * PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, addrOf(op.page)));
          }
          return;
        }
        case 'pin': {
          const n = clip(op.page, op.n);
          const t0 = h.now();
          const pins = await P.pinUserPages(addrOf(op.page), n, { write: true, longterm: op.longterm, fast: op.page % 2 === 0 });
          try {
            const t1 = h.now();
            const bytes = new Uint8Array(pins.count * PAGE_SIZE);
            for (let k = 0; k < pins.count; k++) bytes.set(pins.data(k), k * PAGE_SIZE);
            checkData(op.p, op.page, bytes, t0, t1, `P${op.p} pin(${op.page}, ${n})`);
            await sched.yield('search: pinned a while');
          } finally {
            pins.release();
          }
          return;
        }
        case 'close': {
          const fd = mirrors[op.p][op.d];
          if (fd === null) throw new HmmError('EBADF', 'not open');
          mirrors[op.p][op.d] = null;
          policyOf.delete(fd);
          await fd.close();
          return;
        }
        case 'open': {
          if (mirrors[op.p][op.d] !== null) return;
          const fd = await open(op.p, op.d, op.plain === true);
          if (mirrors[op.p][op.d] === null) mirrors[op.p][op.d] = fd;
          else await fd.close();
          return;
        }
        default:
          break;
      }
      const fd = mirrors[op.p][op.d];
      if (fd === null) throw new HmmError('EBADF', 'mirror closed');
      const tag = `P${op.p} dev${op.d} ${op.k}(${op.page}${'n' in op ? `, ${op.n}` : ''})`;
      switch (op.k) {
        case 'dev-read':
        case 'to-dev':
        case 'exclusive': {
          const n = clip(op.page, op.n);
          const t0 = h.now();
          const r = await plainCount(fd, () => (op.k === 'dev-read' ? fd.read(addrOf(op.page), n)
            : op.k === 'to-dev' ? fd.migrateToDevice(addrOf(op.page), n)
              : fd.exclusive(addrOf(op.page), n)));
          checkData(op.p, op.page, r.data, t0, h.now(), tag);
          return;
        }
        case 'dev-write': {
          const v = fresh(op.p, op.page) | 0x40;
          await h.change(op.page, 1, () => v, () => plainCount(fd, () => fd.write(addrOf(op.page), wordsOf(v))));
          return;
        }
        case 'to-sys':
          await fd.migrateToSystem(addrOf(op.page), clip(op.page, op.n));
          return;
        case 'snapshot':
          await fd.snapshot(addrOf(op.page), clip(op.page, op.n));
          return;
      }
    };

    const thpAddr = (pg: number): number => THP_BASE + pg * PAGE_SIZE;
    /** The THP region's operations (see Op). */
    const execThp = async (op: Op): Promise<void> => {
      if (!('p' in op)) return;
      const P = procs[op.p];
      const h = thist[op.p];
      if (op.k === 'thp-cpu-write') {
        const v = fresh(op.p, op.page & 0xf);
        await h.change(op.page, 1, () => v, () => P.write(thpAddr(op.page), wordsOf(v)));
        return;
      }
      if (op.k === 'thp-dontneed') {
        await h.change(op.page, 1, () => 0, () => P.madvise(thpAddr(op.page), PAGE_SIZE, MADV_DONTNEED));
        return;
      }
      if (!('d' in op)) return;
      const fd = mirrors[op.p][op.d];
      if (fd === null) throw new HmmError('EBADF', 'mirror closed');
      const tag = `P${op.p} dev${op.d} ${op.k}`;
      switch (op.k) {
        case 'thp-to-dev': {
          const t0 = h.now();
          const r = await fd.migrateToDevice(THP_BASE, THP_PAGES);
          checkData(op.p, 0, r.data, t0, h.now(), tag, thist);
          return;
        }
        case 'thp-to-sys':
          await fd.migrateToSystem(THP_BASE, THP_PAGES);
          return;
        case 'thp-dev-read': {
          const t0 = h.now();
          const r = await fd.read(thpAddr(op.page), 1);
          checkData(op.p, op.page, r.data, t0, h.now(), `${tag}(${op.page})`, thist);
          return;
        }
        case 'thp-dev-write': {
          const v = fresh(op.p, op.page & 0xf) | 0x40;
          await h.change(op.page, 1, () => v, () => fd.write(thpAddr(op.page), wordsOf(v)));
          return;
        }
        default:
      }
    };

    const thread = async (i: number, ops: Op[]): Promise<void> => {
      for (const op of ops) {
        try {
          await exec(op);
          outcomes[i].push('ok');
        } catch (e) {
          outcomes[i].push(errName(e));
          if (!benign(e)) violate('crash', `T${i} ${JSON.stringify(op)}: ${errName(e)}`);
        }
        checkMirrors(`after T${i} ${op.k}`);
      }
    };

    // Every thread starts at a seeded point; a deadlock shows as an idle scheduler with
    // threads unfinished (nothing outside the scheduler can wake them: GPU waits go through it).
    let finished = false;
    const all = Promise.all(c.threads.map((ops, i) => sched.spawn(`search: start T${i}`, () => thread(i, ops))))
      .finally(() => { finished = true; });
    for (;;) {
      await Promise.race([all, sched.idle()]);
      if (finished) break;
      const steps = sched.stats.steps;
      await new Promise((r) => setTimeout(r, 500)); // real time: only to tell idle from slow
      if (finished) break;
      if (sched.stats.steps === steps && sched.parked === 0) {
        violate('deadlock', `threads still running with the scheduler idle: ${outcomes.map((o, i) => `T${i} done ${o.length}/${c.threads[i].length}`).join(', ')}`);
        deadlocked = true; // (teardown would wait on the same locks: the machine is abandoned)
        return { violations, steps: sched.stats.steps, trace: sched.trace, outcomes, graceExpirations: sched.stats.graceExpirations, reached };
      }
    }
    await all;

    /** The policies' residency against the CPU table (the residency invariant). */
    const checkResidency = (when: string): void => {
      for (const p of [0, 1] as const) {
        for (const d of [0, 1] as const) {
          const fd = mirrors[p][d];
          const path = fd === null ? undefined : policyOf.get(fd);
          if (fd === null || path === undefined) continue;
          for (const line of residencyDisagreements(path, fd, procs[p], BASE, NPAGES)) violate('residency', `${when}: P${p}'s policy on dev${d}: ${line}`);
        }
      }
    };

    // Quiescence.
    checkMirrors('at quiescence');
    checkResidency('at quiescence');
    for (const p of [0, 1] as const) {
      const live = Array.from({ length: NPAGES }, (_, pg) => !hist[p].current(pg).has('gone'));
      for (let pg = 0; pg < NPAGES; pg++) {
        if (!live[pg]) continue;
        const t0 = hist[p].now();
        const cpu = await procs[p].read(addrOf(pg), PAGE_SIZE);
        checkData(p, pg, cpu, t0, hist[p].now(), `P${p} CPU read at quiescence`);
        for (const d of [0, 1] as const) {
          const fd = mirrors[p][d];
          if (fd === null) continue;
          const t1 = hist[p].now();
          const r = await fd.read(addrOf(pg), 1);
          checkData(p, pg, r.data, t1, hist[p].now(), `P${p} dev${d} read at quiescence`);
        }
      }
    }
    if (thp) {
      for (const p of [0, 1] as const) {
        if (procs[p].mm.exited) continue;
        for (const pg of [0, 1, 300, THP_PAGES - 1]) {
          const t0 = thist[p].now();
          const cpu = await procs[p].read(thpAddr(pg), PAGE_SIZE);
          checkData(p, pg, cpu, t0, thist[p].now(), `P${p} CPU read of THP page ${pg} at quiescence`, thist);
          for (const d of [0, 1] as const) {
            const fd = mirrors[p][d];
            if (fd === null) continue;
            const t1 = thist[p].now();
            const r = await fd.read(thpAddr(pg), 1);
            checkData(p, pg, r.data, t1, thist[p].now(), `P${p} dev${d} read of THP page ${pg} at quiescence`, thist);
          }
        }
      }
    }
    checkMirrors('after the quiescent reads');
    checkResidency('after the quiescent reads');
    // A GPU validation error (a buffer used after it was destroyed, say) is a driver bug even
    // when no value came out wrong.
    await sched.wait(gpu.queue.onSubmittedWorkDone(), 'search: drain');
    for (const e of takeUncapturedErrors(gpu)) violate('gpu-error', e.split('\n')[0]);
    try {
      checkFrameAccounting(m, { zeroCheck: 'full' });
    } catch (e) {
      violate('accounting', errName(e));
    }
    // Every allocated device page is mapped by some process (nothing else holds one).
    for (const d of [0, 1] as const) {
      const pm = devs[d].pagemap;
      let mapped = 0;
      for (const p of procs) {
        if (p.mm.exited) continue;
        for (let pg = 0; pg < NPAGES; pg++) {
          const e = cpuEntry(p.mm, addrOf(pg));
          if (e !== null && pm.contains(e.pfn)) mapped++;
        }
        for (let pg = 0; thp && pg < THP_PAGES; pg++) {
          const e = cpuEntry(p.mm, thpAddr(pg));
          if (e !== null && pm.contains(e.pfn)) mapped++;
        }
      }
      const used = devs[d].vram.stats.used;
      if (used !== mapped) violate('device-leak', `dev${d}: ${used} device pages allocated, ${mapped} mapped by the CPU`);
    }
    for (const path of paths) {
      reached.policyMigrations += path.stats.migratedIn;
      reached.evictions += path.stats.evictedOut;
      reached.throttles += path.stats.throttledFaults;
      reached.cpuFaults += path.stats.cpuFaults;
      reached.pins += path.engine.residency.stats.pins;
      reached.counterMigrations += path.engine.stats.accessCounterMigrations;
    }
  } catch (e) {
    violate('crash', `harness: ${errName(e)}${e instanceof Error && e.stack ? `\n${e.stack}` : ''}`);
  } finally {
    if (!deadlocked) {
      await closeAll(allMirrors);
      // (d) once more: destroyed, the machine holds no frame and no swap slot.
      await endMachine().catch((e: unknown) => violate('accounting', `teardown: ${errName(e)}`));
    }
  }
  return { violations, steps: sched.stats.steps, trace: sched.trace, outcomes, graceExpirations: sched.stats.graceExpirations, reached };
}

async function closeAll(allMirrors: Dmirror[]): Promise<void> {
  for (const fd of allMirrors) {
    try {
      await fd.close();
    } catch {
      // a broken mirror must not hide the case's violations
    }
  }
}

/** Which write stored a value (see `fresh`): for reports. */
function describeValue(v: number): string {
  if (v === 0) return 'zero';
  const pg = v & 0xf;
  const p = (v >>> 4) & 0x3;
  const kind = (v & 0x80) !== 0 ? 'a forked child\'s store' : (v & 0x40) !== 0 ? 'a device write' : 'a CPU store';
  return `${kind} to P${p} page ${pg}, generation ${v >>> 8}`;
}
