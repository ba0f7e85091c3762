import { describe, expect, it, vi } from 'vitest';
import { SeededScheduler, mulberry32 } from '../../src/sched/seeded.js';

/** Several tasks, each yielding a few times; returns the trace and the order of side effects. */
async function workload(seed: number): Promise<{ trace: string[]; log: string[] }> {
  const s = new SeededScheduler(seed);
  const log: string[] = [];
  const task = async (name: string, n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      await s.yield(`${name}${i}`);
      log.push(`${name}${i}`);
    }
  };
  await Promise.all([task('a', 5), task('b', 5), task('c', 5), task('d', 5)]);
  return { trace: [...s.trace], log };
}

describe('mulberry32', () => {
  it('is deterministic and in [0, 1)', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    for (let i = 0; i < 1000; i++) {
      const x = a();
      expect(x).toBe(b());
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
  });
});

describe('SeededScheduler', () => {
  it('gives the same interleaving for the same seed', async () => {
    const r1 = await workload(42);
    const r2 = await workload(42);
    expect(r1.trace).toHaveLength(20);
    expect(r1.trace).toEqual(r2.trace);
    expect(r1.log).toEqual(r2.log);
    expect(r1.log).toEqual(r1.trace);
  });

  it('gives different interleavings for different seeds', async () => {
    const traces = new Set<string>();
    for (let seed = 1; seed <= 8; seed++) traces.add((await workload(seed)).trace.join(','));
    expect(traces.size).toBeGreaterThan(1);
  });

  it('keeps each task in program order whatever the seed', async () => {
    for (let seed = 0; seed < 10; seed++) {
      const { log } = await workload(seed);
      for (const t of ['a', 'b', 'c', 'd']) {
        expect(log.filter((l) => l.startsWith(t))).toEqual([0, 1, 2, 3, 4].map((i) => `${t}${i}`));
      }
    }
  });

  it('runs sleeps in virtual-time order and advances now() to each timer', async () => {
    const s = new SeededScheduler(3, { startTime: 100 });
    const woke: [string, number][] = [];
    const sleeper = async (name: string, ms: number): Promise<void> => {
      await s.sleep(ms, name);
      woke.push([name, s.now()]);
    };
    // Virtual, not real, time: no host timer as long as a sleep is ever set.
    const hostTimer = vi.spyOn(globalThis, 'setTimeout');
    try {
      await Promise.all([sleeper('c', 30_000), sleeper('a', 10), sleeper('b', 20), sleeper('d', 30_000)]);
      expect(hostTimer.mock.calls.filter((c) => (c[1] ?? 0) >= 10)).toEqual([]);
    } finally {
      hostTimer.mockRestore();
    }
    expect(woke.slice(0, 2)).toEqual([['a', 110], ['b', 120]]);
    expect(woke.slice(2).map((w) => w[1])).toEqual([30_100, 30_100]);
    expect(s.now()).toBe(30_100);
    expect(s.stats.timerAdvances).toBe(3);
  });

  it('does not fire a timer while other tasks are ready', async () => {
    const s = new SeededScheduler(9);
    const log: string[] = [];
    const spinner = async (): Promise<void> => {
      for (let i = 0; i < 50; i++) await s.yield('spin');
      log.push(`spin done at ${s.now()}`);
    };
    const sleeper = async (): Promise<void> => {
      await s.sleep(1, 'nap');
      log.push(`nap done at ${s.now()}`);
    };
    await Promise.all([spinner(), sleeper()]);
    expect(log).toEqual(['spin done at 0', 'nap done at 1']);
  });

  it('treats sleep(0) as a yield', async () => {
    const s = new SeededScheduler(1);
    await s.sleep(0, 'zero');
    expect(s.now()).toBe(0);
    expect(s.trace).toEqual(['zero']);
  });

  it('cancels an aborted sleep without advancing the clock', async () => {
    const s = new SeededScheduler(1);
    const ac = new AbortController();
    const p = s.sleep(1000, 'long', ac.signal);
    const caught = p.catch((e: unknown) => e);
    ac.abort(new Error('cancelled'));
    expect(await caught).toBeInstanceOf(Error);
    await s.sleep(5, 'short');
    await s.idle();
    expect(s.now()).toBe(5);
    expect(s.trace).toEqual(['short']);
  });

  it('wait() parks until an outside promise settles, with nothing else runnable', async () => {
    const s = new SeededScheduler(5);
    const ext = new Promise<number>((resolve) => setTimeout(() => resolve(7), 20));
    expect(await s.wait(ext, 'gpu')).toBe(7);
    expect(s.trace).toEqual(['gpu']);
    expect(s.now()).toBe(0);
  });

  it('wait() propagates a rejection', async () => {
    const s = new SeededScheduler(5);
    const ext = new Promise<number>((_, reject) => setTimeout(() => reject(new Error('device lost')), 5));
    await expect(s.wait(ext, 'gpu')).rejects.toThrow('device lost');
  });

  it('lets an outstanding wait() complete before virtual time moves', async () => {
    for (const seed of [1, 2, 3]) {
      const s = new SeededScheduler(seed);
      const log: string[] = [];
      const gpu = async (): Promise<void> => {
        await s.wait(new Promise((r) => setTimeout(r, 15)), 'fence');
        log.push(`fence at ${s.now()}`);
      };
      const timer = async (): Promise<void> => {
        await s.sleep(1000, 'timeout');
        log.push(`timeout at ${s.now()}`);
      };
      await Promise.all([gpu(), timer()]);
      expect(log).toEqual(['fence at 0', 'timeout at 1000']);
      expect(s.stats.graceExpirations).toBe(0);
    }
  });

  it('fires timers after the grace period if a waited promise depends on a sleeper', async () => {
    const s = new SeededScheduler(1, { externalGraceMs: 10 });
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const waiter = s.wait(gate, 'gate');
    const sleeper = s.sleep(50, 'nap').then(() => release());
    await Promise.all([waiter, sleeper]);
    expect(s.now()).toBe(50);
    expect(s.stats.graceExpirations).toBe(1);
  });

  it('interleaves waited completions deterministically with yields', async () => {
    const run = async (seed: number): Promise<string[]> => {
      const s = new SeededScheduler(seed);
      const done = Promise.resolve('ok');
      const a = async (): Promise<void> => { for (let i = 0; i < 4; i++) await s.yield('a'); };
      const b = async (): Promise<void> => { await s.wait(done, 'w1'); await s.yield('b'); await s.wait(done, 'w2'); };
      await Promise.all([a(), b()]);
      return s.trace;
    };
    expect(await run(11)).toEqual(await run(11));
  });

  it('a GPU completion lands at a seeded point, however long the GPU takes', async () => {
    // Two outstanding completions that settle at different real times: the trace must not
    // depend on which settled first or whether both had settled when the ready set drained.
    const run = async (seed: number, msA: number, msB: number): Promise<string[]> => {
      const s = new SeededScheduler(seed);
      const after = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
      const cpu = async (): Promise<void> => { for (let i = 0; i < 3; i++) await s.yield(`cpu${i}`); };
      const gpuA = async (): Promise<void> => { await s.wait(after(msA), 'A'); await s.yield('a'); };
      const gpuB = async (): Promise<void> => { await s.wait(after(msB), 'B'); await s.yield('b'); };
      await Promise.all([cpu(), gpuA(), gpuB()]);
      expect(s.stats.graceExpirations).toBe(0);
      return s.trace;
    };
    for (const seed of [1, 2, 3, 4]) {
      const ref = await run(seed, 0, 0);
      expect(await run(seed, 0, 40)).toEqual(ref);
      expect(await run(seed, 40, 0)).toEqual(ref);
    }
  });

  it('spawn() seeds task start order and idle() waits for quiescence', async () => {
    const s = new SeededScheduler(17);
    const started: string[] = [];
    for (const n of ['x', 'y', 'z']) void s.spawn(`start:${n}`, () => { started.push(n); });
    await s.idle();
    expect(started.sort()).toEqual(['x', 'y', 'z']);
    expect(s.trace.map((l) => l.slice(6)).sort()).toEqual(['x', 'y', 'z']);
    expect(s.parked).toBe(0);
  });
});
