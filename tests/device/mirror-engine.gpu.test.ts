/**
 * The mirror engine on the GPU with synthetic mappings: reads through the page walk,
 * the workgroup TLB and uTLB fault reporting, replay, protection faults, dirty tracking and write-back,
 * atomics gated on EXCLUSIVE, fault-buffer overflow, 2-D dispatch, fences and device loss.
 */
import { describe, expect, vi } from 'vitest';
import { requestGpuDevice } from '../../src/device/gpu.js';
import { HmmError } from '../../src/errors.js';
import type { FaultRecord } from '../../src/device/fault-queue.js';
import { faultSourceOf, MirrorEngine, WORDS_PER_PAGE, type MirrorEngineOptions } from '../../src/device/mirror-engine.js';
import { PTE_DEVICE, PTE_EXCLUSIVE, PTE_WRITE } from '../../src/device/page-table.js';
import { gpuTest as test } from '../support/gpu.js';
import { bit, expectAllEqual, patternPage, patternWord, POISON, runToCompletion, toyService } from './mirror-helpers.js';

type Gpu = { device: GPUDevice };

async function withEngine<T>(gpu: Gpu, opts: MirrorEngineOptions, fn: (e: MirrorEngine) => Promise<T>): Promise<T> {
  const e = await MirrorEngine.create(gpu.device, { apertureSlots: 2048, deviceSlots: 1024, ...opts });
  try {
    return await fn(e);
  } finally {
    e.destroy();
  }
}

function poisoned(npages: number): Uint32Array {
  return new Uint32Array(npages * WORDS_PER_PAGE).fill(POISON);
}

/** Backs `page` with a fresh aperture slot holding patternPage(page). */
function backPage(e: MirrorEngine, page: number, flags = 0, salt = 0): number {
  const slot = e.sysmem.alloc();
  e.sysmem.upload(slot, patternPage(page, salt));
  e.pt.map(page, slot, flags);
  return slot;
}

function expectedRead(base: number, npages: number, present: (page: number) => boolean, salt = 0): Uint32Array {
  const want = poisoned(npages);
  for (let p = 0; p < npages; p++) {
    if (!present(base + p)) continue;
    for (let w = 0; w < WORDS_PER_PAGE; w++) want[p * WORDS_PER_PAGE + w] = patternWord(base + p, w, salt);
  }
  return want;
}

function key(f: FaultRecord): string {
  return `${f.source}:${f.page}:${f.access}`;
}

describe('MirrorEngine', () => {
  test('read: every word through the walk (aperture, device pool, huge leaf, pages ≥ 2^32)', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const base = 2 ** 32 - 2; // crosses into the high word mid-range
      const n = 6;
      for (let p = 0; p < n; p++) {
        if (p % 3 === 1) {
          const slot = e.vram.alloc();
          e.vram.upload(slot, patternPage(base + p));
          e.pt.map(base + p, slot, PTE_DEVICE);
        } else {
          backPage(e, base + p);
        }
      }
      const cmd = e.createCommand({ op: 'read', page: base, npages: n, data: poisoned(n) });
      const r = await e.runRound(cmd);
      expect(r).toMatchObject({ faults: [], overflow: false, missed: 0, completed: n * 1024, finished: true });
      expectAllEqual(await cmd.readOutput(), expectedRead(base, n, () => true), 'read');
      expect((await cmd.readDone()).every((w) => w === 0xffffffff)).toBe(true);
      // reset(): the same command runs again, whole.
      cmd.reset();
      expect(cmd.done).toBe(0);
      expect((await cmd.readDone()).every((w) => w === 0)).toBe(true);
      expect(await e.runRound(cmd)).toMatchObject({ completed: n * 1024, finished: true });

      // A huge leaf in the device pool: subpage k is slot first + k.
      const hbase = 2 ** 34;
      const first = e.vram.allocHuge();
      const pages = [0, 1, 255, 511];
      e.vram.uploadPages(pages.map((k) => ({ slot: first + k, data: patternPage(hbase + k) })));
      e.pt.mapHuge(hbase, first, PTE_DEVICE);
      for (const k of pages) {
        const c = e.createCommand({ op: 'read', page: hbase + k, npages: 1, data: poisoned(1) });
        expect((await e.runRound(c)).finished).toBe(true);
        expectAllEqual(await c.readOutput(), expectedRead(hbase + k, 1, () => true), `huge subpage ${k}`);
      }
    });
  });

  test('read: the DEVICE bit selects the device pool, not the aperture slot of that number', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const slot = 7;
      e.sysmem.upload(slot, patternPage(1, 111));
      e.vram.upload(slot, patternPage(1, 222));
      e.pt.map(100, slot, 0);
      e.pt.map(101, slot, PTE_DEVICE);
      const cmd = e.createCommand({ op: 'read', page: 100, npages: 2 });
      expect((await e.runRound(cmd)).finished).toBe(true);
      const out = await cmd.readOutput();
      const want = new Uint32Array(2048);
      for (let w = 0; w < 1024; w++) { want[w] = patternWord(1, w, 111); want[1024 + w] = patternWord(1, w, 222); }
      expectAllEqual(out, want, 'aperture vs device');
    });
  });

  test('fresh quiet reads are compiled for their leaves\' pool: all in the aperture, all in VRAM, mixed (slots of the same numbers in both pools hold different data)', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const base = 3 * 512 - 4; // crosses a level-0 table
      const n = 12;
      const inVram = (p: number): boolean => p - base >= 8; // [base, base + 8) aperture, then 4 VRAM pages
      // Aperture pages in slots 20-27, VRAM pages in VRAM slots 20-23; VRAM slots 24-27 hold other data.
      for (let p = base; p < base + n; p++) {
        const slot = 20 + (p - base) % 8;
        (inVram(p) ? e.vram : e.sysmem).upload(slot, patternPage(p));
        if (!inVram(p) && slot >= 24) e.vram.upload(slot, patternPage(p, 9));
        e.pt.map(p, slot, inVram(p) ? PTE_DEVICE : 0);
      }
      for (const [first, npages, pool] of [[base, 8, 'system'], [base + 8, 4, 'device'], [base + 6, 4, 'mixed'], [base, n, 'mixed']] as const) {
        expect(e.pt.poolOf(first, npages, 0)).toBe(pool);
        const cmd = e.createCommand({ op: 'read', page: first, npages, data: poisoned(npages) });
        expect(await e.runRound(cmd)).toMatchObject({ faults: [], missed: 0, finished: true });
        expectAllEqual(await cmd.readOutput(), expectedRead(first, npages, () => true), `${pool} [${first - base}, +${npages})`);
        cmd.destroy();
      }
    });
  });

  test('miss: one record per (uTLB, page), nothing written, not done; map + replay completes', async ({ gpu }) => {
    await withEngine(gpu, { faultSources: 3 }, async (e) => {
      const base = 2 ** 35 - 64; // top of the VA space
      const n = 10;
      const present = (p: number): boolean => [0, 3, 4, 9].includes(p - base);
      for (let p = base; p < base + n; p++) if (present(p)) backPage(e, p);
      const cmd = e.createCommand({ op: 'read', page: base, npages: n, data: poisoned(n) });
      const r = await e.runRound(cmd);
      const wantKeys = new Set<string>();
      for (let i = 0; i < n * WORDS_PER_PAGE; i++) {
        const p = base + Math.floor(i / WORDS_PER_PAGE);
        if (!present(p)) wantKeys.add(`${faultSourceOf(i, 3)}:${p}:read`);
      }
      const got = r.faults.map(key);
      expect(new Set(got).size, 'duplicate records from one uTLB').toBe(got.length);
      expect([...got].sort()).toEqual([...wantKeys].sort());
      expect(r.faults.every((f) => !f.protection)).toBe(true);
      // A workgroup (8 pages) is one uTLB: one record per missed page.
      expect(got.length).toBe(wantKeys.size);
      expect(r).toMatchObject({ overflow: false, completed: 4 * 1024, missed: 6 * 1024, done: 4 * 1024, finished: false });
      expectAllEqual(await cmd.readOutput(), expectedRead(base, n, present), 'after the faulting round');
      const done = await cmd.readDone();
      for (let i = 0; i < n * WORDS_PER_PAGE; i += 97) {
        expect(bit(done, i), `done[${i}]`).toBe(present(base + Math.floor(i / WORDS_PER_PAGE)));
      }
      // Service (map the pages) and replay. Page 3 is done: zapping it now must not make the
      // replay fault on it again, and its words keep what round 1 read.
      await toyService(e)(r.faults);
      e.pt.unmap(base + 3, 1);
      const r2 = await e.runRound(cmd);
      expect(r2).toMatchObject({ faults: [], completed: 6 * 1024, finished: true });
      expectAllEqual(await cmd.readOutput(), expectedRead(base, n, () => true), 'after replay');
    });
  });

  test('write: a read-only PTE is a protection fault; upgrade + replay stores every word', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const page = 2 ** 33 + 77;
      const slot = backPage(e, page, 0);
      const data = new Uint32Array(1024).map((_, w) => (w * 0x01010101) >>> 0);
      const cmd = e.createCommand({ op: 'write', page, npages: 1, data });
      const r = await e.runRound(cmd);
      expect(r.finished).toBe(false);
      expect(r.faults.length).toBeGreaterThan(0);
      for (const f of r.faults) expect(f).toMatchObject({ page, access: 'write', protection: true });
      // Memory untouched, nothing dirty.
      expectAllEqual(new Uint32Array((await e.sysmem.readback([slot])).buffer), new Uint32Array(patternPage(page).buffer), 'untouched');
      expect(await e.writebackDirty()).toEqual([]);
      e.pt.map(page, slot, PTE_WRITE);
      expect((await e.runRound(cmd)).finished).toBe(true);
      expectAllEqual(new Uint32Array((await e.sysmem.readback([slot])).buffer), data, 'written');
    });
  });

  test('write marks dirty; writeback returns exactly the written pages and bytes, once', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const base = 5000;
      const slots: number[] = [];
      for (let p = 0; p < 8; p++) slots.push(backPage(e, base + p, PTE_WRITE));
      const devSlot = e.vram.alloc();
      e.pt.map(base + 8, devSlot, PTE_WRITE | PTE_DEVICE);
      const d1 = new Uint32Array(2048).map((_, i) => (i ^ 0xabc00000) >>> 0);
      const d2 = new Uint32Array(1024).map((_, i) => (i * 3 + 0x5a000000) >>> 0);
      const w1 = e.createCommand({ op: 'write', page: base + 2, npages: 2, data: d1 });
      const w2 = e.createCommand({ op: 'write', page: base + 6, npages: 1, data: d2 });
      const w3 = e.createCommand({ op: 'write', page: base + 8, npages: 1, data: d2 });
      for (const c of [w1, w2, w3]) expect((await e.runRound(c)).finished).toBe(true);
      // Reading does not dirty.
      expect((await e.runRound(e.createCommand({ op: 'read', page: base, npages: 8 }))).finished).toBe(true);

      const dirty = await e.writebackDirty();
      expect(dirty.map((d) => d.slot)).toEqual([slots[2], slots[3], slots[6]]);
      expectAllEqual(new Uint32Array(dirty[0].data.slice().buffer), d1.subarray(0, 1024), 'page 2');
      expectAllEqual(new Uint32Array(dirty[1].data.slice().buffer), d1.subarray(1024), 'page 3');
      expectAllEqual(new Uint32Array(dirty[2].data.slice().buffer), d2, 'page 6');
      expect(await e.writebackDirty()).toEqual([]); // bits were cleared
      const dev = await e.writebackDirty('vram');
      expect(dev.map((d) => d.slot)).toEqual([devSlot]);
      expectAllEqual(new Uint32Array(dev[0].data.slice().buffer), d2, 'device page');
      // A replay does not re-dirty what an earlier round wrote: page 0 is written in round 1,
      // page 1 (read-only until the service) in round 2; the second writeback has only page 1.
      const w4 = e.createCommand({ op: 'write', page: base, npages: 2, data: d1 });
      e.pt.map(base + 1, slots[1], 0);
      expect((await e.runRound(w4)).finished).toBe(false);
      expect((await e.writebackDirty()).map((d) => d.slot)).toEqual([slots[0]]);
      e.pt.map(base + 1, slots[1], PTE_WRITE);
      expect((await e.runRound(w4)).finished).toBe(true);
      expect((await e.writebackDirty()).map((d) => d.slot)).toEqual([slots[1]]);
      // Clean pages were not touched.
      expectAllEqual(new Uint32Array((await e.sysmem.readback([slots[5]])).buffer), new Uint32Array(patternPage(base + 5).buffer), 'clean');
    });
  });

  test('writeback drains the dirty bitmap through the staging cache: one staging buffer per pool, then none', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const slot = backPage(e, 9000, PTE_WRITE);
      const made: string[] = [];
      const create = e.device.createBuffer.bind(e.device);
      const spy = vi.spyOn(e.device, 'createBuffer').mockImplementation((d) => { made.push(d.label ?? ''); return create(d); });
      try {
        const staged = (): number => made.filter((l) => l.includes('dirty staging')).length;
        let first = -1;
        for (let k = 0; k < 3; k++) {
          expect((await e.runRound(e.createCommand({ op: 'write', page: 9000, npages: 1, data: new Uint32Array(1024).fill(k) }))).finished).toBe(true);
          expect((await e.writebackDirty()).map((d) => d.slot)).toEqual([slot]);
          await e.writebackDirty('vram');
          if (k === 0) first = staged();
        }
        // sysmem's and vram's bitmaps differ in size (2048 and 1024 slots): at most one buffer
        // each (none when an earlier engine on this device left them in the device's staging
        // cache), reused by every later write-back.
        expect(first).toBeLessThanOrEqual(2);
        expect(staged()).toBe(first);
      } finally {
        spy.mockRestore();
      }
    });
  });

  test('atomic_inc needs EXCLUSIVE: atomic faults until granted, then every word +1', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const page = 2 ** 34 + 3;
      const slot = backPage(e, page, PTE_WRITE);
      const cmd = e.createCommand({ op: 'atomic', page, npages: 2, data: poisoned(2) });
      const r = await e.runRound(cmd);
      expect(r.finished).toBe(false);
      const byPage = new Map(r.faults.map((f) => [f.page, f]));
      expect(byPage.get(page)).toMatchObject({ access: 'atomic', protection: true }); // valid, not exclusive
      expect(byPage.get(page + 1)).toMatchObject({ access: 'atomic', protection: false }); // not mapped
      expectAllEqual(await cmd.readOutput(), poisoned(2), 'nothing ran');

      e.pt.map(page, slot, PTE_WRITE | PTE_EXCLUSIVE);
      const out = await runToCompletion(e, cmd, toyService(e));
      expect(out).toEqual({ rounds: 2, faultRounds: 1, cancelled: [] });
      const old = await cmd.readOutput();
      const want = expectedRead(page, 2, () => true);
      expectAllEqual(old, want, 'atomic returns the old values');
      // Run it again: memory is +1 per word after the first, so the old values are want + 1.
      const again = e.createCommand({ op: 'atomic', page, npages: 2 });
      expect((await e.runRound(again)).finished).toBe(true);
      expectAllEqual(await again.readOutput(), want.map((v) => (v + 1) >>> 0), 'second pass');
      const dirty = await e.writebackDirty();
      expect(dirty.map((d) => d.slot)).toEqual([slot, e.pt.lookup(page + 1)!.slot].sort((a, b) => a - b));
      expectAllEqual(new Uint32Array(dirty.find((d) => d.slot === slot)!.data.slice().buffer), want.subarray(0, 1024).map((v) => (v + 2) >>> 0), 'memory');
    });
  });

  test('workgroup TLB: one walk per page per round (hit rate reported); a uTLB sends one record per missed page', async ({ gpu }) => {
    await withEngine(gpu, { faultSources: 4 }, async (e) => {
      // 40 pages = 5 workgroups of 8 (uTLBs 0, 1, 2, 3, 0); every third page absent.
      const base = 5000;
      const n = 40;
      const present = (p: number): boolean => (p - base) % 3 !== 0;
      for (let p = base; p < base + n; p++) if (present(p)) backPage(e, p);
      const cmd = e.createCommand({ op: 'read', page: base, npages: n, data: poisoned(n) });
      const r = await e.runRound(cmd);
      const missedPages = [...Array(n).keys()].map((k) => base + k).filter((p) => !present(p));
      expect(r.tlb).toEqual({ lookups: n * 32, walks: n, hitRate: 31 / 32 });
      // Exactly one record per missed page, from the uTLB (workgroup) that served it, not
      // one per thread or per 256-word block.
      expect(r.faults.map(key).sort()).toEqual(missedPages.map((p) => `${Math.floor((p - base) / 8) % 4}:${p}:read`).sort());
      expect(r.faults.map((f) => f.source)).toEqual(r.faults.map((f) => faultSourceOf((f.page - base) * WORDS_PER_PAGE, 4)));
      expect(r).toMatchObject({ overflow: false, missed: missedPages.length * WORDS_PER_PAGE, done: (n - missedPages.length) * WORDS_PER_PAGE });
      expectAllEqual(await cmd.readOutput(), expectedRead(base, n, present), 'after the faulting round');
      await toyService(e)(r.faults);
      const r2 = await e.runRound(cmd);
      // The replay walks every page of the range again (the TLB lives for one dispatch) and
      // records nothing; the engine's totals add both rounds.
      expect(r2).toMatchObject({ faults: [], finished: true, tlb: { lookups: n * 32, walks: n } });
      expect(e.stats).toMatchObject({ tlbLookups: 2 * n * 32, tlbWalks: 2 * n, faultRecords: missedPages.length });
      expectAllEqual(await cmd.readOutput(), expectedRead(base, n, () => true), 'after the replay');
      // A round of a finished command does nothing, and says so.
      expect((await e.runRound(cmd)).tlb).toEqual({ lookups: 0, walks: 0, hitRate: 0 });
    });
  });

  test('quiet rounds: a read over a fully mapped range skips the report and record passes, and only then', async ({ gpu }) => {
    await withEngine(gpu, { faultSources: 4 }, async (e) => {
      const base = 7000;
      const n = 24;
      for (let p = base; p < base + n; p++) backPage(e, p);
      // Fully mapped: quiet, every word read, the same TLB figures as a full round.
      const q0 = e.stats.quietRounds;
      const cmd = e.createCommand({ op: 'read', page: base, npages: n, data: poisoned(n) });
      expect(await e.runRound(cmd)).toMatchObject({ faults: [], overflow: false, missed: 0, finished: true, tlb: { lookups: n * 32, walks: n } });
      expect(e.stats.quietRounds).toBe(q0 + 1);
      expectAllEqual(await cmd.readOutput(), expectedRead(base, n, () => true), 'quiet read');
      cmd.destroy();
      // One page unmapped in the middle: not quiet; that page misses, its words stay poisoned.
      const hole = base + 13;
      e.pt.unmap(hole, 1);
      const c2 = e.createCommand({ op: 'read', page: base, npages: n, data: poisoned(n) });
      const r = await e.runRound(c2);
      expect(e.stats.quietRounds).toBe(q0 + 1);
      expect(r.faults.map((f) => f.page)).toEqual([hole]);
      expect(r).toMatchObject({ missed: WORDS_PER_PAGE, finished: false });
      expectAllEqual(await c2.readOutput(), expectedRead(base, n, (p) => p !== hole), 'read with a hole');
      // Mapped again: the replay is quiet and completes the command.
      backPage(e, hole);
      expect(await e.runRound(c2)).toMatchObject({ faults: [], finished: true });
      expect(e.stats.quietRounds).toBe(q0 + 2);
      expectAllEqual(await c2.readOutput(), expectedRead(base, n, () => true), 'replay');
      // A write over the same mapped range is never quiet (its report pass marks pages dirty).
      const w = e.createCommand({ op: 'write', page: base, npages: 1, data: poisoned(1) });
      e.pt.map(base, e.pt.lookup(base)!.slot, PTE_WRITE);
      expect(await e.runRound(w)).toMatchObject({ finished: true });
      expect(e.stats.quietRounds).toBe(q0 + 2);
      expect((await e.writebackDirty()).length).toBe(1);
    });
  });

  test('fresh quiet rounds: no done bit written, readDone says all done; reset clears only what was written', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const base = 9000;
      const n = 20;
      for (let p = base; p < base + n; p++) backPage(e, p);
      const cmd = e.createCommand({ op: 'read', page: base, npages: n, data: poisoned(n) });
      expect(await e.runRound(cmd)).toMatchObject({ missed: 0, done: n * 1024, completed: n * 1024, finished: true });
      // The done bitmaps on the GPU were never written; readDone answers from the host.
      const onGpu = new Uint32Array(await e.readGpu(cmd.doneBits, 0, 2 * cmd.doneWords * 4, 'test'));
      expect(onGpu.every((w) => w === 0)).toBe(true);
      expect((await cmd.readDone()).every((w) => w === 0xffffffff)).toBe(true);
      expectAllEqual(await cmd.readOutput(), expectedRead(base, n, () => true), 'fresh quiet read');
      // New bytes in the pages, reset (nothing to clear), the fresh round again: the new bytes.
      for (let p = base; p < base + n; p++) e.sysmem.upload(e.pt.lookup(p)!.slot, patternPage(p, 5));
      cmd.reset();
      expect((await cmd.readDone()).every((w) => w === 0)).toBe(true);
      expect(await e.runRound(cmd)).toMatchObject({ finished: true, completed: n * 1024 });
      expectAllEqual(await cmd.readOutput(), expectedRead(base, n, () => true, 5), 'after reset');
      cmd.destroy();
      // A command whose first round missed: its replay is quiet but not fresh (done bits were
      // written by the first round), and a reset clears them before the command runs again.
      const hole = base + 3;
      const slot = e.pt.lookup(hole)!.slot;
      e.pt.unmap(hole, 1);
      const c2 = e.createCommand({ op: 'read', page: base, npages: n, data: poisoned(n) });
      expect(await e.runRound(c2)).toMatchObject({ missed: WORDS_PER_PAGE, finished: false });
      e.pt.map(hole, slot, 0);
      expect(await e.runRound(c2)).toMatchObject({ completed: WORDS_PER_PAGE, finished: true });
      expectAllEqual(await c2.readOutput(), expectedRead(base, n, () => true, 5), 'quiet replay (not fresh)');
      expect((await c2.readDone()).every((w) => w === 0xffffffff)).toBe(true);
      c2.reset();
      expect((await c2.readDone()).every((w) => w === 0)).toBe(true);
      expect(await e.runRound(c2)).toMatchObject({ completed: n * 1024, finished: true });
      expectAllEqual(await c2.readOutput(), expectedRead(base, n, () => true, 5), 'fresh round after a reset that cleared');
    });
  });

  // A cold round (nothing in the range mapped) runs mirror_cold, a thread per page; its twin
  // here is the same range plus one mapped page past its end, which takes the normal path:
  // the first n pages of both must give the same records, missed words and done bits.
  test('cold rounds: read, write and atomic over a range mapped nowhere: a normal round\'s records, missed count and done state; the replay completes every word', async ({ gpu }) => {
    await withEngine(gpu, { faultSources: 3 }, async (e) => {
      const n = 40; // 5 workgroups of 8 pages: uTLBs 0, 1, 2, 0, 1
      const sorted = (fs: readonly FaultRecord[]): string[] => fs.map((f) => `${key(f)}:${f.protection}`).sort();
      for (const [k, op] of (['read', 'write', 'atomic'] as const).entries()) {
        const base = 2 ** 32 - 20 + k * 4096; // crosses into the high word
        const data = new Uint32Array(n * WORDS_PER_PAGE).map((_, i) => (Math.imul(i, 0x9e3779b1) + k) >>> 0);
        const cmd = e.createCommand({ op, page: base, npages: n, data: op === 'write' ? data : poisoned(n) });
        const twin = e.createCommand({ op, page: base, npages: n + 1, data: op === 'write' ? new Uint32Array([...data, ...poisoned(1)]) : poisoned(n + 1) });
        const s0 = e.stats;
        const r = await e.runRound(cmd);
        expect(e.stats.coldRounds, `${op}: cold`).toBe(s0.coldRounds + 1);
        // The twin: one page mapped (with the op's rights) past the cold range: not cold.
        backPage(e, base + n, op === 'read' ? 0 : op === 'write' ? PTE_WRITE : PTE_WRITE | PTE_EXCLUSIVE, 9);
        const rt = await e.runRound(twin);
        expect(e.stats.coldRounds, `${op}: the twin is not cold`).toBe(s0.coldRounds + 1);
        expect(e.stats.rounds).toBe(s0.rounds + 2);
        // Records: one per page from its workgroup's uTLB, as the twin's first n pages have them.
        const want: string[] = [];
        for (let p = 0; p < n; p++) want.push(`${Math.floor(p / 8) % 3}:${base + p}:${op}:false`);
        expect(sorted(r.faults), `${op}: cold records`).toEqual(want.sort());
        expect(sorted(rt.faults), `${op}: twin records`).toEqual(want);
        expect(r).toMatchObject({ overflow: false, missed: n * WORDS_PER_PAGE, completed: 0, done: 0, finished: false });
        expect(rt).toMatchObject({ overflow: false, missed: n * WORDS_PER_PAGE, completed: WORDS_PER_PAGE, done: WORDS_PER_PAGE, finished: false });
        expect(r.tlb).toMatchObject({ lookups: n * 32, walks: n }); // the report pass's figures, as in any round
        // Done state: none in the cold range, in both; the twin's mapped page all done.
        const done = await cmd.readDone();
        const twinDone = await twin.readDone();
        expectAllEqual(done, new Uint32Array(n * 32), `${op}: cold done bits`);
        expectAllEqual(twinDone, new Uint32Array((n + 1) * 32).fill(0xffffffff, n * 32), `${op}: twin done bits`);
        // Nothing moved: the outputs (or, for a write, the pool) as they were; only the
        // twin's mapped page is dirty.
        if (op !== 'write') expectAllEqual(await cmd.readOutput(), poisoned(n), `${op}: cold output untouched`);
        expect((await e.writebackDirty()).map((d) => d.slot)).toEqual(op === 'read' ? [] : [e.pt.lookup(base + n)!.slot]);
        twin.destroy();
        // Service the cold round's records; the replay (not cold: every page mapped) completes.
        await toyService(e)(r.faults);
        expect(await e.runRound(cmd)).toMatchObject({ faults: [], completed: n * WORDS_PER_PAGE, finished: true });
        expect(e.stats.coldRounds).toBe(s0.coldRounds + 1);
        expectAllEqual(await cmd.readDone(), new Uint32Array(n * 32).fill(0xffffffff), `${op}: done after the replay`);
        const pages = new Map((await e.writebackDirty()).map((d) => [d.slot, new Uint32Array(d.data.buffer, d.data.byteOffset, WORDS_PER_PAGE)]));
        expect(pages.size).toBe(op === 'read' ? 0 : n);
        if (op === 'read') expectAllEqual(await cmd.readOutput(), expectedRead(base, n, () => true), 'read: replayed');
        if (op === 'atomic') expectAllEqual(await cmd.readOutput(), expectedRead(base, n, () => true), 'atomic: old values');
        if (op !== 'read') {
          const want2 = new Uint32Array(n * WORDS_PER_PAGE);
          const got2 = new Uint32Array(n * WORDS_PER_PAGE);
          for (let p = 0; p < n; p++) {
            got2.set(pages.get(e.pt.lookup(base + p)!.slot) ?? poisoned(1), p * WORDS_PER_PAGE);
            for (let w = 0; w < WORDS_PER_PAGE; w++) {
              want2[p * WORDS_PER_PAGE + w] = op === 'write' ? data[p * WORDS_PER_PAGE + w] : (patternWord(base + p, w) + 1) >>> 0;
            }
          }
          expectAllEqual(got2, want2, `${op}: memory after the replay`);
        }
        cmd.destroy();
      }
    });
  });

  test('cold rounds: a replay over a range unmapped again keeps the words done before; a partly mapped range is not cold', async ({ gpu }) => {
    await withEngine(gpu, { faultSources: 2 }, async (e) => {
      const base = 5000;
      const n = 20;
      const early = (p: number): boolean => (p - base) % 3 === 0;
      for (let p = base; p < base + n; p++) if (early(p)) backPage(e, p);
      const cmd = e.createCommand({ op: 'read', page: base, npages: n, data: poisoned(n) });
      const c0 = e.stats.coldRounds;
      const r1 = await e.runRound(cmd);
      expect(e.stats.coldRounds, 'partly mapped: not cold').toBe(c0);
      const done1 = await cmd.readDone();
      // The range unmapped whole (a shootdown): the next round is cold, and carries the done bits.
      e.pt.unmap(base, n);
      const r2 = await e.runRound(cmd);
      expect(e.stats.coldRounds).toBe(c0 + 1);
      expect(r2).toMatchObject({ missed: r1.missed, completed: 0, done: r1.done, finished: false });
      expect(r2.faults.map((f) => `${f.source}:${f.page}`).sort()).toEqual(r1.faults.map((f) => `${f.source}:${f.page}`).sort());
      expectAllEqual(await cmd.readDone(), done1, 'done bits carried through the cold round');
      expectAllEqual(await cmd.readOutput(), expectedRead(base, n, early), 'nothing moved by the cold round');
      // Every page mapped with new bytes: the replay reads only the words not done before.
      for (let p = base; p < base + n; p++) backPage(e, p, 0, 5);
      expect(await e.runRound(cmd)).toMatchObject({ faults: [], finished: true });
      expect(e.stats.coldRounds).toBe(c0 + 1);
      const want = poisoned(n).map((_, i) => {
        const p = base + Math.floor(i / WORDS_PER_PAGE);
        return patternWord(p, i % WORDS_PER_PAGE, early(p) ? 0 : 5);
      });
      expectAllEqual(await cmd.readOutput(), want, 'after the replay');
    });
  });

  test('fault buffer overflow: records dropped, flag set, the replay loop still completes every word', async ({ gpu }) => {
    await withEngine(gpu, { faultCapacity: 8, faultSources: 8 }, async (e) => {
      const base = 2 ** 32 + 40;
      const n = 48;
      const cmd = e.createCommand({ op: 'read', page: base, npages: n, data: poisoned(n) });
      const first = await e.runRound(cmd);
      expect(first.overflow).toBe(true);
      expect(first.faults.length).toBe(8);
      expect(first.missed).toBe(n * 1024);
      await toyService(e)(first.faults);
      const log: FaultRecord[][] = [];
      const out = await runToCompletion(e, cmd, toyService(e, log));
      expect(out.faultRounds).toBeGreaterThan(2);
      expect(log.every((b) => b.length <= 8)).toBe(true);
      expectAllEqual(await cmd.readOutput(), expectedRead(base, n, () => true), 'every word');
      expect(e.stats.overflows).toBeGreaterThan(1);
      // The ring was reset after each drain: a clean round reports nothing.
      const clean = e.createCommand({ op: 'read', page: base, npages: 1 });
      expect(await e.runRound(clean)).toMatchObject({ faults: [], overflow: false, finished: true });
    });
  });

  test('2-D dispatch past maxComputeWorkgroupsPerDimension', async ({ gpu }) => {
    // 4 workgroups per page, at most 3 per dimension: a 3 × 11 grid for 8 pages.
    await withEngine(gpu, { maxWorkgroupsPerDimension: 3, faultSources: 5 }, async (e) => {
      const base = 123456;
      const n = 8;
      const present = (p: number): boolean => (p - base) % 2 === 0;
      for (let p = base; p < base + n; p++) if (present(p)) backPage(e, p);
      const cmd = e.createCommand({ op: 'read', page: base, npages: n, data: poisoned(n) });
      const r = await e.runRound(cmd);
      const want = new Set<string>();
      for (let i = 0; i < n * 1024; i++) {
        const p = base + Math.floor(i / 1024);
        if (!present(p)) want.add(`${faultSourceOf(i, 5)}:${p}:read`);
      }
      expect(r.faults.map(key).sort()).toEqual([...want].sort());
      expectAllEqual(await cmd.readOutput(), expectedRead(base, n, present), '2-D first round');
      await runToCompletion(e, cmd, toyService(e));
      expectAllEqual(await cmd.readOutput(), expectedRead(base, n, () => true), '2-D complete');
    });
  });

  test('replayCommand: service errors propagate; an unresolved fault ends in EFAULT', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const cmd = e.createCommand({ op: 'read', page: 9, npages: 1 });
      const boom = new Error('SIGSEGV for the device');
      await expect(runToCompletion(e, cmd, async () => { throw boom; })).rejects.toBe(boom);
      await expect(runToCompletion(e, cmd, async () => {}, 3)).rejects.toBeErrno('EFAULT');
      // The engine is still usable.
      const ok = await runToCompletion(e, cmd, toyService(e));
      expect(ok).toEqual({ rounds: 2, faultRounds: 1, cancelled: [] });
    });
  });

  test('shootdown: zap + flush + fence; the next round faults again', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const base = 2 ** 33;
      for (let p = 0; p < 4; p++) backPage(e, base + p, PTE_WRITE);
      const cmd = e.createCommand({ op: 'read', page: base, npages: 4 });
      // A round in flight when the shootdown starts.
      const inflight = e.runRound(cmd);
      while (e.stats.dispatches === 0) await new Promise((r) => setTimeout(r, 0));
      const leaves = e.pt.unmap(base + 1, 2); // zap, flush, then wait out the round in flight
      e.flush();
      await e.syncWalkers();
      expect(leaves.map((l) => l.page)).toEqual([base + 1, base + 2]);
      expect((await inflight).finished).toBe(true);
      const again = e.createCommand({ op: 'read', page: base, npages: 4, data: poisoned(4) });
      const r = await e.runRound(again);
      expect(new Set(r.faults.map((f) => f.page))).toEqual(new Set([base + 1, base + 2]));
      expectAllEqual(await again.readOutput(), expectedRead(base, 4, (p) => p === base || p === base + 3), 'after shootdown');
    });
  });

  test('fence resolves after the work submitted before it', async ({ gpu }) => {
    await withEngine(gpu, {}, async (e) => {
      const n = 64;
      for (let p = 0; p < n; p++) e.pt.map(p, p % 16);
      const cmd = e.createCommand({ op: 'read', page: 0, npages: n });
      let settled = false;
      const round = e.runRound(cmd).then((r) => { settled = true; return r; });
      // Wait until the round is submitted (runRound submits, then waits on mapAsync).
      while (e.stats.dispatches === 0) await new Promise((r) => setTimeout(r, 0));
      await e.fence();
      // The dispatch, the copies and the drain are done: the round needs no more GPU work.
      const r = await Promise.race([round, new Promise<null>((res) => setTimeout(() => res(null), 5000))]);
      expect(r, 'round still pending 5 s after its fence').not.toBeNull();
      expect(settled).toBe(true);
    });
  });

  test('device loss: every call fails with ENODEV and host state is kept', async () => {
    const ctx = await requestGpuDevice({ label: 'mirror doomed' });
    const e = await MirrorEngine.create(ctx.device, { apertureSlots: 64, deviceSlots: 64 });
    const slot = backPage(e, 42, PTE_WRITE);
    const cmd = e.createCommand({ op: 'read', page: 42, npages: 1 });
    expect((await e.runRound(cmd)).finished).toBe(true);
    const pending = e.createCommand({ op: 'read', page: 43, npages: 1 });
    e.pt.map(43, 5); // dirty, unflushed
    ctx.device.destroy();
    await ctx.device.lost;
    await expect(e.runRound(pending)).rejects.toBeErrno('ENODEV');
    await expect(runToCompletion(e, pending, toyService(e))).rejects.toBeErrno('ENODEV');
    expect(pending.done).toBe(0);
    await expect(e.fence()).rejects.toBeErrno('ENODEV');
    await expect(e.writebackDirty()).rejects.toBeErrno('ENODEV');
    await expect(e.probe([42])).rejects.toBeErrno('ENODEV');
    await expect(e.sysmem.readback([slot])).rejects.toBeErrno('ENODEV');
    await expect(e.faults.fetch()).rejects.toBeErrno('ENODEV');
    expect(() => e.flush()).toThrow(HmmError);
    expect(() => e.createCommand({ op: 'read', page: 1, npages: 1 })).toThrowErrno('ENODEV');
    expect(() => e.sysmem.upload(slot, new Uint8Array(4096))).toThrowErrno('ENODEV');
    // The shadow is intact and still holds the unflushed change.
    expect(e.pt.lookup(42)?.slot).toBe(slot);
    expect(e.pt.lookup(43)?.slot).toBe(5);
    expect(e.pt.stats.dirtyEntries).toBeGreaterThan(0);
    expect(cmd.done).toBe(1024);
    e.destroy();
  });

  test('device lost with a round in flight: the round fails with ENODEV', async () => {
    const ctx = await requestGpuDevice({ label: 'mirror doomed 2' });
    const e = await MirrorEngine.create(ctx.device, { apertureSlots: 64, deviceSlots: 64, checkErrors: false });
    for (let p = 0; p < 16; p++) e.pt.map(p, p);
    const cmd = e.createCommand({ op: 'read', page: 0, npages: 16 });
    const round = e.runRound(cmd);
    while (e.stats.dispatches === 0) await new Promise((r) => setTimeout(r, 0));
    ctx.device.destroy();
    const got = await round.then((r) => r, (x: unknown) => x);
    // Either the work finished before the loss (then the round is whole), or ENODEV.
    if (got instanceof HmmError) expect(got.code).toBe('ENODEV');
    else expect(got).toMatchObject({ finished: true });
    expect(cmd.done === 0 || cmd.done === 16 * 1024).toBe(true);
    e.destroy();
  });
});
