/**
 * The SC'21 uvm-eval driver logs (Allen & Ge, tallendev/uvm-eval), in and out:
 *
 *   s,                                   a fault batch starts
 *   f,<va>,<ts ns>,<fault_type>,<access_type>,<mask>,<instances>,<client_type>,
 *     <mmu_engine_type>,<client_id>,<mmu_engine_id>,<utlb>,<gpc>,<channel>,<ve>
 *                                        one fault of the batch (15 fields)
 *   b,<dt ns>,<status>                   the batch ends after dt ns of service
 *
 * access_type is UVM's uvm_fault_access_type_t (0 prefetch, 1 read, 2 write, 3 weak
 * atomic, 4 strong atomic). In: the faults become a device-0 trace (src/policy/trace.ts
 * records: time = the fault's ts, the page's most intrusive access), so a log replays as a
 * `trace:` workload. Out: our runs' batches in the same lines, so uvm-eval's plotting
 * scripts draw them. A malformed line is refused naming its line and field; nothing runs.
 */
import { err } from '../errors.js';
import { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE, type AccessKind } from '../policy/types.js';
import type { TraceRecord } from '../policy/trace.js';

export const F_FIELDS = ['f', 'va', 'ts', 'fault_type', 'access_type', 'mask', 'instances', 'client_type', 'mmu_engine_type',
  'client_id', 'mmu_engine_id', 'utlb', 'gpc', 'channel', 've'] as const;

export interface UvmEvalBatch {
  faults: { va: number; ts: number; access: number; faultType: number; utlb: number }[];
  /** Service ns (the b line's dt); null when the log ends inside the batch. */
  dtNs: number | null;
  status: number | null;
}

function bad(line: number, field: string, why: string): never {
  throw err('EINVAL', `uvm-eval log line ${line}, field ${field}: ${why}`);
}

function int(v: string | undefined, line: number, field: string, hexOk = false): number {
  const s = (v ?? '').trim();
  let n: number;
  if (hexOk && /^0x[0-9a-f]+$/i.test(s)) n = parseInt(s.slice(2), 16);
  else if (/^\d+$/.test(s)) n = Number(s);
  else return bad(line, field, `${JSON.stringify(v ?? '')} is not ${hexOk ? 'a number or 0x-hex' : 'a whole number'}`);
  if (!Number.isSafeInteger(n)) bad(line, field, `${s} is out of range`);
  return n;
}

/** Parses a log; throws EINVAL naming the first bad line and field. */
export function parseUvmEval(text: string): UvmEvalBatch[] {
  const out: UvmEvalBatch[] = [];
  let cur: UvmEvalBatch | null = null;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const l = lines[i].trim();
    if (l === '' || l.startsWith('#')) continue;
    const f = l.split(',');
    switch (f[0]) {
      case 's':
        cur = { faults: [], dtNs: null, status: null };
        out.push(cur);
        break;
      case 'f': {
        if (cur === null) bad(n, 'f', 'a fault before any batch start (s,)');
        if (f.length !== F_FIELDS.length) bad(n, f.length < F_FIELDS.length ? F_FIELDS[f.length] : 'f', `${f.length} fields, want ${F_FIELDS.length} (${F_FIELDS.join(',')})`);
        const va = int(f[1], n, 'va', true);
        if (va >= 2 ** 49) bad(n, 'va', `0x${va.toString(16)} is beyond a 49-bit GPU VA`);
        const access = int(f[4], n, 'access_type');
        if (access > 4) bad(n, 'access_type', `${access} is not 0..4 (prefetch, read, write, atomic weak, atomic strong)`);
        const fields = F_FIELDS.slice(5);
        fields.forEach((name, k) => int(f[5 + k], n, name, true));
        cur.faults.push({ va, ts: int(f[2], n, 'ts'), faultType: int(f[3], n, 'fault_type'), access, utlb: int(f[11], n, 'utlb') });
        break;
      }
      case 'b':
        if (cur === null) bad(n, 'b', 'a batch end without its start (s,)');
        if (f.length < 3) bad(n, f.length < 2 ? 'dt' : 'status', `${f.length} fields, want 3 (b,<dt>,<status>)`);
        cur.dtNs = int(f[1], n, 'dt');
        cur.status = int(f[2], n, 'status');
        cur = null;
        break;
      default:
        bad(n, 'type', `line type ${JSON.stringify(f[0])} is not s, f or b`);
    }
  }
  if (out.every((b) => b.faults.length === 0)) throw err('EINVAL', 'uvm-eval log: no faults (f, lines)');
  return out;
}

function accessKind(a: number): AccessKind {
  return a === 2 ? ACCESS_WRITE : a >= 3 ? ACCESS_ATOMIC : ACCESS_READ;
}

/** The log's faults as a device-0 trace, in time order (ties in log order). */
export function uvmEvalToTrace(batches: readonly UvmEvalBatch[]): TraceRecord[] {
  const out: TraceRecord[] = [];
  for (const b of batches) for (const f of b.faults) out.push({ time: f.ts, addr: f.va, access: accessKind(f.access), proc: 0 });
  return out.map((r, i) => ({ r, i })).sort((a, b) => a.r.time - b.r.time || a.i - b.i).map((x) => x.r);
}

/** One of our batches, as the log writes it. */
export interface BatchOut {
  /** Fault addresses (bytes) and their access (1 read, 2 write, 3 atomic; +4: a protection fault). */
  faults: { va: number; access: number; utlb: number }[];
  /** When the batch was fetched, ns. */
  tsNs: number;
  /** Its service, ns. */
  dtNs: number;
  /** 0 ok; the errno's value otherwise (EBUSY 16). */
  status: number;
}

/** Writes batches in uvm-eval's format (fault_type 1: invalid PTE; 3: a write to a read-only PTE). */
export function toUvmEval(batches: readonly BatchOut[]): string {
  const out: string[] = [];
  for (const b of batches) {
    out.push('s,');
    for (const f of b.faults) {
      const access = f.access & 3;
      const faultType = f.access & 4 ? 3 : 1;
      out.push(`f,0x${f.va.toString(16)},${Math.round(b.tsNs)},${faultType},${access},0,0,0,0,0,0,${f.utlb},0,0,0`);
    }
    out.push(`b,${Math.round(b.dtNs)},${b.status}`);
  }
  return `${out.join('\n')}\n`;
}
