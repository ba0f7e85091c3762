/**
 * `--workload trace:FILE` for the traces users already have (Node only; the runner imports
 * this lazily): by the file's kind,
 *   an SQLite file (.sqlite, .db, or the SQLite header)  Nsight Systems' export (nsight.ts)
 *   .log                                                  a uvm-eval driver log (uvm-eval.ts)
 *   anything else                                         our trace format (src/policy/trace.ts)
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import initSqlJs from 'sql.js';
import { err } from '../errors.js';
import { parseTrace, type TraceRecord } from '../policy/trace.js';
import { TRACE_PREFIX } from '../experiment/trace-run.js';
import { readNsight } from './nsight.js';
import { parseUvmEval, uvmEvalToTrace } from './uvm-eval.js';

export async function sqlJs(): Promise<Awaited<ReturnType<typeof initSqlJs>>> {
  const wasm = createRequire(import.meta.url).resolve('sql.js/dist/sql-wasm.wasm');
  return initSqlJs({ locateFile: () => wasm });
}

export async function loadAnyTrace(spec: string): Promise<TraceRecord[]> {
  const file = spec.startsWith(TRACE_PREFIX) ? spec.slice(TRACE_PREFIX.length) : spec;
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw err('ENOENT', `trace ${file}: ${(e as Error).message}`);
  }
  if (/\.(sqlite|db)$/i.test(file) || bytes.subarray(0, 15).toString('latin1') === 'SQLite format 3') {
    return readNsight(await sqlJs(), new Uint8Array(bytes)).records;
  }
  if (/\.log$/i.test(file)) return uvmEvalToTrace(parseUvmEval(bytes.toString('utf8')));
  return loadTraceFile(spec);
}

/** Our own trace format (src/policy/trace.ts), JSONL or CSV by the file's extension. */
function loadTraceFile(spec: string): TraceRecord[] {
  const file = spec.startsWith(TRACE_PREFIX) ? spec.slice(TRACE_PREFIX.length) : spec;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw err('ENOENT', `trace ${file}: ${(e as Error).message}`);
  }
  const recs = parseTrace(text, file.endsWith('.csv') ? 'csv' : file.endsWith('.jsonl') ? 'jsonl' : undefined);
  if (recs.length === 0) throw err('EINVAL', `trace ${file}: no records`);
  return recs;
}
