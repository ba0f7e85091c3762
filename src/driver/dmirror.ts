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
import { PTE_DEVICE, PTE_EXCLUSIVE, PTE_WRITE, type UnmappedLeaf } from '../device/page-table.js';
import { err, HmmError } from '../errors.js';
import {
  HMM_PFN_ERROR, HMM_PFN_VALID, HMM_PFN_WRITE, hmmPfnToMapOrder,
} from '../hmm/pfn.js';
import { hmmRange, hmmRangeFault } from '../hmm/range-fault.js';
import { hmmMirrorRegister, hmmMirrorUnregister, type Hmm, type HmmMirrorOps } from '../hmm/range-v52.js';
import { PAGE_SIZE, TASK_SIZE } from '../mm/constants.js';
import {
  makeDeviceExclusive, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_SYSTEM, migratePfn, migratePfnFlags, migratePfnToPfn, migrateVmaFinalize, migrateVmaPages,
  migrateVmaSetup,
} from '../mm/migrate.js';
import type { MmStruct } from '../mm/mm.js';
import { mmapDevicePages } from '../mm/mixedmap.js';
import { isDeviceExclusive, isDevicePrivate, isPresent, pmdIndex, pteIndex } from '../mm/page-table.js';
import type { MmuIntervalNotifier, MmuNotifierRange } from '../mm/notifier.js';
import type { Process } from '../mm/process.js';
import { VM_READ, VM_WRITE } from '../mm/vma.js';
import type { MirrorResult } from '../api.js';
import { Aperture } from './aperture.js';
import type { DmirrorDevice } from './dmirror-device.js';
import { Mutex } from './mutex.js';
import { FaultServicer, type ServicerOptions, type ServiceTarget } from './servicer.js';

/**
 * dmirror's own fault servicing (lib/test_hmm.c's dmirror_fault): everything in the fault
 * buffer before one replay, faults grouped into 2 MiB blocks clipped to the VMA and the
 * command, the upstream retry loop, and on an overflow the rest of the command's range —
 * so a fresh buffer needs exactly one fault round, as the selftests expect.
 */
export const DMIRROR_SERVICER: Partial<ServicerOptions> = {
  batchSize: Infinity, replay: 'once', window: 2097152, coalesce: true, protocol: 'seq',
  timeoutMs: 1000, restOfRangeOnOverflow: true,
};
/** A command still faulting after this many rounds is a livelock: EFAULT, not a hang. */
const MAX_ROUNDS = 10_000;

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

/** Most pages one GPU command covers (its io buffer: 128 MiB, llvmpipe's binding limit). */
export const MAX_COMMAND_PAGES = 32768;

export type { MirrorResult } from '../api.js';

/** Counters of one mirror, for tests and the experiment. */
export interface DmirrorStats {
  commands: number;
  rounds: number;
  faultRecords: number;
  invalidations: number;
  skippedOwnMigrations: number;
  /** GPU commands a mirror command was split into (one per chunk). */
  chunks: number;
  /** Times a full aperture made the driver zap the entries outside the chunks in flight. */
  evictions: number;
}

/** The pfn the CPU page table maps at addr: a frame, a device-private page, or -1. */
function cpuPfn(mm: MmStruct, addr: number): number {
  const pmd = mm.pgtable.pmd(addr, false);
  if (pmd === null) return -1;
  const i = pmdIndex(addr);
  if (pmd.isHuge(i)) return pmd.pfn[i] + pteIndex(addr);
  const t = pmd.tables[i];
  if (t === null || t.flags[pteIndex(addr)] === 0) return -1;
  const f = t.flags[pteIndex(addr)];
  return isPresent(f) || isDevicePrivate(f) || isDeviceExclusive(f) ? t.pfn[pteIndex(addr)] : -1;
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


export class Dmirror {
  readonly device: DmirrorDevice;
  readonly proc: Process;
  readonly mm: MmStruct;
  readonly engine: MirrorEngine;
  readonly aperture: Aperture;
  readonly lock: Mutex;
  readonly stats: DmirrorStats = {
    commands: 0, rounds: 0, faultRecords: 0, invalidations: 0, skippedOwnMigrations: 0,
    chunks: 0, evictions: 0,
  };
  #notifier: MmuIntervalNotifier | null = null;
  /** VRAM slot → mirror page, for the device pages this mirror maps. */
  readonly #devPage = new Map<number, number>();
  /** Page ranges [start, end) of the chunks being run: eviction leaves them alone. */
  readonly #pinned = new Set<{ start: number; end: number }>();
  #closed = false;
  /** The v5.2 hmm_mirror, registered when the valid-flag protocol first needs it. */
  #hmm: Hmm | null = null;
  readonly #hmmOps: HmmMirrorOps = { syncCpuDevicePagetables: () => true }; // the interval notifier zaps
  readonly #validatedAt = new Map<number, number>();
  /** How device faults are serviced (setServicer changes it); its records are the batch log. */
  servicer!: FaultServicer;

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
      sched: proc.mm.core.sched, // GPU completions land at the machine scheduler's points
    });
    const m = new Dmirror(device, proc, engine);
    m.#notifier = await proc.mm.notifiers.insertInterval(0, TASK_SIZE, {
      invalidate: (sub, range, seq) => m.#invalidate(sub, range, seq),
    });
    m.setServicer({});
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
    if (!this.lock.tryLock()) { // (uncontended: no await, the shootdown starts at once)
      if (!range.blockable) return false;
      await this.lock.lock();
    }
    try {
      sub.setSeq(seq); // a fault racing this range retries, own migrations included
      const first = range.start / PAGE_SIZE;
      const last = Math.min(range.end / PAGE_SIZE, TASK_SIZE / PAGE_SIZE);
      if (range.event === 'MIGRATE' && range.owner === this.device) {
        this.stats.skippedOwnMigrations++;
        await this.#ownMigration(first, last);
        return true;
      }
      this.stats.invalidations++;
      const leaves = this.engine.pt.unmap(first, last - first);
      if (leaves.length > 0) await this.#shootdown(leaves);
    } finally {
      this.lock.unlock();
    }
    return true;
  }

  /**
   * A migration this device started is not echoed back as an invalidation: the mirror
   * that migrates maps the new pages itself, and device-page entries are dropped by the
   * migration (dropDevicePages). Two things still hold: the migrating mirror writes back
   * what the GPU wrote, so the migration copies current bytes; any other mirror of this
   * device on the same mm (a second open) loses its system-memory entries in the range,
   * whose frames the migration frees. Caller holds `lock`.
   */
  async #ownMigration(first: number, last: number): Promise<void> {
    if (this.device.migrating === this) {
      await this.#gpuSafe(() => this.aperture.writeback());
      return;
    }
    const leaves = this.engine.pt.unmap(first, last - first);
    const system: UnmappedLeaf[] = [];
    for (const l of leaves) {
      if ((l.flags & PTE_DEVICE) !== 0) this.engine.pt.map(l.page, l.slot, l.flags & (PTE_WRITE | PTE_EXCLUSIVE | PTE_DEVICE));
      else system.push(l);
    }
    if (system.length > 0) await this.#shootdown(system);
  }

  /**
   * GPU work that may fail only because the device is gone: on a lost device, what the
   * GPU held is lost with it, and the CPU side must go on (ENODEV is swallowed here).
   */
  async #gpuSafe(fn: () => Promise<unknown> | unknown): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof HmmError && e.code === 'ENODEV')) throw e;
    }
  }

  /**
   * The shootdown once `leaves` are off the shadow table (the zap): flush, fence, write
   * back, free. The fence is syncWalkers(): it waits only when a round of ours may still be
   * running (between commands, and between a command's rounds, nothing on the GPU holds a
   * translation). Caller holds `lock`.
   */
  async #shootdown(leaves: readonly UnmappedLeaf[]): Promise<void> {
    if (leaves.length === 0) return;
    await this.#gpuSafe(async () => {
      this.engine.flush();
      await this.engine.syncWalkers();
      if (this.aperture.mayBeDirty) await this.aperture.writeback(); // (no uploads are queued: #update flushes them)
    });
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
    await this.#gpuSafe(async () => {
      this.engine.flush();
      await this.engine.syncWalkers();
      await this.aperture.writeback();
    });
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
  async #update(start: number, pfns: Uint32Array, flags: Uint8Array, extra = 0): Promise<number> {
    // New aperture slots' bytes are uploaded by the next dispatch's syncToGpu(), not here:
    // the copy stands for the device's own accesses over the link, so it belongs to the
    // replay, not to fault servicing, which only writes page-table entries (as a real
    // driver's does). Every dispatch path syncs first, so no kernel sees an entry before
    // its bytes.
    return this.#updateEntries(start, pfns, flags, extra);
  }

  /** Returns the contiguous runs of pages written (the "mirror writes" of the batch records). */
  async #updateEntries(start: number, pfns: Uint32Array, flags: Uint8Array, extra: number): Promise<number> {
    const pt = this.engine.pt;
    const base = start / PAGE_SIZE;
    let runs = 0;
    for (let i = 0; i < pfns.length; i++) {
      const f = flags[i];
      if ((f & HMM_PFN_VALID) === 0) continue;
      if (i === 0 || (flags[i - 1] & HMM_PFN_VALID) === 0) runs++;
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
    return runs;
  }

  /** The servicer's view of this mirror (ServiceTarget). */
  #target(): ServiceTarget {
    return {
      mm: this.mm,
      notifier: this.notifier,
      lock: this.lock,
      devPrivateOwner: this.device,
      update: (start, pfns, flags) => this.#update(start, pfns, flags),
      v52: () => this.#v52(),
      isMapped: (page, rank) => {
        const e = this.engine.pt.lookup(page);
        if (e === null) return false;
        return rank === 0 || (rank === 1 ? (e.flags & PTE_WRITE) !== 0 : (e.flags & PTE_EXCLUSIVE) !== 0);
      },
      exclusiveMap: (start, end) => this.#exclusiveMapLocked(start, (end - start) / PAGE_SIZE),
      validatedAt: this.#validatedAt,
    };
  }

  /**
   * How this mirror services device faults from now on (batching, coalescing, replay
   * policy, retry protocol); records start afresh. The default is dmirror's own behaviour.
   */
  setServicer(opts: Partial<ServicerOptions>): FaultServicer {
    this.servicer = new FaultServicer(this.#target(), { ...DMIRROR_SERVICER, ...opts });
    return this.servicer;
  }

  /** The v5.2 hmm_mirror of this mirror, registered on first use (for the valid-flag protocol). */
  async #v52(): Promise<Hmm> {
    if (this.#hmm === null) {
      await this.mm.lock.writeLock();
      try {
        this.#hmm = hmmMirrorRegister(this.mm, this.#hmmOps);
      } finally {
        this.mm.lock.writeUnlock();
      }
    }
    return this.#hmm;
  }

  /** dmirror_exclusive's loop: make_device_exclusive each page and map it atomic. */
  async #exclusiveMap(start: number, npages: number): Promise<void> {
    await this.mm.lock.readLock();
    try {
      await this.#exclusiveMapLocked(start, npages);
    } finally {
      this.mm.lock.readUnlock();
    }
  }

  /** The same with the mmap lock already held (the servicer's atomic faults). Returns runs written. */
  async #exclusiveMapLocked(start: number, npages: number): Promise<number> {
    this.mm.checkAlive();
    let runs = 0;
    for (let i = 0; i < npages; i++) {
      const a = start + i * PAGE_SIZE;
      const pfn = await makeDeviceExclusive(this.mm, a, this.device);
      runs += await this.lock.with(() => this.#update(a, Uint32Array.of(pfn), Uint8Array.of(HMM_PFN_VALID | HMM_PFN_WRITE), PTE_EXCLUSIVE));
    }
    return runs;
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
      const { faultRounds: faults } = await this.#rounds(cmd, faulting);
      if (op === 'write') return { out: null, faults };
      const o = await cmd.readOutput();
      return { out: new Uint8Array(o.buffer, o.byteOffset, o.byteLength), faults };
    } finally {
      cmd.destroy();
    }
  }

  /**
   * Replay rounds of `cmd` through the servicer until every invocation is done: before each
   * round the aperture catches up with CPU writes (under the update lock); at kernel end
   * what the GPU wrote reaches the CPU before this returns.
   */
  async #rounds(cmd: MirrorCommand, faulting: boolean): Promise<{ rounds: number; faultRounds: number }> {
    const writes = cmd.op !== 'read';
    const out = await this.servicer.run(async () => {
      await this.lock.with(() => this.aperture.syncToGpu());
      if (writes) this.aperture.mayBeDirty = true;
      const r = await this.engine.runRound(cmd);
      this.stats.rounds++;
      this.stats.faultRecords += r.faults.length;
      if (!r.finished && !faulting) throw err('ENOENT', `page not mirrored in [0x${(cmd.page * PAGE_SIZE).toString(16)}, +${cmd.npages} pages)`);
      return r;
    }, cmd, MAX_ROUNDS);
    if (writes) await this.lock.with(() => this.aperture.writeback());
    return out;
  }

  /**
   * Run a command the caller built on this mirror's engine (a workload kernel, say) to
   * completion, its range pinned against aperture eviction while it runs.
   */
  async runKernel(cmd: MirrorCommand): Promise<{ rounds: number; faultRounds: number }> {
    this.#checkOpen();
    this.stats.commands++;
    return this.#withPinned(cmd.page, cmd.npages, () => this.#rounds(cmd, true));
  }

  /** HMM_DMIRROR_READ: the device reads npages at addr. */
  async read(addr: number, npages: number): Promise<MirrorResult & { data: Uint8Array }> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    const { out, faults } = await this.#run('read', r.start, r.npages, undefined, true);
    return { cpages: r.npages, faults, data: out! };
  }

  /** HMM_DMIRROR_WRITE: the device writes `data` (whole pages) at addr. */
  async write(addr: number, data: Uint8Array): Promise<MirrorResult> {
    this.#checkOpen();
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
    this.engine.checkAlive();
    // Our own MIGRATE invalidation is not echoed back to us (see #ownMigration).
    this.device.migrating = this;
    let mig;
    try {
      mig = await migrateVmaSetup(this.mm, { start, end, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmapOwner: this.device });
    } finally {
      this.device.migrating = null;
    }
    const dst = new Array<number>(mig.npages).fill(0);
    const write = new Array<boolean>(mig.npages).fill(false);
    let installed = false;
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
      installed = true;
      // dmirror_migrate_finalize_and_map: our own table learns the new pages directly.
      const pfns = new Uint32Array(mig.npages);
      const flags = new Uint8Array(mig.npages); // 0 (not valid): left alone by #update
      for (let i = 0; i < mig.npages; i++) {
        if ((migratePfnFlags(mig.src[i]) & MIGRATE_PFN_MIGRATE) === 0 || dst[i] === 0) continue;
        pfns[i] = migratePfnToPfn(dst[i]);
        flags[i] = HMM_PFN_VALID | (write[i] ? HMM_PFN_WRITE : 0);
      }
      await this.lock.with(() => this.#update(start, pfns, flags));
    } catch (e) {
      // Device memory full part-way, or the device lost: the pages we allocated but never
      // handed to migrate_vma_pages go back (finalize restores the sources).
      if (!installed) {
        for (let i = 0; i < dst.length; i++) if (dst[i] !== 0) this.device.pagemap.put(migratePfnToPfn(dst[i]));
        dst.fill(0);
      }
      throw e;
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

  /**
   * The consistency check the retry-protocol experiments use: every page this mirror maps
   * in [addr, addr + npages) must reach the frame (or device page) the CPU maps there now.
   * A stale entry is one a protocol let through after an invalidation.
   */
  async audit(addr: number, npages: number): Promise<{ checked: number; stale: number[] }> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    return this.lock.with(() => {
      const stale: number[] = [];
      let checked = 0;
      for (let p = r.start / PAGE_SIZE; p < r.end / PAGE_SIZE; p++) {
        const e = this.engine.pt.lookup(p);
        if (e === null) continue;
        checked++;
        const mirrored = (e.flags & PTE_DEVICE) !== 0 ? this.device.pagemap.basePfn + e.slot : this.aperture.pfnOf(e.slot);
        if (mirrored !== cpuPfn(this.mm, p * PAGE_SIZE)) stale.push(p * PAGE_SIZE);
      }
      return { checked, stale };
    });
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
    if (this.#hmm !== null) await hmmMirrorUnregister(this.#hmm, this.#hmmOps);
    await this.lock.with(async () => {
      const leaves = this.engine.pt.unmap(0, TASK_SIZE / PAGE_SIZE);
      await this.#gpuSafe(async () => {
        await this.engine.fence();
        await this.aperture.writeback();
      });
      this.#release(leaves);
    });
    this.engine.destroy();
    this.device.mirrors.delete(this);
  }

  #checkOpen(): void {
    if (this.#closed) throw err('EBADF', 'mirror is closed');
  }
}
