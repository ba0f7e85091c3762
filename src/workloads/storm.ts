/**
 * An invalidation storm on the CPU side: at a set rate, operations that make the mm send
 * mmu notifier invalidations over a mirrored buffer while a device works on it. The
 * operations preserve the buffer's contents (all but remap atomically, so the workloads'
 * own result checks stay valid) — what changes is where the data lives, which is what the
 * device must keep up with:
 *
 *   remap    read a page, munmap + mmap MAP_FIXED, write it back (UNMAP; a new frame) —
 *            racy against a device by construction (it sees the hole or zeros in between)
 *   cow      write a word back unchanged while a forked child shares the page (CLEAR; COW)
 *   reclaim  MADV_PAGEOUT (CLEAR; the page goes to swap, the next touch swaps it in)
 *   protect  mprotect(PROT_READ) then back to read-write (PROTECTION_VMA) — only for
 *            read-only workloads, since a device write in between would rightly get EPERM
 *
 * The seed drives every choice: which operation, which page, and when — the operations
 * arrive as a Poisson process at the rate (exponential gaps drawn from the seed, in the
 * scheduler's time), so a seed is one storm: under the seeded scheduler (virtual time) the
 * same seed replays it exactly; on the host's clock the same operations come at the same
 * offsets from the storm's start.
 */
import { err } from '../errors.js';
import { MADV_PAGEOUT } from '../mm/validate.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../mm/constants.js';
import type { Process } from '../mm/process.js';
import { mulberry32 } from '../sched/seeded.js';

export type StormKind = 'remap' | 'cow' | 'reclaim' | 'protect';

/**
 * The highest rate a run may ask for (the lab's bound too): above a few thousand a second
 * the storm is all the CPU does and the workload never finishes.
 */
export const MAX_STORM_RATE = 5000;

export interface StormOptions {
  /** Invalidating operations per second (scheduler time). */
  rate: number;
  start: number;
  end: number;
  seed: number;
  kinds: readonly StormKind[];
}

export interface Storm {
  /** Stop after the operation in flight; resolves with what was done. */
  stop(): Promise<{ ops: number; byKind: Record<string, number> }>;
}

/** EINVAL, before anything starts, for a rate above MAX_STORM_RATE or a range of no page. */
export function startStorm(p: Process, opts: StormOptions): Storm {
  if (!(opts.rate >= 0 && opts.rate <= MAX_STORM_RATE)) throw err('EINVAL', `storm: rate ${opts.rate}/s is outside 0..${MAX_STORM_RATE}`);
  if (!(opts.end - opts.start >= PAGE_SIZE)) throw err('EINVAL', `storm: [0x${opts.start.toString(16)}, 0x${opts.end.toString(16)}) holds no page`);
  const sched = p.mm.core.sched;
  const rnd = mulberry32(opts.seed);
  const pages = (opts.end - opts.start) / PAGE_SIZE;
  const byKind: Record<string, number> = {};
  let ops = 0;
  let stopped = false;
  let child: Process | null = null;

  const one = async (kind: StormKind): Promise<void> => {
    const addr = opts.start + Math.floor(rnd() * pages) * PAGE_SIZE;
    switch (kind) {
      case 'remap': {
        const data = await p.read(addr, PAGE_SIZE);
        await p.munmap(addr, PAGE_SIZE);
        await p.mmap(addr, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
        await p.write(addr, data);
        break;
      }
      case 'cow': {
        child ??= await p.fork();
        const word = await p.read(addr, 4);
        await p.write(addr, word);
        break;
      }
      case 'reclaim':
        await p.madvise(addr, PAGE_SIZE, MADV_PAGEOUT);
        break;
      case 'protect':
        await p.mprotect(addr, PAGE_SIZE, PROT_READ);
        await p.mprotect(addr, PAGE_SIZE, PROT_READ | PROT_WRITE);
        break;
    }
    ops++;
    byKind[kind] = (byKind[kind] ?? 0) + 1;
  };

  const loop = (async (): Promise<void> => {
    if (opts.rate <= 0 || opts.kinds.length === 0) return;
    // One stream for the arrival times, another for the operations: the schedule does not
    // shift when an operation draws more or less.
    const gaps = mulberry32((opts.seed ^ 0x9e3779b9) >>> 0);
    const gapMs = (): number => (-Math.log(1 - gaps()) * 1000) / opts.rate;
    const t0 = sched.now();
    let due = t0 + gapMs();
    while (!stopped) {
      await sched.sleep(Math.max(1, due - sched.now()), 'storm');
      // Timers are coarse: run every operation that fell due by now, each at its turn.
      while (due <= sched.now() && !stopped) {
        await one(opts.kinds[Math.floor(rnd() * opts.kinds.length)]);
        due += gapMs();
      }
    }
  })();

  return {
    async stop() {
      stopped = true;
      await loop;
      if (child !== null) await child.exit();
      return { ops, byKind };
    },
  };
}
