import { describe, expect, it } from 'vitest';
import { RealScheduler } from '../../src/sched/scheduler.js';
import { SeededScheduler } from '../../src/sched/seeded.js';
import { WaitQueue } from '../../src/sched/wait-queue.js';
import { HmmError } from '../../src/errors.js';

/** Resolves after `n` macrotasks: long enough for a woken waiter to run, if it were woken. */
function ticks(n: number): Promise<void> {
  return n <= 0 ? Promise.resolve() : new Promise((r) => setImmediate(() => r(ticks(n - 1))));
}

function track<T>(p: Promise<T>): { settled: () => boolean; value: () => T | undefined } {
  let done = false;
  let v: T | undefined;
  void p.then((x) => { done = true; v = x; });
  return { settled: () => done, value: () => v };
}

describe('WaitQueue', () => {
  it('returns true at once when the condition already holds, without sleeping', async () => {
    const s = new SeededScheduler(1);
    const wq = new WaitQueue(s);
    expect(await wq.wait(() => true, 'ready')).toBe(true);
    expect(s.trace).toEqual([]);
    expect(wq.waiting).toBe(0);
  });

  it('sleeps until woken with the condition true (wait_event)', async () => {
    const s = new SeededScheduler(2);
    const wq = new WaitQueue(s);
    let flag = false;
    const w = track(wq.wait(() => flag, 'flag'));
    await s.idle();
    expect(w.settled()).toBe(false);
    expect(wq.waiting).toBe(1);
    flag = true; // no wakeup yet: the waiter does not notice
    await s.idle();
    expect(w.settled()).toBe(false);
    wq.wakeAll();
    await s.idle();
    expect(w.value()).toBe(true);
    expect(s.trace).toEqual(['flag']);
  });

  it('goes back to sleep after a wakeup with the condition still false', async () => {
    const s = new SeededScheduler(3);
    const wq = new WaitQueue(s);
    let n = 0;
    const w = track(wq.wait(() => n >= 2, 'n'));
    n = 1;
    wq.wakeAll();
    await s.idle();
    expect(w.settled()).toBe(false);
    expect(wq.waiting).toBe(1);
    n = 2;
    wq.wakeAll();
    await s.idle();
    expect(w.value()).toBe(true);
  });

  it('wakeAll wakes every waiter; each rechecks its own condition', async () => {
    const s = new SeededScheduler(4);
    const wq = new WaitQueue(s);
    const state = { a: false, b: false };
    const wa = track(wq.wait(() => state.a, 'a'));
    const wb = track(wq.wait(() => state.b, 'b'));
    const wc = track(wq.wait(() => state.a, 'c'));
    await s.idle();
    state.a = true;
    wq.wakeAll();
    await s.idle();
    expect([wa.settled(), wb.settled(), wc.settled()]).toEqual([true, false, true]);
    expect(wq.waiting).toBe(1);
  });

  it('times out in virtual time and returns false (wait_event_timeout)', async () => {
    const s = new SeededScheduler(5);
    const wq = new WaitQueue(s);
    expect(await wq.wait(() => false, 'never', 250)).toBe(false);
    expect(s.now()).toBe(250);
  });

  it('rechecks the condition once at the timeout', async () => {
    const s = new SeededScheduler(6);
    const wq = new WaitQueue(s);
    let flag = false;
    void s.sleep(100, 'setter').then(() => { flag = true; }); // sets it, but never wakes
    expect(await wq.wait(() => flag, 'late', 250)).toBe(true);
    expect(s.now()).toBe(250);
  });

  it('a zero timeout checks the condition once', async () => {
    const s = new SeededScheduler(7);
    const wq = new WaitQueue(s);
    expect(await wq.wait(() => false, 'z', 0)).toBe(false);
    expect(await wq.wait(() => true, 'z', 0)).toBe(true);
    expect(s.now()).toBe(0);
  });

  it('a wakeup before the timeout cancels the timer (the clock does not jump)', async () => {
    const s = new SeededScheduler(8);
    const wq = new WaitQueue(s);
    let flag = false;
    const w = wq.wait(() => flag, 'w', 10_000);
    void s.sleep(5, 'waker').then(() => { flag = true; wq.wakeAll(); });
    expect(await w).toBe(true);
    await s.idle();
    expect(s.now()).toBe(5);
  });

  it('rejects a NaN timeout', async () => {
    const wq = new WaitQueue(new SeededScheduler(1));
    await expect(wq.wait(() => false, 'nan', Number.NaN)).rejects.toBeInstanceOf(HmmError);
  });

  it('works on the real scheduler', async () => {
    const wq = new WaitQueue(new RealScheduler());
    let flag = false;
    const w = wq.wait(() => flag, 'real');
    await ticks(3);
    flag = true;
    wq.wakeAll();
    expect(await w).toBe(true);
    expect(await wq.wait(() => false, 'real-timeout', 5)).toBe(false);
  });
});
