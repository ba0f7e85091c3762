import { describe, expect, it } from 'vitest';
import { HmmError } from '../../src/errors.js';
import { HMM_PFN_VALID, HMM_PFN_WRITE } from '../../src/hmm/pfn.js';
import { hmmRange, hmmRangeFault } from '../../src/hmm/range-fault.js';
import {
  BusError, MADV_DONTNEED, MAP_ANONYMOUS, MAP_FIXED, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED, PROT_NONE, PROT_READ, PROT_WRITE,
  type Process,
} from '../../src/index.js';
import { MIGRATE_VMA_SELECT_SYSTEM, migrateVmaSetup } from '../../src/mm/migrate.js';
import { mmapDevicePages } from '../../src/mm/mixedmap.js';
import { PTE_PRESENT, PTE_PROTNONE, PTE_SPECIAL, PTE_WRITE } from '../../src/mm/page-table.js';
import { VM_IO, VM_MIXEDMAP, VM_PFNMAP } from '../../src/mm/vma.js';
import { account, entryAt, fill, isZero, PG } from './helpers.js';
import { machineTest } from '../support/machine.js';

const RW = PROT_READ | PROT_WRITE;

/** hmm_range_fault without faulting (dmirror's SNAPSHOT): the flags of each page. */
async function snapshot(p: Process, addr: number, npages: number): Promise<number[]> {
  const sub = await p.mm.notifiers.insertInterval(addr, npages * PG, { invalidate: (s, _r, seq) => { s.setSeq(seq); return true; } });
  try {
    const range = hmmRange({ notifier: sub, start: addr, end: addr + npages * PG });
    for (let tries = 0; ; tries++) {
      range.notifierSeq = await sub.readBegin();
      await p.mm.lock.readLock();
      try {
        await hmmRangeFault(p.mm, range);
      } catch (e) {
        if (e instanceof HmmError && e.code === 'EBUSY' && tries < 10) continue;
        throw e;
      } finally {
        p.mm.lock.readUnlock();
      }
      if (!sub.readRetry(range.notifierSeq)) return [...range.hmmPfns.flags];
    }
  } finally {
    await sub.remove();
  }
}

describe('mmapDevicePages (dmirror_fops_mmap: vm_insert_page of zeroed pages)', () => {
  machineTest('MAP_PRIVATE PROT_READ|PROT_WRITE: VM_MIXEDMAP, normal read-only PTEs; snapshot READ; a write COWs', async ({ machine: m }) => {
    const p = m.spawn();
    const free = m.ram.freePages;
    const a = await mmapDevicePages(p, 3 * PG, RW, MAP_PRIVATE);
    expect(m.ram.freePages).toBe(free - 3);
    const v = p.mm.vmas.lookup(a)!;
    expect(v.start).toBe(a);
    expect(v.end).toBe(a + 3 * PG);
    expect(v.flags & VM_MIXEDMAP).toBe(VM_MIXEDMAP);
    expect(v.flags & (VM_PFNMAP | VM_IO)).toBe(0);
    const pfns = new Set<number>();
    for (let i = 0; i < 3; i++) {
      const e = entryAt(p.mm, a + i * PG)!;
      expect(e.flags & (PTE_PRESENT | PTE_WRITE | PTE_SPECIAL)).toBe(PTE_PRESENT);
      expect(m.ram.refcount[e.pfn]).toBe(1);
      expect(m.core.isAnonPage(e.pfn)).toBe(false);
      pfns.add(e.pfn);
    }
    expect(pfns.size).toBe(3);
    account(m);
    const snap = await snapshot(p, a, 3);
    for (const f of snap) expect(f & (HMM_PFN_VALID | HMM_PFN_WRITE)).toBe(HMM_PFN_VALID);
    expect(isZero(await p.read(a, 3 * PG))).toBe(true);
    // A CPU write to the private mapping copies the page (do_wp_page → wp_page_copy).
    const old = entryAt(p.mm, a + PG)!.pfn;
    await p.write(a + PG, fill(16, 0x5a));
    const e = entryAt(p.mm, a + PG)!;
    expect(e.pfn).not.toBe(old);
    expect(e.flags & PTE_WRITE).toBe(PTE_WRITE);
    expect(m.core.isAnonPage(e.pfn)).toBe(true);
    expect(m.ram.refcount[old]).toBe(0);
    expect((await snapshot(p, a + PG, 1))[0] & HMM_PFN_WRITE).toBe(HMM_PFN_WRITE);
    account(m);
    // Not migratable (VM_SPECIAL).
    await p.mm.lock.readLock();
    try {
      await expect(migrateVmaSetup(p.mm, { start: a, end: a + PG, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmapOwner: null }))
        .rejects.toBeErrno('EINVAL');
    } finally {
      p.mm.lock.readUnlock();
    }
    await p.munmap(a, 3 * PG);
    expect(m.ram.freePages).toBe(free);
    expect(m.files.size).toBe(0);
    account(m);
  });

  machineTest('MAP_SHARED PROT_WRITE maps writable; PROT_NONE protnone; takes MmStruct or Process', async ({ machine: m }) => {
    const p = m.spawn();
    const s = await mmapDevicePages(p.mm, 2 * PG, RW, MAP_SHARED);
    const pfn = entryAt(p.mm, s)!.pfn;
    expect(entryAt(p.mm, s)!.flags & PTE_WRITE).toBe(PTE_WRITE);
    await p.write(s, fill(8, 7));
    expect(entryAt(p.mm, s)!.pfn).toBe(pfn); // no COW in a shared mapping
    expect(m.ram.data(pfn)[0]).toBe(7);
    const n = await mmapDevicePages(p, PG, PROT_NONE, MAP_PRIVATE);
    expect(entryAt(p.mm, n)!.flags & PTE_PROTNONE).toBe(PTE_PROTNONE);
    const r = await mmapDevicePages(p, PG, PROT_READ, MAP_SHARED);
    expect(entryAt(p.mm, r)!.flags & PTE_WRITE).toBe(0);
    account(m);
  });

  machineTest('validates like mmap and changes nothing on failure', async ({ machine: m }) => {
    const p = m.spawn();
    const before = m.ram.freePages;
    await expect(mmapDevicePages(p, PG, RW, MAP_PRIVATE | MAP_ANONYMOUS)).rejects.toBeErrno('EINVAL');
    await expect(mmapDevicePages(p, PG, RW, MAP_PRIVATE | MAP_HUGETLB)).rejects.toBeErrno('EINVAL');
    await expect(mmapDevicePages(p, PG, RW, MAP_PRIVATE | MAP_SHARED)).rejects.toBeErrno('EINVAL');
    await expect(mmapDevicePages(p, PG, RW, 0)).rejects.toBeErrno('EINVAL');
    await expect(mmapDevicePages(p, 0, RW, MAP_PRIVATE)).rejects.toBeErrno('EINVAL');
    await expect(mmapDevicePages(p, PG, 8, MAP_PRIVATE)).rejects.toBeErrno('EINVAL');
    await expect(mmapDevicePages(p, -1, RW, MAP_PRIVATE)).rejects.toBeErrno('EINVAL');
    await expect(mmapDevicePages(p, PG, RW, MAP_PRIVATE | MAP_FIXED, 0x10001)).rejects.toBeErrno('EINVAL');
    await expect(mmapDevicePages(p, (m.ram.npages + 1) * PG, RW, MAP_PRIVATE)).rejects.toBeErrno('ENOMEM');
    expect(p.mm.vmas.size).toBe(0);
    expect(m.ram.freePages).toBe(before);
    // MAP_FIXED replaces what was there; a partial munmap frees just those pages.
    const a = await p.mmap(0, 4 * PG, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    await p.write(a, fill(4 * PG, 1));
    expect(await mmapDevicePages(p, 2 * PG, RW, MAP_PRIVATE | MAP_FIXED, a + PG)).toBe(a + PG);
    expect(isZero(await p.read(a + PG, 2 * PG))).toBe(true);
    expect((await p.read(a, 1))[0]).toBe(1);
    await p.munmap(a + PG, PG);
    account(m);
    await p.exit();
    await expect(mmapDevicePages(p.mm, PG, RW, MAP_PRIVATE)).rejects.toBeErrno('ESRCH');
  });

  machineTest('fork copies the entries (vma_needs_copy); a hole after MADV_DONTNEED is SIGBUS', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await mmapDevicePages(p, 2 * PG, RW, MAP_PRIVATE);
    const c = await p.fork();
    const e = entryAt(c.mm, a)!;
    expect(e.pfn).toBe(entryAt(p.mm, a)!.pfn);
    expect(m.ram.refcount[e.pfn]).toBe(2);
    account(m);
    await c.write(a, fill(4, 9)); // the child's COW copy; the parent's page stays
    expect((await p.read(a, 4))).toEqual(new Uint8Array(4));
    await c.exit();
    await p.madvise(a, PG, MADV_DONTNEED);
    await expect(p.read(a, 1)).rejects.toBeInstanceOf(BusError);
    expect(isZero(await p.read(a + PG, PG))).toBe(true);
    account(m);
  });
});
