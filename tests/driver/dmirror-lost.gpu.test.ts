/**
 * Device loss: the machine's devices run on a GPUDevice the test owns, and the test
 * destroys it (which loses it). Every later mirror command must reject with an HmmError
 * (ENODEV or EIO) whose message says the device was lost — not hang, not succeed with
 * garbage — and the CPU side must be intact: the process's memory reads back right,
 * stores, munmap, mprotect, fork and exit work, the frame accounting holds, and
 * machine.destroy() completes.
 */
import { afterEach, describe, expect } from 'vitest';
import {
  checkFrameAccounting, HmmError, MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ,
  PROT_WRITE, type Machine, type Mirror, type Process,
} from '../../src/index.js';
import { requestGpuDevice, type GpuContext } from '../../src/device/gpu.js';
import { WORDS, firstDiff, pagesOf } from './pages.js';
import { machineTest, type MachineFactory } from '../support/machine.js';

const RW = PROT_READ | PROT_WRITE;
const PRIV_ANON = MAP_PRIVATE | MAP_ANONYMOUS;
/** How long a command on a lost device may take to fail. */
const FAIL_WITHIN_MS = 10_000;

/** Settles p, or reports a hang after FAIL_WITHIN_MS. */
async function settle<T>(p: Promise<T>, what: string): Promise<{ ok: true; v: T } | { ok: false; e: unknown }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`${what}: still pending after ${FAIL_WITHIN_MS} ms`)), FAIL_WITHIN_MS); });
  try {
    return await Promise.race([p.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e })), hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** The command rejects, soon, with ENODEV or EIO saying the device was lost. */
async function expectLost(p: Promise<unknown>, what: string): Promise<void> {
  const r = await settle(p, what);
  expect(r.ok, `${what}: succeeded on a lost device`).toBe(false);
  const e = (r as { e: unknown }).e;
  expect(e, what).toBeErrno(['ENODEV', 'EIO']);
  expect((e as HmmError).message, what).toMatch(/lost|destroyed/i);
}

const TAG = (p: number, g: number): number => ((0x4c000000 | (p << 8) | g) >>> 0);

describe('dmirror device loss', () => {
  let ctx: GpuContext | null = null;

  // Each test's own GPU device (it loses it); its machine is the fixture's, torn down after this.
  afterEach(() => {
    ctx?.device.destroy();
    ctx = null;
  });

  async function setup(machines: MachineFactory): Promise<{ m: Machine; proc: Process; fd0: Mirror; fd1: Mirror; buf: number; n: number }> {
    ctx = await requestGpuDevice({ label: 'dmirror-lost test device' });
    const m = await machines({ systemPages: 4096, devicePages: 256, aperturePages: 512, gpuContext: Promise.resolve(ctx) });
    const proc = m.spawn();
    const fd0 = await m.devices[0].open(proc);
    const fd1 = await m.devices[1].open(proc);
    const n = 16;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(buf, pagesOf(n, (p) => TAG(p, 1)));
    // Both mirrors map the buffer and the device wrote part of it: a working setup.
    expect(firstDiff((await fd0.read(buf, n)).data, pagesOf(n, (p) => TAG(p, 1)))).toBeNull();
    await fd1.write(buf + 8 * PAGE_SIZE, pagesOf(8, (k) => TAG(8 + k, 2)));
    expect(firstDiff((await fd0.read(buf, n)).data, pagesOf(n, (p) => TAG(p, p < 8 ? 1 : 2)))).toBeNull();
    checkFrameAccounting(m);
    return { m, proc, fd0, fd1, buf, n };
  }

  async function lose(): Promise<void> {
    const c = ctx!;
    c.device.destroy();
    const info = await c.device.lost;
    expect(info.reason).toBe('destroyed');
  }

  machineTest('later commands reject with ENODEV/EIO saying the device was lost; the CPU side is intact', async ({ machines }) => {
    const { m, proc, fd0, fd1, buf, n } = await setup(machines);
    const want = pagesOf(n, (p) => TAG(p, p < 8 ? 1 : 2));
    await lose();

    // Every GPU command fails, on both devices (they share the lost GPU).
    for (const [i, fd] of [fd0, fd1].entries()) {
      await expectLost(fd.read(buf, n), `dev${i} read`);
      await expectLost(fd.read(buf, 1), `dev${i} read of one mapped page`);
      await expectLost(fd.write(buf, pagesOf(2, () => 0xeeeeeeee)), `dev${i} write`);
      await expectLost(fd.exclusive(buf + 2 * PAGE_SIZE, 1), `dev${i} exclusive`);
    }
    // The CPU side: the memory is as the last successful commands left it.
    expect(firstDiff(await proc.read(buf, n * PAGE_SIZE), want), 'CPU read after loss').toBeNull();
    checkFrameAccounting(m);

    // Stores, DONTNEED, mprotect and munmap of mirrored pages go through the mirrors'
    // invalidation callbacks: they must work with the GPU gone.
    await proc.write(buf, pagesOf(4, (p) => TAG(p, 3)));
    want.set(pagesOf(4, (p) => TAG(p, 3)));
    expect(firstDiff(await proc.read(buf, n * PAGE_SIZE), want), 'CPU store after loss').toBeNull();
    await proc.madvise(buf + 4 * PAGE_SIZE, 2 * PAGE_SIZE, MADV_DONTNEED);
    want.fill(0, 4 * PAGE_SIZE, 6 * PAGE_SIZE);
    await proc.mprotect(buf, 2 * PAGE_SIZE, PROT_READ);
    expect(firstDiff(await proc.read(buf, n * PAGE_SIZE), want), 'after DONTNEED and mprotect').toBeNull();
    checkFrameAccounting(m);
    await proc.munmap(buf + 12 * PAGE_SIZE, 4 * PAGE_SIZE);
    checkFrameAccounting(m);

    // fork: the child sees the data; COW both ways; the child exits.
    const child = await proc.fork();
    expect(firstDiff(await child.read(buf, 12 * PAGE_SIZE), want.subarray(0, 12 * PAGE_SIZE)), 'child after fork').toBeNull();
    await child.write(buf + 8 * PAGE_SIZE, pagesOf(1, () => 0xc0c0c0c0));
    await proc.write(buf + 9 * PAGE_SIZE, pagesOf(1, () => 0xd0d0d0d0));
    want.set(pagesOf(1, () => 0xd0d0d0d0), 9 * PAGE_SIZE);
    expect(firstDiff(await proc.read(buf, 12 * PAGE_SIZE), want.subarray(0, 12 * PAGE_SIZE)), 'parent after COW').toBeNull();
    checkFrameAccounting(m);
    await child.exit();
    checkFrameAccounting(m);

    // Closing the mirrors works; then exit and teardown.
    await fd0.close();
    await fd1.close();
    await proc.munmap(buf, 12 * PAGE_SIZE);
    checkFrameAccounting(m);
    await proc.exit();
    const r = checkFrameAccounting(m);
    expect(r.usedFrames).toBe(1);
    await m.destroy();
    expect(checkFrameAccounting(m).usedFrames).toBe(1);
  });

  machineTest('exit and machine.destroy() with the mirrors still open after the loss', async ({ machines }) => {
    const { m, proc, buf, n } = await setup(machines);
    await lose();
    expect(firstDiff(await proc.read(buf, n * PAGE_SIZE), pagesOf(n, (p) => TAG(p, p < 8 ? 1 : 2)))).toBeNull();
    const child = await proc.fork();
    await child.write(buf, pagesOf(1, () => 0x12121212));
    await child.exit();
    await proc.exit(); // the mirrors' notifiers are released with the GPU gone
    expect(checkFrameAccounting(m).usedFrames).toBe(1);
    await m.destroy();
    expect(checkFrameAccounting(m).usedFrames).toBe(1);
  });

  machineTest('machine.destroy() straight after the loss, with mapped pages and open mirrors', async ({ machines }) => {
    const { m } = await setup(machines);
    await lose();
    await m.destroy();
    const r = checkFrameAccounting(m);
    expect(r.usedFrames).toBe(1);
    for (const pm of m.core.pagemaps.all) expect(pm.refcount.every((c) => c === 0)).toBe(true);
  });

  machineTest.for([['', false], [' (the only mirror of the process)', true]] as const)('migrateToDevice on a lost device fails without taking the pages away from the CPU%s', async ([, alone], { machines }) => {
    const { m, proc, fd0, fd1, buf, n } = await setup(machines);
    const want = pagesOf(n, (p) => TAG(p, p < 8 ? 1 : 2));
    // With dev1's mirror closed nothing else listens to the migration's invalidation.
    if (alone) await fd1.close();
    await lose();
    await expectLost(fd0.migrateToDevice(buf, n), 'migrateToDevice');
    // Whatever it did, no page may now live only in the lost device's memory.
    const got = await settle(proc.read(buf, n * PAGE_SIZE), 'CPU read after the failed migration');
    expect(got.ok, `CPU read after the failed migration: ${got.ok ? '' : String((got as { e: unknown }).e)}`).toBe(true);
    expect(firstDiff((got as { v: Uint8Array }).v, want)).toBeNull();
    // And no device page is left allocated for the failed migration.
    checkFrameAccounting(m);
    for (const pm of m.core.pagemaps.all) expect(pm.refcount.filter((c) => c !== 0).length, 'device pages in use').toBe(0);
  });

  machineTest('a command in flight when the device is lost rejects (it does not hang)', async ({ machines }) => {
    const { m, proc, fd0, fd1 } = await setup(machines);
    const n = 256;
    const big = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(big, pagesOf(n, (p) => TAG(p & 0xff, 5)));
    const inflight = [fd0.read(big, n), fd1.write(big, pagesOf(n, () => 0x0badf00d))];
    ctx!.device.destroy();
    for (const [i, p] of inflight.entries()) {
      const r = await settle(p, `in-flight command ${i}`);
      // It may have finished before the loss; if not, it failed as a lost device.
      if (!r.ok) {
        expect(r.e, `in-flight command ${i}`).toBeErrno(['ENODEV', 'EIO']);
      }
    }
    await expectLost(fd0.read(big, 1), 'read after the in-flight loss');
    // The CPU still reads every page: each holds either the old tag or the device's write.
    const data = new Uint32Array((await proc.read(big, n * PAGE_SIZE)).buffer.slice(0));
    const bad: string[] = [];
    for (let p = 0; p < n && bad.length < 4; p++) {
      const v = data[p * WORDS];
      if (v !== TAG(p & 0xff, 5) && v !== 0x0badf00d) bad.push(`page ${p}: 0x${v.toString(16)}`);
      for (let i = 1; i < WORDS; i++) {
        if (data[p * WORDS + i] !== v) {
          bad.push(`page ${p} torn at word ${i}`);
          break;
        }
      }
    }
    expect(bad).toEqual([]);
    await proc.munmap(big, n * PAGE_SIZE);
    checkFrameAccounting(m);
    await m.destroy();
    expect(checkFrameAccounting(m).usedFrames).toBe(1);
  });

  machineTest('pages in the lost device\'s memory: CPU access fails (no hang, no made-up data); munmap and exit free them', async ({ machines }) => {
    const { m, proc, fd0, buf, n } = await setup(machines);
    expect((await fd0.migrateToDevice(buf, 4)).cpages).toBe(4);
    await lose();
    const r = await settle(proc.read(buf, PAGE_SIZE), 'CPU read of a lost device page');
    if (r.ok) {
      // If the driver kept a copy somewhere it may give the data back, but only the right data.
      expect(firstDiff(r.v, pagesOf(1, () => TAG(0, 1)))).toBeNull();
    } else {
      expect(r.e, String(r.e)).toBeInstanceOf(Error);
    }
    // The pages still in RAM are fine.
    expect(firstDiff(await proc.read(buf + 4 * PAGE_SIZE, (n - 4) * PAGE_SIZE), pagesOf(n - 4, (k) => TAG(4 + k, 4 + k < 8 ? 1 : 2)))).toBeNull();
    checkFrameAccounting(m);
    await proc.munmap(buf, 2 * PAGE_SIZE);
    checkFrameAccounting(m);
    await proc.exit();
    expect(checkFrameAccounting(m).usedFrames).toBe(1);
    for (const pm of m.core.pagemaps.all) expect(pm.refcount.every((c) => c === 0), 'device pages freed').toBe(true);
    await m.destroy();
  });
});
