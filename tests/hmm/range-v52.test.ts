import { describe, expect } from 'vitest';
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE } from '../../src/hmm/pfn.js';
import { hmmRange, hmmRangeFault } from '../../src/hmm/range-fault.js';
import {
  Hmm, hmmMirrorRegister, hmmMirrorUnregister, hmmRangeFaultV52, hmmRangeRegister, hmmRangeUnregister, hmmRangeV52,
  hmmRangeWaitUntilValid, type HmmUpdate,
} from '../../src/hmm/range-v52.js';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { mmuNotifierRange } from '../../src/mm/notifier.js';
import { mappedPfn } from '../../src/mm/pagewalk.js';
import type { Process } from '../../src/mm/process.js';
import type { Machine } from '../../src/mm/machine.js';
import { machineTest } from '../support/machine.js';

machineTest.override('systemPages', 1 << 13);

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function cpuPfn(p: Process, addr: number): number {
  return mappedPfn(p.mm, addr);
}

async function setup(m: Machine, pages = 8): Promise<{ p: Process; addr: number; hmm: Hmm; updates: HmmUpdate[] }> {
  const p = m.spawn();
  const addr = await p.mmap(0, pages * PAGE_SIZE, RW, ANON);
  const updates: HmmUpdate[] = [];
  await p.mm.lock.writeLock();
  const hmm = hmmMirrorRegister(p.mm, { syncCpuDevicePagetables: (u) => { updates.push(u); return true; } });
  p.mm.lock.writeUnlock();
  return { p, addr, hmm, updates };
}

describe('HMM v5.2 mirror API', () => {
  machineTest('hmm_range_register: valid at once when idle, invalid while an invalidation runs', async ({ machine }) => {
    const { p, addr, hmm } = await setup(machine);
    const idle = hmmRangeV52(addr, addr + PAGE_SIZE);
    hmmRangeRegister(idle, hmm);
    expect(idle.valid).toBe(true);
    const inflight = mmuNotifierRange(addr, addr + PAGE_SIZE, 'CLEAR');
    await p.mm.notifiers.invalidateRangeStart(inflight);
    expect(idle.valid).toBe(false);
    const late = hmmRangeV52(addr + PAGE_SIZE, addr + 2 * PAGE_SIZE);
    hmmRangeRegister(late, hmm);
    expect(late.valid).toBe(false);
    await p.mm.notifiers.invalidateRangeEnd(inflight);
    expect(idle.valid && late.valid).toBe(true);
    expect(() => hmmRangeRegister(late, hmm)).toThrowErrno('EINVAL');
    hmmRangeUnregister(late);
    expect(late.valid).toBe(false);
  });

  describe('on a seeded scheduler (virtual time)', () => {
    machineTest.override('seed', 7);

    machineTest('hmm_range_wait_until_valid times out while invalidated and wakes at the last end', async ({ machine }) => {
      // Virtual time (a seeded scheduler), not the wall clock: the timeout is scheduler time.
      const sched = machine.sched;
      const { p, addr, hmm } = await setup(machine, 8);
      const r = hmmRangeV52(addr, addr + 4 * PAGE_SIZE);
      hmmRangeRegister(r, hmm);
      const a = mmuNotifierRange(addr, addr + PAGE_SIZE, 'CLEAR');
      const b = mmuNotifierRange(addr + PAGE_SIZE, addr + 2 * PAGE_SIZE, 'UNMAP');
      await p.mm.notifiers.invalidateRangeStart(a);
      await p.mm.notifiers.invalidateRangeStart(b);
      const t0 = sched.now();
      expect(await hmmRangeWaitUntilValid(r, 30)).toBe(false);
      expect(sched.now() - t0).toBe(30);
      const waiter = hmmRangeWaitUntilValid(r, 10_000);
      await p.mm.notifiers.invalidateRangeEnd(a);
      expect(r.valid).toBe(false); // not the last end yet
      await p.mm.notifiers.invalidateRangeEnd(b);
      expect(await waiter).toBe(true);
    });
  });

  machineTest('the v5.2 off-by-one: an update ending exactly at range start invalidates it', async ({ machine }) => {
    const { p, addr, hmm } = await setup(machine);
    const r = hmmRangeV52(addr + PAGE_SIZE, addr + 2 * PAGE_SIZE);
    hmmRangeRegister(r, hmm);
    const touching = mmuNotifierRange(addr, addr + PAGE_SIZE, 'CLEAR');
    await p.mm.notifiers.invalidateRangeStart(touching);
    expect(r.valid).toBe(false);
    await p.mm.notifiers.invalidateRangeEnd(touching);
  });

  machineTest('hmm_range_fault (v5.2) faults and returns the number of valid pages; mirrors see updates', async ({ machine }) => {
    const { p, addr, hmm, updates } = await setup(machine);
    const r = hmmRangeV52(addr, addr + 8 * PAGE_SIZE, { defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
    hmmRangeRegister(r, hmm);
    await p.mm.lock.readLock();
    expect(await hmmRangeFaultV52(p.mm, r)).toBe(8);
    p.mm.lock.readUnlock();
    for (let i = 0; i < 8; i++) {
      expect(r.hmmPfns.flags[i]).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
      expect(r.hmmPfns.pfns[i]).toBe(cpuPfn(p, addr + i * PAGE_SIZE));
    }
    await p.madvise(addr, PAGE_SIZE, MADV_DONTNEED);
    expect(updates.at(-1)).toMatchObject({ start: addr, end: addr + PAGE_SIZE, event: 'CLEAR', blockable: true });
  });

  machineTest('EAGAIN when the range is invalid, with the mmap lock dropped as v5.2 did', async ({ machine }) => {
    const { p, addr, hmm } = await setup(machine);
    const r = hmmRangeV52(addr, addr + PAGE_SIZE, { defaultFlags: HMM_PFN_REQ_FAULT });
    hmmRangeRegister(r, hmm);
    const inflight = mmuNotifierRange(addr, addr + PAGE_SIZE, 'CLEAR');
    await p.mm.notifiers.invalidateRangeStart(inflight);
    await p.mm.lock.readLock();
    await expect(hmmRangeFaultV52(p.mm, r)).rejects.toBeErrno('EAGAIN');
    expect(p.mm.lock.readers).toBe(0);
    await p.mm.notifiers.invalidateRangeEnd(inflight);
  });

  machineTest('EFAULT without a VMA, EPERM for a VMA without read permission', async ({ machine }) => {
    const { p, addr, hmm } = await setup(machine);
    await p.mprotect(addr, PAGE_SIZE, PROT_NONE);
    const noread = hmmRangeV52(addr, addr + PAGE_SIZE, { defaultFlags: HMM_PFN_REQ_FAULT });
    hmmRangeRegister(noread, hmm);
    await p.mm.lock.readLock();
    await expect(hmmRangeFaultV52(p.mm, noread)).rejects.toBeErrno('EPERM');
    // Above every VMA (the first mmap is the highest): find_vma() finds nothing.
    const beyond = hmmRangeV52(addr + 0x4000000, addr + 0x4001000);
    hmmRangeRegister(beyond, hmm);
    await expect(hmmRangeFaultV52(p.mm, beyond)).rejects.toBeErrno('EFAULT');
    p.mm.lock.readUnlock();
  });

  machineTest('the A-B-A window: a full invalidation after the fault leaves valid=true and the pfns stale, where read_retry catches it', async ({ machine }) => {
    const { p, addr, hmm } = await setup(machine);
    const target = addr + 2 * PAGE_SIZE;
    // The same interleaving, watched by both schemes at once.
    const sub = await p.mm.notifiers.insertInterval(addr, 8 * PAGE_SIZE, {
      invalidate: (s, _r, seq) => { s.setSeq(seq); return true; },
    });
    const v52 = hmmRangeV52(target, target + PAGE_SIZE, { defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
    hmmRangeRegister(v52, hmm);
    const up = hmmRange({ notifier: sub, start: target, end: target + PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });

    expect(await hmmRangeWaitUntilValid(v52, 1000)).toBe(true);
    up.notifierSeq = await sub.readBegin();
    await p.mm.lock.readLock();
    await hmmRangeFaultV52(p.mm, v52);
    await hmmRangeFault(p.mm, up);
    p.mm.lock.readUnlock();
    const faulted = v52.hmmPfns.pfns[0];
    expect(up.hmmPfns.pfns[0]).toBe(faulted);

    // A: valid goes false at invalidate_range_start ... B: the page is zapped and its frame
    // freed ... A: valid goes true again at the last invalidate_range_end.
    await p.madvise(target, PAGE_SIZE, MADV_DONTNEED);
    await p.write(addr + 5 * PAGE_SIZE, new Uint8Array([1])); // reuses the freed frame
    await p.write(target, new Uint8Array([0x42])); // the page now lives in another frame

    // The v5.2 driver's check under its update lock passes: it would program a stale pfn.
    expect(v52.valid).toBe(true);
    expect(cpuPfn(p, target)).not.toBe(faulted);
    // The sequence scheme catches the very same interleaving.
    expect(sub.readRetry(up.notifierSeq)).toBe(true);
  });

  machineTest('exit marks the hmm dead, invalidates ranges, wakes waiters and releases mirrors', async ({ machine }) => {
    const p = machine.spawn();
    const addr = await p.mmap(0, PAGE_SIZE, RW, ANON);
    let released = 0;
    await p.mm.lock.writeLock();
    const ops = { syncCpuDevicePagetables: () => true, release: () => { released++; } };
    const hmm = hmmMirrorRegister(p.mm, ops);
    p.mm.lock.writeUnlock();
    const r = hmmRangeV52(addr, addr + PAGE_SIZE);
    hmmRangeRegister(r, hmm);
    await p.exit();
    expect(hmm.dead).toBe(true);
    expect(r.valid).toBe(false);
    expect(released).toBe(1);
    expect(() => hmmRangeRegister(hmmRangeV52(addr, addr + PAGE_SIZE), hmm)).toThrow(/dead/);
    await hmmMirrorUnregister(hmm, ops);
  });

  describe('on a seeded scheduler (virtual time)', () => {
    machineTest.override('seed', 7);

    machineTest('hmm_range_wait_until_valid on a dead mm: false at once, and a sleeper wakes at exit (v5.2)', async ({ machine }) => {
      const sched = machine.sched;
      const p = machine.spawn();
      const addr = await p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
      await p.mm.lock.writeLock();
      const ops = { syncCpuDevicePagetables: () => true };
      const hmm = hmmMirrorRegister(p.mm, ops);
      p.mm.lock.writeUnlock();
      const r = hmmRangeV52(addr, addr + PAGE_SIZE);
      hmmRangeRegister(r, hmm);
      // A sleeper on an invalidated range, then the mm dies: it must not sleep out its
      // timeout (virtual time: the seeded clock only moves when a timer fires).
      const inflight = mmuNotifierRange(addr, addr + PAGE_SIZE, 'CLEAR');
      await p.mm.notifiers.invalidateRangeStart(inflight);
      const t0 = sched.now();
      const sleeper = hmmRangeWaitUntilValid(r, 5000);
      await p.exit();
      expect(await sleeper).toBe(false);
      expect(sched.now() - t0).toBeLessThan(5000);
      // After death: false at once, valid cleared, no sleep at all.
      const t1 = sched.now();
      expect(await hmmRangeWaitUntilValid(r, 5000)).toBe(false);
      expect(r.valid).toBe(false);
      expect(sched.now()).toBe(t1);
      await hmmMirrorUnregister(hmm, ops);
    });
  });

  machineTest('hmm_mirror_register demands the mmap lock held for write', async ({ machine }) => {
    const p = machine.spawn();
    expect(() => hmmMirrorRegister(p.mm, { syncCpuDevicePagetables: () => true })).toThrow();
  });
});
