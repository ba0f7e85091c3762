/**
 * dmirror answers as lib/test_hmm.c does, where the selftests do not look:
 *  - EXCLUSIVE then a device WRITE: dmirror_do_write refuses the ATOMIC-tagged entry, the
 *    fault (hmm_range_fault, write) restores the CPU's PTE (remove_device_exclusive_entry,
 *    MMU_NOTIFY_EXCLUSIVE with owner NULL) and CHECK_EXCLUSIVE then returns 0;
 *  - MIGRATE_TO_DEV with device memory short: dmirror_migrate_alloc_and_copy skips the pages
 *    it cannot allocate and migrates the rest;
 *  - `faults` counts dmirror_fault calls (1 for a fresh buffer) however the command is
 *    split into GPU chunks;
 *  - dmirror_fault services in 64-page hmm_range_fault ranges;
 *  - SNAPSHOT gives up with EBUSY after HMM_RANGE_DEFAULT_TIMEOUT (dmirror_range_snapshot).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Dmirror } from '../../src/driver/dmirror.js';
import { HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL } from '../../src/driver/dmirror.js';
import { totals } from '../../src/driver/records.js';
import {
  createMachine, HmmError, MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Machine,
} from '../../src/index.js';
import { checkFrameAccounting } from '../../src/mm/accounting.js';
import { SeededScheduler } from '../../src/sched/seeded.js';
import { pagesOf, WORDS } from './pages.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const machines: Machine[] = [];
afterEach(async () => {
  for (const m of machines.splice(0)) await m.destroy();
});

async function setup(opts: Parameters<typeof createMachine>[0] = {}): Promise<{ m: Machine; fd: Dmirror; proc: ReturnType<Machine['spawn']> }> {
  const m = await createMachine({ devices: 1, systemPages: 8192, aperturePages: 1024, devicePages: 512, ...opts });
  machines.push(m);
  const proc = m.spawn();
  const fd = (await m.devices[0].open(proc)) as unknown as Dmirror;
  return { m, fd, proc };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof HmmError) return e.code;
    throw e;
  }
}

describe('A.3: a device WRITE revokes exclusive access', () => {
  it('EXCLUSIVE, WRITE: the write faults, the CPU PTE is restored, CHECK_EXCLUSIVE returns 0', async () => {
    const { m, fd, proc } = await setup();
    const n = 4;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, ANON);
    await proc.write(buf, pagesOf(n, (p) => 0x100 + p));
    const ex = await fd.exclusive(buf, n);
    expect(ex.cpages).toBe(n);
    expect(await code(fd.checkExclusive(buf, n))).toBe('EPERM');
    const w = await fd.write(buf, pagesOf(n, (p) => 0x200 + p));
    expect(w.cpages).toBe(n);
    expect(w.faults).toBe(1); // dmirror_do_write: -ENOENT on the ATOMIC tag, one dmirror_fault
    expect(await code(fd.checkExclusive(buf, n))).toBe('ok');
    const cpu = new Uint32Array((await proc.read(buf, n * PAGE_SIZE)).buffer);
    for (let i = 0; i < n * WORDS; i++) if (cpu[i] !== 0x200 + Math.floor(i / WORDS)) throw new Error(`word ${i}: 0x${cpu[i].toString(16)}`);
    expect((await fd.audit(buf, n)).stale).toEqual([]);
    checkFrameAccounting(m);
  });
});
