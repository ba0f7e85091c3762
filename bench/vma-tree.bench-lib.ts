/**
 * VmaTree micro-benchmark (environment-neutral: no node: imports, runs in node or a browser).
 *   npx tsx -e "import('./bench/vma-tree.bench-lib.ts').then(async (m) => console.log(m.benchVmaTree()))"
 * Compares find_vma on the tree against the naive linear scan (linearFindVma).
 */
import { VmaTree, linearFindVma, type Span } from '../src/mm/vma-tree.js';
import { mulberry32 } from '../src/sched/seeded.js';

const P = 4096;
const M2 = 2 * 1024 * 1024;

class BenchVma implements Span {
  constructor(public start: number, public end: number, public flags = 0) {}
}

export interface VmaTreeBenchResult {
  spans: number;
  insertShuffledMs: number;
  insertAscendingMs: number;
  findNs: number;
  lookupNs: number;
  linearFindNs: number;
  gapTopDownPmdNs: number;
  gapBottomUpNs: number;
  removeAllMs: number;
  checksum: number;
}


export function benchVmaTree(opts: { spans?: number; lookups?: number; linearLookups?: number; seed?: number } = {}): VmaTreeBenchResult {
  const n = opts.spans ?? 100_000;
  const lookups = opts.lookups ?? 2_000_000;
  const linearLookups = opts.linearLookups ?? 2_000;
  const rnd = mulberry32(opts.seed ?? 1);
  const int = (k: number): number => Math.floor(rnd() * k);

  // A sparse layout: spans of 1..64 pages separated by holes of 0..64 pages, from 1 GiB up.
  const spans: BenchVma[] = [];
  let addr = 2 ** 30;
  for (let i = 0; i < n; i++) {
    addr += int(65) * P;
    const len = (1 + int(64)) * P;
    spans.push(new BenchVma(addr, addr + len));
    addr += len;
  }
  const top = addr;
  const shuffled = spans.slice();
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = int(i + 1);
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }

  // Warm the insert path on a throwaway tree, then time.
  { const w = new VmaTree<BenchVma>(); for (let i = 0; i < 20_000; i++) w.insert(new BenchVma(i * 2 * P, i * 2 * P + P)); }
  let t0 = performance.now();
  const asc = new VmaTree<BenchVma>();
  for (let i = 0; i < n; i++) asc.insert(spans[i]);
  const insertAscendingMs = performance.now() - t0;

  t0 = performance.now();
  const tree = new VmaTree<BenchVma>();
  for (let i = 0; i < n; i++) tree.insert(shuffled[i]);
  const insertShuffledMs = performance.now() - t0;

  const addrs = new Float64Array(1 << 16);
  const base = spans[0].start;
  for (let i = 0; i < addrs.length; i++) addrs[i] = base + Math.floor(rnd() * (top - base));
  const mask = addrs.length - 1;
  let checksum = 0;

  const timeFind = (count: number): number => {
    const s = performance.now();
    for (let i = 0; i < count; i++) {
      const v = tree.find(addrs[i & mask]);
      if (v !== undefined) checksum += v.flags + 1;
    }
    return ((performance.now() - s) * 1e6) / count;
  };
  timeFind(200_000); // warm-up
  const findNs = timeFind(lookups);

  let s = performance.now();
  for (let i = 0; i < lookups; i++) {
    const v = tree.lookup(addrs[i & mask]);
    if (v !== undefined) checksum += 1;
  }
  const lookupNs = ((performance.now() - s) * 1e6) / lookups;

  for (let i = 0; i < 200; i++) checksum += linearFindVma(spans, addrs[i & mask])?.flags ?? 0;
  s = performance.now();
  for (let i = 0; i < linearLookups; i++) {
    const v = linearFindVma(spans, addrs[i & mask]);
    if (v !== undefined) checksum += v.flags + 1;
  }
  const linearFindNs = ((performance.now() - s) * 1e6) / linearLookups;

  const gapRuns = 200_000;
  s = performance.now();
  for (let i = 0; i < gapRuns; i++) {
    const hi = addrs[i & mask] - (addrs[i & mask] % P);
    checksum += tree.findGapTopDown(M2, 0, hi, M2) ?? 0;
  }
  const gapTopDownPmdNs = ((performance.now() - s) * 1e6) / gapRuns;
  s = performance.now();
  for (let i = 0; i < gapRuns; i++) {
    checksum += tree.findGapBottomUp(((i & 31) + 1) * P, addrs[i & mask], 2 ** 47) ?? 0;
  }
  const gapBottomUpNs = ((performance.now() - s) * 1e6) / gapRuns;

  t0 = performance.now();
  for (let i = 0; i < n; i++) tree.remove(shuffled[i]);
  const removeAllMs = performance.now() - t0;

  return { spans: n, insertShuffledMs, insertAscendingMs, findNs, lookupNs, linearFindNs, gapTopDownPmdNs, gapBottomUpNs, removeAllMs, checksum };
}
