/**
 * A fatal device fault (a page with no VMA) under the UVM-style servicer cancels the
 * faulting uTLB's work only (uvm_gpu_replayable_faults.c, cancel_faults_precise: a targeted
 * cancel by uTLB), not the whole command: every other uTLB's invocations complete and their
 * writes reach memory; the command then fails with EFAULT naming the uTLB, the page and how
 * many invocations it cancelled. test_hmm's own servicer (the default) keeps dmirror's
 * behaviour: the whole command fails.
 *
 * The engine's write kernel: workgroup k (8 pages of the range) reports as uTLB k % 8, so
 * with a hole at page 28 uTLB 3 is workgroups 3 and 11 (pages 24..31 and 88..95).
 */
import { describe, expect } from 'vitest';
import type { Dmirror } from '../../src/driver/dmirror.js';
import { CancelledError } from '../../src/device/replay.js';
import { PAGE_SIZE, PROT_READ, type Machine } from '../../src/index.js';
import { ANON, RW } from './machines.js';
import type { MachineFactory } from '../support/machine.js';
import { mirrorTest } from '../support/mirror.js';
import { words } from '../../src/device/abi.js';
import { pagesOf, WORDS } from './pages.js';

const N = 128;
const HOLE = 28;
/** uTLB 3's pages: workgroups 3 and 11. */
const CANCELLED = (p: number): boolean => (p >= 24 && p < 32) || (p >= 88 && p < 96);

async function setup(machines: MachineFactory): Promise<{ mirror: Dmirror; proc: ReturnType<Machine['spawn']>; buf: number }> {
  const m = await machines({ devices: 1, systemPages: 8192, aperturePages: 1024, devicePages: 512 });
  const proc = m.spawn();
  const mirror = await m.devices[0].open(proc);
  const buf = await proc.mmap(0, N * PAGE_SIZE, RW, ANON);
  await proc.write(buf, pagesOf(N, (p) => 0x1000 + p));
  await proc.munmap(buf + HOLE * PAGE_SIZE, PAGE_SIZE);
  return { mirror, proc, buf };
}

describe('fatal faults cancel the faulting uTLB, not the command', () => {
  mirrorTest('a write over a hole: uTLB 3 cancelled (EFAULT), every other page written, uTLB 3\'s pages as they were', async ({ machines }) => {
    const { mirror, proc, buf } = await setup(machines);
    mirror.setServicer({ batchSize: 256, replay: 'batch-flush', window: 4096 });
    const e = await mirror.write(buf, pagesOf(N, (p) => 0x5000 + p)).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(CancelledError);
    const c = e as CancelledError;
    expect(c.code).toBe('EFAULT');
    expect(c.cancelled.map((w) => w.source)).toEqual([3]);
    expect([...new Set(c.cancelled[0].faults.map((f) => f.page))]).toEqual([buf / PAGE_SIZE + HOLE]);
    expect(c.cancelled[0].faults[0].reason).toBe('no VMA');
    // Nothing of uTLB 3 had run when the hole's fault came back (round 1): all 16 pages cancelled.
    expect(c.cancelled[0].invocations).toBe(16 * WORDS);
    expect(c.message).toContain(`uTLB 3 (16384 invocations; 0x${(buf + HOLE * PAGE_SIZE).toString(16)} no VMA)`);
    for (let p = 0; p < N; p++) {
      if (p === HOLE) continue;
      const got = words(await proc.read(buf + p * PAGE_SIZE, PAGE_SIZE));
      const want = CANCELLED(p) ? 0x1000 + p : 0x5000 + p;
      const wrong = got.findIndex((v) => v !== want);
      expect(wrong, `page ${p} word ${wrong}`).toBe(-1);
    }
  });

  mirrorTest('the boundary: pages 23 and 32 (uTLBs 2 and 4) written, 24 and 31 (uTLB 3) not; a read of them all fails the same way', async ({ machines }) => {
    const { mirror, proc, buf } = await setup(machines);
    mirror.setServicer({ batchSize: 256, replay: 'batch-flush', window: 4096 });
    await expect(mirror.write(buf, pagesOf(N, (p) => 0x7000 + p))).rejects.toThrow(/EFAULT.*uTLB 3 /);
    const first = async (p: number): Promise<number> => words(await proc.read(buf + p * PAGE_SIZE, PAGE_SIZE))[WORDS - 1];
    expect([await first(23), await first(24), await first(31), await first(32)]).toEqual([0x7000 + 23, 0x1000 + 24, 0x1000 + 31, 0x7000 + 32]);
    await expect(mirror.read(buf, N)).rejects.toThrow(/EFAULT.*uTLB 3 /);
  });

  mirrorTest('a write to a read-only page (mprotect PROT_READ): only the writing uTLB is cancelled; a read of the same range completes', async ({ machines }) => {
    const m = await machines({ devices: 1, systemPages: 8192, aperturePages: 1024, devicePages: 512 });
    const proc = m.spawn();
    const mirror = await m.devices[0].open(proc);
    const buf = await proc.mmap(0, N * PAGE_SIZE, RW, ANON);
    await proc.write(buf, pagesOf(N, (p) => 0x1000 + p));
    await proc.mprotect(buf + 70 * PAGE_SIZE, PAGE_SIZE, PROT_READ); // workgroup 8: uTLB 0 (pages 0..7, 64..71)
    mirror.setServicer({ batchSize: 256, replay: 'batch-flush', window: 4096 });
    const e = await mirror.write(buf, pagesOf(N, (p) => 0x9000 + p)).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(CancelledError);
    const c = e as CancelledError;
    expect(c.cancelled.map((w) => w.source)).toEqual([0]);
    expect(c.cancelled[0].faults.map((f) => [f.page - buf / PAGE_SIZE, f.access, f.reason])).toEqual([[70, 'write', 'write the VMA does not allow']]);
    const uTlb0 = (p: number): boolean => p < 8 || (p >= 64 && p < 72);
    for (let p = 0; p < N; p++) {
      const got = words(await proc.read(buf + p * PAGE_SIZE, PAGE_SIZE));
      const want = uTlb0(p) ? 0x1000 + p : 0x9000 + p;
      expect(got.findIndex((v) => v !== want), `page ${p}`).toBe(-1);
    }
    // Reading is allowed everywhere: a read command over the same range completes.
    const r = await mirror.read(buf, N);
    expect(words(r.data)[70 * WORDS]).toBe(0x1000 + 70);
    expect(words(r.data)[71 * WORDS]).toBe(0x1000 + 71);
  });

  mirrorTest('test_hmm\'s servicer (the default): the whole command fails with EFAULT, as dmirror_fault does', async ({ machines }) => {
    const { mirror, buf } = await setup(machines);
    await expect(mirror.write(buf, pagesOf(N, (p) => 0x5000 + p))).rejects.toThrow(/EFAULT/);
    await expect(mirror.write(buf, pagesOf(N, (p) => 0x5000 + p))).rejects.not.toBeInstanceOf(CancelledError);
  });
});
