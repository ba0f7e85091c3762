/** A toy device-private memory for the mm tests: a pagemap whose pages live in host arrays. */
import type { Machine } from '../../src/mm/machine.js';
import type { MmStruct } from '../../src/mm/mm.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn,
  migratePfnFlags, migratePfnToPfn, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup,
} from '../../src/mm/migrate.js';
import type { DevPagemap } from '../../src/mm/pagemap.js';
import { PG } from './helpers.js';

/** A toy device: a pagemap, a free list and device "memory" in host arrays. */
export class FakeDevice {
  readonly owner = { name: 'fake-device' };
  readonly pm: DevPagemap;
  readonly mem = new Map<number, Uint8Array>();
  readonly free: number[] = [];
  migrationsToRam = 0;

  constructor(readonly m: Machine, npages: number, readonly passFaultPage = false) {
    this.pm = m.registerPagemap({
      npages,
      owner: this.owner,
      migrateToRam: (f) => this.migrateToRam(f.mm, f.addr, f.pfn),
      pageFree: (pfn) => { this.mem.delete(pfn); this.free.push(pfn); },
    });
    for (let i = npages - 1; i >= 0; i--) this.free.push(this.pm.basePfn + i);
  }

  alloc(): number {
    const pfn = this.free.pop()!;
    this.pm.pageInit(pfn);
    return pfn;
  }

  /** The dmirror_migrate_to_device flow, under the caller's mmap read lock. */
  async toDevice(mm: MmStruct, start: number, end: number): Promise<number> {
    const mig = await migrateVmaSetup(mm, { start, end, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmapOwner: this.owner });
    const dst = new Array<number>(mig.npages).fill(0);
    for (let i = 0; i < mig.npages; i++) {
      const s = mig.src[i];
      if ((migratePfnFlags(s) & MIGRATE_PFN_MIGRATE) === 0) continue;
      const d = this.alloc();
      const data = (migratePfnFlags(s) & MIGRATE_PFN_VALID) !== 0 ? this.m.ram.data(migratePfnToPfn(s)).slice() : new Uint8Array(PG);
      this.mem.set(d, data);
      dst[i] = migratePfn(d);
    }
    await migrateVmaPages(mig, dst);
    const n = mig.cpages;
    await migrateVmaFinalize(mig);
    return n;
  }

  /** dmirror_devmem_fault: bring one page back. */
  async migrateToRam(mm: MmStruct, addr: number, faultPfn?: number): Promise<void> {
    this.migrationsToRam++;
    const mig = await migrateVmaSetup(mm, {
      start: addr, end: addr + PG, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, pgmapOwner: this.owner,
      ...(this.passFaultPage ? { faultPage: faultPfn } : {}),
    });
    const dst = [0];
    if ((migratePfnFlags(mig.src[0]) & MIGRATE_PFN_MIGRATE) !== 0) {
      const page = this.m.ram.alloc();
      this.m.ram.data(page).set(this.mem.get(migratePfnToPfn(mig.src[0]))!);
      dst[0] = migratePfn(page);
    }
    await migrateVmaPages(mig, dst);
    await migrateVmaFinalize(mig);
  }
}

export async function withRead<T>(mm: MmStruct, fn: () => Promise<T>): Promise<T> {
  await mm.lock.readLock();
  try {
    return await fn();
  } finally {
    mm.lock.readUnlock();
  }
}

