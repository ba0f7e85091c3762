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
  /** Device-private memory per device, in pages (default 8192 = 32 MiB). */
  devicePages?: number;
  /** Each mirror's system-memory aperture in GPU memory, in pages (default 8192 = 32 MiB). */
  aperturePages?: number;
  /** A GPU to use instead of the default one (e.g. a shared test device). */
  gpuContext?: Promise<GpuContext>;
}

export const DEFAULT_DEVICES = 2;
export const MAX_DEVICES = 8;

function count(name: string, v: number | undefined, def: number, min: number, max: number): number {
  const n = v ?? def;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw err('EINVAL', `${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return n;
}

export async function createMachine(opts: SystemOptions = {}): Promise<Machine> {
  const devices = count('devices', opts.devices, DEFAULT_DEVICES, 0, MAX_DEVICES);
  const devicePages = count('devicePages', opts.devicePages, 8192, 1, 1 << 20);
  const aperturePages = count('aperturePages', opts.aperturePages, 8192, 512, 1 << 20);
  const m = new Machine(opts);
  const gpu = opts.gpuContext ?? (opts.gpu !== undefined ? gpuFrom(opts.gpu) : undefined);
  const devs: DmirrorDevice[] = [];
  for (let i = 0; i < devices; i++) {
    const d = new DmirrorDevice(m, i, { devicePages, aperturePages, gpu });
    devs.push(d);
    m.devices.push(d);
  }
  m.destroyHooks.push(async () => {
    for (const d of devs) await d.destroy();
  });
  return m;
}

/** A device from a caller's GPU object (navigator.gpu or a Dawn instance). */
async function gpuFrom(gpu: GPU): Promise<GpuContext> {
  const adapter = await gpu.requestAdapter();
  if (adapter === null) throw err('ENODEV', 'the given GPU has no adapter');
  const limits: Record<string, number> = {};
  for (const k of ['maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupsPerDimension'] as const) {
    limits[k] = adapter.limits[k];
  }
  const device = await adapter.requestDevice({ requiredLimits: limits });
  const info = adapter.info;
  return {
    device, adapter, gpu, adapterName: `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim(),
    isFallback: (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false, isSoftware: false,
    backend: 'caller', limits: device.limits,
  };
}
