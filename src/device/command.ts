/**
 * One command (a "push buffer" of one kernel over one range) and its GPU buffers: params,
 * io, state (counters and the uTLBs' pending bitmap) and the two done bitmaps; the spare
 * sets scratch commands recycle.
 */
import { err } from '../errors.js';
import {
  encodeParams, GATE_WORDS_PER_GROUP, MIRROR_TLB_BLOCK_WORDS, MIRROR_WORKGROUP_SIZE, paramsBytes, parityOffset, PEND_BITS_PER_PAGE, STATE_HEADER_WORDS, WORDS_PER_PAGE,
} from './abi.js';
import { ensureAlive } from './health.js';
import { DeviceBuffers } from './buffer-pool.js';
import { PAGE_BYTES } from './page-pool.js';
import { PT_MAX_PAGE, type LeafPool } from './page-table.js';

export type MirrorOp = 'read' | 'write' | 'atomic';

export interface CommandDesc {
  op: MirrorOp;
  /** First page of the virtual range. */
  page: number;
  npages: number;
  /**
   * write: the words to store (npages * 1024, required). read / atomic: the output's
   * initial contents (optional, zero otherwise; tests poison it).
   */
  data?: Uint32Array;
  /**
   * The command's buffers may be recycled ones (an earlier scratch command's, of the same
   * page count; done bits and state cleared) and its io buffer then holds old words instead
   * of zeros: for a command whose output is only read once it has finished, i.e. once every
   * word was written (readOutput() of an unfinished scratch command is EINVAL). Saves
   * allocating and zero-filling an io buffer of up to 128 MiB, and four buffer creations and
   * destructions, per command. Given `data`, that is written in. The spare sets are the
   * device's (every engine on it shares them): a set that comes from another engine (another
   * mirror) for a command with a kernel of its own has its io zeroed too — the engine's own
   * kernels write every io word before the command finishes, so the old words never show.
   */
  scratch?: boolean;
  /**
   * Dispatch this kernel (MirrorEngine.createKernels) instead of op's. It works on the same
   * layout (done bitmaps, missed count, fault ring, dirty bits); `op` still says what the
   * command does to memory ('read' or 'write': it may write) for labels and the driver.
   */
  kernel?: MirrorKernel;
  /**
   * Size of the io buffer in words (default npages * 1024; a multiple of 4), for a kernel
   * with its own inputs and outputs there; `data`, when given, has this many words.
   */
  ioWords?: number;
  /**
   * A `kernel` with one GPU thread per invocation (the application kernels, whose
   * invocations loop long): the command has this many invocations (1 .. npages * 1024,
   * invocation i = done bit i) and a round dispatches a thread for each. Without it a
   * command has npages * 1024 invocations, 32 to a thread (the engine's own layout). On
   * llvmpipe a shader invocation's loops stop, all together, after 65,535 iterations
   * (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS): 32 long invocations to a thread would run into it.
   */
  invocations?: number;
  /**
   * Count remote accesses per region on the GPU (access counters; MirrorEngine.accessCounters
   * when not given, null: not counting). Each round's counts come back on RoundResult.counters
   * and add up in MirrorCommand.accessCounts.
   */
  counters?: AccessCounterConfig | null;
}

/**
 * GPU access counters (NVIDIA's, uvm_gpu_access_counters.c): one counter per `regionPages`
 * pages, regions aligned to page `origin` (region k = [origin + k * regionPages, +regionPages)).
 * A command counts only the regions its range overlaps: at most npages + 1 counters, so the
 * table is bounded by the command, never by the address space.
 */
export interface AccessCounterConfig {
  regionPages: number;
  origin: number;
}

/** What a command's counters counted: counts[i] remote word accesses in region i, which starts at firstPage + i * regionPages. */
export interface AccessCounts {
  regionPages: number;
  firstPage: number;
  counts: Uint32Array;
}

/** Validates an AccessCounterConfig (EINVAL otherwise). */
export function checkCounterConfig(c: AccessCounterConfig): void {
  if (!Number.isSafeInteger(c.regionPages) || c.regionPages < 1 || c.regionPages > 2 ** 31
    || !Number.isSafeInteger(c.origin) || c.origin < 0) {
    throw err('EINVAL', `access counters: region of ${c.regionPages} pages from page ${c.origin}`);
  }
}

/**
 * Validates a command's descriptor against its engine and the device's binding limit
 * (EINVAL otherwise, nothing created): the range, the io's size, the kernel's engine.
 */
export function checkCommandDesc(desc: CommandDesc, host: CommandHost, maxBinding: number): void {
  if (desc.op !== 'read' && desc.op !== 'write' && desc.op !== 'atomic') throw err('EINVAL', `unknown op ${String(desc.op)}`);
  if (!Number.isSafeInteger(desc.page) || desc.page < 0 || !Number.isSafeInteger(desc.npages) || desc.npages < 1
    || desc.page + desc.npages > PT_MAX_PAGE) {
    throw err('EINVAL', `createCommand: bad range [${desc.page}, +${desc.npages})`);
  }
  const bytes = desc.npages * PAGE_BYTES;
  if (bytes > maxBinding) {
    throw err('EINVAL', `createCommand: ${desc.npages} pages need a ${bytes}-byte io buffer; this device binds ${maxBinding}`);
  }
  if (desc.kernel !== undefined && desc.kernel.engine !== host) throw err('EINVAL', 'createCommand: kernel of another engine');
  if (desc.ioWords !== undefined) {
    if (!Number.isSafeInteger(desc.ioWords) || desc.ioWords < 4 || desc.ioWords % 4 !== 0
      || desc.ioWords * 4 > maxBinding) {
      throw err('EINVAL', `createCommand: ioWords ${desc.ioWords}`);
    }
    if (desc.scratch) throw err('EINVAL', 'createCommand: a sized io is never scratch');
  }
  if (desc.invocations !== undefined) {
    if (desc.kernel === undefined) throw err('EINVAL', 'createCommand: invocations need a kernel of their own');
    if (!Number.isSafeInteger(desc.invocations) || desc.invocations < 1 || desc.invocations > desc.npages * WORDS_PER_PAGE) {
      throw err('EINVAL', `createCommand: ${desc.invocations} invocations over ${desc.npages} pages`);
    }
    if (desc.scratch) throw err('EINVAL', 'createCommand: a command of its own invocation count is never scratch');
  }
  const words = desc.ioWords ?? desc.npages * WORDS_PER_PAGE;
  if (desc.op === 'write' && desc.data === undefined) throw err('EINVAL', 'createCommand: write needs data');
  if (desc.data !== undefined && desc.data.length !== words) {
    throw err('EINVAL', `createCommand: data has ${desc.data.length} words, the io has ${words}`);
  }
}

/** A kernel compiled against one engine's bind group layout (see MirrorEngine.createKernels). */
export interface MirrorKernel {
  readonly entryPoint: string;
  /** @internal: the engine it was compiled for. */ readonly engine: CommandHost;
  /** @internal */ readonly pipeline: GPUComputePipeline;
  /** @internal: the same kernel compiled for each pool of the range's leaves (rangeLeaves kernels). */
  readonly byPool: Readonly<Record<LeafPool, GPUComputePipeline>> | null;
  /**
   * The kernel leaves a miss list per workgroup and runs the workgroups of the gate's run
   * list (app-access.wgsl, mirror-gate.wgsl): its commands of their own invocation count are
   * gated when the engine skips stalled workgroups.
   */
  readonly stallGate: boolean;
  /** It translates through the range's leaves at leafOff, which the engine's gate_reach leaves before it every round. */
  readonly rangeLeaves: boolean;
}

/** Spare buffer sets a device keeps (a chunked command's full chunks and its last one, two mirrors' worth). */
const MAX_SPARE_SETS = 4;

/** The GPU buffers of one command (recycled between scratch commands). */
export interface CommandBuffers {
  npages: number;
  params: GPUBuffer;
  io: GPUBuffer;
  state: GPUBuffer;
  doneBits: GPUBuffer;
  bindGroup: GPUBindGroup | null;
  bindGen: number;
  /** The engine the set was last used on (whose buffers bindGroup binds); weak: a closed mirror's engine stays garbage. */
  owner: WeakRef<CommandHost>;
}

/** The set goes back to the device's buffer pool (zeroed there). */
function releaseSet(device: GPUDevice, b: CommandBuffers): void {
  DeviceBuffers.of(device).release([{ buffer: b.params }, { buffer: b.io }, { buffer: b.state }, { buffer: b.doneBits }]);
}

const devicePools = new WeakMap<GPUDevice, CommandBufferPool>();

/** Buffers of finished scratch commands, one set per page count (newest last), one pool per device. */
export class CommandBufferPool {
  readonly #spares: CommandBuffers[] = [];
  readonly #device: GPUDevice;

  private constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** The pool every engine on `device` shares. */
  static of(device: GPUDevice): CommandBufferPool {
    let p = devicePools.get(device);
    if (p === undefined) {
      p = new CommandBufferPool(device);
      devicePools.set(device, p);
    }
    return p;
  }

  /** A spare buffer set for `npages` with state[] and done[] of these sizes, or null. */
  take(npages: number, stateBytes: number, doneBytes: number): CommandBuffers | null {
    const k = this.#spares.findIndex((b) => b.npages === npages && b.state.size === stateBytes && b.doneBits.size === doneBytes);
    return k < 0 ? null : this.#spares.splice(k, 1)[0];
  }

  /** Keeps a finished scratch command's buffers (at most MAX_SPARE_SETS sets). */
  put(set: CommandBuffers): void {
    const same = this.#spares.findIndex((b) => b.npages === set.npages);
    if (same >= 0) releaseSet(this.#device, this.#spares.splice(same, 1)[0]);
    this.#spares.push(set);
    while (this.#spares.length > MAX_SPARE_SETS) releaseSet(this.#device, this.#spares.shift()!);
  }

  destroy(): void {
    for (const b of this.#spares.splice(0)) releaseSet(this.#device, b);
  }
}

/** What a command needs of the engine it runs on. */
export interface CommandHost {
  readonly device: GPUDevice;
  readonly label: string;
  /** Gate the commands of stall-gated kernels (MirrorEngineOptions.skipStalled). */
  readonly skipStalled: boolean;
  /** The host's spare buffers; null once it is dead (the buffers then just go). */
  spares(): CommandBufferPool | null;
  /** A destroyed command leaves the host's list. */
  forget(cmd: MirrorCommand): void;
  /** Reads a buffer region, in turn with rounds. */
  readGpu(buffer: GPUBuffer, offset: number, size: number, what: string): Promise<ArrayBuffer>;
  /** The same, into `dest` (its first `size` bytes). */
  readGpuInto(buffer: GPUBuffer, offset: number, size: number, what: string, dest: Uint8Array): Promise<Uint8Array>;
}

/** One command (a "push buffer" of one kernel over one range) and its GPU state. */
export class MirrorCommand {
  readonly op: MirrorOp;
  /** The kernel run instead of op's, if any. */
  readonly kernel: MirrorKernel | null;
  readonly page: number;
  readonly npages: number;
  /** Invocations: npages * 1024, or CommandDesc.invocations. */
  readonly words: number;
  /** One thread per invocation (CommandDesc.invocations), not one per done word. */
  readonly perInvocation: boolean;
  /** @internal */ readonly engine: CommandHost;
  /** @internal */ readonly params!: GPUBuffer;
  /** @internal */ readonly io!: GPUBuffer;
  /** @internal */ readonly state!: GPUBuffer;
  /** @internal: two done bitmaps and the report pass's leaves (see mirrorThread in mirror-common.wgsl). */
  readonly doneBits!: GPUBuffer;
  /** @internal */ readonly pendWords: number;
  /** @internal: access counters in state[] after the pending bitmap (0: not counting). */
  readonly counterWords: number;
  /** @internal */ readonly counterOff: number;
  /** @internal: the stall gate's words in state[] (mirror-gate.wgsl; 0: not gated) and the workgroups it gates. */
  readonly gateOff: number;
  readonly gateGroups: number;
  /** @internal: the gate pass's bind group (MirrorEngine.gateBindGroupFor). */
  gateBindGroup: GPUBindGroup | null = null;
  /** @internal */ gateBindGen = -1;
  /** @internal: the page table's revocation count at this command's last round (-1: none yet). */
  revocationsSeen = -1;
  /** Remote word accesses counted per region over the rounds so far (null: not counting). */
  readonly accessCounts: AccessCounts | null;
  /** @internal: the buffers go back to the engine's spares on destroy. */
  readonly scratch: boolean;
  /** @internal */ readonly doneWords: number;
  /** @internal: which of the two done bitmaps is current (see mirrorThread). */
  parity = 0;
  /** @internal */ bindGroup: GPUBindGroup | null = null;
  /** @internal */ bindGen = -1;
  /** @internal: the record pass's bind group (MirrorEngine.recordBindGroupFor). */
  recordBindGroup: GPUBindGroup | null = null;
  /** @internal */ recordBindGen = -1;
  private doneCount = 0;
  private dead = false;
  /** Finished by a round that wrote no done bit (mirror_read_fresh): readDone answers all-done. */
  #doneOnHost = false;
  /**
   * state[] or the done bitmaps may hold something other than zeros: set by every round but
   * mirror_read_fresh (which writes neither: its TLB leaves past the bitmaps are only read
   * within a round) and by cancelSources. While clear, reset() has nothing to clear.
   */
  #written = false;

  /** @internal: use MirrorEngine.createCommand. */
  constructor(engine: CommandHost, desc: CommandDesc, faultSources: number, devDirtyOff: number) {
    this.engine = engine;
    this.op = desc.op;
    this.kernel = desc.kernel ?? null;
    this.page = desc.page;
    this.npages = desc.npages;
    this.words = desc.invocations ?? desc.npages * WORDS_PER_PAGE;
    this.perInvocation = desc.invocations !== undefined;
    const device = engine.device;
    this.pendWords = Math.ceil((faultSources * desc.npages * PEND_BITS_PER_PAGE) / 32);
    this.doneWords = Math.ceil(this.words / 32);
    const cfg = desc.counters ?? null;
    let cntFirst = 0;
    if (cfg !== null) {
      checkCounterConfig(cfg);
      cntFirst = (((desc.page - cfg.origin) % cfg.regionPages) + cfg.regionPages) % cfg.regionPages;
    }
    this.counterWords = cfg === null ? 0 : Math.floor((cntFirst + desc.npages - 1) / cfg.regionPages) + 1;
    this.counterOff = cfg === null ? 0 : STATE_HEADER_WORDS + this.pendWords;
    this.accessCounts = cfg === null ? null
      : { regionPages: cfg.regionPages, firstPage: desc.page - cntFirst, counts: new Uint32Array(this.counterWords) };
    const stateWords = STATE_HEADER_WORDS + this.pendWords + this.counterWords;
    // Gated when the kernel keeps the gate's lists and they fit in one binding after the done
    // bitmaps and the leaves (2.3 KiB a workgroup: 76 MiB at the 128 MiB io a command may
    // have). They live in done[], plain words: in state[] every load is an atomic.
    const ungatedDone = 2 * this.doneWords + desc.npages;
    const groups = Math.ceil(this.words / MIRROR_WORKGROUP_SIZE);
    const gated = this.perInvocation && engine.skipStalled && desc.kernel?.stallGate === true
      && (ungatedDone + groups * GATE_WORDS_PER_GROUP) * 4 <= device.limits.maxStorageBufferBindingSize;
    this.gateGroups = gated ? groups : 0;
    this.gateOff = gated ? ungatedDone : 0;
    const doneBytes = (ungatedDone + this.gateGroups * GATE_WORDS_PER_GROUP) * 4;

    const label = `${engine.label} ${desc.op} [0x${desc.page.toString(16)}, +${desc.npages})`;
    this.scratch = desc.scratch === true;
    const spare = this.scratch ? engine.spares()?.take(desc.npages, stateWords * 4, doneBytes) ?? null : null;
    if (spare !== null) {
      // A finished scratch command's buffers, same size: clear what must start clear.
      ({ params: this.params, io: this.io, state: this.state, doneBits: this.doneBits } = spare);
      if (spare.owner.deref() === engine) {
        this.bindGroup = spare.bindGroup;
        this.bindGen = spare.bindGen;
      }
      const enc = device.createCommandEncoder({ label: `${label} recycle` });
      enc.clearBuffer(this.state);
      enc.clearBuffer(this.doneBits);
      if (spare.owner.deref() !== engine && this.kernel !== null && !desc.data) enc.clearBuffer(this.io);
      device.queue.submit([enc.finish()]);
    } else {
      // From the device's buffer pool: zeroed, created only when none of the size waits.
      const pool = DeviceBuffers.of(device);
      const name = this.scratch ? `${engine.label} scratch (${desc.npages} pages)` : label;
      this.params = pool.acquire({ label: `${name} params`, size: paramsBytes(), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      this.io = pool.acquire({
        label: `${name} io`,
        size: (desc.ioWords ?? desc.npages * WORDS_PER_PAGE) * 4,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      this.state = pool.acquire({
        label: `${name} state`,
        size: stateWords * 4,
        // INDIRECT: the record pass is dispatched through state[STATE_RECORD_ARGS ..].
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | GPUBufferUsage.INDIRECT,
      });
      this.doneBits = pool.acquire({
        label: `${name} done`,
        size: doneBytes, // the two bitmaps, a leaf per page (leafOff), the gate's words (gateOff)
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
    }
    if (desc.data) device.queue.writeBuffer(this.io, 0, desc.data as Uint32Array<ArrayBuffer>);
    device.queue.writeBuffer(this.params, 0, encodeParams({
      vaLo: desc.page % 2 ** 32, vaHi: Math.floor(desc.page / 2 ** 32), npages: desc.npages, nwords: this.words,
      nsources: faultSources, pendOff: STATE_HEADER_WORDS, devDirtyOff, doneWords: this.doneWords, parity: 0,
      cntOff: this.counterOff, cntFirst, cntPages: cfg?.regionPages ?? 1, leafOff: 2 * this.doneWords,
      gateOff: this.gateOff, replayAll: 1,
    }));
  }

  /** Invocations done so far (as of the last round). */
  get done(): number {
    return this.doneCount;
  }

  get finished(): boolean {
    return this.doneCount === this.words;
  }

  get destroyed(): boolean {
    return this.dead;
  }

  /** @internal */
  setDone(n: number): void {
    this.doneCount = n;
  }

  /** @internal: a round that may write state[] and the done bitmaps is about to be submitted. */
  markWritten(): void {
    this.#written = true;
  }

  /**
   * @internal: a round that wrote no done bit finished the command (mirror_read_fresh: it
   * ran first, nothing done before it, and could not miss): every invocation is done.
   */
  setDoneOnHost(): void {
    this.doneCount = this.words;
    this.#doneOnHost = true;
  }

  /** @internal: a round's counter readout adds to the command's sums. */
  addCounts(round: Uint32Array): void {
    const sum = this.accessCounts!.counts;
    for (let i = 0; i < sum.length; i++) sum[i] += round[i];
  }

  /** The io buffer: read results / atomic old values (write: what was stored). */
  async readOutput(): Promise<Uint32Array> {
    if (this.scratch && !this.finished) throw err('EINVAL', 'readOutput: a scratch command\'s output is only read once it has finished');
    return new Uint32Array(await this.engine.readGpu(this.io, 0, this.io.size, 'readOutput'));
  }

  /** readOutput into `dest` (at least the io buffer's size), copied from the mapped staging buffer. */
  async readOutputInto(dest: Uint8Array): Promise<Uint8Array> {
    if (this.scratch && !this.finished) throw err('EINVAL', 'readOutput: a scratch command\'s output is only read once it has finished');
    if (dest.length < this.io.size) throw err('EFAULT', `readOutput: destination of ${dest.length} bytes for ${this.io.size}`);
    return this.engine.readGpuInto(this.io, 0, this.io.size, 'readOutput', dest);
  }

  /** state[0]: a kernel's own counter (createKernels), zeroed with the command and by reset(). */
  async readCounter(): Promise<number> {
    return new Uint32Array(await this.engine.readGpu(this.state, 0, 4, 'readCounter'))[0];
  }

  /** The done bitmap: bit i of word i/32 is invocation i. */
  async readDone(): Promise<Uint32Array> {
    // (The engine's own layout: words is npages * 1024, every bit of every done word is work.)
    if (this.#doneOnHost) return new Uint32Array(this.doneWords).fill(0xffffffff);
    const off = this.parity ? this.doneWords : 0;
    return new Uint32Array(await this.engine.readGpu(this.doneBits, off * 4, this.doneWords * 4, 'readDone'));
  }

  /** Invocations a uTLB's block holds: a workgroup's (8 pages) for the engine's kernels, TLB_BLOCK_WORDS for a kernel of its own. */
  get sourceBlockWords(): number {
    return this.kernel === null ? MIRROR_WORKGROUP_SIZE * 32 : MIRROR_TLB_BLOCK_WORDS;
  }

  /**
   * Cancels the work of uTLBs `sources` (of `nsources`): their invocations not done yet are
   * marked done, so no later round runs them (UVM's cancel of a uTLB's faulting accesses,
   * uvm_gpu_replayable_faults.c cancel_faults_precise); the others run on. Queued like a
   * round's writes: the next round sees it. Returns how many invocations it cancelled.
   */
  async cancelSources(sources: ReadonlySet<number>, nsources: number): Promise<number> {
    if (this.dead) throw err('EINVAL', 'cancelSources: command destroyed');
    const bits = await this.readDone();
    const block = this.sourceBlockWords;
    let cancelled = 0;
    for (let w = 0; w < bits.length; w++) {
      if (!sources.has(Math.floor((w * 32) / block) % nsources)) continue;
      // Bits past the last invocation are never work (a kernel of its own marks them done).
      const valid = Math.min(32, this.words - w * 32);
      const mask = valid === 32 ? 0xffffffff : (2 ** valid - 1);
      const open = ~bits[w] & mask;
      if (open === 0) continue;
      cancelled += popcount(open);
      bits[w] = (bits[w] | mask) >>> 0;
    }
    if (cancelled > 0) {
      ensureAlive(this.engine.device, 'MirrorCommand.cancelSources');
      this.#written = true;
      this.engine.device.queue.writeBuffer(this.doneBits, (this.parity ? this.doneWords : 0) * 4, new Uint32Array(bits));
      this.doneCount += cancelled;
    }
    return cancelled;
  }

  /**
   * Makes every invocation not-done again (run the same command once more). Queued: rounds
   * submitted after it see the cleared state. Not while one of its rounds is in flight.
   */
  reset(): void {
    if (this.dead) throw err('EINVAL', 'reset: command destroyed');
    ensureAlive(this.engine.device, 'MirrorCommand.reset');
    // Nothing to clear while only fresh rounds ran since creation or the last reset (state[]
    // and the bitmaps still zero, the parity 0).
    if (this.#written) {
      const enc = this.engine.device.createCommandEncoder({ label: 'mirror command reset' });
      enc.clearBuffer(this.state);
      enc.clearBuffer(this.doneBits);
      this.engine.device.queue.submit([enc.finish()]);
      this.engine.device.queue.writeBuffer(this.params, parityOffset(), new Uint32Array([0]));
      this.#written = false;
    }
    this.parity = 0;
    this.revocationsSeen = -1; // the miss lists were cleared with state[]
    this.doneCount = 0;
    this.#doneOnHost = false;
    this.accessCounts?.counts.fill(0);
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.engine.forget(this);
    const set: CommandBuffers = {
      npages: this.npages, params: this.params, io: this.io, state: this.state, doneBits: this.doneBits,
      bindGroup: this.bindGroup, bindGen: this.bindGen, owner: new WeakRef(this.engine),
    };
    const spares = this.scratch ? this.engine.spares() : null;
    if (spares !== null) spares.put(set);
    else releaseSet(this.engine.device, set);
  }
}

function popcount(v: number): number {
  let n = 0;
  for (let x = v >>> 0; x !== 0; x &= x - 1) n++;
  return n;
}
