/**
 * Traces in and out: uvm-eval driver logs (parse, refuse with line and field, write ours),
 * Nsight Systems SQLite exports read with sql.js (sample databases built here with the same
 * library), Perfetto trace-event JSON (checked against the format's rules and nesting), and
 * the CLI's --perfetto.
 */
import { describe, expect, it } from 'vitest';
import { emptyRecord, totals } from '../../src/driver/records.js';
import { parseArgs } from '../../src/experiment/cli.js';
import type { RunResult } from '../../src/experiment/types.js';
import { DEFAULT_SETTINGS, toRunConfig } from '../../src/lab/config.js';
import { ACCESS_READ, ACCESS_WRITE } from '../../src/policy/types.js';
import { readNsight } from '../../src/trace/nsight.js';
import { sqlJs } from '../../src/trace/load.js';
import { checkTraceEvents, toPerfetto } from '../../src/trace/perfetto.js';
import { parseUvmEval, toUvmEval, uvmEvalToTrace } from '../../src/trace/uvm-eval.js';
import { nsightSample, UVM_EVAL_SAMPLE } from '../support/trace-samples.js';



describe('uvm-eval logs', () => {
  it('reads batches and faults; the trace is device 0 in time order with the most intrusive access kept per fault', () => {
    const b = parseUvmEval(UVM_EVAL_SAMPLE);
    expect(b.map((x) => [x.faults.length, x.dtNs, x.status])).toEqual([[3, 52000, 0], [1, 41000, 0]]);
    const t = uvmEvalToTrace(b);
    expect(t.map((r) => [r.time, r.addr, r.access, r.proc])).toEqual([
      [1000, 0x7f0000000000, ACCESS_READ, 0], [1100, 0x7f0000001000, ACCESS_WRITE, 0], [1150, 0x7f0000001000, ACCESS_READ, 0], [90000, 0x7f0000005000, ACCESS_WRITE, 0],
    ]);
  });

  it.for([
    ['f,0x1000,1,1,1,0,0,0,0,0,0,0,0,0,0', /line 1, field f: a fault before any batch start/],
    ['s,\nf,0x1000,1,1,1,0,0,0', /line 2, field mmu_engine_type: 8 fields, want 15/],
    ['s,\nf,0x1000,12,1,9,0,0,0,0,0,0,0,0,0,0', /line 2, field access_type: 9 is not 0..4/],
    ['s,\nf,zz,12,1,1,0,0,0,0,0,0,0,0,0,0', /line 2, field va: "zz" is not a number or 0x-hex/],
    ['s,\nf,0x1000,-5,1,1,0,0,0,0,0,0,0,0,0,0', /line 2, field ts: "-5" is not a whole number/],
    ['s,\nf,0x1000,5,1,1,0,0,0,0,0,0,0,0,0,0\nb,x,0', /line 3, field dt/],
    ['s,\nq,1', /line 2, field type: line type "q"/],
    ['s,\nb,1,0', /no faults/],
  ] as const)('refuses %j naming the line and field (EINVAL)', ([text, msg]) => {
    expect(() => parseUvmEval(text)).toThrowErrno('EINVAL');
    expect(() => parseUvmEval(text)).toThrow(msg);
  });

  it('our batches written in its format read back the same faults', () => {
    const text = toUvmEval([
      { faults: [{ va: 0x40000000, access: 1, utlb: 0 }, { va: 0x40001000, access: 2 + 4, utlb: 0 }], tsNs: 150_000, dtNs: 30_000, status: 0 },
      { faults: [{ va: 0x40003000, access: 1, utlb: 0 }], tsNs: 345_000, dtNs: 20_000, status: 16 },
    ]);
    expect(text.split('\n')[2]).toBe('f,0x40001000,150000,3,2,0,0,0,0,0,0,0,0,0,0');
    const back = parseUvmEval(text);
    expect(back.map((b) => [b.faults.map((f) => [f.va, f.access, f.faultType]), b.dtNs, b.status])).toEqual([
      [[[0x40000000, 1, 1], [0x40001000, 2, 3]], 30000, 0], [[[0x40003000, 1, 1]], 20000, 16],
    ]);
  });
});

describe('Nsight Systems SQLite', () => {
  it('reads the fault events in time order and counts UM memcpys (kinds 11, 12)', async () => {
    const n = readNsight(await sqlJs(), await nsightSample());
    expect(n.records.map((r) => [r.time, r.addr, r.access])).toEqual([[1000, 0x7f0000000000, ACCESS_READ], [1500, 0x7f0000002000, ACCESS_WRITE], [3000, 0x7f0000001000, ACCESS_READ]]);
    expect(n).toMatchObject({ faultRows: 3, pageFaults: 6, umHtoD: 1, umDtoH: 2 });
  });

  it('refuses a bad row naming the row and field, a file without the table, and what is not SQLite', async () => {
    const SQL = await sqlJs();
    const bad = await nsightSample([[1000, 2000, 0x1000, 1, 1], [5000, 4000, 0x2000, 1, 1]]);
    expect(() => readNsight(SQL, bad)).toThrow(/row 2, field end: 4000 is before start 5000/);
    const bad2 = await nsightSample([[1000, 2000, 'x', 1, 1]]);
    expect(() => readNsight(SQL, bad2)).toThrow(/row 1, field address: "x" is not a whole number/);
    const empty = new SQL.Database();
    empty.run('CREATE TABLE other (a)');
    expect(() => readNsight(SQL, empty.export())).toThrow(/no CUDA_UM_GPU_PAGE_FAULT_EVENTS table/);
    expect(() => readNsight(SQL, new TextEncoder().encode('s,\nf,1'))).toThrowErrno('EINVAL');
  });
});

describe('Perfetto (Chrome trace-event JSON)', () => {
  const recs = [0, 1, 2].map((i) => ({ ...emptyRecord(i, i * 3, i + 1), fetched: 8, unique: 6, serviceMs: 2, mmapLockWaitMs: 0.5, mmapLockHoldMs: 1 }));
  const run: RunResult = {
    config: toRunConfig(DEFAULT_SETTINGS), ok: true, error: null, wallMs: 9, rounds: 4, faultRounds: 3, totals: totals(recs), records: recs,
    storm: { ops: 2, byKind: {} }, verify: { checked: 1, mismatches: 0 }, faultsPerSec: 1,
  };

  it('batches as slices with the service parts nested, rounds, invalidation instants, counters: valid and nested', () => {
    const f = toPerfetto([{ result: run, rounds: [{ ms: 0, faults: 8 }, { ms: 2.5, faults: 8 }], invalidations: [1.2, 4], ringFill: [0.5, 0.2, 0], toDevice: [1, 0, 0], toHost: [0, 1, 0] }, { result: run }], 'wall');
    const parsed: unknown = JSON.parse(JSON.stringify(f));
    expect(checkTraceEvents(parsed)).toEqual([]);
    const ev = f.traceEvents;
    expect(ev.filter((e) => e.ph === 'X' && e.name.startsWith('batch')).length).toBe(6);
    expect(ev.filter((e) => e.ph === 'X' && e.name === 'mmap lock wait').map((e) => [e.pid, e.ts, e.dur])).toEqual([[1, 0, 500], [1, 3000, 500], [1, 6000, 500], [2, 0, 500], [2, 3000, 500], [2, 6000, 500]]);
    expect(ev.filter((e) => e.ph === 'i').map((e) => e.ts)).toEqual([1200, 4000]);
    expect(ev.filter((e) => e.ph === 'C' && e.name === 'fault ring fill').length).toBe(3);
    expect(ev.filter((e) => e.ph === 'M' && e.name === 'process_name').length).toBe(2);
  });

  it('the check catches what Perfetto would reject or misdraw', () => {
    expect(checkTraceEvents({})).toEqual(['no traceEvents array']);
    expect(checkTraceEvents({ traceEvents: [{ name: 'a', ph: 'X', ts: 0, pid: 1, tid: 1 }] })).toEqual(['event 0: dur']);
    expect(checkTraceEvents({ traceEvents: [
      { name: 'a', ph: 'X', ts: 0, dur: 10, pid: 1, tid: 1 }, { name: 'b', ph: 'X', ts: 5, dur: 10, pid: 1, tid: 1 },
    ] })).toEqual(['event 1 (b) overlaps a on 1/1 without nesting']);
    expect(checkTraceEvents({ traceEvents: [{ name: 'c', ph: 'C', ts: 0, pid: 1, tid: 0, args: { x: 'no' } }] })).toEqual(['event 0: counter args must be numbers']);
  });

  it('--perfetto FILE on the CLI: a .json name, refused otherwise', () => {
    expect(parseArgs(['--perfetto', 'out/trace.json']).perfetto).toBe('out/trace.json');
    expect(() => parseArgs(['--perfetto', 'trace.pb'])).toThrow(/\.json/);
  });
});
