/**
 * A trace as a workload on the real path (issue 9): `--workload trace:FILE.jsonl|csv`. The
 * records (src/policy/trace.ts) run in time order, split where the processor changes:
 *  - a device segment's pages go to the mirror as dmirror read/write commands over runs of
 *    consecutive pages (the most intrusive access of the segment per page), so its faults go
 *    through the servicer and the policy like any kernel's;
 *  - a CPU record is one word read or written by the process (a device page faults home).
 * Every value is checked against a shadow copy as it is read, and the whole buffer at the
 * end: the data is verified word by word. Trace addresses map onto the buffer by page
 * (traceLayout: the touched pages, holes wider than a 2 MiB block closed).
 */
import type { Dmirror } from '../driver/dmirror.js';
import { err } from '../errors.js';
import { PAGE_SIZE } from '../mm/constants.js';
import { ACCESS_READ, CPU } from '../policy/types.js';
import type { TraceRecord } from '../policy/trace.js';

export const TRACE_PREFIX = 'trace:';

/** Pages of a 2 MiB block (UVM's va_block, the tree prefetcher's and eviction's unit). */
const BLOCK_PAGES = 512;
/** The most pages a trace's buffer may take (1 GiB): a trace touching more is refused. */
export const MAX_TRACE_PAGES = 262144;

/**
 * Where a trace's pages go in the buffer. Its distinct pages keep their order and their
 * offsets within a 2 MiB block (prefetch and eviction work per block); a hole between two
 * touched pages wider than a block closes to less than one block. So the buffer, and with it
 * the run's cost, follows the records (at most a block a distinct page), not the address span
 * (two records 64 GiB apart are two pages a block apart, not 16 M pages).
 */
export interface TraceLayout {
  pages: number;
  /** Buffer page of a trace page. */
  index: ReadonlyMap<number, number>;
}

export function traceLayout(recs: readonly TraceRecord[]): TraceLayout {
  const distinct = [...new Set(recs.map((r) => Math.floor(r.addr / PAGE_SIZE)))].sort((a, b) => a - b);
  const index = new Map<number, number>();
  let prev = -1;
  let at = -1;
  for (const p of distinct) {
    if (at < 0) at = p % BLOCK_PAGES;
    else if (p - prev <= BLOCK_PAGES) at += p - prev;
    else at += 1 + ((((p - at - 1) % BLOCK_PAGES) + BLOCK_PAGES) % BLOCK_PAGES); // next slot with p's block offset
    index.set(p, at);
    prev = p;
  }
  const pages = at + 1;
  if (pages > MAX_TRACE_PAGES) {
    throw err('EINVAL', `trace touches ${distinct.length} pages needing a ${pages}-page buffer once its holes are closed; at most ${MAX_TRACE_PAGES} (${MAX_TRACE_PAGES / 256} MiB)`);
  }
  return { pages, index };
}

/** Pages of the buffer a trace runs over (traceLayout). */
export function tracePages(recs: readonly TraceRecord[]): number {
  return traceLayout(recs).pages;
}

function value(page: number, word: number, seq: number): number {
  return (Math.imul(page + 1, 0x9e3779b1) ^ Math.imul(word + 7, 0x85ebca6b) ^ Math.imul(seq, 0xc2b2ae35)) >>> 0;
}

export interface TraceRunResult {
  checked: number;
  mismatches: number;
  firstMismatch: string | null;
  commands: number;
  cpuAccesses: number;
}

/** Runs `recs` over the buffer [start, + npages pages) of the mirror's process. */
export async function runTrace(mirror: Dmirror, start: number, npages: number, recs: readonly TraceRecord[],
  beforeVerify?: () => Promise<void>): Promise<TraceRunResult> {
  const proc = mirror.proc;
  const words = npages * (PAGE_SIZE / 4);
  const shadow = new Uint32Array(words);
  for (let w = 0; w < words; w++) shadow[w] = value(Math.floor(w / 1024), w % 1024, 0);
  for (let off = 0; off < words; off += 262144) {
    const n = Math.min(262144, words - off);
    await proc.write(start + off * 4, new Uint8Array(shadow.buffer, off * 4, n * 4));
  }
  const layout = traceLayout(recs);
  if (layout.pages > npages) throw err('EINVAL', `trace needs ${layout.pages} pages, the buffer has ${npages}`);
  const pageOf = (r: TraceRecord): number => layout.index.get(Math.floor(r.addr / PAGE_SIZE))!;
  const res: TraceRunResult = { checked: 0, mismatches: 0, firstMismatch: null, commands: 0, cpuAccesses: 0 };
  const check = (w: number, got: number, where: string): void => {
    res.checked++;
    if (got !== shadow[w]) {
      res.mismatches++;
      res.firstMismatch ??= `${where}: word ${w} is 0x${got.toString(16)}, want 0x${shadow[w].toString(16)}`;
    }
  };
  const order = recs.map((r, i) => ({ r, i })).sort((a, b) => a.r.time - b.r.time || a.i - b.i).map((x) => x.r);
  let seq = 0;
  for (let i = 0; i < order.length;) {
    const r = order[i];
    if (r.proc === CPU) {
      seq++;
      const p = pageOf(r);
      const wi = (r.addr % PAGE_SIZE) >> 2;
      const w = p * 1024 + wi;
      const addr = start + w * 4;
      if (r.access === ACCESS_READ) {
        check(w, new Uint32Array((await proc.read(addr, 4)).slice().buffer)[0], `CPU read of page ${p}`);
      } else {
        shadow[w] = value(p, wi, seq);
        await proc.write(addr, new Uint8Array(new Uint32Array([shadow[w]]).buffer));
      }
      res.cpuAccesses++;
      i++;
      continue;
    }
    if (r.proc !== 0) throw err('EINVAL', `trace record for device ${r.proc}: the experiment mirrors one device (gpu0)`);
    // A device segment: the pages it touches, each with its most intrusive access.
    const acc = new Map<number, number>();
    let j = i;
    for (; j < order.length && order[j].proc === r.proc; j++) {
      const p = pageOf(order[j]);
      acc.set(p, Math.max(acc.get(p) ?? 0, order[j].access));
    }
    i = j;
    const pages = [...acc.keys()].sort((a, b) => a - b);
    for (let k = 0; k < pages.length;) {
      let e = k + 1;
      const write = (acc.get(pages[k]) ?? 0) > ACCESS_READ;
      while (e < pages.length && pages[e] === pages[e - 1] + 1 && ((acc.get(pages[e]) ?? 0) > ACCESS_READ) === write) e++;
      const first = pages[k];
      const n = e - k;
      const addr = start + first * PAGE_SIZE;
      res.commands++;
      if (write) {
        seq++;
        const data = new Uint32Array(n * 1024);
        for (let q = 0; q < n; q++) {
          for (let wi = 0; wi < 1024; wi++) data[q * 1024 + wi] = shadow[(first + q) * 1024 + wi] = value(first + q, wi, seq);
        }
        await mirror.write(addr, new Uint8Array(data.buffer));
      } else {
        const out = await mirror.read(addr, n);
        const got = new Uint32Array(out.data.slice().buffer);
        for (let x = 0; x < n * 1024; x++) check(first * 1024 + x, got[x], `device read at page ${first}`);
      }
      k = e;
    }
  }
  await beforeVerify?.();
  for (let off = 0; off < words; off += 262144) {
    const n = Math.min(262144, words - off);
    const got = new Uint32Array((await proc.read(start + off * 4, n * 4)).slice().buffer);
    for (let x = 0; x < n; x++) check(off + x, got[x], 'final read-back');
  }
  return res;
}
