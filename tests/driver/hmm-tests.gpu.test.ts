/**
 * The kernel's HMM selftests (tools/testing/selftests/mm/hmm-tests.c, mainline as of the
 * device-private THP migration series), ported case by case onto the GPU-backed dmirror
 * driver: same names, same buffers, same assertions.
 *
 * Conventions of the port:
 *  - FIXTURE(hmm) = one machine with two mirror devices, a process, device 0 opened on it
 *    (variant hmm_device_private). The hmm_device_coherent / hmm2_device_coherent variants
 *    (createMachine({ deviceMemory: 'coherent' })) are not run over this whole suite yet:
 *    tests/driver/device-coherent.gpu.test.ts runs hmm_gup_test and the snapshot's
 *    COHERENT_LOCAL/REMOTE as the C file does for them.
 *    FIXTURE(hmm2) = devices 0 and 1 both opened on the process. Teardown closes the
 *    mirrors (ASSERT_EQ(close(fd), 0)); the machine is mirrorTest's (its `machines` factory,
 *    with createMachine's defaults), destroyed after with the frames recounted: a leak fails.
 *  - buffer->ptr accesses are Process.read/write (CPU loads/stores that fault like the
 *    kernel's); buffer->mirror is the `data` a command returns, or the `data` given to
 *    write(); hmm_buffer_free is munmap. `ret == -EFOO` is a rejection with HmmError code
 *    'EFOO'. SNAPSHOT returns only the bytes: `cpages == npages` becomes `length == npages`.
 *  - Every int of every buffer is checked (expectInts), with the C test's `i` patterns.
 *  - fork(): Process.fork(); the child opens its own mirror; waitpid = finish the child's
 *    work, then child.exit(). Threads: concurrent promises (the event loop interleaves at
 *    await points).
 *  - madvise advice the API lacks: MADV_NOHUGEPAGE (the "no THP" runs just skip
 *    MADV_HUGEPAGE: THP is in "madvise" mode here, so a VMA without it never gets THPs);
 *    MADV_COLLAPSE (migrate_anon_huge_fault: MADV_HUGEPAGE before the first touch, so the
 *    write fault maps a THP, and we assert the block is PMD-mapped as COLLAPSE would
 *    guarantee); MADV_FREE (migrate_anon_huge_free: MADV_DONTNEED, the nearest advice).
 *
 * Mapping (C test → what it checks → our port):
 *  open_close                  open/close a device → fixture only
 *  anon_read                   READ of RO anon, pages 0/1 none/zero page: cpages, faults 1, data → same
 *  anon_read_prot              READ of PROT_NONE → EFAULT; memory intact → same (the C's "mirror
 *                              untouched" is vacuous: a rejected command returns no data)
 *  anon_write                  WRITE into fresh anon: cpages, faults 1, CPU sees it → same
 *  anon_write_prot             READ 1 page of RO; WRITE → EPERM, memory 0; mprotect RW; WRITE ok → same
 *  anon_write_child            {migrate, THP} × fork; child's device WRITE; COW keeps parent's → same
 *  anon_write_child_shared     MAP_SHARED anon: child's device WRITE seen by parent → same
 *  anon_write_huge             WRITE into a MADV_HUGEPAGE 2 MiB block → same
 *  anon_write_hugetlbfs        WRITE into MAP_HUGETLB → same (pool is RAM: no SKIP)
 *  file_read                   READ of a MAP_SHARED RO tmpfs mapping → same (createFile + pwrite)
 *  file_write                  WRITE into a MAP_SHARED file mapping; mapping and pread see it → same
 *  migrate                     MIGRATE_TO_DEV: cpages, data → same
 *  migrate_file_private        migrate COWed pages of a MAP_PRIVATE file mapping → same
 *  migrate_fault               migrate, CPU faults half back, migrate again → same
 *  migrate_release             migrate, RELEASE, CPU reads → same
 *  migrate_shared              MAP_SHARED anon → ENOENT → same
 *  migrate_mixed (hmm2)        PROT_NONE/hole → EINVAL; zero/RO/RW → cpages 4; dev1 page → ENOENT → same
 *  migrate_multiple            10 × (migrate, CPU fault back) → same (private variant: no TO_SYS)
 *  anon_read_multiple          10 × READ with new data, faults 1 → same
 *  anon_teardown               10 × READ racing a munmap of the second half → concurrent promises
 *  mixedmap                    mmap of the device file; SNAPSHOT → READ → Mirror.mmap
 *  snapshot (hmm2)             ERROR, ERROR, ZERO|READ, READ, WRITE, LOCAL|WRITE, NONE → same
 *  compound                    hugetlb: WRITE|PMD, then READ|PMD → same
 *  double_map (hmm2)           both devices READ; migrate to dev1; dev0 READ faults it back → same
 *  exclusive                   EXCLUSIVE, CPU ++ every int, CHECK_EXCLUSIVE == 0 → same
 *  exclusive_mprotect          EXCLUSIVE, mprotect(RO), WRITE → EPERM → same
 *  exclusive_cow               EXCLUSIVE, fork, parent and child ++ every int → same (concurrently)
 *  hmm_gup_test                gup_test's GUP_BASIC / GUP_FAST / PIN_FAST(LONGTERM) / PIN_LONGTERM on
 *                              migrated pages; SNAPSHOT WRITE, data intact → gupTestExec (helpers) on
 *                              Process.getUserPages / pinUserPages
 *  hmm_cow_in_device           migrate, fork, parent writes (COW), child killed; SNAPSHOT WRITE → same
 *  migrate_anon_huge_empty     migrate an untouched THP-able block: zeros → same
 *  migrate_anon_huge_zero      read-faulted THP block, migrate, zeros both sides → same
 *  migrate_anon_huge_free      migrate a THP, MADV_FREE → same with MADV_DONTNEED
 *  migrate_anon_huge_fault     migrate a THP; SNAPSHOT LOCAL|WRITE|PMD; pagemap swap, !present;
 *                              CPU fault back → same (a device-private PMD); pagemap read from the
 *                              process's page table
 *  migrate_partial_unmap_fault {THP} × 3 offsets: migrate, munmap 1 MiB, CPU reads the rest → same
 *  migrate_remap_fault         {before, after} × {DONTUNMAP} × {THP} × 3 offsets: mremap MAYMOVE|FIXED of
 *                              a 2 MiB buffer before or after migrating it, CPU reads it back → same
 *  migrate_anon_huge_err       HMM_DMIRROR_FLAGS(FAIL_ALLOC): THP falls back to 4 KiB device pages,
 *                              then on the way home to 4 KiB frames → same (Mirror.setFlags)
 *  migrate_anon_huge_zero_err  same over the huge zero page → same
 *  benchmark_thp_migration     timings of TO_DEV/TO_SYS, THP vs not, ret == 0 → same, the C sizes to 16 MiB;
 *                              256 MiB where the GPU binds that much device memory, else the largest fit
 *
 * Not ported: userfaultfd_read (HMM_DMIRROR_READ_UNLOCKED), from a patch series posted to
 * linux-mm that is not in mainline; the API has no userfaultfd.
 */
import { describe, expect } from 'vitest';
import {
  HmmError, MADV_DONTNEED, MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED,
  MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE, type Machine, type Process,
} from '../../src/index.js';
import {
  align, asInts, cpuIncrementEveryInt, DEFAULT_HUGE_PAGE_SIZE, expectCpuInts, expectData,
  expectInts, expectProt, FOLL_LONGTERM, GUP_BASIC_TEST, GUP_FAST_BENCHMARK, gupTestExec, PIN_FAST_BENCHMARK,
  PIN_LONGTERM_BENCHMARK, HMM_BUFFER_SIZE, HMM_DMIRROR_FLAG_FAIL_ALLOC, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_PMD, HMM_DMIRROR_PROT_PUD, HMM_DMIRROR_PROT_READ,
  HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_ZERO, HMM_NPAGES, hmmRandom, isPmdMapped, ints, joinAll, mirrorDevices,
  NTIMES, pagemapEntry, PMD_PAGESIZE, TWOMEG, yieldMicrotasks, yieldTicks,
  type Mirror,
} from './hmm-tests.helpers.js';
import { mirrorTest } from '../support/mirror.js';

const RW = PROT_READ | PROT_WRITE;
const PRIV_ANON = MAP_PRIVATE | MAP_ANONYMOUS;
/** For the cases that loop over several 2-4 MiB buffers on a software GPU. */
const SLOW = 300_000;

/** `val = *(int *)addr`. */
async function loadInt(proc: Process, addr: number): Promise<number> {
  return asInts(await proc.read(addr, 4))[0];
}

/** `*(int *)addr = val`. */
async function storeInt(proc: Process, addr: number, val: number): Promise<void> {
  await proc.write(addr, ints(4, () => val));
}

describe('hmm', () => {
  let machine: Machine | null = null;
  let proc: Process;
  /** self->fd: /dev/hmm_dmirror0 (HMM_PRIVATE_DEVICE_ONE) opened on proc. */
  let fd: Mirror;
  let opened: Mirror | null = null;

  mirrorTest.beforeEach(async ({ machines }) => {
    machine = await machines({ devices: 2 });
    proc = machine.spawn();
    opened = await mirrorDevices(machine)[0].open(proc);
    fd = opened;
  });

  mirrorTest.afterEach(async () => {
    const f = opened;
    opened = null;
    machine = null;
    await f?.close();
  });

  function m(): Machine {
    if (machine === null) throw new Error('no machine');
    return machine;
  }

  /* Simple NULL test of device open/close. */
  mirrorTest('open_close', () => {});

  /* Read private anonymous memory. */
  mirrorTest('anon_read', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

    // Initialize buffer in system memory but leave the first two pages zero (pte_none and
    // pfn_zero).
    const first = (2 * PAGE_SIZE) / 4;
    await proc.write(ptr + 2 * PAGE_SIZE, ints(size - 2 * PAGE_SIZE, (k) => first + k));

    // Set buffer permission to read-only.
    await proc.mprotect(ptr, size, PROT_READ);

    // Populate the CPU page table with a special zero page.
    expect(await loadInt(proc, ptr + PAGE_SIZE)).toBe(0);

    // Simulate a device reading system memory.
    const r = await fd.read(ptr, npages);
    expect(r.cpages).toBe(npages);
    expect(r.faults).toBe(1);

    // Check what the device read.
    expect(r.data.byteLength).toBe(size);
    expectInts(r.data.subarray(0, 2 * PAGE_SIZE), () => 0, 'mirror, pages 0-1');
    expectInts(r.data.subarray(2 * PAGE_SIZE), (i) => i, 'mirror', first);

    await proc.munmap(ptr, size);
  });

  /* Read private anonymous memory which has been protected with mprotect() PROT_NONE. */
  mirrorTest('anon_read_prot', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // (The C test fills buffer->mirror with -i to see that it is not written: a rejected
    // command hands back no data at all, so there is nothing to check on our side.)

    // Protect buffer from reading.
    await proc.mprotect(ptr, size, PROT_NONE);

    // Simulate a device reading system memory.
    await expect(fd.read(ptr, npages)).rejects.toBeErrno('EFAULT');

    // Allow CPU to read the buffer so we can check it.
    await proc.mprotect(ptr, size, PROT_READ);
    await expectCpuInts(proc, ptr, size, (i) => i, 'ptr');

    await proc.munmap(ptr, size);
  });

  /* Write private anonymous memory. */
  mirrorTest('anon_write', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

    // Initialize data that the device will write to buffer->ptr.
    const mirror = ints(size, (i) => i);

    // Simulate a device writing system memory.
    const r = await fd.write(ptr, mirror);
    expect(r.cpages).toBe(npages);
    expect(r.faults).toBe(1);

    // Check what the device wrote.
    await expectCpuInts(proc, ptr, size, (i) => i, 'ptr');

    await proc.munmap(ptr, size);
  });

  /* Write private anonymous memory which has been protected with mprotect() PROT_READ. */
  mirrorTest('anon_write_prot', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, PROT_READ, PRIV_ANON);

    // Simulate a device reading a zero page of memory.
    const r1 = await fd.read(ptr, 1);
    expect(r1.cpages).toBe(1);
    expect(r1.faults).toBe(1);

    // Initialize data that the device will write to buffer->ptr.
    const mirror = ints(size, (i) => i);

    // Simulate a device writing system memory.
    await expect(fd.write(ptr, mirror)).rejects.toBeErrno('EPERM');

    // Check what the device wrote.
    await expectCpuInts(proc, ptr, size, () => 0, 'ptr after EPERM');

    // Now allow writing and see that the zero page is replaced.
    await proc.mprotect(ptr, size, PROT_WRITE | PROT_READ);

    // Simulate a device writing system memory.
    const r2 = await fd.write(ptr, mirror);
    expect(r2.cpages).toBe(npages);
    expect(r2.faults).toBe(1);

    // Check what the device wrote.
    await expectCpuInts(proc, ptr, size, (i) => i, 'ptr');

    await proc.munmap(ptr, size);
  });

  /*
   * Check that a device writing an anonymous private mapping will copy-on-write if a child
   * process inherits the mapping. Also verifies after fork() memory the device can be read
   * by child.
   */
  mirrorTest('anon_write_child', async () => {
    for (let migrate = 0; migrate < 2; ++migrate) {
      for (let useThp = 0; useThp < 2; ++useThp) {
        const what = `migrate=${migrate} use_thp=${useThp}`;
        const npages = align(useThp ? PMD_PAGESIZE : HMM_BUFFER_SIZE, PAGE_SIZE) / PAGE_SIZE;
        expect(npages).not.toBe(0);
        const size = npages * PAGE_SIZE;

        const oldPtr = await proc.mmap(0, size * 2, RW, PRIV_ANON);
        let ptr = oldPtr;
        if (useThp) {
          const map = align(oldPtr, size);
          await proc.madvise(map, size, MADV_HUGEPAGE);
          ptr = map;
        }

        // Initialize buffer->ptr so we can tell if it is written.
        await proc.write(ptr, ints(size, (i) => i));

        // Initialize data that the device will write to buffer->ptr.
        const mirror = ints(size, (i) => -i);

        if (migrate) {
          const r = await fd.migrateToDevice(ptr, npages);
          expect(r.cpages, what).toBe(npages);
        }

        const child = await proc.fork();

        // --- The child. ---
        // Check that we see the parent's values.
        await expectCpuInts(child, ptr, size, (i) => i, `${what}: child's ptr`);
        // (if (!migrate) the C child also checks its copy of buffer->mirror is still -i: that
        // is our `mirror`, which nothing can change.)

        // The child process needs its own mirror to its own mm.
        const childFd = await mirrorDevices(m())[0].open(child);

        // Simulate a device writing system memory.
        const r = await childFd.write(ptr, mirror);
        expect(r.cpages, what).toBe(npages);
        expect(r.faults, what).toBe(1);

        // Check what the device wrote.
        if (!migrate) await expectCpuInts(child, ptr, size, (i) => -i, `${what}: child's ptr after the device write`);

        await childFd.close();
        await child.exit();

        // --- The parent, after waitpid. ---
        // Check that the parent's buffer did not change.
        await expectCpuInts(proc, ptr, size, (i) => i, `${what}: parent's ptr`);

        await proc.munmap(oldPtr, size * 2);
      }
    }
  }, SLOW);

  /*
   * Check that a device writing an anonymous shared mapping will not copy-on-write if a
   * child process inherits the mapping.
   */
  mirrorTest('anon_write_child_shared', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, MAP_SHARED | MAP_ANONYMOUS);

    // Initialize buffer->ptr so we can tell if it is written.
    await proc.write(ptr, ints(size, (i) => i));

    // Initialize data that the device will write to buffer->ptr.
    const mirror = ints(size, (i) => -i);

    const child = await proc.fork();

    // --- The child. ---
    // Check that we see the parent's values. (The C child's check of its buffer->mirror
    // copy is of our `mirror`, which nothing can change.)
    await expectCpuInts(child, ptr, size, (i) => i, "child's ptr");

    // The child process needs its own mirror to its own mm.
    const childFd = await mirrorDevices(m())[0].open(child);

    // Simulate a device writing system memory.
    const r = await childFd.write(ptr, mirror);
    expect(r.cpages).toBe(npages);
    expect(r.faults).toBe(1);

    // Check what the device wrote.
    await expectCpuInts(child, ptr, size, (i) => -i, "child's ptr after the device write");

    await childFd.close();
    await child.exit();

    // --- The parent, after waitpid. ---
    // Check that the parent's buffer did change.
    await expectCpuInts(proc, ptr, size, (i) => -i, "parent's ptr");

    await proc.munmap(ptr, size);
  });

  /* Write private anonymous huge page. */
  mirrorTest('anon_write_huge', async () => {
    let size = 2 * PMD_PAGESIZE;
    const oldPtr = await proc.mmap(0, size, RW, PRIV_ANON);

    size /= 2;
    const npages = size / PAGE_SIZE;
    const map = align(oldPtr, size);
    await proc.madvise(map, size, MADV_HUGEPAGE);
    const ptr = map;

    // Initialize data that the device will write to buffer->ptr.
    const mirror = ints(size, (i) => i);

    // Simulate a device writing system memory.
    const r = await fd.write(ptr, mirror);
    expect(r.cpages).toBe(npages);
    expect(r.faults).toBe(1);

    // Check what the device wrote.
    await expectCpuInts(proc, ptr, size, (i) => i, 'ptr');

    await proc.munmap(oldPtr, 2 * size);
  });

  /* Write huge TLBFS page. */
  mirrorTest('anon_write_hugetlbfs', async () => {
    // The C test skips when the hugetlb pool has no free page; our pool is system RAM, so
    // the mapping must work.
    const size = align(TWOMEG, DEFAULT_HUGE_PAGE_SIZE);
    const npages = size / PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON | MAP_HUGETLB);

    // Initialize data that the device will write to buffer->ptr.
    const mirror = ints(size, (i) => i);

    // Simulate a device writing system memory.
    const r = await fd.write(ptr, mirror);
    expect(r.cpages).toBe(npages);
    expect(r.faults).toBe(1);

    // Check what the device wrote.
    await expectCpuInts(proc, ptr, size, (i) => i, 'ptr');

    await proc.munmap(ptr, size);
  });

  /* Read mmap'ed file memory. */
  mirrorTest('file_read', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const file = m().createFile(size);

    // Write initial contents of the file.
    const len = await file.pwrite(ints(size, (i) => i), 0);
    expect(len).toBe(size);

    const ptr = await proc.mmap(0, size, PROT_READ, MAP_SHARED, file, 0);

    // Simulate a device reading system memory.
    const r = await fd.read(ptr, npages);
    expect(r.cpages).toBe(npages);
    expect(r.faults).toBe(1);

    // Check what the device read.
    expectData(r.data, size, (i) => i, 'mirror');

    await proc.munmap(ptr, size);
  });

  /* Write mmap'ed file memory. */
  mirrorTest('file_write', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const file = m().createFile(size);
    const ptr = await proc.mmap(0, size, RW, MAP_SHARED, file, 0);

    // Initialize data that the device will write to buffer->ptr.
    const mirror = ints(size, (i) => i);

    // Simulate a device writing system memory.
    const r = await fd.write(ptr, mirror);
    expect(r.cpages).toBe(npages);
    expect(r.faults).toBe(1);

    // Check what the device wrote.
    await expectCpuInts(proc, ptr, size, (i) => i, 'ptr');

    // Check that the device also wrote the file.
    const back = await file.pread(size, 0);
    expect(back.byteLength).toBe(size);
    expectInts(back, (i) => i, 'pread');

    await proc.munmap(ptr, size);
  });

  /* Migrate anonymous memory to device private memory. */
  mirrorTest('migrate', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // Migrate memory to device.
    const r = await fd.migrateToDevice(ptr, npages);
    expect(r.cpages).toBe(npages);

    // Check what the device read.
    expectData(r.data, size, (i) => i, 'mirror');

    await proc.munmap(ptr, size);
  });

  /* Migrate private file memory to device private memory. */
  mirrorTest('migrate_file_private', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const file = m().createFile(size);
    const ptr = await proc.mmap(0, size, RW, MAP_PRIVATE, file, 0);

    // Initialize buffer in system memory (copy-on-write: anonymous pages in a file VMA).
    await proc.write(ptr, ints(size, (i) => i));

    // Migrate memory to device.
    const r = await fd.migrateToDevice(ptr, npages);
    expect(r.cpages).toBe(npages);

    // Check what the device read.
    expectData(r.data, size, (i) => i, 'mirror');

    await proc.munmap(ptr, size);
  });

  /*
   * Migrate anonymous memory to device private memory and fault some of it back to system
   * memory, then try migrating the resulting mix of system and device private memory to
   * the device.
   */
  mirrorTest('migrate_fault', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // Migrate memory to device.
    const r1 = await fd.migrateToDevice(ptr, npages);
    expect(r1.cpages).toBe(npages);

    // Check what the device read.
    expectData(r1.data, size, (i) => i, 'mirror');

    // Fault half the pages back to system memory and check them.
    await expectCpuInts(proc, ptr, size / 2, (i) => i, 'ptr, first half');

    // Migrate memory to the device again.
    const r2 = await fd.migrateToDevice(ptr, npages);
    expect(r2.cpages).toBe(npages);

    // Check what the device read.
    expectData(r2.data, size, (i) => i, 'mirror, second migration');

    await proc.munmap(ptr, size);
  });

  mirrorTest('migrate_release', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // Migrate memory to device.
    const r = await fd.migrateToDevice(ptr, npages);
    expect(r.cpages).toBe(npages);

    // Check what the device read.
    expectData(r.data, size, (i) => i, 'mirror');

    // Release device memory.
    await fd.release();

    // Fault pages back to system memory and check them.
    await expectCpuInts(proc, ptr, size / 2, (i) => i, 'ptr, first half');

    await proc.munmap(ptr, size);
  });

  /* Migrate anonymous shared memory to device private memory. */
  mirrorTest('migrate_shared', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, MAP_SHARED | MAP_ANONYMOUS);

    // Migrate memory to device.
    await expect(fd.migrateToDevice(ptr, npages)).rejects.toBeErrno('ENOENT');

    await proc.munmap(ptr, size);
  });

  /*
   * Migrate anonymous memory to device memory and back to system memory multiple times.
   * In case of private zone configuration, this is done through fault pages accessed by
   * CPU. (The coherent variant's explicit MIGRATE_TO_SYS is not ported.)
   */
  mirrorTest('migrate_multiple', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;

    for (let c = 0; c < NTIMES; c++) {
      const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

      // Initialize buffer in system memory.
      await proc.write(ptr, ints(size, (i) => i));

      // Migrate memory to device.
      const r = await fd.migrateToDevice(ptr, npages);
      expect(r.cpages, `round ${c}`).toBe(npages);

      // Check what the device read.
      expectData(r.data, size, (i) => i, `round ${c}: mirror`);

      // Migrate back to system memory and check them.
      await expectCpuInts(proc, ptr, size, (i) => i, `round ${c}: ptr`);

      await proc.munmap(ptr, size);
    }
  }, SLOW);

  /* Read anonymous memory multiple times. */
  mirrorTest('anon_read_multiple', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;

    for (let c = 0; c < NTIMES; c++) {
      const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

      // Initialize buffer in system memory.
      await proc.write(ptr, ints(size, (i) => i + c));

      // Simulate a device reading system memory.
      const r = await fd.read(ptr, npages);
      expect(r.cpages, `round ${c}`).toBe(npages);
      expect(r.faults, `round ${c}`).toBe(1);

      // Check what the device read.
      expectData(r.data, size, (i) => i + c, `round ${c}: mirror`);

      await proc.munmap(ptr, size);
    }
  }, SLOW);

  /* Try reading anonymous memory while it is being unmapped. */
  mirrorTest('anon_teardown', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const random = hmmRandom(0x484d4d);

    for (let c = 0; c < NTIMES; ++c) {
      const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

      // Initialize buffer in system memory.
      await proc.write(ptr, ints(size, (i) => i + c));

      // unmap_buffer(): delay for a bit and then unmap the second half while it is being
      // read. Started first, like pthread_create before the ioctl. The delay alternates
      // between a few microtask turns (early in the READ) and a few event-loop ticks (later).
      const unmapper = (async () => {
        if (c % 2 === 0) await yieldMicrotasks(random() % 64);
        else await yieldTicks(random() % 4);
        await proc.munmap(ptr + size / 2, size / 2);
      })();

      // Simulate a device reading system memory.
      const reader = fd.read(ptr, npages).then(
        (r) => ({ ok: true as const, r }),
        (e: unknown) => ({ ok: false as const, e }),
      );

      // pthread_join.
      await joinAll(unmapper, reader);
      const rd = await reader;
      if (rd.ok) {
        expect(rd.r.cpages, `round ${c}`).toBe(npages);
        expect(rd.r.faults, `round ${c}`).toBe(1);

        // Check what the device read.
        expectData(rd.r.data, size, (i) => i + c, `round ${c}: mirror`);
      } else {
        // The C test accepts any failure of the ioctl; ours must at least be an errno.
        expect(rd.e, String(rd.e)).toBeInstanceOf(HmmError);
      }

      // hmm_buffer_free: unmap_buffer() cleared buffer->ptr, so the C test leaks the first
      // half; we unmap the whole range (the second half is already gone).
      await proc.munmap(ptr, size);
    }
  }, SLOW);

  /* Test memory snapshot without faulting in pages accessed by the device. */
  mirrorTest('mixedmap', async () => {
    const npages = 1;
    const size = npages * PAGE_SIZE;

    // Reserve a range of addresses: mmap of the device file itself.
    const ptr = await fd.mmap(size, RW, MAP_PRIVATE);

    // Simulate a device snapshotting CPU pagetables.
    const mirror = await fd.snapshot(ptr, npages);
    expect(mirror.length).toBe(npages); // cpages == npages

    // Check what the device saw.
    expect(mirror[0]).toBe(HMM_DMIRROR_PROT_READ);

    await proc.munmap(ptr, size);
  });

  /*
   * Test the hmm_range_fault() handling of large pages (PMD or PUD) that should be mapped by
   * a large page table entry.
   */
  mirrorTest('compound', async () => {
    // The C test skips when the hugetlb pool has no free page (or the mmap fails); our pool
    // is system RAM, so the mapping must work.
    const size = align(TWOMEG, DEFAULT_HUGE_PAGE_SIZE);
    const npages = size / PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON | MAP_HUGETLB);

    // Initialize the pages the device will snapshot in buffer->ptr.
    await proc.write(ptr, ints(size, (i) => i));

    // Simulate a device snapshotting CPU pagetables.
    let mirror = await fd.snapshot(ptr, npages);
    expect(mirror.length).toBe(npages);

    // Check what the device saw: one level (PMD or PUD, from page 0) for every page.
    let prot = HMM_DMIRROR_PROT_WRITE | ((mirror[0] & HMM_DMIRROR_PROT_PUD) !== 0 ? HMM_DMIRROR_PROT_PUD : HMM_DMIRROR_PROT_PMD);
    expectProt(mirror, prot, 'snapshot');

    // Make the region read-only.
    await proc.mprotect(ptr, size, PROT_READ);

    // Simulate a device snapshotting CPU pagetables.
    mirror = await fd.snapshot(ptr, npages);
    expect(mirror.length).toBe(npages);

    // Check what the device saw after mprotect(PROT_READ).
    prot = HMM_DMIRROR_PROT_READ | ((mirror[0] & HMM_DMIRROR_PROT_PUD) !== 0 ? HMM_DMIRROR_PROT_PUD : HMM_DMIRROR_PROT_PMD);
    expectProt(mirror, prot, 'snapshot after mprotect(PROT_READ)');

    await proc.munmap(ptr, size);
  });

  /* Basic check of exclusive faulting. */
  mirrorTest('exclusive', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // Map memory exclusively for device access.
    const r = await fd.exclusive(ptr, npages);
    expect(r.cpages).toBe(npages);

    // Check what the device read.
    expectData(r.data, size, (i) => i, 'mirror');

    // Fault pages back to system memory and check them: ptr[i]++ == i, then ptr[i] == i + 1.
    await cpuIncrementEveryInt(proc, ptr, size, 'ptr');

    // Check atomic access revoked.
    await fd.checkExclusive(ptr, npages);

    await proc.munmap(ptr, size);
  });

  mirrorTest('exclusive_mprotect', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // Map memory exclusively for device access.
    const r = await fd.exclusive(ptr, npages);
    expect(r.cpages).toBe(npages);

    // Check what the device read.
    expectData(r.data, size, (i) => i, 'mirror');

    await proc.mprotect(ptr, size, PROT_READ);

    // Simulate a device writing system memory (buffer->mirror: what EXCLUSIVE read).
    await expect(fd.write(ptr, r.data)).rejects.toBeErrno('EPERM');

    await proc.munmap(ptr, size);
  });

  /* Check copy-on-write works. */
  mirrorTest('exclusive_cow', async () => {
    const npages = HMM_NPAGES;
    expect(npages).not.toBe(0);
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // Map memory exclusively for device access.
    const r = await fd.exclusive(ptr, npages);
    expect(r.cpages).toBe(npages);

    const child = await proc.fork();

    // Child verifies COW independently, then exits; parent also increments to verify COW
    // works for both processes. They run at the same time, like the two processes.
    const childWork = cpuIncrementEveryInt(child, ptr, size, "child's ptr");
    const parentWork = cpuIncrementEveryInt(proc, ptr, size, "parent's ptr");

    // Parent: wait for child and then free the buffer.
    await joinAll(childWork, parentWork);
    await child.exit();

    await proc.munmap(ptr, size);
  });

  /*
   * Test get user device pages through gup_test (GUP_BASIC_TEST, GUP_FAST_BENCHMARK,
   * PIN_FAST_BENCHMARK with FOLL_LONGTERM, PIN_LONGTERM_BENCHMARK) on migrated pages, then
   * SNAPSHOT all WRITE and the data intact.
   */
  mirrorTest('hmm_gup_test', async () => {
    const npages = 4;
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // Migrate memory to device.
    const r = await fd.migrateToDevice(ptr, npages);
    expect(r.cpages).toBe(npages);
    // Check what the device read.
    expectData(r.data, size, (i) => i, 'mirror');

    expect(await gupTestExec(proc, ptr, GUP_BASIC_TEST, 1, PAGE_SIZE, 0)).toBe(0);
    expect(await gupTestExec(proc, ptr + 1 * PAGE_SIZE, GUP_FAST_BENCHMARK, 1, PAGE_SIZE, 0)).toBe(0);
    expect(await gupTestExec(proc, ptr + 2 * PAGE_SIZE, PIN_FAST_BENCHMARK, 1, PAGE_SIZE, FOLL_LONGTERM)).toBe(0);
    expect(await gupTestExec(proc, ptr + 3 * PAGE_SIZE, PIN_LONGTERM_BENCHMARK, 1, PAGE_SIZE, 0)).toBe(0);

    // Take snapshot to CPU pagetables.
    const m = await fd.snapshot(ptr, npages);
    expect(m.length).toBe(npages);
    // (device private variant)
    expect(m[0]).toBe(HMM_DMIRROR_PROT_WRITE);
    expect(m[1]).toBe(HMM_DMIRROR_PROT_WRITE);
    expect(m[2]).toBe(HMM_DMIRROR_PROT_WRITE);
    expect(m[3]).toBe(HMM_DMIRROR_PROT_WRITE);
    // Check again the content on the pages. Make sure there's no corrupted data.
    await expectCpuInts(proc, ptr, size, (i) => i, 'ptr');

    await proc.munmap(ptr, size);
  });

  /*
   * Test copy-on-write in device pages. In case of writing to COW private page(s), a page
   * fault will migrate pages back to system memory first. Then, these pages will be
   * duplicated.
   */
  mirrorTest('hmm_cow_in_device', async () => {
    const npages = 4;
    const size = npages * PAGE_SIZE;
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // Migrate memory to device.
    const r = await fd.migrateToDevice(ptr, npages);
    expect(r.cpages).toBe(npages);

    // The child does nothing until it is killed.
    const child = await proc.fork();

    // Parent process writes to COW pages(s) and gets a new copy in system. In case of
    // device private pages, this write causes a migration to system mem first.
    await proc.write(ptr, ints(size, (i) => i));

    // Terminate child and wait (SIGKILL: exit_mmap).
    await child.exit();

    // Take snapshot to CPU pagetables.
    const mirror = await fd.snapshot(ptr, npages);
    expect(mirror.length).toBe(npages);
    expectProt(mirror, HMM_DMIRROR_PROT_WRITE, 'snapshot');

    await proc.munmap(ptr, size);
  });

  /* Migrate private anonymous huge empty page. */
  mirrorTest('migrate_anon_huge_empty', async () => {
    const size = PMD_PAGESIZE;
    const oldPtr = await proc.mmap(0, 2 * size, PROT_READ, PRIV_ANON);

    const npages = size / PAGE_SIZE;
    const map = align(oldPtr, size);
    await proc.madvise(map, size, MADV_HUGEPAGE);
    const ptr = map;

    // Migrate memory to device.
    const r = await fd.migrateToDevice(ptr, npages);
    expect(r.cpages).toBe(npages);

    // Check what the device read (the C test preset buffer->mirror to 0xFF bytes).
    expectData(r.data, size, () => 0, 'mirror');

    await proc.munmap(oldPtr, 2 * size);
  });

  /* Migrate private anonymous huge zero page. */
  mirrorTest('migrate_anon_huge_zero', async () => {
    const size = PMD_PAGESIZE;
    const oldPtr = await proc.mmap(0, 2 * size, PROT_READ, PRIV_ANON);

    const npages = size / PAGE_SIZE;
    const map = align(oldPtr, size);
    await proc.madvise(map, size, MADV_HUGEPAGE);
    const ptr = map;

    // Initialize a read-only zero huge page.
    expect(await loadInt(proc, ptr)).toBe(0);

    // Migrate memory to device.
    const r = await fd.migrateToDevice(ptr, npages);
    expect(r.cpages).toBe(npages);

    // Check what the device read.
    expectData(r.data, size, () => 0, 'mirror');

    // Fault pages back to system memory and check them.
    await expectCpuInts(proc, ptr, size, () => 0, 'ptr');

    await proc.munmap(oldPtr, 2 * size);
  });

  /* Migrate private anonymous huge page and free. */
  mirrorTest('migrate_anon_huge_free', async () => {
    const size = PMD_PAGESIZE;
    const oldPtr = await proc.mmap(0, 2 * size, RW, PRIV_ANON);

    const npages = size / PAGE_SIZE;
    const map = align(oldPtr, size);
    await proc.madvise(map, size, MADV_HUGEPAGE);
    const ptr = map;

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // Migrate memory to device.
    const r = await fd.migrateToDevice(ptr, npages);
    expect(r.cpages).toBe(npages);

    // Check what the device read.
    expectData(r.data, size, (i) => i, 'mirror');

    // Try freeing it. (MADV_FREE is not in the API; MADV_DONTNEED frees the range too, and
    // zaps the device-private entries rather than leaving them.)
    await proc.madvise(map, size, MADV_DONTNEED);

    await proc.munmap(oldPtr, 2 * size);
  });

  /* Migrate private anonymous huge page and fault back to sysmem. */
  mirrorTest('migrate_anon_huge_fault', async () => {
    const size = PMD_PAGESIZE;
    const oldPtr = await proc.mmap(0, 2 * size, RW, PRIV_ANON);

    const npages = size / PAGE_SIZE;
    const map = align(oldPtr, size);
    const ptr = map;

    // MADV_COLLAPSE after the initialization is not in the API: MADV_HUGEPAGE before it
    // makes the first write fault map a THP, which we check as COLLAPSE's success.
    await proc.madvise(map, size, MADV_HUGEPAGE);

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));
    expect(isPmdMapped(proc, map), 'the block is a PMD-mapped THP').toBe(true);

    // Migrate memory to device.
    const r = await fd.migrateToDevice(ptr, npages);
    expect(r.cpages).toBe(npages);

    // Check what the device read.
    expectData(r.data, size, (i) => i, 'mirror');

    // (device private variant)
    const mirror = await fd.snapshot(ptr, npages);
    expect(mirror.length).toBe(npages);
    expectProt(
      mirror,
      HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD,
      'snapshot',
    );

    // /proc/self/pagemap: every page is a swap-type (device-private) entry, not present.
    const bad: string[] = [];
    for (let i = 0; i < npages; ++i) {
      const e = pagemapEntry(proc, ptr + i * PAGE_SIZE);
      if ((!e.swap || e.present) && bad.length < 8) bad.push(`page ${i}: swap=${e.swap} present=${e.present}`);
    }
    expect(bad, 'pagemap: PM_SWAP set, PM_PRESENT clear').toEqual([]);

    // Fault pages back to system memory and check them.
    await expectCpuInts(proc, ptr, size, (i) => i, 'ptr');

    await proc.munmap(oldPtr, 2 * size);
  });

  /* Migrate memory and fault back to sysmem after partially unmapping. */
  mirrorTest('migrate_partial_unmap_fault', async () => {
    const size = PMD_PAGESIZE;
    const unmapSize = size / 2;
    const offsets = [0, size / 4, size / 2];

    for (let useThp = 0; useThp < 2; ++useThp) {
      for (let j = 0; j < offsets.length; ++j) {
        const what = `use_thp=${useThp} offset=${offsets[j]}`;
        const oldPtr = await proc.mmap(0, 2 * size, RW, PRIV_ANON);

        const npages = size / PAGE_SIZE;
        const map = align(oldPtr, size);
        // MADV_NOHUGEPAGE is not in the API, and without MADV_HUGEPAGE there are no THPs.
        if (useThp) await proc.madvise(map, size, MADV_HUGEPAGE);
        const ptr = map;

        // Initialize buffer in system memory.
        await proc.write(ptr, ints(size, (i) => i));

        // Migrate memory to device.
        const r = await fd.migrateToDevice(ptr, npages);
        expect(r.cpages, what).toBe(npages);

        // Check what the device read.
        expectData(r.data, size, (i) => i, `${what}: mirror`);

        await proc.munmap(ptr + offsets[j], unmapSize);

        // Fault pages back to system memory and check them (outside the hole).
        const holeEnd = offsets[j] + unmapSize;
        if (offsets[j] > 0) await expectCpuInts(proc, ptr, offsets[j], (i) => i, `${what}: ptr before the hole`);
        if (holeEnd < size) {
          await expectCpuInts(proc, ptr + holeEnd, size - holeEnd, (i) => i, `${what}: ptr after the hole`, holeEnd / 4);
        }

        await proc.munmap(oldPtr, 2 * size);
      }
    }
  }, SLOW);

  mirrorTest('migrate_remap_fault', async () => {
    const size = PMD_PAGESIZE;
    const offsets = [0, size / 4, size / 2];

    for (let before = 0; before < 2; ++before) {
      for (let dontUnmap = 0; dontUnmap < 2; ++dontUnmap) {
        for (let useThp = 0; useThp < 2; ++useThp) {
          for (let j = 0; j < offsets.length; ++j) {
            const what = `before=${before} dont_unmap=${dontUnmap} use_thp=${useThp} offset=${offsets[j]}`;
            let flags = MREMAP_MAYMOVE | MREMAP_FIXED;
            if (dontUnmap) flags |= MREMAP_DONTUNMAP;

            const bufSize = 8 * size;
            const oldPtr = await proc.mmap(0, bufSize, RW, PRIV_ANON);

            const npages = size / PAGE_SIZE;
            const map = align(oldPtr, size);
            if (useThp) await proc.madvise(map, size, MADV_HUGEPAGE);
            await proc.munmap(map + size, size * 2);
            let ptr = map;
            let newPtr = 0;

            // Initialize buffer in system memory.
            await proc.write(ptr, ints(size, (i) => i));

            if (before) {
              newPtr = await proc.mremap(map, size, size, flags, map + size + offsets[j]);
              ptr = newPtr;
            }

            // Migrate memory to device.
            const r = await fd.migrateToDevice(ptr, npages);
            expect(r.cpages, what).toBe(npages);

            // Check what the device read.
            expectData(r.data, size, (i) => i, `${what}: mirror`);

            if (!before) {
              newPtr = await proc.mremap(map, size, size, flags, map + size + offsets[j]);
              ptr = newPtr;
            }

            // Fault pages back to system memory and check them.
            await expectCpuInts(proc, ptr, size, (i) => i, `${what}: ptr`);

            await proc.munmap(newPtr, size);
            await proc.munmap(oldPtr, bufSize);
          }
        }
      }
    }
  }, SLOW);

  /* Migrate private anonymous huge page with allocation errors. */
  mirrorTest('migrate_anon_huge_err', async () => {
    const size = PMD_PAGESIZE;

    let oldPtr = await proc.mmap(0, 2 * size, RW, PRIV_ANON);
    const npages = size / PAGE_SIZE;
    let map = align(oldPtr, size);
    await proc.madvise(map, size, MADV_HUGEPAGE);
    let ptr = map;

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // Migrate memory to device but force a THP allocation error.
    await fd.setFlags(HMM_DMIRROR_FLAG_FAIL_ALLOC);
    const r1 = await fd.migrateToDevice(ptr, npages);
    expect(r1.cpages).toBe(npages);

    // Check what the device read.
    expectData(r1.data, size, (i) => i, 'mirror');

    // Try faulting back a single (PAGE_SIZE) page.
    expect(await loadInt(proc, ptr + 2048 * 4)).toBe(2048);

    // unmap and remap the region to reset things.
    await proc.munmap(oldPtr, 2 * size);
    oldPtr = await proc.mmap(0, 2 * size, RW, PRIV_ANON);
    map = align(oldPtr, size);
    await proc.madvise(map, size, MADV_HUGEPAGE);
    ptr = map;

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // Migrate THP to device.
    const r2 = await fd.migrateToDevice(ptr, npages);
    expect(r2.cpages).toBe(npages);

    // Force an allocation error when faulting back a THP resident in the device.
    await fd.setFlags(HMM_DMIRROR_FLAG_FAIL_ALLOC);

    await fd.migrateToSystem(ptr, npages);
    expect(await loadInt(proc, ptr + 2048 * 4)).toBe(2048);

    await proc.munmap(oldPtr, 2 * size);
  });

  /* Migrate private anonymous huge zero page with allocation errors. */
  mirrorTest('migrate_anon_huge_zero_err', async () => {
    const size = PMD_PAGESIZE;

    let oldPtr = await proc.mmap(0, 2 * size, PROT_READ, PRIV_ANON);
    const npages = size / PAGE_SIZE;
    let map = align(oldPtr, size);
    await proc.madvise(map, size, MADV_HUGEPAGE);
    let ptr = map;

    // Migrate memory to device but force a THP allocation error.
    await fd.setFlags(HMM_DMIRROR_FLAG_FAIL_ALLOC);
    const r1 = await fd.migrateToDevice(ptr, npages);
    expect(r1.cpages).toBe(npages);

    // Check what the device read.
    expectData(r1.data, size, () => 0, 'mirror');

    // Try faulting back a single (PAGE_SIZE) page.
    expect(await loadInt(proc, ptr + 2048 * 4)).toBe(0);

    // unmap and remap the region to reset things.
    await proc.munmap(oldPtr, 2 * size);
    oldPtr = await proc.mmap(0, 2 * size, PROT_READ, PRIV_ANON);
    map = align(oldPtr, size);
    await proc.madvise(map, size, MADV_HUGEPAGE);
    ptr = map;

    // Initialize buffer in system memory (zero THP page). (The C test reads through its
    // stale `ptr`, which only works because the new mapping lands at the old address.)
    expect(await loadInt(proc, ptr)).toBe(0);

    // Migrate memory to device but force a THP allocation error.
    await fd.setFlags(HMM_DMIRROR_FLAG_FAIL_ALLOC);
    const r2 = await fd.migrateToDevice(ptr, npages);
    expect(r2.cpages).toBe(npages);

    // Fault the device memory back and check it.
    await expectCpuInts(proc, ptr, size, () => 0, 'ptr');

    await proc.munmap(oldPtr, 2 * size);
  });

  /*
   * Benchmark THP migration with different buffer sizes, the C test's: 512 KiB to 16 MiB on
   * the fixture's device, then 128 THPs (256 MiB). A mirror device's memory is one storage
   * buffer here, at most maxStorageBufferBindingSize (128 MiB on llvmpipe and SwiftShader),
   * so the last size runs on a device of its own as large as the GPU binds: 256 MiB when it
   * can, else the largest THP multiple that fits (printed as such).
   */
  mirrorTest('benchmark_thp_migration', async ({ machines }) => {
    const thpSize = PMD_PAGESIZE;
    const iterations = 5;
    const tests: [number, string][] = [
      [thpSize / 4, 'Small Buffer (512KB)'],
      [thpSize / 2, 'Half THP Size (1MB)'],
      [thpSize, 'Single THP Size (2MB)'],
      [thpSize * 2, 'Two THP Size (4MB)'],
      [thpSize * 4, 'Four THP Size (8MB)'],
      [thpSize * 8, 'Eight THP Size (16MB)'],
    ];

    console.log(`\nHMM THP Migration Benchmark\n---------------------------\nSystem page size: ${PAGE_SIZE} bytes`);
    for (const [bufferSize, name] of tests) {
      // Test with THP, then without.
      const thp = await runMigrationBenchmark(proc, fd, true, bufferSize, iterations);
      const regular = await runMigrationBenchmark(proc, fd, false, bufferSize, iterations);
      printBenchmarkResults(name, bufferSize, thp, regular);
    }

    const limits = m().devices[0].gpu.device.limits;
    const maxPages = Math.floor(Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize) / PAGE_SIZE);
    const bigSize = Math.min(thpSize * 128, Math.floor((maxPages * PAGE_SIZE) / thpSize) * thpSize);
    const big = await machines({ devices: 1, devicePages: bigSize / PAGE_SIZE });
    const bproc = big.spawn();
    const bfd = await big.devices[0].open(bproc);
    const name = bigSize === thpSize * 128 ? 'One twenty eight THP Size (256MB)'
      : `${bigSize / thpSize} THP Size (${bigSize >> 20}MB: the largest device memory this GPU binds; the C test's 256MB does not fit)`;
    const thp = await runMigrationBenchmark(bproc, bfd, true, bigSize, iterations);
    const regular = await runMigrationBenchmark(bproc, bfd, false, bigSize, iterations);
    printBenchmarkResults(name, bigSize, thp, regular);
    await bfd.close();
  }, SLOW);
});

interface BenchmarkResults {
  sysToDevTime: number;
  devToSysTime: number;
  throughputS2d: number;
  throughputD2s: number;
}

/** run_migration_benchmark(): every migration must succeed (ret == 0); the rest is timing. */
async function runMigrationBenchmark(
  proc: Process, fd: Mirror, useThp: boolean, bufferSize: number, iterations: number,
): Promise<BenchmarkResults> {
  const npages = bufferSize / PAGE_SIZE;
  const ptr = await proc.mmap(0, bufferSize, RW, PRIV_ANON);

  // Apply THP hint if requested (no MADV_NOHUGEPAGE in the API: no hint means no THP).
  if (useThp) await proc.madvise(ptr, bufferSize, MADV_HUGEPAGE);

  // Initialize memory to make sure pages are allocated.
  await proc.write(ptr, ints(bufferSize, (i) => i & 0xff));

  // Warmup iteration.
  await fd.migrateToDevice(ptr, npages);
  await fd.migrateToSystem(ptr, npages);

  let s2dTotal = 0;
  let d2sTotal = 0;
  for (let i = 0; i < iterations; i++) {
    let start = performance.now();
    await fd.migrateToDevice(ptr, npages);
    s2dTotal += performance.now() - start;

    start = performance.now();
    await fd.migrateToSystem(ptr, npages);
    d2sTotal += performance.now() - start;
  }

  const gib = bufferSize / (1024 * 1024 * 1024);
  const sysToDevTime = s2dTotal / iterations;
  const devToSysTime = d2sTotal / iterations;
  await proc.munmap(ptr, bufferSize);
  return {
    sysToDevTime,
    devToSysTime,
    throughputS2d: gib / (sysToDevTime / 1000),
    throughputD2s: gib / (devToSysTime / 1000),
  };
}

function printBenchmarkResults(name: string, bufferSize: number, thp: BenchmarkResults, regular: BenchmarkResults): void {
  const pct = (a: number, b: number) => (((a - b) / b) * 100).toFixed(1);
  console.log(
    `\n=== ${name} (${(bufferSize / (1024 * 1024)).toFixed(1)} MB) ===\n` +
      '                     | With THP        | Without THP     | Improvement\n' +
      '---------------------------------------------------------------------\n' +
      `Sys->Dev Migration   | ${thp.sysToDevTime.toFixed(3)} ms        | ${regular.sysToDevTime.toFixed(3)} ms        | ${pct(regular.sysToDevTime, thp.sysToDevTime)}%\n` +
      `Dev->Sys Migration   | ${thp.devToSysTime.toFixed(3)} ms        | ${regular.devToSysTime.toFixed(3)} ms        | ${pct(regular.devToSysTime, thp.devToSysTime)}%\n` +
      `S->D Throughput      | ${thp.throughputS2d.toFixed(2)} GB/s      | ${regular.throughputS2d.toFixed(2)} GB/s      | ${pct(thp.throughputS2d, regular.throughputS2d)}%\n` +
      `D->S Throughput      | ${thp.throughputD2s.toFixed(2)} GB/s      | ${regular.throughputD2s.toFixed(2)} GB/s      | ${pct(thp.throughputD2s, regular.throughputD2s)}%`,
  );
}

describe('hmm2', () => {
  let proc: Process;
  /** self->fd0, self->fd1: /dev/hmm_dmirror0 and /dev/hmm_dmirror1 opened on proc. */
  let fd0: Mirror;
  let fd1: Mirror;
  let opened: Mirror[] = [];

  mirrorTest.beforeEach(async ({ machines }) => {
    const machine = await machines({ devices: 2 });
    proc = machine.spawn();
    const devs = mirrorDevices(machine);
    fd0 = await devs[0].open(proc);
    opened.push(fd0);
    fd1 = await devs[1].open(proc);
    opened.push(fd1);
  });

  mirrorTest.afterEach(async () => {
    const fds = opened;
    opened = [];
    for (const f of fds) await f.close();
  });

  /* Try to migrate various memory types to device private memory. */
  mirrorTest('migrate_mixed', async () => {
    const npages = 6;
    const size = npages * PAGE_SIZE;

    // Reserve a range of addresses.
    const p = await proc.mmap(0, size, PROT_NONE, PRIV_ANON);

    // Migrating a protected area should be an error.
    await expect(fd1.migrateToDevice(p, npages)).rejects.toBeErrno('EINVAL');

    // Punch a hole after the first page address.
    await proc.munmap(p + PAGE_SIZE, PAGE_SIZE);

    // We expect an error if the vma doesn't cover the range.
    await expect(fd1.migrateToDevice(p, 3)).rejects.toBeErrno('EINVAL');

    // Page 2 will be a read-only zero page.
    await proc.mprotect(p + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    const val = (await loadInt(proc, p + 2 * PAGE_SIZE)) + 3;
    expect(val).toBe(3);

    // Page 3 will be read-only.
    await proc.mprotect(p + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE);
    await storeInt(proc, p + 3 * PAGE_SIZE, val);
    await proc.mprotect(p + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ);

    // Page 4-5 will be read-write.
    await proc.mprotect(p + 4 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE);
    await storeInt(proc, p + 4 * PAGE_SIZE, val);
    await storeInt(proc, p + 5 * PAGE_SIZE, val);

    // Now try to migrate pages 2-5 to device 1.
    const r = await fd1.migrateToDevice(p + 2 * PAGE_SIZE, 4);
    expect(r.cpages).toBe(4);

    // Page 5 won't be migrated to device 0 because it's on device 1.
    await expect(fd0.migrateToDevice(p + 5 * PAGE_SIZE, 1)).rejects.toBeErrno('ENOENT');

    await proc.munmap(p, size);
  });

  /* Test memory snapshot without faulting in pages accessed by the device. */
  mirrorTest('snapshot', async () => {
    const npages = 7;
    const size = npages * PAGE_SIZE;

    // Reserve a range of addresses.
    const p = await proc.mmap(0, size, PROT_NONE, PRIV_ANON);

    // Punch a hole after the first page address.
    await proc.munmap(p + PAGE_SIZE, PAGE_SIZE);

    // Page 2 will be read-only zero page.
    await proc.mprotect(p + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    const val = (await loadInt(proc, p + 2 * PAGE_SIZE)) + 3;
    expect(val).toBe(3);

    // Page 3 will be read-only.
    await proc.mprotect(p + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE);
    await storeInt(proc, p + 3 * PAGE_SIZE, val);
    await proc.mprotect(p + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ);

    // Page 4-6 will be read-write.
    await proc.mprotect(p + 4 * PAGE_SIZE, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE);
    await storeInt(proc, p + 4 * PAGE_SIZE, val);

    // Page 5 will be migrated to device 0.
    const r5 = await fd0.migrateToDevice(p + 5 * PAGE_SIZE, 1);
    expect(r5.cpages).toBe(1);

    // Page 6 will be migrated to device 1.
    const r6 = await fd1.migrateToDevice(p + 6 * PAGE_SIZE, 1);
    expect(r6.cpages).toBe(1);

    // Simulate a device snapshotting CPU pagetables.
    const m = await fd0.snapshot(p, npages);
    expect(m.length).toBe(npages);

    // Check what the device saw.
    expect(m[0]).toBe(HMM_DMIRROR_PROT_ERROR);
    expect(m[1]).toBe(HMM_DMIRROR_PROT_ERROR);
    expect(m[2]).toBe(HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ);
    expect(m[3]).toBe(HMM_DMIRROR_PROT_READ);
    expect(m[4]).toBe(HMM_DMIRROR_PROT_WRITE);
    expect(m[5]).toBe(HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE);
    expect(m[6]).toBe(HMM_DMIRROR_PROT_NONE);

    await proc.munmap(p, size);
  });

  /* Test two devices reading the same memory (double mapped). */
  mirrorTest('double_map', async () => {
    const npages = 6;
    const size = npages * PAGE_SIZE;

    // Reserve a range of addresses.
    const ptr = await proc.mmap(0, size, RW, PRIV_ANON);

    // Initialize buffer in system memory.
    await proc.write(ptr, ints(size, (i) => i));

    // Make region read-only.
    await proc.mprotect(ptr, size, PROT_READ);

    // Simulate device 0 reading system memory.
    const r0 = await fd0.read(ptr, npages);
    expect(r0.cpages).toBe(npages);
    expect(r0.faults).toBe(1);

    // Check what the device read.
    expectData(r0.data, size, (i) => i, 'device 0 mirror');

    // Simulate device 1 reading system memory.
    const r1 = await fd1.read(ptr, npages);
    expect(r1.cpages).toBe(npages);
    expect(r1.faults).toBe(1);

    // Check what the device read.
    expectData(r1.data, size, (i) => i, 'device 1 mirror');

    // Migrate pages to device 1 and try to read from device 0.
    const rm = await fd1.migrateToDevice(ptr, npages);
    expect(rm.cpages).toBe(npages);

    const r2 = await fd0.read(ptr, npages);
    expect(r2.cpages).toBe(npages);
    expect(r2.faults).toBe(1);

    // Check what device 0 read.
    expectData(r2.data, size, (i) => i, 'device 0 mirror after migration to device 1');

    await proc.munmap(ptr, size);
  });
});
