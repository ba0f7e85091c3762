/**
 * The CPU-side preset of the headless experiment: a "driver" mirrors a process through
 * hmm_range_fault while the CPU keeps invalidating under it, once with the upstream
 * sequence count and once with the v5.2 valid flag, and counts how often each scheme
 * would have let a stale pfn through. No GPU involved: this is the mm emulator and the
 * HMM core at work, measured.
 */
import { HmmError } from '../errors.js';
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE } from '../hmm/pfn.js';
import { hmmRange, hmmRangeFaultRetry } from '../hmm/range-fault.js';
import { hmmMirrorRegister, hmmRangeFaultV52, hmmRangeRegister, hmmRangeUnregister, hmmRangeV52, hmmRangeWaitUntilValid } from '../hmm/range-v52.js';
import { PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_ANONYMOUS, MAP_PRIVATE, MADV_DONTNEED } from '../mm/constants.js';
import { createMachine } from '../system.js';
import { mappedPfn } from '../mm/pagewalk.js';
import { mulberry32 } from '../sched/seeded.js';

export interface MmTourOptions { pages: number; rounds: number; seed: number; log?: (line: string) => void }

export interface SchemeResult {
  scheme: 'seq' | 'valid-flag';
  rounds: number;
  committed: number;
  retries: number;
  stalePfnsCommitted: number;
  ms: number;
}

export async function mmTour(opts: MmTourOptions): Promise<SchemeResult[]> {
  const results: SchemeResult[] = [];
  for (const scheme of ['seq', 'valid-flag'] as const) {
    const m = await createMachine({ systemPages: 1 << 16, devices: 0 });
    const p = m.spawn();
    const rnd = mulberry32(opts.seed);
    const len = opts.pages * PAGE_SIZE;
    const addr = await p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    // Frames freed by an invalidation are reused last-in first-out; touching a scratch page
    // first makes the refaulted page land in a different frame, so staleness is visible.
    const scratch = await p.mmap(0, opts.rounds * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    let scratchUsed = 0;
    const interfereNow = async (victim: number): Promise<void> => {
      await p.madvise(victim, PAGE_SIZE, MADV_DONTNEED);
      await p.write(scratch + scratchUsed++ * PAGE_SIZE, new Uint8Array([1]));
      await p.write(victim, new Uint8Array([2]));
    };
    const sub = await p.mm.notifiers.insertInterval(addr, len, { invalidate: (s, _r, seq) => { s.setSeq(seq); return true; } });
    await p.mm.lock.writeLock();
    const hmm = hmmMirrorRegister(p.mm, { syncCpuDevicePagetables: () => true });
    p.mm.lock.writeUnlock();
    const r: SchemeResult = { scheme, rounds: opts.rounds, committed: 0, retries: 0, stalePfnsCommitted: 0, ms: 0 };
    const t0 = performance.now();
    for (let round = 0; round < opts.rounds; round++) {
      const first = Math.floor(rnd() * opts.pages);
      const n = Math.min(opts.pages - first, 1 + Math.floor(rnd() * 16));
      const start = addr + first * PAGE_SIZE;
      const end = start + n * PAGE_SIZE;
      // The CPU invalidates a random page of the window right after the device's fault
      // (between hmm_range_fault and the driver's final check) half of the time.
      const victim = start + Math.floor(rnd() * n) * PAGE_SIZE;
      const interfere = rnd() < 0.5;
      for (let attempt = 0; ; attempt++) {
        let pfns: Uint32Array;
        let ok: boolean;
        if (scheme === 'seq') {
          const range = hmmRange({ notifier: sub, start, end, defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
          r.retries += (await hmmRangeFaultRetry(p.mm, range)) - 1;
          if (interfere && attempt === 0) await interfereNow(victim);
          ok = !sub.readRetry(range.notifierSeq);
          pfns = range.hmmPfns.pfns;
        } else {
          const range = hmmRangeV52(start, end, { defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
          hmmRangeRegister(range, hmm);
          await hmmRangeWaitUntilValid(range, 1000);
          await p.mm.lock.readLock();
          try {
            await hmmRangeFaultV52(p.mm, range);
          } catch (e) {
            if (!(e instanceof HmmError && e.code === 'EAGAIN')) p.mm.lock.readUnlock();
            hmmRangeUnregister(range);
            if (e instanceof HmmError && (e.code === 'EAGAIN' || e.code === 'EBUSY')) { r.retries++; continue; }
            throw e;
          }
          p.mm.lock.readUnlock();
          if (interfere && attempt === 0) await interfereNow(victim);
          ok = range.valid;
          pfns = range.hmmPfns.pfns;
          hmmRangeUnregister(range);
        }
        if (!ok) { r.retries++; continue; }
        r.committed++;
        for (let i = 0; i < n; i++) if (pfns[i] !== mappedPfn(p.mm, start + i * PAGE_SIZE)) r.stalePfnsCommitted++;
        break;
      }
    }
    r.ms = performance.now() - t0;
    opts.log?.(`  ${scheme}: ${r.committed} commits, ${r.retries} retries, ${r.stalePfnsCommitted} stale pfns committed`);
    results.push(r);
    await m.destroy();
  }
  return results;
}
