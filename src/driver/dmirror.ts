/**
 * One mirror: a process's address space mirrored by a device (lib/test_hmm.c's struct
 * dmirror, one per open file). The mirror page table lives on the GPU (MirrorEngine's
 * GpuPageTable); commands run as WGSL kernels that translate every access through it.
 *
 * Locks, as in dmirror:
 *  - `lock` (dmirror->mutex, the "update lock"): held to program or zap mirror entries and
 *    to check mmu_interval_read_retry; the invalidate callback takes it, so a fault that
 *    saw an old sequence can never install its pfns after the zap.
 *  - the mmap lock (read) around hmm_range_fault, migration and make_device_exclusive.
 * GPU work itself runs without the update lock: the invalidate callback zaps, flushes the
 * table and waits for all submitted work (the shootdown) before it returns.
 *
 * Data flows one way each: device faults go up (fault ring → servicing → hmm_range_fault),
 * invalidations come down (mmu notifier → zap → fence → write-back).
 */
import { MirrorEngine, type MirrorCommand, type MirrorOp } from '../device/mirror-engine.js';
import type { FaultRecord } from '../device/fault-queue.js';
import { PTE_DEVICE, PTE_EXCLUSIVE, PTE_WRITE, type UnmappedLeaf } from '../device/page-table.js';
import { err, HmmError } from '../errors.js';
import {
  HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, hmmPfnToMapOrder,
} from '../hmm/pfn.js';
import { hmmRange, hmmRangeFault, type HmmRange } from '../hmm/range-fault.js';
import { PAGE_SIZE, TASK_SIZE } from '../mm/constants.js';
import {
  makeDeviceExclusive, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnFlags, migratePfnToPfn, migrateVmaFinalize, migrateVmaPages,
  migrateVmaSetup,
} from '../mm/migrate.js';
import type { MmStruct } from '../mm/mm.js';
import { mmapDevicePages } from '../mm/mixedmap.js';
import type { MmuIntervalNotifier, MmuNotifierRange } from '../mm/notifier.js';
import type { Process } from '../mm/process.js';
import { VM_READ, VM_WRITE } from '../mm/vma.js';
import { Aperture } from './aperture.js';
import type { DmirrorDevice } from './dmirror-device.js';
import { Mutex } from './mutex.js';


/** HMM_DMIRROR_PROT_* (lib/test_hmm_uapi.h): SNAPSHOT's byte per page. */
export const HMM_DMIRROR_PROT_ERROR = 0xff;
export const HMM_DMIRROR_PROT_NONE = 0x00;
export const HMM_DMIRROR_PROT_READ = 0x01;
export const HMM_DMIRROR_PROT_WRITE = 0x02;
export const HMM_DMIRROR_PROT_PMD = 0x04;
export const HMM_DMIRROR_PROT_PUD = 0x08;
export const HMM_DMIRROR_PROT_ZERO = 0x10;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30;

/** HMM_RANGE_DEFAULT_TIMEOUT: how long a fault may keep colliding with invalidations. */
export const RANGE_FAULT_TIMEOUT_MS = 1000;
/** Largest group serviced by one hmm_range_fault (the 2 MiB block). */
const MAX_GROUP_PAGES = 512;
/** Most pages one GPU command covers (its io buffer: 128 MiB, llvmpipe's binding limit). */
export const MAX_COMMAND_PAGES = 32768;

export interface MirrorResult {
  /** Pages the command completed. */
  cpages: number;
  /** Replay rounds that ended in device faults, summed over the chunks (1 for a fresh buffer that fits one chunk). */
  faults: number;
}

/** Counters of one mirror, for tests and the experiment. */
export interface DmirrorStats {
  commands: number;
  rounds: number;
  faultRecords: number;
  rangeFaults: number;
  rangeFaultRetries: number;
  invalidations: number;
  skippedOwnMigrations: number;
  /** GPU commands a mirror command was split into (one per chunk). */
  chunks: number;
  /** Times a full aperture made the driver zap the entries outside the chunks in flight. */
  evictions: number;
}

function isInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n);
}

/** The command's range: page aligned, non-empty, inside the user address space. */
function checkRange(addr: unknown, npages: unknown): { start: number; end: number; npages: number } {
  if (!isInt(addr) || addr < 0 || addr % PAGE_SIZE !== 0) throw err('EINVAL', `address ${String(addr)} is not page aligned`);
  if (!isInt(npages) || npages <= 0) throw err('EINVAL', `bad page count ${String(npages)}`);
  const end = addr + npages * PAGE_SIZE;
  if (end > TASK_SIZE) throw err('EINVAL', 'range past the end of the address space');
  return { start: addr, end, npages };
}

const ACCESS_RANK: Record<FaultRecord['access'], number> = { read: 0, write: 1, atomic: 2 };

export class Dmirror {
  readonly device: DmirrorDevice;
  readonly proc: Process;
  readonly mm: MmStruct;
  readonly engine: MirrorEngine;
  readonly aperture: Aperture;
  readonly lock: Mutex;
  readonly stats: DmirrorStats = {
    commands: 0, rounds: 0, faultRecords: 0, rangeFaults: 0, rangeFaultRetries: 0, invalidations: 0, skippedOwnMigrations: 0,
    chunks: 0, evictions: 0,
  };
  #notifier: MmuIntervalNotifier | null = null;
  /** VRAM slot → mirror page, for the device pages this mirror maps. */
  readonly #devPage = new Map<number, number>();
  /** Page ranges [start, end) of the chunks being run: eviction leaves them alone. */
  readonly #pinned = new Set<{ start: number; end: number }>();
  #closed = false;

  private constructor(device: DmirrorDevice, proc: Process, engine: MirrorEngine) {
    this.device = device;
    this.proc = proc;
    this.mm = proc.mm;
    this.engine = engine;
    this.aperture = new Aperture(engine, device.machine.ram);
    this.lock = new Mutex(this.mm.core.sched, `dmirror${device.index}.mutex`);
  }

  /** dmirror_fops_open(): one notifier over the whole address space. */
  static async create(device: DmirrorDevice, proc: Process): Promise<Dmirror> {
    if (proc.mm.exited) throw err('ESRCH', 'process has exited');
    const engine = await MirrorEngine.create(device.gpu.device, {
      label: `dmirror${device.index}/pid${proc.pid}`,
      apertureSlots: device.options.aperturePages,
      vram: device.vram,
    });
    const m = new Dmirror(device, proc, engine);
    m.#notifier = await proc.mm.notifiers.insertInterval(0, TASK_SIZE, {
      invalidate: (sub, range, seq) => m.#invalidate(sub, range, seq),
    });
    return m;
  }

  get index(): number {
    return this.device.index;
  }

  get notifier(): MmuIntervalNotifier {
    if (this.#notifier === null || this.#closed) throw err('EBADF', 'mirror is closed');
    return this.#notifier;
  }

  // ---------------------------------------------------------------------------------
  // Invalidations (down).

  /**
   * dmirror_interval_invalidate(): zap [start, end) from the GPU page table and return only
   * when no GPU work submitted before can still use the old entries, with what the GPU
   * wrote copied back. A migration this device started is not echoed back to it: the
   * migration code updates our table itself.
   */
  async #invalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange, seq: number): Promise<boolean> {
    if (range.event === 'MIGRATE' && range.owner === this.device) {
      this.stats.skippedOwnMigrations++;
      return true;
    }
    if (!this.lock.tryLock()) { // (uncontended: no await, the shootdown starts at once)
      if (!range.blockable) return false;
      await this.lock.lock();
    }
    try {
      sub.setSeq(seq);
      this.stats.invalidations++;
      const first = range.start / PAGE_SIZE;
      const last = Math.min(range.end / PAGE_SIZE, TASK_SIZE / PAGE_SIZE);
      const leaves = this.engine.pt.unmap(first, last - first);
      if (leaves.length > 0) await this.#shootdown(leaves);
    } finally {
      this.lock.unlock();
    }
    return true;
  }

  /**
   * The shootdown once `leaves` are off the shadow table (the zap): flush, fence, write
   * back, free. The fence is syncWalkers(): it waits only when a round of ours may still be
   * running (between commands, and between a command's rounds, nothing on the GPU holds a
   * translation). Caller holds `lock`.
   */
  async #shootdown(leaves: readonly UnmappedLeaf[]): Promise<void> {
    if (leaves.length === 0) return;
    this.engine.flush();
    await this.engine.syncWalkers();
    if (this.aperture.mayBeDirty) await this.aperture.writeback(); // (no uploads are queued: #update flushes them)
    this.#release(leaves);
  }

  #release(leaves: readonly UnmappedLeaf[]): void {
    for (const l of leaves) {
      if ((l.flags & PTE_DEVICE) !== 0) this.#devPage.delete(l.slot);
      else this.aperture.release(l.slot);
    }
  }

  /**
   * The aperture is full: zap every entry outside the page ranges in flight (the chunks
   * being run, an exclusive grant) — zap, flush, fence, write back, release, as an
   * invalidation does — so their slots can be reused. Those pages simply fault again when a
   * later command touches them. Caller holds `lock`. Returns the slots it freed.
   */
  async #evict(): Promise<number> {
    this.aperture.flushUploads(); // the table flush below exposes entries made before
    const keep = [...this.#pinned].sort((a, b) => a.start - b.start);
    const last = TASK_SIZE / PAGE_SIZE;
    const leaves: UnmappedLeaf[] = [];
    let from = 0;
    for (const r of keep) {
      if (r.start > from) leaves.push(...this.engine.pt.unmap(from, r.start - from));
      from = Math.max(from, r.end);
    }
    if (from < last) leaves.push(...this.engine.pt.unmap(from, last - from));
    this.stats.evictions++;
    if (leaves.length === 0) return 0;
    const before = this.aperture.freeSlots;
    this.engine.flush();
    await this.engine.syncWalkers();
    await this.aperture.writeback();
    this.#release(leaves);
    return this.aperture.freeSlots - before;
  }

  /**
   * An aperture slot holding `pfn` after evicting (the aperture was full). Caller holds
   * `lock`. Only this path awaits: #update stays synchronous while slots are free.
   */
  async #acquireEvicting(pfn: number): Promise<number> {
    if (await this.#evict() === 0) {
      throw err('ENOMEM', `aperture full: all ${this.engine.aperture.slots} slots hold pages of commands in flight`);
    }
    return this.aperture.acquire(pfn);
  }

  /** Runs fn with [startPage, startPage + npages) safe from eviction. */
  async #withPinned<T>(startPage: number, npages: number, fn: () => Promise<T>): Promise<T> {
    const pin = { start: startPage, end: startPage + npages };
    this.#pinned.add(pin);
    try {
      return await fn();
    } finally {
      this.#pinned.delete(pin);
    }
  }

  /** Our entries for these VRAM slots go (a device page is leaving for system memory). */
  async dropDevicePages(slots: ReadonlySet<number>): Promise<void> {
    await this.lock.with(async () => {
      const leaves: UnmappedLeaf[] = [];
      for (const slot of slots) {
        const page = this.#devPage.get(slot);
        if (page !== undefined) leaves.push(...this.engine.pt.unmap(page, 1));
      }
      await this.#shootdown(leaves); // one flush and fence for all of them
    });
  }

  // ---------------------------------------------------------------------------------
  // Faults (up).

  /**
   * Install what hmm_range_fault returned (dmirror_do_update). Caller holds `lock` and has
   * checked mmu_interval_read_retry. Device-private pages of this device map to their VRAM
   * slot; system pages to an aperture slot holding a coherent copy (a full aperture is
   * evicted from under the lock, so the sequence check stays valid).
   */
  async #update(start: number, pfns: Uint32Array, flags: Uint8Array, extra = 0): Promise<void> {
    try {
      await this.#updateEntries(start, pfns, flags, extra);
    } finally {
      this.aperture.flushUploads(); // before the lock goes: the next table flush exposes these
    }
  }

  async #updateEntries(start: number, pfns: Uint32Array, flags: Uint8Array, extra: number): Promise<void> {
    const pt = this.engine.pt;
    const base = start / PAGE_SIZE;
    for (let i = 0; i < pfns.length; i++) {
      const f = flags[i];
      if ((f & HMM_PFN_VALID) === 0) continue;
      const page = base + i;
      const pfn = pfns[i];
      const prot = ((f & HMM_PFN_WRITE) !== 0 ? PTE_WRITE : 0) | extra;
      const old = pt.lookup(page);
      if (this.device.pagemap.contains(pfn)) {
        const slot = this.device.slotOf(pfn);
        if (old !== null && !((old.flags & PTE_DEVICE) !== 0 && old.slot === slot)) this.#release(pt.unmap(page, 1));
        pt.map(page, slot, prot | PTE_DEVICE);
        this.#devPage.set(slot, page);
        continue;
      }
      if (old !== null && (old.flags & PTE_DEVICE) === 0 && this.aperture.pfnOf(old.slot) === pfn) {
        pt.map(page, old.slot, prot); // same frame, new permissions
        continue;
      }
      if (old !== null) this.#release(pt.unmap(page, 1));
      let slot: number;
      try {
        slot = this.aperture.acquire(pfn);
      } catch (e) {
        if (!(e instanceof HmmError && e.code === 'ENOMEM')) throw e;
        slot = await this.#acquireEvicting(pfn);
      }
      pt.map(page, slot, prot);
    }
  }

  /**
   * dmirror_range_fault(): the upstream retry loop. read_begin, hmm_range_fault under the
   * mmap read lock, then under the update lock read_retry, and program the mirror. EBUSY
   * after RANGE_FAULT_TIMEOUT_MS of collisions, EFAULT/EPERM as hmm_range_fault says.
   */
  async rangeFault(range: HmmRange, extra = 0): Promise<void> {
    const sched = this.mm.core.sched;
    const deadline = sched.now() + RANGE_FAULT_TIMEOUT_MS;
    const notifier = this.notifier;
    this.stats.rangeFaults++;
    for (;;) {
      if (sched.now() > deadline) throw err('EBUSY', 'range fault kept colliding with invalidations');
      range.notifierSeq = await notifier.readBegin();
      await this.mm.lock.readLock();
      try {
        this.mm.checkAlive();
        await hmmRangeFault(this.mm, range);
      } catch (e) {
        if (e instanceof HmmError && e.code === 'EBUSY') {
          this.stats.rangeFaultRetries++;
          continue;
        }
        throw e;
      } finally {
        this.mm.lock.readUnlock();
      }
      await this.lock.lock();
      try {
        if (notifier.readRetry(range.notifierSeq)) {
          this.stats.rangeFaultRetries++;
          continue;
        }
        await this.#update(range.start, range.hmmPfns.pfns, range.hmmPfns.flags, extra);
        return;
      } finally {
        this.lock.unlock();
      }
    }
  }

  /**
   * dmirror_fault() for one round's fault records: the most intrusive access per page,
   * sorted, cut into contiguous groups of at most 2 MiB, each serviced by rangeFault (or,
   * for atomic faults, by make_device_exclusive). On overflow, every page from the lowest
   * recorded fault to the end of the command is faulted too, as dmirror faults "the rest
   * of the range", so no fault is left waiting for yet another round.
   */
  async serviceFaults(records: readonly FaultRecord[], overflow: boolean, cmd: { page: number; npages: number; op: MirrorOp }): Promise<void> {
    this.stats.faultRecords += records.length;
    const want = new Map<number, number>();
    for (const r of records) want.set(r.page, Math.max(want.get(r.page) ?? 0, ACCESS_RANK[r.access]));
    if (overflow) {
      const from = records.length > 0 ? Math.min(...records.map((r) => r.page)) : cmd.page;
      const rank = cmd.op === 'read' ? 0 : cmd.op === 'write' ? 1 : 2;
      for (let p = from; p < cmd.page + cmd.npages; p++) want.set(p, Math.max(want.get(p) ?? 0, rank));
    }
    const pages = [...want.keys()].sort((a, b) => a - b);
    for (let k = 0; k < pages.length;) {
      let e = k + 1;
      while (e < pages.length && pages[e] === pages[e - 1] + 1 && e - k < MAX_GROUP_PAGES) e++;
      const start = pages[k] * PAGE_SIZE;
      if (pages.slice(k, e).some((p) => want.get(p) === 2)) {
        await this.#exclusiveMap(start, (e - k));
      } else {
        const range = hmmRange({
          notifier: this.notifier, start, end: pages[e - 1] * PAGE_SIZE + PAGE_SIZE,
          defaultFlags: HMM_PFN_REQ_FAULT, pfnFlagsMask: HMM_PFN_REQ_WRITE, devPrivateOwner: this.device,
        });
        for (let i = k; i < e; i++) if (want.get(pages[i]) === 1) range.hmmPfns.flags[i - k] = HMM_PFN_REQ_WRITE;
        await this.rangeFault(range);
      }
      k = e;
    }
  }

  /** dmirror_exclusive's loop: make_device_exclusive each page and map it atomic. */
  async #exclusiveMap(start: number, npages: number): Promise<void> {
    await this.mm.lock.readLock();
    try {
      this.mm.checkAlive();
      for (let i = 0; i < npages; i++) {
        const a = start + i * PAGE_SIZE;
        const pfn = await makeDeviceExclusive(this.mm, a, this.device);
        await this.lock.with(() => this.#update(a, Uint32Array.of(pfn), Uint8Array.of(HMM_PFN_VALID | HMM_PFN_WRITE), PTE_EXCLUSIVE));
      }
    } finally {
      this.mm.lock.readUnlock();
    }
  }

  // ---------------------------------------------------------------------------------
  // Commands (the ioctls).

  /**
   * Pages per GPU command: the io buffer's cap (MAX_COMMAND_PAGES, or less where the device
   * binds less) and half the aperture, so a chunk's pages always fit with room to spare for
   * another command's chunk.
   */
  get chunkPages(): number {
    const lim = this.engine.device.limits;
    const io = Math.floor(Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize) / PAGE_SIZE);
    return Math.max(1, Math.min(MAX_COMMAND_PAGES, io, Math.floor(this.engine.aperture.slots / 2)));
  }

  /**
   * Run one kernel over [page, page+npages) to completion: replay rounds until every
   * invocation is done, one chunk (chunkPages) after the other — each its own GPU command,
   * its pages pinned against eviction while it runs. `faults` sums the rounds that ended in
   * faults over the chunks. `faulting` false = dmirror_do_read without faulting (ENOENT
   * when a page isn't mirrored).
   */
  async #run(op: MirrorOp, start: number, npages: number, data: Uint8Array | undefined, faulting: boolean): Promise<{ out: Uint8Array | null; faults: number }> {
    this.#checkOpen();
    this.stats.commands++;
    const chunk = this.chunkPages;
    const first = start / PAGE_SIZE;
    if (npages <= chunk) {
      const words = data === undefined ? undefined : new Uint32Array(data.buffer, data.byteOffset, data.byteLength / 4);
      return this.#withPinned(first, npages, () => this.#runChunk(op, first, npages, words, faulting));
    }
    const out = op === 'write' ? null : new Uint8Array(npages * PAGE_SIZE);
    let faults = 0;
    for (let off = 0; off < npages; off += chunk) {
      const n = Math.min(chunk, npages - off);
      const words = data === undefined ? undefined : new Uint32Array(data.buffer, data.byteOffset + off * PAGE_SIZE, n * (PAGE_SIZE / 4));
      const r = await this.#withPinned(first + off, n, () => this.#runChunk(op, first + off, n, words, faulting));
      faults += r.faults;
      if (out !== null && r.out !== null) out.set(r.out, off * PAGE_SIZE);
    }
    return { out, faults };
  }

  /** One GPU command over [page, page + npages) (at most chunkPages), run to completion. */
  async #runChunk(op: MirrorOp, page: number, npages: number, words: Uint32Array | undefined, faulting: boolean): Promise<{ out: Uint8Array | null; faults: number }> {
    this.#checkOpen();
    this.stats.chunks++;
    // Scratch io: the output is only read once every word has been written.
    const cmd: MirrorCommand = this.engine.createCommand({ op, page, npages, data: words, scratch: true });
    try {
      let faults = 0;
      for (;;) {
        await this.lock.with(() => this.aperture.syncToGpu());
        if (op !== 'read') this.aperture.mayBeDirty = true;
        const r = await this.engine.runRound(cmd);
        this.stats.rounds++;
        if (r.finished) break;
        if (!faulting) throw err('ENOENT', `page not mirrored in [0x${(page * PAGE_SIZE).toString(16)}, +${npages} pages)`);
        if (r.faults.length === 0 && !r.overflow) throw err('EIO', 'a round missed pages without recording a fault');
        faults++;
        await this.serviceFaults(r.faults, r.overflow, cmd);
      }
      // Kernel end: what the GPU wrote reaches the CPU before the command returns.
      if (op !== 'read') await this.lock.with(() => this.aperture.writeback());
      if (op === 'write') return { out: null, faults };
      const o = await cmd.readOutput();
      return { out: new Uint8Array(o.buffer, o.byteOffset, o.byteLength), faults };
    } finally {
      cmd.destroy();
    }
  }

  /** HMM_DMIRROR_READ: the device reads npages at addr. */
  async read(addr: number, npages: number): Promise<MirrorResult & { data: Uint8Array }> {
    const r = checkRange(addr, npages);
    const { out, faults } = await this.#run('read', r.start, r.npages, undefined, true);
    return { cpages: r.npages, faults, data: out! };
  }

  /** HMM_DMIRROR_WRITE: the device writes `data` (whole pages) at addr. */
  async write(addr: number, data: Uint8Array): Promise<MirrorResult> {
    if (!(data instanceof Uint8Array) || data.length === 0 || data.length % PAGE_SIZE !== 0) {
      throw err('EINVAL', 'write: data must be whole pages');
    }
    if (data.byteOffset % 4 !== 0) data = data.slice();
    const r = checkRange(addr, data.length / PAGE_SIZE);
    const { faults } = await this.#run('write', r.start, r.npages, data, true);
    return { cpages: r.npages, faults };
  }

  /** Every VMA piece of [start, end), EINVAL for a hole or a VMA without read permission. */
  #vmaPieces(start: number, end: number): { start: number; end: number; write: boolean }[] {
    const out: { start: number; end: number; write: boolean }[] = [];
    for (let a = start; a < end;) {
      const vma = this.mm.vmas.lookup(a);
      if (vma === undefined || (vma.flags & VM_READ) === 0) throw err('EINVAL', `no readable VMA at 0x${a.toString(16)}`);
      const next = Math.min(end, vma.end);
      out.push({ start: a, end: next, write: (vma.flags & VM_WRITE) !== 0 });
      a = next;
    }
    return out;
  }

  /**
   * HMM_DMIRROR_MIGRATE_TO_DEV (dmirror_migrate_to_device): move the range's anonymous
   * pages into this device's memory and map them, then read the range back through the
   * mirror without faulting — cpages counts the pages the device holds; ENOENT if some
   * page could not be moved (shared memory, say).
   */
  async migrateToDevice(addr: number, npages: number): Promise<MirrorResult & { data: Uint8Array }> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    await this.mm.lock.readLock();
    try {
      this.mm.checkAlive();
      for (const piece of this.#vmaPieces(r.start, r.end)) await this.#migrateIn(piece.start, piece.end, piece.write);
    } finally {
      this.mm.lock.readUnlock();
    }
    const { out } = await this.#run('read', r.start, r.npages, undefined, false);
    return { cpages: r.npages, faults: 0, data: out! };
  }

  /** migrate_vma_setup → alloc and copy → migrate_vma_pages → map → finalize, for one VMA piece. */
  async #migrateIn(start: number, end: number, vmaWrite: boolean): Promise<void> {
    const mig = await migrateVmaSetup(this.mm, { start, end, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmapOwner: this.device });
    const dst = new Array<number>(mig.npages).fill(0);
    const write = new Array<boolean>(mig.npages).fill(false);
    try {
      const uploads: { slot: number; data: Uint8Array }[] = [];
      for (let i = 0; i < mig.npages; i++) {
        const s = mig.src[i];
        const sf = migratePfnFlags(s);
        if ((sf & MIGRATE_PFN_MIGRATE) === 0) continue;
        const spfn = (sf & MIGRATE_PFN_VALID) !== 0 ? migratePfnToPfn(s) : null;
        if (spfn !== null && spfn >= this.device.machine.ram.npages) continue; // already device memory
        // Our own aperture may hold newer bytes than the frame: they were written back at
        // the last command end or invalidation, so the frame is current here.
        const dpfn = this.device.allocPage();
        const slot = this.device.slotOf(dpfn);
        uploads.push({ slot, data: spfn !== null ? this.device.machine.ram.data(spfn) : new Uint8Array(PAGE_SIZE) });
        dst[i] = migratePfn(dpfn);
        write[i] = (sf & MIGRATE_PFN_WRITE) !== 0 || (spfn === null && vmaWrite);
        if (write[i]) dst[i] += MIGRATE_PFN_WRITE;
      }
      this.device.vram.uploadPages(uploads);
      await migrateVmaPages(mig, dst);
      // dmirror_migrate_finalize_and_map: our own table learns the new pages directly.
      const pfns = new Uint32Array(mig.npages);
      const flags = new Uint8Array(mig.npages); // 0 (not valid): left alone by #update
      for (let i = 0; i < mig.npages; i++) {
        if ((migratePfnFlags(mig.src[i]) & MIGRATE_PFN_MIGRATE) === 0 || dst[i] === 0) continue;
        pfns[i] = migratePfnToPfn(dst[i]);
        flags[i] = HMM_PFN_VALID | (write[i] ? HMM_PFN_WRITE : 0);
      }
      await this.lock.with(() => this.#update(start, pfns, flags));
    } finally {
      await migrateVmaFinalize(mig);
    }
  }

  /** HMM_DMIRROR_MIGRATE_TO_SYS (dmirror_migrate_to_system): cpages = pages moved back. */
  async migrateToSystem(addr: number, npages: number): Promise<MirrorResult> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    let cpages = 0;
    await this.mm.lock.readLock();
    try {
      this.mm.checkAlive();
      for (const piece of this.#vmaPieces(r.start, r.end)) cpages += await this.device.evict(this.mm, piece.start, piece.end);
    } finally {
      this.mm.lock.readUnlock();
    }
    return { cpages, faults: 0 };
  }

  /** HMM_DMIRROR_SNAPSHOT (dmirror_snapshot): what the CPU maps, without faulting. */
  async snapshot(addr: number, npages: number): Promise<Uint8Array> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    const out = new Uint8Array(r.npages);
    const range = hmmRange({ notifier: this.notifier, start: r.start, end: r.end, devPrivateOwner: this.device });
    for (;;) {
      range.notifierSeq = await this.notifier.readBegin();
      await this.mm.lock.readLock();
      try {
        this.mm.checkAlive();
        await hmmRangeFault(this.mm, range);
      } catch (e) {
        if (e instanceof HmmError && e.code === 'EBUSY') continue;
        throw e;
      } finally {
        this.mm.lock.readUnlock();
      }
      const stale = await this.lock.with(() => this.notifier.readRetry(range.notifierSeq));
      if (!stale) break;
    }
    const ram = this.device.machine.ram;
    for (let i = 0; i < r.npages; i++) {
      const f = range.hmmPfns.flags[i];
      const pfn = range.hmmPfns.pfns[i];
      // dmirror_mkentry()
      if ((f & HMM_PFN_ERROR) !== 0) { out[i] = HMM_DMIRROR_PROT_ERROR; continue; }
      if ((f & HMM_PFN_VALID) === 0) { out[i] = HMM_DMIRROR_PROT_NONE; continue; }
      let prot = 0;
      const pm = this.device.machine.pagemapOf(pfn);
      if (pm !== null) prot = pm.owner === this.device ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
      else if (pfn === ram.zeroPfn) prot = HMM_DMIRROR_PROT_ZERO;
      prot |= (f & HMM_PFN_WRITE) !== 0 ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
      const order = hmmPfnToMapOrder(f);
      if (order === 9) prot |= HMM_DMIRROR_PROT_PMD;
      else if (order === 18) prot |= HMM_DMIRROR_PROT_PUD;
      out[i] = prot;
    }
    return out;
  }

  /** HMM_DMIRROR_EXCLUSIVE (dmirror_exclusive): atomic access to every page, then read back. */
  async exclusive(addr: number, npages: number): Promise<MirrorResult & { data: Uint8Array }> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    const { out } = await this.#withPinned(r.start / PAGE_SIZE, r.npages, async () => {
      await this.#exclusiveMap(r.start, r.npages);
      return this.#run('read', r.start, r.npages, undefined, false);
    });
    return { cpages: r.npages, faults: 0, data: out! };
  }

  /** HMM_DMIRROR_CHECK_EXCLUSIVE (dmirror_check_atomic): EPERM while any page is still atomic. */
  async checkExclusive(addr: number, npages: number): Promise<void> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    await this.lock.with(() => {
      for (let p = r.start / PAGE_SIZE; p < r.end / PAGE_SIZE; p++) {
        const e = this.engine.pt.lookup(p);
        if (e !== null && (e.flags & PTE_EXCLUSIVE) !== 0) throw err('EPERM', `page 0x${(p * PAGE_SIZE).toString(16)} is still exclusive`);
      }
    });
  }

  /** HMM_DMIRROR_RELEASE: evict every page of this device's memory to system memory. */
  async release(): Promise<void> {
    this.#checkOpen();
    await this.device.evictAll();
  }

  /** mmap() of the device file itself: fresh pages inserted into a VM_MIXEDMAP mapping. */
  async mmap(length: number, prot: number, flags: number): Promise<number> {
    this.#checkOpen();
    return mmapDevicePages(this.proc, length, prot, flags);
  }

  /** close(): unhook from the mm and free the GPU side. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const n = this.#notifier;
    this.#closed = true;
    if (n !== null) await n.remove();
    await this.lock.with(async () => {
      const leaves = this.engine.pt.unmap(0, TASK_SIZE / PAGE_SIZE);
      await this.engine.fence().catch(() => undefined);
      await this.aperture.writeback().catch(() => undefined);
      this.#release(leaves);
    });
    this.engine.destroy();
    this.device.mirrors.delete(this);
  }

  #checkOpen(): void {
    if (this.#closed) throw err('EBADF', 'mirror is closed');
  }
}
