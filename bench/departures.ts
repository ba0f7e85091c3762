/**
 * npm run bench:departures — what mirrorlab's deliberate departure from test_hmm costs:
 * its invalidate callback sets the interval sequence (mmu_interval_set_seq) before it skips
 * its own MIGRATE events, where dmirror_interval_invalidate returns first. A fault of the
 * same mirror racing its own migration then retries instead of installing what the
 * migration replaces. This runs one scenario under both orders, on SeededScheduler seeds
 * (so each seed's interleaving, GPU completions included, is the same on both sides):
 * a mirror reads a fresh 64-page buffer 10 times while it migrates a second 64-page buffer
 * to its device and back 10 times, a scheduling point between hmm_range_fault and the
 * read_retry check (the race window). Prints the retries of each order, and checks every
 * word read and the mirror audit on both.
 */
import { parseArgs } from 'node:util';
import { totals } from '../src/driver/records.js';
import { createMachine, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../src/index.js';
import { SeededScheduler } from '../src/sched/seeded.js';

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '20' } } });
const SEEDS = Number(values.seeds);
const PAGES = 64;
const ROUNDS = 10;

interface Tally { rangeFaults: number; retries: number; badWords: number; stale: number }

async function scenario(seed: number, ownMigrationSetsSeq: boolean): Promise<Tally> {
  const sched = new SeededScheduler(seed);
  const m = await createMachine({ devices: 1, systemPages: 8192, devicePages: 1024, aperturePages: 1024, scheduler: sched, ownMigrationSetsSeq });
  const t: Tally = { rangeFaults: 0, retries: 0, badWords: 0, stale: 0 };
  try {
    const p = m.spawn();
    const fd = await m.devices[0].open(p);
    const servicer = fd.setServicer({ afterRangeFault: () => sched.yield('bench:race-window') });
    const reads = async (): Promise<void> => {
      for (let r = 0; r < ROUNDS; r++) {
        const buf = await p.mmap(0, PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        const want = new Uint32Array(PAGES * PAGE_SIZE / 4).map((_, i) => (seed * 131 + r * 7919 + i) >>> 0);
        await p.write(buf, new Uint8Array(want.buffer));
        const got = new Uint32Array((await fd.read(buf, PAGES)).data.buffer);
        for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) t.badWords++;
        t.stale += (await fd.audit(buf, PAGES)).stale.length;
        await p.munmap(buf, PAGES * PAGE_SIZE);
      }
    };
    const migrations = async (): Promise<void> => {
      const buf = await p.mmap(0, PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      await p.write(buf, new Uint8Array(PAGES * PAGE_SIZE).fill(seed & 0xff));
      for (let r = 0; r < ROUNDS; r++) {
        await fd.migrateToDevice(buf, PAGES);
        await fd.migrateToSystem(buf, PAGES);
      }
    };
    await Promise.all([reads(), migrations()]);
    const tot = totals(servicer.records);
    t.rangeFaults = tot.rangeFaults;
    t.retries = tot.retries;
  } finally {
    await m.destroy();
  }
  return t;
}

const sum = (xs: Tally[], k: keyof Tally): number => xs.reduce((a, x) => a + x[k], 0);
const rows: [string, Tally[]][] = [['mirrorlab (set_seq, then skip own MIGRATE)', []], ['test_hmm (skip own MIGRATE first)', []]];
for (let seed = 1; seed <= SEEDS; seed++) {
  rows[0][1].push(await scenario(seed, true));
  rows[1][1].push(await scenario(seed, false));
}
console.log(`bench:departures — ${SEEDS} seeds, each: ${ROUNDS} reads of a fresh ${PAGES}-page buffer racing ${ROUNDS} migrations of another ${PAGES}-page buffer to the device and back`);
console.log('| order | range faults | retries | retries per range fault | words wrong | stale entries |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name, ts] of rows) {
  const rf = sum(ts, 'rangeFaults');
  console.log(`| ${name} | ${rf} | ${sum(ts, 'retries')} | ${(sum(ts, 'retries') / Math.max(1, rf)).toFixed(2)} | ${sum(ts, 'badWords')} | ${sum(ts, 'stale')} |`);
}
process.exit(0);
