/**
 * An application kernel's invocation is a GPU thread of its own, so how long one invocation
 * loops never cuts another short. llvmpipe (gallivm, lp_bld_limits.h
 * LP_MAX_TGSI_LOOP_ITERATIONS) ends every loop of a shader invocation once 65,535 loop
 * iterations have run in it, all loops together: with 32 invocations to a thread, ATAX's
 * column kernel at its published size (1200 rows: 2,400 iterations an invocation) ran out
 * after 27 invocations — the 28th summed a truncated column (a wrong y, silently) and the
 * last 4 never ran (missed with no fault recorded: EIO).
 *
 * Here the real ATAX kernels on a 1100 × 32 matrix (a few pages): the column kernel has 32
 * invocations of 2,200 loop iterations each (70,400 for one thread of 32), the row kernel
 * 1100 short ones. y and tmp start poisoned; every element is checked against the CPU.
 */
import { describe, expect } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { appKernels } from '../../src/workloads/apps/kernels.js';
import { ATAX } from '../../src/workloads/apps/polybench.js';
import { f32, fr, layout, POISON_F32, type AppProgram } from '../../src/workloads/apps/program.js';
import { runApp } from '../../src/workloads/apps/run.js';
import { mirrorTest as test } from '../support/mirror.js';

/** PolyBench's atax (tmp = A·x, y = Aᵀ·tmp) on an nx × ny matrix. */
function ataxProgram(nx: number, ny: number): AppProgram {
  const { arrays, pages, at } = layout([
    { name: 'A', length: nx * ny, kind: 'f32' },
    { name: 'x', length: ny, kind: 'f32' },
    { name: 'y', length: ny, kind: 'f32', tol: 1e-4 },
    { name: 'tmp', length: nx, kind: 'f32', tol: 1e-4 },
  ]);
  const [A, x, y, tmp] = [at.A.offset, at.x.offset, at.y.offset, at.tmp.offset];
  const params = [nx, ny, A, x, y, tmp];
  return {
    shape: `${nx}×${ny}`, arrays, pages, kernelWrites: [true, true],
    initial() {
      const mem = new Uint32Array(pages * 1024);
      const f = f32(mem);
      for (let j = 0; j < ny; j++) f[x + j] = j * Math.PI;
      for (let i = 0; i < nx; i++) for (let j = 0; j < ny; j++) f[A + i * ny + j] = ((i % 97) * (j + 1)) / ny;
      mem.fill(POISON_F32, y, y + ny);
      mem.fill(POISON_F32, tmp, tmp + nx);
      return mem;
    },
    async run(host) {
      await host.launch(0, params, nx);
      await host.launch(1, params, ny);
    },
    cpu(kernel, _p, _inv, mem) {
      const f = f32(mem);
      if (kernel === 0) {
        for (let i = 0; i < nx; i++) {
          let s = 0;
          for (let j = 0; j < ny; j++) s = fr(s + fr(f[A + i * ny + j] * f[x + j]));
          f[tmp + i] = s;
        }
        return;
      }
      for (let j = 0; j < ny; j++) {
        let s = 0;
        for (let i = 0; i < nx; i++) s = fr(s + fr(f[A + i * ny + j] * f[tmp + i]));
        f[y + j] = s;
      }
    },
  };
}

describe('application kernels: one GPU thread per invocation', () => {
  test('ATAX 1100×32: 32 column invocations of 2,200 loop iterations each all complete, every element right', async ({ machines }) => {
    const program = ataxProgram(1100, 32);
    const m = await machines({ devices: 1, aperturePages: 512, systemPages: 4 * program.pages + 4096 });
    const proc = m.spawn();
    const mirror = await m.devices[0].open(proc);
    const addr = await proc.mmap(0, program.pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const r = await runApp(mirror, ATAX, program, addr);
    expect(r.firstMismatch).toBeNull();
    expect(r.verify.mismatches).toBe(0);
    expect(r.verify.checked).toBe(program.pages * 1024);
    expect(r.commands).toBe(2);
    expect(r.faultRounds).toBeGreaterThan(0);
  });

  test('a command of its own invocation count: EINVAL without a kernel of its own, past npages × 1024 or below 1', async ({ machines }) => {
    const m = await machines({ devices: 1, aperturePages: 512, systemPages: 4096 });
    const mirror = await m.devices[0].open(m.spawn());
    const engine = mirror.engine;
    const [kernel] = await appKernels(engine, ATAX);
    expect(() => engine.createCommand({ op: 'read', page: 16, npages: 2, invocations: 10 })).toThrow(/EINVAL/);
    expect(() => engine.createCommand({ op: 'read', page: 16, npages: 2, kernel, ioWords: 64, invocations: 2049 })).toThrow(/EINVAL/);
    expect(() => engine.createCommand({ op: 'read', page: 16, npages: 2, kernel, ioWords: 64, invocations: 0 })).toThrow(/EINVAL/);
    const cmd = engine.createCommand({ op: 'read', page: 16, npages: 2, kernel, ioWords: 64, invocations: 2048 });
    expect(cmd.words).toBe(2048);
    cmd.destroy();
  });

  test('a fault buffer of 8 records: rounds that overflow it replay what it dropped, and every element is still right', async ({ machines }) => {
    const program = ataxProgram(200, 96);
    const m = await machines({ devices: 1, aperturePages: 512, systemPages: 4 * program.pages + 4096, faultRecords: 8 });
    const proc = m.spawn();
    const mirror = await m.devices[0].open(proc);
    const addr = await proc.mmap(0, program.pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const r = await runApp(mirror, ATAX, program, addr);
    expect(mirror.engine.stats.overflows).toBeGreaterThan(0);
    expect(r.firstMismatch).toBeNull();
    expect(r.verify.mismatches).toBe(0);
    expect(r.verify.checked).toBe(program.pages * 1024);
  });

  test('faultRecords outside [1, 2^20]: EINVAL', async ({ machines }) => {
    await expect(machines({ devices: 1, faultRecords: 0 })).rejects.toThrow(/EINVAL/);
  });
});
