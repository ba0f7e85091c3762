/**
 * npm run bench:faults — fault batching and coalescing, each figure beside a baseline
 * measured in the same run:
 *  1. streaming over one VMA: hmm_range_fault calls against ceil(pages / window), which must
 *     hold exactly, for each window (and the per-fault baseline's count);
 *  2. coalesced against per-fault servicing on 64 MiB streaming and random workloads:
 *     range-fault calls, mirror writes and service time (targets ≥ 10x, ≥ 10x, ≥ 5x);
 *  3. faults serviced per second end to end, and the replay round at 256-fault batches
 *     against a bare dispatch + copy + mapAsync over the same pages (target ≤ 1.5x).
 * Options: --size MiB (default 64), --json FILE.
 */
import { writeFileSync } from 'node:fs';
import type { GpuContext } from '../src/device/gpu.js';
import type { WindowPolicy } from '../src/driver/coalesce.js';
import { defaultGpu } from '../src/driver/dmirror-device.js';
import type { Dmirror } from '../src/driver/dmirror.js';
import { totals } from '../src/driver/records.js';
import { runOne } from '../src/experiment/runner.js';
import type { RunConfig } from '../src/experiment/types.js';
import { createMachine, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../src/index.js';
import type { Process } from '../src/mm/process.js';
import { Baselines, fmtMs, interleaved, printTable, type Row } from './gpu-baselines.js';

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
  const gpu: GpuContext = await defaultGpu();
  console.log(`mirrorlab bench:faults — adapter: ${gpu.adapterName}; node ${process.version}`);
  const rows: Row[] = [];
  const bytes = SIZE_MIB * MiB;
  const pages = bytes / PAGE_SIZE;
  const m = await createMachine({ devices: 1, gpuContext: Promise.resolve(gpu), systemPages: pages * 3 + (1 << 14), aperturePages: Math.min(32768, pages * 2) });
  const p = m.spawn();
  const mirror = (await m.devices[0].open(p)) as unknown as Dmirror;

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
    const co = await runOne(base, {});
    const pf = await runOne({ ...base, coalesce: false }, {});
    for (const r of [co, pf]) if (!r.ok || r.verify.mismatches !== 0) throw new Error(`${workload} run failed: ${r.error ?? 'wrong data'}`);
    const a = co.totals;
    const b = pf.totals;
    rows.push({ name: `${workload} ${SIZE_MIB} MiB: hmm_range_fault calls, coalesced`, result: `${a.rangeFaults}`, baseline: `${b.rangeFaults} (per fault)`, ratio: b.rangeFaults / a.rangeFaults, target: '≥ 10x fewer' });
    rows.push({ name: `${workload} ${SIZE_MIB} MiB: mirror writes, coalesced`, result: `${a.mirrorWrites}`, baseline: `${b.mirrorWrites} (per fault)`, ratio: b.mirrorWrites / a.mirrorWrites, target: '≥ 10x fewer' });
    rows.push({ name: `${workload} ${SIZE_MIB} MiB: service time, coalesced`, result: fmtMs(a.serviceMs), baseline: `${fmtMs(b.serviceMs)} (per fault)`, ratio: b.serviceMs / a.serviceMs, target: '≥ 5x less' });
    rows.push({ name: `${workload} ${SIZE_MIB} MiB: faults serviced per second (fault records fetched / service time), coalesced`, result: `${(a.fetched / (a.serviceMs / 1000) / 1000).toFixed(1)} k/s`, baseline: `${(b.fetched / (b.serviceMs / 1000) / 1000).toFixed(1)} k/s (per fault)`, ratio: null, target: '' });
    rows.push({ name: `${workload} ${SIZE_MIB} MiB: end to end (buffer pages / GPU wall time), coalesced`, result: `${(pages / (co.wallMs / 1000) / 1000).toFixed(1)} k pages/s over ${co.rounds} rounds`, baseline: `${(pages / (pf.wallMs / 1000) / 1000).toFixed(1)} k pages/s over ${pf.rounds} rounds (per fault)`, ratio: null, target: '' });
  }

  // 3. The replay round at 256-fault batches against a bare round over the same pages.
  {
    const addr = await buffer(p, bytes);
    const s = mirror.setServicer({ batchSize: 256, replay: 'batch-flush', window: 65536, coalesce: true, protocol: 'seq' });
    const before = mirror.stats.rounds;
    const t0 = performance.now();
    await mirror.read(addr, pages);
    const wall = performance.now() - t0;
    const t = totals(s.records);
    const rounds = mirror.stats.rounds - before;
    const roundMs = (wall - t.serviceMs) / rounds;
    const chunk = Math.min(pages, mirror.chunkPages);
    const bl = new Baselines(gpu.device);
    const med = await interleaved({ bare: bl.round(chunk, mirror.engine.roundReadbackBytes) }, 5);
    rows.push({
      name: `replay round at 256-fault batches (${chunk} pages a dispatch, ${rounds} rounds, ${t.batches} batches)`,
      result: fmtMs(roundMs), baseline: `${fmtMs(med.bare)} (bare dispatch + copy + mapAsync)`, ratio: roundMs / med.bare, target: '≤ 1.5x',
    });
    bl.destroy();
  }

  await mirror.close();
  await m.destroy();
  printTable(rows);
  const j = process.argv.indexOf('--json');
  if (j > 0) writeFileSync(process.argv[j + 1], JSON.stringify(rows, null, 2));
}

await main();
process.exit(0);
