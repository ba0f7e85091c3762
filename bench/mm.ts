/**
 * npm run bench:mm — the CPU-side mm and HMM core, each figure beside a naive baseline
 * measured in the same run:
 *   find_vma among 100,000 VMAs            vs a linear scan of the VMA list
 *   hmm_range_fault over 1 M present pages  vs a walk from the root for every page
 *   hmm_range_fault over 1 M absent pages   vs one hmm_range_fault call (root walk) per page
 *   fork of a populated 1 GiB address space vs copying the PTEs with a root walk per page
 * Prints a table and, with --json FILE, writes the figures.
 */
import { writeFileSync } from 'node:fs';
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID } from '../src/hmm/pfn.js';
import { hmmRange, hmmRangeFaultRetry, type HmmRange } from '../src/hmm/range-fault.js';
import { createMachine, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../src/index.js';
import type { Machine } from '../src/mm/machine.js';
import type { MmStruct } from '../src/mm/mm.js';
import type { MmuIntervalNotifier } from '../src/mm/notifier.js';
import { isPresent, pmdIndex, pteIndex, PTE_WRITE } from '../src/mm/page-table.js';
import type { Process } from '../src/mm/process.js';
import { linearFindVma } from '../src/mm/vma-tree.js';
import { mulberry32 } from '../src/sched/seeded.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const GiB = 1024 ** 3;

interface Row { name: string; value: number; unit: string; baseline: number; baselineName: string; target: string; }
const rows: Row[] = [];


function best(runs: number, fn: () => number): number {
  let b = Infinity;
  for (let i = 0; i < runs; i++) b = Math.min(b, fn());
  return b;
}

async function bestAsync(runs: number, fn: () => Promise<number>): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < runs; i++) b = Math.min(b, await fn());
  return b;
}

async function subscribe(p: Process): Promise<MmuIntervalNotifier> {
  return p.mm.notifiers.insertInterval(0, 2 ** 47, { invalidate: (s, _r, seq) => { s.setSeq(seq); return true; } });
}

async function rangeFault(p: Process, r: HmmRange): Promise<void> {
  await hmmRangeFaultRetry(p.mm, r, { timeoutMs: Infinity });
}

async function benchFindVma(m: Machine): Promise<void> {
  const p = m.spawn();
  const n = 100_000;
  const base = 0x100000000;
  // Alternate protections so neighbours never merge: 100,000 distinct VMAs with gaps.
  for (let i = 0; i < n; i++) {
    await p.mmap(base + i * 3 * PAGE_SIZE, 2 * PAGE_SIZE, i % 2 ? PROT_READ : RW, ANON | MAP_FIXED);
  }
  if (p.mm.vmas.size !== n) throw new Error(`expected ${n} VMAs, got ${p.mm.vmas.size}`);
  const list = [...p.mm.vmas];
  const rnd = mulberry32(7);
  const probes = new Float64Array(1 << 16);
  for (let i = 0; i < probes.length; i++) probes[i] = base + Math.floor(rnd() * (n * 3 - 1)) * PAGE_SIZE;
  let sink = 0;
  const lookups = 1_000_000;
  const tree = best(3, () => {
    const t0 = performance.now();
    for (let i = 0; i < lookups; i++) sink += p.mm.vmas.find(probes[i & 0xffff])!.start;
    return ((performance.now() - t0) * 1e6) / lookups;
  });
  const linLookups = 2000;
  const linear = best(2, () => {
    const t0 = performance.now();
    for (let i = 0; i < linLookups; i++) sink += linearFindVma(list, probes[i])!.start;
    return ((performance.now() - t0) * 1e6) / linLookups;
  });
  if (sink === 0) throw new Error('unreachable');
  rows.push({ name: 'find_vma, 100,000 VMAs', value: tree, unit: 'ns/lookup', baseline: linear, baselineName: 'linear scan', target: '≤ 1000 ns' });
  await p.exit();
}

/** The naive walker: from the root for every page, no run of entries read at once. */
function naiveSnapshot(mm: MmStruct, start: number, npages: number, pfns: Uint32Array, flags: Uint8Array): void {
  for (let i = 0; i < npages; i++) {
    const a = start + i * PAGE_SIZE;
    const vma = mm.vmas.find(a);
    if (vma === undefined || vma.start > a) { flags[i] = 0x20; continue; }
    const pmd = mm.pgtable.pmd(a, false);
    const t = pmd === null ? null : pmd.tables[pmdIndex(a)];
    const f = t === null ? 0 : t.flags[pteIndex(a)];
    if (t === null || !isPresent(f)) { pfns[i] = 0; flags[i] = 0; continue; }
    pfns[i] = t.pfn[pteIndex(a)];
    flags[i] = HMM_PFN_VALID | ((f & PTE_WRITE) !== 0 ? 0x40 : 0);
  }
}

async function benchRangeFault(m: Machine): Promise<void> {
  const npages = 1 << 20;
  const p = m.spawn();
  const sub = await subscribe(p);
  const addr = await p.mmap(0, npages * PAGE_SIZE, PROT_READ, ANON);

  // Not present: every page faulted (read faults map the zero page: no RAM used).
  const absent = hmmRange({ notifier: sub, start: addr, end: addr + npages * PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT });
  let t0 = performance.now();
  await rangeFault(p, absent);
  const absentRate = npages / ((performance.now() - t0) / 1000);
  for (let i = 0; i < npages; i += 4099) if (absent.hmmPfns.flags[i] !== HMM_PFN_VALID) throw new Error('not faulted');

  // Baseline for absent pages: one hmm_range_fault a page, each walking from the root.
  const q = m.spawn();
  const qsub = await subscribe(q);
  const bpages = 1 << 16;
  const qaddr = await q.mmap(0, bpages * PAGE_SIZE, PROT_READ, ANON);
  t0 = performance.now();
  for (let i = 0; i < bpages; i++) {
    const one = hmmRange({ notifier: qsub, start: qaddr + i * PAGE_SIZE, end: qaddr + (i + 1) * PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT });
    await rangeFault(q, one);
  }
  const absentBase = bpages / ((performance.now() - t0) / 1000);
  await q.exit();
  rows.push({ name: 'hmm_range_fault, 1 M absent pages', value: absentRate / 1e6, unit: 'M pages/s', baseline: absentBase / 1e6, baselineName: 'a call per page', target: '≥ 8 M pages/s' });

  // Present: the same range again, nothing left to fault.
  const present = hmmRange({ notifier: sub, start: addr, end: addr + npages * PAGE_SIZE, defaultFlags: HMM_PFN_REQ_FAULT });
  const presentS = await bestAsync(3, async () => {
    const t = performance.now();
    await rangeFault(p, present);
    return (performance.now() - t) / 1000;
  });
  const naive = { pfns: new Uint32Array(npages), flags: new Uint8Array(npages) };
  const naiveS = best(2, () => {
    const t = performance.now();
    naiveSnapshot(p.mm, addr, npages, naive.pfns, naive.flags);
    return (performance.now() - t) / 1000;
  });
  for (let i = 0; i < npages; i += 997) {
    if (naive.pfns[i] !== present.hmmPfns.pfns[i] || naive.flags[i] !== present.hmmPfns.flags[i]) throw new Error(`walkers disagree at ${i}`);
  }
  rows.push({ name: 'hmm_range_fault, 1 M present pages', value: npages / presentS / 1e6, unit: 'M pages/s', baseline: npages / naiveS / 1e6, baselineName: 'root walk per page', target: '≥ 5 M pages/s' });
  await p.exit();
}

/** copy_page_range done naively: a walk from the root in both mms for every page. */
function naiveCopy(parent: MmStruct, child: MmStruct, start: number, end: number): void {
  const core = parent.core;
  for (let a = start; a < end; a += PAGE_SIZE) {
    const pmd = parent.pgtable.pmd(a, false);
    const st = pmd === null ? null : pmd.tables[pmdIndex(a)];
    if (st === null) continue;
    const j = pteIndex(a);
    const f = st.flags[j];
    if (f === 0) continue;
    core.getPage(st.pfn[j]);
    st.flags[j] = f & ~PTE_WRITE;
    child.pgtable.pteTable(a, true)!.set(j, st.pfn[j], f & ~PTE_WRITE);
  }
}

async function benchFork(m: Machine): Promise<void> {
  const p = m.spawn();
  const sub = await subscribe(p);
  const addr = await p.mmap(0, GiB, RW, ANON);
  const npages = GiB / PAGE_SIZE;
  // Populate with write faults: 262,144 distinct frames (1 GiB of RAM).
  await rangeFault(p, hmmRange({ notifier: sub, start: addr, end: addr + GiB, defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE }));
  const forkMs = await bestAsync(3, async () => {
    const t = performance.now();
    const c = await p.fork();
    const ms = performance.now() - t;
    await c.exit();
    return ms;
  });
  const naiveMs = await bestAsync(2, async () => {
    const c = m.spawn();
    await c.mmap(addr, GiB, RW, ANON | MAP_FIXED);
    const t = performance.now();
    naiveCopy(p.mm, c.mm, addr, addr + GiB);
    const ms = performance.now() - t;
    await c.exit();
    return ms;
  });
  rows.push({ name: `fork, 1 GiB populated (${npages} pages)`, value: forkMs, unit: 'ms', baseline: naiveMs, baselineName: 'root walk per page', target: '' });
  await p.exit();
}

async function main(): Promise<void> {
  const jsonAt = process.argv.indexOf('--json');
  const m = await createMachine({ systemPages: (1 << 18) + (1 << 16) });
  await benchFindVma(m);
  await benchRangeFault(m);
  await benchFork(m);
  await m.destroy();

  console.log(`mirrorlab bench:mm — node ${process.version}, ${process.arch}`);
  console.log('| measurement | result | baseline (same run) | ratio | target |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    const lowerIsBetter = r.unit.startsWith('ns') || r.unit === 'ms';
    const ratio = lowerIsBetter ? r.baseline / r.value : r.value / r.baseline;
    console.log(`| ${r.name} | ${r.value.toFixed(2)} ${r.unit} | ${r.baseline.toFixed(2)} ${r.unit} (${r.baselineName}) | ${ratio.toFixed(1)}x | ${r.target} |`);
  }
  if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1], JSON.stringify(rows, null, 2));
}

await main();
