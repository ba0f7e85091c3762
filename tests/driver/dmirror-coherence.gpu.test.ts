/**
 * Coherence of the GPU mirror with the CPU side.
 *
 *  1. "The GPU never reads through a stale entry": device READs run back to back over a
 *     64-page buffer while the CPU side, on a seeded schedule, keeps giving its pages new
 *     frames and new contents (MADV_DONTNEED + write, mmap MAP_FIXED over it + write,
 *     munmap + mmap MAP_FIXED + write, mprotect toggles, fork then parent writes breaking
 *     COW while the child scribbles on its copies, plain stores into the same frames,
 *     migration to the other device). Every word of every page holds (page << 16) | gen,
 *     with a fresh gen per change, so a word read through a stale entry (a freed frame
 *     since reused by another page, the child's copy, an old generation) names the wrong
 *     page or a generation the page no longer held. Each read is checked word by word
 *     against the page's history: a value is allowed only if the page held it at some
 *     moment between the read's start and end (zero only where the page was demand-zeroed
 *     in that window); EFAULT only if some page was unmapped/PROT_NONE in that window.
 *     Also: two opens of one device by one process (one migrates, the other must not keep
 *     the old frames), and the default scheduler's yield() being a real event-loop turn
 *     (without it, a walk waiting on a migration entry starves the GPU completion that
 *     would end the migration).
 *  2. Both ways: what the GPU wrote (Mirror.write) is what the CPU and the other device
 *     read after the command returned; what the CPU wrote after a command is what the next
 *     GPU command reads; across two devices, with pages moving in and out of either
 *     device's memory; a device write racing a migration of its pages is not lost; a
 *     device write into its own device memory shared COW after fork breaks COW (and
 *     completes); a range fault retried after a collision keeps asking for read access.
 */
import { totals } from '../../src/driver/records.js';
import { afterEach, describe, expect } from 'vitest';
import {
  checkFrameAccounting, HmmError, MADV_DONTNEED, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE,
  PROT_NONE, PROT_READ, PROT_WRITE, type Machine, type Mirror, type Process,
} from '../../src/index.js';
import { HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_READ } from '../../src/index.js';
import type { Dmirror } from '../../src/driver/dmirror.js';
import type { DmirrorDevice } from '../../src/driver/dmirror-device.js';
import type { Scheduler } from '../../src/sched/scheduler.js';
import { mulberry32, SeededScheduler } from '../../src/sched/seeded.js';
import { words } from '../../src/device/abi.js';
import { macrotask } from '../../src/sched/macrotask.js';
import { WORDS, firstDiff, pagesOf } from './pages.js';
import type { MachineFactory } from '../support/machine.js';
import { mirrorTest } from '../support/mirror.js';

const RW = PROT_READ | PROT_WRITE;
const PRIV_ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const NPAGES = 64;

/** What every word of buffer page `p` holds at generation `gen` (never 0: gen >= 1). */
function tag(p: number, gen: number): number {
  return ((p << 16) | (gen & 0xffff)) >>> 0;
}
/** What a forked child writes into its own copies: a page field no parent page has. */
function poison(p: number, gen: number): number {
  return (((0x8000 | p) << 16) | (gen & 0xffff)) >>> 0;
}

const hex = (v: number): string => `0x${v.toString(16)}`;

/** 'gone': unmapped or PROT_NONE, so a device access must fail (EFAULT). */
type Val = number | 'gone';
interface Span { v: Val; from: number; until: number }

/**
 * Per-page history on a logical clock. A change is stamped with the tick before it started
 * and the tick after it ended: the old value may be visible until the end, the new one from
 * the start. A read between ticks t0 and t1 may see any value whose span meets [t0, t1].
 */
class History {
  clock = 0;
  readonly spans: Span[][];

  constructor(n: number, initial: (p: number) => Val) {
    this.spans = Array.from({ length: n }, (_, p) => [{ v: initial(p), from: 0, until: Infinity }]);
  }

  tick(): number {
    return ++this.clock;
  }

  /** Run `op`, which gives pages [first, first + n) the values `v(p)`. */
  async change(first: number, n: number, v: (p: number) => Val, op: () => Promise<void>): Promise<void> {
    const ts = this.tick();
    await op();
    const te = this.tick();
    for (let p = first; p < first + n; p++) {
      const s = this.spans[p];
      s[s.length - 1].until = te;
      s.push({ v: v(p), from: ts, until: Infinity });
    }
  }

  current(p: number): Val {
    const s = this.spans[p];
    return s[s.length - 1].v;
  }

  /** The numeric values page p may show to a read between t0 and t1, and whether it may be gone. */
  allowed(p: number, t0: number, t1: number): { vals: Set<number>; gone: boolean } {
    const vals = new Set<number>();
    let gone = false;
    for (const s of this.spans[p]) {
      if (s.from > t1 || s.until < t0) continue;
      if (s.v === 'gone') gone = true;
      else vals.add(s.v);
    }
    return { vals, gone };
  }

  describe(p: number, t0: number, t1: number): string {
    return this.spans[p].filter((s) => s.until >= t0 - 20 && s.from <= t1 + 20)
      .map((s) => `${typeof s.v === 'number' ? hex(s.v) : s.v}@[${s.from},${s.until}]`).join(' ');
  }
}

/**
 * A device read of pages [first, first + n) of the buffer, started at t0 and finished at
 * t1, checked word by word against the history. Returns the failures (empty = fine).
 */
function checkRead(h: History, first: number, n: number, out: { data?: Uint8Array; error?: unknown }, t0: number, t1: number, what: string): string[] {
  const bad: string[] = [];
  if (out.error !== undefined) {
    const e = out.error;
    let anyGone = false;
    for (let p = first; p < first + n; p++) anyGone ||= h.allowed(p, t0, t1).gone;
    if (!(e instanceof HmmError) || e.code !== 'EFAULT' || !anyGone) {
      bad.push(`${what}: read of pages [${first}, +${n}) failed with ${String(e)}; ${anyGone ? 'a page was gone but only EFAULT is allowed' : 'no page was unmapped or PROT_NONE during it'}`);
    }
    return bad;
  }
  const w = words(out.data!);
  if (w.length !== n * WORDS) return [`${what}: read returned ${w.length} words, want ${n * WORDS}`];
  for (let k = 0; k < n; k++) {
    const p = first + k;
    const { vals } = h.allowed(p, t0, t1);
    let badWords = 0;
    let firstBad = -1;
    for (let i = 0; i < WORDS; i++) {
      if (!vals.has(w[k * WORDS + i])) {
        if (firstBad < 0) firstBad = i;
        badWords++;
      }
    }
    if (badWords > 0 && bad.length < 6) {
      bad.push(`${what}: page ${p} (read in [${t0}, ${t1}]): ${badWords} words wrong, word ${firstBad} = ${hex(w[k * WORDS + firstBad])}; allowed {${[...vals].map(hex).join(', ')}}; history ${h.describe(p, t0, t1)}`);
    }
  }
  return bad;
}

/** A seeded number of scheduling points (the machine's scheduler decides who runs). */
async function yieldSome(sched: Scheduler, rand: () => number): Promise<void> {
  const n = rand() < 0.1 ? 0 : Math.floor(rand() * 8);
  for (let i = 0; i < n; i++) await sched.yield('test:stress');
}

/**
 * The real scheduler, except that yield() is always a macrotask. The machines built from
 * MACHINE without a seed use it (the stress tests run seeded: see setup()) because the
 * default one yields with queueMicrotask where there is no setImmediate (a browser), and an
 * mm loop that yields while it waits (hmm_range_fault on a migration entry) then never lets
 * the GPU completion it waits for in: the page freezes, and with it the whole browser run.
 * That bug has its own test below ('the default scheduler…').
 */
class MacrotaskScheduler implements Scheduler {
  yield(): Promise<void> {
    return new Promise((resolve) => macrotask(resolve));
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
  }
  wait<T>(p: Promise<T>): Promise<T> {
    return p;
  }
  now(): number {
    return performance.now();
  }
}

/** CPU changes per device read (see the progress gates in stress()). */
const OPS_PER_READ = 5;

const MACHINE = { systemPages: 8192, devicePages: 1024, aperturePages: 1024, scheduler: new MacrotaskScheduler() };

interface StressReport {
  reads: number[];
  /** Reads during which some page of theirs changed. */
  overlapped: number;
  failedReads: number;
  ops: Record<string, number>;
}

/**
 * One seeded run: `readers` device mirrors read in a loop while the CPU schedule makes
 * `nops` changes. Every read checked; at the end a quiescent read by each mirror and a CPU
 * read must equal the final state exactly.
 */
async function stress(m: Machine, proc: Process, readers: Mirror[], seed: number, nops: number, extra: { migrators?: Mirror[] } = {}): Promise<StressReport> {
  const rand = mulberry32(seed);
  const base = await proc.mmap(0, NPAGES * PAGE_SIZE, RW, PRIV_ANON);
  let gen = 1;
  await proc.write(base, pagesOf(NPAGES, (p) => tag(p, gen)));
  const h = new History(NPAGES, (p) => tag(p, 1));
  const failures: string[] = [];
  const report: StressReport = { reads: readers.map(() => 0), overlapped: 0, failedReads: 0, ops: {} };
  let done = false;
  // Progress gates, not the wall clock: the CPU does op k only once every reader has done
  // k / OPS_PER_READ reads, and a reader stays at most 2 reads ahead of that, so reads and
  // changes interleave at the same ratio however fast the GPU is relative to the CPU.
  let cpuOp = 0;
  const sched = m.sched;
  // The report is asserted on (overlapped > 5), so it must be the seed's alone, not the
  // event loop's: see setup().
  if (!(sched instanceof SeededScheduler)) throw new Error('stress() needs a machine on a SeededScheduler');
  const idle = (): Promise<void> => sched.yield('test:gate');

  const reader = async (fd: Mirror, idx: number): Promise<void> => {
    const rr = mulberry32(seed * 31 + idx + 1);
    while (!done && failures.length < 6) {
      if (report.reads[idx] > Math.floor(cpuOp / OPS_PER_READ) + 2) {
        await idle();
        continue;
      }
      // Mostly the whole buffer; sometimes a random piece of it.
      let first = 0;
      let n = NPAGES;
      if (rr() < 0.3) {
        first = Math.floor(rr() * NPAGES);
        n = 1 + Math.floor(rr() * (NPAGES - first));
      }
      const t0 = h.tick();
      const out: { data?: Uint8Array; error?: unknown } = {};
      try {
        out.data = (await fd.read(base + first * PAGE_SIZE, n)).data;
      } catch (e) {
        out.error = e;
        report.failedReads++;
      }
      const t1 = h.tick();
      for (let p = first; p < first + n; p++) {
        if (h.spans[p].some((s) => s.from > t0 && s.from < t1)) {
          report.overlapped++;
          break;
        }
      }
      failures.push(...checkRead(h, first, n, out, t0, t1, `seed ${seed} reader ${idx} read #${report.reads[idx]}`));
      report.reads[idx]++;
    }
  };

  const children: { child: Process; exitAt: number }[] = [];
  const cpu = async (): Promise<void> => {
    try {
      for (let op = 0; op < nops && failures.length === 0; op++) {
        cpuOp = op;
        while (failures.length === 0 && Math.min(...report.reads) < Math.floor(op / OPS_PER_READ)) await idle();
        await yieldSome(sched, rand);
        for (const c of children.filter((x) => x.exitAt === op)) {
          await c.child.exit();
          children.splice(children.indexOf(c), 1);
        }
        const first = Math.floor(rand() * NPAGES);
        const n = Math.min(NPAGES - first, 1 + Math.floor(rand() * 8));
        const addr = base + first * PAGE_SIZE;
        const len = n * PAGE_SIZE;
        const g = ++gen;
        const fresh = (): Uint8Array => pagesOf(n, (k) => tag(first + k, g));
        const kinds = ['store', 'dontneed', 'dontneed-zero', 'fixed', 'unmap-fixed', 'mprotect-ro', 'mprotect-none', 'fork'];
        if (extra.migrators) kinds.push('migrate', 'migrate', 'migrate', 'migrate-back');
        const kind = kinds[Math.floor(rand() * kinds.length)];
        report.ops[kind] = (report.ops[kind] ?? 0) + 1;
        switch (kind) {
          case 'store': // same frames, new contents
            await h.change(first, n, (p) => tag(p, g), () => proc.write(addr, fresh()));
            break;
          case 'dontneed': // frames freed (and reused); demand-zero; new contents
            await h.change(first, n, () => 0, () => proc.madvise(addr, len, MADV_DONTNEED));
            await yieldSome(sched, rand);
            await h.change(first, n, (p) => tag(p, g), () => proc.write(addr, fresh()));
            break;
          case 'dontneed-zero': // left demand-zero for a while
            await h.change(first, n, () => 0, () => proc.madvise(addr, len, MADV_DONTNEED));
            break;
          case 'fixed': // a new VMA replaces the old one in one step
            await h.change(first, n, () => 0, async () => { expect(await proc.mmap(addr, len, RW, PRIV_ANON | MAP_FIXED)).toBe(addr); });
            await yieldSome(sched, rand);
            await h.change(first, n, (p) => tag(p, g), () => proc.write(addr, fresh()));
            break;
          case 'unmap-fixed': // a hole for a while, then a new mapping
            await h.change(first, n, () => 'gone', () => proc.munmap(addr, len));
            await yieldSome(sched, rand);
            await h.change(first, n, () => 0, async () => { expect(await proc.mmap(addr, len, RW, PRIV_ANON | MAP_FIXED)).toBe(addr); });
            await yieldSome(sched, rand);
            await h.change(first, n, (p) => tag(p, g), () => proc.write(addr, fresh()));
            break;
          case 'mprotect-ro': { // values unchanged; then a store through the restored permission
            await proc.mprotect(addr, len, PROT_READ);
            await yieldSome(sched, rand);
            await proc.mprotect(addr, len, RW);
            await h.change(first, n, (p) => tag(p, g), () => proc.write(addr, fresh()));
            break;
          }
          case 'mprotect-none': {
            const keep = Array.from({ length: n }, (_, k) => h.current(first + k));
            await h.change(first, n, () => 'gone', () => proc.mprotect(addr, len, PROT_NONE));
            await yieldSome(sched, rand);
            await h.change(first, n, (p) => keep[p - first], () => proc.mprotect(addr, len, RW));
            break;
          }
          case 'fork': { // COW: the parent's store breaks it; the child scribbles on its copies
            const child = await proc.fork();
            children.push({ child, exitAt: op + 1 + Math.floor(rand() * 6) });
            await yieldSome(sched, rand);
            if (rand() < 0.5) {
              const cf = Math.floor(rand() * NPAGES);
              const cn = Math.min(NPAGES - cf, 1 + Math.floor(rand() * 8));
              // The child may find unmapped / PROT_NONE pages only if the parent had them.
              if (Array.from({ length: cn }, (_, k) => h.current(cf + k)).every((v) => v !== 'gone')) {
                await child.write(base + cf * PAGE_SIZE, pagesOf(cn, (k) => poison(cf + k, g)));
              }
            }
            await h.change(first, n, (p) => tag(p, g), () => proc.write(addr, fresh()));
            if (rand() < 0.5) {
              const cf = Math.floor(rand() * NPAGES);
              const cn = Math.min(NPAGES - cf, 1 + Math.floor(rand() * 8));
              if (Array.from({ length: cn }, (_, k) => h.current(cf + k)).every((v) => v !== 'gone')) {
                await child.write(base + cf * PAGE_SIZE, pagesOf(cn, (k) => poison(cf + k, g)));
              }
            }
            break;
          }
          case 'migrate': // a device takes the pages, or gives them back: values unchanged
          case 'migrate-back': {
            const mg = extra.migrators![Math.floor(rand() * extra.migrators!.length)];
            // Over a hole or PROT_NONE a migration is EINVAL: only where every page is there.
            if (Array.from({ length: n }, (_, k) => h.current(first + k)).some((v) => v === 'gone')) break;
            try {
              if (kind === 'migrate') await mg.migrateToDevice(addr, n);
              else await mg.migrateToSystem(addr, n);
            } catch (e) {
              // Losing a race with a reader that faults pages back is fine; nothing else is.
              if (!(e instanceof HmmError) || (e.code !== 'ENOENT' && e.code !== 'EBUSY')) throw e;
            }
            break;
          }
        }
      }
    } finally {
      done = true;
    }
  };

  await Promise.all([cpu(), ...readers.map((fd, i) => reader(fd, i))]);
  expect(failures, `seed ${seed}: reads that saw a value the page did not hold (ops ${JSON.stringify(report.ops)})`).toEqual([]);
  // A GPU completion the pump stopped waiting for (real time ran out) lands where the host
  // put it: the run would no longer replay from its seed.
  expect(sched.stats.graceExpirations, `seed ${seed}: scheduling points decided by real time`).toBe(0);
  for (const c of children) await c.child.exit();

  // Quiescent: every mirror and the CPU see exactly the final state.
  for (let p = 0; p < NPAGES; p++) if (h.current(p) === 'gone') throw new Error(`page ${p} left gone`);
  const want = pagesOf(NPAGES, (p) => h.current(p) as number);
  for (const [i, fd] of readers.entries()) {
    const t0 = h.tick();
    const r = await fd.read(base, NPAGES);
    const t1 = h.tick();
    expect(checkRead(h, 0, NPAGES, { data: r.data }, t0, t1, `seed ${seed} final read ${i}`)).toEqual([]);
    expect(firstDiff(r.data, want), `seed ${seed}: final device ${i} read`).toBeNull();
  }
  expect(firstDiff(await proc.read(base, NPAGES * PAGE_SIZE), want), `seed ${seed}: final CPU read`).toBeNull();
  checkFrameAccounting(m);
  await proc.munmap(base, NPAGES * PAGE_SIZE);
  return report;
}

/** The mirrors a test opened: closed after each test, before the fixture tears the machine down (and recounts it). */
const opened: Dmirror[] = [];

afterEach(async () => {
  for (const fd of opened.splice(0)) await fd.close();
});

/**
 * A machine from the fixture's factory, a process, and dmirror0 and dmirror1 opened on it.
 * `seed`: the machine runs on a SeededScheduler, so the interleaving of CPU changes, reads
 * and GPU completions (and the fault path's HMM_RANGE_DEFAULT_TIMEOUT, in virtual time) is
 * the seed's alone: no test here depends on how fast the machine is.
 */
async function setup(machines: MachineFactory, seed?: number, extra: { ownReadOnlyWriteMigrates?: boolean } = {}): Promise<{ m: Machine; proc: Process; fd0: Dmirror; fd1: Dmirror }> {
  const m = await machines({ ...MACHINE, ...extra, ...(seed === undefined ? {} : { scheduler: new SeededScheduler(seed) }) });
  const proc = m.spawn();
  const fd0 = await m.devices[0].open(proc);
  opened.push(fd0);
  const fd1 = await m.devices[1].open(proc);
  opened.push(fd1);
  return { m, proc, fd0, fd1 };
}

describe('dmirror coherence: the GPU never reads through a stale entry', () => {

  mirrorTest('the default scheduler yields to the event loop (so a GPU completion can land while the mm waits)', async ({ machines }) => {
    // hmm_range_fault meeting a migration entry yields and walks again, holding the mmap
    // read lock, until the migration ends; a migration back from device memory ends after
    // a GPU readback (a mapAsync: an event-loop task). If yield() is a microtask the loop
    // never lets that task run: the process (here: the browser page) hangs for good.
    const m = await machines({ systemPages: 4096 });
    let fired = false;
    setTimeout(() => { fired = true; }, 0);
    let spins = 0;
    while (!fired && spins < 5000) {
      await m.sched.yield('test:spin');
      spins++;
    }
    expect(fired, `a setTimeout(0) still had not run after ${spins} yields`).toBe(true);
  });

  mirrorTest.for([1, 2, 3, 4])('one device reading while the CPU remaps (seed %s)', async (seed, { machines }) => {
    const { m, proc, fd0 } = await setup(machines, seed);
    const r = await stress(m, proc, [fd0], seed, 60);
    // The schedule must really have overlapped reads with changes (the count of reads is
    // the progress gates', floor(59 / OPS_PER_READ) = 11, not a function of speed).
    expect(r.reads[0]).toBeGreaterThan(10);
    expect(r.overlapped).toBeGreaterThan(5);
  });

  mirrorTest.for([11, 12])('two devices reading while the CPU remaps (seed %s)', async (seed, { machines }) => {
    const { m, proc, fd0, fd1 } = await setup(machines, seed);
    const r = await stress(m, proc, [fd0, fd1], seed, 60);
    expect(Math.min(...r.reads)).toBeGreaterThan(5);
    expect(r.overlapped).toBeGreaterThan(5);
  });

  mirrorTest.for([21, 22])('device 0 reading while the CPU remaps and device 1 migrates pages in and out (seed %s)', async (seed, { machines }) => {
    const { m, proc, fd0, fd1 } = await setup(machines, seed);
    const r = await stress(m, proc, [fd0], seed, 60, { migrators: [fd1] });
    expect(r.reads[0]).toBeGreaterThan(10);
    expect(r.overlapped).toBeGreaterThan(5);
  });

  mirrorTest.for([31, 32])('both devices reading while the CPU remaps and either migrates pages in and out (seed %s)', async (seed, { machines }) => {
    const { m, proc, fd0, fd1 } = await setup(machines, seed);
    const r = await stress(m, proc, [fd0, fd1], seed, 60, { migrators: [fd0, fd1] });
    expect(Math.min(...r.reads)).toBeGreaterThan(5);
    expect(r.overlapped).toBeGreaterThan(5);
  });

  mirrorTest('a seed replays its run: the same interleaving and the same report twice', async ({ machines }) => {
    // What the stress tests assert (overlapped > 5, reads > N) holds on every run only if
    // the schedule is the seed's alone: two fresh machines, one seed, the same scheduler
    // trace (every resumption, GPU completions included) and the same report.
    const seed = 31;
    const once = async (): Promise<{ report: StressReport; trace: string[] }> => {
      const { m, proc, fd0, fd1 } = await setup(machines, seed);
      const report = await stress(m, proc, [fd0, fd1], seed, 60, { migrators: [fd0, fd1] });
      if (!(m.sched instanceof SeededScheduler)) throw new Error('setup(machines, seed) gives a SeededScheduler');
      return { report, trace: [...m.sched.trace] };
    };
    const first = await once();
    const second = await once();
    expect(second.trace.length, 'scheduler steps').toBe(first.trace.length);
    expect(second.trace).toEqual(first.trace);
    expect(second.report).toEqual(first.report);
    expect(first.report.overlapped).toBeGreaterThan(5);
  });

  mirrorTest('a second mirror of the same device is not left mapping a frame that device 0 migrated away', async ({ machines }) => {
    // Two opens of /dev/hmm_dmirror0 by one process: A migrates, B only reads. The
    // migration's invalidation carries owner = device 0; B must still drop its entries for
    // the old frames, which are freed and reused once the pages live in device memory.
    const m = await machines(MACHINE);
    const proc = m.spawn();
    const a = await m.devices[0].open(proc);
    opened.push(a);
    const b = await m.devices[0].open(proc);
    opened.push(b);
    const n = 16;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(buf, pagesOf(n, (p) => tag(p, 1)));
    expect(firstDiff((await b.read(buf, n)).data, pagesOf(n, (p) => tag(p, 1))), 'B before A migrates').toBeNull();

    const mig = await a.migrateToDevice(buf, n);
    expect(mig.cpages).toBe(n);
    // The freed frames go to new pages of another buffer with other contents.
    const other = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(other, pagesOf(n, (p) => tag(0x100 + p, 7)));
    const r1 = await b.read(buf, n);
    const bad1 = checkRead(new History(n, (p) => tag(p, 1)), 0, n, { data: r1.data }, 1, 1, 'B after A migrated');
    expect(bad1).toEqual([]);

    // And a CPU store (faulting the pages back to new frames) is seen by B.
    await proc.write(buf, pagesOf(n, (p) => tag(p, 2)));
    const r2 = await b.read(buf, n);
    expect(checkRead(new History(n, (p) => tag(p, 2)), 0, n, { data: r2.data }, 1, 1, 'B after the CPU store')).toEqual([]);
    checkFrameAccounting(m);
  });
});

describe('dmirror coherence both ways', () => {

  function expectAll(got: Uint8Array, want: (p: number) => number, n: number, what: string): void {
    const w = words(got);
    expect(w.length, `${what}: words`).toBe(n * WORDS);
    const bad: string[] = [];
    for (let p = 0; p < n; p++) {
      for (let i = 0; i < WORDS; i++) {
        if (w[p * WORDS + i] !== want(p)) {
          if (bad.length < 6) bad.push(`page ${p} word ${i}: ${hex(w[p * WORDS + i])}, want ${hex(want(p))}`);
          break;
        }
      }
    }
    expect(bad, what).toEqual([]);
  }

  mirrorTest('a device write is what the CPU reads after the command, and a CPU write is what the next device read sees', async ({ machines }) => {
    const { m, proc, fd0 } = await setup(machines, 7);
    const n = 32;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    // Half the pages have CPU contents (and a GPU copy), half are untouched.
    await proc.write(buf, pagesOf(n / 2, (p) => tag(p, 1)));
    expectAll((await fd0.read(buf, n)).data, (p) => (p < n / 2 ? tag(p, 1) : 0), n, 'first device read');
    for (let g = 2; g < 10; g += 2) {
      const w = await fd0.write(buf, pagesOf(n, (p) => tag(p, g)));
      expect(w.cpages).toBe(n);
      expectAll(await proc.read(buf, n * PAGE_SIZE), (p) => tag(p, g), n, `CPU read after device write ${g}`);
      // The CPU overwrites every other page; the device's next read sees exactly that.
      for (let p = 0; p < n; p += 2) await proc.write(buf + p * PAGE_SIZE, pagesOf(1, () => tag(p, g + 1)));
      expectAll((await fd0.read(buf, n)).data, (p) => tag(p, p % 2 === 0 ? g + 1 : g), n, `device read after CPU write ${g + 1}`);
    }
    checkFrameAccounting(m);
  });

  mirrorTest('a device write of part of what it mirrors leaves the rest as the CPU last wrote it', async ({ machines }) => {
    const { m, proc, fd0 } = await setup(machines, 7);
    const n = 16;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(buf, pagesOf(n, (p) => tag(p, 1)));
    await fd0.read(buf, n); // GPU copies of all 16 frames
    await proc.write(buf, pagesOf(n, (p) => tag(p, 2))); // CPU changes them all
    await fd0.write(buf + 4 * PAGE_SIZE, pagesOf(4, (k) => tag(4 + k, 3))); // GPU writes 4..7 only
    const want = (p: number): number => (p >= 4 && p < 8 ? tag(p, 3) : tag(p, 2));
    expectAll(await proc.read(buf, n * PAGE_SIZE), want, n, 'CPU after a partial device write');
    expectAll((await fd0.read(buf, n)).data, want, n, 'device after a partial device write');
    checkFrameAccounting(m);
  });

  mirrorTest('dev0 writes, dev1 reads the same pages, and back, with the pages in either device memory or RAM', async ({ machines }) => {
    const { m, proc, fd0, fd1 } = await setup(machines, 7);
    const n = 24;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    const rand = mulberry32(77);
    const cur = new Array<number>(n).fill(0);
    const fds = [fd0, fd1];
    for (let g = 1; g <= 18; g++) {
      // Where the pages live before this round's writer runs.
      const where = Math.floor(rand() * 3);
      if (where < 2) {
        const from = Math.floor(rand() * n);
        const cnt = Math.min(n - from, 1 + Math.floor(rand() * 12));
        const r = await fds[where].migrateToDevice(buf + from * PAGE_SIZE, cnt);
        expectAll(r.data, (k) => cur[from + k], cnt, `round ${g}: migrate to dev${where}`);
      }
      // This round's writer: the CPU, dev0 or dev1, over a random piece.
      const writer = g % 3;
      const from = Math.floor(rand() * n);
      const cnt = Math.min(n - from, 1 + Math.floor(rand() * 12));
      const data = pagesOf(cnt, (k) => tag(from + k, g));
      if (writer === 2) await proc.write(buf + from * PAGE_SIZE, data);
      else expect((await fds[writer].write(buf + from * PAGE_SIZE, data)).cpages).toBe(cnt);
      for (let k = 0; k < cnt; k++) cur[from + k] = tag(from + k, g);
      // Everybody reads everything, in a seeded order.
      const order = [0, 1, 2].sort(() => rand() - 0.5);
      for (const reader of order) {
        const got = reader === 2 ? await proc.read(buf, n * PAGE_SIZE) : (await fds[reader].read(buf, n)).data;
        expectAll(got, (p) => cur[p], n, `round ${g}: writer ${writer === 2 ? 'CPU' : `dev${writer}`}, reader ${reader === 2 ? 'CPU' : `dev${reader}`}`);
      }
      checkFrameAccounting(m);
    }
    // Device memory given back: still the same data everywhere.
    await fd0.release();
    await fd1.release();
    expectAll(await proc.read(buf, n * PAGE_SIZE), (p) => cur[p], n, 'CPU after release');
    expectAll((await fd1.read(buf, n)).data, (p) => cur[p], n, 'dev1 after release');
    checkFrameAccounting(m);
  });

  mirrorTest('dev0 writes while dev1 reads other pages concurrently; then each sees the other\'s data', async ({ machines }) => {
    const { m, proc, fd0, fd1 } = await setup(machines, 7);
    const n = 32;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(buf, pagesOf(n, (p) => tag(p, 1)));
    for (let g = 2; g < 8; g++) {
      // dev0 writes the low half, dev1 the high half, both read the other half, at once.
      const lo = pagesOf(n / 2, (p) => tag(p, g));
      const hi = pagesOf(n / 2, (k) => tag(n / 2 + k, g));
      const [r1, r0] = await Promise.all([
        fd1.read(buf, n / 2), fd0.read(buf + (n / 2) * PAGE_SIZE, n / 2),
        fd0.write(buf, lo), fd1.write(buf + (n / 2) * PAGE_SIZE, hi),
      ]);
      // The concurrent reads saw the old or the new generation, whole pages of either.
      const ok = (got: Uint8Array, off: number): boolean => {
        const w = words(got);
        for (let k = 0; k < n / 2; k++) {
          const v = w[k * WORDS];
          if (v !== tag(off + k, g) && v !== tag(off + k, g - 1)) return false;
          for (let i = 1; i < WORDS; i++) if (w[k * WORDS + i] !== v && w[k * WORDS + i] !== tag(off + k, g) && w[k * WORDS + i] !== tag(off + k, g - 1)) return false;
        }
        return true;
      };
      expect(ok((r1 as { data: Uint8Array }).data, 0), `round ${g}: dev1 concurrent read`).toBe(true);
      expect(ok((r0 as { data: Uint8Array }).data, n / 2), `round ${g}: dev0 concurrent read`).toBe(true);
      // After both commands returned: exact.
      expectAll((await fd1.read(buf, n)).data, (p) => tag(p, g), n, `round ${g}: dev1 after`);
      expectAll((await fd0.read(buf, n)).data, (p) => tag(p, g), n, `round ${g}: dev0 after`);
      expectAll(await proc.read(buf, n * PAGE_SIZE), (p) => tag(p, g), n, `round ${g}: CPU after`);
    }
    checkFrameAccounting(m);
  });

  /**
   * dev0 writes pages it already maps while `migrator` moves the same pages into its
   * device memory. Both complete and only the write changes values, so whatever the order,
   * afterwards the pages hold what dev0 wrote: in device memory, in RAM, everywhere.
   */
  async function writeRacingMigration(machines: MachineFactory, own: boolean): Promise<void> {
    const { m, proc, fd0, fd1 } = await setup(machines, 7);
    const migrator = own ? fd0 : fd1;
    const n = 16;
    const rand = mulberry32(own ? 5 : 6);
    for (let g = 2; g < 8; g++) {
      const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
      await proc.write(buf, pagesOf(n, (p) => tag(p, g - 1)));
      await fd0.read(buf, n); // mapped, so the write needs no fault
      const delay = Math.floor(rand() * 4);
      const migrate = (async () => {
        for (let t = 0; t < delay; t++) await new Promise<void>((r) => setTimeout(r, 0));
        try {
          await migrator.migrateToDevice(buf, n);
        } catch (e) {
          if (!(e instanceof HmmError) || e.code !== 'ENOENT') throw e;
        }
      })();
      const w = await fd0.write(buf, pagesOf(n, (p) => tag(p, g)));
      await migrate;
      expect(w.cpages).toBe(n);
      const what = `round ${g} (migration started after ${delay} ticks)`;
      expectAll((await fd0.read(buf, n)).data, (p) => tag(p, g), n, `${what}: dev0 read`);
      expectAll((await fd1.read(buf, n)).data, (p) => tag(p, g), n, `${what}: dev1 read`);
      expectAll(await proc.read(buf, n * PAGE_SIZE), (p) => tag(p, g), n, `${what}: CPU read`);
      checkFrameAccounting(m);
      await proc.munmap(buf, n * PAGE_SIZE);
    }
  }

  mirrorTest('a device write racing a migration of the same pages to the other device is not lost', async ({ machines }) => {
    await writeRacingMigration(machines, false);
  });

  mirrorTest('a device write racing a migration of the same pages to its own device is not lost', async ({ machines }) => {
    await writeRacingMigration(machines, true);
  });

  /**
   * Settles p, or fails once the mirror has run more than `rounds` GPU rounds on it (a
   * command replaying forever is a bug too). Gated on progress, not on time: a slow machine
   * only takes longer to reach the bound.
   */
  async function withinRounds<T>(p: Promise<T>, roundsNow: () => number, rounds: number, what: string, detail: () => string): Promise<T> {
    const start = roundsNow();
    let settled = false;
    const watch = (async (): Promise<never> => {
      while (!settled) {
        if (roundsNow() - start > rounds) throw new Error(`${what}: not done after ${rounds} GPU rounds ${detail()}`);
        await new Promise<void>((r) => setTimeout(r, 5));
      }
      return new Promise<never>(() => {});
    })();
    try {
      return await Promise.race([p, watch]);
    } finally {
      settled = true;
    }
  }

  /**
   * n pages (tag 1) in dev0's memory, then fork: parent and child map the same device pages
   * read-only. `writer` is `who`'s process, `other` the other one, and `wfd` the writer's
   * dev0 mirror (the parent's fd0, or one opened on the child).
   */
  async function forkOnDevice(machines: MachineFactory, who: 'parent' | 'child', extra: { ownReadOnlyWriteMigrates?: boolean } = {}): Promise<{
    m: Machine; child: Process; writer: Process; other: Process; wfd: Dmirror; buf: number; n: number;
  }> {
    const { m, proc, fd0 } = await setup(machines, 7, extra);
    const n = 4;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(buf, pagesOf(n, (p) => tag(p, 1)));
    expect((await fd0.migrateToDevice(buf, n)).cpages).toBe(n);
    const child = await proc.fork();
    const wfd = who === 'parent' ? fd0 : await m.devices[0].open(child);
    if (wfd !== fd0) opened.push(wfd);
    return { m, child, writer: who === 'parent' ? proc : child, other: who === 'parent' ? child : proc, wfd, buf, n };
  }

  mirrorTest.for(['parent', 'child'] as const)('a device write into its own read-only device memory after fork is EFAULT, as Linux (writer: the %s)', async (who, { machines }) => {
    // hmm_range_fault reports the caller's own device-private pages without faulting, a
    // read-only one (COW-shared after fork) without HMM_PFN_WRITE; test_hmm's
    // dmirror_do_fault then fails the write with EFAULT. Nothing changes.
    const { m, child, writer, wfd, buf, n } = await forkOnDevice(machines, who);
    await expect(wfd.write(buf, pagesOf(n, (p) => tag(p, 2)))).rejects.toBeErrno('EFAULT');
    const snap = await wfd.snapshot(buf, n);
    expect([...snap]).toEqual(Array(n).fill(HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_READ));
    expectAll(await writer.read(buf, n * PAGE_SIZE), (p) => tag(p, 1), n, `${who}'s CPU read`);
    checkFrameAccounting(m);
    await child.exit();
    checkFrameAccounting(m);
  });

  mirrorTest.for(['parent', 'child'] as const)('with ownReadOnlyWriteMigrates the write migrates the page and breaks COW (writer: the %s)', async (who, { machines }) => {
    // A dev0 write by parent or child into the device pages both map read-only must get it
    // its own copy (as a CPU store would), not replay the read-only entry forever.
    const { m, child, writer, other, wfd, buf, n } = await forkOnDevice(machines, who, { ownReadOnlyWriteMigrates: true });
    const w = await withinRounds(wfd.write(buf, pagesOf(n, (p) => tag(p, 2))), () => wfd.stats.rounds, 200, `${who}'s dev0 write`,
      () => `(${totals(wfd.servicer.records).rangeFaults} range faults so far)`);
    expect(w.cpages).toBe(n);
    expectAll((await wfd.read(buf, n)).data, (p) => tag(p, 2), n, `${who}'s device read`);
    expectAll(await writer.read(buf, n * PAGE_SIZE), (p) => tag(p, 2), n, `${who}'s CPU read`);
    expectAll(await other.read(buf, n * PAGE_SIZE), (p) => tag(p, 1), n, 'the other process keeps its data');
    checkFrameAccounting(m);
    await child.exit();
    checkFrameAccounting(m);
  });

  mirrorTest('a device read retried after a collision stays a read (no EPERM for a page made read-only meanwhile)', async ({ machines }) => {
    // fd0 reads 4 pages; page 3 lives in dev1's memory, so hmm_range_fault migrates it back
    // (dev1's migrate_to_ram), whose MIGRATE invalidation makes this fault EBUSY and the
    // driver retries. Meanwhile (queued on the mmap lock behind the fault) mprotect makes
    // pages 0-2 read-only. The retry must still ask for read access only: the first walk's
    // HMM_PFN_WRITE output bits alias HMM_PFN_REQ_WRITE and must not be fed back as requests.
    const { m, proc, fd0, fd1 } = await setup(machines, 7);
    const dev1 = m.devices[1];
    const n = 4;
    for (let round = 0; round < 3; round++) {
      const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
      await proc.write(buf, pagesOf(n, (p) => tag(p, round + 1)));
      expect((await fd1.migrateToDevice(buf + 3 * PAGE_SIZE, 1)).cpages).toBe(1);
      const ops = dev1.pagemap.ops;
      const orig = ops.migrateToRam?.bind(ops);
      if (orig === undefined) throw new Error('a device-private pagemap has migrate_to_ram');
      let mprotect: Promise<void> | null = null;
      ops.migrateToRam = (f) => {
        mprotect ??= proc.mprotect(buf, 3 * PAGE_SIZE, PROT_READ);
        return orig(f);
      };
      // hmm_range_fault retries are in the fault servicer's batch records.
      const retries = (): number => totals(fd0.servicer.records).retries;
      const retriesBefore = retries();
      let r: Awaited<ReturnType<Mirror['read']>>;
      try {
        r = await fd0.read(buf, n);
      } finally {
        ops.migrateToRam = orig;
        await mprotect;
      }
      expect(mprotect, 'dev1 migrate_to_ram ran during the read').not.toBeNull();
      expect(retries(), 'the fault was retried').toBeGreaterThan(retriesBefore);
      expectAll(r.data, (p) => tag(p, round + 1), n, `round ${round}: device read`);
      checkFrameAccounting(m);
      await proc.munmap(buf, n * PAGE_SIZE);
    }
  });

  mirrorTest('a device write into pages COW-shared with a child breaks COW: the child keeps its data', async ({ machines }) => {
    const { m, proc, fd0, fd1 } = await setup(machines, 7);
    const n = 8;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(buf, pagesOf(n, (p) => tag(p, 1)));
    await fd1.read(buf, n); // dev1 maps the shared frames read-only after the fork below
    const child = await proc.fork();
    await fd0.write(buf, pagesOf(n, (p) => tag(p, 2)));
    expectAll(await proc.read(buf, n * PAGE_SIZE), (p) => tag(p, 2), n, 'parent after device write');
    expectAll((await fd1.read(buf, n)).data, (p) => tag(p, 2), n, 'dev1 (parent) after dev0 write');
    expectAll(await child.read(buf, n * PAGE_SIZE), (p) => tag(p, 1), n, 'child keeps its COW copy');
    // The child's own mirror sees its data, and its write does not leak into the parent.
    const cfd = await m.devices[1].open(child);
    opened.push(cfd);
    expectAll((await cfd.read(buf, n)).data, (p) => tag(p, 1), n, 'child mirror');
    await cfd.write(buf, pagesOf(n, (p) => poison(p, 3)));
    expectAll((await fd0.read(buf, n)).data, (p) => tag(p, 2), n, 'parent mirror after the child wrote');
    expectAll(await child.read(buf, n * PAGE_SIZE), (p) => poison(p, 3), n, 'child after its device write');
    checkFrameAccounting(m);
    await cfd.close();
    opened.splice(opened.indexOf(cfd), 1);
    await child.exit();
    checkFrameAccounting(m);
  });
});
