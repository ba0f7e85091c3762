/**
 * A tmpfs-like file and its page cache (mm/shmem.c, mm/filemap.c). The page cache holds one
 * reference on each of its frames; MAP_SHARED mappings map those same frames, so pread and
 * pwrite are coherent with stores through a mapping. The same class backs shared anonymous
 * mappings (shmem_zero_setup's internal file) and MAP_HUGETLB mappings (a hugetlbfs file
 * whose cache is indexed by 2 MiB page and holds compound pages).
 *
 * A file lives while its user handle is open or a VMA maps it (get_file/fput); the last
 * reference truncates the page cache (truncate_inode_pages), freeing every frame nothing
 * else maps.
 *
 * The user's handle is the file descriptor: once closed, pread, pwrite and mmap through it
 * are EBADF (fdget fails), even while mappings keep the file itself alive.
 */
import { err } from '../errors.js';
import { MAX_RW_COUNT, PAGE_SIZE, PMD_PAGES, PMD_SIZE, TASK_SIZE } from './constants.js';
import type { MmStruct } from './mm.js';
import { PG_FILE, type MemCore } from './pages.js';

/**
 * 'device': the file of a driver's own mmap (mixedmap.ts) — no page cache and no ->fault;
 * its VMA maps pages the driver inserted.
 */
export type FileKind = 'tmpfs' | 'shmem' | 'hugetlbfs' | 'device';

/** MAX_LFS_FILESIZE stand-in: a file never outgrows the address space. */
export const MAX_FILE_SIZE = TASK_SIZE;

let fileIds = 0;

export class MemFile {
  readonly name: string;
  readonly kind: FileKind;
  readonly core: MemCore;
  /**
   * The page cache: page index → pfn (tmpfs/shmem), or 2 MiB index → head pfn (hugetlbfs).
   * Each entry holds one reference on its frame.
   */
  readonly cache = new Map<number, number>();
  /**
   * hugetlbfs: the 2 MiB indices whose page is reserved and not yet allocated (the resv_map;
   * each holds one of PhysMem's reserved blocks). Empty for other kinds.
   */
  readonly resv = new Set<number>();
  /**
   * A private hugetlb mapping's reservations belong to the mm that made them
   * (HPAGE_RESV_OWNER): a fork child faults without them. null: shared, any mapping consumes.
   */
  resvOwner: MmStruct | null = null;
  #size: number;
  #refs = 1;
  #userOpen: boolean;

  constructor(core: MemCore, kind: FileKind, size: number, userOpen: boolean) {
    this.core = core;
    this.kind = kind;
    this.#size = size;
    this.#userOpen = userOpen;
    this.name = `${kind}#${++fileIds}`;
    core.files.add(this);
  }

  /** i_size in bytes. pwrite past the end grows it, as on tmpfs. */
  get size(): number {
    return this.#size;
  }

  get isHuge(): boolean {
    return this.kind === 'hugetlbfs';
  }

  /** Whether the file is still alive (some handle or mapping references it). */
  get alive(): boolean {
    return this.#refs > 0;
  }

  /** Whether the user's handle (the descriptor) is still open. */
  get isOpen(): boolean {
    return this.#userOpen && this.#refs > 0;
  }

  /** get_file(): a VMA (or fork's copy of one) now references the file. */
  get(): void {
    if (this.#refs <= 0) throw new Error(`get_file on released ${this.name}`);
    this.#refs++;
  }

  /** fput(): the last reference truncates the page cache and frees the file. */
  put(): void {
    if (this.#refs <= 0) throw new Error(`fput underflow on ${this.name}`);
    if (--this.#refs > 0) return;
    for (const pfn of this.cache.values()) this.core.putPage(pfn);
    this.cache.clear();
    // hugetlbfs_evict_inode → resv_map_release: reservations nobody consumed go back.
    this.core.ram.unreserveHuge(this.resv.size);
    this.resv.clear();
    this.core.files.delete(this);
  }

  /** close(2) of the user's handle; mappings keep the file (and its data) alive. */
  close(): void {
    if (!this.#userOpen) return;
    this.#userOpen = false;
    this.put();
  }

  /** Pages the file covers: DIV_ROUND_UP(i_size, PAGE_SIZE), past which a fault is SIGBUS. */
  get sizeInPages(): number {
    return Math.ceil(this.#size / PAGE_SIZE);
  }

  /**
   * shmem_get_folio(SGP_CACHE): the cache page at `index`, allocated (zeroed) when absent.
   * Throws ENOMEM when RAM is exhausted.
   */
  findOrCreatePage(index: number): number {
    let pfn = this.cache.get(index);
    if (pfn === undefined) {
      pfn = this.core.ram.alloc();
      this.core.pageKind[pfn] = PG_FILE;
      this.cache.set(index, pfn);
    }
    return pfn;
  }

  /**
   * hugetlbfs: the 2 MiB cache page at huge index `hidx`, allocated from the pool when absent
   * (consuming its reservation). Throws ENOMEM when the pool has no page for it.
   */
  findOrCreateHuge(hidx: number, mm: MmStruct): number {
    let head = this.cache.get(hidx);
    if (head === undefined) {
      head = this.allocHugetlb(hidx, mm);
      this.core.pageKind.fill(PG_FILE, head, head + PMD_PAGES);
      this.cache.set(hidx, head);
    }
    return head;
  }

  /**
   * alloc_hugetlb_folio(): a huge page for index `hidx` faulted by `mm`, taken from the
   * reservation of that index when `mm` may use it (vma_needs_reservation), else from the
   * unreserved free blocks (ENOMEM when there are none).
   */
  allocHugetlb(hidx: number, mm: MmStruct): number {
    const reserved = this.resv.has(hidx) && (this.resvOwner === null || this.resvOwner === mm);
    const head = this.core.ram.allocHuge(reserved);
    if (reserved) this.resv.delete(hidx);
    return head;
  }

  /**
   * hugetlb_vm_op_close() of a private mapping's piece covering huge indices
   * [first, first + n): the owner's reservations there that no fault consumed go back.
   */
  releaseReservations(mm: MmStruct, first: number, n: number): void {
    if (this.resvOwner !== mm) return;
    let k = 0;
    for (let i = first; i < first + n; i++) if (this.resv.delete(i)) k++;
    this.core.ram.unreserveHuge(k);
  }

  /** The bytes of page `index` if cached (a view into RAM), else null (a hole reads zero). */
  #page(index: number): Uint8Array | null {
    if (this.kind === 'hugetlbfs') {
      const head = this.cache.get(Math.floor(index / PMD_PAGES));
      return head === undefined ? null : this.core.ram.data(head + (index % PMD_PAGES));
    }
    const pfn = this.cache.get(index);
    return pfn === undefined ? null : this.core.ram.data(pfn);
  }

  /**
   * pread(2): up to `length` bytes at `offset`, short at EOF (0 bytes at or past it, even
   * past the largest file size, as filemap_read); holes read as zero. A length over
   * MAX_RW_COUNT is clamped to it (vfs_read/rw_verify_area), a short read.
   */
  async pread(length: number, offset: number): Promise<Uint8Array> {
    this.#checkFd('pread');
    this.#checkCounts(length, offset, 'pread');
    const n = offset >= this.#size ? 0 : Math.min(length, MAX_RW_COUNT, this.#size - offset);
    const end = offset + n;
    const out = new Uint8Array(n);
    for (let pos = offset; pos < end;) {
      const index = Math.floor(pos / PAGE_SIZE);
      const off = pos % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, end - pos);
      const page = this.#page(index);
      if (page !== null) out.set(page.subarray(off, off + n), pos - offset);
      pos += n;
    }
    return out;
  }

  /** pwrite(2): writes through the page cache (allocating pages), growing i_size. */
  async pwrite(data: Uint8Array, offset: number): Promise<number> {
    this.#checkFd('pwrite');
    if (!(data instanceof Uint8Array)) throw err('EINVAL', 'pwrite: data must be a Uint8Array');
    // vfs_write clamps the count to MAX_RW_COUNT: a short write.
    if (data.length > MAX_RW_COUNT) data = data.subarray(0, MAX_RW_COUNT);
    this.#checkCounts(data.length, offset, 'pwrite');
    if (offset + data.length > MAX_FILE_SIZE) throw err('EINVAL', 'pwrite: past the largest file size');
    if (this.kind === 'hugetlbfs') throw err('EINVAL', 'pwrite: hugetlbfs files have no write()');
    const end = offset + data.length;
    // Allocate every page first so that ENOMEM leaves the file untouched.
    const first = Math.floor(offset / PAGE_SIZE);
    const last = Math.ceil(end / PAGE_SIZE);
    let need = 0;
    for (let i = first; i < last; i++) if (!this.cache.has(i)) need++;
    if (need > this.core.ram.availablePages) throw err('ENOMEM', 'pwrite: out of memory');
    for (let pos = offset; pos < end;) {
      const index = Math.floor(pos / PAGE_SIZE);
      const off = pos % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, end - pos);
      const pfn = this.findOrCreatePage(index);
      this.core.ram.data(pfn).set(data.subarray(pos - offset, pos - offset + n), off);
      this.core.ram.markWritten(pfn);
      pos += n;
    }
    if (end > this.#size) this.#size = end;
    return data.length;
  }

  /** fdget(): a closed handle (or a released file) is EBADF, before any other check. */
  #checkFd(what: string): void {
    if (this.#refs <= 0 || (!this.#userOpen && this.kind === 'tmpfs')) throw err('EBADF', `${what}: ${this.name} is closed`);
  }

  #checkCounts(length: number, offset: number, what: string): void {
    if (!Number.isSafeInteger(length) || length < 0) throw err('EINVAL', `${what}: bad length ${length}`);
    if (!Number.isSafeInteger(offset) || offset < 0) throw err('EINVAL', `${what}: bad offset ${offset}`);
  }
}

/**
 * The hugetlbfs file of a MAP_HUGETLB mapping (hugetlb_file_setup), sized in 2 MiB pages,
 * with every page reserved (hugetlbfs_file_mmap → hugetlb_reserve_pages): ENOMEM, creating
 * nothing, when the pool cannot promise them all. `owner`: the mm of a private mapping
 * (HPAGE_RESV_OWNER), null for a shared one.
 */
export function hugetlbFileSetup(core: MemCore, length: number, owner: MmStruct | null): MemFile {
  const n = Math.ceil(length / PMD_SIZE);
  core.ram.reserveHuge(n);
  const f = new MemFile(core, 'hugetlbfs', n * PMD_SIZE, false);
  for (let i = 0; i < n; i++) f.resv.add(i);
  f.resvOwner = owner;
  return f;
}

/** shmem_zero_setup(): the internal shmem file of a shared anonymous mapping. */
export function shmemZeroSetup(core: MemCore, length: number): MemFile {
  return new MemFile(core, 'shmem', length, false);
}
