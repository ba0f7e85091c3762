/**
 * The application workloads on the CPU side (no GPU): their default inputs are UVM_Smart's,
 * their data come from the seed, every output starts poisoned and the CPU reference
 * overwrites it, the read-back comparison catches one wrong element (and names it), and
 * sizes they cannot be are EINVAL.
 */
import { describe, expect, it } from 'vitest';
import { APPS, appProgram, checkAppRun } from '../../src/workloads/apps/index.js';
import { POISON_F32, POISON_U32, type AppProgram } from '../../src/workloads/apps/program.js';
import { compareWords, referenceOf } from '../../src/workloads/apps/run.js';
import { APP_WORKLOADS, type AppWorkload } from '../../src/workloads/names.js';

/** At its default size: UVM_Smart's input (benchmark_workingset.txt), or ours where it has none. */
const DEFAULT_SHAPES: Record<AppWorkload, string> = {
  bfs: 'graph of 261444 nodes, 1568664 edges',
  hotspot: '1024×1024 grid, 8 iterations (4 launches of 2)',
  backprop: '131056 input units, 16 hidden, 1 output',
  srad: '1024×1024 image, 4 iterations (8 launches)',
  nw: '2 sequences of 1024, 127 launches',
  pathfinder: '50000 columns × 200 rows, pyramid height 10 (20 launches)',
  '2dconv': '1024×1024',
  atax: '1200×1200',
  'fdtd-2d': '1200×1200, 5 time steps (15 launches)',
  gemm: '512×512×512',
  'pointer-chase': '1024 chasers × 64 hops over 2097152 words',
};

const SMALL: Record<AppWorkload, number> = {
  bfs: 0.05, hotspot: 0.1875, backprop: 0.3, srad: 0.1, nw: 0.2, pathfinder: 1, '2dconv': 0.125, atax: 0.1, 'fdtd-2d': 0.1, gemm: 0.1, 'pointer-chase': 0.5,
};

function poisoned(p: AppProgram, mem: Uint32Array): number {
  let n = 0;
  for (const a of p.arrays) {
    for (let k = a.offset; k < a.offset + (a.kind === 'u8' ? Math.ceil(a.length / 4) : a.length); k++) {
      if (mem[k] === POISON_F32 || mem[k] === POISON_U32) n++;
    }
  }
  return n;
}

describe('application workloads (CPU side)', () => {
  it.for(APP_WORKLOADS)('%s: the default size is UVM_Smart\'s input', (name) => {
    expect(APPS[name].name).toBe(name);
    expect(appProgram(name, APPS[name].defaultMiB, 1).shape).toBe(DEFAULT_SHAPES[name]);
    if (APPS[name].uvmSmartMB !== null) expect(APPS[name].defaultMiB).toBe(APPS[name].uvmSmartMB);
    expect(APPS[name].pattern.length).toBeGreaterThan(20);
  });

  it.for(APP_WORKLOADS)('%s: seeded, poisoned outputs all overwritten by the reference, one wrong element caught', async (name) => {
    const p = appProgram(name, SMALL[name], 3);
    const init = p.initial();
    expect(appProgram(name, SMALL[name], 3).initial()).toEqual(init);
    const want = await referenceOf(p, init);
    // Outputs start poisoned (the in-place ones — fdtd-2d, gemm — are inputs too) and the
    // reference writes them; what stays poisoned is what no kernel writes (2dconv's border).
    const before = poisoned(p, init);
    const after = poisoned(p, want);
    if (!['fdtd-2d', 'gemm'].includes(name)) expect(after).toBeLessThan(before);
    expect(want.some((v, k) => v !== init[k])).toBe(true);
    // The read-back comparison: the reference itself passes, one flipped element does not.
    const clean = { counts: { checked: 0, mismatches: 0 }, first: null as string | null };
    compareWords(p, want, 0, want.slice(), clean);
    expect(clean.counts.mismatches).toBe(0);
    expect(clean.counts.checked).toBeGreaterThanOrEqual(p.pages * 1024);
    const last = p.arrays[p.arrays.length - 1];
    const bad = want.slice();
    const k = last.offset + 1;
    bad[k] = want[k] === POISON_U32 ? 1 : POISON_U32;
    const t = { counts: { checked: 0, mismatches: 0 }, first: null as string | null };
    compareWords(p, want, 0, bad, t);
    expect(t.counts.mismatches).toBe(1);
    expect(t.first).toContain(last.name);
  });

  it.for(APP_WORKLOADS)('%s: a size too small for one element is EINVAL naming it', (name) => {
    expect(() => appProgram(name, 0.0001, 1)).toThrowErrno('EINVAL');
    expect(() => appProgram(name, 0.0001, 1)).toThrow(new RegExp(`^EINVAL: ${name}: 0.0001 MiB is too small`));
  });

  it('f32 outputs are compared within their tolerance, NaN never passes', () => {
    const p = appProgram('2dconv', 0.125, 1);
    const want = p.initial();
    const B = p.arrays.find((a) => a.name === 'B')!;
    const f = new Float32Array(want.buffer);
    f[B.offset + 200] = 1.5;
    const near = want.slice();
    new Float32Array(near.buffer)[B.offset + 200] = 1.5 * (1 + 1e-6);
    const t = { counts: { checked: 0, mismatches: 0 }, first: null as string | null };
    compareWords(p, want, 0, near, t);
    expect(t.counts.mismatches).toBe(0);
    const nan = want.slice();
    nan[B.offset + 200] = POISON_F32;
    compareWords(p, want, 0, nan, t);
    expect(t.counts.mismatches).toBe(1);
    expect(t.first).toBe('B[200] (page 16): NaN, want 1.5');
  });

  it('checkAppRun: the device binds too little, a graph too large, too little device memory oversubscribed', () => {
    expect(() => checkAppRun('bfs', 200, 1, { maxBufferBytes: 128 * 2 ** 20 })).toThrow(/bfs at 200 MiB \(graph of 5362954 nodes, 32177724 edges\) needs 199.52 MiB; this device binds at most 128 MiB/);
    expect(() => checkAppRun('hotspot', 12, 1, { maxBufferBytes: 128 * 2 ** 20, oversub: 4 })).toThrowErrno('EINVAL');
    expect(checkAppRun('hotspot', 12, 1, { maxBufferBytes: 128 * 2 ** 20, oversub: 1.25 }).pages).toBe(3072);
    expect(() => checkAppRun('nope', 1, 1, { maxBufferBytes: 1 << 30 })).toThrow(/unknown workload nope/);
  });
});
