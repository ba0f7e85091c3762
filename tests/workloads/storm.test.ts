import { describe, expect, it } from 'vitest';
import { createMachine, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { checkFrameAccounting } from '../../src/mm/accounting.js';
import { SeededScheduler } from '../../src/sched/seeded.js';
import { machineTest } from '../support/machine.js';
import { MAX_STORM_RATE, startStorm, type StormKind } from '../../src/workloads/storm.js';

describe('invalidation storm', () => {
  machineTest.override('systemPages', 1 << 13);
  // Scheduler time, not the wall clock: under a seeded scheduler 200 ms is 200 virtual ms
  // whatever the machine's speed, so the count of operations is the rate's.
  machineTest.override('seed', 5);

  machineTest('sends invalidations at about the set rate and never changes the contents', async ({ machine: m }) => {
    const sched = m.sched;
    const p = m.spawn();
    const pages = 32;
    const addr = await p.mmap(0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const data = new Uint8Array(pages * PAGE_SIZE);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
    await p.write(addr, data);
    const events: string[] = [];
    await p.mm.notifiers.insertInterval(addr, pages * PAGE_SIZE, { invalidate: (s, r, seq) => { s.setSeq(seq); events.push(r.event); return true; } });
    const kinds: StormKind[] = ['remap', 'cow', 'reclaim', 'protect'];
    const storm = startStorm(p, { rate: 500, start: addr, end: addr + pages * PAGE_SIZE, seed: 5, kinds });
    const t0 = sched.now();
    await sched.sleep(200, 'test: let the storm run');
    const stats = await storm.stop();
    const elapsed = sched.now() - t0;
    // 500/s over the elapsed virtual time: a Poisson count, within 4 standard deviations (the
    // count is the seed's, so this is no flaky bound: seed 5 gives one count every time).
    const mean = (elapsed * 500) / 1000;
    expect(Math.abs(stats.ops - mean)).toBeLessThanOrEqual(4 * Math.sqrt(mean) + 1);
    for (const k of kinds) expect(stats.byKind[k], k).toBeGreaterThan(0);
    for (const e of ['UNMAP', 'CLEAR', 'PROTECTION_VMA']) expect(events).toContain(e);
    expect(await p.read(addr, data.length)).toEqual(data);
    checkFrameAccounting(m);
  });

  it('the seed is the storm: the same seed sends the same invalidations at the same times; another seed, others', async () => {
    /** (virtual ms, page, event) of each invalidation a storm of `seed` sends in 100 virtual ms. */
    const storm = async (seed: number): Promise<string[]> => {
      const sched = new SeededScheduler(9); // the same interleaving each time: only the storm's seed varies
      const m = await createMachine({ devices: 0, systemPages: 1 << 12, scheduler: sched });
      const p = m.spawn();
      const pages = 16;
      const addr = await p.mmap(0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      await p.write(addr, new Uint8Array(pages * PAGE_SIZE).fill(1));
      const t0 = sched.now();
      const seen: string[] = [];
      await p.mm.notifiers.insertInterval(addr, pages * PAGE_SIZE, {
        invalidate: (s, r, seq) => { s.setSeq(seq); seen.push(`${(sched.now() - t0).toFixed(3)} ${(r.start - addr) / PAGE_SIZE} ${r.event}`); return true; },
      });
      const st = startStorm(p, { rate: 400, start: addr, end: addr + pages * PAGE_SIZE, seed, kinds: ['protect'] }); // two invalidations an operation, always
      await sched.sleep(100, 'test: storm');
      await st.stop();
      await m.destroy();
      return seen;
    };
    const a = await storm(11);
    expect(a.length).toBeGreaterThan(10);
    expect(await storm(11)).toEqual(a);
    const b = await storm(12);
    expect(b).not.toEqual(a);
    // Not only which pages: when. The arrival times differ too.
    const times = (xs: string[]): string[] => xs.map((x) => x.split(' ')[0]);
    expect(times(b)).not.toEqual(times(a));
  });

  machineTest.for([
    ['a rate above the bound', { rate: MAX_STORM_RATE + 1 }],
    ['a negative rate', { rate: -1 }],
    ['a rate that is not a number', { rate: Number.NaN }],
    ['a range of no page', { end: 0x10000 }],
  ] as const)('refuses %s with EINVAL before anything runs', async ([, bad], { machine: m }) => {
    const p = m.spawn();
    const ok = { rate: 100, start: 0x10000, end: 0x20000, seed: 1, kinds: ['reclaim'] as StormKind[] };
    expect(() => startStorm(p, { ...ok, ...bad })).toThrowErrno('EINVAL');
  });
});

