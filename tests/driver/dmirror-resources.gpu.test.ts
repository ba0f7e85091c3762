/**
 * Resources and clean errors of the mirror driver (issue 7, B.2/B.3/B.5/B.6), through the
 * public API:
 *  - open() of a process of another machine → EINVAL; of something that is not a process →
 *    EBADF; nothing changes on either machine;
 *  - MIGRATE_TO_SYS that runs out of system memory leaves no frame behind;
 *  - a closed mirror's engine is not kept reachable by the GPU device (its lost handler);
 *  - a mirror of an exited process gives its GPU memory back at the notifier's release
 *    (exit_mmap → mmu_notifier_release), its commands then fail as test_hmm's do on a dead
 *    mm (mmget_not_zero fails: EINVAL), and close() still works;
 *  - open() racing machine.destroy() or the process's exit never returns a mirror bound to
 *    freed memory, and leaks no engine;
 *  - close() / machine.destroy() with a command in flight: the command completes (close:
 *    the kernel runs ->release at the last fput, after the ioctl) or fails with an HmmError
 *    (destroy), and nothing is left behind;
 *  - WRITE of a Node Buffer at an odd byte offset or of a SharedArrayBuffer view works;
 *  - a READ whose bounce buffer cannot be allocated is ENOMEM, not a RangeError;
 *  - CHECK_EXCLUSIVE over the whole address space walks the mirror's entries, not every
 *    page number.
 */
import { forge } from '../support/forge.js';
import { afterEach, describe, expect, vi } from 'vitest';
import {
  checkFrameAccounting, HmmError, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE,
  type Machine, type Mirror, type Process,
} from '../../src/index.js';
import type { Dmirror } from '../../src/driver/dmirror.js';
import { HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL } from '../../src/driver/uapi.js';
import type { DmirrorDevice } from '../../src/driver/dmirror-device.js';
import { MirrorEngine } from '../../src/device/mirror-engine.js';
import { firstDiff, pagesOf } from './pages.js';
import { mirrorTest } from '../support/mirror.js';

const RW = PROT_READ | PROT_WRITE;
const PRIV_ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const TASK_SIZE = 2 ** 47;
const DEV_MASK = 0x30;
const TAG = (p: number, g: number): number => ((0x5e000000 | (g << 16) | p) >>> 0);

const dm = (fd: Dmirror): Dmirror => fd;
const dev = (m: Machine, i: number): DmirrorDevice => m.devices[i];

function engineAlive(e: MirrorEngine): boolean {
  try {
    e.checkAlive();
    return true;
  } catch (x) {
    if (x instanceof HmmError && x.code === 'ENODEV') return false;
    throw x;
  }
}

/** Device pages with references and VRAM slots allocated, per device. */
function devicePagesInUse(m: Machine): { refs: number[]; slots: number[] } {
  const devs = [...m.devices];
  return {
    refs: devs.map((d) => d.pagemap.refcount.reduce((a, c) => a + (c !== 0 ? 1 : 0), 0)),
    slots: devs.map((d) => {
      try {
        return d.vram.slots - d.vram.freeSlots;
      } catch (e) {
        if (e instanceof HmmError && e.code === 'ENODEV') return 0;
        throw e;
      }
    }),
  };
}

/** Every engine MirrorEngine.create makes from now on (restore with the returned function). */
function trackEngines(): { engines: MirrorEngine[]; restore: () => void } {
  const engines: MirrorEngine[] = [];
  const create = MirrorEngine.create.bind(MirrorEngine);
  const spy = vi.spyOn(MirrorEngine, 'create').mockImplementation(async (...args) => {
    const e = await create(...args);
    engines.push(e);
    return e;
  });
  return { engines, restore: () => spy.mockRestore() };
}

/**
 * Machines from mirrorTest's factory, on the worker's GPU: each is torn down with the leak
 * check, also those a test destroys itself (the check then finds them empty, or fails).
 */
describe('dmirror resources and clean errors', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  mirrorTest('open(): a process of another machine → EINVAL, not a process → EBADF; nothing changes', async ({ machines }) => {
    const m1 = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
    const m2 = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
    const p2 = m2.spawn();
    const buf = await p2.mmap(0, 4 * PAGE_SIZE, RW, PRIV_ANON);
    await p2.write(buf, pagesOf(4, (p) => TAG(p, 1)));
    // A mirror of p2 on its own machine, so that m2's device is started.
    const own = await m2.devices[0].open(p2);
    const before = { m1: checkFrameAccounting(m1), m2: checkFrameAccounting(m2), intervals: p2.mm.notifiers.intervals.length };
    const { engines, restore } = trackEngines();
    try {
      for (const d of m1.devices) await expect(d.open(p2), `machine 1's dmirror${d.index}.open(process of machine 2)`).rejects.toBeErrno('EINVAL');
      for (const bad of [undefined, null, {}, 5, 'pid 1', m1, Object.create(null) as object]) {
        await expect(m1.devices[0].open(forge<Process>(bad)), `open(${typeof bad})`).rejects.toBeErrno('EBADF');
        await expect(m2.devices[0].open(forge<Process>(bad)), `open(${typeof bad}) on a started device`).rejects.toBeErrno('EBADF');
      }
    } finally {
      restore();
    }
    expect(engines, 'engines created by the refused opens').toEqual([]);
    expect(p2.mm.notifiers.intervals.length, 'notifiers on p2').toBe(before.intervals);
    expect(dev(m1, 0).mirrors.size + dev(m1, 1).mirrors.size, 'mirrors on machine 1').toBe(0);
    expect(dev(m2, 0).mirrors.size, 'mirrors on machine 2').toBe(1);
    expect(checkFrameAccounting(m1)).toEqual(before.m1);
    expect(checkFrameAccounting(m2)).toEqual(before.m2);
    expect(devicePagesInUse(m1)).toEqual({ refs: [0, 0], slots: [0, 0] });
    expect(firstDiff((await own.read(buf, 4)).data, pagesOf(4, (p) => TAG(p, 1)))).toBeNull();
  });

  mirrorTest('MIGRATE_TO_SYS out of system memory moves what fits; no frame or device page left behind', async ({ machines }) => {
    const m = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
    const proc = m.spawn();
    const fd = await m.devices[0].open(proc);
    const n = 16;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    const want = pagesOf(n, (p) => TAG(p, 2));
    await proc.write(buf, want);
    expect((await fd.migrateToDevice(buf, n)).cpages).toBe(n);
    // Fill RAM so that only 5 frames are left: the migration back runs out part way.
    const left = 5;
    const fill = m.ram.freePages - left;
    const filler = await proc.mmap(0, fill * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(filler, pagesOf(fill, (p) => p + 1));
    expect(m.ram.freePages).toBe(left);
    // dmirror_migrate_to_system: a page alloc_page_vma() cannot back is skipped (it stays
    // in device memory); cpages counts what moved.
    expect((await fd.migrateToSystem(buf, n)).cpages, 'pages moved with 5 free frames').toBe(left);
    // Every frame is explained by a page table; none was allocated and dropped on the floor.
    checkFrameAccounting(m);
    expect(m.ram.freePages).toBe(0);
    const local = [...(await fd.snapshot(buf, n))].map((b) => (b & DEV_MASK) === HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL);
    expect(local.filter((x) => x).length, 'pages left in device memory').toBe(n - left);
    expect(devicePagesInUse(m)).toEqual({ refs: [n - left, 0], slots: [n - left, 0] });
    // A CPU fault on a device page with no frame to take it fails, and leaks nothing either.
    const onDevice = local.indexOf(true);
    await proc.read(buf + onDevice * PAGE_SIZE, 4).catch((e: unknown) => e);
    checkFrameAccounting(m);
    expect(devicePagesInUse(m).refs[0]).toBeGreaterThanOrEqual(n - left - 1);
    // The data is intact: the device reads it, and with memory back the CPU gets it back.
    expect(firstDiff((await fd.read(buf, n)).data, want)).toBeNull();
    await proc.munmap(filler, fill * PAGE_SIZE);
    await fd.migrateToSystem(buf, n);
    expect(devicePagesInUse(m)).toEqual({ refs: [0, 0], slots: [0, 0] });
    expect(firstDiff(await proc.read(buf, n * PAGE_SIZE), want)).toBeNull();
    await proc.exit();
    await fd.close();
    await m.destroy();
    const r = checkFrameAccounting(m);
    expect(r.usedFrames, 'used frames after destroy (the zero page)').toBe(1);
    expect(m.ram.freePages).toBe(m.ram.npages - 1);
    expect(devicePagesInUse(m)).toEqual({ refs: [0, 0], slots: [0, 0] });
  });

  mirrorTest('a closed mirror\'s engine is not held by the GPU device\'s lost promise', async ({ machines }) => {
    const m = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
    const proc = m.spawn();
    const buf = await proc.mmap(0, 4 * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(buf, pagesOf(4, (p) => TAG(p, 3)));
    // Warm up: the device is started and the lost promise watched once.
    await (await m.devices[0].open(proc)).close();
    const device = dev(m, 0).gpu.device;
    const lost = device.lost;
    // Every callback attached to device.lost from now on (they live as long as the device).
    const held: unknown[] = [];
    const counting = forge<Promise<GPUDeviceLostInfo>>({
      then(onOk?: (v: GPUDeviceLostInfo) => unknown, onErr?: (e: unknown) => unknown): Promise<unknown> {
        held.push(onOk, onErr);
        return lost.then(onOk, onErr);
      },
    });
    const own = Object.getOwnPropertyDescriptor(device, 'lost');
    Object.defineProperty(device, 'lost', { configurable: true, get: () => counting });
    try {
      for (let i = 0; i < 4; i++) {
        const fd = await m.devices[0].open(proc);
        expect(firstDiff((await fd.read(buf, 4)).data, pagesOf(4, (p) => TAG(p, 3)))).toBeNull();
        await fd.close();
      }
    } finally {
      if (own !== undefined) Object.defineProperty(device, 'lost', own);
      else delete forge<Record<string, unknown>>(device).lost;
    }
    expect(held.filter((f) => f !== undefined).length, 'callbacks left on device.lost by 4 open/read/close').toBe(0);
  });

  // Node only: a forced full GC (v8's --expose-gc, set at run time) shows it directly.
  const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  mirrorTest.skipIf(!isNode)('a closed mirror and its engine are garbage (node: forced GC)', async ({ machines }) => {
    const v8 = await import(/* @vite-ignore */ 'node:v8' as string) as typeof import('node:v8');
    const vm = await import(/* @vite-ignore */ 'node:vm' as string) as typeof import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const m = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
    const proc = m.spawn();
    const buf = await proc.mmap(0, 4 * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(buf, pagesOf(4, (p) => TAG(p, 3)));
    const refs: { what: string; ref: WeakRef<object> }[] = [];
    // (In a function of its own: a suspended async frame may keep its dead locals.)
    const cycle = async (i: number): Promise<void> => {
      const fd = await m.devices[0].open(proc);
      expect(firstDiff((await fd.read(buf, 4)).data, pagesOf(4, (p) => TAG(p, 3)))).toBeNull();
      refs.push({ what: `engine ${i}`, ref: new WeakRef(dm(fd).engine) }, { what: `mirror ${i}`, ref: new WeakRef(fd) });
      await fd.close();
    };
    for (let i = 0; i < 3; i++) await cycle(i);
    // Let the GPU callbacks of the last commands run, then collect (not a timing assertion:
    // nothing is measured, the waits only let queued callbacks go).
    for (let k = 0; k < 3; k++) {
      await dev(m, 0).gpu.device.queue.onSubmittedWorkDone();
      await new Promise((r) => setTimeout(r, 10));
      gc();
    }
    expect(refs.filter((r) => r.ref.deref() !== undefined).map((r) => r.what), 'still reachable after close').toEqual([]);
  });

  mirrorTest('a mirror of an exited process gives its GPU memory back at release; commands then EINVAL; close works', async ({ machines }) => {
    const m = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
    const parent = m.spawn();
    const n = 8;
    const buf = await parent.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    await parent.write(buf, pagesOf(n, (p) => TAG(p, 4)));
    const child = await parent.fork();
    const fd = await m.devices[0].open(child);
    const fd1 = await m.devices[1].open(child);
    expect(firstDiff((await fd.read(buf, n)).data, pagesOf(n, (p) => TAG(p, 4)))).toBeNull();
    // Pages of the child's own (COW broken), so that its exit frees their device pages.
    await child.write(buf, pagesOf(4, (p) => TAG(p, 5)));
    await fd1.migrateToDevice(buf, 4);
    await fd.exclusive(buf + 4 * PAGE_SIZE, 2);
    const engines = [dm(fd).engine, dm(fd1).engine];
    expect(engines.map(engineAlive)).toEqual([true, true]);
    await child.exit();
    // exit_mmap → mmu_notifier_release: the mirrors' GPU buffers go now, not at close.
    expect(engines.map(engineAlive), 'engines after the process exited').toEqual([false, false]);
    expect(devicePagesInUse(m)).toEqual({ refs: [0, 0], slots: [0, 0] });
    checkFrameAccounting(m);
    for (const f of [fd, fd1]) {
      // test_hmm: mmget_not_zero() fails on a dead mm → -EINVAL.
      for (const [name, c] of [
        ['read', () => f.read(buf, 1)], ['write', () => f.write(buf, pagesOf(1, () => 1))],
        ['migrateToDevice', () => f.migrateToDevice(buf, 1)], ['migrateToSystem', () => f.migrateToSystem(buf, 1)],
        ['snapshot', () => f.snapshot(buf, 1)], ['exclusive', () => f.exclusive(buf, 1)],
      ] as [string, () => Promise<unknown>][]) {
        await expect(c(), `${name} on dmirror${dm(f).index} of an exited process`).rejects.toBeErrno('EINVAL');
      }
      // dmirror_check_atomic only looks at the mirror's own table, now empty.
      await f.checkExclusive(buf, n);
      await f.close();
      await expect(f.read(buf, 1), 'read after close').rejects.toBeErrno('EBADF');
    }
    expect(dev(m, 0).mirrors.size + dev(m, 1).mirrors.size).toBe(0);
    // The parent is untouched.
    expect(firstDiff(await parent.read(buf, n * PAGE_SIZE), pagesOf(n, (p) => TAG(p, 4)))).toBeNull();
    checkFrameAccounting(m);
  });

  mirrorTest('open() racing machine.destroy(): ENODEV, no engine left alive', async ({ machines }) => {
    for (const started of [false, true]) {
      const m = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
      const proc = m.spawn();
      if (started) await (await m.devices[0].open(proc)).close();
      const { engines, restore } = trackEngines();
      try {
        const opening = m.devices[0].open(proc).then((fd) => ({ fd }), (e: unknown) => ({ e }));
        await m.destroy();
        const r = await opening;
        expect('e' in r, `open racing destroy (device started: ${started}) returned a mirror`).toBe(true);
        const e = (r as { e: unknown }).e;
        expect(e, String(e)).toBeErrno('ENODEV');
      } finally {
        restore();
      }
      expect(engines.map(engineAlive), 'engines alive after the race').toEqual(engines.map(() => false));
      expect(dev(m, 0).mirrors.size).toBe(0);
      expect(devicePagesInUse(m)).toEqual({ refs: [0, 0], slots: [0, 0] });
      // A device of a destroyed machine stays down.
      await expect(m.devices[0].open(proc), 'open after destroy').rejects.toBeErrno('ENODEV');
    }
  });

  mirrorTest('open() racing the process\'s exit: ESRCH, or a mirror already released; no engine left alive', async ({ machines }) => {
    const m = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
    for (const started of [false, true]) {
      const proc = m.spawn();
      if (started) await (await m.devices[0].open(proc)).close();
      const { engines, restore } = trackEngines();
      let fd: Mirror | null = null;
      try {
        const opening = m.devices[0].open(proc).then((f) => ({ f }), (e: unknown) => ({ e }));
        await proc.exit();
        const r = await opening;
        if ('e' in r) {
          expect(r.e, String(r.e)).toBeErrno('ESRCH');
        } else {
          fd = r.f;
          await expect(r.f.read(0x10000, 1), 'read on a mirror of an exited process').rejects.toBeErrno('EINVAL');
        }
      } finally {
        restore();
      }
      expect(engines.map(engineAlive), `engines alive after open racing exit (device started: ${started})`).toEqual(engines.map(() => false));
      await fd?.close();
      expect(dev(m, 0).mirrors.size).toBe(0);
    }
  });

  mirrorTest('close() with a command in flight: the command completes, then the mirror goes; nothing left', async ({ machines }) => {
    const m = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
    const proc = m.spawn();
    const n = 16;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    const want = pagesOf(n, (p) => TAG(p, 5));
    await proc.write(buf, want);
    for (const op of ['read', 'write', 'migrateToDevice', 'snapshot'] as const) {
      const fd = await m.devices[0].open(proc);
      const engine = dm(fd).engine;
      const cmd: Promise<unknown> = op === 'read' ? fd.read(buf, n)
        : op === 'write' ? fd.write(buf, want)
          : op === 'migrateToDevice' ? fd.migrateToDevice(buf, n) : fd.snapshot(buf, n);
      const settled = cmd.then(() => null, (e: unknown) => e);
      await fd.close();
      const e = await settled;
      // The kernel runs ->release only at the last fput, after the ioctl returned.
      expect(e, `${op} in flight across close(): ${String(e)}`).toBeNull();
      await expect(fd.read(buf, 1), `read after close (${op})`).rejects.toBeErrno('EBADF');
      expect(engineAlive(engine), `${op}: engine after close`).toBe(false);
      expect(dm(fd).aperture.mapped, `${op}: aperture frames mapped after close`).toBe(0);
      checkFrameAccounting(m);
      if (op === 'migrateToDevice') {
        const fd2 = await m.devices[0].open(proc);
        await fd2.migrateToSystem(buf, n);
        await fd2.close();
      }
      expect(devicePagesInUse(m), op).toEqual({ refs: [0, 0], slots: [0, 0] });
      expect(firstDiff(await proc.read(buf, n * PAGE_SIZE), want), op).toBeNull();
    }
  });

  mirrorTest('machine.destroy() with a command in flight: an HmmError, nothing left', async ({ machines }) => {
    for (const op of ['read', 'write', 'migrateToDevice', 'migrateToSystem', 'exclusive'] as const) {
      const m = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
      const proc = m.spawn();
      const n = 16;
      const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
      await proc.write(buf, pagesOf(n, (p) => TAG(p, 6)));
      const fd = await m.devices[0].open(proc);
      if (op === 'migrateToSystem') await fd.migrateToDevice(buf, n);
      const cmd: Promise<unknown> = op === 'read' ? fd.read(buf, n)
        : op === 'write' ? fd.write(buf, pagesOf(n, (p) => TAG(p, 7)))
          : op === 'migrateToDevice' ? fd.migrateToDevice(buf, n)
            : op === 'migrateToSystem' ? fd.migrateToSystem(buf, n) : fd.exclusive(buf, n);
      const settled = cmd.then(() => null, (e: unknown) => e);
      await m.destroy();
      const e = await settled;
      if (e !== null) expect(e, `${op} in flight across destroy(): ${String(e)}`).toBeInstanceOf(HmmError);
      const r = checkFrameAccounting(m);
      expect(r.usedFrames, `${op}: used frames after destroy (the zero page)`).toBe(1);
      expect(devicePagesInUse(m), op).toEqual({ refs: [0, 0], slots: [0, 0] });
      expect(dm(fd).aperture.mapped, `${op}: aperture frames mapped`).toBe(0);
      expect(engineAlive(dm(fd).engine), `${op}: engine after destroy`).toBe(false);
    }
  });

  mirrorTest('WRITE of a Buffer at an odd byte offset and of a SharedArrayBuffer view', async ({ machines }) => {
    const m = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
    const proc = m.spawn();
    const fd = await m.devices[0].open(proc);
    const n = 2;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    const cases: [string, () => Uint8Array][] = [];
    const B = (globalThis as { Buffer?: { alloc(n: number): Uint8Array } }).Buffer;
    if (B !== undefined) {
      cases.push(['Buffer at byte offset 1', () => {
        const big = B.alloc(n * PAGE_SIZE + 1);
        const view = big.subarray(1);
        view.set(pagesOf(n, (p) => TAG(p, 8)));
        return view;
      }]);
    }
    cases.push(['Uint8Array at byte offset 3', () => {
      const big = new Uint8Array(n * PAGE_SIZE + 3);
      big.set(pagesOf(n, (p) => TAG(p, 9)), 3);
      return big.subarray(3);
    }]);
    if (typeof SharedArrayBuffer !== 'undefined') {
      cases.push(['SharedArrayBuffer view', () => {
        const v = new Uint8Array(new SharedArrayBuffer(n * PAGE_SIZE));
        v.set(pagesOf(n, (p) => TAG(p, 10)));
        return v;
      }]);
      cases.push(['SharedArrayBuffer view at byte offset 5', () => {
        const v = new Uint8Array(new SharedArrayBuffer(n * PAGE_SIZE + 5), 5);
        v.set(pagesOf(n, (p) => TAG(p, 11)));
        return v;
      }]);
    }
    for (const [what, make] of cases) {
      const data = make();
      const copy = new Uint8Array(data); // (a Buffer's slice() is a view, not a copy)
      const r = await fd.write(buf, data);
      expect(r.cpages, what).toBe(n);
      expect(firstDiff(await proc.read(buf, n * PAGE_SIZE), copy), what).toBeNull();
      expect(firstDiff(new Uint8Array(data), copy), `${what}: the caller's buffer is left alone`).toBeNull();
    }
    checkFrameAccounting(m);
  });

  mirrorTest('READ, MIGRATE_TO_DEV and EXCLUSIVE of 2^25 pages: ENOMEM (no bounce buffer), nothing changes', async ({ machines }) => {
    const m = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
    const proc = m.spawn();
    const fd = await m.devices[0].open(proc);
    const buf = await proc.mmap(0, 4 * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(buf, pagesOf(4, (p) => TAG(p, 12)));
    const before = checkFrameAccounting(m);
    const snap = await fd.snapshot(buf, 4);
    const low = 16 * PAGE_SIZE; // (a range inside the address space: only its size is wrong)
    for (const [name, c] of [
      ['read', () => fd.read(low, 2 ** 25)], ['migrateToDevice', () => fd.migrateToDevice(low, 2 ** 25)],
      ['exclusive', () => fd.exclusive(low, 2 ** 25)],
    ] as [string, () => Promise<unknown>][]) {
      await expect(c(), `${name} of 2^25 pages`).rejects.toBeErrno('ENOMEM');
    }
    expect(checkFrameAccounting(m)).toEqual(before);
    expect(await fd.snapshot(buf, 4)).toEqual(snap);
    expect(firstDiff((await fd.read(buf, 4)).data, pagesOf(4, (p) => TAG(p, 12)))).toBeNull();
  });

  mirrorTest('CHECK_EXCLUSIVE over the whole address space walks the mirror\'s entries, not every page number', async ({ machines }) => {
    const m = await machines({ systemPages: 1024, devicePages: 64, aperturePages: 512 });
    const proc = m.spawn();
    const fd = await m.devices[0].open(proc);
    const n = 8;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(buf, pagesOf(n, (p) => TAG(p, 13)));
    await fd.read(buf, n);
    await fd.exclusive(buf + 2 * PAGE_SIZE, 2);
    // A walk over page numbers calls lookup() once per page: 2^35 of them. Stop it early.
    const pt = dm(fd).engine.pt;
    const lookup = pt.lookup.bind(pt);
    let lookups = 0;
    vi.spyOn(pt, 'lookup').mockImplementation((page: number) => {
      if (++lookups > 100_000) throw new Error('checkExclusive looked up more than 100000 page numbers');
      return lookup(page);
    });
    const all = TASK_SIZE / PAGE_SIZE;
    await expect(fd.checkExclusive(0, all), 'checkExclusive(whole address space) with 2 exclusive pages').rejects.toBeErrno('EPERM');
    await fd.checkExclusive(0, buf / PAGE_SIZE + 2); // ends right before them
    await fd.checkExclusive(buf + 4 * PAGE_SIZE, all - (buf / PAGE_SIZE + 4)); // starts after them
    await expect(fd.checkExclusive(buf + 3 * PAGE_SIZE, 1), 'the second exclusive page alone').rejects.toBeErrno('EPERM');
    // A CPU write revokes the exclusive entry (MMU_NOTIFY_EXCLUSIVE): then nothing is exclusive.
    await proc.write(buf + 2 * PAGE_SIZE, pagesOf(2, () => 7));
    await fd.checkExclusive(0, all);
    expect(lookups, 'page numbers looked up').toBeLessThanOrEqual(100_000);
  });
});
