/**
 * The dmirror ioctls' errors, as lib/test_hmm.c and the mm give them, and "nothing
 * changed": after every rejected command the process's memory (CPU contents, page table,
 * VMAs), what a SNAPSHOT reports and the frame accounting are as before, and the mirror
 * still works.
 *
 *  - bad address / page count (misaligned, negative, zero, NaN, non-integer, past the end
 *    of the address space, not a number at all) → EINVAL, for every command;
 *  - WRITE data that is not whole pages (or not bytes) → EINVAL;
 *  - READ of PROT_NONE or of a hole → EFAULT; WRITE to PROT_READ → EPERM;
 *  - MIGRATE_TO_DEV over a hole or PROT_NONE → EINVAL; of MAP_SHARED anon → ENOENT;
 *  - any command on a closed mirror → EBADF; open() on an exited process → ESRCH; a command
 *    on a mirror whose process exited → EINVAL (test_hmm: mmget_not_zero() fails).
 */
import { describe, expect } from 'vitest';
import {
  checkFrameAccounting, HmmError, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_NONE,
  PROT_READ, PROT_WRITE, type Errno, type Machine, type Mirror, type Process,
} from '../../src/index.js';
import { HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, type MirrorResult } from '../../src/driver/uapi.js';
import { pageTableSnapshot, vmaList } from '../mm/helpers.js';
import { WORDS, firstDiff, pagesOf } from './pages.js';
import { mirrorTest } from '../support/mirror.js';

const RW = PROT_READ | PROT_WRITE;
const PRIV_ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const TASK_SIZE = 2 ** 47;

describe('dmirror errors', () => {
  // Both devices (test_hmm's two private devices); the machine is the fixture's, torn down
  // with the leak check after the mirrors close.
  mirrorTest.override('machineOptions', { devices: 2 });
  let m: Machine;
  let proc: Process;
  let fd: Mirror;
  let fd1: Mirror;
  let opened: Mirror[] = [];
  /** Regions of the process, each with what its pages hold (null: not readable by the CPU). */
  let rw: number; // 4 pages RW, each page p holds 0xA000_0000 | p
  let ro: number; // 4 pages PROT_READ with contents
  let none: number; // 4 pages PROT_NONE with contents
  let fresh: number; // 4 pages RW never touched
  let hole: number; // 2 pages unmapped between two mapped pages: [hole - 1 page, hole + 2 pages]

  const RW_TAG = (p: number): number => (0xa0000000 | p) >>> 0;
  const RO_TAG = (p: number): number => (0xb0000000 | p) >>> 0;
  const NONE_TAG = (p: number): number => (0xc0000000 | p) >>> 0;

  /** A destination of 4 pages less a byte → EFAULT; a Uint32Array → EINVAL (`call` gets it untyped). */
  async function rejectsBadInto(call: (into: unknown) => Promise<unknown>, what: string): Promise<void> {
    await rejects(() => call(new Uint8Array(4 * PAGE_SIZE - 1)), 'EFAULT', `${what}(into: 4 pages - 1 byte)`);
    await rejects(() => call(new Uint32Array(4 * PAGE_SIZE)), 'EINVAL', `${what}(into: a Uint32Array)`);
  }

  /**
   * `call` over rw's 4 pages into a poisoned buffer one page longer than the range, at an
   * offset in its ArrayBuffer: `data` is exactly the view of the range's pages, every word
   * right, nothing around it written.
   */
  async function expectIntoPoisoned(call: (into: Uint8Array) => Promise<MirrorResult & { data: Uint8Array }>): Promise<void> {
    const backing = new Uint8Array(6 * PAGE_SIZE).fill(0xee);
    const r = await call(backing.subarray(PAGE_SIZE));
    expect(r.cpages).toBe(4);
    expect(r.data.buffer).toBe(backing.buffer);
    expect(r.data.byteOffset).toBe(PAGE_SIZE);
    expect(r.data.length).toBe(4 * PAGE_SIZE);
    expect(firstDiff(r.data, pagesOf(4, RW_TAG)), 'the range, every word').toBeNull();
    const poison = new Uint8Array(PAGE_SIZE).fill(0xee);
    expect(firstDiff(backing.subarray(0, PAGE_SIZE), poison), 'before the view').toBeNull();
    expect(firstDiff(backing.subarray(5 * PAGE_SIZE), poison), 'past the range').toBeNull();
  }

  mirrorTest.beforeEach(async ({ machine, proc: p, mirror }) => {
    m = machine;
    proc = p;
    fd = mirror;
    fd1 = await m.devices[1].open(proc);
    opened = [fd, fd1];
    rw = await proc.mmap(0, 4 * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(rw, pagesOf(4, RW_TAG));
    ro = await proc.mmap(0, 4 * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(ro, pagesOf(4, RO_TAG));
    await proc.mprotect(ro, 4 * PAGE_SIZE, PROT_READ);
    none = await proc.mmap(0, 4 * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(none, pagesOf(4, NONE_TAG));
    await proc.mprotect(none, 4 * PAGE_SIZE, PROT_NONE);
    fresh = await proc.mmap(0, 4 * PAGE_SIZE, RW, PRIV_ANON);
    const h = await proc.mmap(0, 4 * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(h, pagesOf(4, (p) => 0xd0000000 | p));
    hole = h + PAGE_SIZE;
    await proc.munmap(hole, 2 * PAGE_SIZE);
    // Give the mirror something mapped already, so "nothing changed" covers its entries too.
    await fd.read(rw, 4);
    checkFrameAccounting(m);
  });

  mirrorTest.afterEach(async () => {
    const fds = opened;
    opened = [];
    for (const f of fds) await f.close();
  });

  interface State {
    cpu: Uint8Array[];
    pt: string[];
    vmas: string;
    snap: Uint8Array[];
  }

  /** Everything a rejected command must leave alone. */
  async function state(): Promise<State> {
    const cpu = [
      await proc.read(rw, 4 * PAGE_SIZE), await proc.read(ro, 4 * PAGE_SIZE), await proc.read(fresh, 4 * PAGE_SIZE),
      await proc.read(hole - PAGE_SIZE, PAGE_SIZE), await proc.read(hole + 2 * PAGE_SIZE, PAGE_SIZE),
    ];
    const pt = pageTableSnapshot(proc.mm);
    const vmas = JSON.stringify(vmaList(proc));
    const snap = [
      await fd.snapshot(rw, 4), await fd.snapshot(ro, 4), await fd.snapshot(none, 4), await fd.snapshot(fresh, 4),
      await fd.snapshot(hole - PAGE_SIZE, 4),
    ];
    return { cpu, pt, vmas, snap };
  }

  async function expectSame(before: State, what: string): Promise<void> {
    expect(pageTableSnapshot(proc.mm), `${what}: page table`).toEqual(before.pt);
    expect(JSON.stringify(vmaList(proc)), `${what}: VMAs`).toBe(before.vmas);
    const after = await state();
    for (let i = 0; i < before.snap.length; i++) expect([...after.snap[i]], `${what}: snapshot ${i}`).toEqual([...before.snap[i]]);
    for (let i = 0; i < before.cpu.length; i++) expect(firstDiff(after.cpu[i], before.cpu[i]), `${what}: CPU contents ${i}`).toBeNull();
    checkFrameAccounting(m);
  }

  /** The command rejects with `code`, nothing changed, and the mirror still reads correctly. */
  async function rejects(call: () => Promise<unknown>, code: Errno, what: string): Promise<void> {
    const before = await state();
    await expect(call(), what).rejects.toBeErrno(code);
    await expectSame(before, what);
    const r = await fd.read(rw, 4);
    expect(firstDiff(r.data, pagesOf(4, RW_TAG)), `${what}: a read afterwards`).toBeNull();
  }

  mirrorTest('the initial state is what the tests assume', async () => {
    const s = await state();
    expect(firstDiff(s.cpu[0], pagesOf(4, RW_TAG))).toBeNull();
    expect(firstDiff(s.cpu[1], pagesOf(4, RO_TAG))).toBeNull();
    expect(firstDiff(s.cpu[2], new Uint8Array(4 * PAGE_SIZE))).toBeNull();
    // And the PROT_NONE contents are there, once readable.
    await proc.mprotect(none, 4 * PAGE_SIZE, PROT_READ);
    expect(firstDiff(await proc.read(none, 4 * PAGE_SIZE), pagesOf(4, NONE_TAG))).toBeNull();
  });

  const BAD_ADDR: [string, (base: number) => unknown][] = [
    ['base + 1', (b) => b + 1], ['base + 2048', (b) => b + 2048], ['base + 4095', (b) => b + 4095],
    ['-4096', () => -4096], ['NaN', () => NaN], ['base + 0.5', (b) => b + 0.5], ['Infinity', () => Infinity],
    ['TASK_SIZE', () => TASK_SIZE], ['2^53', () => 2 ** 53], ['a string', (b) => String(b)], ['undefined', () => undefined],
  ];
  const BAD_NPAGES: [string, unknown][] = [
    ['0', 0], ['-1', -1], ['NaN', NaN], ['1.5', 1.5], ['Infinity', Infinity], ['-Infinity', -Infinity],
    ['2^47 (past the end)', 2 ** 47], ['2^53 + 2', 2 ** 53 + 2], ['"1"', '1'], ['null', null],
  ];
  type Cmd = 'read' | 'migrateToDevice' | 'migrateToSystem' | 'snapshot' | 'exclusive' | 'checkExclusive';
  const CMDS: Cmd[] = ['read', 'migrateToDevice', 'migrateToSystem', 'snapshot', 'exclusive', 'checkExclusive'];

  function call(f: Mirror, cmd: Cmd, addr: unknown, npages: unknown): Promise<unknown> {
    return (f[cmd] as (a: unknown, n: unknown) => Promise<unknown>).call(f, addr, npages);
  }

  mirrorTest('a bad address → EINVAL, for every command, and nothing changed', async () => {
    const before = await state();
    for (const cmd of CMDS) {
      for (const [name, addr] of BAD_ADDR) await expect(call(fd, cmd, addr(rw), 1), `${cmd}(${name}, 1)`).rejects.toBeErrno('EINVAL');
    }
    for (const [name, addr] of BAD_ADDR) await expect(fd.write(addr(rw) as number, pagesOf(1, RW_TAG)), `write(${name})`).rejects.toBeErrno('EINVAL');
    await expectSame(before, 'after bad addresses');
  });

  mirrorTest('a zero, negative, NaN, non-integer or too large page count → EINVAL, for every command, and nothing changed', async () => {
    const before = await state();
    for (const cmd of CMDS) {
      for (const [name, n] of BAD_NPAGES) await expect(call(fd, cmd, rw, n), `${cmd}(rw, ${name})`).rejects.toBeErrno('EINVAL');
    }
    // A range that runs past the end of the address space.
    for (const cmd of CMDS) await expect(call(fd, cmd, TASK_SIZE - PAGE_SIZE, 2), `${cmd}(TASK_SIZE - 1 page, 2)`).rejects.toBeErrno('EINVAL');
    await expect(fd.write(TASK_SIZE - PAGE_SIZE, pagesOf(2, RW_TAG)), 'write(TASK_SIZE - 1 page, 2 pages)').rejects.toBeErrno('EINVAL');
    await expectSame(before, 'after bad page counts');
  });

  mirrorTest('write data that is not whole pages → EINVAL, and nothing changed', async () => {
    const before = await state();
    const bad: [string, unknown][] = [
      ['0 bytes', new Uint8Array(0)], ['1 byte', new Uint8Array(1).fill(0xee)], ['4095 bytes', new Uint8Array(4095).fill(0xee)],
      ['4097 bytes', new Uint8Array(4097).fill(0xee)], ['1.5 pages', new Uint8Array(6144).fill(0xee)],
      ['a Uint32Array of a page', new Uint32Array(WORDS).fill(0xeeeeeeee)], ['an ArrayBuffer of a page', new ArrayBuffer(PAGE_SIZE)],
      ['a plain array', new Array<number>(PAGE_SIZE).fill(0xee)], ['null', null], ['undefined', undefined],
    ];
    for (const [name, data] of bad) {
      await expect(fd.write(rw, data as Uint8Array), `write(${name})`).rejects.toBeErrno('EINVAL');
      await expect(fd.write(fresh, data as Uint8Array), `write(fresh, ${name})`).rejects.toBeErrno('EINVAL');
    }
    await expectSame(before, 'after bad write data');
  });

  mirrorTest('write data at an odd byte offset is fine: exactly those bytes land', async () => {
    const backing = new Uint8Array(2 * PAGE_SIZE + 1);
    const want = pagesOf(2, (p) => 0x12345600 | p);
    backing.set(want, 1);
    const w = await fd.write(fresh, backing.subarray(1));
    expect(w.cpages).toBe(2);
    expect(firstDiff(await proc.read(fresh, 2 * PAGE_SIZE), want)).toBeNull();
    checkFrameAccounting(m);
  });

  mirrorTest('read of PROT_NONE → EFAULT, nothing changed', async () => {
    await rejects(() => fd.read(none, 4), 'EFAULT', 'read(PROT_NONE)');
    await rejects(() => fd.read(none + 3 * PAGE_SIZE, 1), 'EFAULT', 'read(last PROT_NONE page)');
    // A range whose head is readable and tail is not.
    const r = await proc.mmap(0, 4 * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(r, pagesOf(4, (p) => 0xe0000000 | p));
    await proc.mprotect(r + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_NONE);
    await rejects(() => fd.read(r, 4), 'EFAULT', 'read(RW then PROT_NONE)');
    expect(firstDiff(await proc.read(r, 2 * PAGE_SIZE), pagesOf(2, (p) => 0xe0000000 | p))).toBeNull();
    // Readable again: the device sees the old contents.
    await proc.mprotect(none, 4 * PAGE_SIZE, PROT_READ);
    expect(firstDiff((await fd.read(none, 4)).data, pagesOf(4, NONE_TAG))).toBeNull();
  });

  mirrorTest('write to PROT_READ → EPERM, nothing changed (also when the range starts writable)', async () => {
    await rejects(() => fd.write(ro, pagesOf(4, () => 0xeeeeeeee)), 'EPERM', 'write(PROT_READ)');
    // Mapped for reading first: the device holds read-only entries; still EPERM.
    expect(firstDiff((await fd.read(ro, 4)).data, pagesOf(4, RO_TAG))).toBeNull();
    await rejects(() => fd.write(ro, pagesOf(4, () => 0xeeeeeeee)), 'EPERM', 'write(PROT_READ, mirrored read-only)');
    // Two fresh writable pages then two read-only ones: the whole write is refused.
    const r = await proc.mmap(0, 4 * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(r, pagesOf(4, (p) => 0xf0000000 | p));
    await proc.mprotect(r + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ);
    await rejects(() => fd.write(r, pagesOf(4, () => 0xeeeeeeee)), 'EPERM', 'write(RW then PROT_READ)');
    expect(firstDiff(await proc.read(r, 4 * PAGE_SIZE), pagesOf(4, (p) => 0xf0000000 | p)), 'RW then PROT_READ').toBeNull();
    // Writable again: the write goes through.
    await proc.mprotect(ro, 4 * PAGE_SIZE, RW);
    await fd.write(ro, pagesOf(4, () => 0x11111111));
    expect(firstDiff(await proc.read(ro, 4 * PAGE_SIZE), pagesOf(4, () => 0x11111111))).toBeNull();
  });

  mirrorTest('read of a hole → EFAULT, nothing changed', async () => {
    await rejects(() => fd.read(hole, 1), 'EFAULT', 'read(hole)');
    await rejects(() => fd.read(hole, 2), 'EFAULT', 'read(the whole hole)');
    await rejects(() => fd.read(hole - PAGE_SIZE, 4), 'EFAULT', 'read(page, hole, page)');
    await rejects(() => fd.read(hole - PAGE_SIZE, 2), 'EFAULT', 'read(page, hole)');
    // Below the first mappable address and far above every mapping.
    await rejects(() => fd.read(0, 1), 'EFAULT', 'read(0)');
    await rejects(() => fd.read(TASK_SIZE - PAGE_SIZE, 1), 'EFAULT', 'read(last page of the address space)');
    // A write into a hole is EFAULT too.
    await rejects(() => fd.write(hole, pagesOf(1, () => 0xeeeeeeee)), 'EFAULT', 'write(hole)');
  });

  mirrorTest('migrateToDevice over a hole or PROT_NONE → EINVAL, nothing migrated', async () => {
    await rejects(() => fd.migrateToDevice(hole, 1), 'EINVAL', 'migrate(hole)');
    await rejects(() => fd.migrateToDevice(hole - PAGE_SIZE, 4), 'EINVAL', 'migrate(page, hole, page)');
    await rejects(() => fd.migrateToDevice(none, 4), 'EINVAL', 'migrate(PROT_NONE)');
    await rejects(() => fd.migrateToSystem(hole - PAGE_SIZE, 4), 'EINVAL', 'migrateToSystem(page, hole, page)');
    // A range that starts with migratable pages and ends in PROT_NONE: none moves.
    const r = await proc.mmap(0, 4 * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(r, pagesOf(4, (p) => 0x0f000000 | p));
    await proc.mprotect(r + 3 * PAGE_SIZE, PAGE_SIZE, PROT_NONE);
    await rejects(() => fd.migrateToDevice(r, 4), 'EINVAL', 'migrate(RW then PROT_NONE)');
    const snap = await fd.snapshot(r, 3);
    expect([...snap].some((b) => (b & 0x30) !== 0), `no page went to a device: ${[...snap].map((b) => b.toString(16))}`).toBe(false);
    // The migratable part alone does migrate (the test above was not vacuous).
    expect((await fd.migrateToDevice(r, 3)).cpages).toBe(3);
    expect([...(await fd.snapshot(r, 3))].every((b) => (b & 0x30) === HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL)).toBe(true);
    checkFrameAccounting(m);
  });

  mirrorTest('migrateToDevice into the caller\'s buffer: too short → EFAULT, not a Uint8Array → EINVAL, nothing migrated; else exactly its first pages written', async () => {
    const untyped = fd.migrateToDevice as (addr: number, npages: number, into: unknown) => Promise<unknown>;
    await rejectsBadInto((into) => untyped.call(fd, rw, 4, into), 'migrate');
    expect([...(await fd.snapshot(rw, 4))].some((b) => (b & 0x30) !== 0), 'no page went to a device').toBe(false);
    await expectIntoPoisoned((into) => fd.migrateToDevice(rw, 4, into));
    expect([...(await fd.snapshot(rw, 4))].every((b) => (b & 0x30) === HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL)).toBe(true);
    checkFrameAccounting(m);
  });

  mirrorTest('read into the caller\'s buffer: too short → EFAULT, not a Uint8Array → EINVAL, nothing faulted; else exactly its first pages written', async () => {
    const untyped = fd.read as (addr: number, npages: number, into: unknown) => Promise<unknown>;
    await rejectsBadInto((into) => untyped.call(fd, fresh, 4, into), 'read');
    // Nothing faulted above: the first read that runs still takes the fault round.
    const zeros = await fd.read(fresh, 4, new Uint8Array(4 * PAGE_SIZE).fill(0xee));
    expect(zeros.faults).toBe(1);
    expect(firstDiff(zeros.data, new Uint8Array(4 * PAGE_SIZE)), 'fresh pages read as zero').toBeNull();
    await expectIntoPoisoned((into) => fd.read(rw, 4, into));
    checkFrameAccounting(m);
  });

  mirrorTest('migrateToDevice of MAP_SHARED anonymous memory → ENOENT, nothing moved', async () => {
    const sh = await proc.mmap(0, 4 * PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
    await proc.write(sh, pagesOf(4, (p) => 0x5a000000 | p));
    const snap = [...(await fd.snapshot(sh, 4))];
    await rejects(() => fd.migrateToDevice(sh, 4), 'ENOENT', 'migrate(MAP_SHARED anon)');
    expect([...(await fd.snapshot(sh, 4))]).toEqual(snap);
    expect(firstDiff(await proc.read(sh, 4 * PAGE_SIZE), pagesOf(4, (p) => 0x5a000000 | p))).toBeNull();
    expect(firstDiff((await fd1.read(sh, 4)).data, pagesOf(4, (p) => 0x5a000000 | p))).toBeNull();
  });

  mirrorTest('every command on a closed mirror → EBADF, and the memory is untouched', async () => {
    await fd.migrateToDevice(rw, 2); // device pages of this device live on after the close
    const before = await state();
    await fd.close();
    opened = [fd1];
    const data = pagesOf(1, () => 0xeeeeeeee);
    const calls: [string, () => Promise<unknown>][] = [
      ['read', () => fd.read(rw, 1)], ['write', () => fd.write(fresh, data)], ['migrateToDevice', () => fd.migrateToDevice(rw + 2 * PAGE_SIZE, 1)],
      ['migrateToSystem', () => fd.migrateToSystem(rw, 2)], ['snapshot', () => fd.snapshot(rw, 1)], ['exclusive', () => fd.exclusive(rw, 1)],
      ['checkExclusive', () => fd.checkExclusive(rw, 1)], ['release', () => fd.release()], ['mmap', () => fd.mmap(PAGE_SIZE, RW, MAP_SHARED)],
    ];
    for (const [name, c] of calls) await expect(c(), `${name} after close`).rejects.toBeErrno('EBADF');
    // close() again is harmless.
    await fd.close();
    // The other device's mirror and the CPU still see everything (device pages fault back).
    const after = await fd1.read(rw, 4);
    expect(firstDiff(after.data, pagesOf(4, RW_TAG))).toBeNull();
    expect(firstDiff(await proc.read(rw, 4 * PAGE_SIZE), pagesOf(4, RW_TAG))).toBeNull();
    expect(firstDiff(before.cpu[1], await proc.read(ro, 4 * PAGE_SIZE))).toBeNull();
    checkFrameAccounting(m);
  });

  mirrorTest('a closed mirror says EBADF before it looks at the arguments (the fd is checked first)', async () => {
    // ioctl(2) on a closed fd fails in fdget() before the driver sees the arguments.
    await fd.close();
    opened = [fd1];
    const got: Record<string, string> = {};
    const codeOf = async (c: () => Promise<unknown>): Promise<string> => {
      try {
        await c();
        return 'resolved';
      } catch (e) {
        return e instanceof HmmError ? e.code : String(e);
      }
    };
    for (const cmd of CMDS) got[`${cmd}(misaligned, 0)`] = await codeOf(() => call(fd, cmd, rw + 1, 0));
    got['write(misaligned, 3 bytes)'] = await codeOf(() => fd.write(rw + 1, new Uint8Array(3)));
    got['mmap(0, bad prot, bad flags)'] = await codeOf(() => fd.mmap(0, -1, -1));
    const want = Object.fromEntries(Object.keys(got).map((k) => [k, 'EBADF']));
    expect(got).toEqual(want);
  });

  mirrorTest('open() on an exited process → ESRCH, and on a live one after it works', async () => {
    const child = await proc.fork();
    await child.exit();
    for (const dev of m.devices) await expect(dev.open(child), `dmirror${dev.index}.open(exited child)`).rejects.toBeErrno('ESRCH');
    const other = m.spawn();
    await other.exit();
    await expect(m.devices[0].open(other), 'open(exited process)').rejects.toBeErrno('ESRCH');
    checkFrameAccounting(m);
    // The devices are fine: a new process can open them.
    const p2 = m.spawn();
    const f2 = await m.devices[0].open(p2);
    opened.push(f2);
    const a = await p2.mmap(0, PAGE_SIZE, RW, PRIV_ANON);
    await p2.write(a, pagesOf(1, () => 0x77777777));
    expect(firstDiff((await f2.read(a, 1)).data, pagesOf(1, () => 0x77777777))).toBeNull();
  });

  mirrorTest('a command on a mirror whose process exited → EINVAL (mmget_not_zero fails), nothing leaks', async () => {
    const child = await proc.fork();
    const cfd = await m.devices[1].open(child);
    opened.push(cfd);
    expect(firstDiff((await cfd.read(rw, 4)).data, pagesOf(4, RW_TAG))).toBeNull();
    await child.exit();
    for (const [name, c] of [
      ['read', () => cfd.read(rw, 1)], ['write', () => cfd.write(rw, pagesOf(1, () => 1))], ['migrateToDevice', () => cfd.migrateToDevice(rw, 1)],
      ['snapshot', () => cfd.snapshot(rw, 1)],
    ] as [string, () => Promise<unknown>][]) {
      // lib/test_hmm.c: mmget_not_zero() fails on a dead mm, and the ioctl returns -EINVAL.
      await expect(c(), `${name} on a dead process's mirror`).rejects.toBeErrno('EINVAL');
    }
    checkFrameAccounting(m);
    expect(firstDiff(await proc.read(rw, 4 * PAGE_SIZE), pagesOf(4, RW_TAG))).toBeNull();
  });
});
