/**
 * The lab's Web Worker: the machine, the driver and the GPU work run here, off the page's
 * thread (WebGPU is available in dedicated workers). Exposed with comlink; the page only
 * draws. One run at a time.
 */
import * as Comlink from 'comlink';
import { requestGpuDevice } from '../device/gpu.js';
import { runSmokeKernel, smokeReference } from '../device/smoke.js';
import { defaultGpu } from '../driver/dmirror-device.js';
import type { RunConfig, RunResult } from '../experiment/types.js';
import { RunController } from './controller.js';
import { runLab, type LabSink } from './session.js';
import { checkSettings, fromRunConfig, isPolicyModuleName } from './config.js';
import { importPolicySource, type PolicySource } from './policy-module.js';
import type { MigrationPolicy } from '../policy/types.js';
import type { TraceRecord } from '../policy/trace.js';
import { tracePagesOf as tracePages } from '../trace/pages.js';

export interface AdapterInfo {
  name: string;
  software: boolean;
  fallback: boolean;
  backend: string;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupsPerDimension: number;
  /** The smoke kernel's verdict on this GPU. */
  smoke: { ok: boolean; elements: number; detail: string };
}

/** The largest trace the lab replays: 16 MiB, the lab's largest buffer. */
export const MAX_TRACE_PAGES = 4096;

export type LabCommand = 'pause' | 'resume' | 'step' | 'stop';

let controller: RunController | null = null;

async function smoke(): Promise<AdapterInfo['smoke']> {
  const ctx = await requestGpuDevice({ label: 'smoke' });
  try {
    const n = 10_000;
    const input = new Uint32Array(n).map((_, i) => (i * 2654435761) >>> 0);
    const got = await runSmokeKernel(ctx.device, input, 0xc0ffee);
    const want = smokeReference(input, 0xc0ffee);
    const bad = got.findIndex((v, i) => v !== want[i]);
    return { ok: bad < 0, elements: n, detail: bad < 0 ? `pass (${n} elements)` : `FAIL at element ${bad}` };
  } finally {
    ctx.device.destroy();
  }
}

export const labWorker = {
  async probe(): Promise<AdapterInfo> {
    const s = await smoke();
    const g = await defaultGpu();
    return {
      name: g.adapterName, software: g.isSoftware, fallback: g.isFallback, backend: g.backend,
      maxStorageBufferBindingSize: g.limits.maxStorageBufferBindingSize, maxBufferSize: g.limits.maxBufferSize,
      maxComputeInvocationsPerWorkgroup: g.limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: g.limits.maxComputeWorkgroupsPerDimension, smoke: s,
    };
  },

  /**
   * Runs one config; events go to `sink` (a Comlink.proxy) while it runs. first = 'step':
   * the run holds after its first batch (Step from idle). A config whose policy names a
   * user's module comes with `source`, the file's text (imported here from a Blob URL).
   */
  async run(config: RunConfig, sink: LabSink, first: 'run' | 'step' = 'run', source?: PolicySource, trace?: TraceRecord[]): Promise<RunResult> {
    if (controller !== null) throw new Error('EBUSY: a run is already going in this worker');
    if (config.workload.startsWith('trace:') !== (trace !== undefined)) throw new Error('EINVAL: a trace workload comes with its records, and only it');
    if (trace !== undefined && tracePages(trace) > MAX_TRACE_PAGES) throw new Error(`EINVAL: the trace spans ${tracePages(trace)} pages; the lab runs at most ${MAX_TRACE_PAGES} (replay it with npm run experiment)`);
    // The page checks too; the worker never trusts what crosses the boundary. A trace's
    // size is its span (checked above); the rest of its settings are checked as any run's.
    const checked = checkSettings(fromRunConfig(trace !== undefined ? { ...config, workload: 'stream', sizeMiB: 1 } : config));
    if (checked.settings === null) throw new Error(`EINVAL: ${checked.errors.map((e) => e.message).join('; ')}`);
    let policy: MigrationPolicy | undefined;
    if (config.policy !== undefined && isPolicyModuleName(config.policy)) {
      if (source === undefined || source.name !== config.policy) throw new Error(`EINVAL: policy module ${config.policy}: its file was not sent (choose it again)`);
      policy = await importPolicySource(source);
    }
    const ctl = new RunController(first === 'step');
    if (first === 'step') ctl.step();
    controller = ctl;
    try {
      return await runLab(config, sink, ctl, { ...(policy !== undefined ? { policy } : {}), ...(trace !== undefined ? { trace } : {}) });
    } finally {
      controller = null;
    }
  },

  command(c: LabCommand): boolean {
    const ctl = controller;
    if (ctl === null) return false;
    if (c === 'pause') ctl.pause();
    else if (c === 'resume') ctl.resume();
    else if (c === 'step') ctl.step();
    else ctl.stop();
    return true;
  },
};

export type LabWorker = typeof labWorker;

Comlink.expose(labWorker);
