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
import { CancelledError, replayCommand, type CommandOutcome, type RoundService } from '../device/replay.js';
import { err } from '../errors.js';
import { PAGE_SIZE, TASK_SIZE } from '../mm/constants.js';
import type { MmStruct } from '../mm/mm.js';
import { mmapDevicePages } from '../mm/mixedmap.js';
import { mappedPfn } from '../mm/pagewalk.js';
import type { MmuIntervalNotifier, MmuNotifierRange } from '../mm/notifier.js';
import type { Process } from '../mm/process.js';
import { Aperture, cpuMemoryOf } from './aperture.js';
import type { Mirror, MirrorResult } from './uapi.js';
import { DmirrorFlags } from './test-flags.js';
import { bounceInit, checkBounce, checkRange, MAX_COMMAND_PAGES, MIGRATE_STEP_PAGES, userBuffer, vmaPieces } from './cmd.js';
import type { DmirrorHost, DmirrorStats } from './dmirror-host.js';
import { dmirrorMigrateIn } from './migrate.js';
import { MirrorPt } from './mirror-pt.js';
import { PolicyPath, type PolicyRange } from './policy-path.js';
import type { MigrationPolicy } from '../policy/types.js';
import { dmirrorSnapshot } from './snapshot.js';
import { Mutex } from './mutex.js';
import { WaitQueue } from '../sched/wait-queue.js';
import { dmirrorAtomicMap, V52Mirror, type MirrorTarget } from './retry.js';
import type { FaultService } from './fault-service.js';
import { createFaultService } from './servicer.js';
import { DMIRROR_SERVICER, SERVICER_SHAPE, type ServicerOptions } from './service-options.js';

/** A command still faulting after this many rounds is a livelock: EFAULT, not a hang. */
const MAX_ROUNDS = 10_000;

export type { DmirrorHost, DmirrorStats } from './dmirror-host.js';

export class Dmirror implements Mirror {
  readonly device: DmirrorHost;
  readonly proc: Process;
  readonly mm: MmStruct;
  readonly engine: MirrorEngine;
  readonly aperture: Aperture;
  readonly lock: Mutex;
  /** The mirror's page table (dmirror->pt): fault installation and the one shootdown. */
  readonly pt: MirrorPt;
  readonly #stats = { commands: 0, invalidations: 0, skippedOwnMigrations: 0, chunks: 0 };
  #notifier: MmuIntervalNotifier | null = null;
  #closed = false;
  /** close() was called: new ioctls get EBADF (the fd is gone), those in flight finish. */
  #closing = false;
  #closeDone: Promise<void> | null = null;
  /** Ioctls in flight: ->release runs once they are done (the last fput). */
  #inflight = 0;
  readonly #idle: WaitQueue;
  /** The notifier's release came (exit_mmap): the GPU side is gone, the mm is dead. */
  #mmReleased = false;
  /** Ranges this mirror's migrations to the device are collecting (migrate_vma_setup) now. */
  readonly #collecting = new Set<{ start: number; end: number }>();
  /** The v5.2 hmm_mirror, registered when the valid-flag protocol first needs it. */
  readonly #v52: V52Mirror;
  /** How device faults are serviced (setServicer changes it); its records are the batch log, its events what observers see. */
  #servicer!: FaultService;
  get servicer(): FaultService { return this.#servicer; }
  /** The migration policy attached to this mirror (setPolicy), or none. */
  #policy: PolicyPath | null = null;
  readonly #flags = new DmirrorFlags();

  private constructor(device: DmirrorHost, proc: Process, engine: MirrorEngine) {
    this.device = device;
    this.proc = proc;
    this.mm = proc.mm;
    this.engine = engine;
    this.aperture = new Aperture(engine, cpuMemoryOf(device.machine.core));
    this.pt = new MirrorPt(engine, this.aperture, device.devmem.pagemap);
    this.lock = new Mutex(this.mm.core.sched, `dmirror${device.index}.mutex`);
    this.#idle = new WaitQueue(this.mm.core.sched);
    this.#v52 = new V52Mirror(this.mm);
  }

  /** Counters of this mirror (rounds and fault records are its engine's). */
  get stats(): DmirrorStats {
    const e = this.engine.stats;
    return { ...this.#stats, rounds: e.rounds, faultRecords: e.faultRecords, apertureReclaims: this.pt.apertureReclaims };
  }

  /** dmirror_fops_open(): one notifier over the whole address space. */
  static async create(device: DmirrorHost, proc: Process): Promise<Dmirror> {
    if (proc.mm.exited) throw err('ESRCH', 'process has exited');
    const engine = await MirrorEngine.create(device.gpu.device, {
      label: `dmirror${device.index}/pid${proc.pid}`,
      apertureSlots: device.options.aperturePages,
      faultCapacity: device.options.faultRecords,
      vram: device.vram,
      skipStalled: device.options.skipStalled,
      sched: proc.mm.core.sched, // GPU completions land at the machine scheduler's points
    });
    const m = new Dmirror(device, proc, engine);
    try {
      // The process may have exited while the engine was built. exit_mmap holds the mmap
      // lock for write from mmu_notifier_release until the mm is marked dead, so under the
      // read lock the mm is either alive, and its release will reach this notifier, or dead.
      await proc.mm.lock.readLock();
      try {
        if (proc.mm.exited) throw err('ESRCH', 'process has exited');
        m.#notifier = await proc.mm.notifiers.insertInterval(0, TASK_SIZE, {
          invalidate: (sub, range, seq) => m.#invalidate(sub, range, seq),
        });
      } finally {
        proc.mm.lock.readUnlock();
      }
    } catch (e) {
      engine.destroy();
      throw e;
    }
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
   * when no GPU work submitted before can still use the old entries, what the GPU wrote copied back.
   */
  async #invalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange, seq: number): Promise<boolean> {
    const own = range.event === 'MIGRATE' && range.owner === this.device;
    // test_hmm's order (ownMigrationSetsSeq false): the owner check comes before the mutex,
    // so its own MIGRATE never waits for it (nor fails a non-blockable range on it). The port
    // still takes the lock for its own-migration bookkeeping when it may sleep.
    const kernelOrder = own && this.device.options.ownMigrationSetsSeq === false;
    if (kernelOrder && !range.blockable) {
      this.#stats.skippedOwnMigrations++;
      return true;
    }
    if (!this.lock.tryLock()) { // (uncontended: no await, the shootdown starts at once)
      if (!range.blockable) return false;
      await this.lock.lock();
    }
    try {
      // Racing faults retry, own migrations included (test_hmm's order: no set_seq for them).
      if (!kernelOrder) sub.setSeq(seq);
      const first = range.start / PAGE_SIZE;
      const last = Math.min(range.end / PAGE_SIZE, TASK_SIZE / PAGE_SIZE);
      if (own) {
        this.#stats.skippedOwnMigrations++;
        await this.#ownMigration(first, last);
        return true;
      }
      this.#stats.invalidations++;
      this.#policy?.invalidated(first, last, true); // its record of where pages live follows
      await this.pt.invalidate(first, last);
      if (range.event === 'RELEASE') this.#mmRelease();
    } finally {
      this.lock.unlock();
    }
    return true;
  }

  /**
   * A migration this device started is not echoed back: the migrating mirror maps the new
   * pages itself and device-page entries go with the migration (dropDevicePages). It still
   * writes back what the GPU wrote (the copy must be current); any other mirror of this device
   * on the mm (a second open) loses its entries, whose frames the migration frees. Which
   * mirror migrates is its own record (#collecting), not the device's. Caller holds `lock`.
   */
  async #ownMigration(first: number, last: number): Promise<void> {
    this.#policy?.invalidated(first, last, false);
    if ([...this.#collecting].some((r) => r.start <= first * PAGE_SIZE && last * PAGE_SIZE <= r.end)) {
      await this.pt.writeback();
      return;
    }
    await this.pt.invalidate(first, last, true);
  }

  /**
   * mmu_notifier_release (exit_mmap): the mm is dead and every entry was just zapped. The
   * mirror's GPU buffers (page table, aperture, command buffers) go now rather than at
   * close(), and the device forgets it; later commands fail as test_hmm's do once
   * mmget_not_zero() fails (EINVAL), and close() still works. Caller holds `lock`.
   */
  #mmRelease(): void {
    this.#mmReleased = true;
    this.engine.destroy();
    // Nothing of a dead mm is left to mirror: the device lets go of it too (only the fd,
    // until close(), still holds it), so exited processes' mirrors do not pile up on it.
    this.device.mirrors.delete(this);
  }

  /** Does this mirror map the device page in VRAM slot `slot`? */
  mapsDevicePage(slot: number): boolean {
    return this.pt.mapsDevicePage(slot);
  }

  /** The CPU faulted on a device page (Devmem): the policy attached for this mm decides, then records the move. */
  beforeCpuFault(mm: MmStruct, addr: number): { start: number; end: number } | undefined { return mm === this.mm ? this.#policy?.beforeCpuFault(addr) : undefined; }
  afterCpuFault(mm: MmStruct, addr: number): void { if (mm === this.mm) this.#policy?.afterCpuFault(addr); }

  /** HMM_DMIRROR_FLAG_FAIL_ALLOC consumed: this allocation fails (dmirror_devmem_alloc_page). */
  takeFailAlloc(): boolean { return this.#flags.takeFailAlloc(); }

  /** Our entries for these VRAM slots go (a device page is leaving for system memory). */
  async dropDevicePages(slots: Iterable<number>): Promise<void> {
    await this.lock.with(() => this.pt.zapDevicePages(slots));
  }

  // ---------------------------------------------------------------------------------
  // Faults (up).

  /** What fault servicing gets of this mirror: its page table, notifier and locks. */
  #target(): MirrorTarget {
    return {
      mm: this.mm, notifier: this.notifier, lock: this.lock, pt: this.pt, devPrivateOwner: this.device, v52: this.#v52,
      ownReadOnlyWriteMigrates: this.device.options.ownReadOnlyWriteMigrates === true,
    };
  }

  /**
   * How this mirror services device faults from now on (batching, coalescing, replay policy,
   * retry protocol); records and listeners start afresh. The default is dmirror's own
   * range service; options that shape servicing (or an attached policy) select UVM's
   * batched service.
   */
  setServicer(opts: Partial<Omit<ServicerOptions, 'policy'>>): FaultService {
    const shaped = this.#policy !== null || SERVICER_SHAPE.some((k) => opts[k] !== undefined);
    const policy = this.#policy !== null ? { policy: this.#policy } : {};
    this.#servicer = createFaultService(this.#target(), { ...DMIRROR_SERVICER, ...(shaped ? { rangePages: 0 } : {}), ...opts, ...policy });
    return this.#servicer;
  }

  /**
   * Attach a migration policy to this mirror for the range `r` (null: detach): it services
   * this mirror's faults, its CPU faults in this mm, the GPU's access counts, and follows
   * this mirror's invalidations; it borrows the mirror's migrations (PolicyMover).
   */
  setPolicy(policy: MigrationPolicy | null, r?: PolicyRange): PolicyPath | null {
    const devmem = this.device.devmem;
    if (policy !== null && r === undefined) throw err('EINVAL', 'a policy needs its managed range');
    this.#policy = policy === null ? null : new PolicyPath(policy, 0, r!, this.#target(), {
      migrateIn: (start, end, write) => dmirrorMigrateIn(this.#target(), devmem, this.#collecting, start, end, write),
      evict: (pieces) => devmem.evictPieces(this.mm, pieces),
      isDevicePage: (pfn) => devmem.pagemap.contains(pfn),
    });
    this.engine.accessCounters = this.#policy?.gpuCounters ?? null; // the GPU counts for the policy
    const { policy: _, ...opts } = this.servicer.opts;
    this.setServicer(this.#policy !== null ? { ...opts, rangePages: 0 } : opts);
    return this.#policy;
  }

  /** dmirror_exclusive's loop: make_device_exclusive each page and map it atomic. */
  async #exclusiveMap(start: number, npages: number): Promise<void> {
    await this.mm.lock.readLock();
    try {
      await dmirrorAtomicMap(this.#target(), start, npages);
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
    return Math.max(1, Math.min(MAX_COMMAND_PAGES, io, Math.floor(this.engine.sysmem.slots / 2)));
  }

  /**
   * Run one kernel over [page, page+npages) to completion: replay rounds until every
   * invocation is done, one chunk (chunkPages) after the other — each its own GPU command,
   * its pages pinned against eviction while it runs. `faults` counts fault rounds as
   * dmirror_read/write count dmirror_fault calls: the first fault round of every chunk after
   * the first to fault continues the command's one fault, so a fresh buffer gives 1 however
   * many chunks it takes. `faulting` false = dmirror_do_read without faulting (ENOENT
   * when a page isn't mirrored). A read's chunks land in `into` (or a new array) in place. */
  async #run(op: MirrorOp, start: number, npages: number, data: Uint8Array | undefined, faulting: boolean, into?: Uint8Array): Promise<{ out: Uint8Array | null; faults: number }> {
    this.#checkOpen();
    this.#stats.commands++;
    const chunk = this.chunkPages;
    const first = start / PAGE_SIZE;
    if (npages <= chunk) {
      const words = data === undefined ? undefined : new Uint32Array(data.buffer, data.byteOffset, data.byteLength / 4);
      return this.pt.withPinned(first, npages, () => this.#runChunk(op, first, npages, words, faulting, into));
    }
    const out = op === 'write' ? null : into ?? bounceInit(npages);
    let faults = 0;
    let faulted = false;
    for (let off = 0; off < npages; off += chunk) {
      const n = Math.min(chunk, npages - off);
      const words = data === undefined ? undefined : new Uint32Array(data.buffer, data.byteOffset + off * PAGE_SIZE, n * (PAGE_SIZE / 4));
      const dest = out?.subarray(off * PAGE_SIZE, (off + n) * PAGE_SIZE);
      const r = await this.pt.withPinned(first + off, n, () => this.#runChunk(op, first + off, n, words, faulting, dest));
      // dmirror_fault covers the rest of the command: a later chunk's first fault round is
      // that same fault, split only because the aperture cannot hold the whole command.
      faults += faulted && r.faults > 0 ? r.faults - 1 : r.faults;
      faulted ||= r.faults > 0;
    }
    return { out, faults };
  }

  /** One GPU command over [page, page + npages) (at most chunkPages), run to completion. */
  async #runChunk(op: MirrorOp, page: number, npages: number, words: Uint32Array | undefined, faulting: boolean, into?: Uint8Array): Promise<{ out: Uint8Array | null; faults: number }> {
    this.#checkOpen();
    this.#stats.chunks++;
    // Scratch io: the output is only read once every word has been written.
    const cmd: MirrorCommand = this.engine.createCommand({ op, page, npages, data: words, scratch: true });
    try {
      const { faultRounds: faults } = await this.#rounds(cmd, faulting);
      if (op === 'write') return { out: null, faults };
      if (into !== undefined) return { out: await cmd.readOutputInto(into), faults };
      const o = await cmd.readOutput();
      return { out: new Uint8Array(o.buffer, o.byteOffset, o.byteLength), faults };
    } finally {
      cmd.destroy();
    }
  }

  /**
   * dmirror_fault's caller side: replay `cmd` until every invocation is done, faults
   * serviced by this mirror's servicer (or, not `faulting`, ENOENT: dmirror_do_read found a
   * page not mirrored). Before each round the aperture catches up with CPU writes (under
   * the update lock); at kernel end what the GPU wrote reaches the CPU before this returns.
   */
  async #rounds(cmd: MirrorCommand, faulting: boolean): Promise<CommandOutcome> {
    const writes = cmd.op !== 'read';
    const sync = (): Promise<void> => this.lock.with(() => this.aperture.syncToGpu(writes));
    const service: RoundService = faulting ? this.servicer.forCommand(cmd, sync) : {
      beforeRound: sync,
      service: () => Promise.reject(err('ENOENT', `page not mirrored in [0x${(cmd.page * PAGE_SIZE).toString(16)}, +${cmd.npages} pages)`)),
    };
    const out = await replayCommand(this.engine, cmd, service, { maxRounds: MAX_ROUNDS });
    if (writes) await this.lock.with(() => this.aperture.writeback());
    if (faulting) await this.#policy?.commandEnd(cmd.page, cmd.npages, cmd.accessCounts);
    // The other uTLBs' work completed (and reached memory above); the command still fails.
    if (out.cancelled.length > 0) throw new CancelledError(this.engine.label, out.cancelled);
    return out;
  }

  /**
   * Run a command the caller built on this mirror's engine (a workload kernel, say) to
   * completion, its range pinned against an aperture reclaim while it runs.
   */
  runKernel(cmd: MirrorCommand): Promise<CommandOutcome> {
    return this.#ioctl(true, () => {
      this.#stats.commands++;
      return this.pt.withPinned(cmd.page, cmd.npages, () => this.#rounds(cmd, true));
    });
  }

  /**
   * One ioctl on the open file: EBADF once close() was called; `mm`: the command works on
   * the mirrored mm and, as test_hmm's do when mmget_not_zero() fails, gets EINVAL once the
   * process has exited. Counted in flight, so that close() releases the mirror only after
   * it (->release runs at the last fput, after every ioctl holding the file returned).
   */
  async #ioctl<T>(mm: boolean, fn: () => Promise<T>): Promise<T> {
    if (this.#closing) throw err('EBADF', 'mirror is closed');
    if (mm && (this.#mmReleased || this.mm.exited)) throw err('EINVAL', 'the mirrored process has exited (mmget_not_zero failed)');
    this.#inflight++;
    try {
      return await fn();
    } finally {
      if (--this.#inflight === 0) this.#idle.wakeAll();
    }
  }

  // The ioctls as the file sees them.

  read(addr: number, npages: number, into?: Uint8Array): Promise<MirrorResult & { data: Uint8Array }> {
    return this.#ioctl(true, () => this.#read(addr, npages, into));
  }
  write(addr: number, data: Uint8Array): Promise<MirrorResult> {
    return this.#ioctl(true, () => this.#write(addr, data));
  }
  migrateToDevice(addr: number, npages: number, into?: Uint8Array): Promise<MirrorResult & { data: Uint8Array }> {
    return this.#ioctl(true, () => this.#migrateToDevice(addr, npages, into));
  }
  migrateToSystem(addr: number, npages: number): Promise<MirrorResult> {
    return this.#ioctl(true, () => this.#migrateToSystem(addr, npages));
  }
  snapshot(addr: number, npages: number): Promise<Uint8Array> {
    return this.#ioctl(true, () => this.#snapshot(addr, npages));
  }
  exclusive(addr: number, npages: number): Promise<MirrorResult & { data: Uint8Array }> {
    return this.#ioctl(true, () => this.#exclusive(addr, npages));
  }
  /** (dmirror_check_atomic only reads the mirror's own table: no mm needed.) */
  checkExclusive(addr: number, npages: number): Promise<void> {
    return this.#ioctl(false, () => this.#checkExclusive(addr, npages));
  }
  /** (dmirror_device_evict_chunk works on the device's memory, whatever the mm.) */
  release(): Promise<void> {
    return this.#ioctl(false, () => this.#releaseDevice());
  }
  setFlags(flags: number): Promise<void> {
    return this.#ioctl(false, async () => this.#flags.set(flags));
  }
  mmap(length: number, prot: number, flags: number): Promise<number> {
    return this.#ioctl(false, () => this.#mmap(length, prot, flags));
  }
  audit(addr: number, npages: number): Promise<{ checked: number; stale: number[] }> {
    return this.#ioctl(false, () => this.#audit(addr, npages));
  }

  /** HMM_DMIRROR_READ: the device reads npages at addr (into `into`, the command's ptr, when given). */
  async #read(addr: number, npages: number, into?: Uint8Array): Promise<MirrorResult & { data: Uint8Array }> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    checkBounce(r.npages);
    const dest = into === undefined ? undefined : userBuffer(into, r.npages);
    const { out, faults } = await this.#run('read', r.start, r.npages, undefined, true, dest);
    return { cpages: r.npages, faults, data: out! };
  }

  /** HMM_DMIRROR_WRITE: the device writes `data` (whole pages) at addr. */
  async #write(addr: number, data: Uint8Array): Promise<MirrorResult> {
    this.#checkOpen();
    if (!(data instanceof Uint8Array) || data.length === 0 || data.length % PAGE_SIZE !== 0) {
      throw err('EINVAL', 'write: data must be whole pages');
    }
    // The kernels take u32 words: a view at an odd byte offset (a Node Buffer's subarray, whose
    // slice() is no copy) or over shared memory is copied, as copy_from_user() into dmirror's bounce buffer would.
    if (data.byteOffset % 4 !== 0 || !(data.buffer instanceof ArrayBuffer)) data = new Uint8Array(data);
    const r = checkRange(addr, data.length / PAGE_SIZE);
    const { faults } = await this.#run('write', r.start, r.npages, data, true);
    return { cpages: r.npages, faults };
  }

  /** HMM_DMIRROR_MIGRATE_TO_DEV (dmirror_migrate_to_device): move the range's anonymous pages
   * into device memory, map them, read the range back without faulting (into `into`, the
   * command's ptr, when given); ENOENT if some page could not be moved (shared memory, say). */
  async #migrateToDevice(addr: number, npages: number, into?: Uint8Array): Promise<MirrorResult & { data: Uint8Array }> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    checkBounce(r.npages);
    const dest = into === undefined ? null : userBuffer(into, r.npages);
    let coherent: Uint8Array | null = null;
    await this.mm.lock.readLock();
    try {
      this.mm.checkAlive();
      this.engine.checkAlive();
      // dmirror_migrate_to_device: one migrate_vma_setup per PTRS_PER_PTE pages at most.
      for (const piece of vmaPieces(this.mm, r.start, r.end, MIGRATE_STEP_PAGES)) {
        await dmirrorMigrateIn(this.#target(), this.device.devmem, this.#collecting, piece.start, piece.end, piece.write, () => this.takeFailAlloc());
      }
      coherent = this.device.devmem.coherentRead(this.mm, r.start, r.npages);
    } finally {
      this.mm.lock.readUnlock();
    }
    // dmirror_do_read: the device reads its own memory, coherent pages in place (above), VRAM
    // slots in one copy when the migration moved every page; else (a page skipped) a command.
    if (coherent !== null) return { cpages: r.npages, faults: 0, data: dest === null ? coherent : (dest.set(coherent), dest) };
    if (r.npages <= this.chunkPages) {
      const direct = await this.lock.with(async () => {
        const slots = this.pt.deviceSlots(r.start / PAGE_SIZE, r.npages);
        if (slots === null) return null; // (into `dest` straight from the mapped staging buffer)
        return dest === null ? this.engine.vram.readback(slots) : this.engine.vram.readbackWith(slots, (b) => (dest.set(b), dest));
      });
      if (direct !== null) return { cpages: r.npages, faults: 0, data: direct };
    }
    const { out } = await this.#run('read', r.start, r.npages, undefined, false);
    return { cpages: r.npages, faults: 0, data: dest === null ? out! : (dest.set(out!), dest) };
  }

  /** HMM_DMIRROR_MIGRATE_TO_SYS (dmirror_migrate_to_system): cpages = pages moved back. */
  async #migrateToSystem(addr: number, npages: number): Promise<MirrorResult> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    let cpages = 0;
    await this.mm.lock.readLock();
    try {
      this.mm.checkAlive();
      // test_hmm's 512-page steps, their copies batched into one readback (Devmem.evictPieces).
      cpages = await this.device.devmem.evictPieces(this.mm, vmaPieces(this.mm, r.start, r.end, MIGRATE_STEP_PAGES), () => this.takeFailAlloc());
    } finally {
      this.mm.lock.readUnlock();
    }
    return { cpages, faults: 0 };
  }

  /**
   * HMM_DMIRROR_SNAPSHOT (dmirror_snapshot): what the CPU maps, without faulting, in 64-page
   * ranges (dmirror_range_snapshot), each under a temporary interval notifier of its own;
   * EBUSY when a range keeps colliding with invalidations past HMM_RANGE_DEFAULT_TIMEOUT.
   */
  async #snapshot(addr: number, npages: number): Promise<Uint8Array> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    return dmirrorSnapshot(this.#target(), r.start, r.end, this.servicer.opts.afterRangeFault);
  }

  /** HMM_DMIRROR_EXCLUSIVE (dmirror_exclusive): atomic access to every page, then read back. */
  async #exclusive(addr: number, npages: number): Promise<MirrorResult & { data: Uint8Array }> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    checkBounce(r.npages);
    const { out } = await this.pt.withPinned(r.start / PAGE_SIZE, r.npages, async () => {
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
  async #audit(addr: number, npages: number): Promise<{ checked: number; stale: number[] }> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    return this.lock.with(() => this.pt.audit(r.start / PAGE_SIZE, r.end / PAGE_SIZE, (p) => mappedPfn(this.mm, p * PAGE_SIZE)));
  }

  /** HMM_DMIRROR_CHECK_EXCLUSIVE (dmirror_check_atomic): EPERM while any page is still atomic. */
  async #checkExclusive(addr: number, npages: number): Promise<void> {
    this.#checkOpen();
    const r = checkRange(addr, npages);
    await this.lock.with(() => {
      // Only what the mirror maps (xa_for_each_range in dmirror_check_atomic), not every
      // page number of the range: the whole address space is 2^35 of them.
      const page = this.pt.firstExclusive(r.start / PAGE_SIZE, r.npages);
      if (page !== null) throw err('EPERM', `page 0x${(page * PAGE_SIZE).toString(16)} is still exclusive`);
    });
  }

  /** HMM_DMIRROR_RELEASE: evict every page of this device's memory to system memory. */
  async #releaseDevice(): Promise<void> {
    this.#checkOpen();
    await this.device.devmem.evictAll();
  }

  /** mmap() of the device file itself: fresh pages inserted into a VM_MIXEDMAP mapping. */
  async #mmap(length: number, prot: number, flags: number): Promise<number> {
    this.#checkOpen();
    return mmapDevicePages(this.proc, length, prot, flags);
  }

  /**
   * close(): the fd goes at once (new ioctls get EBADF); dmirror_fops_release — unhook from
   * the mm, free the GPU side — runs once the ioctls in flight have returned, as the kernel
   * runs ->release at the last fput.
   */
  close(): Promise<void> {
    this.#closing = true;
    this.#closeDone ??= this.#fopsRelease();
    return this.#closeDone;
  }

  /**
   * Device removal (machine teardown): the GPU side goes first, so that commands in flight
   * fail with ENODEV instead of running on, then as close(): once they have unwound, every
   * entry, slot and notifier goes.
   */
  destroy(): Promise<void> {
    this.engine.destroy();
    return this.close();
  }

  async #fopsRelease(): Promise<void> {
    await this.#idle.wait(() => this.#inflight === 0, 'dmirror_fops_release');
    const n = this.#notifier;
    this.#closed = true;
    if (n !== null) await n.remove();
    await this.#v52.unregister();
    await this.lock.with(() => this.pt.zapAll());
    this.engine.destroy();
    this.device.mirrors.delete(this);
  }

  #checkOpen(): void {
    if (this.#closed) throw err('EBADF', 'mirror is closed');
  }
}
