/**
 * npm run bench:faults — fault batching and coalescing, each figure beside a baseline
 * measured in the same run:
 *  1. streaming over one VMA: hmm_range_fault calls against ceil(pages / window), which must
 *     hold exactly, for each window (and the per-fault baseline's count);
 *  2. coalesced against per-fault servicing on 64 MiB streaming and random workloads:
 *     range-fault calls, mirror writes and service time (targets ≥ 10x, ≥ 10x, ≥ 5x);
 *  3. faults serviced per second end to end, and the replay round at 256-fault batches
 *     against a bare dispatch + copy + mapAsync over the same pages (target ≤ 1.2x);
 *  4. scale: the cost per serviced fault of the same pages in a 1 MiB and a 64 GiB sparse
 *     VMA (target ≤ 1.2x apart).
 * Options: --size MiB (default 64), --json FILE, --adapter auto|opengles|vulkan (bench/gpu-baselines.ts:
 * 'vulkan' has timestamp queries, and the timed rows then split GPU time from host time).
 */
import { loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import type { GpuContext } from '../src/device/gpu.js';
import type { WindowPolicy } from '../src/driver/coalesce.js';
import { defaultGpu } from '../src/driver/dmirror-device.js';
import type { Dmirror } from '../src/driver/dmirror.js';
import { totals } from '../src/driver/records.js';
import { runOne } from '../src/experiment/runner.js';
import type { RunConfig } from '../src/experiment/types.js';
import { createMachine, MADV_DONTNEED, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../src/index.js';
import type { Process } from '../src/mm/process.js';
import { adapterOption, Baselines, fmtMs, GpuSplit, interleaved, median, printTable, type Row } from './gpu-baselines.js';

const MiB = 1024 * 1024;
const argSize = process.argv.indexOf('--size');
const SIZE_MIB = argSize > 0 ? Number(process.argv[argSize + 1]) : 64;

async function buffer(p: Process, bytes: number): Promise<number> {
  const raw = await p.mmap(0, bytes + 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const addr = Math.ceil(raw / (2 * MiB)) * 2 * MiB;
  await p.munmap(raw, bytes + 2 * MiB);
  await p.mmap(addr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  // Populate through the CPU: every page its own frame, as a real working set.
  const chunk = new Uint8Array(4 * MiB);
  for (let i = 0; i < chunk.length; i += 4) chunk[i] = (i >> 12) & 0xff;
  for (let off = 0; off < bytes; off += chunk.length) await p.write(addr + off, chunk.subarray(0, Math.min(chunk.length, bytes - off)));
  return addr;
}

async function main(): Promise<void> {
  adapterOption();
  const gpu: GpuContext = await defaultGpu();
  const split = new GpuSplit(gpu.device);
  console.log(`mirrorlab bench:faults — adapter: ${gpu.adapterName} (timestamp-query: ${gpu.timestamps}); node ${process.version}; load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const rows: Row[] = [];
  const bytes = SIZE_MIB * MiB;
  const pages = bytes / PAGE_SIZE;
  const m = await createMachine({ devices: 1, gpuContext: Promise.resolve(gpu), systemPages: pages * 3 + (1 << 14), aperturePages: Math.min(32768, pages * 2) });
  const p = m.spawn();
  const mirror = await m.devices[0].open(p);

  // 1. Streaming device READ over one VMA, batches of 256, UVM's batch-flush replay.
  for (const window of [4096, 65536, 2097152] as WindowPolicy[]) {
    const addr = await buffer(p, bytes);
    const s = mirror.setServicer({ batchSize: 256, replay: 'batch-flush', window, coalesce: true, protocol: 'seq', restOfRangeOnOverflow: false });
    await mirror.read(addr, pages);
    const t = totals(s.records);
    const want = Math.ceil(bytes / (window as number));
    rows.push({
      name: `streaming ${SIZE_MIB} MiB, window ${(window as number) / 1024} KiB: hmm_range_fault calls`,
      result: `${t.rangeFaults}`, baseline: `ceil(pages / window) = ${want}`, ratio: t.rangeFaults / want,
      target: t.rangeFaults === want ? 'exact ✓' : 'exact ✗',
    });
    await p.munmap(addr, bytes);
  }

  // 2. Coalesced against per-fault, streaming and random.
  for (const workload of process.argv.includes('--no-workloads') ? [] : ['stream', 'random'] as const) {
    const base: RunConfig = {
      preset: 'bench', workload, sizeMiB: SIZE_MIB, writeFraction: 0, window: 2097152, batchSize: 256, replay: 'batch-flush',
      protocol: 'seq', coalesce: true, stormRate: 0, seed: 1,
    };
    await split.take();
    const co = await runOne(base, {});
    const coGpu = await split.take();
    const pf = await runOne({ ...base, coalesce: false }, {});
    const pfGpu = await split.take();
    for (const r of [co, pf]) if (!r.ok || r.verify.mismatches !== 0) throw new Error(`${workload} run failed: ${r.error ?? 'wrong data'}`);
    const a = co.totals;
    const b = pf.totals;
    rows.push({ name: `${workload} ${SIZE_MIB} MiB: hmm_range_fault calls, coalesced`, result: `${a.rangeFaults}`, baseline: `${b.rangeFaults} (per fault)`, ratio: b.rangeFaults / a.rangeFaults, target: '≥ 10x fewer' });
    rows.push({ name: `${workload} ${SIZE_MIB} MiB: mirror writes, coalesced`, result: `${a.mirrorWrites}`, baseline: `${b.mirrorWrites} (per fault)`, ratio: b.mirrorWrites / a.mirrorWrites, target: '≥ 10x fewer' });
    rows.push({ name: `${workload} ${SIZE_MIB} MiB: service time, coalesced`, result: fmtMs(a.serviceMs), baseline: `${fmtMs(b.serviceMs)} (per fault)`, ratio: b.serviceMs / a.serviceMs, target: '≥ 5x less' });
    rows.push({ name: `${workload} ${SIZE_MIB} MiB: faults serviced per second (fault records fetched / service time), coalesced`, result: `${(a.fetched / (a.serviceMs / 1000) / 1000).toFixed(1)} k/s`, baseline: `${(b.fetched / (b.serviceMs / 1000) / 1000).toFixed(1)} k/s (per fault)`, ratio: null, target: '' });
    rows.push({ name: `${workload} ${SIZE_MIB} MiB: end to end (buffer pages / GPU wall time), coalesced`, result: `${(pages / (co.wallMs / 1000) / 1000).toFixed(1)} k pages/s over ${co.rounds} rounds`, baseline: `${(pages / (pf.wallMs / 1000) / 1000).toFixed(1)} k pages/s over ${pf.rounds} rounds (per fault)`, ratio: null, target: '', split: GpuSplit.column([co.wallMs, coGpu], [pf.wallMs, pfGpu]) });
  }

  // 3. The replay round at 256-fault batches against a bare round over the same pages.
  {
    const addr = await buffer(p, bytes);
    const s = mirror.setServicer({ batchSize: 256, replay: 'batch-flush', window: 65536, coalesce: true, protocol: 'seq' });
    // Every round timed inside MirrorEngine.runRound from an idle queue (the service's
    // queued uploads waited for first, untimed), as bench:mirror times its rounds. (The
    // figure this row printed before, (wall − service time) / rounds, charged each round
    // with a share of the uploads and read-back, and varied with the round count.)
    const engine = mirror.engine;
    const runRound = engine.runRound.bind(engine);
    const roundMs: number[] = [];
    engine.runRound = async (cmd) => {
      await gpu.device.queue.onSubmittedWorkDone();
      const t0 = performance.now();
      const r = await runRound(cmd);
      roundMs.push(performance.now() - t0);
      return r;
    };
    const before = mirror.stats.rounds;
    await split.take();
    await mirror.read(addr, pages);
    engine.runRound = runRound;
    const passes = await split.takePasses(); // one a round, in order
    const t = totals(s.records);
    const rounds = mirror.stats.rounds - before;
    const chunk = Math.min(pages, mirror.chunkPages);
    const bl = new Baselines(gpu.device);
    const med = await interleaved({ bare: bl.round(chunk, mirror.engine.roundReadbackBytes) }, 5, 2, split);
    const round = median(roundMs);
    const roundGpu = passes !== null && passes.length === roundMs.length ? median(passes) : NaN;
    rows.push({
      name: `replay round at 256-fault batches (${chunk} pages a dispatch, ${rounds} rounds, ${t.batches} batches; median round)`,
      result: fmtMs(round), baseline: `${fmtMs(med.bare)} (bare dispatch + copy + mapAsync)`, ratio: round / med.bare, target: '≤ 1.2x',
      split: GpuSplit.column([round, roundGpu], [med.bare, med['bare.gpu'] ?? NaN]),
    });
    bl.destroy();
    await p.munmap(addr, bytes);
  }

  // 4. Scale: the cost of a serviced fault must not grow with the address space. The same
  // 256 pages (the first MiB of the VMA, written by the CPU, so each is its own frame) are
  // read by the device fresh each time — zapped by MADV_DONTNEED and written again — in a
  // 1 MiB VMA and in a 64 GiB one (sparse: nothing else of it touched).
  {
    mirror.setServicer({});
    const touched = 256;
    const data = new Uint8Array(touched * PAGE_SIZE).fill(7);
    const perFault: Record<string, number> = {};
    const spaces = [['1 MiB', MiB], ['64 GiB', 64 * 1024 * MiB]] as const;
    const addrs = new Map<string, number>();
    for (const [name, len] of spaces) addrs.set(name, await p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS));
    const samples = new Map<string, number[]>(spaces.map(([n]) => [n, []]));
    const gpuSamples = new Map<string, number[]>(spaces.map(([n]) => [n, []]));
    const one = async (name: string): Promise<void> => {
      const a = addrs.get(name)!;
      await p.madvise(a, touched * PAGE_SIZE, MADV_DONTNEED);
      await p.write(a, data);
      await split.take();
      const t0 = performance.now();
      const r = await mirror.read(a, touched);
      samples.get(name)!.push((performance.now() - t0) / touched);
      gpuSamples.get(name)!.push((await split.take()) / touched);
      if (r.data[0] !== 7 || r.data[r.data.length - 1] !== 7) throw new Error('scale: wrong data');
    };
    for (let i = 0; i < 3; i++) for (const [n] of spaces) await one(n);
    for (const [n] of spaces) { samples.get(n)!.length = 0; gpuSamples.get(n)!.length = 0; }
    for (let i = 0; i < 30; i++) for (const [n] of (i % 2 ? [...spaces].reverse() : spaces)) await one(n);
    for (const [n] of spaces) perFault[n] = median(samples.get(n)!);
    rows.push({
      name: `scale: cost per serviced fault, ${touched} pages read fresh in a 64 GiB sparse VMA vs the same pages in a 1 MiB VMA`,
      result: `${(perFault['64 GiB'] * 1000).toFixed(1)} µs/fault`, baseline: `${(perFault['1 MiB'] * 1000).toFixed(1)} µs/fault (1 MiB VMA)`,
      ratio: perFault['64 GiB'] / perFault['1 MiB'], target: '≤ 1.2x',
      split: ((): string => {
        const us = (n: string): string => {
          const g = median(gpuSamples.get(n)!) * 1000;
          return Number.isNaN(g) ? 'n/a' : `GPU ${g.toFixed(1)} + host ${(perFault[n] * 1000 - g).toFixed(1)} µs/fault`;
        };
        return us('64 GiB') === 'n/a' ? 'n/a (no timestamp-query)' : `${us('64 GiB')}; 1 MiB VMA ${us('1 MiB')}`;
      })(),
    });
    for (const [n, len] of spaces) await p.munmap(addrs.get(n)!, len);
  }

  await mirror.close();
  await m.destroy();
  printTable(rows);
  const j = process.argv.indexOf('--json');
  if (j > 0) writeFileSync(process.argv[j + 1], JSON.stringify(rows, null, 2));
}

await main();
process.exit(0);
