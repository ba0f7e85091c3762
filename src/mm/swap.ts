/**
 * The swap device (mm/swapfile.c): slots holding one page of data each, with a per-slot
 * count of the swap entries that name it (si->swap_map). There is no swap cache: a swap-in
 * copies the slot into a fresh page that the faulting mm then owns exclusively, which is
 * what a swap-cache hit followed by a COW would give a private mapping.
 */
import { PAGE_SIZE } from './constants.js';

interface Slot {
  data: Uint8Array;
  count: number;
}

export class SwapStore {
  readonly #slots = new Map<number, Slot>();
  readonly #freeSlots: number[] = [];
  #next = 1; // slot 0 is never used, like the swap header page

  /** Slots in use. */
  get used(): number {
    return this.#slots.size;
  }

  /** add_to_swap() + swap_writepage(): a new slot with one entry naming it. */
  store(page: Uint8Array): number {
    const slot = this.#freeSlots.pop() ?? this.#next++;
    this.#slots.set(slot, { data: page.slice(0, PAGE_SIZE), count: 1 });
    return slot;
  }

  /** swap_duplicate(): one more entry (fork's copy_nonpresent_pte). */
  dup(slot: number): void {
    this.#get(slot).count++;
  }

  /** swap_free(): one entry fewer; the last frees the slot. */
  free(slot: number): void {
    const s = this.#get(slot);
    if (--s.count === 0) {
      this.#slots.delete(slot);
      this.#freeSlots.push(slot);
    }
  }

  read(slot: number): Uint8Array {
    return this.#get(slot).data;
  }

  count(slot: number): number {
    return this.#slots.get(slot)?.count ?? 0;
  }

  /** Every slot in use with its count (for the accounting check). */
  entries(): IterableIterator<[number, { readonly count: number }]> {
    return this.#slots.entries();
  }

  #get(slot: number): Slot {
    const s = this.#slots.get(slot);
    if (s === undefined) throw new Error(`swap slot ${slot} is free`);
    return s;
  }
}
