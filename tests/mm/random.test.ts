/**
 * Seeded random workloads against a page-level model: private anon (incl. THP), shared anon,
 * mprotect, DONTNEED, PAGEOUT, fork, exit. After every step the frame accounting is
 * recomputed from scratch; every read is checked against the model.
 */
import { describe, expect } from 'vitest';
import {
  MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE,
  SegmentationFault, type Machine, type Process,
} from '../../src/index.js';
import { checkFrameAccounting } from '../../src/mm/accounting.js';
import { randomFloats } from '../support/prng.js';
import { HUGE, PG } from './helpers.js';
import { machineTest } from '../support/machine.js';

type Cell = { prot: number; shared: { vals: Map<number, number> } | null; idx: number; val: number };
type Model = Map<number, Cell>; // page address → cell

function valueOf(c: Cell): number {
  return c.shared === null ? c.val : c.shared.vals.get(c.idx) ?? 0;
}

async function run(m: Machine, seed: number, steps: number): Promise<void> {
  const r = randomFloats(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const procs: { p: Process; model: Model }[] = [{ p: m.spawn(), model: new Map() }];
  // Two tmpfs files (16 pages each) with their model: MAP_SHARED mappings and pread/pwrite
  // must all see the same bytes.
  const files = [0, 1].map(() => ({ f: m.createFile(16 * PG), vals: new Map<number, number>() }));
  for (let step = 0; step < steps; step++) {
    if (procs.length === 0) procs.push({ p: m.spawn(), model: new Map() });
    const cur = pick(procs);
    const { p, model } = cur;
    const pages = [...model.keys()];
    const op = r();
    const what = `seed ${seed} step ${step}`;
    if (op < 0.04) {
      const file = pick(files);
      const idx = Math.floor(r() * 16);
      if (r() < 0.5) {
        const v = 1 + Math.floor(r() * 254);
        await file.f.pwrite(new Uint8Array(PG).fill(v), idx * PG);
        file.vals.set(idx, v);
      } else {
        const b = await file.f.pread(PG, idx * PG);
        const want = file.vals.get(idx) ?? 0;
        expect(b[0] === want && b[PG - 1] === want, `${what}: file page ${idx} = ${b[0]}, want ${want}`).toBe(true);
      }
    } else if (op < 0.07) {
      const file = pick(files);
      const off = Math.floor(r() * 12);
      const n = 1 + Math.floor(r() * (16 - off));
      const a = await p.mmap(0, n * PG, PROT_READ | PROT_WRITE, MAP_SHARED, file.f, off * PG);
      for (let i = 0; i < n; i++) model.set(a + i * PG, { prot: 3, shared: file, idx: off + i, val: 0 });
    } else if (op < 0.15 || pages.length === 0) {
      const shared = r() < 0.3;
      const huge = !shared && r() < 0.2;
      const len = huge ? HUGE : (1 + Math.floor(r() * 12)) * PG;
      const a = await p.mmap(0, len, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS);
      if (huge) await p.madvise(a, len, MADV_HUGEPAGE);
      const obj = shared ? { vals: new Map<number, number>() } : null;
      for (let i = 0; i < len / PG; i++) model.set(a + i * PG, { prot: 3, shared: obj, idx: i, val: 0 });
    } else if (op < 0.45) {
      const a = pick(pages);
      const span = model.has(a + PG) && r() < 0.3 ? 2 : 1;
      const v = 1 + Math.floor(r() * 254);
      const ok = [0, span - 1].every((i) => (model.get(a + i * PG)!.prot & PROT_WRITE) !== 0);
      const res = await p.write(a, new Uint8Array(span * PG).fill(v)).then(() => null, (e: unknown) => e);
      if (ok) {
        expect(res, what).toBeNull();
        for (let i = 0; i < span; i++) {
          const c = model.get(a + i * PG)!;
          if (c.shared) c.shared.vals.set(c.idx, v);
          else c.val = v;
        }
      } else {
        expect(res, what).toBeInstanceOf(SegmentationFault);
      }
    } else if (op < 0.65) {
      const a = pick(pages);
      const c = model.get(a)!;
      const res = await p.read(a, PG).then((b) => b, (e: unknown) => e);
      if (c.prot === 0) {
        expect(res, what).toBeInstanceOf(SegmentationFault);
      } else {
        const b = res as Uint8Array;
        const want = valueOf(c);
        expect(b[0] === want && b[PG - 1] === want && b[PG >> 1] === want, `${what}: page 0x${a.toString(16)} = ${b[0]}, want ${want}`).toBe(true);
      }
    } else if (op < 0.72) {
      const a = pick(pages);
      const n = 1 + Math.floor(r() * 4);
      await p.munmap(a, n * PG);
      for (let i = 0; i < n; i++) model.delete(a + i * PG);
    } else if (op < 0.8) {
      const a = pick(pages);
      const n = 1 + Math.floor(r() * 3);
      const prot = pick([0, PROT_READ, PROT_READ | PROT_WRITE]);
      const all = Array.from({ length: n }, (_, i) => model.has(a + i * PG)).every(Boolean);
      const res = await p.mprotect(a, n * PG, prot).then(() => null, (e: unknown) => e);
      if (all) {
        expect(res, what).toBeNull();
        for (let i = 0; i < n; i++) model.get(a + i * PG)!.prot = prot;
      } else {
        expect(res, what).toBeErrno('ENOMEM');
      }
    } else if (op < 0.87) {
      const a = pick(pages);
      const n = 1 + Math.floor(r() * 6);
      const advice = r() < 0.5 ? MADV_DONTNEED : MADV_PAGEOUT;
      const res = await p.madvise(a, n * PG, advice).then(() => null, (e: unknown) => e);
      if (res !== null) expect(res, what).toBeErrno('ENOMEM');
      if (advice === MADV_DONTNEED) {
        for (let i = 0; i < n; i++) {
          const c = model.get(a + i * PG);
          if (c !== undefined && c.shared === null) c.val = 0;
        }
      }
    } else if (op < 0.95) {
      if (procs.length < 4) {
        const child = await p.fork();
        const cm: Model = new Map();
        for (const [k, c] of model) cm.set(k, { ...c });
        procs.push({ p: child, model: cm });
      }
    } else {
      await p.exit();
      procs.splice(procs.indexOf(cur), 1);
    }
    checkFrameAccounting(m);
  }
  for (const file of files) file.f.close();
  // (The fixture's teardown destroys the machine: every frame free, nothing in swap.)
}

describe('random workloads keep data and frame accounting exact', () => {
  machineTest.for([1, 2, 3, 4, 5, 6])('seed %s', async (seed, { machine }) => {
    await run(machine, seed, 250);
  });
});
