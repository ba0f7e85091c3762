/**
 * GPU access counters (issue 9): the mirror kernels count remote (aperture) word accesses per
 * region with WGSL atomics, the engine reads them back with each round's fault ring and clears
 * them for the next round (uvm_gpu_access_counters.c: the hardware counts accesses to system
 * memory, the driver reads the counters out). Device-local pages are not counted; a command
 * that does not count pays nothing and reports nothing.
 */
import { describe, expect } from 'vitest';
import { HmmError } from '../../src/errors.js';
import { MirrorEngine, WORDS_PER_PAGE, type MirrorCommand, type MirrorEngineOptions } from '../../src/device/mirror-engine.js';
import { PTE_DEVICE, PTE_EXCLUSIVE, PTE_WRITE } from '../../src/device/page-table.js';
import { gpuTest as test } from '../support/gpu.js';
import { expectAllEqual, patternPage, patternWord, POISON, runToCompletion, toyService } from './mirror-helpers.js';
import { workloadKernels } from '../../src/workloads/kernels.js';
import { commandIo, isWriteWord, resolveWorkload, stencilNeighbours } from '../../src/workloads/patterns.js';

type Gpu = { device: GPUDevice };

async function withEngine<T>(gpu: Gpu, opts: MirrorEngineOptions, fn: (e: MirrorEngine) => Promise<T>): Promise<T> {
  const e = await MirrorEngine.create(gpu.device, { apertureSlots: 256, deviceSlots: 64, ...opts });
  try {
    return await fn(e);
  } finally {
    e.destroy();
  }
}

function backAperture(e: MirrorEngine, page: number, flags = 0): void {
  const slot = e.sysmem.alloc();
  e.sysmem.upload(slot, patternPage(page));
  e.pt.map(page, slot, flags);
}

function backDevice(e: MirrorEngine, page: number, flags = 0): void {
  const slot = e.vram.alloc();
  e.vram.upload(slot, patternPage(page));
  e.pt.map(page, slot, flags | PTE_DEVICE);
}

/** Fills the command's counters with POISON: the round must clear them before counting. */
function poisonCounters(e: MirrorEngine, cmd: MirrorCommand): void {
  e.device.queue.writeBuffer(cmd.state, cmd.counterOff * 4, new Uint32Array(cmd.counterWords).fill(POISON));
}

const W = WORDS_PER_PAGE;

describe('GPU access counters', () => {
  test('read: remote words counted per region, device pages not, counters cleared between rounds', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      // Regions of 4 pages from page 998: the range [1000, 1010) starts 2 pages into region 0,
      // so its 3 counters cover range pages {0, 1}, {2 .. 5}, {6 .. 9}.
      const base = 1000;
      const n = 10;
      const cmd = e.createCommand({ op: 'read', page: base, npages: n, data: new Uint32Array(n * W).fill(POISON), counters: { regionPages: 4, origin: 998 } });
      expect(cmd.counterWords).toBe(3);
      expect(cmd.accessCounts!.firstPage).toBe(998);
      expect(cmd.accessCounts!.regionPages).toBe(4);
      backAperture(e, base + 0);
      backDevice(e, base + 1);
      backAperture(e, base + 2);
      backAperture(e, base + 3);
      backDevice(e, base + 4);
      // 5 .. 9 fault in round 1 (the toy driver maps them through the aperture) and are read in round 2.
      poisonCounters(e, cmd);
      const r1 = await e.runRound(cmd);
      expect(r1.finished).toBe(false);
      expectAllEqual(r1.counters!, new Uint32Array([W, 2 * W, 0]), 'round 1 counters');
      await toyService(e)(r1.faults);
      poisonCounters(e, cmd); // again: what the last round left is cleared by the next
      const r2 = await e.runRound(cmd);
      expect(r2.finished).toBe(true);
      expectAllEqual(r2.counters!, new Uint32Array([0, W, 4 * W]), 'round 2 counters (round 1 cleared)');
      expectAllEqual(cmd.accessCounts!.counts, new Uint32Array([W, 3 * W, 4 * W]), 'the command\'s sum');
      const want = new Uint32Array(n * W);
      for (let p = 0; p < n; p++) for (let w = 0; w < W; w++) want[p * W + w] = patternWord(base + p, w);
      expectAllEqual(await cmd.readOutput(), want, 'data');
      // A finished command runs no round: nothing counted, nothing added.
      const r3 = await e.runRound(cmd);
      expect(r3.counters).toBeUndefined();
      expectAllEqual(cmd.accessCounts!.counts, new Uint32Array([W, 3 * W, 4 * W]), 'after a finished round');
      cmd.reset();
      expectAllEqual(cmd.accessCounts!.counts, new Uint32Array(3), 'after reset');
      cmd.destroy();
    });
  });

  test('write and atomic kernels count too; regions of one page from origin 0', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const base = 64;
      backAperture(e, base, PTE_WRITE);
      backDevice(e, base + 1, PTE_WRITE);
      backAperture(e, base + 2, PTE_WRITE);
      const data = new Uint32Array(3 * W).fill(7);
      const wr = e.createCommand({ op: 'write', page: base, npages: 3, data, counters: { regionPages: 1, origin: 0 } });
      poisonCounters(e, wr);
      const r = await e.runRound(wr);
      expect(r.finished).toBe(true);
      expectAllEqual(r.counters!, new Uint32Array([W, 0, W]), 'write counters');
      wr.destroy();

      backAperture(e, 200, PTE_EXCLUSIVE);
      backDevice(e, 201, PTE_EXCLUSIVE);
      const at = e.createCommand({ op: 'atomic', page: 200, npages: 2, counters: { regionPages: 1, origin: 0 } });
      poisonCounters(e, at);
      const ra = await e.runRound(at);
      expect(ra.finished).toBe(true);
      expectAllEqual(ra.counters!, new Uint32Array([W, 0]), 'atomic counters');
      at.destroy();
    });
  });

  test('workload kernel (stencil): every load and store through the aperture counted in its page, exactly once', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const base = 4096;
      const n = 8;
      const plan = resolveWorkload({ name: 'stencil', start: base * 4096, sizeBytes: n * 4096, writeFraction: 0.3, seed: 11 });
      const device = new Set([2, 5]);
      for (let p = 0; p < n; p++) {
        if (device.has(p)) backDevice(e, base + p, PTE_WRITE);
        else if (p !== 3 && p !== 6) backAperture(e, base + p, PTE_WRITE); // 3 and 6 fault first
      }
      // Host model: invocation i (cell w = i) loads its 5 cells and stores w if a write word.
      const want = new Uint32Array(n);
      const count = (w: number): void => {
        const p = Math.floor(w / W);
        if (!device.has(p)) want[p]++;
      };
      for (let w = 0; w < plan.ws; w++) {
        count(w);
        for (const v of stencilNeighbours(plan, w)) count(v);
        if (isWriteWord(w, plan.key0, plan.thr)) count(w);
      }
      const io = commandIo(plan, 1);
      const kernel = (await workloadKernels(e)).stencil;
      const cmd = e.createCommand({ op: 'write', page: base, npages: n, kernel, ioWords: io.length, data: io, counters: { regionPages: 1, origin: 0 } });
      poisonCounters(e, cmd);
      const out = await runToCompletion(e, cmd, toyService(e));
      expect(out.rounds).toBeGreaterThan(1);
      expectAllEqual(cmd.accessCounts!.counts, want, 'stencil counts');
      cmd.destroy();
    });
  });

  test('the engine default counts commands that do not say; without counting there is nothing to read', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      backAperture(e, 10);
      backAperture(e, 11);
      const bytes = e.roundReadbackBytes;
      const plain = e.createCommand({ op: 'read', page: 10, npages: 2 });
      expect(plain.accessCounts).toBeNull();
      const r = await e.runRound(plain);
      expect(r.finished).toBe(true);
      expect(r.counters).toBeUndefined();
      expect(e.roundReadbackBytes).toBe(bytes); // nothing more read back
      plain.destroy();

      e.accessCounters = { regionPages: 512, origin: 0 };
      const counted = e.createCommand({ op: 'read', page: 10, npages: 2, scratch: true });
      const rc = await e.runRound(counted);
      expectAllEqual(rc.counters!, new Uint32Array([2 * W]), 'one 2 MiB region');
      counted.destroy();
      // A recycled scratch set of the same page count but not counting: no counters.
      e.accessCounters = null;
      const again = e.createCommand({ op: 'read', page: 10, npages: 2, scratch: true });
      expect((await e.runRound(again)).counters).toBeUndefined();
      again.destroy();
    });
  });

  test('a bad counter configuration is EINVAL and changes nothing', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      for (const c of [{ regionPages: 0, origin: 0 }, { regionPages: 1.5, origin: 0 }, { regionPages: 4, origin: -1 }, { regionPages: 2 ** 31 + 1, origin: 0 }]) {
        expect(() => e.createCommand({ op: 'read', page: 0, npages: 1, counters: c })).toThrow(HmmError);
        let code = '';
        try {
          e.accessCounters = c;
        } catch (x) {
          code = (x as HmmError).code;
        }
        expect(code).toBe('EINVAL');
        expect(e.accessCounters).toBeNull();
      }
    });
  });
});

