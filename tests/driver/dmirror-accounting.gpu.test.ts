/**
 * Frame accounting across the mirror commands: after every step of a mixed sequence
 * (device reads and writes, migration both ways and between devices, exclusive access,
 * fork with a child mirror, snapshot, release, DONTNEED/munmap of device pages, THP
 * splitting by migration, device memory running out) checkFrameAccounting(machine) passes —
 * every RAM frame's and every device page's refcount is what the page tables, page caches
 * and in-flight holders explain — and the data is what the model says. After every process
 * exits, every frame but the zero page is free, every device page is free (pagemap refcount
 * 0 and its VRAM slot back in the pool), and no mirror holds an aperture slot.
 */
import { describe, expect } from 'vitest';
import { mirrorTest } from '../support/mirror.js';
import {
  checkFrameAccounting, HmmError, MADV_DONTNEED, MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE,
  PROT_READ, PROT_WRITE, type Machine, type Mirror, type Process,
} from '../../src/index.js';
import type { Dmirror } from '../../src/driver/dmirror.js';
import { HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL } from '../../src/driver/uapi.js';
import type { DmirrorDevice } from '../../src/driver/dmirror-device.js';
import { WORDS, pagesOf } from './pages.js';

const RW = PROT_READ | PROT_WRITE;
const PRIV_ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const HUGE = 2 * 1024 * 1024;
const DEV_MASK = 0x30;

/** The page tag a model holds: one u32 per page, every word of the page equal to it. */
function expectPages(got: Uint8Array, want: readonly number[], what: string): void {
  expect(got.byteLength, `${what}: bytes`).toBe(want.length * PAGE_SIZE);
  const w = new Uint32Array(got.buffer, got.byteOffset, got.byteLength / 4);
  const bad: string[] = [];
  for (let p = 0; p < want.length && bad.length < 6; p++) {
    for (let i = 0; i < WORDS; i++) {
      if (w[p * WORDS + i] !== want[p]) {
        bad.push(`page ${p} word ${i}: 0x${w[p * WORDS + i].toString(16)}, want 0x${want[p].toString(16)}`);
        break;
      }
    }
  }
  expect(bad, what).toEqual([]);
}

const T = (p: number, g: number): number => ((g << 20) | p) >>> 0;

function devices(m: Machine): DmirrorDevice[] {
  return [...m.devices];
}

/** Device pages in use per device, by pagemap refcount and by VRAM pool. */
function devicePagesInUse(m: Machine): { refs: number[]; slots: number[] } {
  const devs = devices(m);
  return {
    refs: devs.map((d) => d.pagemap.refcount.reduce((a, c) => a + (c !== 0 ? 1 : 0), 0)),
    // A device never opened (or torn down) has no VRAM pool: nothing allocated.
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

/** Everything gone: the zero page is the only used frame, no device page, no aperture slot. */
function expectAllFree(m: Machine, mirrors: readonly Dmirror[], what: string): void {
  const r = checkFrameAccounting(m);
  expect(r.usedFrames, `${what}: used frames`).toBe(1);
  expect(r.swapSlots, `${what}: swap slots`).toBe(0);
  expect(m.ram.freePages, `${what}: free frames`).toBe(m.ram.npages - 1);
  const d = devicePagesInUse(m);
  expect(d.refs, `${what}: device pages with references`).toEqual(d.refs.map(() => 0));
  expect(d.slots, `${what}: VRAM slots allocated`).toEqual(d.slots.map(() => 0));
  for (const fd of mirrors) {
    const dm = fd;
    expect(dm.aperture.mapped, `${what}: aperture frames mapped by dmirror${dm.index}`).toBe(0);
  }
}

describe('dmirror frame accounting', () => {
  mirrorTest('a mixed sequence of mirror commands: accounting after every step, all free at the end', async ({ machines }) => {
    const m = await machines({ systemPages: 8192, devicePages: 1024, aperturePages: 1024 });
    const steps: string[] = [];
    const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
      steps.push(name);
      await fn();
      try {
        checkFrameAccounting(m);
      } catch (e) {
        throw new Error(`after step "${name}" (steps so far: ${steps.join(' → ')}): ${e instanceof Error ? e.message : String(e)}`);
      }
    };

    const proc = m.spawn();
    const fd0 = await m.devices[0].open(proc);
    const fd1 = await m.devices[1].open(proc);
    const mirrors: Dmirror[] = [fd0, fd1];
    const n = 32;
    const size = n * PAGE_SIZE;
    let buf = 0;
    const cur = new Array<number>(n).fill(0);
    const set = (from: number, cnt: number, g: number): void => { for (let p = from; p < from + cnt; p++) cur[p] = T(p, g); };
    const dev = async (fd: Mirror, from: number, cnt: number): Promise<number[]> => [...(await fd.snapshot(buf + from * PAGE_SIZE, cnt))].map((b) => b & DEV_MASK);

    await step('mmap + CPU write', async () => {
      buf = await proc.mmap(0, size, RW, PRIV_ANON);
      await proc.write(buf, pagesOf(n / 2, (p) => T(p, 1)));
      set(0, n / 2, 1);
    });
    await step('dev0 read (half zero pages)', async () => {
      expectPages((await fd0.read(buf, n)).data, cur, 'dev0 read');
    });
    await step('dev0 write of 8 pages', async () => {
      await fd0.write(buf + 12 * PAGE_SIZE, pagesOf(8, (k) => T(12 + k, 2)));
      set(12, 8, 2);
      expectPages(await proc.read(buf, size), cur, 'CPU after dev0 write');
    });
    await step('migrate 16 pages to dev0', async () => {
      const r = await fd0.migrateToDevice(buf, 16);
      expect(r.cpages).toBe(16);
      expectPages(r.data, cur.slice(0, 16), 'migrate data');
      expect(await dev(fd0, 0, 16)).toEqual(new Array(16).fill(HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL));
      expect(devicePagesInUse(m).refs[0]).toBe(16);
    });
    await step('dev1 read faults dev0\'s pages back', async () => {
      expectPages((await fd1.read(buf, n)).data, cur, 'dev1 read');
      expect(await dev(fd0, 0, 16)).toEqual(new Array(16).fill(0));
      expect(devicePagesInUse(m).refs[0]).toBe(0);
    });
    await step('migrate 8 pages to dev1, 8 to dev0', async () => {
      await fd1.migrateToDevice(buf + 16 * PAGE_SIZE, 8);
      await fd0.migrateToDevice(buf + 24 * PAGE_SIZE, 8);
      // Each mirror sees its own device's pages as LOCAL, the other's as not mapped (NONE).
      expect(await dev(fd1, 16, 16)).toEqual([...new Array(8).fill(HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL), ...new Array(8).fill(0)]);
      expect(await dev(fd0, 16, 16)).toEqual([...new Array(8).fill(0), ...new Array(8).fill(HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL)]);
      expect(devicePagesInUse(m).refs).toEqual([8, 8]);
    });
    await step('dev0 writes into its own and dev1\'s device pages', async () => {
      await fd0.write(buf + 20 * PAGE_SIZE, pagesOf(8, (k) => T(20 + k, 3)));
      set(20, 8, 3);
      expectPages((await fd1.read(buf, n)).data, cur, 'dev1 read after');
    });
    await step('migrate everything back to RAM', async () => {
      await fd0.migrateToSystem(buf, n);
      await fd1.migrateToSystem(buf, n);
      expect(await dev(fd0, 0, n)).toEqual(new Array(n).fill(0));
      expect(devicePagesInUse(m)).toEqual({ refs: [0, 0], slots: [0, 0] });
      expectPages(await proc.read(buf, size), cur, 'CPU after migrateToSystem');
    });
    await step('exclusive on 4 pages; CPU write to one; check', async () => {
      const r = await fd0.exclusive(buf + 4 * PAGE_SIZE, 4);
      expectPages(r.data, cur.slice(4, 8), 'exclusive data');
      await expect(fd0.checkExclusive(buf + 4 * PAGE_SIZE, 4)).rejects.toBeErrno('EPERM');
      await proc.write(buf + 5 * PAGE_SIZE, pagesOf(1, () => T(5, 4)));
      set(5, 1, 4);
      expectPages(await proc.read(buf, size), cur, 'CPU after exclusive');
    });
    await step('migrate 8 to dev1 (one exclusive page among them)', async () => {
      await fd1.migrateToDevice(buf, 8);
      expectPages((await fd0.read(buf, n)).data, cur, 'dev0 read');
    });

    let child: Process | null = null;
    let cfd: Dmirror | null = null;
    await step('fork with device pages and exclusive entries', async () => {
      await fd1.migrateToDevice(buf + 8 * PAGE_SIZE, 8);
      child = await proc.fork();
      expectPages(await child.read(buf, size), cur, 'child sees the parent\'s data');
    });
    const ccur = [...cur];
    await step('child mirror on dev0: read, write (COW), migrate', async () => {
      cfd = await m.devices[0].open(child!);
      mirrors.push(cfd);
      expectPages((await cfd.read(buf, n)).data, ccur, 'child mirror read');
      await cfd.write(buf + 2 * PAGE_SIZE, pagesOf(4, (k) => T(2 + k, 5)));
      for (let k = 0; k < 4; k++) ccur[2 + k] = T(2 + k, 5);
      await cfd.migrateToDevice(buf + 16 * PAGE_SIZE, 8);
      expectPages(await child!.read(buf, size), ccur, 'child after its device write');
      expectPages(await proc.read(buf, size), cur, 'parent unchanged by the child');
    });
    await step('parent writes pages shared with the child (COW in device memory)', async () => {
      await fd0.write(buf + 14 * PAGE_SIZE, pagesOf(4, (k) => T(14 + k, 6)));
      set(14, 4, 6);
      expectPages((await fd1.read(buf, n)).data, cur, 'parent dev1 read');
      expectPages((await cfd!.read(buf, n)).data, ccur, 'child mirror read');
    });
    await step('snapshots', async () => {
      for (const fd of [fd0, fd1, cfd!]) {
        const s = await fd.snapshot(buf, n);
        expect(s.length).toBe(n);
        expect([...s].every((b) => b !== 0xff)).toBe(true);
      }
    });
    await step('release dev1: every dev1 page back to RAM in every process', async () => {
      await fd1.release();
      expect(devicePagesInUse(m).refs[1]).toBe(0);
      expectPages(await proc.read(buf, size), cur, 'parent after release');
      expectPages(await child!.read(buf, size), ccur, 'child after release');
    });
    await step('DONTNEED and munmap of device pages', async () => {
      await fd0.migrateToDevice(buf, 8);
      await proc.madvise(buf, 4 * PAGE_SIZE, MADV_DONTNEED);
      for (let p = 0; p < 4; p++) cur[p] = 0;
      await proc.munmap(buf + 4 * PAGE_SIZE, 2 * PAGE_SIZE);
      expectPages((await fd0.read(buf, 4)).data, cur.slice(0, 4), 'zeros after DONTNEED');
      expectPages((await fd1.read(buf + 6 * PAGE_SIZE, n - 6)).data, cur.slice(6), 'rest after munmap');
    });
    await step('child exits with its mirror open', async () => {
      await child!.exit();
      expect(cfd!.aperture.mapped, 'child mirror aperture after exit').toBe(0);
    });
    await step('close the child mirror', async () => {
      await cfd!.close();
      mirrors.splice(mirrors.indexOf(cfd!), 1);
    });

    let huge = 0;
    await step('THP: write, device read, migrate (splits), CPU read back', async () => {
      const raw = await proc.mmap(0, 2 * HUGE, RW, PRIV_ANON);
      huge = Math.ceil(raw / HUGE) * HUGE;
      await proc.madvise(huge, HUGE, MADV_HUGEPAGE);
      const hn = HUGE / PAGE_SIZE;
      await proc.write(huge, pagesOf(hn, (p) => T(p, 7)));
      const want = Array.from({ length: hn }, (_, p) => T(p, 7));
      expectPages((await fd0.read(huge, hn)).data, want, 'THP read');
      const r = await fd1.migrateToDevice(huge, hn);
      expect(r.cpages).toBe(hn);
      await fd0.write(huge, pagesOf(16, (p) => T(p, 8)));
      for (let p = 0; p < 16; p++) want[p] = T(p, 8);
      expectPages(await proc.read(huge, HUGE), want, 'THP CPU read back');
      await proc.munmap(raw, 2 * HUGE);
    });

    await step('parent exits with its mirrors open', async () => {
      await proc.exit();
    });
    expectAllFree(m, mirrors, 'after every process exited');
    for (const fd of mirrors) await fd.close();
    await m.destroy();
    expectAllFree(m, [], 'after machine.destroy()');
  });

  mirrorTest('migrateToDevice of more pages than the device has: ENOMEM or a partial move, nothing leaks', async ({ machines }) => {
    const m = await machines({ systemPages: 4096, devicePages: 8, aperturePages: 512 });
    const proc = m.spawn();
    const fd = await m.devices[0].open(proc);
    const n = 16;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    const want = Array.from({ length: n }, (_, p) => T(p, 1));
    await proc.write(buf, pagesOf(n, (p) => T(p, 1)));
    let code = 'ok';
    try {
      await fd.migrateToDevice(buf, n);
    } catch (e) {
      expect(e, String(e)).toBeInstanceOf(HmmError);
      code = (e as HmmError).code;
    }
    expect(['ENOMEM', 'ENOENT', 'ok'], `migrateToDevice of 16 pages into 8: ${code}`).toContain(code);
    // Device pages referenced = device pages the process maps; nothing allocated beside.
    checkFrameAccounting(m);
    const snap = [...(await fd.snapshot(buf, n))].map((b) => b & DEV_MASK);
    const onDevice = snap.filter((b) => b === HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL).length;
    const use = devicePagesInUse(m);
    expect(use.refs[0], `device pages referenced (${onDevice} mapped)`).toBe(onDevice);
    expect(use.slots[0], `VRAM slots allocated (${onDevice} mapped)`).toBe(onDevice);
    expectPages(await proc.read(buf, n * PAGE_SIZE), want, 'CPU read');
    // The device memory is usable: after giving it back, 8 pages fit.
    await fd.migrateToSystem(buf, n);
    expect((await fd.migrateToDevice(buf, 8)).cpages).toBe(8);
    expectPages(await proc.read(buf, n * PAGE_SIZE), want, 'CPU read after');
    checkFrameAccounting(m);
    await proc.exit();
    expectAllFree(m, [fd], 'after exit');
    await fd.close();
  });

  mirrorTest('many short-lived processes with mirrors: nothing accumulates', async ({ machines }) => {
    const m = await machines({ systemPages: 4096, devicePages: 64, aperturePages: 512 });
    const parent = m.spawn();
    const pfd = [await m.devices[0].open(parent), await m.devices[1].open(parent)];
    const n = 8;
    const buf = await parent.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    const want = Array.from({ length: n }, (_, p) => T(p, 1));
    await parent.write(buf, pagesOf(n, (p) => T(p, 1)));
    await pfd[0].migrateToDevice(buf, 4);
    for (let i = 0; i < 6; i++) {
      const child = await parent.fork();
      const cfd = await m.devices[i % 2].open(child);
      expectPages((await cfd.read(buf, n)).data, want, `child ${i} read`);
      // (Into one of the pages still in RAM: a device write into the parent's device pages,
      // COW-shared with the child, is dmirror-coherence's business.)
      if (i % 2 === 0) await cfd.write(buf + (4 + (i % 4)) * PAGE_SIZE, pagesOf(1, () => T(i, 9)));
      // Migration takes pages shared with the parent along: the parent maps them too.
      if (i % 2 === 1) await cfd.migrateToDevice(buf, n);
      if (i % 3 === 0) await cfd.close();
      await child.exit();
      if (i % 3 !== 0) await cfd.close();
      checkFrameAccounting(m);
      // What is left in device memory is exactly what the parent maps there.
      const mapped = await Promise.all(pfd.map(async (fd) => [...(await fd.snapshot(buf, n))].filter((b) => (b & DEV_MASK) === HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL).length));
      const use = devicePagesInUse(m);
      expect(use.refs, `after child ${i}: device pages referenced, parent maps ${mapped}`).toEqual(mapped);
      expect(use.slots, `after child ${i}: VRAM slots allocated, parent maps ${mapped}`).toEqual(mapped);
      expectPages(await parent.read(buf, n * PAGE_SIZE), want, `parent after child ${i}`);
    }
    await parent.exit();
    expectAllFree(m, pfd, 'after the parent exited');
    for (const fd of pfd) await fd.close();
  });
});
