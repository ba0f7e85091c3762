/**
 * createMachine() of the public API: the mm's Machine with N dmirror devices on it
 * (/dev/hmm_dmirror0..N-1), each with its own device-private memory. The GPU is acquired
 * when a device is first opened, so machines that never mirror need none.
 */
import type { GpuContext } from './device/gpu.js';
import { DmirrorDevice } from './driver/dmirror-device.js';
import { err } from './errors.js';
import { Machine, type MachineOptions } from './mm/machine.js';

export interface SystemOptions extends MachineOptions {
  /** Number of mirror devices (default 2, at most 8). */
  devices?: number;
  /** Device-private memory per device, in pages (default 8192 = 32 MiB). */
  devicePages?: number;
  /**
   * Each device's memory type (test_hmm's zones): 'private' (MEMORY_DEVICE_PRIVATE, the
   * default) or 'coherent' (MEMORY_DEVICE_COHERENT, test_hmm's spm_addr_dev* devices: the
   * CPU maps the device pages directly); or one type per device, as test_hmm lays out its
   * four devices (['private', 'private', 'coherent', 'coherent']: HMM_PRIVATE_DEVICE_ONE/TWO,
   * HMM_COHERENCE_DEVICE_ONE/TWO). An array's length must equal `devices`.
   */
  deviceMemory?: DeviceMemory | readonly DeviceMemory[];
  /** Each mirror's system-memory aperture in GPU memory, in pages (default 8192 = 32 MiB). */
  aperturePages?: number;
  /** Records of each mirror's replayable fault buffer (default 4096, as UVM's); a small one makes rounds overflow it. */
  faultRecords?: number;
  /**
   * false: test_hmm's order, where a device's own MIGRATE invalidation returns before
   * mmu_interval_set_seq. Default true: the sequence is set first, closing the window in
   * which a fault racing its own migration installs what the migration replaces (the
   * README's departures; `npm run bench:departures` measures the retries it costs).
   */
  ownMigrationSetsSeq?: boolean;
  /**
   * true: a device WRITE to one of its own read-only device-private pages (after fork)
   * migrates it home and breaks COW, so the write succeeds. Default false, as Linux:
   * hmm_range_fault reports such a page valid without HMM_PFN_WRITE and test_hmm's
   * dmirror_do_fault fails the fault with EFAULT.
   */
  ownReadOnlyWriteMigrates?: boolean;
  /**
   * Default true: a workgroup of an application kernel whose missed pages all still miss is
   * not re-run by the next round, its faults re-issued instead (MirrorEngineOptions.skipStalled).
   * false: every round re-runs every workgroup not done (the same outputs; for A/B).
   */
  skipStalled?: boolean;
  /** The GPU to use (navigator.gpu or a Dawn instance) instead of the default one. */
  gpu?: GPU;
  /** A GPU to use instead of the default one (e.g. a shared test device). */
  gpuContext?: Promise<GpuContext>;
}

/** A device's memory type: MEMORY_DEVICE_PRIVATE or MEMORY_DEVICE_COHERENT. */
export type DeviceMemory = 'private' | 'coherent';

export const DEFAULT_DEVICES = 2;
export const MAX_DEVICES = 8;

function count(name: string, v: number | undefined, def: number, min: number, max: number): number {
  const n = v ?? def;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw err('EINVAL', `${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return n;
}

/**
 * A machine with its mirror devices: the mm's Machine knows nothing of devices, the system
 * that puts them on it owns them (device removal runs before the processes exit).
 */
export class System extends Machine {
  readonly devices: readonly DmirrorDevice[];

  constructor(opts: SystemOptions, devices: (m: Machine) => DmirrorDevice[]) {
    super(opts);
    this.devices = devices(this);
  }

  override async destroy(): Promise<void> {
    for (const d of this.devices) await d.destroy();
    await super.destroy();
  }
}

export async function createMachine(opts: SystemOptions = {}): Promise<System> {
  const devices = count('devices', opts.devices, DEFAULT_DEVICES, 0, MAX_DEVICES);
  const devicePages = count('devicePages', opts.devicePages, 8192, 1, 1 << 20);
  const aperturePages = count('aperturePages', opts.aperturePages, 8192, 512, 1 << 20);
  const faultRecords = count('faultRecords', opts.faultRecords, 4096, 1, 1 << 20);
  const memory = deviceMemories(opts.deviceMemory, devices);
  const gpu = opts.gpuContext ?? (opts.gpu !== undefined ? gpuFrom(opts.gpu) : undefined);
  return new System(opts, (m) => Array.from({ length: devices }, (_, i) => new DmirrorDevice(m, i, { devicePages, memory: memory[i], aperturePages, faultRecords, gpu, ownMigrationSetsSeq: opts.ownMigrationSetsSeq ?? true, ownReadOnlyWriteMigrates: opts.ownReadOnlyWriteMigrates === true, skipStalled: opts.skipStalled !== false })));
}

/** Each device's memory type from SystemOptions.deviceMemory (EINVAL for anything else). */
function deviceMemories(v: SystemOptions['deviceMemory'], devices: number): DeviceMemory[] {
  const ok = (t: unknown): t is DeviceMemory => t === 'private' || t === 'coherent';
  if (v === undefined) return Array.from({ length: devices }, () => 'private');
  if (typeof v === 'string' || !Array.isArray(v)) {
    if (!ok(v)) throw err('EINVAL', `deviceMemory must be 'private' or 'coherent', got ${String(v)}`);
    return Array.from({ length: devices }, () => v);
  }
  if (v.length !== devices) throw err('EINVAL', `deviceMemory names ${v.length} types for ${devices} devices`);
  const bad = v.find((t) => !ok(t));
  if (bad !== undefined) throw err('EINVAL', `deviceMemory must be 'private' or 'coherent', got ${String(bad)}`);
  return [...v];
}

/** A device from a caller's GPU object (navigator.gpu or a Dawn instance). */
async function gpuFrom(gpu: GPU): Promise<GpuContext> {
  const adapter = await gpu.requestAdapter();
  if (adapter === null) throw err('ENODEV', 'the given GPU has no adapter');
  const limits: Record<string, number> = {};
  for (const k of ['maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupsPerDimension'] as const) {
    limits[k] = adapter.limits[k];
  }
  const device = await adapter.requestDevice({ requiredLimits: limits, requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [] });
  const info = adapter.info;
  return {
    device, adapter, gpu, adapterName: `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim(),
    isFallback: (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false, isSoftware: false,
    backend: 'caller', timestamps: device.features.has('timestamp-query'), limits: device.limits,
  };
}
