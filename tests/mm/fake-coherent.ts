/**
 * A toy MEMORY_DEVICE_COHERENT memory for the mm tests: a coherent pagemap (the CPU maps its
 * pages directly; their bytes are the pagemap's data(pfn)), a free list, and the driver's two
 * migrations (test_hmm's dmirror_migrate_to_device / dmirror_migrate_to_system for a
 * coherent device).
 */
import type { Machine } from '../../src/mm/machine.js';
import type { MmStruct } from '../../src/mm/mm.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_SYSTEM,
  migratePfn, migratePfnFlags, migratePfnToPfn, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup,
} from '../../src/mm/migrate.js';
import type { DevPagemap } from '../../src/mm/pagemap.js';

export class FakeCoherentDevice {
  readonly owner: object;
  readonly pm: DevPagemap;
  readonly free: number[] = [];
  /** page_free calls (each device page's last reference). */
  freed = 0;

  constructor(readonly m: Machine, npages: number, name = 'coherent') {
    this.owner = { name };
    this.pm = m.registerPagemap({
      npages,
      type: 'coherent',
      owner: this.owner,
      pageFree: (pfn) => { this.freed++; this.free.push(pfn); },
    });
    for (let i = npages - 1; i >= 0; i--) this.free.push(this.pm.basePfn + i);
  }

  get inUse(): number {
    return this.pm.npages - this.free.length;
  }

  /** dmirror_migrate_to_device onto coherent pages, under the caller's mmap read lock. Returns cpages. */
  async toDevice(mm: MmStruct, start: number, end: number): Promise<number> {
    const mig = await migrateVmaSetup(mm, { start, end, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmapOwner: this.owner });
    const dst = new Array<number>(mig.npages).fill(0);
    for (let i = 0; i < mig.npages; i++) {
      const s = mig.src[i];
      if ((migratePfnFlags(s) & MIGRATE_PFN_MIGRATE) === 0 || this.free.length === 0) continue;
      const d = this.free.pop()!;
      this.pm.pageInit(d);
      if ((migratePfnFlags(s) & MIGRATE_PFN_VALID) !== 0) this.pm.data(d).set(this.m.ram.data(migratePfnToPfn(s)));
      dst[i] = migratePfn(d) + (migratePfnFlags(s) & MIGRATE_PFN_WRITE);
    }
    await migrateVmaPages(mig, dst);
    const n = mig.cpages;
    await migrateVmaFinalize(mig);
    return n;
  }

  /**
   * dmirror_migrate_to_system (HMM_DMIRROR_MIGRATE_TO_SYS) with `flags` (the kernel's:
   * SELECT_DEVICE_PRIVATE | SELECT_DEVICE_COHERENT), under the caller's mmap read lock.
   * Returns the pages that moved.
   */
  async toSystem(mm: MmStruct, start: number, end: number, flags = MIGRATE_VMA_SELECT_DEVICE_COHERENT, owner: unknown = this.owner): Promise<number> {
    const mig = await migrateVmaSetup(mm, { start, end, flags, pgmapOwner: owner });
    const dst = new Array<number>(mig.npages).fill(0);
    let moved = 0;
    for (let i = 0; i < mig.npages; i++) {
      const s = mig.src[i];
      if ((migratePfnFlags(s) & (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_VALID)) !== (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_VALID)) continue;
      const frame = this.m.ram.alloc();
      this.m.ram.data(frame).set(this.pm.data(migratePfnToPfn(s)));
      dst[i] = migratePfn(frame);
      moved++;
    }
    await migrateVmaPages(mig, dst);
    await migrateVmaFinalize(mig);
    return moved;
  }
}
