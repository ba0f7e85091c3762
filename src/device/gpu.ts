/**
 * The one place that obtains a GPU. Everything else (driver, tests, demo, benchmarks) calls
 * `requestGpuDevice()` and gets the same treatment: the adapter is chosen the same way, the
 * device asks for the biggest compute limits the adapter has, and loss / uncaptured errors
 * are recorded so later calls fail with a message that says what happened.
 *
 * Browser: `navigator.gpu`. Node: the `webgpu` package (Dawn), tried in this order unless
 * `prefer: 'software'`: the default backends for a hardware adapter, then OpenGL ES on
 * Mesa's surfaceless EGL (llvmpipe, compatibility mode), then Vulkan on Chromium's
 * SwiftShader ICD. `adapter` (or the environment variable MIRRORLAB_ADAPTER, the one place a
 * run picks its Node adapter: the benchmarks' --adapter sets it) takes one backend only:
 * 'opengles' (llvmpipe: no timestamp queries) or 'vulkan' (SwiftShader: 'timestamp-query').
 *
 * Every device gets 'timestamp-query' when its adapter has it (GpuTimer, gpu-timer.ts, uses
 * it; nothing else does), and every Dawn instance is made with the `timestamp_quantization`
 * toggle disabled, so timestamps are not rounded to Dawn's 65.5 µs.
 */
import type { Scheduler } from '../sched/scheduler.js';
import { err } from '../errors.js';

export interface RequestGpuOptions {
  /** Limits the caller needs; each must be within what the adapter supports. */
  requiredLimits?: Record<string, number>;
  requiredFeatures?: GPUFeatureName[];
  /** 'hardware' (default): a real GPU if there is one. 'software': skip straight to CPU rasterisers. */
  prefer?: 'hardware' | 'software';
  /** One Node backend only (default: MIRRORLAB_ADAPTER, else 'auto': the order above). Ignored in a browser. */
  adapter?: AdapterChoice;
  label?: string;
}

/** Node adapters: 'auto' (hardware, then OpenGL ES, then Vulkan), or one backend. */
export const ADAPTER_CHOICES = ['auto', 'opengles', 'vulkan'] as const;
export type AdapterChoice = (typeof ADAPTER_CHOICES)[number];
/** The environment variable that picks the Node adapter for a whole run (defaultGpu included). */
export const ADAPTER_ENV = 'MIRRORLAB_ADAPTER';

/** Is `s` one of ADAPTER_CHOICES (the --adapter values)? */
export function isAdapterChoice(s: string): s is AdapterChoice {
  return (ADAPTER_CHOICES as readonly string[]).includes(s);
}

/** The adapter choice a run asked for (opts, else MIRRORLAB_ADAPTER, else 'auto'); EINVAL when unknown. */
export function adapterChoice(opts: RequestGpuOptions = {}): AdapterChoice {
  const raw: string = opts.adapter ?? (isNode() ? process.env[ADAPTER_ENV] : undefined) ?? 'auto';
  if (!isAdapterChoice(raw)) throw err('EINVAL', `adapter '${raw}' (${ADAPTER_ENV} / --adapter): one of ${ADAPTER_CHOICES.join(', ')}`);
  return raw;
}

export interface GpuContext {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** vendor / architecture / device / description, plus the backend, e.g. "llvmpipe-… [dawn opengles, compat]". */
  adapterName: string;
  /** What the adapter says (GPUAdapterInfo.isFallbackAdapter). */
  isFallback: boolean;
  /** A CPU implementation (llvmpipe, SwiftShader, lavapipe, WARP), whatever isFallback says. */
  isSoftware: boolean;
  /** 'browser <name/version>' | 'dawn-default' | 'dawn-opengles' | 'dawn-vulkan' (SwiftShader ICD). */
  backend: string;
  /** The device has 'timestamp-query' (GpuTimer can time its compute passes). */
  timestamps: boolean;
  /** The device's limits (what was granted, not what the adapter could do). */
  limits: GPUSupportedLimits;
  /** The GPU instance; kept here so the native instance lives as long as the device. */
  gpu: GPU;
}

export class GpuError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GpuError';
  }
}

// ---------------------------------------------------------------------------------------
// Per-device health: loss and uncaptured errors. A WeakMap so helpers can take a bare
// GPUDevice (the driver passes devices around, not contexts).

interface DeviceHealth {
  lost: GPUDeviceLostInfo | null;
  uncaptured: string[];
}
const health = new WeakMap<GPUDevice, DeviceHealth>();
const MAX_RECORDED_ERRORS = 64;

function watchDevice(device: GPUDevice, name: string): void {
  const h: DeviceHealth = { lost: null, uncaptured: [] };
  health.set(device, h);
  void device.lost.then((info) => {
    h.lost = info;
    // 'destroyed' is us calling destroy(); anything else is worth shouting about.
    if (info.reason !== 'destroyed') console.error(`[gpu] device lost on ${name}: ${info.message}`);
  });
  device.addEventListener('uncapturederror', (ev) => {
    const msg = `${ev.error.constructor.name}: ${ev.error.message}`;
    if (h.uncaptured.length < MAX_RECORDED_ERRORS) h.uncaptured.push(msg);
    if (h.uncaptured.length <= 8) console.error(`[gpu] uncaptured error on ${name}: ${msg}`);
  });
}

/** Throws a GpuError if the device has been lost (including destroyed). */
export function assertDeviceAlive(device: GPUDevice): void {
  const lost = health.get(device)?.lost;
  if (lost) {
    throw new GpuError(`GPU device is lost (reason: ${lost.reason ?? 'unknown'}): ${lost.message}`);
  }
}

/** Returns and clears the uncaptured errors recorded on the device since the last call. */
export function takeUncapturedErrors(device: GPUDevice): string[] {
  const h = health.get(device);
  if (!h) return [];
  const out = h.uncaptured;
  h.uncaptured = [];
  return out;
}

// ---------------------------------------------------------------------------------------
// Adapter selection.

interface Candidate {
  adapter: GPUAdapter;
  gpu: GPU;
  backend: string;
  compat: boolean;
}

const SOFTWARE_RE = /llvmpipe|lavapipe|softpipe|swiftshader|warp|basic render|software/i;

function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  return info.isFallbackAdapter || SOFTWARE_RE.test(
    [info.vendor, info.architecture, info.device, info.description].join(' '));
}

function describeAdapter(info: GPUAdapterInfo, backend: string, compat: boolean): string {
  const parts = [info.vendor, info.architecture, info.device, info.description]
    .map((s) => s.trim()).filter((s) => s.length > 0);
  const tags = [backend.replace(/^dawn-/, 'dawn ')];
  if (compat) tags.push('compat');
  if (info.isFallbackAdapter) tags.push('fallback');
  return `${parts.join(' / ') || 'unnamed adapter'} [${tags.join(', ')}]`;
}

function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

async function browserCandidate(prefer: 'hardware' | 'software', tried: string[]): Promise<Candidate> {
  const gpu = navigator.gpu;
  const attempts: GPURequestAdapterOptions[] = prefer === 'software'
    ? [{ forceFallbackAdapter: true }, {}]
    : [{ powerPreference: 'high-performance' }, {}, { featureLevel: 'compatibility' }, { forceFallbackAdapter: true }];
  for (const opts of attempts) {
    const adapter = await gpu.requestAdapter(opts);
    tried.push(`navigator.gpu.requestAdapter(${JSON.stringify(opts)}) -> ${adapter ? 'adapter' : 'null'}`);
    if (adapter) {
      const browser = /(?:Chrome|Chromium|Firefox|Version)\/[\d.]+/.exec(navigator.userAgent)?.[0] ?? 'browser';
      return { adapter, gpu, backend: `browser ${browser}`, compat: opts.featureLevel === 'compatibility' };
    }
  }
  throw new GpuError(`no WebGPU adapter in this browser; tried:\n  ${tried.join('\n  ')}`);
}

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

let dawn: DawnModule | undefined;
const dawnInstances = new Map<string, GPU>();

async function loadDawn(): Promise<DawnModule> {
  if (!dawn) {
    // A variable specifier so Vite never tries to bundle the native addon for the browser.
    const spec = 'webgpu';
    dawn = (await import(/* @vite-ignore */ spec)) as DawnModule;
    // GPUBufferUsage, GPUMapMode, … as in a browser.
    Object.assign(globalThis, dawn.globals);
  }
  return dawn;
}

/** One Dawn instance per flag set, kept for the process: creating one loads drivers. */
function dawnInstance(mod: DawnModule, backendFlags: string[]): GPU {
  // Timestamps unrounded (Dawn's timestamp_quantization is a browser's timing-attack guard).
  const flags = [...backendFlags, 'disable-dawn-features=timestamp_quantization'];
  const key = flags.join(' ');
  let gpu = dawnInstances.get(key);
  if (!gpu) {
    gpu = mod.create(flags);
    dawnInstances.set(key, gpu);
  }
  return gpu;
}

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * A hardware driver needs a device node; without one the default backends can only find
 * software adapters (and print Vulkan loader warnings on every start).
 */
function hasGpuDeviceNode(fs: typeof import('node:fs')): boolean {
  if (process.platform !== 'linux') return true;
  if (fs.existsSync('/dev/nvidiactl') || fs.existsSync('/dev/dxg')) return true;
  try {
    return fs.readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  } catch {
    return false;
  }
}

async function nodeCandidate(prefer: 'hardware' | 'software', choice: AdapterChoice, tried: string[]): Promise<Candidate> {
  const mod = await loadDawn();
  const env = process.env;

  const fs = await import('node:fs');
  if (choice !== 'auto') {
    tried.push(`${ADAPTER_ENV} / adapter = ${choice}: that backend only`);
  } else if (prefer === 'hardware' && !hasGpuDeviceNode(fs)) {
    tried.push('dawn default backends: skipped (no /dev/dri/renderD*, /dev/nvidia*, /dev/dxg)');
  } else if (prefer === 'hardware') {
    const gpu = dawnInstance(mod, []);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    const what = adapter ? describeAdapter(adapter.info, 'dawn-default', false) : 'null';
    tried.push(`dawn default backends, high-performance -> ${what}`);
    if (adapter && !isSoftwareAdapter(adapter.info)) {
      return { adapter, gpu, backend: 'dawn-default', compat: false };
    }
  }

  // Mesa's EGL reads EGL_PLATFORM when the display is opened, so set it before create().
  env.EGL_PLATFORM ??= 'surfaceless';
  if (choice !== 'vulkan') {
    const gpu = dawnInstance(mod, ['backend=opengles']);
    const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' });
    tried.push(`dawn backend=opengles (EGL_PLATFORM=${env.EGL_PLATFORM}), compatibility -> ${
      adapter ? describeAdapter(adapter.info, 'dawn-opengles', true) : 'null (need libEGL.so + Mesa: scripts/setup.sh)'}`);
    if (adapter) return { adapter, gpu, backend: 'dawn-opengles', compat: true };
  }

  if (choice !== 'opengles') {
    // The Vulkan loader reads VK_ICD_FILENAMES per instance; only point it at SwiftShader
    // here, after the hardware attempt had the chance to see real ICDs.
    if (env.VK_ICD_FILENAMES === undefined && fs.existsSync(SWIFTSHADER_ICD)) env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    const gpu = dawnInstance(mod, ['backend=vulkan']);
    const adapter = await gpu.requestAdapter({});
    tried.push(`dawn backend=vulkan (VK_ICD_FILENAMES=${env.VK_ICD_FILENAMES ?? ''}) -> ${
      adapter ? describeAdapter(adapter.info, 'dawn-vulkan', false) : 'null (needs libvulkan.so.1 + chromium)'}`);
    if (adapter) return { adapter, gpu, backend: 'dawn-vulkan', compat: false };
  }

  const { isMainThread } = await import('node:worker_threads');
  // A worker thread's process.env is a private copy: native code never sees what we set.
  const hint = isMainThread ? '' : '\n(in a worker thread: export EGL_PLATFORM=surfaceless before starting node, '
    + 'and prefer child processes: dawn.node can crash when worker threads exit)';
  throw new GpuError(`no WebGPU adapter from Dawn; tried:\n  ${tried.join('\n  ')}${hint}`);
}

/** Compute limits we always want as large as the adapter allows. */
const MAXED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

function adapterLimit(adapter: GPUAdapter, name: string): number | undefined {
  const v: unknown = Reflect.get(adapter.limits, name);
  return typeof v === 'number' ? v : undefined;
}

export async function requestGpuDevice(opts: RequestGpuOptions = {}): Promise<GpuContext> {
  const prefer = opts.prefer ?? 'hardware';
  const tried: string[] = [];
  const choice = adapterChoice(opts); // checked everywhere, used in Node
  const useBrowser = typeof navigator !== 'undefined' && navigator.gpu !== undefined;
  if (!useBrowser && !isNode()) throw new GpuError('WebGPU unavailable: no navigator.gpu and not Node');
  const { adapter, gpu, backend, compat } = useBrowser
    ? await browserCandidate(prefer, tried)
    : await nodeCandidate(prefer, choice, tried);

  const requiredLimits: Record<string, number> = {};
  for (const name of MAXED_LIMITS) {
    const v = adapterLimit(adapter, name);
    if (v !== undefined) requiredLimits[name] = v;
  }
  for (const [name, want] of Object.entries(opts.requiredLimits ?? {})) {
    const have = adapterLimit(adapter, name);
    if (have === undefined) throw new GpuError(`unknown limit ${name}`);
    // Limits named max* are ceilings, min* are alignments (smaller is stricter).
    const ok = name.startsWith('min') ? want >= have : want <= have;
    if (!ok) throw new GpuError(`adapter cannot give ${name}=${want} (it supports ${have})`);
    requiredLimits[name] = want;
  }
  for (const f of opts.requiredFeatures ?? []) {
    if (!adapter.features.has(f)) throw new GpuError(`adapter lacks feature ${f}`);
  }
  const features = new Set<GPUFeatureName>(opts.requiredFeatures ?? []);
  if (adapter.features.has('timestamp-query')) features.add('timestamp-query');

  const adapterName = describeAdapter(adapter.info, backend, compat);
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      label: opts.label ?? 'mirrorlab',
      requiredLimits,
      requiredFeatures: [...features],
    });
  } catch (e) {
    throw new GpuError(`requestDevice failed on ${adapterName}: ${String(e)}`, { cause: e });
  }
  watchDevice(device, adapterName);
  return {
    device, adapter, adapterName, backend, gpu,
    isFallback: adapter.info.isFallbackAdapter,
    isSoftware: isSoftwareAdapter(adapter.info),
    timestamps: device.features.has('timestamp-query'),
    limits: device.limits,
  };
}

// ---------------------------------------------------------------------------------------
// Helpers in the style of webgpu-samples / the CTS.

const SCOPES: GPUErrorFilter[] = ['validation', 'out-of-memory', 'internal'];

/**
 * Runs fn inside validation + out-of-memory + internal error scopes and throws a GpuError
 * listing every GPU error they caught. The scope stack is per device, not per async call:
 * do not interleave two withErrorScopes on one device across awaits.
 */
export async function withErrorScopes<T>(device: GPUDevice, fn: () => T | Promise<T>, sched?: Scheduler): Promise<T> {
  assertDeviceAlive(device);
  for (const s of SCOPES) device.pushErrorScope(s);
  let result: T | undefined;
  let thrown: { e: unknown } | undefined;
  try {
    result = await fn();
  } catch (e) {
    thrown = { e };
  }
  // Always pop, even when fn threw, so the device's scope stack stays balanced. All three
  // pops are issued at once and awaited together (one wait on the device, not three in a row).
  const scopes = [...SCOPES].reverse();
  const pops = scopes.map((s) => {
    const pop = device.popErrorScope();
    return sched ? sched.wait(pop, `gpu: popErrorScope ${s}`) : pop;
  });
  const errors: string[] = [];
  const settled = await Promise.allSettled(pops);
  let popFailed: { e: unknown } | undefined;
  settled.forEach((r, k) => {
    if (r.status === 'rejected') popFailed ??= { e: r.reason };
    else if (r.value) errors.push(`${scopes[k]}: ${r.value.message}`);
  });
  if (popFailed) throw popFailed.e;
  if (errors.length > 0) {
    // The GPU error is usually the root cause of whatever fn threw after it.
    throw new GpuError(`GPU error(s):\n${errors.join('\n')}`, thrown ? { cause: thrown.e } : undefined);
  }
  if (thrown) throw thrown.e;
  return result as T;
}

/**
 * Reads `size` bytes at `offset` of a buffer made with COPY_SRC usage: copy into a
 * MAP_READ staging buffer, map it, copy out. Any byte range is fine; the copy itself is
 * widened to the 4-byte alignment copyBufferToBuffer needs.
 */
export async function readBuffer(
  device: GPUDevice, buffer: GPUBuffer, offset = 0, size = buffer.size - offset, sched?: Scheduler,
): Promise<ArrayBuffer> {
  assertDeviceAlive(device);
  if ((buffer.usage & GPUBufferUsage.COPY_SRC) === 0) {
    throw new GpuError(`readBuffer: buffer ${buffer.label || '(unlabelled)'} lacks COPY_SRC usage`);
  }
  if (offset < 0 || size < 0 || offset + size > buffer.size) {
    throw new GpuError(`readBuffer: range [${offset}, ${offset + size}) outside buffer of ${buffer.size} bytes`);
  }
  const start = Math.floor(offset / 4) * 4;
  const end = Math.ceil((offset + size) / 4) * 4;
  const staging = device.createBuffer({
    label: 'readBuffer staging',
    size: Math.max(end - start, 4),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    const enc = device.createCommandEncoder({ label: 'readBuffer' });
    if (end > start) enc.copyBufferToBuffer(buffer, start, staging, 0, end - start);
    device.queue.submit([enc.finish()]);
    try {
      const mapped = staging.mapAsync(GPUMapMode.READ);
      await (sched ? sched.wait(mapped, 'gpu: readBuffer mapAsync') : mapped);
    } catch (e) {
      assertDeviceAlive(device); // a lost device is the better explanation
      throw new GpuError(`readBuffer: mapAsync failed: ${String(e)}`, { cause: e });
    }
    // getMappedRange wants 8-aligned offsets: take it all and slice on the JS side.
    return staging.getMappedRange().slice(offset - start, offset - start + size);
  } finally {
    staging.destroy(); // also unmaps
  }
}
