/**
 * Frame accounting under random operation sequences: after every step, every frame's
 * refcount must equal what an independent recount of page tables, page caches and swap
 * finds (checkFrameAccounting), and every byte a process reads must be what a model of its
 * memory says. When all processes exit and files close, all RAM but the zero page is free.
 */
import { describe, expect } from 'vitest';
import {
  MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED,
  PROT_READ, PROT_WRITE, SegmentationFault, type Machine, type MemFile, type Process,
} from '../../src/index.js';
import { checkFrameAccounting } from '../../src/mm/accounting.js';
import { mulberry32 } from '../../src/sched/seeded.js';
import { machineTest } from '../support/machine.js';

const PG = 4096;
const RW = PROT_READ | PROT_WRITE;

type Kind = 'anon' | 'shared-anon' | 'file-private' | 'file-shared';

/** What a page reads as: a byte per page, kept at offset 0 and 4095 of the page. */
interface Region {
  start: number;
  pages: number;
  kind: Kind;
  prot: number;
  /** Private pages' own bytes (anon, or COW'd file pages). Absent = zero / file content. */
  priv: Map<number, number>;
  /** Shared content: a shared anon object or the file's model, indexed by page in the object. */
  shared: Map<number, number> | null;
  /** Page offset of the region's first page in its shared object. */
  pgoff: number;
}

interface Proc { p: Process; regions: Region[] }

function expected(r: Region, i: number): number {
  if (r.kind === 'anon') return r.priv.get(i) ?? 0;
  if (r.kind === 'file-private' && r.priv.has(i)) return r.priv.get(i)!;
  return r.shared!.get(r.pgoff + i) ?? 0;
}

async function runSeed(m: Machine, seed: number, steps: number): Promise<void> {
  const rnd = mulberry32(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)];
  const fileModel = new Map<MemFile, Map<number, number>>();
  const files: MemFile[] = [];
  for (let f = 0; f < 2; f++) {
    const file = m.createFile(64 * PG);
    files.push(file);
    fileModel.set(file, new Map());
  }
  const procs: Proc[] = [{ p: m.spawn(), regions: [] }];

  for (let step = 0; step < steps; step++) {
    const pr = pick(procs);
    const op = rnd();
    const what = `seed ${seed} step ${step}`;
    if (op < 0.15 || pr.regions.length === 0) {
      // mmap a new region.
      const pages = 1 + Math.floor(rnd() * 24);
      const kind = pick<Kind>(['anon', 'anon', 'shared-anon', 'file-private', 'file-shared']);
      let start: number;
      let shared: Map<number, number> | null = null;
      let pgoff = 0;
      if (kind === 'anon') start = await pr.p.mmap(0, pages * PG, RW, MAP_PRIVATE | MAP_ANONYMOUS);
      else if (kind === 'shared-anon') {
        start = await pr.p.mmap(0, pages * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
        shared = new Map();
      } else {
        const file = pick(files);
        pgoff = Math.floor(rnd() * (64 - pages + 1));
        start = await pr.p.mmap(0, pages * PG, RW, kind === 'file-shared' ? MAP_SHARED : MAP_PRIVATE, file, pgoff * PG);
        shared = fileModel.get(file)!;
      }
      if (kind === 'anon' && rnd() < 0.2) await pr.p.madvise(start, pages * PG, MADV_HUGEPAGE);
      pr.regions.push({ start, pages, kind, prot: RW, priv: new Map(), shared, pgoff });
    } else if (op < 0.45) {
      // CPU store of a distinct byte at both ends of a page.
      const r = pick(pr.regions);
      const i = Math.floor(rnd() * r.pages);
      const v = 1 + Math.floor(rnd() * 255);
      const buf = new Uint8Array(PG);
      buf[0] = v;
      buf[PG - 1] = v;
      if ((r.prot & PROT_WRITE) === 0) {
        await expect(pr.p.write(r.start + i * PG, buf), what).rejects.toBeInstanceOf(SegmentationFault);
      } else {
        await pr.p.write(r.start + i * PG, buf);
        if (r.kind === 'anon' || r.kind === 'file-private') r.priv.set(i, v);
        else r.shared!.set(r.pgoff + i, v);
      }
    } else if (op < 0.65) {
      // CPU load, checked against the model.
      const r = pick(pr.regions);
      const i = Math.floor(rnd() * r.pages);
      const got = await pr.p.read(r.start + i * PG, PG);
      const want = expected(r, i);
      expect([got[0], got[PG - 1]], `${what}: ${r.kind} page ${i}`).toEqual([want, want]);
    } else if (op < 0.72) {
      const r = pick(pr.regions);
      await pr.p.madvise(r.start, r.pages * PG, MADV_DONTNEED);
      // Private copies are discarded; shared content stays in the object.
      r.priv.clear();
    } else if (op < 0.77) {
      const r = pick(pr.regions);
      await pr.p.madvise(r.start, r.pages * PG, MADV_PAGEOUT);
    } else if (op < 0.83) {
      const r = pick(pr.regions);
      r.prot = r.prot === RW ? PROT_READ : RW;
      await pr.p.mprotect(r.start, r.pages * PG, r.prot);
    } else if (op < 0.9) {
      // munmap a whole region, or its tail (a split).
      const k = Math.floor(rnd() * pr.regions.length);
      const r = pr.regions[k];
      const cut = rnd() < 0.5 ? 0 : Math.floor(rnd() * r.pages);
      await pr.p.munmap(r.start + cut * PG, (r.pages - cut) * PG);
      if (cut === 0) pr.regions.splice(k, 1);
      else {
        r.pages = cut;
        for (const key of [...r.priv.keys()]) if (key >= cut) r.priv.delete(key);
      }
    } else if (op < 0.95 && procs.length < 5) {
      const child = await pr.p.fork();
      procs.push({
        p: child,
        regions: pr.regions.map((r) => ({ ...r, priv: new Map(r.priv) })),
      });
    } else if (op < 0.97 && procs.length > 1) {
      await pr.p.exit();
      procs.splice(procs.indexOf(pr), 1);
    } else {
      // pwrite through the page cache: shared mappings see it, and private ones that
      // have not copied the page.
      const file = pick(files);
      const page = Math.floor(rnd() * 64);
      const v = 1 + Math.floor(rnd() * 255);
      const buf = new Uint8Array(PG);
      buf[0] = v;
      buf[PG - 1] = v;
      await file.pwrite(buf, page * PG);
      fileModel.get(file)!.set(page, v);
    }
    checkFrameAccounting(m, { zeroCheck: 'sample' });
  }

  for (const pr of procs) await pr.p.exit();
  for (const f of files) f.close();
  const report = checkFrameAccounting(m, { zeroCheck: 'full' });
  expect(report.usedFrames, `seed ${seed}: frames still in use after teardown`).toBe(1); // the zero page
  expect(m.ram.freePages).toBe(m.ram.npages - 1);
}

describe('frame accounting under random operations', () => {
  machineTest.override('systemPages', 8192);
  machineTest.for([1, 2, 3, 4, 5, 6])('seed %s: refcounts match mappings and caches after every step; all free at the end', async (seed, { machine }) => {
    await runSeed(machine, seed, 400);
  });
});
