/**
 * Running a workload over a mirrored buffer: initialise it through the CPU, run the kernel
 * to completion through a fault servicer, then verify — the GPU's own mismatch count, each
 * invocation's result word, and every word of the buffer as the CPU reads it back (which is
 * what proves the GPU's writes reached the CPU). Pingpong alternates GPU commands with CPU
 * phases in which several concurrent async "threads" check and rewrite the buffer.
 *
 * The rounds run through the driver (Dmirror.runKernel) and its fault servicer
 * (Dmirror.servicer: set it with setServicer before the run).
 */
import { words, WORDS_PER_PAGE } from '../device/abi.js';
import type { Dmirror } from '../driver/dmirror.js';
import { err } from '../errors.js';
import { PAGE_SIZE } from '../mm/constants.js';
import { workloadKernels } from './kernels.js';
import {
  commandIo, FLAG_NO_WRITE, gatherIndices, HDR_WORDS, initialWords, isWriteWord, oneShotEffect, phaseKey, resolveWorkload,
  resultOf, valueOf, writes, type WorkloadPlan, type WorkloadSpec,
} from './patterns.js';

export type { WorkloadSpec } from './patterns.js';

export interface VerifyCounts {
  checked: number;
  mismatches: number;
}

export interface WorkloadResult {
  rounds: number;
  faultRounds: number;
  /** Everything below, summed. */
  verify: VerifyCounts;
  /** Reads the kernel checked, and how many were wrong. */
  gpu: VerifyCounts;
  /** Invocations' result words (each proves the invocation ran once, on its word). */
  results: VerifyCounts;
  /** Words the CPU checked (pingpong: also in its phases), and how many were wrong. */
  cpu: VerifyCounts;
  /** A description of the first wrong word or result, for messages. */
  firstMismatch: string | null;
  /** GPU commands run (pingpong: one per GPU phase). */
  commands: number;
  /**
   * Wall time: the CPU's initialisation; the GPU commands (rounds, fault servicing, write-
   * back); pingpong's CPU phases; reading back and checking the kernels' counts and result
   * words; the CPU's final read-back.
   */
  ms: { init: number; gpu: number; cpu: number; results: number; verify: number };
}

export interface RunWorkloadOptions {
  /** Runs after the CPU initialised the buffer, before the first GPU command (tests corrupt a word here). */
  afterInit?: () => Promise<void>;
  /** Runs after the last GPU command, before the CPU's final read-back (the runner stops its storm here). */
  beforeVerify?: () => Promise<void>;
  /** Bytes per Process.read/write call when initialising and verifying (default 1 MiB). */
  chunkBytes?: number;
}

const now = (): number => performance.now();
const hex = (v: number): string => `0x${(v >>> 0).toString(16)}`;

class Tally {
  readonly gpu: VerifyCounts = { checked: 0, mismatches: 0 };
  readonly results: VerifyCounts = { checked: 0, mismatches: 0 };
  readonly cpu: VerifyCounts = { checked: 0, mismatches: 0 };
  first: string | null = null;
  note(what: string): void {
    this.first ??= what;
  }
}

/** Writes f over the whole buffer through the CPU, in chunks. */
async function initBuffer(mirror: Dmirror, plan: WorkloadPlan, chunkWords: number): Promise<void> {
  for (let w = 0; w < plan.nwords; w += chunkWords) {
    const n = Math.min(chunkWords, plan.nwords - w);
    const data = initialWords(plan, w, n);
    await mirror.proc.write(plan.startPage * PAGE_SIZE + w * 4, new Uint8Array(data.buffer));
  }
}

/** Reads the whole buffer back through the CPU and compares it with expected(w). */
async function verifyBuffer(mirror: Dmirror, plan: WorkloadPlan, chunkWords: number, expected: (w: number) => number, t: Tally): Promise<void> {
  for (let w0 = 0; w0 < plan.nwords; w0 += chunkWords) {
    const n = Math.min(chunkWords, plan.nwords - w0);
    const got = words(await mirror.proc.read(plan.startPage * PAGE_SIZE + w0 * 4, n * 4));
    for (let k = 0; k < n; k++) {
      const want = expected(w0 + k);
      if (got[k] !== want) {
        t.cpu.mismatches++;
        t.note(`CPU read of word ${w0 + k} (page ${Math.floor((w0 + k) / WORDS_PER_PAGE)}): ${hex(got[k])}, want ${hex(want)}${got[k] === valueOf(w0 + k, plan.key0) ? ' (f: the write was lost)' : ''}`);
      }
    }
    t.cpu.checked += n;
  }
}

/** One GPU command of the workload at `phase`, run to completion; counts its checks. */
async function gpuCommand(
  mirror: Dmirror, plan: WorkloadPlan, phase: number, flags: number,
  indices: Uint32Array | undefined, gpuChecks: number, t: Tally,
): Promise<{ rounds: number; faultRounds: number; runMs: number; checkMs: number }> {
  const kernels = await workloadKernels(mirror.engine);
  const io = commandIo(plan, phase, flags, indices);
  const cmd = mirror.engine.createCommand({
    op: writes(plan) && (flags & FLAG_NO_WRITE) === 0 ? 'write' : 'read',
    page: plan.startPage, npages: plan.npages, kernel: kernels[plan.name], ioWords: io.length, data: io,
  });
  try {
    const t0 = now();
    const out = await mirror.runKernel(cmd);
    const t1 = now();
    const bad = await cmd.readCounter();
    t.gpu.checked += gpuChecks;
    t.gpu.mismatches += bad;
    if (bad > 0) t.note(`the kernel found ${bad} wrong read(s) (phase ${phase})`);
    const res = (await cmd.readOutput()).subarray(io.length - plan.nwords);
    for (let i = 0; i < plan.nwords; i++) {
      const want = resultOf(plan, i, indices);
      if (res[i] !== want) {
        t.results.mismatches++;
        t.note(`result of invocation ${i}: ${hex(res[i])}, want ${hex(want)}`);
      }
    }
    t.results.checked += plan.nwords;
    return { ...out, runMs: t1 - t0, checkMs: now() - t1 };
  } finally {
    cmd.destroy();
  }
}

/**
 * One CPU phase of pingpong: `threads` concurrent loops, each over its slice of the working
 * set's pages: read the page, check it holds phase - 1 (write words) / f (read words),
 * store phase's values into the write words, write the page back.
 */
async function cpuPhase(mirror: Dmirror, plan: WorkloadPlan, phase: number, t: Tally): Promise<void> {
  const wsPages = plan.ws / WORDS_PER_PAGE;
  const keyPrev = phaseKey(plan.seed, phase - 1);
  const keyNext = phaseKey(plan.seed, phase);
  const sched = mirror.mm.core.sched;
  const thread = async (k: number): Promise<void> => {
    const from = Math.floor((k * wsPages) / plan.cpuThreads);
    const to = Math.floor(((k + 1) * wsPages) / plan.cpuThreads);
    for (let pg = from; pg < to; pg++) {
      const addr = (plan.startPage + pg) * PAGE_SIZE;
      const data = words(await mirror.proc.read(addr, PAGE_SIZE)).slice();
      let dirty = false;
      for (let j = 0; j < WORDS_PER_PAGE; j++) {
        const w = pg * WORDS_PER_PAGE + j;
        const ww = isWriteWord(w, plan.key0, plan.thr);
        const want = valueOf(w, ww ? keyPrev : plan.key0);
        if (data[j] !== want) {
          t.cpu.mismatches++;
          t.note(`CPU thread ${k}, phase ${phase}: word ${w} is ${hex(data[j])}, want ${hex(want)}`);
        }
        if (ww) {
          data[j] = valueOf(w, keyNext);
          dirty = true;
        }
      }
      t.cpu.checked += WORDS_PER_PAGE;
      if (dirty) await mirror.proc.write(addr, new Uint8Array(data.buffer));
      await sched.yield('pingpong cpu');
    }
  };
  await Promise.all(Array.from({ length: plan.cpuThreads }, (_, k) => thread(k)));
}

/**
 * Runs the workload over [spec.start, + spec.sizeBytes) of the mirror's process (mapped
 * read-write by the caller): init, run, verify. Throws HmmError when the run itself fails
 * (EBUSY from the servicer, EFAULT, ENODEV); wrong data is reported, not thrown.
 */
export async function runWorkload(
  mirror: Dmirror, spec: WorkloadSpec, opts: RunWorkloadOptions = {},
): Promise<WorkloadResult> {
  const plan = resolveWorkload(spec);
  const ioBytes = (HDR_WORDS + plan.nwords) * 4;
  const maxIo = mirror.engine.device.limits.maxStorageBufferBindingSize;
  if (ioBytes > maxIo) {
    throw err('EINVAL', `a ${spec.sizeBytes}-byte workload needs a ${ioBytes}-byte io buffer; this device binds ${maxIo} (buffers up to ${Math.floor((maxIo / 4 - HDR_WORDS) / WORDS_PER_PAGE) * PAGE_SIZE} bytes)`);
  }
  const chunkWords = Math.max(WORDS_PER_PAGE, Math.floor((opts.chunkBytes ?? 1 << 20) / PAGE_SIZE) * WORDS_PER_PAGE);
  const t = new Tally();
  const ms = { init: 0, gpu: 0, cpu: 0, results: 0, verify: 0 };
  let rounds = 0;
  let faultRounds = 0;
  let commands = 0;
  let t0 = now();
  await initBuffer(mirror, plan, chunkWords);
  await opts.afterInit?.();
  ms.init = now() - t0;
  const indices = plan.name === 'gather' ? gatherIndices(plan) : undefined;

  const gpu = async (phase: number, flags: number, checks: number): Promise<void> => {
    const r = await gpuCommand(mirror, plan, phase, flags, indices, checks, t);
    ms.gpu += r.runMs;
    ms.results += r.checkMs;
    rounds += r.rounds;
    faultRounds += r.faultRounds;
    commands++;
  };

  let expected: (w: number) => number;
  if (plan.name === 'pingpong') {
    for (let p = 1; p <= plan.phases; p++) {
      if (p % 2 === 1) {
        await gpu(p, 0, plan.ws);
      } else {
        const s = now();
        await cpuPhase(mirror, plan, p, t);
        ms.cpu += now() - s;
      }
    }
    // The CPU wrote last: the GPU checks that too (without writing).
    if (plan.phases % 2 === 0) await gpu(plan.phases, FLAG_NO_WRITE, plan.ws);
    const keyLast = phaseKey(plan.seed, plan.phases);
    expected = (w) => (w < plan.ws && isWriteWord(w, plan.key0, plan.thr) ? valueOf(w, keyLast) : valueOf(w, plan.key0));
  } else {
    const effect = oneShotEffect(plan, indices);
    await gpu(1, 0, effect.gpuChecks);
    const key1 = phaseKey(plan.seed, 1);
    expected = (w) => valueOf(w, effect.written[w] === 1 ? key1 : plan.key0);
  }
  await opts.beforeVerify?.();
  t0 = now();
  await verifyBuffer(mirror, plan, chunkWords, expected, t);
  ms.verify = now() - t0;
  const verify = {
    checked: t.gpu.checked + t.results.checked + t.cpu.checked,
    mismatches: t.gpu.mismatches + t.results.mismatches + t.cpu.mismatches,
  };
  return { rounds, faultRounds, verify, gpu: t.gpu, results: t.results, cpu: t.cpu, firstMismatch: t.first, commands, ms };
}
