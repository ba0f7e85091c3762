/**
 * The emulated machine: system RAM (PhysMem, lazily backed), swap, device pagemaps, files
 * and processes. It knows nothing of devices: src/system.ts's System is a Machine with its
 * mirror devices on it.
 */
import { err } from '../errors.js';
import { defaultScheduler, type Scheduler } from '../sched/scheduler.js';
import { MemFile, MAX_FILE_SIZE } from './file.js';
import { MmStruct } from './mm.js';
import type { DevPagemap, PagemapOptions } from './pagemap.js';
import { MemCore } from './pages.js';
import { Process, type ProcessHost } from './process.js';

export interface MachineOptions {
  /** System RAM in 4 KiB pages (default 1 << 20 = 4 GiB, backed only where touched). */
  systemPages?: number;
  scheduler?: Scheduler;
}

export const DEFAULT_SYSTEM_PAGES = 1 << 20;

export class Machine implements ProcessHost {
  readonly core: MemCore;
  readonly options: Readonly<MachineOptions>;
  readonly processes = new Map<number, Process>();
  #pid = 0;
  #destroyed = false;

  constructor(opts: MachineOptions = {}) {
    const pages = opts.systemPages ?? DEFAULT_SYSTEM_PAGES;
    if (!Number.isSafeInteger(pages) || pages > 0xffffffff) throw err('EINVAL', `systemPages ${pages}`);
    this.options = { ...opts };
    this.core = new MemCore(pages, opts.scheduler ?? defaultScheduler());
  }

  get ram() {
    return this.core.ram;
  }

  get sched(): Scheduler {
    return this.core.sched;
  }

  get swap() {
    return this.core.swap;
  }

  /** Every live file with a page cache (user files, shmem and hugetlbfs files). */
  get files(): ReadonlySet<MemFile> {
    return this.core.files;
  }

  /** A new process with an empty address space. */
  spawn(): Process {
    this.#checkAlive();
    const p = new Process(this, new MmStruct(this.core));
    this._adopt(p);
    return p;
  }

  /** A tmpfs file of `size` bytes (holes read as zero); close() drops the user's handle. */
  createFile(size: number): MemFile {
    this.#checkAlive();
    if (!Number.isSafeInteger(size) || size < 0 || size > MAX_FILE_SIZE) throw err('EINVAL', `createFile: bad size ${size}`);
    return new MemFile(this.core, 'tmpfs', size, true);
  }

  /** memremap_pages(): a device-private pfn range above system RAM. */
  registerPagemap(opts: PagemapOptions): DevPagemap {
    this.#checkAlive();
    return this.core.pagemaps.register(opts);
  }

  /** page_pgmap(pfn_to_page(pfn)): the pagemap owning a device pfn, or null. */
  pagemapOf(pfn: number): DevPagemap | null {
    return this.core.pagemaps.of(pfn);
  }

  /** Exit every process and close every file: all RAM but the zero page ends up free. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    for (const p of [...this.processes.values()]) if (!p.exited) await p.exit();
    for (const f of [...this.core.files]) f.close();
    this.#destroyed = true;
  }

  _adopt(p: Process): void {
    this.processes.set(p.pid, p);
  }

  _reap(p: Process): void {
    this.processes.delete(p.pid);
  }

  _nextPid(): number {
    return ++this.#pid;
  }

  #checkAlive(): void {
    if (this.#destroyed) throw err('ESRCH', 'machine destroyed');
  }
}

