/**
 * The workload kernels (shaders/workloads.wgsl) over a mirrored buffer, end to end: the CPU
 * initialises the buffer, the kernel runs through the mirror and its fault servicing, then
 * the kernel's own read checks, every invocation's result word and the CPU's read-back of
 * every word must all agree with the CPU-side model (src/workloads/patterns.ts).
 *
 *  - every pattern with no writes and with half the words written, on a buffer of 64–256
 *    pages, the working set smaller than the buffer for some; the results area starts
 *    poisoned (an invocation that never ran would leave the poison);
 *  - a word corrupted through the CPU after init is caught — by the kernel (a read word)
 *    and by the CPU's read-back (a write word the GPU must have overwritten);
 *  - pingpong: 4 hand-offs between the GPU and 2 concurrent CPU threads, and 3 hand-offs;
 *  - the CPU-side hash, values and targets match the WGSL bit for bit (a probe run).
 */
import { describe, expect } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import type { Dmirror } from '../../src/driver/dmirror.js';
import type { DmirrorDevice } from '../../src/driver/dmirror-device.js';
import type { SyntheticWorkload } from '../../src/workloads/names.js';
import {
  gatherIndices, hash32, initialWords, isWriteWord, phaseKey, resolveWorkload, stencilNeighbours, targetOf, valueOf,
} from '../../src/workloads/patterns.js';
import { runWorkload, type WorkloadResult, type WorkloadSpec } from '../../src/workloads/run.js';
import { MirrorEngine } from '../../src/device/mirror-engine.js';
import { workloadKernels } from '../../src/workloads/kernels.js';
import type { MachineFactory } from '../support/machine.js';
import { mirrorTest as test } from '../support/mirror.js';

const RW = PROT_READ | PROT_WRITE;

/** A machine sized for `pages` (the fixture tears it down), a process, its mirror and `pages` mapped. */
async function withMirror(machines: MachineFactory, pages: number, fn: (mirror: Dmirror, addr: number) => Promise<void>): Promise<void> {
  const m = await machines({ devices: 1, aperturePages: Math.max(512, 2 * pages), systemPages: 4 * pages + 4096 });
  const proc = m.spawn();
  const mirror = await m.devices[0].open(proc);
  const addr = await proc.mmap(0, pages * PAGE_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  await fn(mirror, addr);
}

function expectClean(r: WorkloadResult, what: string): void {
  expect(r.firstMismatch, what).toBeNull();
  expect(r.verify.mismatches, what).toBe(0);
  expect(r.results.checked, what).toBeGreaterThan(0);
  expect(r.cpu.checked, what).toBeGreaterThan(0);
}

interface Case { name: SyntheticWorkload; pages: number; ws?: number; extra?: Partial<WorkloadSpec> }

const CASES: Case[] = [
  { name: 'stream', pages: 256, ws: 128 },
  { name: 'strided', pages: 128, extra: { stride: 4096 + 64 * 4 } },
  { name: 'random', pages: 128 },
  { name: 'stencil', pages: 128, ws: 96, extra: { width: 768 } },
  { name: 'gather', pages: 128 },
  { name: 'pingpong', pages: 64, ws: 48 },
];

describe('workloads', () => {
  test.for(CASES.flatMap((c) => [0, 0.5].map((wf) => [c.name, wf, c] as const)))('%s, writes %s: every read checked on the GPU, every word read back by the CPU', async ([, wf, c], { machines }) => {
    await withMirror(machines, c.pages, async (mirror, addr) => {
      const spec: WorkloadSpec = {
        name: c.name, start: addr, sizeBytes: c.pages * PAGE_SIZE, workingSetBytes: (c.ws ?? c.pages) * PAGE_SIZE,
        writeFraction: wf, seed: 7, ...c.extra,
      };
      const r = await runWorkload(mirror, spec);
      expectClean(r, `${c.name} ${wf}`);
      expect(r.faultRounds).toBeGreaterThan(0);
      expect(r.gpu.checked).toBeGreaterThan(0);
    });
  });

  test('a word corrupted after init is caught: by the kernel (a read word) and by the CPU read-back', async ({ machines }) => {
    await withMirror(machines, 64, async (mirror, addr) => {
      const spec: WorkloadSpec = { name: 'stream', start: addr, sizeBytes: 64 * PAGE_SIZE, workingSetBytes: 32 * PAGE_SIZE, writeFraction: 0, seed: 3 };
      const bad = 5 * 1024 + 17; // in the working set
      const outside = 40 * 1024 + 3; // past it: nothing reads it, only the CPU's verification sees it
      const r = await runWorkload(mirror, spec, {
        afterInit: async () => {
          await mirror.proc.write(addr + bad * 4, new Uint8Array(Uint32Array.of(0x12345678).buffer));
          await mirror.proc.write(addr + outside * 4, new Uint8Array(Uint32Array.of(0x9abcdef0).buffer));
        },
      });
      // The buffer is twice the working set: invocations i and i + ws both read word i.
      expect(r.gpu.mismatches).toBe(2);
      expect(r.cpu.mismatches).toBe(2);
      expect(r.results.mismatches).toBe(0);
      expect(r.verify.mismatches).toBe(4);
      expect(r.firstMismatch).toMatch(/kernel found 2 wrong read/);
    });
  });

  test('a corrupted write word is overwritten by the GPU, and the CPU sees the GPU\'s value', async ({ machines }) => {
    await withMirror(machines, 64, async (mirror, addr) => {
      const spec: WorkloadSpec = { name: 'stream', start: addr, sizeBytes: 64 * PAGE_SIZE, writeFraction: 0.5, seed: 11 };
      const plan = resolveWorkload(spec);
      const ws: number[] = [];
      for (let w = 0; ws.length < 3; w += 997) if (isWriteWord(w, plan.key0, plan.thr)) ws.push(w);
      const r = await runWorkload(mirror, spec, {
        afterInit: async () => {
          for (const w of ws) await mirror.proc.write(addr + w * 4, new Uint8Array(Uint32Array.of(0).buffer));
        },
      });
      expectClean(r, 'write words overwritten');
    });
  });

  test('pages in device memory: the kernels reach them through the VRAM pool', async ({ machines }) => {
    await withMirror(machines, 64, async (mirror, addr) => {
      const spec: WorkloadSpec = { name: 'random', start: addr, sizeBytes: 64 * PAGE_SIZE, writeFraction: 0.5, seed: 5 };
      const r = await runWorkload(mirror, spec, {
        afterInit: async () => {
          const m = await mirror.migrateToDevice(addr + 16 * PAGE_SIZE, 32);
          expect(m.cpages).toBe(32);
        },
      });
      expectClean(r, 'random over device pages');
    });
  });

  test('pingpong: 4 hand-offs between the GPU and 2 concurrent CPU threads', async ({ machines }) => {
    await withMirror(machines, 64, async (mirror, addr) => {
      const spec: WorkloadSpec = {
        name: 'pingpong', start: addr, sizeBytes: 64 * PAGE_SIZE, workingSetBytes: 60 * PAGE_SIZE, writeFraction: 0.75, seed: 9,
        phases: 4, cpuThreads: 2,
      };
      const before = mirror.aperture.stats.refreshes;
      const r = await runWorkload(mirror, spec);
      expectClean(r, 'pingpong');
      // GPU phases 1 and 3, then the GPU checks the CPU's phase 4.
      expect(r.commands).toBe(3);
      expect(r.gpu.checked).toBe(3 * 60 * 1024);
      // CPU phases 2 and 4 checked the working set, the final read-back the whole buffer.
      expect(r.cpu.checked).toBe(2 * 60 * 1024 + 64 * 1024);
      // The CPU's writes made the GPU's copies stale: the mirror refreshed them.
      expect(mirror.aperture.stats.refreshes - before).toBeGreaterThanOrEqual(60);
    });
  });

  test('pingpong: a corrupted word is caught in the GPU phase that reads it', async ({ machines }) => {
    await withMirror(machines, 32, async (mirror, addr) => {
      const spec: WorkloadSpec = { name: 'pingpong', start: addr, sizeBytes: 32 * PAGE_SIZE, writeFraction: 1, seed: 2, phases: 3, cpuThreads: 3 };
      const r = await runWorkload(mirror, spec, {
        afterInit: () => mirror.proc.write(addr + 4096 + 8, new Uint8Array(Uint32Array.of(1).buffer)),
      });
      // GPU phase 1 reads the corrupted word (and overwrites it): the kernel counts it.
      expect(r.gpu.mismatches).toBe(1);
      expect(r.cpu.mismatches).toBe(0);
    });
  });

  test('engine: a kernel runs only on its own engine; io sizes are checked', async ({ machines }) => {
    await withMirror(machines, 8, async (mirror) => {
      const ks = await workloadKernels(mirror.engine);
      expect(await workloadKernels(mirror.engine)).toBe(ks); // compiled once per engine
      const other = await MirrorEngine.create(mirror.engine.device, { apertureSlots: 512, deviceSlots: 64 });
      try {
        const bad = (f: () => unknown, re: RegExp): void => {
          let e: unknown = null;
          try { f(); } catch (x) { e = x; }
          expect(e).toBeErrno('EINVAL');
          expect(String(e)).toMatch(re);
        };
        bad(() => other.createCommand({ op: 'read', page: 16, npages: 1, kernel: ks.stream }), /another engine/);
        bad(() => mirror.engine.createCommand({ op: 'read', page: 16, npages: 1, kernel: ks.stream, ioWords: 6 }), /ioWords/);
        bad(() => mirror.engine.createCommand({ op: 'read', page: 16, npages: 1, kernel: ks.stream, ioWords: 8, data: new Uint32Array(4) }), /io has 8/);
        bad(() => mirror.engine.createCommand({ op: 'read', page: 16, npages: 1, ioWords: 8, scratch: true }), /never scratch/);
      } finally {
        other.destroy();
      }
    });
  });

  test('the CPU-side model: strides cover the working set, the torus wraps, fractions 0 and 1, gather stays inside', () => {
    const plan = resolveWorkload({ name: 'strided', start: 0, sizeBytes: 16 * PAGE_SIZE, writeFraction: 0, seed: 1, stride: 4096 });
    const seen = new Set<number>();
    for (let i = 0; i < plan.ws; i++) seen.add(targetOf(plan, i));
    expect(seen.size).toBe(plan.ws); // a dividing stride touches every word once per working set
    expect(targetOf(plan, 1) - targetOf(plan, 0)).toBe(1024);
    for (let w = 0; w < 4096; w++) expect(isWriteWord(w, plan.key0, plan.thr)).toBe(false);
    const all = resolveWorkload({ name: 'stream', start: 0, sizeBytes: 4 * PAGE_SIZE, writeFraction: 1, seed: 1 });
    for (let w = 0; w < 4096; w++) expect(isWriteWord(w, all.key0, all.thr)).toBe(true);
    const half = resolveWorkload({ name: 'stream', start: 0, sizeBytes: 64 * PAGE_SIZE, writeFraction: 0.5, seed: 4 });
    let n = 0;
    for (let w = 0; w < half.nwords; w++) n += isWriteWord(w, half.key0, half.thr) ? 1 : 0;
    expect(Math.abs(n / half.nwords - 0.5)).toBeLessThan(0.01);
    expect(initialWords(half, 5, 2)).toEqual(Uint32Array.of(valueOf(5, phaseKey(4, 0)), valueOf(6, phaseKey(4, 0))));
    expect(hash32(0)).toBe(0); // lowbias32 fixes 0; the keys keep f(0) from being 0
    expect(valueOf(0, half.key0)).not.toBe(0);
    const st = resolveWorkload({ name: 'stencil', start: 0, sizeBytes: 3 * PAGE_SIZE, writeFraction: 0, seed: 1, width: 1024 });
    expect(stencilNeighbours(st, 0)).toEqual([1023, 1, 2 * 1024, 1024]);
    const g = resolveWorkload({ name: 'gather', start: 0, sizeBytes: 64 * PAGE_SIZE, workingSetBytes: 8 * PAGE_SIZE, writeFraction: 0, seed: 1 });
    expect(gatherIndices(g).every((x) => x < g.ws)).toBe(true);
    expect(() => resolveWorkload({ name: 'stencil', start: 0, sizeBytes: 2 * PAGE_SIZE, writeFraction: 0, seed: 1, width: 1024 })).toThrow(/rows/);
  });
});
