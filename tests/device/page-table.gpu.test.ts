/**
 * The mirrored page table: host shadow semantics, and the GPU's own walk (the probe kernel
 * runs translate() from mirror-common.wgsl) agreeing with it at every level index,
 * including page numbers ≥ 2^32 where the walk needs the high word.
 */
import { describe, expect } from 'vitest';
import { MirrorEngine } from '../../src/device/mirror-engine.js';
import {
  GpuPageTable, levelIndices, makeEntry, PT_MAX_PAGE, PTE_DEVICE, PTE_EXCLUSIVE, PTE_HUGE,
  PTE_VALID, PTE_WRITE,
} from '../../src/device/page-table.js';
import { gpuTest as test } from '../support/gpu.js';
import { expectAllEqual } from './mirror-helpers.js';

const L3 = 2 ** 27;
const L2 = 2 ** 18;
const L1 = 2 ** 9;

function pageOf(i3: number, i2: number, i1: number, i0: number): number {
  return i3 * L3 + i2 * L2 + i1 * L1 + i0;
}

describe('GpuPageTable', () => {
  test('level indices split the page number without 32-bit arithmetic', () => {
    expect(levelIndices(0)).toEqual([0, 0, 0, 0]);
    expect(levelIndices(PT_MAX_PAGE - 1)).toEqual([255, 511, 511, 511]);
    expect(levelIndices(pageOf(200, 3, 400, 511))).toEqual([200, 3, 400, 511]);
    expect(levelIndices(2 ** 32)).toEqual([32, 0, 0, 0]);
    expect(makeEntry(2 ** 24 - 1, PTE_VALID | PTE_WRITE)).toBe(0xffffff03);
  });

  test('GPU walk matches the shadow at every level index, incl. pages ≥ 2^32', async ({ gpu }) => {
    const e = await MirrorEngine.create(gpu.device, { apertureSlots: 4096, deviceSlots: 64 });
    try {
      const idx = [0, 1, 255, 256, 510, 511];
      const pages = new Set<number>();
      // Each level's index takes every value of idx while the others vary.
      for (const a of idx) {
        pages.add(pageOf(a % 256, 7, 9, 11)); // root index < 256: page < 2^35
        pages.add(pageOf(33, a, 9, 11));
        pages.add(pageOf(5, 7, a, 11));
        pages.add(pageOf(255, 511, 3, a));
      }
      pages.add(2 ** 32); // lowest page with a high word
      pages.add(2 ** 32 - 1); // highest without
      pages.add(PT_MAX_PAGE - 1);
      const mapped = [...pages];
      const flagSets = [0, PTE_WRITE, PTE_WRITE | PTE_EXCLUSIVE, PTE_DEVICE];
      mapped.forEach((p, k) => {
        const flags = flagSets[k % flagSets.length];
        e.pt.map(p, flags & PTE_DEVICE ? k % 64 : 100 + k, flags);
      });
      // Neighbours that share upper levels but are not mapped must translate to 0.
      const holes = mapped.flatMap((p) => [p + 1, p - 1, p + L1, p + L2])
        .filter((p) => p >= 0 && p < PT_MAX_PAGE && !pages.has(p));
      const probe = [...mapped, ...holes];
      const want = new Uint32Array(probe.map((p) => e.pt.lookup(p)?.entry ?? 0));
      expect(want.slice(0, mapped.length).every((v) => (v & PTE_VALID) !== 0)).toBe(true);
      expect(want.slice(mapped.length).every((v) => v === 0)).toBe(true);
      expectAllEqual(await e.probe(probe), want, 'translate');
      expect(e.pt.stats.leaves).toBe(mapped.length);
    } finally {
      e.destroy();
    }
  });

  test('huge leaf: 512 contiguous slots from one level-1 entry', async ({ gpu }) => {
    const e = await MirrorEngine.create(gpu.device, { apertureSlots: 2048, deviceSlots: 1024 });
    try {
      const base = 2 ** 34 + 7 * 512; // 2 MiB aligned, above 2^32
      e.pt.mapHuge(base, 1024, PTE_WRITE);
      e.pt.mapHuge(base + 512, 512, PTE_DEVICE);
      const probe = [base, base + 1, base + 300, base + 511, base + 512, base + 1023, base + 1024, base - 1];
      const got = await e.probe(probe);
      const want = [
        makeEntry(1024, PTE_VALID | PTE_WRITE | PTE_HUGE), makeEntry(1025, PTE_VALID | PTE_WRITE | PTE_HUGE),
        makeEntry(1324, PTE_VALID | PTE_WRITE | PTE_HUGE), makeEntry(1535, PTE_VALID | PTE_WRITE | PTE_HUGE),
        makeEntry(512, PTE_VALID | PTE_DEVICE | PTE_HUGE), makeEntry(1023, PTE_VALID | PTE_DEVICE | PTE_HUGE), 0, 0,
      ];
      expectAllEqual(got, new Uint32Array(want), 'huge translate');
      expect(e.pt.lookup(base + 300)).toEqual({ entry: want[2], slot: 1324, flags: PTE_VALID | PTE_WRITE | PTE_HUGE, huge: true });
      expect(e.pt.stats).toMatchObject({ leaves: 2, hugeLeaves: 2, tables: 3 });

      expect(() => e.pt.map(base + 5, 3)).toThrowErrno('EEXIST'); // 4 KiB inside a huge leaf
      expect(() => e.pt.mapHuge(base + 1, 0)).toThrowErrno('EINVAL'); // misaligned VA
      expect(() => e.pt.mapHuge(base + 2048, 100)).toThrowErrno('EINVAL'); // misaligned slot
      expect(() => e.pt.mapHuge(base + 2048, 2048)).toThrowErrno('EINVAL'); // past the aperture
      e.pt.map(base + 4096, 9);
      expect(() => e.pt.mapHuge(base + 4096 - (4096 % 512), 0)).toThrowErrno('EEXIST'); // over 4 KiB leaves

      // Zapping one subpage removes (and reports) the whole huge leaf.
      const gone = e.pt.unmap(base + 700, 1);
      expect(gone).toEqual([{ page: base + 512, npages: 512, slot: 512, flags: PTE_VALID | PTE_DEVICE | PTE_HUGE, huge: true }]);
      expect(e.pt.lookup(base + 512)).toBeNull();
      expectAllEqual(await e.probe([base + 512, base + 700, base]), new Uint32Array([0, 0, want[0]]), 'after zap');
    } finally {
      e.destroy();
    }
  });

  test('mapRun writes what a map() per page writes, across tables, and refuses a huge leaf in the way', async ({ gpu }) => {
    const a = new GpuPageTable(gpu.device, { apertureSlots: 4096, deviceSlots: 4096 });
    const b = new GpuPageTable(gpu.device, { apertureSlots: 4096, deviceSlots: 4096 });
    try {
      const base = 512 * 5 - 300; // three level-0 tables, one of them whole
      const n = 1100;
      const slot = (k: number): number => (k * 7) % 4096;
      const flags = (k: number): number => (k % 3 === 0 ? PTE_WRITE : 0) | (k % 5 === 0 ? 0 : PTE_DEVICE);
      a.map(base + 10, 99, 0); // an entry the run replaces
      b.map(base + 10, 99, 0);
      for (let k = 0; k < n; k++) a.map(base + k, slot(k), flags(k));
      b.mapRun(base, n, slot, flags);
      for (let k = -2; k < n + 2; k++) expect(b.lookup(base + k), `page ${k}`).toEqual(a.lookup(base + k));
      expect(b.stats.leaves).toBe(a.stats.leaves);
      expect(b.stats.tables).toBe(a.stats.tables);
      b.mapHuge(2 ** 20, 1024);
      expect(() => b.mapRun(2 ** 20 - 2, 4, slot, flags)).toThrow(/EEXIST/);
      expect(b.lookup(2 ** 20 - 1)?.slot, 'pages before the huge leaf are mapped as map() would').toBe(slot(1));
      expect(() => b.mapRun(0, 2, () => 5000, () => 0)).toThrow(/EINVAL/);
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  test('unmap reports leaves in order and frees empty tables down to the root', async ({ gpu }) => {
    const e = await MirrorEngine.create(gpu.device, { apertureSlots: 4096, deviceSlots: 1024 });
    try {
      const pages = [5, 6, 600, 2 ** 20, 2 ** 33 + 3, 2 ** 33 + 4];
      pages.forEach((p, k) => e.pt.map(p, k));
      e.pt.mapHuge(2 ** 34, 0, PTE_DEVICE);
      // root + (l2, l1, l0) for page 5/6, l0 for 600 (other l1 entry), (l2,l1,l0) for 2^20 … :
      const before = e.pt.stats.tables;
      expect(before).toBeGreaterThan(6);
      const partial = e.pt.unmap(6, 2 ** 20 - 6); // 6 and 600, not 2^20
      expect(partial.map((l) => [l.page, l.slot])).toEqual([[6, 1], [600, 2]]);
      expect(e.pt.stats.tables).toBe(before - 1); // 600's l0 table emptied
      const rest = e.pt.unmap(0, PT_MAX_PAGE);
      expect(rest.map((l) => l.page)).toEqual([5, 2 ** 20, 2 ** 33 + 3, 2 ** 33 + 4, 2 ** 34]);
      expect(rest[4]).toMatchObject({ huge: true, npages: 512, slot: 0 });
      expect(e.pt.stats).toMatchObject({ tables: 1, leaves: 0, hugeLeaves: 0 });
      expectAllEqual(await e.probe([...pages, 2 ** 34 + 1]), new Uint32Array(pages.length + 1), 'all unmapped');
      expect(e.pt.unmap(0, PT_MAX_PAGE)).toEqual([]);
    } finally {
      e.destroy();
    }
  });

  test('unmapRuns merges back-to-back leaves into runs and clears what unmap clears', async ({ gpu }) => {
    const e = await MirrorEngine.create(gpu.device, { apertureSlots: 4096, deviceSlots: 1024 });
    try {
      const base = 2 ** 33 + 500; // the run crosses a level-0 table at 2^33 + 512
      // Pages base..base+29 on slots 10..39 (one run across the table boundary), then a slot
      // gap, a flag change, a page gap, and a huge leaf.
      e.pt.mapRun(base, 30, (k) => 10 + k, () => PTE_WRITE);
      e.pt.map(base + 30, 100, PTE_WRITE); // next page, slot not next: a new run
      e.pt.map(base + 31, 101, 0); // next slot, other flags: a new run
      e.pt.map(base + 33, 102, 0); // page gap
      e.pt.map(base + 34, 103, PTE_DEVICE); // same next slot number, other pool: a new run
      e.pt.mapHuge(2 ** 34, 512, PTE_DEVICE);
      e.flush();
      const end = 2 ** 34 + 512;
      const runs = e.pt.unmapRuns(base, end - base);
      expect(runs.map((r) => [r.page - base, r.npages, r.slot, r.flags & ~PTE_VALID, r.huge])).toEqual([
        [0, 30, 10, PTE_WRITE, false], [30, 1, 100, PTE_WRITE, false], [31, 1, 101, 0, false],
        [33, 1, 102, 0, false], [34, 1, 103, PTE_DEVICE, false],
        [2 ** 34 - base, 512, 512, PTE_DEVICE | PTE_HUGE, true],
      ]);
      expect(e.pt.stats).toMatchObject({ tables: 1, leaves: 0, hugeLeaves: 0 });
      const probe = [...Array.from({ length: 35 }, (_, k) => base + k), 2 ** 34, 2 ** 34 + 511];
      expectAllEqual(await e.probe(probe), new Uint32Array(probe.length), 'all unmapped');
      // A single page takes the same path as unmap(page, 1).
      e.pt.map(base, 7, PTE_WRITE);
      e.pt.map(base + 1, 8, PTE_WRITE);
      expect(e.pt.unmapRuns(base, 1)).toEqual([{ page: base, npages: 1, slot: 7, flags: PTE_VALID | PTE_WRITE, huge: false }]);
      expect(e.pt.lookup(base)).toBeNull();
      expect(e.pt.lookup(base + 1)?.slot).toBe(8);
    } finally {
      e.destroy();
    }
  });

  test('a reused table never shows its previous life on the GPU', async ({ gpu }) => {
    const e = await MirrorEngine.create(gpu.device, { apertureSlots: 1024, deviceSlots: 64 });
    try {
      const a = 2 ** 32 + 1000;
      const b = a + 1; // same level-0 table
      e.pt.map(a, 1);
      e.pt.map(b, 2);
      expect(Array.from(await e.probe([a, b]), (v) => v >>> 8)).toEqual([1, 2]);
      // Freed by unmap (its zeroes never written), then reused for a.
      e.pt.unmap(a, 2);
      e.flush();
      e.pt.map(a, 3);
      expectAllEqual(await e.probe([a, b]), new Uint32Array([makeEntry(3, PTE_VALID), 0]), 'reuse after unmap');
      // Freed by clear(), reused.
      e.pt.map(b, 4);
      await e.probe([a]);
      e.pt.clear();
      expect(e.pt.stats).toMatchObject({ tables: 1, leaves: 0 });
      expectAllEqual(await e.probe([a, b]), new Uint32Array(2), 'after clear');
      e.pt.map(b, 5);
      expectAllEqual(await e.probe([a, b]), new Uint32Array([0, makeEntry(5, PTE_VALID)]), 'reuse after clear');
    } finally {
      e.destroy();
    }
  });

  test('covers: every page of a range has a leaf with the flags (4 KiB and huge, across tables)', ({ gpu }) => {
    const pt = new GpuPageTable(gpu.device, { apertureSlots: 4096 });
    try {
      const base = 512 * 3 - 2; // crosses a level-0 table boundary
      for (let k = 0; k < 6; k++) pt.map(base + k, k, k === 4 ? 0 : PTE_WRITE);
      expect(pt.covers(base, 6, 0)).toBe(true);
      expect(pt.covers(base, 6, PTE_WRITE)).toBe(false); // page base + 4 is read-only
      expect(pt.covers(base, 4, PTE_WRITE)).toBe(true);
      expect(pt.covers(base - 1, 2, 0)).toBe(false); // base - 1 has no leaf
      pt.unmap(base + 3, 1);
      expect(pt.covers(base, 6, 0)).toBe(false);
      expect(pt.covers(base + 4, 2, 0)).toBe(true);
      // A huge leaf covers its 512 pages; the range may run past it into nothing.
      pt.mapHuge(2 ** 20, 1024);
      expect(pt.covers(2 ** 20 + 7, 505, 0)).toBe(true);
      expect(pt.covers(2 ** 20 + 7, 506, 0)).toBe(false);
      expect(pt.covers(2 ** 20, 512, PTE_WRITE)).toBe(false);
    } finally {
      pt.destroy();
    }
  });

  test('poolOf / leafPool: covers(), and whether the leaves are all in the aperture, all in VRAM or both (4 KiB and huge)', ({ gpu }) => {
    const pt = new GpuPageTable(gpu.device, { apertureSlots: 4096 });
    try {
      const base = 512 * 3 - 2;
      for (let k = 0; k < 6; k++) pt.map(base + k, k, (k >= 3 ? PTE_DEVICE : 0) | (k === 5 ? 0 : PTE_WRITE));
      expect(pt.poolOf(base, 3, 0)).toBe('system');
      expect(pt.poolOf(base + 3, 3, 0)).toBe('device');
      expect(pt.poolOf(base + 2, 2, 0)).toBe('mixed');
      expect(pt.poolOf(base + 3, 3, PTE_WRITE)).toBe(null); // base + 5 is read-only
      expect(pt.poolOf(base - 1, 2, 0)).toBe(null); // base - 1 has no leaf
      pt.mapHuge(2 ** 20, 1024, PTE_DEVICE);
      pt.mapHuge(2 ** 20 + 512, 2048);
      expect(pt.poolOf(2 ** 20 + 7, 505, 0)).toBe('device');
      expect(pt.poolOf(2 ** 20 + 500, 20, 0)).toBe('mixed');
      expect(pt.poolOf(2 ** 20 + 512, 512, 0)).toBe('system');
      // leafPool: the same, holes allowed (no leaf at all: 'device').
      expect(pt.leafPool(base - 1, 4)).toBe('system');
      expect(pt.leafPool(base + 3, 600)).toBe('device');
      expect(pt.leafPool(base - 100, 200)).toBe('mixed');
      expect(pt.leafPool(2 ** 19, 100)).toBe('device');
      expect(pt.leafPool(2 ** 20 + 500, 20)).toBe('mixed');
      expect(pt.leafPool(2 ** 20 + 600, 5000)).toBe('system');
      // 'resident': every page has a VRAM leaf with write rights (no access can miss), 4 KiB or huge.
      expect(pt.leafPool(base + 3, 2)).toBe('resident');
      expect(pt.leafPool(base + 3, 3)).toBe('device'); // base + 5 is read-only
      expect(pt.leafPool(base + 2, 2)).toBe('mixed');
      expect(pt.leafPool(2 ** 20 + 7, 505)).toBe('device'); // a huge VRAM leaf without write rights
      pt.mapHuge(2 ** 21, 2048, PTE_DEVICE | PTE_WRITE);
      pt.map(2 ** 21 + 512, 9, PTE_DEVICE | PTE_WRITE);
      expect(pt.leafPool(2 ** 21 + 3, 510)).toBe('resident');
      expect(pt.leafPool(2 ** 21 + 500, 13)).toBe('resident'); // the huge leaf's tail and a 4 KiB one
      expect(pt.leafPool(2 ** 21 + 500, 14)).toBe('device'); // and a hole after them
      expect(() => pt.leafPool(base, 0)).toThrowErrno('EINVAL');
    } finally {
      pt.destroy();
    }
  });

  test('mapsNone: no page of a range has a leaf (4 KiB or huge, any flags), across tables', ({ gpu }) => {
    const pt = new GpuPageTable(gpu.device, { apertureSlots: 4096 });
    try {
      expect(pt.mapsNone(0, 1)).toBe(true); // an empty table
      expect(pt.mapsNone(PT_MAX_PAGE - 4096, 4096)).toBe(true);
      const base = 512 * 3 - 2; // crosses a level-0 table boundary
      pt.map(base + 3, 9, 0); // read-only: still a leaf
      expect(pt.mapsNone(base, 3)).toBe(true);
      expect(pt.mapsNone(base + 4, 600)).toBe(true); // its table exists, nothing mapped past it
      expect(pt.mapsNone(base, 4)).toBe(false);
      expect(pt.mapsNone(base + 3, 1)).toBe(false);
      expect(pt.mapsNone(0, 2 ** 20)).toBe(false);
      pt.unmap(base + 3, 1);
      expect(pt.mapsNone(0, 2 ** 20)).toBe(true);
      // A huge leaf: any page of it in the range counts.
      pt.mapHuge(2 ** 20, 1024);
      expect(pt.mapsNone(2 ** 20 - 10, 10)).toBe(true);
      expect(pt.mapsNone(2 ** 20 - 10, 11)).toBe(false);
      expect(pt.mapsNone(2 ** 20 + 511, 1)).toBe(false);
      expect(pt.mapsNone(2 ** 20 + 512, 100)).toBe(true);
      expect(() => pt.mapsNone(PT_MAX_PAGE - 1, 2)).toThrowErrno('EINVAL');
    } finally {
      pt.destroy();
    }
  });

  test('revocations: moves when an entry loses a right (valid, write, exclusive), never otherwise', ({ gpu }) => {
    const pt = new GpuPageTable(gpu.device, { apertureSlots: 4096, deviceSlots: 4096 });
    try {
      // What the stall gate reads: whether the count moved since the last round (the
      // directory entries a zap frees count too; only the change matters).
      const moved: boolean[] = [];
      const step = (f: () => void): void => {
        const before = pt.revocations;
        f();
        moved.push(pt.revocations !== before);
      };
      step(() => pt.map(10, 1, PTE_WRITE)); // a new leaf
      step(() => pt.map(10, 2, PTE_WRITE)); // moved, same rights (a migration)
      step(() => pt.map(10, 2, PTE_WRITE | PTE_DEVICE)); // to device memory, same rights
      step(() => pt.map(10, 2, PTE_WRITE | PTE_EXCLUSIVE)); // a right added
      step(() => pt.map(11, 4, 0)); // another leaf
      step(() => pt.map(10, 2, PTE_WRITE)); // exclusive taken away: moves
      step(() => pt.map(10, 2, 0)); // made read-only: moves
      step(() => pt.unmap(10, 1)); // unmapped: moves
      step(() => pt.unmap(10, 1)); // nothing there
      step(() => pt.mapHuge(512, 512));
      step(() => pt.unmap(600, 1)); // the huge leaf goes whole: moves
      step(() => pt.clear()); // page 11 still mapped: moves
      step(() => pt.clear()); // nothing mapped
      expect(moved).toEqual([false, false, false, false, false, true, true, true, false, false, true, true, false]);
    } finally {
      pt.destroy();
    }
  });

  test('flush: one writeBuffer per contiguous run of dirty entries', ({ gpu }) => {
    const pt = new GpuPageTable(gpu.device, { apertureSlots: 4096 });
    try {
      const base = 2 ** 33; // a level-0 table's first page
      for (let k = 0; k < 512; k++) pt.map(base + k, k);
      pt.flush();
      const s0 = pt.stats;
      // Remap the whole table: 512 contiguous entries, directories untouched.
      for (let k = 0; k < 512; k++) pt.map(base + k, 1000 + k, PTE_WRITE);
      expect(pt.stats.dirtyEntries).toBe(512);
      expect(pt.flush()).toBe(1);
      expect(pt.stats.writes - s0.writes).toBe(1);
      expect(pt.stats.bytesWritten - s0.bytesWritten).toBe(2048);
      // Every other entry: 256 runs…
      for (let k = 0; k < 512; k += 2) pt.map(base + k, k);
      expect(pt.flush()).toBe(256);
      // …and nothing when nothing changed.
      expect(pt.flush()).toBe(0);
      expect(pt.stats.flushes).toBe(s0.flushes + 2);
    } finally {
      pt.destroy();
    }
    const merged = new GpuPageTable(gpu.device, { apertureSlots: 4096, mergeGap: 1 });
    try {
      for (let k = 0; k < 512; k += 2) merged.map(2 ** 33 + k, k);
      merged.flush();
      for (let k = 0; k < 512; k += 2) merged.map(2 ** 33 + k, k + 1);
      expect(merged.flush()).toBe(1); // gaps of one clean entry merge
    } finally {
      merged.destroy();
    }
  });

  test('the table buffer grows (copy + rebind) and map fails with ENOMEM at the cap', async ({ gpu }) => {
    const e = await MirrorEngine.create(gpu.device, { apertureSlots: 1024, deviceSlots: 64, initialTables: 2, maxTables: 40 });
    try {
      const gen0 = e.pt.generation;
      const pages: number[] = [];
      // Each page in its own level-2 table: 2 tables per page + 1 shared l2 per l3 index.
      for (let k = 0; k < 12; k++) pages.push(pageOf(k, 0, 0, k));
      pages.forEach((p, k) => e.pt.map(p, k));
      expectAllEqual(await e.probe(pages), new Uint32Array(pages.map((_, k) => makeEntry(k, PTE_VALID))), 'after grow');
      expect(e.pt.generation).toBeGreaterThan(gen0);
      expect(e.pt.stats.grows).toBeGreaterThan(0);
      expect(e.pt.stats.tableCapacity).toBeGreaterThanOrEqual(e.pt.stats.tables);
      // 1 + 12 * 3 = 37 tables; a new l3 index needs 3 more: 40 is the cap.
      expect(e.pt.stats.tables).toBe(37);
      e.pt.map(pageOf(100, 0, 0, 0), 50);
      expect(e.pt.stats.tables).toBe(40);
      const before = e.pt.stats;
      expect(() => e.pt.map(pageOf(101, 0, 0, 0), 51)).toThrowErrno('ENOMEM');
      expect(() => e.pt.map(pageOf(100, 0, 1, 0), 51)).toThrowErrno('ENOMEM');
      expect(e.pt.stats).toEqual(before); // nothing changed
      expect(e.pt.lookup(pageOf(101, 0, 0, 0))).toBeNull();
      e.pt.map(pageOf(100, 0, 0, 1), 51); // needs no table: fine
      e.pt.unmap(pageOf(100, 0, 0, 0), 2);
      e.pt.map(pageOf(101, 0, 0, 0), 52); // freed tables are reused
      expect((await e.probe([pageOf(101, 0, 0, 0), pageOf(100, 0, 0, 0)]))[0]).toBe(makeEntry(52, PTE_VALID));
    } finally {
      e.destroy();
    }
  });

  test('bad input is rejected before anything changes', ({ gpu }) => {
    const pt = new GpuPageTable(gpu.device, { apertureSlots: 100, deviceSlots: 10 });
    try {
      expect(() => pt.map(PT_MAX_PAGE, 0)).toThrowErrno('EINVAL');
      expect(() => pt.map(-1, 0)).toThrowErrno('EINVAL');
      expect(() => pt.map(1.5, 0)).toThrowErrno('EINVAL');
      expect(() => pt.map(1, 100)).toThrowErrno('EINVAL'); // past the aperture
      expect(() => pt.map(1, 10, PTE_DEVICE)).toThrowErrno('EINVAL'); // past the device pool
      expect(() => pt.map(1, 0, PTE_HUGE)).toThrowErrno('EINVAL');
      expect(() => pt.map(1, 0, 0x100)).toThrowErrno('EINVAL');
      expect(() => pt.unmap(PT_MAX_PAGE - 1, 2)).toThrowErrno('EINVAL');
      expect(pt.stats).toMatchObject({ tables: 1, leaves: 0, dirtyEntries: 0 });
    } finally {
      pt.destroy();
    }
  });
});
