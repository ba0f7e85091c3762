import { describe, expect, it } from 'vitest';
import { MmapLock } from '../../src/mm/mmap-lock.js';
import { RealScheduler } from '../../src/sched/scheduler.js';
import { SeededScheduler, mulberry32 } from '../../src/sched/seeded.js';

function track(p: Promise<void>): () => boolean {
  let done = false;
  void p.then(() => { done = true; });
  return () => done;
}

describe('MmapLock', () => {
  it('takes an uncontended lock without a scheduling point', async () => {
    const s = new SeededScheduler(1);
    const l = new MmapLock(s);
    await l.readLock();
    await l.readLock();
    expect(l.readers).toBe(2);
    l.readUnlock();
    l.readUnlock();
    await l.writeLock();
    expect(l.writer).toBe(true);
    l.writeUnlock();
    expect(s.trace).toEqual([]);
    expect(l.stats).toMatchObject({ readAcquisitions: 2, writeAcquisitions: 1, readContended: 0, writeContended: 0 });
  });

  it('excludes a writer from a writer', async () => {
    const s = new SeededScheduler(2);
    const l = new MmapLock(s);
    await l.writeLock();
    const w2 = track(l.writeLock());
    await s.idle();
    expect(w2()).toBe(false);
    expect(l.waiters).toBe(1);
    l.writeUnlock();
    await s.idle();
    expect(w2()).toBe(true);
    expect(l.writer).toBe(true);
    expect(l.waiters).toBe(0);
    expect(s.trace).toEqual(['mmap_lock:write']);
  });

  it('makes a writer wait for every reader', async () => {
    const s = new SeededScheduler(3);
    const l = new MmapLock(s);
    await l.readLock();
    await l.readLock();
    const w = track(l.writeLock());
    await s.idle();
    l.readUnlock();
    await s.idle();
    expect(w()).toBe(false);
    l.readUnlock();
    await s.idle();
    expect(w()).toBe(true);
    expect(l.readers).toBe(0);
  });

  it('holds back new readers behind a queued writer (writers do not starve)', async () => {
    const s = new SeededScheduler(4);
    const l = new MmapLock(s);
    await l.readLock();
    const order: string[] = [];
    const w = l.writeLock().then(() => { order.push('W'); });
    await s.idle();
    expect(l.tryReadLock()).toBe(false);
    const r = l.readLock().then(() => { order.push('R2'); });
    await s.idle();
    expect(order).toEqual([]); // R2 queued although the lock is only read-held
    l.readUnlock();
    await w;
    expect(order).toEqual(['W']);
    expect(l.readers).toBe(0);
    l.writeUnlock();
    await r;
    expect(order).toEqual(['W', 'R2']);
  });

  it('hands the lock over in FIFO order', async () => {
    const s = new SeededScheduler(5);
    const l = new MmapLock(s);
    await l.writeLock();
    const order: string[] = [];
    const ps: Promise<void>[] = [];
    for (const name of ['W1', 'W2', 'W3']) {
      ps.push(l.writeLock().then(() => { order.push(name); l.writeUnlock(); }));
    }
    l.writeUnlock();
    await Promise.all(ps);
    expect(order).toEqual(['W1', 'W2', 'W3']);
  });

  it('wakes every queued reader in one batch, skipping queued writers (rwsem_mark_wake)', async () => {
    const s = new SeededScheduler(6);
    const l = new MmapLock(s);
    await l.writeLock();
    const got: string[] = [];
    const r1 = l.readLock().then(() => { got.push('R1'); });
    const r2 = l.readLock().then(() => { got.push('R2'); });
    const w2 = track(l.writeLock().then(() => { got.push('W2'); }));
    const r3 = l.readLock().then(() => { got.push('R3'); });
    l.writeUnlock();
    await Promise.all([r1, r2, r3]);
    expect(l.readers).toBe(3);
    expect(got.sort()).toEqual(['R1', 'R2', 'R3']);
    expect(w2()).toBe(false);
    expect(l.waiters).toBe(1);
    l.readUnlock();
    l.readUnlock();
    l.readUnlock();
    await s.idle();
    expect(w2()).toBe(true);
  });

  it("wakes only the consecutive readers at the head with readerWake: 'consecutive'", async () => {
    const s = new SeededScheduler(7);
    const l = new MmapLock(s, { readerWake: 'consecutive' });
    await l.writeLock();
    const r1 = l.readLock();
    const r2 = l.readLock();
    const w2 = l.writeLock();
    const r3 = track(l.readLock());
    l.writeUnlock();
    await Promise.all([r1, r2]);
    await s.idle();
    expect(l.readers).toBe(2);
    expect(r3()).toBe(false);
    l.readUnlock();
    l.readUnlock();
    await w2;
    l.writeUnlock();
    await s.idle();
    expect(r3()).toBe(true);
  });

  it('trylock semantics follow down_read_trylock / down_write_trylock', async () => {
    const s = new SeededScheduler(8);
    const l = new MmapLock(s);
    expect(l.tryWriteLock()).toBe(true);
    expect(l.tryReadLock()).toBe(false);
    expect(l.tryWriteLock()).toBe(false);
    l.writeUnlock();
    expect(l.tryReadLock()).toBe(true);
    expect(l.tryReadLock()).toBe(true);
    expect(l.tryWriteLock()).toBe(false);
    const w = l.writeLock(); // queued writer
    expect(l.tryReadLock()).toBe(false);
    l.readUnlock();
    l.readUnlock();
    await w;
    l.writeUnlock();
    expect(l.tryReadLock()).toBe(true);
    l.readUnlock();
  });

  it('downgrade turns a write hold into a read hold and admits queued readers', async () => {
    const s = new SeededScheduler(9);
    const l = new MmapLock(s);
    await l.writeLock();
    const r1 = track(l.readLock());
    const r2 = track(l.readLock());
    await s.idle();
    expect([r1(), r2()]).toEqual([false, false]);
    l.downgrade();
    expect(l.writer).toBe(false);
    expect(l.readers).toBe(3);
    await s.idle();
    expect([r1(), r2()]).toEqual([true, true]);
    l.assertHeld();
    expect(() => l.assertWriteHeld()).toThrow();
  });

  it('downgrade does not wake a writer at the head', async () => {
    const s = new SeededScheduler(10);
    const l = new MmapLock(s);
    await l.writeLock();
    const w2 = track(l.writeLock());
    const r = track(l.readLock());
    l.downgrade();
    await s.idle();
    expect([w2(), r()]).toEqual([false, false]);
    expect(l.readers).toBe(1);
    l.readUnlock();
    await s.idle();
    expect(w2()).toBe(true);
    expect(r()).toBe(false);
  });

  it('asserts check the lock state', async () => {
    const l = new MmapLock(new SeededScheduler(11));
    expect(() => l.assertHeld()).toThrow(/not held/);
    expect(() => l.assertWriteHeld()).toThrow(/not held for write/);
    await l.readLock();
    expect(() => l.assertHeld()).not.toThrow();
    expect(() => l.assertWriteHeld()).toThrow();
    l.readUnlock();
    await l.writeLock();
    expect(() => l.assertHeld()).not.toThrow();
    expect(() => l.assertWriteHeld()).not.toThrow();
  });

  it('rejects unlocking a lock that is not held in that mode', async () => {
    const l = new MmapLock(new SeededScheduler(12));
    expect(() => l.readUnlock()).toThrow();
    expect(() => l.writeUnlock()).toThrow();
    expect(() => l.downgrade()).toThrow();
    await l.readLock();
    expect(() => l.writeUnlock()).toThrow();
    expect(() => l.downgrade()).toThrow();
    l.readUnlock();
    await l.writeLock();
    expect(() => l.readUnlock()).toThrow();
    expect(l.writer).toBe(true);
  });

  it('measures wait and hold times on the scheduler clock', async () => {
    const s = new SeededScheduler(13);
    const l = new MmapLock(s);
    await l.writeLock();
    const r = l.readLock();
    await s.sleep(40, 'hold');
    l.writeUnlock();
    await r;
    l.readUnlock();
    expect(l.stats.writeHoldMs).toBe(40);
    expect(l.stats.readWaitMs).toBe(40);
    expect(l.stats.readContended).toBe(1);
  });

  it('works on the real scheduler', async () => {
    const l = new MmapLock(new RealScheduler());
    await l.writeLock();
    const r = l.readLock();
    setTimeout(() => l.writeUnlock(), 5);
    await r;
    expect(l.readers).toBe(1);
    l.readUnlock();
  });

  it('keeps exclusion over many seeded interleavings', async () => {
    for (let seed = 1; seed <= 60; seed++) {
      const s = new SeededScheduler(seed);
      const rnd = mulberry32(seed * 7919);
      const l = new MmapLock(s);
      let inRead = 0;
      let inWrite = 0;
      let maxReaders = 0;
      let nextTicket = 0;
      let lastWriter = -1;
      const check = (): void => {
        expect(inWrite === 0 || inRead === 0).toBe(true);
        expect(inWrite).toBeLessThanOrEqual(1);
        expect(l.writer && l.readers > 0).toBe(false);
        // Ownership is handed over before the wakee runs, so the lock may be ahead of the tasks.
        expect(l.readers).toBeGreaterThanOrEqual(inRead);
        if (inWrite === 1) expect(l.writer).toBe(true);
      };
      const task = async (id: number): Promise<void> => {
        for (let i = 0; i < 12; i++) {
          const op = rnd();
          if (op < 0.55) {
            if (op < 0.1 && l.tryReadLock()) { /* got it */ } else await l.readLock();
            inRead++;
            maxReaders = Math.max(maxReaders, inRead);
            check();
            await s.yield(`r${id}`);
            check();
            inRead--;
            l.readUnlock();
          } else {
            const ticket = nextTicket++; // writeLock enqueues synchronously: tickets are queue order
            await l.writeLock();
            expect(ticket).toBeGreaterThan(lastWriter); // writers are granted FIFO
            lastWriter = ticket;
            inWrite++;
            check();
            await s.yield(`w${id}`);
            if (op > 0.9) {
              inWrite--;
              l.downgrade();
              inRead++;
              check();
              await s.yield(`d${id}`);
              inRead--;
              l.readUnlock();
            } else {
              check();
              inWrite--;
              l.writeUnlock();
            }
          }
          check();
          if (rnd() < 0.3) await s.sleep(1 + Math.floor(rnd() * 3), `t${id}`);
        }
      };
      await Promise.all([0, 1, 2, 3, 4, 5].map((id) => s.spawn(`start${id}`, () => task(id))));
      expect(l.readers).toBe(0);
      expect(l.writer).toBe(false);
      expect(l.waiters).toBe(0);
      expect(maxReaders).toBeGreaterThanOrEqual(1);
    }
  });
});
