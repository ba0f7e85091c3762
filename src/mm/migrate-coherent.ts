/**
 * migrate_device_coherent_folio() (mm/migrate_device.c): a device-coherent page goes to a
 * fresh system frame — the core mm's own migration, no driver callback, since the CPU can
 * read the device page in place. Used where such a page may not stay (a FOLL_LONGTERM pin:
 * check_and_migrate_movable_pages). The kernel walks the pfn (migrate_device_range); the
 * port migrates the page at the address that maps it (migrate_vma over one page), which
 * moves every mapping of it through the rmap as migrate_vma does. A coherent THP is split
 * first (migrate_device_coherent_folio takes small folios only): migrateVmaSetup's
 * SELECT_DEVICE_COHERENT splits a present PMD of the owner's folio it will not take whole.
 */
import { err, HmmError } from '../errors.js';
import { PAGE_SIZE } from './constants.js';
import {
  MIGRATE_PFN_VALID, MIGRATE_VMA_SELECT_DEVICE_COHERENT, migratePfn, migratePfnFlags, migratePfnToPfn,
  migrateVmaFinalize, migrateVmaPages, migrateVmaSetup,
} from './migrate.js';
import type { MmStruct } from './mm.js';

/**
 * Migrate the device-coherent page `pfn` mapped at `addr` of mm to system memory. The caller
 * holds the mmap lock. Returns true when it moved; false when it was not collected (another
 * migration holds it, a pin) or no frame was free — the caller's retry decides (the kernel's
 * check_and_migrate_movable_pages returns -EAGAIN / -ENOMEM alike).
 */
export async function migrateDeviceCoherentPage(mm: MmStruct, addr: number, pfn: number): Promise<boolean> {
  const core = mm.core;
  const pm = core.pagemaps.of(pfn);
  if (pm === null || !pm.coherent) throw err('EINVAL', `migrate_device_coherent_folio: pfn ${pfn} is not device-coherent`);
  const a = addr - (addr % PAGE_SIZE);
  const mig = await migrateVmaSetup(mm, { start: a, end: a + PAGE_SIZE, flags: MIGRATE_VMA_SELECT_DEVICE_COHERENT, pgmapOwner: pm.owner });
  let moved = false;
  try {
    const s = mig.src[0];
    if ((migratePfnFlags(s) & MIGRATE_PFN_VALID) === 0 || migratePfnToPfn(s) !== pfn) return false;
    let frame: number;
    try {
      frame = core.ram.alloc();
    } catch (e) {
      if (e instanceof HmmError && e.code === 'ENOMEM') return false;
      throw e;
    }
    // copy_highpage(): the CPU copies the device page itself.
    core.ram.data(frame).set(pm.data(pfn));
    core.ram.markWritten(frame);
    await migrateVmaPages(mig, [migratePfn(frame)]);
    moved = true;
  } finally {
    await migrateVmaFinalize(mig);
  }
  return moved;
}
