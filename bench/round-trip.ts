/**
 * npm run bench:device — the mirror engine alone (no mm, no driver) next to the bare GPU
 * round trips it is built on, each figure beside a baseline from bench/gpu-baselines.ts
 * measured in the same run, interleaved with it:
 *
 *  1. runRound of a 1024-page read, every page mapped (page walk, done bits, fault drain),
 *     error scopes on and off, vs a bare dispatch of the same copy + the same readback;
 *  2. a PTE change + flush + fence, and a map + shootdown (unmap + flush + fence), vs a bare
 *     writeBuffer + onSubmittedWorkDone;
 *  3. a whole fault round trip: 1024 unmapped pages → records → service (map) → replay.
 * Medians after warm-up. `node ... bench/round-trip.ts [hardware|software]`; REPS=n.
 * bench:mirror measures the same things end to end through the public API.
 */
import { requestGpuDevice } from '../src/device/gpu.js';
import { MirrorEngine } from '../src/device/mirror-engine.js';
import { PTE_WRITE } from '../src/device/page-table.js';
import { replayCommand } from '../src/device/replay.js';
import { Baselines, fmtMs, interleaved, printTable, type Row } from './gpu-baselines.js';

const prefer = process.argv[2] === 'software' ? 'software' : 'hardware';
const ctx = await requestGpuDevice({ prefer, label: 'bench' });
const { device } = ctx;
console.log(`mirrorlab bench:device — node ${process.version}, ${process.arch}`);
console.log(`adapter: ${ctx.adapterName} (software: ${ctx.isSoftware})\n`);

const NPAGES = 1024;
const REPS = Number(process.env.REPS ?? 30);
const bare = new Baselines(device);
const rows: Row[] = [];

// --- 1. dispatch round trip --------------------------------------------------------------
const engines: MirrorEngine[] = [];
const fns: Record<string, () => Promise<void>> = {};
for (const checkErrors of [true, false]) {
  const e = await MirrorEngine.create(device, { apertureSlots: NPAGES, deviceSlots: 16, checkErrors });
  engines.push(e);
  const base = 2 ** 33; // pages above 2^32: the walk uses the high word
  for (let p = 0; p < NPAGES; p++) e.pt.map(base + p, p, PTE_WRITE);
  e.flush();
  const cmd = e.createCommand({ op: 'read', page: base, npages: NPAGES });
  fns[`round ${checkErrors}`] = async () => {
    cmd.reset();
    const r = await e.runRound(cmd);
    if (!r.finished) throw new Error('bench: round did not finish');
  };
}
fns.bare = bare.round(NPAGES, engines[0].roundReadbackBytes);
const t1 = await interleaved(fns, REPS, 5);
for (const checkErrors of [true, false]) {
  const ms = t1[`round ${checkErrors}`];
  rows.push({
    name: `runRound, ${NPAGES}-page read, all mapped (error scopes ${checkErrors ? 'on' : 'off'})`,
    result: fmtMs(ms), baseline: `${fmtMs(t1.bare)} (bare dispatch + copy + mapAsync)`, ratio: ms / t1.bare, target: '≤ 1.5x',
  });
}

// --- 2. shootdown ------------------------------------------------------------------------
{
  const e = engines[1];
  let flip = 0;
  const t2 = await interleaved({
    bare: bare.fence(),
    remap: async () => {
      flip ^= 1;
      e.pt.map(2 ** 33 + 5, 5, flip ? 0 : PTE_WRITE); // downgrade/upgrade one PTE
      e.flush();
      await e.fence();
    },
    zap: async () => {
      e.pt.map(2 ** 34, 7, PTE_WRITE);
      e.pt.unmap(2 ** 34, 1); // the zap frees 3 tables; the map re-creates them
      e.flush();
      await e.syncWalkers();
    },
  }, REPS * 3, 5);
  const base = `${fmtMs(t2.bare)} (bare writeBuffer + onSubmittedWorkDone)`;
  rows.push({ name: 'map (1 PTE) + flush + fence', result: fmtMs(t2.remap), baseline: base, ratio: t2.remap / t2.bare, target: '' });
  rows.push({ name: 'map + shootdown (unmap + flush + fence)', result: fmtMs(t2.zap), baseline: base, ratio: t2.zap / t2.bare, target: '≤ 1.5x' });
}

// --- 3. fault round trip -----------------------------------------------------------------
{
  const f = await MirrorEngine.create(device, { apertureSlots: NPAGES, deviceSlots: 16, checkErrors: false });
  const base = 2 ** 32;
  let records = 0;
  let faultRounds = 0;
  let runs = 0;
  const cmd = f.createCommand({ op: 'read', page: base, npages: NPAGES });
  const roundTrip = bare.round(NPAGES, f.roundReadbackBytes);
  const t3 = await interleaved({
    bare2: async () => { await roundTrip(); await roundTrip(); },
    fault: async () => {
      f.pt.unmap(base, NPAGES);
      cmd.reset();
      const out = await replayCommand(f, cmd, {
        service: async ({ faults }) => {
          records += faults.length;
          for (const x of faults) if (!f.pt.lookup(x.page)) f.pt.map(x.page, x.page - base, 0);
        },
      });
      faultRounds += out.faultRounds;
      runs++;
    },
  }, 10, 3);
  rows.push({
    name: `${NPAGES} unmapped pages → fault, service (map), replay: ${(records / runs).toFixed(0)} records, `
      + `${(faultRounds / runs).toFixed(1)} fault rounds per run (ring ${f.faults.capacity}, ${f.faultSources} uTLBs)`,
    result: fmtMs(t3.fault), baseline: `${fmtMs(t3.bare2)} (two bare rounds)`, ratio: t3.fault / t3.bare2, target: '',
  });
  f.destroy();
}

printTable(rows);
for (const x of engines) x.destroy();
bare.destroy();
device.destroy();
