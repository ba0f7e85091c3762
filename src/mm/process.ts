/**
 * A process: a pid and an address space, with the mm syscalls and CPU loads/stores.
 * Calls after exit() fail with ESRCH.
 */
import { err } from '../errors.js';
import { cpuRead, cpuWrite } from './access.js';
import { exitMmap } from './exit.js';
import type { MemFile } from './file.js';
import { dupMmap } from './fork.js';
import { getUserPages, type GupOptions, type UserPages } from './gup.js';
import { doMadvise } from './madvise.js';
import { MmStruct } from './mm.js';
import { doMmap, doMunmap } from './mmap.js';
import { doMprotect } from './mprotect.js';
import { doMremap } from './mremap.js';
import type { MemCore } from './pages.js';

/** What a Process needs from its machine. */
export interface ProcessHost {
  readonly core: MemCore;
  /** @internal Called by fork() and exit() to keep machine.processes current. */
  _adopt(p: Process): void;
  _reap(p: Process): void;
  _nextPid(): number;
}

export class Process {
  readonly pid: number;
  readonly mm: MmStruct;
  readonly #host: ProcessHost;

  constructor(host: ProcessHost, mm: MmStruct) {
    this.#host = host;
    this.mm = mm;
    this.pid = host._nextPid();
  }

  get exited(): boolean {
    return this.mm.exited;
  }

  #alive(): void {
    if (this.mm.exited) throw err('ESRCH', `process ${this.pid} has exited`);
  }

  async mmap(addr: number, length: number, prot: number, flags: number, file?: MemFile, offset = 0): Promise<number> {
    this.#alive();
    return doMmap(this.mm, addr, length, prot, flags, file, offset);
  }

  async munmap(addr: number, length: number): Promise<void> {
    this.#alive();
    return doMunmap(this.mm, addr, length);
  }

  async mprotect(addr: number, length: number, prot: number): Promise<void> {
    this.#alive();
    return doMprotect(this.mm, addr, length, prot);
  }

  async madvise(addr: number, length: number, advice: number): Promise<void> {
    this.#alive();
    return doMadvise(this.mm, addr, length, advice);
  }

  /**
   * mremap(2): flags MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP (src/mm/mremap.ts);
   * `newAddr` only with MREMAP_FIXED or MREMAP_DONTUNMAP. Returns the mapping's address.
   */
  async mremap(oldAddr: number, oldSize: number, newSize: number, flags: number, newAddr = 0): Promise<number> {
    this.#alive();
    return doMremap(this.mm, oldAddr, oldSize, newSize, flags, newAddr);
  }

  /**
   * get_user_pages / get_user_pages_fast (FOLL_GET): a reference on each page of
   * [addr, addr + n pages), faulting them in (device pages migrate home). See src/mm/gup.ts.
   */
  async getUserPages(addr: number, n: number, opts: Omit<GupOptions, 'longterm'> = {}): Promise<UserPages> {
    this.#alive();
    return getUserPages(this.mm, addr, n, false, opts);
  }

  /**
   * pin_user_pages / pin_user_pages_fast (FOLL_PIN, GUP_PIN_COUNTING_BIAS each), with
   * FOLL_LONGTERM's migration of pages that may not stay pinned. release() unpins.
   */
  async pinUserPages(addr: number, n: number, opts: GupOptions = {}): Promise<UserPages> {
    this.#alive();
    return getUserPages(this.mm, addr, n, true, opts);
  }

  async read(addr: number, length: number): Promise<Uint8Array> {
    this.#alive();
    return cpuRead(this.mm, addr, length);
  }

  async write(addr: number, data: Uint8Array): Promise<void> {
    this.#alive();
    return cpuWrite(this.mm, addr, data);
  }

  /** fork(): a child with a copy of this address space (dup_mmap). */
  async fork(): Promise<Process> {
    this.#alive();
    const childMm = new MmStruct(this.#host.core);
    await dupMmap(this.mm, childMm);
    const child = new Process(this.#host, childMm);
    this.#host._adopt(child);
    return child;
  }

  /** exit(): exit_mmap. A second exit() is ESRCH, like any call on a dead process. */
  async exit(): Promise<void> {
    this.#alive();
    await exitMmap(this.mm);
    this.#host._reap(this);
  }
}
