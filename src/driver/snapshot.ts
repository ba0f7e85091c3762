/**
 * HMM_DMIRROR_SNAPSHOT (lib/test_hmm.c's dmirror_snapshot, dmirror_range_snapshot,
 * dmirror_mkentry): what the CPU maps, without faulting, one HMM_DMIRROR_PROT_* byte per
 * page, in 64-page ranges, each under a temporary interval notifier of its own.
 */
import { HMM_PFN_ERROR, HMM_PFN_VALID, HMM_PFN_WRITE, hmmPfnToMapOrder } from '../hmm/pfn.js';
import { hmmRange } from '../hmm/range-fault.js';
import { err } from '../errors.js';
import { PAGE_SIZE } from '../mm/constants.js';
import { HMM_RANGE_DEFAULT_TIMEOUT, hmmRangeLoop, type MirrorTarget } from './retry.js';
import {
  HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL, HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE, HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE,
  HMM_DMIRROR_PROT_PMD, HMM_DMIRROR_PROT_PUD, HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_ZERO,
} from './uapi.js';

/** dmirror_snapshot's pfns[64]: pages per dmirror_range_snapshot. */
const SNAPSHOT_PAGES = 64;
/**
 * Ranges between two reschedule points (4096 pages): a long walk gives the CPU up as the
 * kernel's walks do (cond_resched()), so timers, other ioctls and a Stop run beside a
 * snapshot of millions of pages instead of waiting out the whole of it.
 */
export const SNAPSHOT_RESCHED_RANGES = 64;

type RangeHook = (start: number, end: number) => Promise<void>;

/**
 * dmirror_snapshot of [start, end): EBUSY when a range keeps colliding with invalidations
 * past HMM_RANGE_DEFAULT_TIMEOUT. `afterRangeFault`: the test hook of the race window.
 */
export async function dmirrorSnapshot(t: MirrorTarget, start: number, end: number, afterRangeFault?: RangeHook): Promise<Uint8Array> {
  const out = new Uint8Array((end - start) / PAGE_SIZE);
  let n = 0;
  for (let a = start; a < end; a += SNAPSHOT_PAGES * PAGE_SIZE) {
    if (++n % SNAPSHOT_RESCHED_RANGES === 0) {
      await t.mm.core.sched.yield('snapshot:cond_resched');
      // fatal_signal_pending(): the process went away while the walk gave the CPU up.
      if (t.mm.exited) throw err('EINTR', 'snapshot: the process exited during the walk');
    }
    const range = await dmirrorRangeSnapshot(t, a, Math.min(a + SNAPSHOT_PAGES * PAGE_SIZE, end), afterRangeFault);
    dmirrorMkentries(t, range.hmmPfns.pfns, range.hmmPfns.flags, out, (a - start) / PAGE_SIZE);
  }
  return out;
}

/** dmirror_range_snapshot: hmm_range_fault (no faulting) until no invalidation raced it. */
async function dmirrorRangeSnapshot(t: MirrorTarget, start: number, end: number, afterRangeFault?: RangeHook): Promise<ReturnType<typeof hmmRange>> {
  // dmirror_snapshot_invalidate: any invalidation of the interval spoils the whole snapshot.
  const notifier = await t.mm.notifiers.insertInterval(start, end - start, {
    invalidate: async (sub, range, seq) => {
      if (!t.lock.tryLock()) {
        if (!range.blockable) return false;
        await t.lock.lock();
      }
      try {
        sub.setSeq(seq);
      } finally {
        t.lock.unlock();
      }
      return true;
    },
  });
  try {
    const range = hmmRange({ notifier, start, end, devPrivateOwner: t.devPrivateOwner });
    const opts = { timeoutMs: HMM_RANGE_DEFAULT_TIMEOUT, mmapLock: 'take' as const, afterRangeFault };
    return await hmmRangeLoop(t.mm, notifier, t.lock, range, opts, () => range);
  } finally {
    await notifier.remove();
  }
}

/** dmirror_mkentry for each page: out[at + i] from hmm's pfns and flags. */
function dmirrorMkentries(t: MirrorTarget, pfns: Uint32Array, fl: Uint8Array, out: Uint8Array, at: number): void {
  const ram = t.mm.core.ram;
  for (let i = 0; i < pfns.length; i++) {
    const f = fl[i];
    const pfn = pfns[i];
    if ((f & HMM_PFN_ERROR) !== 0) { out[at + i] = HMM_DMIRROR_PROT_ERROR; continue; }
    if ((f & HMM_PFN_VALID) === 0) { out[at + i] = HMM_DMIRROR_PROT_NONE; continue; }
    let prot = 0;
    const pm = t.mm.core.pagemaps.of(pfn);
    if (pm !== null && pm.coherent) prot = pm.owner === t.devPrivateOwner ? HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL : HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;
    else if (pm !== null) prot = pm.owner === t.devPrivateOwner ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
    else if (pfn === ram.zeroPfn) prot = HMM_DMIRROR_PROT_ZERO;
    prot |= (f & HMM_PFN_WRITE) !== 0 ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
    const order = hmmPfnToMapOrder(f);
    if (order === 9) prot |= HMM_DMIRROR_PROT_PMD;
    else if (order === 18) prot |= HMM_DMIRROR_PROT_PUD;
    out[at + i] = prot;
  }
}
