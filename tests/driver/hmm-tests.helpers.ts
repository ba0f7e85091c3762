/**
 * Helpers for the port of the kernel's HMM selftests (tests/driver/hmm-tests.gpu.test.ts): the
 * dmirror interface as the public API exports it, the selftest's constants, int-pattern
 * buffers and element-by-element checks.
 */
import { expect } from 'vitest';
import { checkFrameAccounting, PAGE_SIZE, type Machine, type Mirror, type MirrorDevice, type Process } from '../../src/index.js';
import { isPresent, pmdIndex, pteIndex } from '../../src/mm/page-table.js';
import { randomU32 } from '../support/prng.js';

// ---- The driver's API, as src/index.ts exports it ----------------------------------------

export {
  HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_WRITE,
  HMM_DMIRROR_PROT_PMD, HMM_DMIRROR_PROT_PUD, HMM_DMIRROR_PROT_ZERO,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE,
  HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL, HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE,
} from '../../src/index.js';
export type { Mirror, MirrorDevice, MirrorResult } from '../../src/index.js';

// ---- The fixtures' variants (FIXTURE_VARIANT_ADD) -----------------------------------

/** hmm-tests.c's device numbers: test_hmm's /dev/hmm_dmirror0..3. */
export const HMM_PRIVATE_DEVICE_ONE = 0;
export const HMM_PRIVATE_DEVICE_TWO = 1;
export const HMM_COHERENCE_DEVICE_ONE = 2;
export const HMM_COHERENCE_DEVICE_TWO = 3;

/** test_hmm's devices, as createMachine options: two device-private, then two device-coherent. */
export const TEST_HMM_DEVICES = { devices: 4, deviceMemory: ['private', 'private', 'coherent', 'coherent'] } as const;

/** hmm_is_coherent_type(). */
export function hmmIsCoherentType(deviceNumber: number): boolean {
  return deviceNumber >= HMM_COHERENCE_DEVICE_ONE;
}

/** FIXTURE_VARIANT(hmm): hmm_device_private, hmm_device_coherent. */
export const HMM_VARIANTS = [
  { name: 'hmm_device_private', deviceNumber: HMM_PRIVATE_DEVICE_ONE },
  { name: 'hmm_device_coherent', deviceNumber: HMM_COHERENCE_DEVICE_ONE },
] as const;

/** FIXTURE_VARIANT(hmm2): hmm2_device_private, hmm2_device_coherent. */
export const HMM2_VARIANTS = [
  { name: 'hmm2_device_private', deviceNumber0: HMM_PRIVATE_DEVICE_ONE, deviceNumber1: HMM_PRIVATE_DEVICE_TWO },
  { name: 'hmm2_device_coherent', deviceNumber0: HMM_COHERENCE_DEVICE_ONE, deviceNumber1: HMM_COHERENCE_DEVICE_TWO },
] as const;

/** The machine's devices; the selftests' hmm2 fixture needs two. */
export function mirrorDevices(m: Machine): readonly MirrorDevice[] {
  if (m.devices.length < 2) throw new Error(`the machine has ${m.devices.length} mirror devices, the selftests need 2`);
  return m.devices;
}

/** HMM_DMIRROR_FLAGS' HMM_DMIRROR_FLAG_FAIL_ALLOC (Mirror.setFlags). */
export { HMM_DMIRROR_FLAG_FAIL_ALLOC } from '../../src/index.js';

// ---- gup_test (mm/gup_test.c) --------------------------------------------------------

export const GUP_FAST_BENCHMARK = 1;
export const PIN_FAST_BENCHMARK = 2;
export const PIN_LONGTERM_BENCHMARK = 3;
export const GUP_BASIC_TEST = 4;
export const FOLL_WRITE = 0x01;
export const FOLL_LONGTERM = 0x100;

/**
 * gup_test_exec(): the gup_test ioctl `cmd` over `size` bytes from addr, `npages` per call,
 * gup_flags FOLL_WRITE | flags — get_user_pages(_fast) or pin_user_pages(_fast) through the
 * Process API, then put/unpin (as gup_test's put_back_pages). 0, or the errno's name.
 */
export async function gupTestExec(proc: Process, addr: number, cmd: number, npages: number, size: number, flags: number): Promise<0 | string> {
  const write = true;
  const longterm = (flags & FOLL_LONGTERM) !== 0;
  try {
    for (let off = 0; off < size; off += npages * PAGE_SIZE) {
      const n = Math.min(npages, (size - off) / PAGE_SIZE);
      const a = addr + off;
      const pages = cmd === GUP_BASIC_TEST ? await proc.getUserPages(a, n, { write })
        : cmd === GUP_FAST_BENCHMARK ? await proc.getUserPages(a, n, { write, fast: true })
          : cmd === PIN_FAST_BENCHMARK ? await proc.pinUserPages(a, n, { write, fast: true, longterm })
            : cmd === PIN_LONGTERM_BENCHMARK ? await proc.pinUserPages(a, n, { write, longterm: true })
              : null;
      if (pages === null) return 'EINVAL';
      pages.release();
    }
    return 0;
  } catch (e) {
    if (e instanceof Error && 'code' in e && typeof e.code === 'string') return e.code;
    throw e;
  }
}

// ---- The selftest's constants ----------------------------------------------------------

export const HMM_BUFFER_SIZE = 1024 << 12;
export const NTIMES = 10;
export const TWOMEG = 1 << 21;
/** read_pmd_pagesize() and default_huge_page_size() on x86-64. */
export const PMD_PAGESIZE = TWOMEG;
export const DEFAULT_HUGE_PAGE_SIZE = TWOMEG;

/** ALIGN(x, a) of the selftest (for numbers, not only powers of two). */
export function align(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

/** npages = ALIGN(HMM_BUFFER_SIZE, page_size) >> page_shift. */
export const HMM_NPAGES = align(HMM_BUFFER_SIZE, PAGE_SIZE) / PAGE_SIZE;

// ---- Int buffers -----------------------------------------------------------------------

/** `len` bytes holding the ints f(0), f(1), ... (each coerced to int32, like `int ptr[i] = ...`). */
export function ints(len: number, f: (i: number) => number): Uint8Array<ArrayBuffer> {
  const v = new Int32Array(len / 4);
  for (let i = 0; i < v.length; i++) v[i] = f(i);
  return new Uint8Array(v.buffer);
}

/** The bytes as ints, copying only when they are not 4-byte aligned. */
export function asInts(bytes: Uint8Array): Int32Array {
  if (bytes.byteOffset % 4 === 0 && bytes.byteLength % 4 === 0) {
    return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  const copy = new Uint8Array(bytes.byteLength - (bytes.byteLength % 4));
  copy.set(bytes.subarray(0, copy.length));
  return new Int32Array(copy.buffer);
}

/**
 * ASSERT_EQ(ptr[i], want(i)) for every int of `bytes` (int index i counted from `firstInt`,
 * the index of bytes[0] in the C test's int array). Reports the count and the first few
 * mismatches with their index; no deep-equality over megabytes.
 */
export function expectInts(bytes: Uint8Array, want: (i: number) => number, what: string, firstInt = 0): void {
  expect(bytes.byteLength % 4, `${what}: length`).toBe(0);
  const got = asInts(bytes);
  let bad = 0;
  const first: string[] = [];
  for (let k = 0; k < got.length; k++) {
    const i = firstInt + k;
    const w = want(i) | 0;
    if (got[k] !== w) {
      if (bad < 8) first.push(`[${i}] got ${got[k]} want ${w}`);
      bad++;
    }
  }
  expect(first, `${what}: ${bad} of ${got.length} ints differ`).toEqual([]);
}

/** A buffer->mirror check: `size` bytes, every int as `want` says. */
export function expectData(data: Uint8Array, size: number, want: (i: number) => number, what: string): void {
  expect(data.byteLength, `${what}: bytes`).toBe(size);
  expectInts(data, want, what);
}

/** CPU loads of [addr, addr + length) checked int by int (firstInt = the int index of addr). */
export async function expectCpuInts(
  proc: Process, addr: number, length: number, want: (i: number) => number, what: string, firstInt = 0,
): Promise<void> {
  expectInts(await proc.read(addr, length), want, what, firstInt);
}

/**
 * `for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i) ASSERT_EQ(ptr[i]++, i);` —
 * a CPU load then a store of every int, page by page (the C loop touches page k before page
 * k + 1), then the check that every int is now i + 1.
 */
export async function cpuIncrementEveryInt(proc: Process, ptr: number, size: number, what: string): Promise<void> {
  const perPage = PAGE_SIZE / 4;
  for (let off = 0; off < size; off += PAGE_SIZE) {
    const first = off / 4;
    const page = asInts(await proc.read(ptr + off, PAGE_SIZE));
    let bad = -1;
    const next = new Int32Array(perPage);
    for (let k = 0; k < perPage; k++) {
      if (bad < 0 && page[k] !== ((first + k) | 0)) bad = k;
      next[k] = (page[k] + 1) | 0;
    }
    expect(bad < 0 ? null : `[${first + bad}] got ${page[bad]} want ${first + bad}`, `${what}: ptr[i]++ == i`).toBeNull();
    await proc.write(ptr + off, new Uint8Array(next.buffer));
  }
  await expectCpuInts(proc, ptr, size, (i) => i + 1, `${what}: ptr[i] == i + 1`);
}

/** Every byte of a SNAPSHOT equals `want`, reported with the page index and hex values. */
export function expectProt(m: Uint8Array, want: number, what: string, from = 0, to = m.length): void {
  const bad: string[] = [];
  for (let i = from; i < to; i++) {
    if (m[i] !== want && bad.length < 8) bad.push(`m[${i}] = 0x${m[i].toString(16)}`);
  }
  expect(bad, `${what}: want 0x${want.toString(16)}`).toEqual([]);
}

// ---- Errors ----------------------------------------------------------------------------

// ---- /proc/self/pagemap ----------------------------------------------------------------

/**
 * What /proc/self/pagemap says of the page at addr: PM_PRESENT (a present PTE or PMD
 * leaf) and PM_SWAP (a non-present, non-none entry: swap, migration, device-private,
 * device-exclusive), read from the process's own page table (Process.mm).
 */
export function pagemapEntry(proc: Process, addr: number): { present: boolean; swap: boolean } {
  const pmd = proc.mm.pgtable.pmd(addr, false);
  if (pmd === null) return { present: false, swap: false };
  const i = pmdIndex(addr);
  let flags: number;
  if (pmd.isHuge(i)) {
    flags = pmd.flags[i];
  } else {
    const t = pmd.tables[i];
    flags = t === null ? 0 : t.flags[pteIndex(addr)];
  }
  if (flags === 0) return { present: false, swap: false };
  return isPresent(flags) ? { present: true, swap: false } : { present: false, swap: true };
}

/** Whether the 2 MiB block at addr is mapped by one PMD leaf (a THP or hugetlb page). */
export function isPmdMapped(proc: Process, addr: number): boolean {
  const pmd = proc.mm.pgtable.pmd(addr, false);
  return pmd !== null && pmd.isHuge(pmdIndex(addr)) && isPresent(pmd.flags[pmdIndex(addr)]);
}

// ---- Scheduling ------------------------------------------------------------------------

/** Deterministic stand-in for hmm_random(), so a failing interleaving repeats (the tests' one PRNG). */
export const hmmRandom = randomU32;

/**
 * pthread_join / waitpid for work started concurrently: waits for every promise (so nothing
 * is still running on the machine when the test tears it down), then throws the first
 * failure.
 */
export async function joinAll(...ps: Promise<unknown>[]): Promise<void> {
  const rs = await Promise.allSettled(ps);
  for (const r of rs) if (r.status === 'rejected') throw r.reason;
}

/**
 * hmm_nanosleep() for the "other thread", in two grains: `n` microtask turns (the command
 * under test advances by a few await steps, landing the other thread's work early in it),
 * or `n` event-loop ticks (0 ticks = one microtask; lands it later, e.g. between GPU rounds).
 */
export async function yieldMicrotasks(n: number): Promise<void> {
  for (let k = 0; k < n; k++) await Promise.resolve();
}

export async function yieldTicks(n: number): Promise<void> {
  if (n === 0) await Promise.resolve();
  for (let t = 0; t < n; t++) await new Promise<void>((r) => setTimeout(r, 0));
}

/** VRAM in use on device `d`: slots allocated, device pages referenced, 2 MiB runs held. */
export function vram(m: Machine, d = 0): { slots: number; refs: number; huge: number } {
  const dev = m.devices[d];
  const s = dev.vram.stats;
  return { slots: s.used, refs: dev.pagemap.refcount.reduce((a, c) => a + (c !== 0 ? 1 : 0), 0), huge: s.hugeBlocks };
}

/** Nothing left on any device and every frame accounted for (after the buffers are gone). */
export function expectNoLeak(m: Machine): void {
  m.devices.forEach((_, d) => expect(vram(m, d), `device ${d} memory after the buffers are gone`).toEqual({ slots: 0, refs: 0, huge: 0 }));
  checkFrameAccounting(m);
}
