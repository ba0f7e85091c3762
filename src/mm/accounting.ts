/**
 * An independent recount of every page reference on the machine, checked against the
 * refcounts the mm keeps. Expected references come from:
 *  - every live mm's page table: present PTEs (not pte_special), PMD leaves, device-private
 *    and device-exclusive entries (one each; a PTE mapping a THP subpage counts on the head);
 *  - every page cache (one per cached page);
 *  - registered RefHolders (migrations in flight, drivers' own references);
 *  - the zero page's permanent pin.
 * Swap slot counts are recounted from swap entries. Entries outside any VMA, special PTEs on
 * anything but the zero page, and free frames holding non-zero bytes are errors too.
 * hugetlb reservations: PhysMem's count is the sum of the live files' unconsumed ones, and
 * never more than the free 2 MiB blocks that back them.
 */
import { PAGE_SIZE } from './constants.js';
import type { Machine } from './machine.js';
import {
  isDeviceExclusive, isDevicePrivate, isMigration, isPresent, PTE_SPECIAL, PTRS_PER_TABLE, swpKind, SWP_SWAP,
} from './page-table.js';

export interface AccountingOptions {
  /** Check free frames for stale data: every backed free frame, a sample, or none. */
  zeroCheck?: 'full' | 'sample' | 'none';
}

export interface AccountingReport {
  usedFrames: number;
  freeFrames: number;
  swapSlots: number;
}

const PMD_SPAN = PAGE_SIZE * PTRS_PER_TABLE;

export function checkFrameAccounting(machine: Machine, opts: AccountingOptions = {}): AccountingReport {
  const core = machine.core;
  const ram = core.ram;
  const n = ram.npages;
  const errors: string[] = [];
  const fail = (msg: string): void => {
    if (errors.length < 20) errors.push(msg);
  };
  const exp = new Int32Array(n);
  exp[ram.zeroPfn] = 1;
  const devExp = new Map<unknown, Int32Array>();
  for (const pm of core.pagemaps.all) devExp.set(pm, new Int32Array(pm.npages));
  const swapExp = new Map<number, number>();

  const add = (pfn: number, k: number, what: string): void => {
    if (pfn < n) {
      exp[core.head(pfn)] += k;
      return;
    }
    const pm = core.pagemaps.of(pfn);
    if (pm === null) {
      fail(`${what}: pfn ${pfn} is neither RAM nor device memory`);
      return;
    }
    devExp.get(pm)![pm.head(pfn) - pm.basePfn] += k;
  };

  for (const p of machine.processes.values()) {
    const mm = p.mm;
    if (mm.exited) continue;
    mm.pgtable.forEachPmd((base, pmd) => {
      for (let i = 0; i < PTRS_PER_TABLE; i++) {
        const a = base + i * PMD_SPAN;
        if (pmd.isHuge(i)) {
          const pfn = pmd.pfn[i];
          const f = pmd.flags[i];
          const where = `pid ${p.pid} PMD 0x${a.toString(16)}`;
          const v = mm.vmas.lookup(a);
          if (v === undefined || v.end < a + PMD_SPAN) fail(`${where}: leaf outside a VMA`);
          if (isMigration(f)) continue; // the migration holds the folio (a ref holder)
          if (isDevicePrivate(f) || (isPresent(f) && core.isDeviceCoherent(pfn))) {
            // A device-private THP, or a coherent one (present PMD): one reference on the
            // device folio's head.
            if (pfn < n || core.pagemaps.of(pfn)?.isHead(pfn) !== true) fail(`${where}: device PMD names pfn ${pfn}, not a device folio head`);
            else add(pfn, 1, where);
            continue;
          }
          if (!isPresent(f)) fail(`${where}: unknown PMD entry flags 0x${f.toString(16)}`);
          if (!ram.isHead(pfn)) fail(`${where}: leaf maps pfn ${pfn}, not a compound head`);
          add(pfn, 1, where);
          continue;
        }
        const t = pmd.tables[i];
        if (t === null) continue;
        let used = 0;
        for (let j = 0; j < PTRS_PER_TABLE; j++) {
          const f = t.flags[j];
          if (f === 0) continue;
          used++;
          const addr = a + j * PAGE_SIZE;
          const pfn = t.pfn[j];
          const where = `pid ${p.pid} PTE 0x${addr.toString(16)}`;
          if (mm.vmas.lookup(addr) === undefined) fail(`${where}: entry (flags 0x${f.toString(16)}) outside any VMA`);
          if (isPresent(f)) {
            if ((f & PTE_SPECIAL) !== 0) {
              if (pfn !== ram.zeroPfn) fail(`${where}: special PTE maps pfn ${pfn}, not the zero page`);
            } else {
              if (pfn >= n && !core.isDeviceCoherent(pfn)) fail(`${where}: present PTE maps pfn ${pfn}, neither RAM nor device-coherent`);
              add(pfn, 1, where);
            }
          } else if (swpKind(f) === SWP_SWAP) {
            swapExp.set(pfn, (swapExp.get(pfn) ?? 0) + 1);
          } else if (isDevicePrivate(f)) {
            if (pfn < n) fail(`${where}: device-private entry names RAM pfn ${pfn}`);
            add(pfn, 1, where);
          } else if (isDeviceExclusive(f)) {
            add(pfn, 1, where);
          } else if (!isMigration(f)) {
            fail(`${where}: unknown entry flags 0x${f.toString(16)}`);
          }
        }
        if (used !== t.used) fail(`pid ${p.pid} PTE table 0x${a.toString(16)}: used=${t.used}, counted ${used}`);
      }
    });
  }
  let resv = 0;
  for (const f of core.files) {
    for (const pfn of f.cache.values()) add(pfn, 1, `${f.name} page cache`);
    for (const hidx of f.resv) {
      resv++;
      if (f.cache.has(hidx)) fail(`${f.name}: huge page ${hidx} is both cached and still reserved`);
    }
  }
  if (resv !== ram.hugeReserved) fail(`hugetlb reservations: files hold ${resv}, PhysMem counts ${ram.hugeReserved}`);
  if (ram.hugeReserved > ram.freeHugeBlocks) fail(`hugetlb: ${ram.hugeReserved} reserved, only ${ram.freeHugeBlocks} free 2 MiB blocks`);
  for (const h of core.refHolders) h.reportRefs((pfn, k) => add(pfn, k, 'ref holder'));

  let free = 0;
  const freeList: number[] = [];
  for (let pfn = 0; pfn < n; pfn++) {
    const rc = ram.refcount[pfn];
    if (ram.isTail(pfn)) {
      if (rc !== 1) fail(`tail frame ${pfn} has refcount ${rc} (tails stay at 1)`);
      if (exp[pfn] !== 0) fail(`tail frame ${pfn} was counted directly`);
      continue;
    }
    if (rc !== exp[pfn]) {
      fail(`frame ${pfn}${ram.isHead(pfn) ? ' (THP head)' : ''} kind ${core.pageKind[pfn]}: refcount ${rc}, expected ${exp[pfn]}`);
    }
    if (rc === 0) {
      free++;
      if (ram.isBacked(pfn)) freeList.push(pfn);
    }
  }
  if (free !== ram.freePages) fail(`free frames: ${free} with refcount 0, PhysMem counts ${ram.freePages}`);

  const mode = opts.zeroCheck ?? (n <= 65536 ? 'full' : 'sample');
  if (mode !== 'none') {
    const step = mode === 'full' ? 1 : Math.max(1, Math.floor(freeList.length / 256));
    for (let k = 0; k < freeList.length; k += step) {
      const d = ram.data(freeList[k]);
      const w = new Uint32Array(d.buffer, d.byteOffset, PAGE_SIZE / 4);
      for (let x = 0; x < w.length; x++) {
        if (w[x] !== 0) {
          fail(`free frame ${freeList[k]} is not zeroed (byte ${x * 4})`);
          break;
        }
      }
    }
  }

  for (const pm of core.pagemaps.all) {
    const e = devExp.get(pm)!;
    for (let i = 0; i < pm.npages; i++) {
      if (pm.compound[i] === 2) {
        if (pm.refcount[i] !== 1) fail(`device tail pfn ${pm.basePfn + i} has refcount ${pm.refcount[i]} (tails stay at 1)`);
        if (e[i] !== 0) fail(`device tail pfn ${pm.basePfn + i} was counted directly`);
        continue;
      }
      if (pm.refcount[i] !== e[i]) fail(`device pfn ${pm.basePfn + i}: refcount ${pm.refcount[i]}, expected ${e[i]}`);
    }
  }

  let slots = 0;
  for (const [slot, s] of core.swap.entries()) {
    slots++;
    const e = swapExp.get(slot) ?? 0;
    if (s.count !== e) fail(`swap slot ${slot}: count ${s.count}, ${e} entries name it`);
    swapExp.delete(slot);
  }
  for (const [slot, e] of swapExp) fail(`swap slot ${slot} is free but ${e} entries name it`);

  if (errors.length > 0) throw new Error(`frame accounting mismatch:\n  ${errors.join('\n  ')}`);
  return { usedFrames: n - free, freeFrames: free, swapSlots: slots };
}
