import { err } from '../errors.js';
import { PAGE_SIZE, PMD_PAGES } from './constants.js';

/**
 * System RAM: frames numbered 0..npages-1 (pfns), each with a refcount (page_ref_count).
 * Backing store is allocated lazily in 2 MiB chunks so a machine can have many GiB of
 * "RAM" while only touched memory costs host memory, and a 2 MiB compound page is one
 * contiguous chunk (what the GPU side uploads in one copy).
 *
 * pfn 0 is the shared zero page (ZERO_PAGE(0)): its refcount is pinned and it is never
 * handed out or written. Frames are zeroed when freed, so alloc() always returns zeroes
 * (the kernel clears on allocation; zeroing on free also leaves no stale data behind).
 */
export class PhysMem {
  readonly npages: number;
  /** The shared zero page. */
  readonly zeroPfn = 0;
  /** page_ref_count() of every frame; 0 = free. */
  readonly refcount: Int32Array;
  /** Per-frame flags: bit 0 = head of a 2 MiB compound page, bit 1 = tail. */
  readonly compound: Uint8Array;
  /**
   * Write generation of every frame, bumped whenever the CPU side writes its bytes (stores,
   * pwrite, COW and swap-in copies, zeroing on free). A device that keeps a copy of a frame
   * in GPU memory compares generations to know its copy is stale: the coherence a
   * cache-coherent interconnect would give a real device.
   */
  readonly gen: Uint32Array;
  /** Bumped with every markWritten(): when unchanged, no frame changed since a reader looked. */
  epoch = 0;
  /** The huge zero page's head while it exists (MemCore.getHugeZero), else -1. */
  hugeZero = -1;
  readonly #chunks: (Uint8Array | null)[];
  /** Free single frames (LIFO) and free aligned 512-frame blocks, like two buddy orders. */
  readonly #free: number[] = [];
  readonly #freeHuge: number[] = [];
  #freeCount = 0;
  /**
   * Free 2 MiB blocks promised to hugetlb mappings (resv_huge_pages): only a fault that
   * consumes a reservation may take them, so free blocks never drop below this count.
   */
  #resvHuge = 0;

  constructor(npages: number) {
    if (!Number.isInteger(npages) || npages < PMD_PAGES * 2) {
      throw err('EINVAL', `systemPages must be an integer >= ${PMD_PAGES * 2}`);
    }
    this.npages = npages;
    this.refcount = new Int32Array(npages);
    this.compound = new Uint8Array(npages);
    this.gen = new Uint32Array(npages);
    this.#chunks = new Array<Uint8Array | null>(Math.ceil(npages / PMD_PAGES)).fill(null);
    // Block 0 holds the zero page; its other 511 frames go to the single-frame list.
    // Whole aligned blocks above it serve huge allocations first, split on demand.
    for (let b = Math.floor(npages / PMD_PAGES) - 1; b >= 1; b--) this.#freeHuge.push(b * PMD_PAGES);
    for (let pfn = npages - 1; pfn >= Math.floor(npages / PMD_PAGES) * PMD_PAGES; pfn--) this.#free.push(pfn);
    for (let pfn = PMD_PAGES - 1; pfn >= 1; pfn--) this.#free.push(pfn);
    this.#freeCount = npages - 1;
    this.refcount[0] = 1; // pinned forever
  }

  get freePages(): number {
    return this.#freeCount;
  }

  /** Free frames that an allocation without a hugetlb reservation may take. */
  get availablePages(): number {
    return this.#freeCount - this.#resvHuge * PMD_PAGES;
  }

  /** Free 2 MiB blocks (the hugetlb pool's free pages, reserved ones included). */
  get freeHugeBlocks(): number {
    return this.#freeHuge.length;
  }

  /** Huge pages reserved and not yet consumed (HugePages_Rsvd). */
  get hugeReserved(): number {
    return this.#resvHuge;
  }

  /**
   * hugetlb_acquire_pages / hugetlb_reserve_pages: set aside `n` free 2 MiB blocks, or
   * ENOMEM (changing nothing) when fewer than `n` unreserved ones are free.
   */
  reserveHuge(n: number): void {
    if (this.#freeHuge.length - this.#resvHuge < n) {
      throw err('ENOMEM', `hugetlb: ${n} huge pages wanted, ${this.#freeHuge.length - this.#resvHuge} free and unreserved`);
    }
    this.#resvHuge += n;
  }

  /** hugetlb_acct_memory(-n): give back reservations that were not consumed. */
  unreserveHuge(n: number): void {
    if (n < 0 || n > this.#resvHuge) throw new Error(`unreserve of ${n} huge pages, ${this.#resvHuge} reserved`);
    this.#resvHuge -= n;
  }

  /** The 4096 bytes of a frame (a view: writes go to RAM). */
  data(pfn: number): Uint8Array {
    const off = (pfn % PMD_PAGES) * PAGE_SIZE;
    return this.#chunk(pfn).subarray(off, off + PAGE_SIZE);
  }

  /** The 2 MiB chunk holding pfn's bytes, backed on first use. */
  #chunk(pfn: number): Uint8Array {
    const c = Math.floor(pfn / PMD_PAGES);
    let chunk = this.#chunks[c];
    if (chunk === null) {
      chunk = new Uint8Array(PMD_PAGES * PAGE_SIZE);
      this.#chunks[c] = chunk;
    }
    return chunk;
  }

  /** The bytes of frames [pfn, pfn + n), which lie in one 2 MiB chunk (a view: writes go to RAM). */
  frames(pfn: number, n: number): Uint8Array {
    const off = (pfn % PMD_PAGES) * PAGE_SIZE;
    if (n < 1 || off + n * PAGE_SIZE > PMD_PAGES * PAGE_SIZE) throw new Error(`frames ${pfn} +${n} cross a 2 MiB chunk`);
    return this.#chunk(pfn).subarray(off, off + n * PAGE_SIZE);
  }

  /** Whether host memory backs pfn's chunk yet (checkers read untouched RAM as zero). */
  isBacked(pfn: number): boolean {
    return this.#chunks[Math.floor(pfn / PMD_PAGES)] !== null;
  }

  /** The CPU side wrote frames [pfn, pfn+n): see `gen`. */
  markWritten(pfn: number, n = 1): void {
    for (let i = pfn; i < pfn + n; i++) this.gen[i]++;
    this.epoch++;
  }

  /** The 2 MiB of a compound page starting at head pfn `head`. */
  hugeData(head: number): Uint8Array {
    return this.#chunk(head);
  }

  /** alloc_page(GFP_HIGHUSER | __GFP_ZERO): refcount 1, contents zero. ENOMEM when full. */
  alloc(): number {
    let pfn = this.#free.pop();
    if (pfn === undefined) {
      // Splitting a block: never one that a hugetlb reservation counts on.
      const block = this.#freeHuge.length > this.#resvHuge ? this.#freeHuge.pop() : undefined;
      if (block === undefined) throw err('ENOMEM', 'out of system memory');
      for (let p = block + PMD_PAGES - 1; p > block; p--) this.#free.push(p);
      pfn = block;
    }
    this.#freeCount--;
    this.refcount[pfn] = 1;
    return pfn;
  }

  /**
   * A zeroed, 2 MiB-aligned compound page (alloc_pages(order 9)); ENOMEM when fragmented.
   * `reserved`: the caller consumes one hugetlb reservation (and cannot fail); otherwise the
   * reserved blocks are out of reach.
   */
  allocHuge(reserved = false): number {
    if (reserved) {
      if (this.#resvHuge <= 0) throw new Error('allocHuge from a reservation, none held');
      this.#resvHuge--;
    } else if (this.#freeHuge.length <= this.#resvHuge) {
      throw err('ENOMEM', 'no free unreserved 2 MiB block');
    }
    const head = this.#freeHuge.pop();
    if (head === undefined) throw err('ENOMEM', 'no free 2 MiB block');
    this.#freeCount -= PMD_PAGES;
    this.compound[head] = 1;
    this.compound.fill(2, head + 1, head + PMD_PAGES);
    // A compound page's refcount lives in its head (folio_ref_count); tails stay at 1 so
    // that no tail is ever mistaken for a free frame.
    this.refcount.fill(1, head, head + PMD_PAGES);
    return head;
  }

  isHead(pfn: number): boolean {
    return this.compound[pfn] === 1;
  }

  isTail(pfn: number): boolean {
    return this.compound[pfn] === 2;
  }

  /** get_page(): one more reference. */
  get(pfn: number): void {
    if (this.refcount[pfn] <= 0) throw new Error(`get_page on free frame ${pfn}`);
    this.refcount[pfn]++;
  }

  /** put_page(): drop a reference; the last one zeroes and frees the frame (or block). */
  put(pfn: number): void {
    if (pfn === this.zeroPfn) return;
    const rc = --this.refcount[pfn];
    if (rc > 0) return;
    if (rc < 0) throw new Error(`put_page underflow on frame ${pfn}`);
    if (this.compound[pfn] === 1) {
      if (pfn === this.hugeZero) this.hugeZero = -1;
      this.hugeData(pfn).fill(0);
      this.markWritten(pfn, PMD_PAGES);
      this.compound.fill(0, pfn, pfn + PMD_PAGES);
      this.refcount.fill(0, pfn, pfn + PMD_PAGES);
      this.#freeHuge.push(pfn);
      this.#freeCount += PMD_PAGES;
      return;
    }
    if (this.compound[pfn] === 2) throw new Error(`put_page on tail frame ${pfn}`);
    const off = (pfn % PMD_PAGES) * PAGE_SIZE; // (zeroed in its chunk: no view per freed frame)
    this.#chunk(pfn).fill(0, off, off + PAGE_SIZE);
    this.markWritten(pfn);
    this.#free.push(pfn);
    this.#freeCount++;
  }

  /**
   * split_huge_page(): the compound page at `head` becomes 512 order-0 frames, each
   * holding `perPageRefs[i]` references (the caller knows who maps each piece).
   */
  splitHuge(head: number, perPageRefs: (i: number) => number): void {
    if (this.compound[head] !== 1) throw new Error(`split of non-head frame ${head}`);
    this.compound.fill(0, head, head + PMD_PAGES);
    for (let i = 0; i < PMD_PAGES; i++) {
      const refs = perPageRefs(i);
      this.refcount[head + i] = refs;
      if (refs === 0) {
        this.data(head + i).fill(0);
        this.markWritten(head + i);
        this.#free.push(head + i);
        this.#freeCount++;
      }
    }
  }
}
