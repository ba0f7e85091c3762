import { PAGE_SIZE, PMD_PAGES, PMD_SIZE } from './constants.js';

/**
 * The CPU page table: x86-64's four levels (PGD → PUD → PMD → PTE, 9 bits each, 4 KiB
 * pages). A PMD slot holds either a PTE table or a 2 MiB leaf (pmd_trans_huge / hugetlb).
 *
 * An entry is a (pfn, flags) pair kept in two parallel typed arrays so that walkers
 * (hmm_range_fault above all) read 512 entries without allocating. When PTE_PRESENT is
 * clear the entry is a "swap entry" whose kind sits in the SWP_* field and whose pfn
 * field holds the swap slot, the device-private pfn, or the frame under migration —
 * as the kernel packs swp_entry_t (see include/linux/swapops.h).
 *
 * There is no page-table lock: every PTE update happens in a synchronous stretch of JS
 * (no await between reading and writing an entry), which is what the PTL guarantees.
 */

// Present-entry bits.
export const PTE_PRESENT = 0x001;
export const PTE_WRITE = 0x002;
export const PTE_DIRTY = 0x004;
export const PTE_ACCESSED = 0x008;
/** pte_special(): a pfn with no refcount held for it (the zero page, VM_MIXEDMAP pfns). */
export const PTE_SPECIAL = 0x010;
/** PMD leaf: maps 2 MiB (only in PmdTable entries). */
export const PMD_HUGE = 0x020;
/**
 * x86's _PAGE_PROTNONE: a present entry of a PROT_NONE VMA. pte_present() is true (the frame
 * stays mapped and counted) but the CPU may neither load nor store through it.
 */
export const PTE_PROTNONE = 0x040;

// Non-present entries: kind in bits 8..11 (swp_type).
export const SWP_SHIFT = 8;
export const SWP_MASK = 0xf00;
export const SWP_SWAP = 1 << SWP_SHIFT; // anonymous page in swap: pfn = slot
export const SWP_DEVICE_READ = 2 << SWP_SHIFT; // device-private page, read-only
export const SWP_DEVICE_WRITE = 3 << SWP_SHIFT; // device-private page, writable
export const SWP_EXCLUSIVE_READ = 4 << SWP_SHIFT; // device-exclusive, frame pfn
export const SWP_EXCLUSIVE_WRITE = 5 << SWP_SHIFT;
export const SWP_MIGRATION_READ = 6 << SWP_SHIFT; // frame being migrated
export const SWP_MIGRATION_WRITE = 7 << SWP_SHIFT;

export const PTRS_PER_TABLE = 512;

export function isPresent(flags: number): boolean {
  return (flags & PTE_PRESENT) !== 0;
}
/** What the CPU's walker accepts for a load (present and not PROT_NONE). */
export function swpKind(flags: number): number {
  return flags & SWP_MASK;
}
export function isDevicePrivate(flags: number): boolean {
  const k = flags & SWP_MASK;
  return (flags & PTE_PRESENT) === 0 && (k === SWP_DEVICE_READ || k === SWP_DEVICE_WRITE);
}
export function isDeviceExclusive(flags: number): boolean {
  const k = flags & SWP_MASK;
  return (flags & PTE_PRESENT) === 0 && (k === SWP_EXCLUSIVE_READ || k === SWP_EXCLUSIVE_WRITE);
}
export function isMigration(flags: number): boolean {
  const k = flags & SWP_MASK;
  return (flags & PTE_PRESENT) === 0 && (k === SWP_MIGRATION_READ || k === SWP_MIGRATION_WRITE);
}
/** Whether a non-present entry grants write once restored (is_writable_*_entry). */
export function swpWritable(flags: number): boolean {
  const k = flags & SWP_MASK;
  return k === SWP_DEVICE_WRITE || k === SWP_EXCLUSIVE_WRITE || k === SWP_MIGRATION_WRITE;
}

/** One last-level table: 512 PTEs. `used` counts non-none entries so empty tables can be freed. */
export class PteTable {
  readonly pfn = new Uint32Array(PTRS_PER_TABLE);
  readonly flags = new Uint16Array(PTRS_PER_TABLE);
  used = 0;

  set(i: number, pfn: number, flags: number): void {
    if (this.flags[i] === 0) {
      if (flags !== 0) this.used++;
    } else if (flags === 0) {
      this.used--;
    }
    this.pfn[i] = flags === 0 ? 0 : pfn;
    this.flags[i] = flags;
  }

  clear(i: number): void {
    this.set(i, 0, 0);
  }
}

/** A PMD table: 512 slots, each empty, a PTE table, or a 2 MiB leaf (pfn, flags|PMD_HUGE). */
export class PmdTable {
  readonly tables: (PteTable | null)[] = new Array<PteTable | null>(PTRS_PER_TABLE).fill(null);
  readonly pfn = new Uint32Array(PTRS_PER_TABLE);
  readonly flags = new Uint16Array(PTRS_PER_TABLE);
  used = 0;

  isHuge(i: number): boolean {
    return (this.flags[i] & PMD_HUGE) !== 0;
  }

  setHuge(i: number, pfn: number, flags: number): void {
    if (this.tables[i] !== null) throw new Error('pmd slot holds a PTE table');
    if (this.flags[i] === 0 && flags !== 0) this.used++;
    else if (this.flags[i] !== 0 && flags === 0) this.used--;
    this.pfn[i] = flags === 0 ? 0 : pfn;
    this.flags[i] = flags === 0 ? 0 : flags | PMD_HUGE;
  }

  /** The PTE table in slot i, allocated when `alloc` (pte_alloc); null if huge or absent. */
  pte(i: number, alloc: boolean): PteTable | null {
    const t = this.tables[i];
    if (t !== null || !alloc || this.flags[i] !== 0) return t;
    const n = new PteTable();
    this.tables[i] = n;
    this.used++;
    return n;
  }

  freePte(i: number): void {
    if (this.tables[i] !== null) {
      this.tables[i] = null;
      this.used--;
    }
  }
}

/** PGD and PUD levels: tables of child tables. */
class DirTable<C> {
  readonly slots: (C | null)[] = new Array<C | null>(PTRS_PER_TABLE).fill(null);
  used = 0;
}

const PUD_SPAN = PMD_SIZE * PTRS_PER_TABLE; // 1 GiB
const PGD_SPAN = PUD_SPAN * PTRS_PER_TABLE; // 512 GiB

export class PageTable {
  readonly #pgd = new DirTable<DirTable<PmdTable>>();
  /** Number of allocated tables of every level (what a /proc/<pid>/status VmPTE would count). */
  tables = 1;

  /** pmd_offset() after walking PGD/PUD; allocates the levels on the way when `alloc`. */
  pmd(addr: number, alloc: boolean): PmdTable | null {
    const gi = Math.floor(addr / PGD_SPAN) % PTRS_PER_TABLE;
    let pud = this.#pgd.slots[gi];
    if (pud === null) {
      if (!alloc) return null;
      pud = new DirTable<PmdTable>();
      this.#pgd.slots[gi] = pud;
      this.#pgd.used++;
      this.tables++;
    }
    const ui = Math.floor(addr / PUD_SPAN) % PTRS_PER_TABLE;
    let pmd = pud.slots[ui];
    if (pmd === null) {
      if (!alloc) return null;
      pmd = new PmdTable();
      pud.slots[ui] = pmd;
      pud.used++;
      this.tables++;
    }
    return pmd;
  }

  /** The PTE table covering addr (null when absent or the PMD is a huge leaf). */
  pteTable(addr: number, alloc: boolean): PteTable | null {
    const pmd = this.pmd(addr, alloc);
    if (pmd === null) return null;
    const had = pmd.tables[pmdIndex(addr)] !== null;
    const t = pmd.pte(pmdIndex(addr), alloc);
    if (!had && t !== null) this.tables++;
    return t;
  }

  /** Every allocated PMD table with the address it starts at, in address order (for walkers). */
  forEachPmd(cb: (base: number, pmd: PmdTable) => void): void {
    for (let gi = 0; gi < PTRS_PER_TABLE; gi++) {
      const pud = this.#pgd.slots[gi];
      if (pud === null) continue;
      for (let ui = 0; ui < PTRS_PER_TABLE; ui++) {
        const pmd = pud.slots[ui];
        if (pmd !== null) cb(gi * PGD_SPAN + ui * PUD_SPAN, pmd);
      }
    }
  }

  /**
   * free_pgtables(): drop every table that maps nothing inside [start, end). Called after
   * munmap and exit so that an empty address space holds no tables.
   */
  freeEmpty(start: number, end: number): void {
    for (let a = Math.floor(start / PMD_SIZE) * PMD_SIZE; a < end; a += PMD_SIZE) {
      const pmd = this.pmd(a, false);
      if (pmd === null) {
        a = Math.floor(a / PUD_SPAN) * PUD_SPAN + PUD_SPAN - PMD_SIZE;
        continue;
      }
      const i = pmdIndex(a);
      const t = pmd.tables[i];
      if (t !== null && t.used === 0) {
        pmd.freePte(i);
        this.tables--;
      }
      if (pmd.used === 0) {
        const gi = Math.floor(a / PGD_SPAN) % PTRS_PER_TABLE;
        const ui = Math.floor(a / PUD_SPAN) % PTRS_PER_TABLE;
        const pud = this.#pgd.slots[gi] as DirTable<PmdTable>;
        pud.slots[ui] = null;
        pud.used--;
        this.tables--;
        if (pud.used === 0) {
          this.#pgd.slots[gi] = null;
          this.#pgd.used--;
          this.tables--;
        }
      }
    }
  }
}

export function pmdIndex(addr: number): number {
  return Math.floor(addr / PMD_SIZE) % PTRS_PER_TABLE;
}
export function pteIndex(addr: number): number {
  return Math.floor(addr / PAGE_SIZE) % PMD_PAGES;
}
