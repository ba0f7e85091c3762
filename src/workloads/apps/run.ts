/**
 * Running an application workload over a mirrored buffer: the CPU writes the program's
 * initial buffer (inputs, poisoned outputs) through the process, the host code launches its
 * kernels one after the other over the same mirrored buffer — each launch a command run to
 * completion through the driver (Dmirror.runKernel: rounds, the fault ring, the servicer's
 * batching, coalescing and retry loop, the policy), so the faults of a launch depend on
 * where the previous launches left the pages — then the CPU reads the whole buffer back and
 * compares every element with the CPU reference: the same host code over the CPU kernels.
 */
import type { Dmirror } from '../../driver/dmirror.js';
import { err } from '../../errors.js';
import { PAGE_SIZE } from '../../mm/constants.js';
import type { RunWorkloadOptions, VerifyCounts, WorkloadResult } from '../run.js';
import type { AppDef } from './def.js';
import { appKernels } from './kernels.js';
import { WORDS_PER_PAGE } from '../../device/abi.js';
import { arrayWords, IO_ACTIVE, IO_OUT, IO_PARAMS, IO_STATE, type AppArray, type AppHost, type AppProgram } from './program.js';

const now = (): number => performance.now();

/** The io of a launch: invocations, parameters, state (a multiple of 4 words). */
function launchIo(params: ArrayLike<number>, invocations: number, state?: Uint32Array): Uint32Array {
  if (params.length > IO_OUT - IO_PARAMS) throw err('EINVAL', `a launch takes at most ${IO_OUT - IO_PARAMS} parameters`);
  const words = Math.ceil((IO_STATE + (state?.length ?? 0)) / 4) * 4;
  const io = new Uint32Array(words);
  io[IO_ACTIVE] = invocations;
  for (let k = 0; k < params.length; k++) io[IO_PARAMS + k] = params[k] >>> 0;
  if (state !== undefined) io.set(state, IO_STATE);
  return io;
}

/** The CPU reference: the program's host code over its CPU kernels, on a copy of the initial buffer. */
export async function referenceOf(program: AppProgram, initial: Uint32Array): Promise<Uint32Array> {
  const mem = initial.slice();
  const host: AppHost = {
    async launch(kernel, params, invocations, state) {
      const io = launchIo(params, invocations, state);
      program.cpu(kernel, io.slice(IO_PARAMS, IO_OUT), invocations, mem, io);
      return io;
    },
    async read(word, n) {
      return mem.slice(word, word + n);
    },
    async write(word, data) {
      mem.set(data, word);
    },
  };
  await program.run(host);
  return mem;
}

function hex(v: number): string {
  return `0x${(v >>> 0).toString(16)}`;
}

/** One element: equal, or (f32 with a tolerance) within tol relative to the reference (NaN never). */
function same(a: AppArray, got: number, want: number, fg: number, fw: number): boolean {
  if (got === want) return true;
  if (a.kind !== 'f32' || a.tol === undefined) return false;
  return Math.abs(fg - fw) <= a.tol * Math.max(1, Math.abs(fw));
}

/**
 * Compares the buffer as read back (`got`, words [w0, w0 + got.length)) with the reference:
 * every element of every array (u8 arrays byte by byte), and every word between arrays.
 */
export function compareWords(program: AppProgram, want: Uint32Array, w0: number, got: Uint32Array, tally: { counts: VerifyCounts; first: string | null }): void {
  const fg = new Float32Array(got.buffer, got.byteOffset, got.length);
  const fw = new Float32Array(want.buffer, want.byteOffset, want.length);
  const end = w0 + got.length;
  let a = 0;
  for (let w = w0; w < end; w++) {
    while (a < program.arrays.length && program.arrays[a].offset + arrayWords(program.arrays[a]) <= w) a++;
    const arr = a < program.arrays.length && program.arrays[a].offset <= w ? program.arrays[a] : null;
    const g = got[w - w0];
    const x = want[w];
    if (arr === null) {
      tally.counts.checked++;
      if (g !== x) {
        tally.counts.mismatches++;
        tally.first ??= `word ${w} outside every array: ${hex(g)}, want ${hex(x)}`;
      }
      continue;
    }
    const k = w - arr.offset;
    if (arr.kind === 'u8') {
      for (let b = 0; b < 4 && k * 4 + b < arr.length; b++) {
        tally.counts.checked++;
        const gb = (g >>> (8 * b)) & 0xff;
        const xb = (x >>> (8 * b)) & 0xff;
        if (gb !== xb) {
          tally.counts.mismatches++;
          tally.first ??= `${arr.name}[${k * 4 + b}]: ${gb}, want ${xb}`;
        }
      }
      continue;
    }
    tally.counts.checked++;
    if (!same(arr, g, x, fg[w - w0], fw[w])) {
      tally.counts.mismatches++;
      const show = arr.kind === 'f32' ? `${fg[w - w0]}, want ${fw[w]}` : arr.kind === 'i32' ? `${g | 0}, want ${x | 0}` : `${hex(g)}, want ${hex(x)}`;
      tally.first ??= `${arr.name}[${k}] (page ${Math.floor(w / WORDS_PER_PAGE)}): ${show}`;
    }
  }
}

/**
 * Runs `program` (of workload `def`) over [start, + program.pages) of the mirror's process,
 * mapped read-write by the caller: init, the host code's launches through the mirror,
 * verify. Throws HmmError when the run fails (EBUSY, EFAULT, ENODEV; EINVAL: the buffer
 * does not fit one command on this device); wrong data is reported, not thrown.
 */
export async function runApp(mirror: Dmirror, def: AppDef, program: AppProgram, start: number, opts: RunWorkloadOptions = {}): Promise<WorkloadResult> {
  if (start % PAGE_SIZE !== 0) throw err('EINVAL', `workload start ${start} is not page aligned`);
  const maxBytes = mirror.engine.device.limits.maxStorageBufferBindingSize;
  if (program.pages * PAGE_SIZE > maxBytes) {
    throw err('EINVAL', `${def.name} (${program.shape}) needs ${(program.pages / 256).toFixed(2)} MiB; this device binds at most ${maxBytes / 2 ** 20} MiB in one buffer`);
  }
  const chunkWords = Math.max(WORDS_PER_PAGE, Math.floor((opts.chunkBytes ?? 1 << 20) / PAGE_SIZE) * WORDS_PER_PAGE);
  const startPage = start / PAGE_SIZE;
  const nwords = program.pages * WORDS_PER_PAGE;
  const ms = { init: 0, gpu: 0, cpu: 0, results: 0, verify: 0 };
  let rounds = 0;
  let faultRounds = 0;
  let commands = 0;

  let t0 = now();
  const initial = program.initial();
  for (let w = 0; w < nwords; w += chunkWords) {
    const part = initial.subarray(w, Math.min(nwords, w + chunkWords));
    await mirror.proc.write(start + w * 4, new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
  }
  await opts.afterInit?.();
  ms.init = now() - t0;

  const kernels = await appKernels(mirror.engine, def);
  const toWords = (b: Uint8Array): Uint32Array => (b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, b.byteLength >> 2) : new Uint32Array(b.slice().buffer));
  const host: AppHost = {
    async launch(kernel, params, invocations, state) {
      if (!Number.isSafeInteger(invocations) || invocations < 0 || invocations > nwords) {
        throw err('EINVAL', `${def.name}: ${invocations} invocations in a ${nwords}-word command`);
      }
      const io = launchIo(params, invocations, state);
      // No invocation: the launch leaves memory and its io as they were.
      if (invocations === 0) return io;
      const cmd = mirror.engine.createCommand({
        op: program.kernelWrites[kernel] ? 'write' : 'read', page: startPage, npages: program.pages, kernel: kernels[kernel],
        ioWords: io.length, data: io, invocations,
      });
      try {
        const s = now();
        const out = await mirror.runKernel(cmd);
        ms.gpu += now() - s;
        rounds += out.rounds;
        faultRounds += out.faultRounds;
        commands++;
        return (await cmd.readOutput()).slice();
      } finally {
        cmd.destroy();
      }
    },
    async read(word, n) {
      const s = now();
      const r = toWords(await mirror.proc.read(start + word * 4, n * 4)).slice();
      ms.cpu += now() - s;
      return r;
    },
    async write(word, data) {
      const s = now();
      await mirror.proc.write(start + word * 4, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      ms.cpu += now() - s;
    },
  };
  await program.run(host);
  await opts.beforeVerify?.();

  t0 = now();
  const want = await referenceOf(program, initial);
  const tally: { counts: VerifyCounts; first: string | null } = { counts: { checked: 0, mismatches: 0 }, first: null };
  for (let w = 0; w < nwords; w += chunkWords) {
    const n = Math.min(chunkWords, nwords - w);
    compareWords(program, want, w, toWords(await mirror.proc.read(start + w * 4, n * 4)), tally);
  }
  ms.verify = now() - t0;
  const none = { checked: 0, mismatches: 0 };
  return {
    rounds, faultRounds, verify: { ...tally.counts }, gpu: none, results: { ...none }, cpu: tally.counts, firstMismatch: tally.first, commands, ms,
  };
}
