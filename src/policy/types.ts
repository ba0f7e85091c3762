/**
 * The migration-policy interface: what a policy sees of each serviced fault group, and what it
 * may decide. A policy is a plain object (or a module exporting one); the driver (and the pure
 * simulator in sim.ts) calls it once per serviced group, never once per fault.
 *
 * Pages are indices into the managed range (page = (addr - base) / PAGE_SIZE), so a policy
 * knows nothing of the mm. Lists of pages travel as typed arrays with an explicit count: a
 * group's arrays are the caller's scratch buffers, valid only during the call.
 *
 * Hook points and their NVIDIA UVM counterparts (gpu_ext's struct_ops, eunomia-bpf/gpu_ext):
 *   decide               uvm_perf_thrashing_get_hint + the residency choice of
 *                        service_fault_batch (per page: map remote, migrate, throttle, pin)
 *   cpuFault             uvm_vm_fault's thrashing hint for the CPU (HMM: migrate_to_ram)
 *   migrated             UVM_PERF_EVENT_MIGRATION (thrashing_event_cb)
 *   accessCounters       uvm_gpu_access_counters.c notification servicing
 *   prefetch.beforeCompute   uvm_prefetch_before_compute  (DEFAULT / BYPASS / ENTER_LOOP)
 *   prefetch.onTreeIter      uvm_prefetch_on_tree_iter    (one call per ancestor node)
 *   eviction.chunkActivate   uvm_pmm_chunk_activate (a root chunk joins the used list)
 *   eviction.chunkUsed       uvm_pmm_chunk_used     (a chunk was touched)
 *   eviction.evictionPrepare uvm_pmm_eviction_prepare (reorder before a victim is picked)
 *   eviction.pickVictim      pick_root_chunk_to_evict (default: the list head)
 */

/** The CPU as a requester (devices are 0, 1, ...). */
export const CPU = -1;

/** Access kinds, in the order of intrusiveness the fault buffer keeps when it dedups. */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_ATOMIC = 2;
export type AccessKind = typeof ACCESS_READ | typeof ACCESS_WRITE | typeof ACCESS_ATOMIC;

/** Per-page decisions (`Decisions.action`). */
export const DECIDE_REMOTE = 0; // leave it in system memory, map it through the aperture
export const DECIDE_MIGRATE = 1; // move it into this device's memory, map it locally
export const DECIDE_THROTTLE = 2; // do not service now: the requester refaults at `until`
export const DECIDE_PIN = 3; // pin it in system memory and map it remotely until `until`

/** Why a page moved (UVM's uvm_make_resident_cause_t, as far as HMM has them). */
export type MigrationCause = 'fault' | 'prefetch' | 'accessCounter' | 'eviction' | 'cpuFault' | 'explicit';

/** Where a page is: CPU (system memory) or a device index. */
export type Location = number;

/** One serviced device fault group (deduplicated: one entry a page, most intrusive access). */
export interface FaultGroup {
  readonly device: number;
  /** Virtual clock, ns. */
  readonly now: number;
  readonly count: number;
  readonly pages: Float64Array;
  readonly access: Uint8Array;
  /** Raw faults the group folded (duplicates included). */
  readonly faults: number;
}

/** A CPU fault on device-resident pages (do_swap_page -> migrate_to_ram), one batch. */
export interface CpuFaultBatch {
  readonly now: number;
  readonly count: number;
  readonly pages: Float64Array;
  readonly access: Uint8Array;
}

/** Pages that moved (one call per move batch). */
export interface MigrationBatch {
  readonly now: number;
  /** Destination: CPU or a device. */
  readonly dst: Location;
  readonly cause: MigrationCause;
  readonly count: number;
  readonly pages: Float64Array;
}

/** Remote accesses counted since the last round (what hardware access counters saw). */
export interface AccessCounterBatch {
  readonly device: number;
  readonly now: number;
  readonly count: number;
  readonly pages: Float64Array;
  /** Remote accesses of pages[i] in this round. */
  readonly counts: Uint32Array;
}

/**
 * The policy's output for a group or CPU batch: action[i] for the i-th page, and until[i]
 * (virtual ns) for THROTTLE (when to refault), PIN (when to unpin) and REMOTE (when the remote
 * mapping lapses so the page faults again; 0 = never). Prefilled with MIGRATE / 0.
 */
export interface Decisions {
  readonly action: Uint8Array;
  readonly until: Float64Array;
}

/** What a policy may read of residency and per-page history (read-only; all times in ns). */
export interface ResidencyView {
  readonly pageCount: number;
  readonly devices: number;
  /** Pages in one eviction chunk / prefetch block (512 = 2 MiB: UVM's va_block, root chunk). */
  readonly chunkPages: number;
  /** CPU for system memory, else the device holding it. */
  location(page: number): Location;
  /** Whether `device` maps this system-memory page remotely. */
  mappedRemote(device: number, page: number): boolean;
  pinned(page: number): boolean;
  /** Time the page last moved to a device / came home; -1 if never. */
  lastToDevice(page: number): number;
  lastToHost(page: number): number;
  /** Completed device -> host trips of this page (IPDPS'20's "round trips"). */
  roundTrips(page: number): number;
  /** Remote accesses counted for this page over the run. */
  remoteAccesses(page: number): number;
  /** Device pages free on `device`, and its capacity. */
  freePages(device: number): number;
  capacityPages(device: number): number;
}

/** A prefetch region [first, outer) in page indices within a block. */
export interface Region {
  first: number;
  outer: number;
}

/** What uvm_prefetch_before_compute may answer. */
export const PREFETCH_DEFAULT = 0; // run the kernel's tree walk
export const PREFETCH_BYPASS = 1; // use `result` as the region, skip the walk
export const PREFETCH_ENTER_LOOP = 2; // walk the tree, ask onTreeIter at each node
export type PrefetchAction = typeof PREFETCH_DEFAULT | typeof PREFETCH_BYPASS | typeof PREFETCH_ENTER_LOOP;

/** The state of one block's bitmap tree when a faulted page asks for its prefetch region. */
export interface PrefetchContext {
  readonly device: number;
  readonly now: number;
  /** Block index (page / chunkPages) and the faulted page's index within it. */
  readonly block: number;
  readonly pageIndex: number;
  /** Leaves: 1 = resident on the device or faulted in this group (after big-page growth). */
  readonly leaves: Uint8Array;
  /** The largest region a prefetch may cover (the block, clamped to the managed range). */
  readonly maxRegion: Readonly<Region>;
}

/** One ancestor node the tree walk visits (uvm_va_block_bitmap_tree_traverse_counters). */
export interface TreeNode {
  readonly first: number;
  readonly outer: number;
  /** Set leaves under the node. */
  readonly counter: number;
}

/**
 * Prefetch hooks. An empty object means NVIDIA's tree prefetcher as is (threshold 51 %,
 * 64 KiB big-page growth); a policy without `prefetch` prefetches nothing.
 */
export interface PrefetchHooks {
  /** Percent of a subtree's leaves that must be set to prefetch it (uvm_perf_prefetch_threshold). */
  readonly threshold?: number;
  /** Pages a fault grows to before the walk (UVM: 64 KiB big pages = 16); 1 turns it off. */
  readonly bigPagePages?: number;
  /**
   * Off for the rest of the run once the device is oversubscribed (its first eviction): UVM_Smart's
   * `-hwprefetch_oversub 0` (gpu-sim.cc, update_hardware_prefetcher_oversubscribed), the setting
   * of its logged random-4K and SL-64K runs; its LRU-2MB runs keep TBN (`-hwprefetch_oversub 1`).
   */
  readonly offOnceOversubscribed?: boolean;
  beforeCompute?(ctx: PrefetchContext, result: Region): PrefetchAction;
  /** true: take this node as the prefetch region (the walk keeps the largest taken). */
  onTreeIter?(ctx: PrefetchContext, node: TreeNode): boolean;
}

/** The list of a device's allocated chunks, in eviction order (head = next victim by default). */
export interface ChunkList {
  readonly length: number;
  head(): number; // -1 when empty
  tail(): number;
  next(chunk: number): number; // -1 at the end
  prev(chunk: number): number;
  has(chunk: number): boolean;
  moveHead(chunk: number): void;
  moveTail(chunk: number): void;
}

/** Eviction hooks (gpu_ext's uvm_pmm_* struct_ops). Without them: LRU of 2 MiB chunks. */
export interface EvictionHooks {
  readonly name: string;
  /** A chunk got its first device page (joins `list`). Default: move to tail. */
  chunkActivate?(device: number, chunk: number, now: number, list: ChunkList): void;
  /** A chunk's pages were touched or migrated into. Default (LRU): move to tail. */
  chunkUsed?(device: number, chunk: number, now: number, list: ChunkList): void;
  /** A chunk left the device (evicted or emptied). */
  chunkFreed?(device: number, chunk: number): void;
  evictionPrepare?(device: number, now: number, list: ChunkList): void;
  /**
   * Default: list.head(). Must return a chunk in `list` that is not in `busy`. `full(c)`: is
   * every page of chunk c on this device (UVM_Smart's is_block_evictable over a 2 MiB entry)?
   */
  pickVictim?(device: number, now: number, list: ChunkList, busy: ReadonlySet<number>, full: (chunk: number) => boolean): number;
  /**
   * Pages one eviction frees (aligned within the victim chunk): UVM_Smart's random-4K = 1,
   * SL-64K = 16; default: the whole chunk (UVM's 2 MiB root chunk, UVM_Smart's LRU-2M).
   */
  readonly granularityPages?: number;
  /** With granularityPages: the page whose aligned block goes, from the chunk's resident pages (default the first). */
  pickInChunk?(device: number, chunk: number, resident: readonly number[], now: number): number;
  /** The order's own counters (in the run's policy stats). */
  stats?(): Record<string, number>;
}

/** A migration policy: `decide` is the only required hook. */
export interface MigrationPolicy {
  readonly name: string;
  /** Once per serviced device fault group: fill `out` for each page of `group`. */
  decide(group: FaultGroup, view: ResidencyView, out: Decisions): void;
  /**
   * The CPU faulted on device pages. MIGRATE (default) brings them home now; THROTTLE makes the
   * CPU wait until `until` and fault again; PIN brings them home pinned, mapped remotely by the
   * device until `until`. REMOTE is not possible (device-private memory is not CPU-addressable)
   * and is taken as MIGRATE.
   */
  cpuFault?(batch: CpuFaultBatch, view: ResidencyView, out: Decisions): void;
  /** Pages moved (any cause, evictions included). */
  migrated?(batch: MigrationBatch, view: ResidencyView): void;
  /** Access counters read after a round: push pages to migrate to the device onto `out`. */
  accessCounters?(batch: AccessCounterBatch, view: ResidencyView, out: PageSink): void;
  /**
   * The counters' granularity on the real path, in pages (512 = NVIDIA's 2 MiB, 16 =
   * UVM_Smart's 64 KiB; default 1, a counter a page): the GPU counts remote accesses per region
   * of this many pages of the managed range, and the batch then holds each counted region's
   * first page with the region's count.
   */
  readonly accessCounterRegionPages?: number;
  /**
   * Bytes one counted access covers on the real path (the counting unit is a memory request,
   * not a 4-byte word): the GPU counts words and each region's count reaches the policy as
   * ceil(words * 4 / this). Default 128, one GPU L2 line (the cost model's remoteAccessBytes);
   * 4 counts words.
   */
  readonly accessCounterRequestBytes?: number;
  readonly prefetch?: PrefetchHooks;
  readonly eviction?: EvictionHooks;
  /** Forget all state (a new run). */
  reset?(): void;
  /** The policy's own counters, merged into the run's report. */
  stats?(): Readonly<Record<string, number>>;
}

/** Where a hook pushes pages. */
export interface PageSink {
  push(page: number): void;
}

/** A factory a policy module may export instead of a policy. */
export type PolicyFactory = (options?: Readonly<Record<string, unknown>>) => MigrationPolicy;
