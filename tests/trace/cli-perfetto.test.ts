/**
 * `npm run experiment -- --perfetto FILE.json`: the sweep's runs written as Chrome
 * trace-event JSON, one process per run, every batch a slice, valid by the format's checks.
 * Fake runner: no GPU.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { EXIT_OK } from '../../src/experiment/exit-codes.js';
import { main } from '../../src/experiment/main.js';
import { checkTraceEvents, type TraceFile } from '../../src/trace/perfetto.js';
import { fakeRunner } from '../experiment/fixtures.js';

let dir = '';
afterEach(() => {
  vi.restoreAllMocks();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('--perfetto writes every run of the sweep as a valid trace-event file', async () => {
  dir = mkdtempSync(join(tmpdir(), 'mirrorlab-perfetto-'));
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const file = join(dir, 'sub', 'trace.json');
  const code = await main(['--preset', 'windows', '--out', join(dir, 'out'), '--quiet', '--perfetto', file], fakeRunner());
  expect(code).toBe(EXIT_OK);
  const trace = JSON.parse(readFileSync(file, 'utf8')) as TraceFile;
  expect(checkTraceEvents(trace)).toEqual([]);
  const report = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8')) as { runs: { records: unknown[] }[] };
  const procs = trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'process_name');
  expect(procs).toHaveLength(report.runs.length);
  const slices = trace.traceEvents.filter((e) => e.ph === 'X' && e.name.startsWith('batch '));
  expect(slices).toHaveLength(report.runs.reduce((n, r) => n + r.records.length, 0));
});
