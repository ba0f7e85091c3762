/**
 * get_user_pages / pin_user_pages (mm/gup.c): the slow path's faults (a device-private page
 * migrates home), gup-fast taking present pages without the mmap lock and falling back on
 * the rest, FOLL_PIN's GUP_PIN_COUNTING_BIAS that migrate_vma_check_page refuses to move,
 * fork copying a pinned page for the child, an unsharing read pin, and EFAULT where Linux
 * answers it — nothing leaked (the machine fixture re-counts every reference at teardown).
 */
import { describe, expect } from 'vitest';
import { GUP_PIN_COUNTING_BIAS, MAP_ANONYMOUS, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { isDevicePrivate } from '../../src/mm/page-table.js';
import { FakeDevice, withRead } from './fake-device.js';
import { account, entryAt, expectBytes, fill, PG, pattern } from './helpers.js';
import { machineTest } from '../support/machine.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('GUP and pins', () => {
  machineTest('a pin of device-private pages faults them home (handle_mm_fault) and holds BIAS on each', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 16);
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, pattern(4 * PG, 1));
    await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 4 * PG));
    expect(isDevicePrivate(entryAt(p.mm, a)!.flags)).toBe(true);
    for (const fast of [false, true]) {
      const pins = await p.pinUserPages(a, 4, { write: true, fast });
      expect(pins.count).toBe(4);
      for (let i = 0; i < 4; i++) {
        const e = entryAt(p.mm, a + i * PG)!;
        expect(isDevicePrivate(e.flags)).toBe(false);
        expect(pins.pfns[i]).toBe(e.pfn);
        expect(m.core.refcount(e.pfn)).toBe(1 + GUP_PIN_COUNTING_BIAS);
        expectBytes(pins.data(i), pattern(4 * PG, 1).subarray(i * PG, (i + 1) * PG));
      }
      pins.release();
      for (let i = 0; i < 4; i++) expect(m.core.refcount(pins.pfns[i])).toBe(1);
      expect(() => pins.release()).toThrowErrno('EINVAL');
      await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 4 * PG));
    }
    expect(dev.migrationsToRam).toBe(8);
    expectBytes(await p.read(a, 4 * PG), pattern(4 * PG, 1));
  });

  machineTest('get_user_pages takes one reference (FOLL_GET), and it too blocks a migration', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 16);
    const p = m.spawn();
    const a = await p.mmap(0, 2 * PG, RW, ANON);
    await p.write(a, pattern(2 * PG, 2));
    const refs = await p.getUserPages(a, 1);
    expect(m.core.refcount(refs.pfns[0])).toBe(2);
    expect(await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 2 * PG))).toBe(1);
    expect(isDevicePrivate(entryAt(p.mm, a)!.flags)).toBe(false);
    expect(isDevicePrivate(entryAt(p.mm, a + PG)!.flags)).toBe(true);
    refs.release();
  });

  machineTest('a long-term pin blocks a migration to the device; after unpin the page moves', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 16);
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, pattern(4 * PG, 3));
    const pin = await p.pinUserPages(a + PG, 1, { write: true, longterm: true });
    const pinned = pin.pfns[0];
    expect(await withRead(p.mm, () => dev.toDevice(p.mm, a, a + 4 * PG))).toBe(3);
    expect(entryAt(p.mm, a + PG)!.pfn).toBe(pinned); // migrate_vma_check_page: restored
    // The device's DMA through the pin and the CPU see the same page.
    pin.data(0).set(fill(16, 0xab));
    expectBytes((await p.read(a + PG, 16)), fill(16, 0xab));
    pin.release();
    expect(await withRead(p.mm, () => dev.toDevice(p.mm, a + PG, a + 2 * PG))).toBe(1);
    expect(isDevicePrivate(entryAt(p.mm, a + PG)!.flags)).toBe(true);
  });

  machineTest('gup-fast takes present pages without the mmap lock and falls back on the rest', async ({ machine: m }) => {
    const dev = new FakeDevice(m, 16);
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    await p.write(a, pattern(4 * PG, 4));
    await withRead(p.mm, () => dev.toDevice(p.mm, a + 2 * PG, a + 4 * PG));
    // Someone holds the mmap lock for write: only the lockless part can finish.
    await p.mm.lock.writeLock();
    let done = false;
    const call = p.pinUserPages(a, 2, { fast: true, write: true }).then((r) => { done = true; return r; });
    const slow = p.pinUserPages(a, 4, { fast: true, write: true });
    for (let k = 0; k < 20; k++) await Promise.resolve();
    expect(done).toBe(true); // both pages present: never needed the lock
    expect(dev.migrationsToRam).toBe(0); // the device pages wait for the slow path
    p.mm.lock.writeUnlock();
    const all = await slow;
    expect(all.count).toBe(4);
    expect(dev.migrationsToRam).toBe(2);
    (await call).release();
    all.release();
  });

  machineTest('bad input: EFAULT at a hole, a write pin of a read-only or PROT_NONE VMA; a range past the VMA end is short', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, 4 * PG, RW, ANON);
    const ro = await p.mmap(0, PG, PROT_READ, ANON);
    const none = await p.mmap(0, PG, PROT_NONE, ANON);
    const used = account(m).usedFrames;
    await expect(p.pinUserPages(a + 64 * PG * 1024, 1)).rejects.toBeErrno('EFAULT');
    await expect(p.pinUserPages(ro, 1, { write: true })).rejects.toBeErrno('EFAULT');
    await expect(p.getUserPages(none, 1)).rejects.toBeErrno('EFAULT');
    await expect(p.pinUserPages(-1, 1)).rejects.toBeErrno('EINVAL');
    await expect(p.getUserPages(a, 1, { longterm: true } as never)).rejects.toBeErrno('EINVAL');
    expect(account(m).usedFrames).toBe(used);
    await p.munmap(a + 2 * PG, 2 * PG);
    const short = await p.pinUserPages(a, 4, { write: true });
    expect(short.count).toBe(2); // __get_user_pages returns the pages done
    short.release();
    const r = await p.pinUserPages(ro, 1);
    expect(r.pfns[0]).toBe(m.core.ram.zeroPfn); // read pin of an untouched page: the zero page, no count
    r.release();
  });

  machineTest('fork copies a pinned page for the child: the parent keeps writing into the pinned page', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, PG, RW, ANON);
    await p.write(a, fill(PG, 1));
    const pin = await p.pinUserPages(a, 1, { write: true });
    const c = await p.fork();
    await p.write(a, fill(8, 2));
    expect(entryAt(p.mm, a)!.pfn).toBe(pin.pfns[0]);
    expectBytes(pin.data(0).subarray(0, 8), fill(8, 2));
    expectBytes(await c.read(a, 8), fill(8, 1));
    pin.release();
    await c.exit();
  });

  machineTest('a read pin of a page shared after fork unshares it first (gup_must_unshare)', async ({ machine: m }) => {
    const p = m.spawn();
    const a = await p.mmap(0, PG, RW, ANON);
    await p.write(a, fill(PG, 5));
    const c = await p.fork();
    const shared = entryAt(p.mm, a)!.pfn;
    const pin = await p.pinUserPages(a, 1);
    expect(pin.pfns[0]).not.toBe(shared);
    expect(entryAt(c.mm, a)!.pfn).toBe(shared);
    expectBytes(pin.data(0).subarray(0, 4), fill(4, 5));
    pin.release();
    // In a read-only mapping the shared page is pinned as it is (no write fault to unshare).
    const c2 = await p.fork();
    await p.mprotect(a, PG, PROT_READ);
    const ro = await p.pinUserPages(a, 1);
    expect(ro.pfns[0]).toBe(entryAt(c2.mm, a)!.pfn);
    ro.release();
    await c2.exit();
    await c.exit();
  });
});
