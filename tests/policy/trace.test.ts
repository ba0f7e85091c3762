/** Trace records: JSONL and CSV, kernel-style errors naming the line, and a round trip. */
import { describe, expect, it } from 'vitest';
import { fc, test as fcTest } from '@fast-check/vitest';
import { HmmError } from '../../src/errors.js';
import { ACCESS_ATOMIC, ACCESS_READ, ACCESS_WRITE, CPU, formatTrace, parseTrace, type TraceRecord } from '../../src/policy/index.js';

const RECS: TraceRecord[] = [
  { time: 0, addr: 0x7f0000001000, access: ACCESS_WRITE, proc: 0 },
  { time: 1500, addr: 0x7f0000001000, access: ACCESS_READ, proc: CPU },
  { time: 2000, addr: 4096, access: ACCESS_ATOMIC, proc: 3 },
];

describe('trace formats', () => {
  it('parses JSONL and CSV (header, comments and blank lines skipped)', () => {
    const jsonl = '{"time":0,"addr":"0x7f0000001000","access":"w","proc":"gpu0"}\n\n' +
      '# a comment\n{"time":1500,"addr":139637976731648,"access":"read","proc":"cpu"}\n' +
      '{"time":2000,"addr":"4096","access":"a","proc":3}\n';
    expect(parseTrace(jsonl)).toEqual(RECS);
    const csv = 'time,address,access,processor\n0,0x7f0000001000,w,gpu0\n1500,0x7F0000001000,r,CPU\n2000,4096,atomic,gpu3\n';
    expect(parseTrace(csv)).toEqual(RECS);
  });

  it('writes what it reads, both formats', () => {
    expect(parseTrace(formatTrace(RECS, 'jsonl'), 'jsonl')).toEqual(RECS);
    expect(parseTrace(formatTrace(RECS, 'csv'), 'csv')).toEqual(RECS);
    expect(formatTrace(RECS, 'csv').split('\n')[1]).toBe('0,0x7f0000001000,w,gpu0');
  });

  const record = fc.record({
    time: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    addr: fc.integer({ min: 0, max: 2 ** 47 - 1 }),
    access: fc.constantFrom(ACCESS_READ, ACCESS_WRITE, ACCESS_ATOMIC),
    proc: fc.integer({ min: -1, max: 7 }),
  }) as fc.Arbitrary<TraceRecord>;
  fcTest.prop([fc.array(record, { maxLength: 50 }), fc.constantFrom('jsonl', 'csv' as const)])(
    'round-trips any records', (recs, format) => {
      expect(parseTrace(formatTrace(recs, format), format)).toEqual(recs);
    });
});

describe('trace errors: EINVAL naming the line', () => {
  const cases: [string, string, RegExp][] = [
    ['bad JSON', '{"time":0,"addr":0,"access":"r","proc":"cpu"}\n{"time":1,', /line 2: not valid JSON/],
    ['missing field', '{"time":0,"addr":0,"access":"r"}', /line 1: missing field "proc"/],
    ['negative time', 'time,address,access,processor\n-5,0x1000,r,cpu', /line 2: time "-5"/],
    ['fractional time', '1.5,0x1000,r,cpu', /line 1: time/],
    ['address past 2^47', '0,0x800000000000,r,cpu', /line 1: address .* out of range/],
    ['bad address', '0,0xZZ,r,cpu', /line 1: address/],
    ['bad access', '0,0x1000,x,cpu', /line 1: access "x"/],
    ['bad processor', '0,0x1000,r,gpu8', /line 1: processor "gpu8"/],
    ['field count', '\n\n0,0x1000,r', /line 3: 3 fields, want 4/],
  ];
  it.for(cases)('%s', ([, text, re]) => {
    let e: unknown;
    try {
      parseTrace(text);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(HmmError);
    expect((e as HmmError).code).toBe('EINVAL');
    expect((e as HmmError).message).toMatch(re);
  });
});
