/**
 * npm run bench:mirror — the GPU mirror end to end, through the public API (createMachine,
 * devices[0].open, Mirror.read/migrate, madvise), each figure beside a bare WebGPU baseline
 * on the same device, measured in the same run, interleaved with it (bench/gpu-baselines.ts
 * says exactly what each baseline does):
 *
 *  (a) device READ of a fresh 4, 64 and 256 MiB buffer (the CPU wrote it; the device has
 *      never seen it): end to end in pages/s against a bare upload + copy kernel + readback
 *      of the same bytes, and the replay round (the round after the fault service, which
 *      moves every word) against a bare dispatch + copy + mapAsync of the same size;
 *  (b) shootdown: MADV_DONTNEED of one mirrored page — the driver's invalidate callback
 *      (zap + fence + write-back, the zap pushed with the next dispatch; the fence is skipped when no round is in flight,
 *      and timed forced too), inside the callback and around the madvise — against a bare
 *      writeBuffer + onSubmittedWorkDone;
 *  (c) migrateToDevice / migrateToSystem of 64 MiB in GiB/s against a bare
 *      copyBufferToBuffer of the same bytes;
 *  (d) a fresh READ of 4 and 16 MiB on a newly opened mirror of a new machine (every fixed
 *      cost of the first command included; piece by piece: the machine and the open before
 *      it, its fault rounds, its replay rounds, the rest; the first read of each size in the
 *      process untimed, as the baseline's first trip is, and given apart), and a warm READ of
 *      16 MiB, against the bare round trip of the same bytes;
 *  (e) the workgroup TLB's hit rate and the fault ring's records per fault round at 4 and
 *      64 MiB (RoundResult.tlb, RoundResult.faults), as data.
 * Every row carries issue 16's target. Medians. Options: --quick (fewer repetitions), --json FILE,
 * --only SECTIONS (comma-separated: read, shootdown, migrate, fresh), --adapter auto|opengles|vulkan
 * (the Node adapter: 'vulkan' is SwiftShader, which has timestamp queries). Where the device
 * has 'timestamp-query' each timed row also splits its median into GPU time (the compute
 * passes, from timestamps) and host time (the rest of the wall time), its baseline's too
 * (GpuSplit); elsewhere that column says n/a.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import type { Dmirror } from '../src/driver/dmirror.js';
import type { DmirrorDevice } from '../src/driver/dmirror-device.js';
import type { RoundResult, MirrorCommand, MirrorEngine } from '../src/device/mirror-engine.js';
import { createMachine, MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../src/index.js';
import type { MmuIntervalNotifierOps } from '../src/mm/notifier.js';
import { adapterOption, Baselines, fmtMs, GpuSplit, interleaved, median, printTable, type Row } from './gpu-baselines.js';

const quick = process.argv.includes('--quick');
/** --only read,shootdown,migrate,fresh: run those sections alone (a profile or an A/B of one row). */
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt > 0 ? new Set(process.argv[onlyAt + 1].split(',')) : null;
const want = (section: 'read' | 'shootdown' | 'migrate' | 'fresh'): boolean => only === null || only.has(section);
const jsonAt = process.argv.indexOf('--json');
const MiB = 1 << 20;
const GiB = 1 << 30;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
/** 128 MiB aperture (llvmpipe's largest binding): 64 MiB chunks. 64 MiB of device memory. */
const APERTURE_PAGES = 32768;
const DEVICE_PAGES = 16384;

adapterOption();
const t0All = performance.now();
const machine = await createMachine({ devices: 1, aperturePages: APERTURE_PAGES, devicePages: DEVICE_PAGES, systemPages: 1 << 19 });
const proc = machine.spawn();
const dev = machine.devices[0];
const mirror = (await dev.open(proc)) as Dmirror;
const engine = mirror.engine;
const device = engine.device;
const bare = new Baselines(device);
const split = new GpuSplit(device);
const rows: Row[] = [];
const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

console.log(`mirrorlab bench:mirror — node ${process.version}, ${process.arch}, load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
console.log(`adapter: ${dev.gpu.adapterName} (software: ${dev.gpu.isSoftware}; timestamp-query: ${dev.gpu.timestamps})`);
console.log(`aperture ${APERTURE_PAGES} pages (${APERTURE_PAGES * PAGE_SIZE / MiB} MiB), device memory ${DEVICE_PAGES} pages, `
  + `chunk ${mirror.chunkPages} pages (${mirror.chunkPages * PAGE_SIZE / MiB} MiB), fault ring ${engine.faults.capacity} records, `
  + `round readback ${engine.roundReadbackBytes} B\n`);

// Every round the driver runs, timed inside MirrorEngine.runRound (table flush, dispatch,
// state + fault-ring drain, mapAsync), from an idle queue: the fault service's aperture
// uploads (queued writeBuffers) are waited for, untimed, first — they are the upload half
// of the end-to-end figure, not part of a round. A replay round is one that found nothing
// done and finished everything.
interface RoundLog { pages: number; ms: number; replay: boolean; records: number; overflow: boolean; missed: number; tlb: RoundResult['tlb']; gpu: number }
/** Logs every round of engine `e` into `log` (timed from an idle queue, as above); returns the unlogged runRound. */
function logRounds(e: MirrorEngine, log: RoundLog[]): (cmd: MirrorCommand) => Promise<RoundResult> {
  const run = e.runRound.bind(e);
  e.runRound = async (cmd: MirrorCommand): Promise<RoundResult> => {
    const before = cmd.done;
    await e.device.queue.onSubmittedWorkDone();
    const t = performance.now();
    const r = await run(cmd);
    log.push({
      pages: cmd.npages, ms: performance.now() - t, replay: before === 0 && r.finished && r.completed === r.total,
      records: r.faults.length, overflow: r.overflow, missed: r.missed, tlb: r.tlb, gpu: NaN,
    });
    return r;
  };
  return run;
}
const roundLog: RoundLog[] = [];
const runRound = logRounds(engine, roundLog);

function pattern(npages: number, salt: number): Uint8Array<ArrayBuffer> {
  const w = new Uint32Array(npages * (PAGE_SIZE / 4));
  for (let k = 0; k < w.length; k++) w[k] = (Math.imul(k, 0x9e3779b1) + salt) >>> 0;
  return new Uint8Array(w.buffer);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

// The translation cache and the fault ring over one fresh read's rounds (RoundResult.tlb, .faults):
// lookups served by a leaf one walk of the round left (the workgroup TLB's, or the range's
// leaves mirror_read_fresh reads), against the walks.
const tlbRows: Row[] = [];
function tlbRow(mib: number, log: readonly RoundLog[]): Row {
  const faulting = log.filter((x) => x.missed > 0);
  const lookups = log.reduce((a, x) => a + x.tlb.lookups, 0);
  const walks = log.reduce((a, x) => a + x.tlb.walks, 0);
  const records = faulting.map((x) => x.records);
  const pagesMissed = faulting.map((x) => x.missed / (PAGE_SIZE / 4));
  return {
    name: `${mib} MiB fresh READ: TLB hit rate over its rounds (lookups without a walk of their own: workgroup TLB, range leaves); fault ring records per fault round (n = ${faulting.length})`,
    result: `${(100 * (lookups - walks) / Math.max(lookups, 1)).toFixed(1)} % (${walks} walks for ${lookups} lookups); ${median(records)} records${faulting.some((x) => x.overflow) ? ' (ring full: overflow, replayed)' : ''}`,
    baseline: `${median(pagesMissed)} pages missed per fault round (issue 16 before: 0 % hits, a walk per 32-word thread; 4 records per page, 4096 = the ring at 4 and 64 MiB)`,
    ratio: null,
    target: '',
  };
}

// ---- (a) device READ of fresh buffers ----------------------------------------------------
for (const [mib, reps] of want('read') ? [[4, quick ? 5 : 30], [64, quick ? 2 : 8], [256, quick ? 1 : 3]] as const : []) {
  const npages = (mib * MiB) / PAGE_SIZE;
  const chunk = Math.min(npages, mirror.chunkPages);
  const data = pattern(npages, mib);
  const bareRound = bare.round(chunk, engine.roundReadbackBytes);
  const bareTrip = bare.trip(npages, mirror.chunkPages);
  await bareRound();
  await bareTrip();
  const readMs: number[] = [];
  const tripMs: number[] = [];
  const bareRoundMs: number[] = [];
  const readGpu: number[] = [];
  const tripGpu: number[] = [];
  const bareRoundGpu: number[] = [];
  let faults = -1;
  let ptr = 0;
  roundLog.length = 0;
  for (let i = 0; i < reps; i++) {
    if (ptr !== 0) await proc.munmap(ptr, npages * PAGE_SIZE);
    ptr = await proc.mmap(0, npages * PAGE_SIZE, RW, ANON);
    await proc.write(ptr, data);
    // Bare rounds before and after each read (drift in the machine's speed hits both sides).
    await split.take();
    for (let k = 0; k < Math.ceil(npages / chunk); k++) {
      const t0 = performance.now();
      await bareRound();
      bareRoundMs.push(performance.now() - t0);
      bareRoundGpu.push(await split.take());
    }
    const logged = roundLog.length;
    let t = performance.now();
    const r = await mirror.read(ptr, npages);
    readMs.push(performance.now() - t);
    // The read's passes, one a round, in order: each round's GPU time, and the read's.
    const passes = await split.takePasses();
    if (passes !== null && passes.length === roundLog.length - logged) passes.forEach((ms, k) => { roundLog[logged + k].gpu = ms; });
    readGpu.push(passes === null ? NaN : sum(passes));
    if (!same(r.data, data)) throw new Error(`bench: ${mib} MiB read returned wrong data`);
    faults = r.faults;
    t = performance.now();
    await bareTrip();
    tripMs.push(performance.now() - t);
    tripGpu.push(await split.take());
    for (let k = 0; k < Math.ceil(npages / chunk); k++) {
      t = performance.now();
      await bareRound();
      bareRoundMs.push(performance.now() - t);
      bareRoundGpu.push(await split.take());
    }
  }
  const replayLog = roundLog.filter((x) => x.replay && x.pages === chunk);
  const replays = replayLog.map((x) => x.ms);
  const faultLog = roundLog.filter((x) => x.missed > 0);
  const faultRounds = faultLog.map((x) => x.ms);
  if (mib !== 256) tlbRows.push(tlbRow(mib, roundLog));
  // Steady state: the last read's last chunk is still mirrored; replay a command over it
  // (reset + runRound: every word runs again, nothing faults) back to back with bare rounds.
  const steadyCmd = engine.createCommand({ op: 'read', page: ptr / PAGE_SIZE + npages - chunk, npages: chunk, scratch: true });
  const steady = await interleaved({
    mirror: async () => {
      steadyCmd.reset();
      const r = await runRound(steadyCmd);
      if (!r.finished || r.completed !== r.total) throw new Error('bench: steady-state round faulted');
    },
    bare: bareRound,
  }, mib === 4 ? (quick ? 10 : 40) : (quick ? 3 : 12), 2, split);
  steadyCmd.destroy();
  await proc.munmap(ptr, npages * PAGE_SIZE);
  const e2e = median(readMs);
  const trip = median(tripMs);
  const rr = median(replays);
  const br = median(bareRoundMs);
  rows.push({
    name: `device READ, fresh ${mib} MiB (${npages} pages), end to end; faults = ${faults}`,
    result: `${((npages / e2e) * 1000 / 1e6).toFixed(3)} M pages/s (${fmtMs(e2e)})`,
    baseline: `${((npages / trip) * 1000 / 1e6).toFixed(3)} M pages/s (${fmtMs(trip)}: bare upload + copy kernel + readback)`,
    ratio: e2e / trip,
    target: '≤ 1.5x',
    split: GpuSplit.column([e2e, median(readGpu)], [trip, median(tripGpu)]),
  });
  const sz = `${chunk} pages (${(chunk * PAGE_SIZE) / MiB} MiB)`;
  rows.push({
    name: `replay round, steady state, ${sz}${npages > chunk ? ` (the read's last chunk of ${npages / chunk})` : ''}`,
    result: fmtMs(steady.mirror),
    baseline: `${fmtMs(steady.bare)} (bare dispatch + copy + mapAsync)`,
    ratio: steady.mirror / steady.bare,
    target: mib === 256 ? '' : '≤ 1.1x',
    split: GpuSplit.column([steady.mirror, steady['mirror.gpu'] ?? NaN], [steady.bare, steady['bare.gpu'] ?? NaN]),
  });
  rows.push({
    name: `replay round inside the fresh reads (after the fault service, queue idle), ${sz}; n = ${replays.length}`,
    result: fmtMs(rr),
    baseline: `${fmtMs(br)} (same bare round, once per chunk before and after each read)`,
    ratio: rr / br,
    target: '≤ 1.3x',
    split: GpuSplit.column([rr, median(replayLog.map((x) => x.gpu))], [br, median(bareRoundGpu)]),
  });
  // Where a fresh read's time goes: its rounds (timed from an idle queue) and the rest (the
  // fault service, the aperture uploads, the output's read-back, JavaScript), per read.
  const reads = readMs.length;
  const faultMs = faultRounds.reduce((a, b) => a + b, 0) / reads;
  const replayMs = replays.reduce((a, b) => a + b, 0) / reads;
  rows.push({
    name: `fresh ${mib} MiB READ, piece by piece (means per read): fault rounds (kernel + report + record + ring drain) / replay rounds / the rest (service, uploads, output read-back, JS)`,
    result: `${fmtMs(faultMs)} / ${fmtMs(replayMs)} / ${fmtMs(readMs.reduce((a, b) => a + b, 0) / reads - faultMs - replayMs)}`,
    baseline: `${fmtMs(tripMs.reduce((a, b) => a + b, 0) / reads)} (bare trip, mean)`,
    ratio: null,
    target: '',
    split: Number.isNaN(median(readGpu)) ? 'n/a (no timestamp-query)'
      : `GPU of the fault rounds ${fmtMs(sum(faultLog.map((x) => x.gpu)) / reads)}, of the replay rounds ${fmtMs(sum(replayLog.map((x) => x.gpu)) / reads)}, of the read ${fmtMs(sum(readGpu) / reads)}; bare trip GPU ${fmtMs(sum(tripGpu) / reads)}`,
  });
}

// ---- (b) shootdown ----------------------------------------------------------------------
// Page 0 of a 64-page buffer stays mirrored (the mirror's tables stay); each sample: the CPU
// writes page k (a fresh frame), the device reads it (fault → mapped), then MADV_DONTNEED of
// page k → the driver's invalidate callback zaps it. Bare fence and madvise alternate order.
async function shootdowns(reps: number): Promise<{ inside: number; around: number; fence: number }> {
  const npages = 64;
  const ptr = await proc.mmap(0, npages * PAGE_SIZE, RW, ANON);
  await proc.write(ptr, pattern(npages, 9));
  await mirror.read(ptr, npages);
  const ops = mirror.notifier.ops as { -readonly [K in keyof MmuIntervalNotifierOps]: MmuIntervalNotifierOps[K] };
  const invalidate = ops.invalidate;
  let cbMs = 0;
  ops.invalidate = async (...args) => {
    const t = performance.now();
    const r = await invalidate(...args);
    cbMs = performance.now() - t;
    return r;
  };
  const one = pattern(1, 10);
  const inside: number[] = [];
  const around: number[] = [];
  const fence: number[] = [];
  const bareFence = bare.fence();
  const inv0 = mirror.stats.invalidations;
  try {
    for (let i = 0; i < reps + 5; i++) {
      const a = ptr + (1 + (i % (npages - 1))) * PAGE_SIZE;
      await proc.write(a, one); // a fresh frame (zaps the old entry, if any)
      await mirror.read(a, 1); // the device maps it again
      let bf = 0;
      if (i % 2 === 1) {
        const t2 = performance.now();
        await bareFence();
        bf = performance.now() - t2;
      }
      const t = performance.now();
      await proc.madvise(a, PAGE_SIZE, MADV_DONTNEED); // → invalidate → zap (+ fence) + write-back; the next read's round pushes the zap
      const ms = performance.now() - t;
      if (i % 2 === 0) {
        const t2 = performance.now();
        await bareFence();
        bf = performance.now() - t2;
      }
      if (i < 5) continue; // warm-up
      around.push(ms);
      inside.push(cbMs);
      fence.push(bf);
    }
  } finally {
    ops.invalidate = invalidate;
  }
  if (mirror.stats.invalidations - inv0 < reps + 5) throw new Error('bench: fewer invalidations than expected');
  await proc.munmap(ptr, npages * PAGE_SIZE);
  return { inside: median(inside), around: median(around), fence: median(fence) };
}
if (want('shootdown')) {
  const reps = quick ? 60 : 400;
  const before = engine.stats;
  const idle = await shootdowns(reps);
  const elided = engine.stats.walkerSyncsSkipped - before.walkerSyncsSkipped;
  const syncs = engine.stats.walkerSyncs - before.walkerSyncs;
  // The same with the fence forced (what syncWalkers does when a round may be in flight).
  const syncWalkers = engine.syncWalkers.bind(engine);
  engine.syncWalkers = () => engine.fence();
  const fenced = await shootdowns(reps);
  engine.syncWalkers = syncWalkers;
  const base = (f: number): string => `${fmtMs(f)} (bare writeBuffer + onSubmittedWorkDone)`;
  rows.push({
    name: `shootdown of 1 mirrored page (MADV_DONTNEED), inside the invalidate callback: zap + write-back (the table's write goes with the next dispatch's flush); no kernel in flight, so no fence (${elided} of ${syncs} skipped)`,
    result: fmtMs(idle.inside), baseline: base(idle.fence), ratio: idle.inside / idle.fence, target: '≤ 1.5x',
  });
  rows.push({
    name: 'same, fence forced: zap + fence + write-back',
    result: fmtMs(fenced.inside), baseline: base(fenced.fence), ratio: fenced.inside / fenced.fence, target: '≤ 1.2x',
  });
  rows.push({
    name: 'same (fence forced), around madvise: the mm\'s own work included',
    result: fmtMs(fenced.around), baseline: base(fenced.fence), ratio: fenced.around / fenced.fence, target: '',
  });
}

// ---- (c) migration ----------------------------------------------------------------------
if (want('migrate')) {
  const mib = 64;
  const npages = (mib * MiB) / PAGE_SIZE;
  const bytes = npages * PAGE_SIZE;
  const ptr = await proc.mmap(0, bytes, RW, ANON);
  const data = pattern(npages, 11);
  await proc.write(ptr, data);
  const copy = bare.copy(bytes);
  const upDown = bare.link(bytes, true);
  const down = bare.link(bytes, false);
  await copy();
  await upDown();
  await down();
  // The caller's buffer for migrateToDevice's read-back (hmm-tests' buffer->mirror, the
  // ioctl's cmd.ptr), touched once, as the bare baseline's host array is.
  const into = new Uint8Array(bytes).fill(1);
  const toDev: number[] = [];
  const gpuOf = { toDev: [] as number[], toSys: [] as number[], copy: [] as number[], upDown: [] as number[], down: [] as number[] };
  const toDevFresh: number[] = [];
  const toSys: number[] = [];
  const copies: number[] = [];
  const upDowns: number[] = [];
  const downs: number[] = [];
  const reps = quick ? 2 : 6;
  for (let i = 0; i < reps; i++) {
    await split.take();
    let t = performance.now();
    const r = await mirror.migrateToDevice(ptr, npages, into);
    toDev.push(performance.now() - t);
    gpuOf.toDev.push(await split.take());
    if (r.cpages !== npages || r.data.buffer !== into.buffer || !same(r.data, data)) throw new Error('bench: migrateToDevice moved the wrong data');
    t = performance.now();
    await copy();
    copies.push(performance.now() - t);
    gpuOf.copy.push(await split.take());
    t = performance.now();
    const s = await mirror.migrateToSystem(ptr, npages);
    toSys.push(performance.now() - t);
    gpuOf.toSys.push(await split.take());
    if (s.cpages !== npages) throw new Error(`bench: migrateToSystem moved ${s.cpages} of ${npages} pages`);
    t = performance.now();
    await copy();
    copies.push(performance.now() - t);
    gpuOf.copy.push(await split.take());
    t = performance.now();
    await upDown();
    upDowns.push(performance.now() - t);
    gpuOf.upDown.push(await split.take());
    t = performance.now();
    await down();
    downs.push(performance.now() - t);
    gpuOf.down.push(await split.take());
    // Without a destination: the driver returns a new 64 MiB array (its first-touch page
    // faults included), then home again untimed.
    t = performance.now();
    const f = await mirror.migrateToDevice(ptr, npages);
    toDevFresh.push(performance.now() - t);
    if (!same(f.data, data)) throw new Error('bench: migrateToDevice (new array) moved the wrong data');
    await mirror.migrateToSystem(ptr, npages);
  }
  if (!same(await proc.read(ptr, bytes), data)) throw new Error('bench: data changed by the migrations');
  const gibs = (ms: number): number => bytes / GiB / (ms / 1000);
  const c = median(copies);
  for (const [what, ms, floor, floorWhat, g, gf] of [
    ['migrateToDevice', median(toDev), median(upDowns), 'bare writeBuffer + copy + readback into a host array', median(gpuOf.toDev), median(gpuOf.upDown)],
    ['migrateToSystem', median(toSys), median(downs), 'bare copy + readback into a host array', median(gpuOf.toSys), median(gpuOf.down)],
  ] as const) {
    rows.push({
      name: `${what}, ${mib} MiB (${npages} pages)${what === 'migrateToDevice' ? ', incl. the device read-back into the caller\'s buffer' : ''}`,
      result: `${gibs(ms).toFixed(3)} GiB/s (${fmtMs(ms)})`,
      baseline: `${gibs(c).toFixed(2)} GiB/s (${fmtMs(c)}: bare copyBufferToBuffer)`,
      ratio: ms / c,
      target: '≤ 3x',
      split: GpuSplit.column([ms, g], [c, median(gpuOf.copy)]),
    });
    // What the ioctl must move across the host link in any case (the data comes from and
    // goes to host memory; the copyBufferToBuffer baseline moves it GPU-internally only).
    rows.push({
      name: `${what}, same, against the bytes it must move to/from the host`,
      result: fmtMs(ms),
      baseline: `${fmtMs(floor)} (${floorWhat})`,
      ratio: ms / floor,
      target: '≤ 1.5x',
      split: GpuSplit.column([ms, g], [floor, gf]),
    });
  }
  rows.push({
    name: `migrateToDevice, same, returning a new array (no destination buffer: the array's first-touch page faults included)`,
    result: fmtMs(median(toDevFresh)),
    baseline: `${fmtMs(median(upDowns))} (bare writeBuffer + copy + readback to host)`,
    ratio: median(toDevFresh) / median(upDowns),
    target: '',
  });
  await proc.munmap(ptr, bytes);
}

// ---- (d) fresh READ on a newly opened mirror of a new machine; warm READ -----------------
if (want('fresh')) {
  const reps = quick ? 2 : 5;
  for (const mib of [4, 16]) {
    const npages = (mib * MiB) / PAGE_SIZE;
    const data = pattern(npages, 20 + mib);
    const trip = bare.trip(npages, mirror.chunkPages);
    await trip();
    const fresh: number[] = [];
    const trips: number[] = [];
    const freshGpu: number[] = [];
    const tripsGpu: number[] = [];
    // Piece by piece, per read: the new machine and its mirror (createMachine + spawn,
    // devices[0].open: before the timed read, so outside its ratio), and inside the read its
    // fault rounds (how many ran cold: MirrorEngineStats.coldRounds), its replay rounds (each
    // timed from an idle queue, as in (a)) and the rest.
    const pieces: { machine: number; open: number; fault: number; replay: number; read: number; faultRounds: number; cold: number }[] = [];
    // Read 0 is untimed, as the baseline's first trip above is: the first read of its size in
    // the process creates the device's command buffers and staging of that size (the pools
    // later mirrors reuse) and runs colder JavaScript; its pieces are given apart ("the first").
    for (let i = 0; i <= reps; i++) {
      // A new machine (same options), a new process, a new mirror: the first READ pays every
      // fixed cost the driver has left for it.
      let t = performance.now();
      let machineMs = 0;
      let openMs = 0;
      const m2 = await createMachine({ devices: 1, aperturePages: APERTURE_PAGES, devicePages: DEVICE_PAGES, systemPages: 1 << 19 });
      try {
        const p2 = m2.spawn();
        machineMs = performance.now() - t;
        const ptr = await p2.mmap(0, npages * PAGE_SIZE, RW, ANON);
        await p2.write(ptr, data);
        t = performance.now();
        const mir = (await m2.devices[0].open(p2)) as Dmirror;
        openMs = performance.now() - t;
        const log: RoundLog[] = [];
        logRounds(mir.engine, log);
        await split.take();
        t = performance.now();
        const r = await mir.read(ptr, npages);
        const readMs = performance.now() - t;
        const readGpu = await split.take();
        if (i > 0) {
          fresh.push(readMs);
          freshGpu.push(readGpu);
        }
        if (!same(r.data, data)) throw new Error(`bench: ${mib} MiB fresh read on a new mirror returned wrong data`);
        const faulting = log.filter((x) => x.missed > 0);
        pieces.push({
          machine: machineMs, open: openMs, fault: sum(faulting.map((x) => x.ms)), replay: sum(log.filter((x) => x.replay).map((x) => x.ms)),
          read: readMs, faultRounds: faulting.length, cold: mir.engine.stats.coldRounds,
        });
      } finally {
        await m2.destroy();
      }
      if (i === 0) continue;
      await split.take();
      t = performance.now();
      await trip();
      trips.push(performance.now() - t);
      tripsGpu.push(await split.take());
    }
    rows.push({
      name: `device READ, fresh ${mib} MiB on a newly opened mirror of a new machine, fixed costs included (the first of its size in the process apart, below); n = ${reps}`,
      result: fmtMs(median(fresh)),
      baseline: `${fmtMs(median(trips))} (bare upload + copy kernel + readback)`,
      ratio: median(fresh) / median(trips),
      target: mib === 16 ? '≤ 2.0x' : '',
      split: GpuSplit.column([median(fresh), median(freshGpu)], [median(trips), median(tripsGpu)]),
    });
    // Means over the timed reads; the untimed first (it created the buffers the later ones
    // reuse) is given apart.
    const later = pieces.slice(1);
    const mean = (f: (x: (typeof pieces)[number]) => number): number => sum(later.map(f)) / later.length;
    const [first] = pieces;
    rows.push({
      name: `fresh ${mib} MiB READ on a new machine's mirror, piece by piece (means of the ${later.length} timed reads): machine + open (before the read, not in its ratio) / fault rounds (${sum(later.map((x) => x.cold))} of ${sum(later.map((x) => x.faultRounds))} cold) / replay rounds / the rest (service, uploads, output read-back, JS); the read`,
      result: `${fmtMs(mean((x) => x.machine + x.open))} (${fmtMs(mean((x) => x.machine))} + ${fmtMs(mean((x) => x.open))}) / ${fmtMs(mean((x) => x.fault))} / ${fmtMs(mean((x) => x.replay))} / `
        + `${fmtMs(mean((x) => x.read - x.fault - x.replay))}; ${fmtMs(mean((x) => x.read))} (the first: machine + open ${fmtMs(first.machine + first.open)}, read ${fmtMs(first.read)})`,
      baseline: `${fmtMs(sum(trips) / trips.length)} (bare trip, mean of the same ${trips.length})`,
      ratio: null,
      target: '',
    });
  }
  // Warm READ: the same 16 MiB read again on the mirror that just read it (nothing faults).
  const mib = 16;
  const npages = (mib * MiB) / PAGE_SIZE;
  const data = pattern(npages, 40);
  const ptr = await proc.mmap(0, npages * PAGE_SIZE, RW, ANON);
  await proc.write(ptr, data);
  await mirror.read(ptr, npages);
  const trip = bare.trip(npages, mirror.chunkPages);
  const warm = await interleaved({
    mirror: async () => {
      const r = await mirror.read(ptr, npages);
      if (r.faults !== 0) throw new Error('bench: the warm read faulted');
    },
    bare: trip,
  }, quick ? 4 : 12, 2, split);
  if (!same((await mirror.read(ptr, npages)).data, data)) throw new Error('bench: warm read returned wrong data');
  await proc.munmap(ptr, npages * PAGE_SIZE);
  rows.push({
    name: `device READ, warm ${mib} MiB (read again, nothing faults)`,
    result: fmtMs(warm.mirror),
    baseline: `${fmtMs(warm.bare)} (bare upload + copy kernel + readback)`,
    ratio: warm.mirror / warm.bare,
    target: '≤ 1.05x',
    split: GpuSplit.column([warm.mirror, warm['mirror.gpu'] ?? NaN], [warm.bare, warm['bare.gpu'] ?? NaN]),
  });
}
rows.push(...tlbRows);

console.log('ratio = cost of the result / cost of the baseline (times, or inverse rates): 1.00x = as fast as the bare GPU work.\n');
printTable(rows);
console.log(`\n(${((performance.now() - t0All) / 1000).toFixed(0)} s; load average at the end ${loadavg().map((x) => x.toFixed(1)).join(' ')})`);
if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1], JSON.stringify({ adapter: dev.gpu.adapterName, timestamps: dev.gpu.timestamps, rows }, null, 2));
split.stop();
bare.destroy();
await machine.destroy();
process.exit(0);
