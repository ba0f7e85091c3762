/**
 * A dmirror device with MEMORY_DEVICE_COHERENT memory (test_hmm's coherent zone,
 * createMachine({ deviceMemory: 'coherent' })): migrated pages are device pfns the CPU maps
 * with present PTEs and reads and writes in place (no migrate_to_ram: Devmem.cpuFaults stays
 * 0); the device reaches them through its aperture, so a CPU store while the device holds a
 * page is what the device's next read sees (one copy, no migration); MIGRATE_TO_SYS brings
 * them home; SNAPSHOT says DEV_COHERENT_LOCAL / _REMOTE; a FOLL_LONGTERM pin moves them out;
 * no frame or device page is left behind on any path.
 */
import { describe, expect } from 'vitest';
import {
  checkFrameAccounting, HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL, HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE, HMM_DMIRROR_PROT_WRITE,
  MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Machine, type Process,
} from '../../src/index.js';
import { isPresent } from '../../src/mm/page-table.js';
import { mirrorTest } from '../support/mirror.js';
import {
  expectCpuInts, expectInts, expectNoLeak, FOLL_LONGTERM, GUP_BASIC_TEST, GUP_FAST_BENCHMARK, gupTestExec, ints, PIN_FAST_BENCHMARK,
  PIN_LONGTERM_BENCHMARK, vram,
} from './hmm-tests.helpers.js';

const RW = PROT_READ | PROT_WRITE;
const PRIV_ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** The CPU PTE at addr: present, and the device-coherent pfn of device `d` it maps (or null). */
function coherentPfn(m: Machine, proc: Process, addr: number, d = 0): number | null {
  const t = proc.mm.pgtable.pteTable(addr, false);
  const j = (addr / PAGE_SIZE) % 512;
  if (t === null || !isPresent(t.flags[j])) return null;
  const pfn = t.pfn[j];
  return m.devices[d].pagemap.contains(pfn) && m.core.isDeviceCoherent(pfn) ? pfn : null;
}

describe('device-coherent memory (dmirror)', () => {
  mirrorTest.override('machineOptions', { systemPages: 4096, devicePages: 256, deviceMemory: 'coherent' });

  mirrorTest('MIGRATE_TO_DEV maps present PTEs of coherent pages; the CPU reads and writes them in place; MIGRATE_TO_SYS brings them home', async ({ machine, proc, mirror }) => {
    const n = 16;
    const size = n * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);
    await proc.write(ptr, ints(size, (i) => i));
    const r = await mirror.migrateToDevice(ptr, n);
    expect(r.cpages).toBe(n);
    expectInts(r.data, (i) => i, 'device copy');
    const pfns = Array.from({ length: n }, (_, k) => coherentPfn(machine, proc, ptr + k * PAGE_SIZE));
    expect(pfns.every((p) => p !== null), 'every page a present coherent PTE').toBe(true);
    expect(vram(machine).refs).toBe(n);
    await expectCpuInts(proc, ptr, size, (i) => i, 'CPU reads in place');
    await proc.write(ptr, ints(size, (i) => i + 7));
    expect(machine.devices[0].devmem.cpuFaults, 'no migrate_to_ram').toBe(0);
    for (let k = 0; k < n; k++) expect(coherentPfn(machine, proc, ptr + k * PAGE_SIZE)).toBe(pfns[k]);
    expect((await mirror.snapshot(ptr, n)).every((b) => b === (HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE))).toBe(true);
    checkFrameAccounting(machine);

    const back = await mirror.migrateToSystem(ptr, n);
    expect(back.cpages).toBe(n);
    for (let k = 0; k < n; k++) expect(coherentPfn(machine, proc, ptr + k * PAGE_SIZE)).toBeNull();
    expect(vram(machine).refs).toBe(0);
    await expectCpuInts(proc, ptr, size, (i) => i + 7, 'home');
    await proc.munmap(ptr, size);
    expectNoLeak(machine);
  });

  mirrorTest('a CPU store to a coherent page the device holds is what the device reads next, and the device\'s store what the CPU reads: one copy, no migration', async ({ machine, proc, mirror }) => {
    const n = 4;
    const size = n * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);
    await proc.write(ptr, ints(size, (i) => i));
    expect((await mirror.migrateToDevice(ptr, n)).cpages).toBe(n);
    const pfn1 = coherentPfn(machine, proc, ptr + PAGE_SIZE);
    // The device maps the pages (READ faults them into its page table) ...
    expectInts((await mirror.read(ptr, n)).data, (i) => i, 'device read 1');
    // ... the CPU writes page 1 while the device holds it ...
    await proc.write(ptr + PAGE_SIZE, ints(PAGE_SIZE, (i) => -1 - i));
    const r = await mirror.read(ptr, n);
    expect(r.faults, 'no new device fault: the device kept its mapping').toBe(0);
    expectInts(r.data, (i) => (i >= 1024 && i < 2048 ? -1 - (i - 1024) : i), 'device read 2 sees the CPU store');
    // ... and the device writes page 2: the CPU reads it in place.
    await mirror.write(ptr + 2 * PAGE_SIZE, ints(PAGE_SIZE, (i) => 5000 + i));
    await expectCpuInts(proc, ptr + 2 * PAGE_SIZE, PAGE_SIZE, (i) => 5000 + i - 2 * 1024, 'CPU sees the device store', 2 * 1024);
    expect(coherentPfn(machine, proc, ptr + PAGE_SIZE), 'still the same coherent page').toBe(pfn1);
    expect(machine.devices[0].devmem.cpuFaults).toBe(0);
    await proc.munmap(ptr, size);
    expectNoLeak(machine);
  });

  mirrorTest('a write fault on a write-protected exclusive coherent page reuses it in place (do_wp_page: coherent memory is anonymous)', async ({ machine, proc, mirror }) => {
    const n = 4;
    const size = n * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);
    await proc.write(ptr, ints(size, (i) => i));
    expect((await mirror.migrateToDevice(ptr, n)).cpages).toBe(n);
    const pfn = coherentPfn(machine, proc, ptr + PAGE_SIZE);
    expect(pfn).not.toBeNull();
    await proc.mprotect(ptr, size, PROT_READ);
    await proc.mprotect(ptr, size, RW);
    await proc.write(ptr + PAGE_SIZE, ints(PAGE_SIZE, (i) => 9 * i));
    expect(coherentPfn(machine, proc, ptr + PAGE_SIZE), 'the same coherent page, not a RAM copy').toBe(pfn);
    expectInts((await mirror.read(ptr + PAGE_SIZE, 1)).data, (i) => 9 * i, 'device sees the store');
    checkFrameAccounting(machine);
    await proc.munmap(ptr, size);
    expectNoLeak(machine);
  });

  mirrorTest('a FOLL_LONGTERM pin migrates coherent pages to system memory first; the device reads the data on', async ({ machine, proc, mirror }) => {
    const n = 4;
    const size = n * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);
    await proc.write(ptr, ints(size, (i) => 3 * i));
    expect((await mirror.migrateToDevice(ptr, n)).cpages).toBe(n);
    const pins = await proc.pinUserPages(ptr + PAGE_SIZE, 2, { write: true, longterm: true });
    for (let k = 0; k < 2; k++) expect(machine.core.isSystemPfn(pins.pfns[k])).toBe(true);
    expect(coherentPfn(machine, proc, ptr), 'outside the pin: stays').not.toBeNull();
    expect(vram(machine).refs).toBe(2);
    expectInts((await mirror.read(ptr, n)).data, (i) => 3 * i, 'device read after the pin');
    pins.release();
    await proc.munmap(ptr, size);
    expectNoLeak(machine);
  });
});

describe('device-coherent memory larger than the mirror\'s aperture', () => {
  // 1024 coherent pages through a 512-slot aperture: MIGRATE_TO_DEV's copy-back
  // (dmirror_do_read) once went through the aperture, whose reclaim had dropped the first
  // pages mapped by then: ENOENT "page not mirrored" for pages test_hmm's xarray still holds
  // (hmm-tests.c's benchmark_thp_migration at 128 THPs on the coherent variant).
  mirrorTest.override('machineOptions', { systemPages: 4096, devicePages: 2048, aperturePages: 512, deviceMemory: 'coherent' });

  mirrorTest('MIGRATE_TO_DEV of more pages than the aperture holds hands back every page\'s bytes; the device and the CPU then read them all', async ({ machine, proc, mirror }) => {
    const n = 1024;
    const size = n * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);
    await proc.write(ptr, ints(size, (i) => i ^ 0x5a5a));
    const r = await mirror.migrateToDevice(ptr, n);
    expect(r.cpages).toBe(n);
    expectInts(r.data, (i) => i ^ 0x5a5a, 'MIGRATE_TO_DEV copy-back');
    for (const k of [0, 511, 512, 1023]) expect(coherentPfn(machine, proc, ptr + k * PAGE_SIZE), `page ${k} coherent`).not.toBeNull();
    // The device reads them (faulting back what its aperture dropped), the CPU in place.
    expectInts((await mirror.read(ptr, n)).data, (i) => i ^ 0x5a5a, 'device READ');
    await expectCpuInts(proc, ptr, size, (i) => i ^ 0x5a5a, 'CPU');
    expect((await mirror.migrateToSystem(ptr, n)).cpages).toBe(n);
    await proc.munmap(ptr, size);
    expectNoLeak(machine);
  });
});

describe('aperture refresh (system memory)', () => {
  // The refresh of a slot with no merge base once compared against a ~0 sentinel: a CPU
  // store of -1 (0xffffffff) looked unchanged and the device kept reading the old word.
  mirrorTest('a CPU store of -1 to a page the device has mapped is what the device reads next', async ({ proc, mirror }) => {
    const ptr = await proc.mmap(0, PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(ptr, ints(PAGE_SIZE, (i) => i));
    expectInts((await mirror.read(ptr, 1)).data, (i) => i, 'read 1');
    await proc.write(ptr, ints(PAGE_SIZE, (i) => (i % 2 === 0 ? -1 : i)));
    const r = await mirror.read(ptr, 1);
    expect(r.faults).toBe(0);
    expectInts(r.data, (i) => (i % 2 === 0 ? -1 : i), 'read 2');
    await proc.munmap(ptr, PAGE_SIZE);
  });
});

describe('hmm-tests.c hmm_gup_test, variant hmm_device_coherent', () => {
  mirrorTest.override('machineOptions', { systemPages: 4096, devicePages: 256, deviceMemory: 'coherent' });

  // GUP_BASIC and GUP_FAST leave the coherent pages where they are (SNAPSHOT
  // DEV_COHERENT_LOCAL|WRITE); the two FOLL_LONGTERM pins move theirs to system memory (WRITE).
  mirrorTest('hmm_gup_test', async ({ machine, proc, mirror }) => {
    const npages = 4;
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);
    await proc.write(ptr, ints(size, (i) => i));
    const r = await mirror.migrateToDevice(ptr, npages);
    expect(r.cpages).toBe(npages);
    expectInts(r.data, (i) => i, 'mirror');
    expect(await gupTestExec(proc, ptr, GUP_BASIC_TEST, 1, PAGE_SIZE, 0)).toBe(0);
    expect(await gupTestExec(proc, ptr + 1 * PAGE_SIZE, GUP_FAST_BENCHMARK, 1, PAGE_SIZE, 0)).toBe(0);
    expect(await gupTestExec(proc, ptr + 2 * PAGE_SIZE, PIN_FAST_BENCHMARK, 1, PAGE_SIZE, FOLL_LONGTERM)).toBe(0);
    expect(await gupTestExec(proc, ptr + 3 * PAGE_SIZE, PIN_LONGTERM_BENCHMARK, 1, PAGE_SIZE, 0)).toBe(0);
    const m = await mirror.snapshot(ptr, npages);
    expect(m.length).toBe(npages);
    expect(m[0]).toBe(HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE);
    expect(m[1]).toBe(HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE);
    expect(m[2]).toBe(HMM_DMIRROR_PROT_WRITE);
    expect(m[3]).toBe(HMM_DMIRROR_PROT_WRITE);
    await expectCpuInts(proc, ptr, size, (i) => i, 'ptr');
    await proc.munmap(ptr, size);
    expectNoLeak(machine);
  });
});

describe('device-coherent memory, two devices', () => {
  mirrorTest.override('machineOptions', { devices: 2, systemPages: 4096, devicePages: 256, deviceMemory: 'coherent' });

  mirrorTest('SNAPSHOT: DEV_COHERENT_LOCAL on the mirror\'s device, DEV_COHERENT_REMOTE on the other; the other device cannot collect ours', async ({ machine, proc, mirror }) => {
    const fd1 = await machine.devices[1].open(proc);
    try {
      const ptr = await proc.mmap(0, 2 * PAGE_SIZE, RW, PRIV_ANON);
      await proc.write(ptr, ints(2 * PAGE_SIZE, (i) => i));
      expect((await mirror.migrateToDevice(ptr, 1)).cpages).toBe(1);
      expect((await fd1.migrateToDevice(ptr + PAGE_SIZE, 1)).cpages).toBe(1);
      const s = await mirror.snapshot(ptr, 2);
      expect([...s]).toEqual([HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE | HMM_DMIRROR_PROT_WRITE]);
      // Device 1's MIGRATE_TO_SYS does not collect device 0's page (owner), nor TO_DEV move it.
      expect((await fd1.migrateToSystem(ptr, 1)).cpages).toBe(0);
      await expect(fd1.migrateToDevice(ptr, 1)).rejects.toBeErrno('ENOENT');
      expect(coherentPfn(machine, proc, ptr, 0)).not.toBeNull();
      expectInts((await fd1.read(ptr, 2)).data, (i) => i, 'device 1 reads both');
      await proc.munmap(ptr, 2 * PAGE_SIZE);
      expectNoLeak(machine);
    } finally {
      await fd1.close();
    }
  });

  mirrorTest('bad input: deviceMemory other than private/coherent is EINVAL', async ({ machines }) => {
    await expect(machines({ deviceMemory: 'shared' as never })).rejects.toBeErrno('EINVAL');
    // One type per device: as many as there are devices, each private or coherent.
    await expect(machines({ devices: 2, deviceMemory: ['private'] })).rejects.toBeErrno('EINVAL');
    await expect(machines({ devices: 2, deviceMemory: ['private', 'shared' as never] })).rejects.toBeErrno('EINVAL');
  });

  mirrorTest('test_hmm\'s layout: deviceMemory per device gives /dev/hmm_dmirror0-1 device-private, 2-3 device-coherent', async ({ machines }) => {
    const m = await machines({ devices: 4, deviceMemory: ['private', 'private', 'coherent', 'coherent'], devicePages: 16 });
    expect(m.devices.map((d) => d.pagemap.coherent)).toEqual([false, false, true, true]);
    // Each device's own pagemap: a pfn of device 2 is coherent, one of device 0 is not.
    expect(m.core.isDeviceCoherent(m.devices[2].pagemap.basePfn)).toBe(true);
    expect(m.core.isDeviceCoherent(m.devices[0].pagemap.basePfn)).toBe(false);
  });
});
