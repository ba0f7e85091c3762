/**
 * The per-device object the mirror driver drives (dmirror's struct dmirror_device, UVM's
 * uvm_gpu_t + its fault servicing loop): owns the mirrored GpuPageTable, the system-memory
 * aperture pool, the device-private pool ("VRAM"), the replayable fault buffer and the
 * kernels, and runs commands on the GPU a round at a time:
 *
 *   round  = flush the page table, dispatch the command over its range (invocations already
 *            done skip), drain the fault buffer + the done count in the same submission;
 *   replay = the next round: every invocation that faulted runs again, so a fault is never
 *            lost, even when the fault buffer overflowed;
 *   fence  = queue.onSubmittedWorkDone: after it, no GPU work can still be using page-table
 *            entries changed before it (the TLB-invalidate + membar of a shootdown);
 *            syncWalkers() fences only when a round or probe may still be running.
 *
 * An "invocation" is one u32 word of the command: each has a done bit and is replayed until
 * done. On the GPU a thread serves the 32 words of one done word (8 vec4s, one page walk for
 * all of them), 32 threads a page, a 256-thread workgroup 8 pages (see mirror-common.wgsl);
 * a cold round (nothing in the range mapped, so nothing can move) runs a thread per page.
 * Words [256k, 256k + 256) go through uTLB `k % faultSources`, which reports each
 * (uTLB, page) miss once per round; the host-side coalescing of duplicates across uTLBs is
 * the driver's job.
 *
 * A lost device fails every call with HmmError('ENODEV'); host state (the page-table
 * shadow, pool allocations, a command's done count) is only updated after the GPU answered.
 */
import { StagingCache } from './staging.js';
import type { MirrorEngineOptions, MirrorEngineStats } from './engine-options.js';
import { DeviceBuffers } from './buffer-pool.js';
import { lostRecord, tlbStats, type RoundResult } from './round-result.js';
import { err, HmmError } from '../errors.js';
import { GpuError, withErrorScopes } from './gpu.js';
import { timedPass } from './gpu-timer.js';
import { FAULT_SPILL, FaultQueue, type FaultRecord } from './fault-queue.js';
import type { Scheduler } from '../sched/scheduler.js';
import { asDeviceError, ensureAlive, HOST_SCHEDULER } from './health.js';
import {
  encodeParams, MIRROR_PAGES_PER_WORKGROUP, MIRROR_THREADS_PER_PAGE, MIRROR_WORKGROUP_SIZE, paramsBytes, parityOffset, replayAllOffset,
  STATE_GATE_STALLED, STATE_HEADER_WORDS, STATE_RECORD_ARGS, STATE_TLB_LOOKUPS, STATE_TLB_WALKS, WORDS_PER_PAGE,
} from './abi.js';
import {
  CommandBufferPool, MirrorCommand, checkCommandDesc, checkCounterConfig, type AccessCounterConfig, type CommandDesc, type CommandHost, type MirrorKernel,
} from './command.js';
import { PAGE_BYTES, PagePool, slotsOfBitmap, type PageData } from './page-pool.js';
import { compileKernels, createEnginePipelines, type EnginePipelines, type KernelVariant } from './pipelines.js';
import { GpuPageTable, PT_MAX_PAGE, PTE_VALID } from './page-table.js';

export { faultSourceOf, MIRROR_PAGES_PER_WORKGROUP, MIRROR_STORAGE_BUFFERS, MIRROR_TLB_BLOCK_WORDS, MIRROR_WORKGROUP_SIZE, WORDS_PER_PAGE } from './abi.js';
export { tlbStats, type RoundResult, type TlbStats } from './round-result.js';
export type { MirrorEngineOptions, MirrorEngineStats } from './engine-options.js';
export { MirrorCommand, type AccessCounterConfig, type AccessCounts, type CommandDesc, type MirrorKernel, type MirrorOp } from './command.js';

const copyOut = (mapped: ArrayBuffer): ArrayBuffer => mapped.slice(0); // a mapped staging buffer's bytes, before its unmap

export class MirrorEngine implements CommandHost {
  readonly device: GPUDevice;
  readonly label: string;
  readonly pt: GpuPageTable;
  /**
   * The system-memory aperture's pages: where the GPU reaches system frames (UVM's sysmem
   * mappings). Which frame each slot copies is the driver's Aperture (src/driver/aperture.ts).
   */
  readonly sysmem: PagePool;
  readonly vram: PagePool; // device-private memory
  readonly faults: FaultQueue;
  readonly faultSources: number;
  readonly sched: Scheduler;
  readonly skipStalled: boolean;

  private readonly layout: GPUBindGroupLayout;
  private readonly pipelines: EnginePipelines;
  /** Bound as state[] in the record pass (which must not bind the command's: its indirect arguments). */
  private readonly stateStandIn: GPUBuffer;
  /** The stall gate's indirect dispatch arguments (gate_args writes them, bound as io[] in the gate pass). */
  private readonly gateArgs: GPUBuffer;
  /** Dirty bits: aperture slots first, then device slots at devDirtyOff. */
  private readonly dirty: GPUBuffer;
  private readonly devDirtyOff: number;
  /** Round readback: state header (16 B) + the drained fault ring (+ a counting command's counters). */
  private staging: GPUBuffer;
  private readonly checkErrors: boolean;
  private readonly sharedVram: boolean;
  private readonly maxWgPerDim: number;
  private readonly commands = new Set<MirrorCommand>();
  /** Buffers of finished scratch commands (the device's: shared by its engines). */
  private readonly pool: CommandBufferPool;
  /** The device's buffer pool: every buffer the engine uses comes from it and goes back to it. */
  private readonly buffers: DeviceBuffers;
  /** Staging buffers of readGpu (a big one is kept for the next readback of that size). */
  private readonly readbacks: StagingCache;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly lost: { info: GPUDeviceLostInfo | null };
  private dead = false;
  private readonly counters = { rounds: 0, faultRecords: 0, overflows: 0, dispatches: 0, walkerSyncs: 0, walkerSyncsSkipped: 0, tlbLookups: 0, tlbWalks: 0, quietRounds: 0, coldRounds: 0, stalledWorkgroups: 0 };
  /** Submitted kernels that walk the page table (rounds, probes) not known to be finished. */
  private walkers = 0;
  #accessCounters: AccessCounterConfig | null = null;

  static async create(device: GPUDevice, opts: MirrorEngineOptions = {}): Promise<MirrorEngine> {
    ensureAlive(device, 'MirrorEngine.create');
    const label = opts.label ?? 'mirror';
    const { layout, pipelines } = await createEnginePipelines(device, label, opts.sched ?? HOST_SCHEDULER);
    return new MirrorEngine(device, label, opts, layout, pipelines);
  }

  private constructor(
    device: GPUDevice, label: string, opts: MirrorEngineOptions,
    layout: GPUBindGroupLayout, pipelines: EnginePipelines,
  ) {
    this.device = device;
    this.label = label;
    this.sched = opts.sched ?? HOST_SCHEDULER;
    this.layout = layout;
    this.pipelines = pipelines;
    this.faultSources = opts.faultSources ?? 8;
    if (!Number.isInteger(this.faultSources) || this.faultSources < 1) throw err('EINVAL', `faultSources ${this.faultSources}`);
    this.checkErrors = opts.checkErrors ?? true;
    this.skipStalled = opts.skipStalled ?? true;
    this.maxWgPerDim = Math.min(opts.maxWorkgroupsPerDimension ?? Infinity, device.limits.maxComputeWorkgroupsPerDimension);
    this.buffers = DeviceBuffers.of(device);
    this.pool = CommandBufferPool.of(device);
    const apertureSlots = opts.apertureSlots ?? 4096;
    this.sysmem = new PagePool(device, { slots: apertureSlots, label: `${label} aperture`, sched: this.sched });
    this.sharedVram = opts.vram !== undefined;
    this.vram = opts.vram ?? new PagePool(device, { slots: opts.deviceSlots ?? 4096, label: `${label} vram`, sched: this.sched });
    const deviceSlots = this.vram.slots;
    this.pt = new GpuPageTable(device, {
      label: `${label} page table`, apertureSlots, deviceSlots,
      initialTables: opts.initialTables, maxTables: opts.maxTables, mergeGap: opts.mergeGap,
    });
    this.faults = new FaultQueue(device, opts.faultCapacity ?? 4096, `${label} fault buffer`, this.sched, opts.faultSpill ?? FAULT_SPILL);
    this.devDirtyOff = Math.ceil(apertureSlots / 32);
    this.dirty = this.buffers.acquire({
      label: `${label} dirty bitmap`,
      size: (this.devDirtyOff + Math.ceil(deviceSlots / 32)) * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.stateStandIn = this.buffers.acquire({
      label: `${label} record-pass state`, size: STATE_HEADER_WORDS * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.gateArgs = this.buffers.acquire({
      label: `${label} gate arguments`, size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.INDIRECT | GPUBufferUsage.COPY_DST,
    });
    this.readbacks = StagingCache.of(device);
    this.staging = this.buffers.acquire({
      label: `${label} round staging`,
      size: STATE_HEADER_WORDS * 4 + this.faults.byteSize,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.lost = lostRecord(device);
  }

  /** Access counters of commands created from now on that do not say (CommandDesc.counters); null: none. */
  get accessCounters(): AccessCounterConfig | null {
    return this.#accessCounters;
  }

  set accessCounters(c: AccessCounterConfig | null) {
    if (c !== null) checkCounterConfig(c);
    this.#accessCounters = c === null ? null : { regionPages: c.regionPages, origin: c.origin };
  }

  get stats(): MirrorEngineStats { return { ...this.counters }; }

  /** Bytes a round copies back and maps: the state header and the whole fault ring. */
  get roundReadbackBytes(): number {
    return this.staging.size;
  }

  // -------------------------------------------------------------------------------------
  // Commands.

  /**
   * Compiles `wgsl` (appended to mirror-common.wgsl, like the engine's own kernels: it
   * declares bindings 2 and 3) against this engine's bind group layout, one kernel per
   * variant (an entry point and its override constants), for CommandDesc.kernel. Each must
   * follow the engine's work layout: thread t owns done word t and counts the words it leaves
   * not done in state[STATE_MISSED]; state[0] is the kernel's (kept across rounds: readCounter).
   * opts.stallGate: an app-access.wgsl kernel (miss lists, the gate's run list); rangeLeaves (so
   * stallGate): it translates through the leaves at leafOff, compiled per pool of them (POOL).
   */
  async createKernels(label: string, wgsl: string, variants: readonly KernelVariant[], opts: { stallGate?: boolean; rangeLeaves?: boolean } = {}): Promise<MirrorKernel[]> {
    this.alive('createKernels');
    const stallGate = opts.stallGate === true, rangeLeaves = stallGate || opts.rangeLeaves === true;
    const made = await compileKernels(this.device, this.layout, this.label, label, wgsl, variants, this.sched, rangeLeaves);
    return made.map(({ pipeline, byPool }, k) => ({ entryPoint: variants[k].entryPoint, engine: this, pipeline, byPool, stallGate, rangeLeaves }));
  }

  createCommand(desc: CommandDesc): MirrorCommand {
    this.alive('createCommand');
    checkCommandDesc(desc, this, this.device.limits.maxStorageBufferBindingSize);
    const counted = desc.counters === undefined ? { ...desc, counters: this.#accessCounters } : desc;
    const cmd = new MirrorCommand(this, counted, this.faultSources, this.devDirtyOff);
    this.commands.add(cmd);
    return cmd;
  }

  /**
   * One round: flush the page table, dispatch `cmd` (done invocations skip), then drain the
   * fault buffer and read the done count — one submission, one mapAsync.
   */
  runRound(cmd: MirrorCommand): Promise<RoundResult> {
    return this.serial('runRound', async () => {
      if (cmd.engine !== this || cmd.destroyed) throw err('EINVAL', 'runRound: command is destroyed or not this engine\'s');
      if (cmd.finished) {
        return { faults: [], overflow: false, completed: 0, missed: 0, done: cmd.done, total: cmd.words, finished: true, tlb: tlbStats(0, 0), stalled: 0 };
      }
      this.pt.flush();
      const bind = this.bindGroupFor(cmd);
      // A quiet round: a plain read (engine kernel, no counters) over a range mapped everywhere
      // cannot miss or dirty: no report / record pass, ring drain or state[] (quietRound). A fresh
      // one (no word done yet) runs mirror_read_fresh, no done bitmap, compiled for its leaves' pool.
      const pool = cmd.kernel === null && cmd.op === 'read' && cmd.counterWords === 0 ? this.pt.poolOf(cmd.page, cmd.npages, PTE_VALID) : null;
      const quiet = pool !== null, fresh = quiet && cmd.done === 0;
      const kernelPipeline = cmd.kernel === null ? null : cmd.kernel.byPool?.[this.pt.leafPool(cmd.page, cmd.npages)] ?? cmd.kernel.pipeline;
      // A cold round: an engine kernel over a range mapped nowhere (a first touch: every access
      // faults before any data moves) runs mirror_cold, a thread per page; a normal round's results.
      const cold = !quiet && cmd.kernel === null && this.pt.mapsNone(cmd.page, cmd.npages);
      if (!fresh) {
        cmd.markWritten();
        this.device.queue.writeBuffer(cmd.params, parityOffset(), new Uint32Array([cmd.parity]));
      }
      const gated = cmd.gateOff !== 0;
      if (gated) {
        // A right revoked since the last round: a stalled workgroup's miss list no longer says what it would do.
        const revoked = cmd.revocationsSeen !== this.pt.revocations;
        this.device.queue.writeBuffer(cmd.params, replayAllOffset(), new Uint32Array([revoked ? 1 : 0]));
        cmd.revocationsSeen = this.pt.revocations;
      }
      // A counting command's counters follow the fault ring in the same readback.
      const countersAt = STATE_HEADER_WORDS * 4 + this.faults.byteSize;
      if (countersAt + cmd.counterWords * 4 > this.staging.size) {
        this.buffers.release([{ buffer: this.staging }]); // between rounds: nothing maps it
        const size = countersAt + cmd.counterWords * 4;
        this.staging = this.buffers.acquire({ label: `${this.label} round staging`, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      }
      const round = async (): Promise<RoundResult> => {
        const enc = this.device.createCommandEncoder({ label: `${this.label} round` });
        // Forget last round's misses, the uTLBs' pending bits and the access counters.
        if (!quiet) enc.clearBuffer(cmd.state, 4, (STATE_HEADER_WORDS - 1 + cmd.pendWords + cmd.counterWords) * 4);
        const pass = enc.beginComputePass(timedPass(this.device, `${this.label} ${cmd.op}`)); // timestamps when a GpuTimer is on
        if (fresh || cmd.kernel?.rangeLeaves === true) {
          // Each page of the range walked once, its leaf left at leafOff (what the kernel, or
          // mirror_read_fresh, translates through); gated, a thread per workgroup then picks the
          // ones to run (the rest are done, or stalled: their faults re-issued), and the kernel
          // runs over that list only, indirectly (mirror-gate.wgsl).
          pass.setBindGroup(0, gated ? this.gateBindGroupFor(cmd) : bind);
          pass.setPipeline(this.pipelines.gateReach);
          pass.dispatchWorkgroups(...this.grid(Math.ceil(cmd.npages / MIRROR_WORKGROUP_SIZE)));
        }
        if (gated) {
          pass.setPipeline(this.pipelines.gate);
          pass.dispatchWorkgroups(...this.grid(Math.ceil(cmd.gateGroups / MIRROR_WORKGROUP_SIZE)));
          pass.setPipeline(this.pipelines.gateArgs);
          pass.dispatchWorkgroups(1);
        }
        pass.setPipeline(fresh ? this.pipelines.readFresh[pool] : cold ? this.pipelines.cold : kernelPipeline ?? this.pipelines[cmd.op]);
        pass.setBindGroup(0, bind);
        if (gated) pass.dispatchWorkgroupsIndirect(this.gateArgs, 0);
        else {
          // A thread per done word (8 pages a workgroup), per invocation (CommandDesc.invocations)
          // or, cold, per page (256 pages a workgroup).
          const [x, y] = this.grid(cmd.perInvocation ? Math.ceil(cmd.words / MIRROR_WORKGROUP_SIZE)
            : Math.ceil(cmd.npages / (cold ? MIRROR_WORKGROUP_SIZE : MIRROR_PAGES_PER_WORKGROUP)));
          pass.dispatchWorkgroups(x, y);
        }
        if (cmd.kernel === null && !quiet) {
          // The engine's kernels leave the dirty bits, counts and faults to their report pass
          // (one thread per page) and, in a round with a miss, its record pass (dispatched
          // through the arguments the report pass leaves in state[]: none otherwise).
          pass.setPipeline(this.pipelines.report[cmd.op]);
          const [rx, ry] = this.grid(Math.ceil(cmd.npages / MIRROR_WORKGROUP_SIZE));
          pass.dispatchWorkgroups(rx, ry);
          pass.setPipeline(this.pipelines.record[cmd.op]);
          pass.setBindGroup(0, this.recordBindGroupFor(cmd));
          pass.dispatchWorkgroupsIndirect(cmd.state, STATE_RECORD_ARGS * 4);
        }
        pass.end();
        if (quiet) return this.quietRound(cmd, enc);
        enc.copyBufferToBuffer(cmd.state, 0, this.staging, 0, STATE_HEADER_WORDS * 4);
        this.faults.encodeDrain(enc, this.staging, STATE_HEADER_WORDS * 4);
        if (cmd.counterWords > 0) enc.copyBufferToBuffer(cmd.state, cmd.counterOff * 4, this.staging, countersAt, cmd.counterWords * 4);
        this.device.queue.submit([enc.finish()]);
        this.counters.dispatches++;
        this.walkers++;
        try {
          // the whole submission has finished
          await this.sched.wait(this.staging.mapAsync(GPUMapMode.READ), `${this.label}: round mapAsync`);
        } finally {
          this.walkers--;
        }
        try {
          const bytes = this.staging.getMappedRange();
          const head = new Uint32Array(bytes, 0, STATE_HEADER_WORDS);
          // Every word not done before the round was either done by it or counted missed.
          const missed = head[1];
          if (missed > cmd.words - cmd.done) throw err('EIO', `${this.label}: ${missed} words missed, ${cmd.words - cmd.done} were left`);
          const done = cmd.words - missed;
          const batch = this.faults.parse(bytes, STATE_HEADER_WORDS * 4);
          const counters = cmd.counterWords > 0 ? new Uint32Array(bytes.slice(countersAt, countersAt + cmd.counterWords * 4)) : null;
          return {
            faults: batch.records, overflow: batch.overflow, completed: done - cmd.done, missed,
            done, total: cmd.words, finished: done === cmd.words, tlb: tlbStats(head[STATE_TLB_LOOKUPS], head[STATE_TLB_WALKS]),
            stalled: head[STATE_GATE_STALLED],
            ...(counters !== null ? { counters } : {}),
          };
        } finally {
          this.staging.unmap();
        }
      };
      const r = this.checkErrors ? await withErrorScopes(this.device, round, this.sched) : await round();
      // mirror_read_fresh wrote no done bit and read no parity; otherwise this round's
      // `next` bitmap is the next round's `prev`.
      if (fresh) cmd.setDoneOnHost();
      else { cmd.setDone(r.done); cmd.parity ^= 1; }
      if (r.counters !== undefined) cmd.addCounts(r.counters);
      this.counters.rounds++;
      if (quiet) this.counters.quietRounds++;
      if (cold) this.counters.coldRounds++;
      this.counters.faultRecords += r.faults.length;
      this.counters.tlbLookups += r.tlb.lookups;
      this.counters.tlbWalks += r.tlb.walks;
      this.counters.stalledWorkgroups += r.stalled;
      if (r.overflow) this.counters.overflows++;
      return r;
    });
  }

  /**
   * The end of a quiet round: submit, wait (mapping the state header, not looked at: the
   * copy kernel cannot miss and writes no state word), answer. The TLB figures are the
   * range's shape (a lookup per thread, a walk per page), as the report pass counts them.
   */
  private async quietRound(cmd: MirrorCommand, enc: GPUCommandEncoder): Promise<RoundResult> {
    enc.copyBufferToBuffer(cmd.state, 0, this.staging, 0, STATE_HEADER_WORDS * 4);
    this.device.queue.submit([enc.finish()]);
    this.counters.dispatches++;
    this.walkers++;
    try {
      await this.sched.wait(this.staging.mapAsync(GPUMapMode.READ, 0, STATE_HEADER_WORDS * 4), `${this.label}: round mapAsync`);
    } finally {
      this.walkers--;
    }
    this.staging.unmap();
    return {
      faults: [], overflow: false, completed: cmd.words - cmd.done, missed: 0, done: cmd.words, total: cmd.words,
      finished: true, tlb: tlbStats(cmd.npages * MIRROR_THREADS_PER_PAGE, cmd.npages), stalled: 0,
    };
  }

  // -------------------------------------------------------------------------------------
  // Invalidation and write-back.

  /** Pushes page-table changes to the GPU (runRound does it too). */
  flush(): number {
    this.alive('flush');
    return this.pt.flush();
  }

  /** Resolves when all GPU work submitted so far (and queued writes) has finished. */
  async fence(): Promise<void> {
    this.alive('fence');
    try {
      await this.sched.wait(this.device.queue.onSubmittedWorkDone(), `${this.label}: fence`);
    } catch (e) {
      throw await asDeviceError(this.device, e, `${this.label}: fence`, this.sched);
    }
    this.alive('fence');
  }

  /**
   * The TLB-invalidate + membar half of a shootdown, taken with the flush in one synchronous
   * stretch (MirrorPt.shootdown): resolves once no kernel that walks the page table (a round,
   * a probe) submitted before the call can still be running — a fence when one may be, and
   * nothing at all when none is: kernels read the entries from the table buffer on every
   * access (no translation outlives a dispatch), and every later dispatch is queued behind
   * the flushed entries. Other GPU work (uploads, copies, readbacks) never translates.
   */
  syncWalkers(): Promise<void> {
    try {
      this.alive('syncWalkers');
    } catch (e) {
      return Promise.reject(e);
    }
    this.counters.walkerSyncs++;
    if (this.walkers === 0) {
      this.counters.walkerSyncsSkipped++;
      return Promise.resolve();
    }
    return this.fence(); // (not wrapped in another async frame: a shootdown is latency)
  }

  /**
   * The pages of `pool` the GPU wrote since the last call, with their contents, and their
   * dirty bits cleared. Bits are read and cleared in one submission, in queue order, so a
   * write by later work is never lost: it sets the bit again.
   */
  writebackDirty(pool: 'sysmem' | 'vram' = 'sysmem'): Promise<PageData[]> {
    return this.serial('writebackDirty', async () => {
      const target = pool === 'sysmem' ? this.sysmem : this.vram;
      const off = pool === 'sysmem' ? 0 : this.devDirtyOff;
      const bytesOf = Math.ceil(target.slots / 32) * 4;
      const slots = await this.staged(bytesOf, 'dirty', (enc, staging) => {
        enc.copyBufferToBuffer(this.dirty, off * 4, staging, 0, bytesOf);
        enc.clearBuffer(this.dirty, off * 4, bytesOf);
      }, (m) => slotsOfBitmap(new Uint32Array(m, 0, bytesOf / 4), target.slots));
      const bytes = await target.readback(slots);
      return slots.map((slot, k) => ({ slot, data: bytes.subarray(k * PAGE_BYTES, (k + 1) * PAGE_BYTES) }));
    });
  }

  /** The GPU's own translation of each page (the walk translate() does), for tests/debug. */
  probe(pages: readonly number[]): Promise<Uint32Array> {
    return this.serial('probe', async () => {
      const n = pages.length;
      if (n === 0) return new Uint32Array(0);
      for (const p of pages) {
        if (!Number.isSafeInteger(p) || p < 0 || p >= PT_MAX_PAGE) throw err('EINVAL', `probe: page ${p}`);
      }
      this.pt.flush();
      const io = new Uint32Array(Math.ceil((3 * n) / 4) * 4); // bound as vec4s
      pages.forEach((p, k) => { io[2 * k] = p % 2 ** 32; io[2 * k + 1] = Math.floor(p / 2 ** 32); });
      const d = this.device;
      const run = async (): Promise<Uint32Array> => {
        const b = this.buffers;
        const params = b.acquire({ label: `${this.label} probe params`, size: paramsBytes(), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
        const ioBuf = b.acquire({ label: `${this.label} probe io`, size: io.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
        const state = b.acquire({ label: `${this.label} probe state`, size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
        const done = b.acquire({ label: `${this.label} probe done`, size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
        try {
          d.queue.writeBuffer(params, 0, encodeParams({ nwords: n, nsources: 1 }));
          d.queue.writeBuffer(ioBuf, 0, io);
          const bind = this.makeBindGroup(params, ioBuf, state, done);
          const enc = d.createCommandEncoder({ label: `${this.label} probe` });
          const pass = enc.beginComputePass();
          pass.setPipeline(this.pipelines.probe);
          pass.setBindGroup(0, bind);
          const [x, y] = this.grid(Math.ceil(n / MIRROR_WORKGROUP_SIZE));
          pass.dispatchWorkgroups(x, y);
          pass.end();
          d.queue.submit([enc.finish()]);
          this.walkers++;
          try {
            return new Uint32Array(await this.readGpuUnlocked(ioBuf, 8 * n, 4 * n, 'probe'));
          } finally {
            this.walkers--;
          }
        } finally {
          b.release([{ buffer: params }, { buffer: ioBuf }, { buffer: state }, { buffer: done }]);
        }
      };
      return this.checkErrors ? withErrorScopes(d, run, this.sched) : run();
    });
  }

  /**
   * Hands every GPU buffer back to the device's pool (zeroed there before anyone else gets
   * it: the next mirror on this device reuses them); later calls fail with ENODEV. The
   * device's spare command sets stay (other engines use them).
   */
  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    for (const c of [...this.commands]) c.destroy();
    this.commands.clear();
    this.pt.destroy();
    this.sysmem.destroy();
    if (!this.sharedVram) this.vram.destroy();
    this.faults.destroy();
    // The round staging may still be mapping for a round in flight: the pool destroys it then.
    this.buffers.release([{ buffer: this.dirty }, { buffer: this.stateStandIn }, { buffer: this.gateArgs }, { buffer: this.staging }]);
  }

  // -------------------------------------------------------------------------------------

  /** @internal: the spare buffer sets, or null once the engine is dead or its device lost. */
  spares(): CommandBufferPool | null {
    return this.dead || this.lost.info ? null : this.pool;
  }

  /** @internal: a destroyed command leaves the engine's list. */
  forget(cmd: MirrorCommand): void {
    this.commands.delete(cmd);
  }

  /** @internal: reads a buffer region, in turn with rounds. */
  readGpu(buffer: GPUBuffer, offset: number, size: number, what: string): Promise<ArrayBuffer> {
    return this.serial(what, () => this.readGpuUnlocked(buffer, offset, size, what));
  }

  /** @internal: readGpu into `dest` straight from the mapped staging buffer (no copy of its own). */
  readGpuInto(buffer: GPUBuffer, offset: number, size: number, what: string, dest: Uint8Array): Promise<Uint8Array> {
    const into = (m: ArrayBuffer): Uint8Array => (dest.set(new Uint8Array(m, 0, size)), dest);
    return this.serial(what, () => this.staged(size, what, (enc, staging) => enc.copyBufferToBuffer(buffer, offset, staging, 0, size), into));
  }

  private readGpuUnlocked(buffer: GPUBuffer, offset: number, size: number, what: string): Promise<ArrayBuffer> {
    return this.staged(size, what, (enc, staging) => enc.copyBufferToBuffer(buffer, offset, staging, 0, size), copyOut);
  }

  /** `size` bytes through a staging buffer of the engine's cache: `encode` fills it, then it is mapped and handed to `consume`. */
  private async staged<T>(size: number, what: string, encode: (enc: GPUCommandEncoder, staging: GPUBuffer) => void, consume: (mapped: ArrayBuffer) => T): Promise<T> {
    const staging = this.readbacks.take(size, `${this.label} ${what} staging`);
    let reuse = false;
    try {
      const enc = this.device.createCommandEncoder({ label: `${this.label} ${what}` });
      encode(enc, staging);
      this.device.queue.submit([enc.finish()]);
      await this.sched.wait(staging.mapAsync(GPUMapMode.READ), `${this.label}: ${what} mapAsync`);
      const out = consume(staging.getMappedRange());
      staging.unmap();
      reuse = !this.dead;
      return out;
    } finally {
      this.readbacks.give(staging, reuse);
    }
  }

  /** Throws ENODEV when the engine was destroyed or its device lost. */
  checkAlive(what = 'checkAlive'): void {
    this.alive(what);
  }

  private alive(what: string): void {
    if (this.dead) throw err('ENODEV', `${this.label}: ${what}: engine destroyed`);
    if (this.lost.info) throw err('ENODEV', `${this.label}: ${what}: GPU device lost (${this.lost.info.reason}): ${this.lost.info.message}`);
    ensureAlive(this.device, `${this.label}: ${what}`);
  }

  /**
   * Runs fn after everything queued before it: rounds, drains and readbacks of one engine
   * never interleave (they share the staging buffer, the fault ring and the error-scope
   * stack). Errors come out as HmmError.
   */
  private serial<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      this.alive(what);
      try {
        return await fn();
      } catch (e) {
        if (e instanceof HmmError) throw e;
        if (this.lost.info || this.dead) throw err('ENODEV', `${this.label}: ${what}: ${e instanceof Error ? e.message : String(e)}`);
        if (e instanceof GpuError && /device is lost/.test(e.message)) throw err('ENODEV', `${this.label}: ${what}: ${e.message}`);
        throw await asDeviceError(this.device, e, `${this.label}: ${what}`, this.sched);
      }
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** A 1-D grid of `groups` workgroups, 2-D past maxComputeWorkgroupsPerDimension. */
  private grid(groups: number): [number, number] {
    const x = Math.min(groups, this.maxWgPerDim);
    return [x, Math.ceil(groups / x)];
  }

  private bindGroupFor(cmd: MirrorCommand): GPUBindGroup {
    if (!cmd.bindGroup || cmd.bindGen !== this.pt.generation) {
      cmd.bindGroup = this.makeBindGroup(cmd.params, cmd.io, cmd.state, cmd.doneBits);
      cmd.bindGen = this.pt.generation;
    }
    return cmd.bindGroup;
  }

  /** The record pass's: the command's, with state[] (its indirect arguments) replaced by a stand-in. */
  private recordBindGroupFor(cmd: MirrorCommand): GPUBindGroup {
    if (!cmd.recordBindGroup || cmd.recordBindGen !== this.pt.generation) {
      cmd.recordBindGroup = this.makeBindGroup(cmd.params, cmd.io, this.stateStandIn, cmd.doneBits);
      cmd.recordBindGen = this.pt.generation;
    }
    return cmd.recordBindGroup;
  }

  /** The gate pass's: the command's, with io[] replaced by the engine's gate arguments (the kernel's indirect arguments). */
  private gateBindGroupFor(cmd: MirrorCommand): GPUBindGroup {
    if (!cmd.gateBindGroup || cmd.gateBindGen !== this.pt.generation) {
      cmd.gateBindGroup = this.makeBindGroup(cmd.params, this.gateArgs, cmd.state, cmd.doneBits);
      cmd.gateBindGen = this.pt.generation;
    }
    return cmd.gateBindGroup;
  }

  private makeBindGroup(params: GPUBuffer, io: GPUBuffer, state: GPUBuffer, done: GPUBuffer): GPUBindGroup {
    return this.device.createBindGroup({
      label: `${this.label} bind group`,
      layout: this.layout,
      entries: [
        { binding: 0, resource: { buffer: params } },
        { binding: 1, resource: { buffer: this.pt.buffer } },
        { binding: 2, resource: { buffer: this.sysmem.buffer } },
        { binding: 3, resource: { buffer: this.vram.buffer } },
        { binding: 4, resource: { buffer: io } },
        { binding: 5, resource: { buffer: state } },
        { binding: 6, resource: { buffer: this.faults.buffer } },
        { binding: 7, resource: { buffer: this.dirty } },
        { binding: 8, resource: { buffer: done } },
      ],
    });
  }
}
