/**
 * A trace's buffer follows its records, not its address span (issue 19: two records 256 MiB
 * apart cost 10 s and 975 MB; 64 GiB apart, a RangeError).
 */
import { describe, expect, it } from 'vitest';
import { MAX_TRACE_PAGES, traceLayout } from '../../src/experiment/trace-run.js';
import { HmmError } from '../../src/errors.js';
import type { TraceRecord } from '../../src/policy/trace.js';

const P = 4096;
const rec = (addr: number, time = 0): TraceRecord => ({ time, addr, access: 0, proc: 0 });

describe('traceLayout', () => {
  it('two records 256 MiB or 64 GiB apart take two pages a block apart, not the span', () => {
    for (const gap of [256 * 2 ** 20, 64 * 2 ** 30]) {
      const l = traceLayout([rec(0x1000_0000), rec(0x1000_0000 + gap)]);
      expect(l.pages).toBeLessThanOrEqual(2 * 512);
      expect(l.index.get(0x1000_0000 / P)).toBe(0);
    }
  });

  it('keeps neighbours and each page\'s offset within its 2 MiB block', () => {
    const base = 0x4000_0000;
    const pages = [3, 4, 5, 9, 700, 100_000 + 17];
    const l = traceLayout(pages.map((p) => rec(base + p * P + 8)));
    const at = pages.map((p) => l.index.get(base / P + p)!);
    expect(at.slice(0, 4)).toEqual([3, 4, 5, 9]); // holes within a block kept
    for (let i = 0; i < pages.length; i++) expect(at[i] % 512).toBe((base / P + pages[i]) % 512);
    for (let i = 1; i < at.length; i++) expect(at[i]).toBeGreaterThan(at[i - 1]);
    expect(l.pages).toBe(at[at.length - 1] + 1);
  });

  it('a trace touching more than the buffer bound is EINVAL, not an allocation', () => {
    const recs = Array.from({ length: MAX_TRACE_PAGES / 512 + 2 }, (_, i) => rec(i * 2 ** 30));
    expect(() => traceLayout(recs)).toThrow(HmmError);
    expect(() => traceLayout(recs)).toThrow(/needing a \d+-page buffer/);
  });
});
