/**
 * Nsight Systems' SQLite export (nsys export --type sqlite), read with sql.js (SQLite in
 * WebAssembly: the same code in Node and the browser; the caller passes the initialised
 * module). What a unified-memory trace holds:
 *   CUDA_UM_GPU_PAGE_FAULT_EVENTS  start, end (ns), address, numberOfPageFaults,
 *                                  faultAccessType (CUpti: 1 read, 2 write, 3 atomic, 4 prefetch)
 *   CUPTI_ACTIVITY_KIND_MEMCPY     copyKind 11 (UM host to device) / 12 (UM device to host)
 * The faults become a device-0 trace (src/policy/trace.ts), in time order, so the export
 * replays as a `trace:` workload; the UM memcpy counts are reported beside it. A missing
 * table or column, or a value of the wrong kind, is refused naming the row and field.
 */
import type { Database, SqlJsStatic } from 'sql.js';
import { err } from '../errors.js';
import { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE } from '../policy/types.js';
import type { TraceRecord } from '../policy/trace.js';

export const FAULT_TABLE = 'CUDA_UM_GPU_PAGE_FAULT_EVENTS';
export const FAULT_COLUMNS = ['start', 'end', 'address', 'numberOfPageFaults', 'faultAccessType'] as const;
export const MEMCPY_TABLE = 'CUPTI_ACTIVITY_KIND_MEMCPY';
export const UM_HTOD = 11;
export const UM_DTOH = 12;

export interface NsightImport {
  records: TraceRecord[];
  faultRows: number;
  /** Page faults the rows count (numberOfPageFaults summed). */
  pageFaults: number;
  umHtoD: number;
  umDtoH: number;
}

function columns(db: Database, table: string): string[] {
  const r = db.exec(`PRAGMA table_info(${table})`);
  return r.length === 0 ? [] : r[0].values.map((v) => String(v[1]));
}

function bad(row: number, field: string, why: string): never {
  throw err('EINVAL', `Nsight ${FAULT_TABLE} row ${row}, field ${field}: ${why}`);
}

export function readNsight(SQL: SqlJsStatic, bytes: Uint8Array): NsightImport {
  let db: Database;
  try {
    db = new SQL.Database(bytes);
    db.exec('SELECT 1 FROM sqlite_master LIMIT 1');
  } catch (e) {
    throw err('EINVAL', `not an SQLite file (nsys export --type sqlite): ${(e as Error).message}`);
  }
  try {
    const have = columns(db, FAULT_TABLE);
    if (have.length === 0) throw err('EINVAL', `no ${FAULT_TABLE} table: export with nsys export --type sqlite from a run traced with --cuda-um-gpu-page-faults=true`);
    const missing = FAULT_COLUMNS.filter((c) => !have.includes(c));
    if (missing.length) throw err('EINVAL', `${FAULT_TABLE} lacks column(s) ${missing.join(', ')}`);
    const res = db.exec(`SELECT ${FAULT_COLUMNS.map((c) => `"${c}"`).join(', ')} FROM ${FAULT_TABLE} ORDER BY rowid`);
    const rows = res[0]?.values ?? [];
    const records: TraceRecord[] = [];
    let pageFaults = 0;
    rows.forEach((v, i) => {
      const row = i + 1;
      const get = (k: number): number => {
        const x = v[k];
        if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) bad(row, FAULT_COLUMNS[k], `${JSON.stringify(x)} is not a whole number >= 0`);
        return x;
      };
      const start = get(0);
      const end = get(1);
      if (end < start) bad(row, 'end', `${end} is before start ${start}`);
      const address = get(2);
      if (address >= 2 ** 49) bad(row, 'address', `0x${address.toString(16)} is beyond a 49-bit VA`);
      const n = get(3);
      const access = get(4);
      if (access > 4) bad(row, 'faultAccessType', `${access} is not 0..4 (unknown, read, write, atomic, prefetch)`);
      pageFaults += n;
      records.push({ time: start, addr: address, access: access === 2 ? ACCESS_WRITE : access === 3 ? ACCESS_ATOMIC : ACCESS_READ, proc: 0 });
    });
    if (records.length === 0) throw err('EINVAL', `${FAULT_TABLE} has no rows`);
    let umHtoD = 0;
    let umDtoH = 0;
    if (columns(db, MEMCPY_TABLE).includes('copyKind')) {
      const m = db.exec(`SELECT copyKind, COUNT(*) FROM ${MEMCPY_TABLE} WHERE copyKind IN (${UM_HTOD}, ${UM_DTOH}) GROUP BY copyKind`);
      for (const [k, c] of m[0]?.values ?? []) {
        if (k === UM_HTOD) umHtoD = Number(c);
        if (k === UM_DTOH) umDtoH = Number(c);
      }
    }
    const sorted = records.map((r, i) => ({ r, i })).sort((a, b) => a.r.time - b.r.time || a.i - b.i).map((x) => x.r);
    return { records: sorted, faultRows: rows.length, pageFaults, umHtoD, umDtoH };
  } finally {
    db.close();
  }
}
