import { describe, expect, it } from 'vitest';
import { HmmError } from '../../src/errors.js';
import {
  HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, hmmPfnToMapOrder,
} from '../../src/hmm/pfn.js';
import { hmmRange, hmmRangeFault, hmmRangeFaultRetry, type HmmRange, type RangeFaultStats } from '../../src/hmm/range-fault.js';
import {
  MADV_DONTNEED, MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE,
  PROT_NONE, PROT_READ, PROT_WRITE,
} from '../../src/index.js';
import type { Machine } from '../../src/mm/machine.js';
import type { MmuIntervalNotifier } from '../../src/mm/notifier.js';
import { pmdIndex, PTE_PRESENT } from '../../src/mm/page-table.js';
import { entryAt } from '../../src/mm/pagewalk.js';
import type { Process } from '../../src/mm/process.js';
import { machineTest } from '../support/machine.js';

machineTest.override('systemPages', 1 << 14);

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const MiB = 1024 * 1024;

/** A notifier over the whole address space whose callback bumps the seq, as a driver's does. */
async function subscribe(p: Process): Promise<{ sub: MmuIntervalNotifier; events: string[] }> {
  const events: string[] = [];
  const sub = await p.mm.notifiers.insertInterval(0, 2 ** 47, {
    invalidate(s, range, seq) {
      s.setSeq(seq);
      events.push(`${range.event}:${(range.start).toString(16)}-${range.end.toString(16)}`);
      return true;
    },
  });
  return { sub, events };
}

/**
 * The upstream driver pattern (hmmRangeFaultRetry): read_begin, mmap read lock,
 * hmm_range_fault, unlock, and again on EBUSY (our own write faults on zero pages send CLEAR
 * invalidations, as in Linux). Returns the number of hmm_range_fault calls.
 */
async function fault(p: Process, range: HmmRange, stats?: RangeFaultStats): Promise<number> {
  return hmmRangeFaultRetry(p.mm, range, { stats });
}

/** The CPU page table's view of addr: [pfn, flags] or null. */
function cpuPte(p: Process, addr: number): [number, number] | null {
  const e = entryAt(p.mm, addr);
  return e === null ? null : [e.pfn, e.flags];
}

async function setup(m: Machine, pages = 16): Promise<{ m: Machine; p: Process; addr: number; sub: MmuIntervalNotifier; events: string[] }> {
  const p = m.spawn();
  const addr = await p.mmap(0, pages * PAGE_SIZE, RW, ANON);
  const { sub, events } = await subscribe(p);
  return { m, p, addr, sub, events };
}

describe('hmm_range_fault (upstream)', () => {
  machineTest('snapshots present pages without faulting: pfn and WRITE as the CPU maps them', async ({ machine }) => {
    const { m, p, addr, sub } = await setup(machine, 8);
    for (let i = 0; i < 8; i += 2) await p.write(addr + i * PAGE_SIZE, new Uint8Array([0xa0 + i]));
    await p.read(addr + 3 * PAGE_SIZE, 1); // maps the zero page read-only
    const r = hmmRange({ notifier: sub, start: addr, end: addr + 8 * PAGE_SIZE });
    r.hmmPfns.flags.fill(0x1f); // poison: every entry must be rewritten
    r.hmmPfns.pfns.fill(0xdeadbeef);
    const stats: RangeFaultStats = { walks: 0, faulted: 0 };
    await fault(p, r, stats);
    expect(stats.faulted).toBe(0);
    for (let i = 0; i < 8; i++) {
      const pte = cpuPte(p, addr + i * PAGE_SIZE);
      if (i % 2 === 0) {
        expect(r.hmmPfns.flags[i]).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
        expect(r.hmmPfns.pfns[i]).toBe(pte![0]);
        expect(m.ram.data(r.hmmPfns.pfns[i])[0]).toBe(0xa0 + i);
      } else if (i === 3) {
        expect(r.hmmPfns.flags[i]).toBe(HMM_PFN_VALID);
        expect(r.hmmPfns.pfns[i]).toBe(m.ram.zeroPfn);
      } else {
        expect(r.hmmPfns.flags[i]).toBe(0);
        expect(r.hmmPfns.pfns[i]).toBe(0);
      }
      expect(hmmPfnToMapOrder(r.hmmPfns.flags[i])).toBe(0);
    }
  });

  machineTest('faults a fresh range: read faults map the zero page, write faults allocate frames', async ({ machine }) => {
    const { p, addr, sub, m } = await setup(machine, 8);
    const r = hmmRange({ notifier: sub, start: addr, end: addr + 4 * PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT });
    const stats: RangeFaultStats = { walks: 0, faulted: 0 };
    await fault(p, r, stats);
    expect(stats.faulted).toBe(4);
    for (let i = 0; i < 4; i++) {
      expect(r.hmmPfns.flags[i]).toBe(HMM_PFN_VALID);
      expect(r.hmmPfns.pfns[i]).toBe(m.ram.zeroPfn);
    }
    const w = hmmRange({ notifier: sub, start: addr, end: addr + 8 * PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
    // hmm_vma_fault() write-faults all 8 pages in one go (the 4 zero pages' COW breaks each
    // invalidate the range with CLEAR), then mmu_interval_check_retry sees the moved
    // sequence once: one EBUSY, and the second try finds everything writable.
    expect(await fault(p, w)).toBe(2);
    const seen = new Set<number>();
    for (let i = 0; i < 8; i++) {
      expect(w.hmmPfns.flags[i]).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
      expect(w.hmmPfns.pfns[i]).not.toBe(m.ram.zeroPfn);
      expect(cpuPte(p, addr + i * PAGE_SIZE)![0]).toBe(w.hmmPfns.pfns[i]);
      seen.add(w.hmmPfns.pfns[i]);
    }
    expect(seen.size).toBe(8);
  });

  machineTest('faults a whole pmd_none hole when any page in it asks (hmm_vma_walk_hole)', async ({ machine }) => {
    const { p, addr, sub } = await setup(machine, 8);
    const r = hmmRange({ notifier: sub, start: addr, end: addr + 8 * PAGE_SIZE, pfnFlagsMask: HMM_PFN_REQ_FAULT });
    r.hmmPfns.flags[6] = HMM_PFN_REQ_FAULT;
    const stats: RangeFaultStats = { walks: 0, faulted: 0 };
    await fault(p, r, stats);
    expect(stats.faulted).toBe(8);
    for (let i = 0; i < 8; i++) expect(r.hmmPfns.flags[i]).toBe(HMM_PFN_VALID);
  });

  machineTest('honours per-page requests under pfn_flags_mask; a fault takes the rest of the chunk', async ({ machine }) => {
    const { p, addr, sub, m } = await setup(machine, 8);
    await p.write(addr + 7 * PAGE_SIZE, new Uint8Array([1])); // the PTE table exists: no pmd hole
    const r = hmmRange({ notifier: sub, start: addr, end: addr + 8 * PAGE_SIZE, pfnFlagsMask: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
    r.hmmPfns.flags[2] = HMM_PFN_REQ_FAULT;
    r.hmmPfns.flags[5] = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE;
    const stats: RangeFaultStats = { walks: 0, faulted: 0 };
    await fault(p, r, stats);
    // hmm_vma_handle_pte's `goto fault` → hmm_vma_fault(addr, end): page 2's read fault
    // faults pages 2..7 (the zero page where none was), then page 5's write fault breaks
    // COW on 5 and 6 (7 is already writable). Pages 0-1 asked nothing and stay unmapped;
    // 3-4 asked nothing but are now mapped, so they are reported (pte_to_hmm_pfn_flags).
    expect(stats.faulted).toBe(6 + 3);
    for (let i = 0; i < 8; i++) {
      const want = i < 2 ? 0 : i < 5 ? HMM_PFN_VALID : HMM_PFN_VALID | HMM_PFN_WRITE;
      expect(r.hmmPfns.flags[i], `page ${i}`).toBe(want);
      expect(cpuPte(p, addr + i * PAGE_SIZE) !== null, `page ${i} mapped`).toBe(want !== 0);
      if (i >= 2 && i < 5) expect(r.hmmPfns.pfns[i], `page ${i}`).toBe(m.ram.zeroPfn);
    }
  });

  machineTest('COW-shared pages written through one range: one EBUSY per 2 MiB chunk, not one per page', async ({ machine: m }) => {
    // 512 pages, 2 MiB aligned: one PMD chunk. After fork every page is COW-shared, and a
    // write fault on each breaks COW with an MMU_NOTIFY_CLEAR over the range being faulted.
    const p = m.spawn();
    const raw = await p.mmap(0, 4 * MiB, RW, ANON);
    const addr = Math.ceil(raw / (2 * MiB)) * 2 * MiB;
    const data = new Uint8Array(2 * MiB);
    for (let i = 0; i < 512; i++) data[i * PAGE_SIZE] = (i % 255) + 1;
    await p.write(addr, data);
    const child = await p.fork();
    const { sub, events } = await subscribe(p);
    const r = hmmRange({ notifier: sub, start: addr, end: addr + 2 * MiB, defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
    const stats: RangeFaultStats = { walks: 0, faulted: 0 };
    // Kernel: the first walk faults all 512 (512 CLEARs), check_retry → EBUSY once; the
    // caller's second try walks once and finds every page writable.
    expect(await fault(p, r, stats)).toBe(2);
    expect(stats.faulted).toBe(512);
    expect(stats.walks).toBe(2);
    expect(events.filter((e) => e.startsWith('CLEAR')).length).toBe(512);
    for (let i = 0; i < 512; i++) {
      expect(r.hmmPfns.flags[i] & (HMM_PFN_VALID | HMM_PFN_WRITE)).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
      expect(r.hmmPfns.pfns[i]).toBe(cpuPte(p, addr + i * PAGE_SIZE)![0]);
    }
    // COW broken, contents kept, the child unchanged.
    expect((await p.read(addr + 300 * PAGE_SIZE, 1))[0]).toBe((300 % 255) + 1);
    expect((await child.read(addr + 300 * PAGE_SIZE, 1))[0]).toBe((300 % 255) + 1);
    // test_hmm's 64-page ranges over the same pages, COW-shared again: 8 ranges, 8 EBUSYs.
    const child2 = await p.fork();
    let tries = 0;
    for (let k = 0; k < 8; k++) {
      const rk = hmmRange({ notifier: sub, start: addr + k * 64 * PAGE_SIZE, end: addr + (k + 1) * 64 * PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
      tries += await fault(p, rk);
    }
    expect(tries - 8).toBe(8);
    await child.exit();
    await child2.exit();
  });

  machineTest('a fault does not cross the PMD boundary: the next chunk is walked after the restart', async ({ machine: m }) => {
    const p = m.spawn();
    const raw = await p.mmap(0, 6 * MiB, RW, ANON);
    const addr = Math.ceil(raw / (2 * MiB)) * 2 * MiB;
    // Both chunks' PTE tables exist, one page mapped in each; the rest pte_none.
    await p.write(addr + 2 * MiB - PAGE_SIZE, new Uint8Array([1]));
    await p.write(addr + 2 * MiB + PAGE_SIZE, new Uint8Array([2]));
    const { sub } = await subscribe(p);
    const first = addr + 2 * MiB - 4 * PAGE_SIZE;
    const r = hmmRange({ notifier: sub, start: first, end: first + 8 * PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT });
    const stats: RangeFaultStats = { walks: 0, faulted: 0 };
    expect(await fault(p, r, stats)).toBe(1); // read faults on pte_none: no invalidation
    // Walk 1 faults pages 0-3 (to the PMD end), walk 2 resumes at page 0 and faults 4..7
    // from page 4 (pte_none at +2 MiB), walk 3 finds everything.
    expect(stats.walks).toBe(3);
    expect(stats.faulted).toBe(4 + 4);
    for (let i = 0; i < 8; i++) expect(r.hmmPfns.flags[i] & HMM_PFN_VALID).toBe(HMM_PFN_VALID);
  });

  machineTest('holes and unreadable VMAs: EFAULT when a fault is asked, ERROR entries otherwise', async ({ machine }) => {
    const { p, addr, sub } = await setup(machine, 8);
    await p.munmap(addr + 2 * PAGE_SIZE, PAGE_SIZE);
    await p.mprotect(addr + 5 * PAGE_SIZE, PAGE_SIZE, PROT_NONE);
    const snap = hmmRange({ notifier: sub, start: addr, end: addr + 8 * PAGE_SIZE });
    await fault(p, snap);
    for (let i = 0; i < 8; i++) expect(snap.hmmPfns.flags[i]).toBe(i === 2 || i === 5 ? HMM_PFN_ERROR : 0);
    const hole = hmmRange({ notifier: sub, start: addr, end: addr + 4 * PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT });
    await expect(fault(p, hole)).rejects.toBeErrno('EFAULT');
    // Entries before the hole are output, the rest still input (the documented contract).
    expect(hole.hmmPfns.flags[0]).toBe(HMM_PFN_VALID);
    const prot = hmmRange({ notifier: sub, start: addr + 4 * PAGE_SIZE, end: addr + 8 * PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT });
    await expect(fault(p, prot)).rejects.toBeErrno('EFAULT');
    // Past the end of every VMA.
    const beyond = hmmRange({ notifier: sub, start: 0x10000, end: 0x20000, defaultFlags: HMM_PFN_REQ_FAULT });
    await expect(fault(p, beyond)).rejects.toBeErrno('EFAULT');
  });

  machineTest('EPERM for a write fault on a read-only VMA, nothing mapped writable', async ({ machine }) => {
    const { p, addr, sub } = await setup(machine, 4);
    await p.mprotect(addr, 4 * PAGE_SIZE, PROT_READ);
    const r = hmmRange({ notifier: sub, start: addr, end: addr + 4 * PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
    await expect(fault(p, r)).rejects.toBeErrno('EPERM');
    for (let i = 0; i < 4; i++) {
      const pte = cpuPte(p, addr + i * PAGE_SIZE);
      expect(pte === null || (pte[1] & 0x2) === 0).toBe(true);
    }
  });

  machineTest('EBUSY when an invalidation moved the sequence after read_begin', async ({ machine }) => {
    const { p, addr, sub } = await setup(machine, 4);
    const r = hmmRange({ notifier: sub, start: addr, end: addr + 4 * PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT });
    r.notifierSeq = await sub.readBegin();
    await p.madvise(addr, PAGE_SIZE, MADV_DONTNEED);
    await p.mm.lock.readLock();
    try {
      await expect(hmmRangeFault(p.mm, r)).rejects.toBeErrno('EBUSY');
    } finally {
      p.mm.lock.readUnlock();
    }
    expect(sub.readRetry(r.notifierSeq)).toBe(true);
    await fault(p, r); // a fresh read_begin succeeds
    expect(sub.readRetry(r.notifierSeq)).toBe(false);
  });

  machineTest('an invalidation between hmm_range_fault and read_retry is caught by read_retry', async ({ machine }) => {
    const { p, addr, sub, events } = await setup(machine, 4);
    const r = hmmRange({ notifier: sub, start: addr, end: addr + 4 * PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
    await fault(p, r);
    await p.write(addr + PAGE_SIZE, new Uint8Array([0x77]));
    await p.munmap(addr + PAGE_SIZE, PAGE_SIZE);
    await p.mmap(addr + PAGE_SIZE, PAGE_SIZE, RW, ANON | MAP_FIXED);
    expect(events.some((e) => e.startsWith('UNMAP'))).toBe(true);
    expect(sub.readRetry(r.notifierSeq)).toBe(true); // the driver must not use `stale`
    expect((await p.read(addr + PAGE_SIZE, 1))[0]).toBe(0); // the old contents are gone
  });

  machineTest('requires the mmap lock', async ({ machine }) => {
    const { p, addr, sub } = await setup(machine, 2);
    const r = hmmRange({ notifier: sub, start: addr, end: addr + PAGE_SIZE });
    await expect(hmmRangeFault(p.mm, r)).rejects.toThrow(/not held|lock/);
  });

  machineTest('rejects malformed ranges with EINVAL', async ({ machine }) => {
    const { addr, sub } = await setup(machine, 2);
    for (const [s, e] of [[addr + 1, addr + PAGE_SIZE], [addr, addr], [addr + PAGE_SIZE, addr], [-PAGE_SIZE, 0], [addr, 2 ** 48]]) {
      expect(() => hmmRange({ notifier: sub, start: s, end: e })).toThrowErrno('EINVAL');
    }
  });

  machineTest('reports a THP as order 9 with the right pfn per page', async ({ machine: m }) => {
    const p = m.spawn();
    const raw = await p.mmap(0, 4 * MiB, RW, ANON);
    const addr = Math.ceil(raw / (2 * MiB)) * 2 * MiB;
    await p.madvise(addr, 2 * MiB, MADV_HUGEPAGE);
    await p.write(addr + 7 * PAGE_SIZE, new Uint8Array([0x5a]));
    const pmd = p.mm.pgtable.pmd(addr, false)!;
    expect(pmd.isHuge(pmdIndex(addr))).toBe(true);
    const { sub } = await subscribe(p);
    const r = hmmRange({ notifier: sub, start: addr, end: addr + 2 * MiB, defaultFlags: HMM_PFN_REQ_FAULT });
    await fault(p, r);
    for (let i = 0; i < 512; i++) {
      expect(hmmPfnToMapOrder(r.hmmPfns.flags[i])).toBe(9);
      expect(r.hmmPfns.flags[i] & (HMM_PFN_VALID | HMM_PFN_WRITE)).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
      expect(r.hmmPfns.pfns[i]).toBe(pmd.pfn[pmdIndex(addr)] + i);
    }
    expect(m.ram.data(r.hmmPfns.pfns[7])[0]).toBe(0x5a);
  });

  machineTest('faults swapped-out pages back in', async ({ machine }) => {
    const { p, addr, sub } = await setup(machine, 4);
    await p.write(addr, new Uint8Array([9, 8, 7]));
    await p.madvise(addr, 4 * PAGE_SIZE, 21 /* MADV_PAGEOUT */);
    expect((cpuPte(p, addr)![1] & PTE_PRESENT)).toBe(0);
    const r = hmmRange({ notifier: sub, start: addr, end: addr + PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT });
    await fault(p, r);
    expect(r.hmmPfns.flags[0] & HMM_PFN_VALID).toBe(HMM_PFN_VALID);
    expect([...p.mm.core.ram.data(r.hmmPfns.pfns[0]).subarray(0, 3)]).toEqual([9, 8, 7]);
  });
});
