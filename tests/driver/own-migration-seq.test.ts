/**
 * The departure the README documents: the invalidate callback sets the interval sequence
 * before it skips its own MIGRATE events (test_hmm returns first). Under the same seeded
 * interleavings, a read racing the mirror's own migrations retries only with the sequence
 * set, and reads the right words either way. (Node only: the GPU through Dawn.)
 */
import { describe, expect } from 'vitest';
import { totals } from '../../src/driver/records.js';
import { HmmError, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { checkFrameAccounting } from '../../src/mm/accounting.js';
import { SeededScheduler } from '../../src/sched/seeded.js';
import { mmuNotifierRange } from '../../src/mm/notifier.js';
import { machineTest, type MachineFactory } from '../support/machine.js';

const PAGES = 64;

async function race(machines: MachineFactory, seed: number, ownMigrationSetsSeq: boolean): Promise<{ retries: number; bad: number; stale: number }> {
  const sched = new SeededScheduler(seed);
  // Each machine is destroyed here (its frames back before the next seed's) and checked again at the test's end.
  const m = await machines({ devices: 1, systemPages: 4096, devicePages: 256, aperturePages: 512, scheduler: sched, ownMigrationSetsSeq });
  try {
    const p = m.spawn();
    const fd = await m.devices[0].open(p);
    const servicer = fd.setServicer({ afterRangeFault: () => sched.yield('test:race-window') });
    let bad = 0;
    let stale = 0;
    const reads = async (): Promise<void> => {
      for (let r = 0; r < 4; r++) {
        const buf = await p.mmap(0, PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        const want = new Uint32Array(PAGES * PAGE_SIZE / 4).map((_, i) => (seed * 131 + r * 7919 + i) >>> 0);
        await p.write(buf, new Uint8Array(want.buffer));
        const got = new Uint32Array((await fd.read(buf, PAGES)).data.buffer);
        for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) bad++;
        stale += (await fd.audit(buf, PAGES)).stale.length;
        await p.munmap(buf, PAGES * PAGE_SIZE);
      }
    };
    const migrations = async (): Promise<void> => {
      const buf = await p.mmap(0, PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      await p.write(buf, new Uint8Array(PAGES * PAGE_SIZE).fill(0x5a));
      for (let r = 0; r < 4; r++) {
        expect((await fd.migrateToDevice(buf, PAGES)).cpages).toBe(PAGES);
        expect((await fd.migrateToSystem(buf, PAGES)).cpages).toBe(PAGES);
      }
    };
    await Promise.all([reads(), migrations()]);
    checkFrameAccounting(m);
    return { retries: totals(servicer.records).retries, bad, stale };
  } finally {
    await m.destroy();
  }
}

describe('own MIGRATE events and the interval sequence (a documented departure)', () => {
  machineTest('set first, racing faults retry; in test_hmm\'s order they do not; data right either way', async ({ machines }) => {
    let withSeq = 0;
    let kernelOrder = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const a = await race(machines, seed, true);
      const b = await race(machines, seed, false);
      expect(a.bad + a.stale + b.bad + b.stale, `seed ${seed}`).toBe(0);
      withSeq += a.retries;
      kernelOrder += b.retries;
    }
    expect(kernelOrder).toBe(0);
    expect(withSeq).toBeGreaterThan(0);
  }, 120_000);

  machineTest('in test_hmm\'s order the owner check comes before the mutex: a non-blockable own MIGRATE passes a held lock', async ({ machines }) => {
    for (const ownMigrationSetsSeq of [true, false]) {
      const m = await machines({ devices: 1, systemPages: 4096, devicePages: 64, aperturePages: 512, ownMigrationSetsSeq });
      try {
        const p = m.spawn();
        const fd = await m.devices[0].open(p);
        await fd.lock.lock();
        const r = mmuNotifierRange(0, PAGE_SIZE, 'MIGRATE', { blockable: false, owner: m.devices[0] });
        const got = await p.mm.notifiers.invalidateRangeStart(r).then(() => 'ok', (e: unknown) => (e instanceof HmmError ? e.code : String(e)));
        // dmirror_interval_invalidate: `if (range->owner == dmirror->mdevice) return true;` first.
        expect(got, `ownMigrationSetsSeq ${ownMigrationSetsSeq}`).toBe(ownMigrationSetsSeq ? 'EAGAIN' : 'ok');
        if (got === 'ok') await p.mm.notifiers.invalidateRangeEnd(r);
        fd.lock.unlock();
        await fd.close();
      } finally {
        await m.destroy();
      }
    }
  });
});
