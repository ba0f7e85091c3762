/**
 * Access traces: one record per access, (time, address, access, processor), as JSON Lines or
 * CSV, so a run can be recorded and published traces replayed.
 *
 *   JSONL  {"time":1000,"addr":"0x7f0000001000","access":"w","proc":"gpu0"}
 *   CSV    time,address,access,processor        (header optional)
 *          1000,0x7f0000001000,w,gpu0
 *
 * time: integer ns >= 0. address: decimal or 0x-hex, < 2^47 (a user address; docs/design.md).
 * access: r | w | a (read, write, atomic; the long words too). processor: cpu | gpuN (N in
 * 0..7; a bare number in JSONL is a device). Blank lines and lines starting with '#' are
 * skipped. A bad line is refused with EINVAL naming its line number; nothing is returned.
 * Records keep file order, which is each processor's issue order.
 */
import { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE, CPU, type AccessKind } from './types.js';
import { err } from '../errors.js';

export interface TraceRecord {
  /** ns. */
  time: number;
  addr: number;
  access: AccessKind;
  /** CPU (-1) or a device index. */
  proc: number;
}

export type TraceFormat = 'jsonl' | 'csv';

const ADDR_LIMIT = 2 ** 47;
const CSV_HEADER = 'time,address,access,processor';

function bad(line: number, why: string): never {
  throw err('EINVAL', `trace line ${line}: ${why}`);
}

function parseTime(v: unknown, line: number): number {
  const t = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v.trim()) : v;
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) bad(line, `time ${JSON.stringify(v)} is not an integer ns >= 0`);
  return t;
}

function parseAddr(v: unknown, line: number): number {
  let a: number;
  if (typeof v === 'number') a = v;
  else if (typeof v === 'string' && /^0x[0-9a-f]+$/i.test(v.trim())) a = parseInt(v.trim().slice(2), 16);
  else if (typeof v === 'string' && /^\d+$/.test(v.trim())) a = Number(v.trim());
  else bad(line, `address ${JSON.stringify(v)} is not a number or 0x-hex`);
  if (!Number.isSafeInteger(a) || a < 0 || a >= ADDR_LIMIT) bad(line, `address ${JSON.stringify(v)} out of range [0, 2^47)`);
  return a;
}

function parseAccess(v: unknown, line: number): AccessKind {
  switch (typeof v === 'string' ? v.trim().toLowerCase() : v) {
    case 'r': case 'read': return ACCESS_READ;
    case 'w': case 'write': return ACCESS_WRITE;
    case 'a': case 'atomic': return ACCESS_ATOMIC;
    default: return bad(line, `access ${JSON.stringify(v)} is not r, w or a`);
  }
}

function parseProc(v: unknown, line: number): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 8) return v;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'cpu') return CPU;
    const m = /^gpu([0-7])$/.exec(s);
    if (m) return Number(m[1]);
  }
  return bad(line, `processor ${JSON.stringify(v)} is not cpu or gpu0..gpu7`);
}

/** Parse a trace; `format` is guessed from the first record line when omitted. */
export function parseTrace(text: string, format?: TraceFormat): TraceRecord[] {
  const lines = text.split(/\r?\n/);
  const out: TraceRecord[] = [];
  let fmt = format;
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const l = lines[i].trim();
    if (l === '' || l.startsWith('#')) continue;
    fmt ??= l.startsWith('{') ? 'jsonl' : 'csv';
    if (fmt === 'jsonl') {
      let o: unknown;
      try {
        o = JSON.parse(l);
      } catch {
        bad(n, 'not valid JSON');
      }
      if (typeof o !== 'object' || o === null || Array.isArray(o)) bad(n, 'not a JSON object');
      const r = o as Record<string, unknown>;
      for (const k of ['time', 'addr', 'access', 'proc']) if (!(k in r)) bad(n, `missing field "${k}"`);
      out.push({ time: parseTime(r.time, n), addr: parseAddr(r.addr, n), access: parseAccess(r.access, n), proc: parseProc(r.proc, n) });
    } else {
      if (l.replace(/\s/g, '').toLowerCase() === CSV_HEADER) continue;
      const f = l.split(',');
      if (f.length !== 4) bad(n, `${f.length} fields, want 4 (${CSV_HEADER})`);
      out.push({ time: parseTime(f[0], n), addr: parseAddr(f[1], n), access: parseAccess(f[2], n), proc: parseProc(f[3], n) });
    }
  }
  return out;
}

const ACCESS_CHAR = ['r', 'w', 'a'] as const;

function procName(p: number): string {
  return p === CPU ? 'cpu' : `gpu${p}`;
}

/** Write records in `format` (addresses as 0x-hex); parseTrace(formatTrace(r, f)) equals r. */
export function formatTrace(records: readonly TraceRecord[], format: TraceFormat): string {
  const lines: string[] = format === 'csv' ? [CSV_HEADER] : [];
  for (const r of records) {
    const addr = `0x${r.addr.toString(16)}`;
    const access = ACCESS_CHAR[r.access];
    if (format === 'csv') lines.push(`${r.time},${addr},${access},${procName(r.proc)}`);
    else lines.push(JSON.stringify({ time: r.time, addr, access, proc: procName(r.proc) }));
  }
  return lines.join('\n') + '\n';
}
