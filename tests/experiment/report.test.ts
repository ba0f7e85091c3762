import { describe, expect, it } from 'vitest';
import {
  FIGURE_TITLES, FIGURES, summarizeRun, toBatchCsv, toCsv, toHtml, toJson, toSvgFigure, toTable,
} from '../../src/experiment/report.js';
import { barChart, figure, niceTicks } from '../../src/experiment/svg-plot.js';
import type { ExperimentReport } from '../../src/experiment/types.js';
import { config, fakeResult, result, rec, syntheticReport } from './fixtures.js';
import { xmlProblem } from './xml.js';

/** Markdown rows → objects keyed by header. */
function mdRows(md: string): Record<string, string>[] {
  const split = (line: string) => line.slice(2, -2).split(/ (?<!\\)\| /).map((c) => c.replace(/\\\|/g, '|'));
  const lines = md.trim().split('\n');
  const head = split(lines[0]);
  expect(lines[1]).toMatch(/^\|(-{3}:?\|)+$/);
  return lines.slice(2).map((l) => {
    const cells = split(l);
    expect(cells).toHaveLength(head.length);
    return Object.fromEntries(head.map((h, i) => [h, cells[i]]));
  });
}

/** A minimal RFC 4180 parser (quoted fields, doubled quotes). */
function csvRows(csv: string): Record<string, string>[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let q = false;
  for (let i = 0; i < csv.length; i++) {
    const ch = csv[i];
    if (q) {
      if (ch === '"' && csv[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') q = false; else field += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') { row.push(field); field = ''; } else if (ch === '\n') { row.push(field); rows.push(row); row = []; field = ''; } else field += ch;
  }
  expect(field).toBe('');
  const [head, ...body] = rows;
  return body.map((r) => {
    expect(r).toHaveLength(head.length);
    return Object.fromEntries(head.map((h, i) => [h, r[i]]));
  });
}

/** The <svg>…</svg> with this id in an HTML page. */
function svgById(html: string, id: string): string {
  const start = html.indexOf(`<svg id="${id}"`);
  expect(start).toBeGreaterThanOrEqual(0);
  return html.slice(start, html.indexOf('</svg>', start) + 6);
}

const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;

describe('report: table and CSV', () => {
  const report = syntheticReport();

  it('derives duplicate ratio and coalescing factor (unique / range-fault calls)', () => {
    const [a, b, c] = report.runs.map(summarizeRun);
    expect(a).toMatchObject({ fetched: 512, duplicates: 62, unique: 450, rangeFaults: 5, coalescingFactor: 90, status: 'ok' });
    expect(a.duplicateRatio).toBeCloseTo(62 / 512, 12);
    expect(b).toMatchObject({ fetched: 384, duplicateRatio: 0, unique: 384, rangeFaults: 384, coalescingFactor: 1 });
    expect(c).toMatchObject({ coalescingFactor: 20, retries: 7, ebusy: 1, status: 'error' });
    const none = summarizeRun(result(config(), []), 0);
    expect(none.coalescingFactor).toBeNull();
    expect(none.duplicateRatio).toBe(0);
  });

  it('toTable: one markdown row per run with the right numbers', () => {
    const rows = mdRows(toTable(report));
    expect(rows).toHaveLength(3);
    expect(Object.keys(rows[0])).toEqual([
      '#', 'preset', 'workload', 'window', 'batch', 'replay', 'protocol', 'coalescing', 'storm rate (/s)', 'faults fetched',
      'duplicate ratio', 'unique faults', 'range-fault calls', 'coalescing factor', 'retries', 'EBUSYs', 'fallbacks',
      'mirror writes', 'service ms', 'service µs/fault', 'wall ms', 'storm ops', 'stale pfns', 'bytes moved', 'ok/error',
    ]);
    expect(rows[0]).toMatchObject({
      '#': '1', preset: 'coalescing', workload: 'stream', window: '2m', batch: '256', replay: 'batch-flush', protocol: 'seq',
      coalescing: 'on', 'storm rate (/s)': '0', 'faults fetched': '512', 'duplicate ratio': '0.121', 'unique faults': '450',
      'range-fault calls': '5', 'coalescing factor': '90.00', retries: '0', 'mirror writes': '5', 'service ms': '10.0',
      // issue 10: service time per fault (10 ms / 450 unique) replaces faults/s, which read
      // backwards; wall time and storm ops are columns; stale pfns and bytes moved are '—'
      // when the run did not measure them.
      'service µs/fault': '22.2', 'wall ms': '100', 'storm ops': '0', 'stale pfns': '—', 'bytes moved': '—', 'ok/error': 'ok',
    });
    expect(rows[1]).toMatchObject({ coalescing: 'off', 'faults fetched': '384', 'range-fault calls': '384', 'coalescing factor': '1.00', 'duplicate ratio': '0.000' });
    expect(rows[2]).toMatchObject({
      preset: 'protocols', protocol: 'valid-flag', 'storm rate (/s)': '1000', retries: '7', EBUSYs: '1', 'coalescing factor': '20.00',
      'ok/error': 'error: EBUSY: range [0x1000, 0x2000) never became valid | gave up',
    });
  });

  it('toCsv: one row per run, machine precision, quoted where needed', () => {
    const rows = csvRows(toCsv(report));
    expect(rows).toHaveLength(3);
    expect(Number(rows[0].coalescing_factor)).toBe(90);
    expect(Number(rows[0].duplicate_ratio)).toBeCloseTo(62 / 512, 12);
    expect(Number(rows[1].coalescing_factor)).toBe(1);
    expect(Number(rows[2].coalescing_factor)).toBe(20);
    expect(rows.map((r) => r.faults_fetched)).toEqual(['512', '384', '100']);
    expect(rows.map((r) => r.range_fault_calls)).toEqual(['5', '384', '4']);
    expect(rows.map((r) => r.status)).toEqual(['ok', 'ok', 'error']);
    expect(rows[2].error).toBe('EBUSY: range [0x1000, 0x2000) never became valid | gave up');
    expect(rows[2]).toMatchObject({ retries: '7', ebusy: '1', protocol: 'valid-flag', storm_rate: '1000', window: '2m', coalescing: 'on' });
    expect(rows[0].verify_mismatches).toBe('0');
    const empty = csvRows(toCsv({ ...report, runs: [result(config(), [])] }));
    expect(empty[0].coalescing_factor).toBe('');
  });

  it('toBatchCsv: one row per batch record, with the run key', () => {
    const rows = csvRows(toBatchCsv(report));
    expect(rows).toHaveLength(2 + 3 + 1);
    expect(rows.map((r) => r.run)).toEqual(['1', '1', '2', '2', '2', '3']);
    expect(rows[1]).toMatchObject({ preset: 'coalescing', workload: 'stream', coalescing: 'on', index: '1', t: '10', fetched: '256', duplicates: '6', unique: '250', range_faults: '3' });
    expect(rows[5]).toMatchObject({ preset: 'protocols', protocol: 'valid-flag', storm_rate: '1000', retries: '7', ebusy: '1' });
  });

  it('toJson round-trips', () => {
    expect(JSON.parse(toJson(report))).toEqual(report);
  });

  it('marks a run that read wrong data', () => {
    const r: ExperimentReport = { ...report, runs: [{ ...report.runs[0], verify: { checked: 100, mismatches: 3 } }] };
    expect(mdRows(toTable(r))[0]['ok/error']).toBe('WRONG: 3 of 100 words wrong');
  });
});

describe('report: HTML and SVG', () => {
  const report = syntheticReport();
  const html = toHtml(report);

  it('is one self-contained page: no URLs, no scripts, no external resources', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link|<img|<iframe|@import|url\(/i);
    expect(html).toContain('<style>');
  });

  it('has the summary table with one row per run', () => {
    const table = html.slice(html.indexOf('<table class="runs">'), html.indexOf('</table>'));
    expect(count(table, /<tr[ >]/g)).toBe(1 + report.runs.length);
    expect(table).toContain('EBUSY: range [0x1000, 0x2000) never became valid | gave up');
  });

  it('has one <svg> per plot, each with its title and a caption', () => {
    expect(count(html, /<svg[ >]/g)).toBe(FIGURES.length);
    for (const f of FIGURES) {
      const svg = svgById(html, `fig-${f}`);
      expect(svg).toContain(`<title>${FIGURE_TITLES[f]}</title>`);
      expect(svg).toMatch(/class="title"[^>]*>[^<]+</);
      expect(svg).toMatch(/class="caption"[^>]*>[^<]{20,}</);
      expect(xmlProblem(svg)).toBeNull();
    }
    expect(FIGURE_TITLES).toMatchObject({
      batches: 'Batch sizes over time', duplicates: 'Duplicate ratio per run', coalescing: 'Coalescing factor per run',
      retries: 'Retries and EBUSYs against invalidation rate', histogram: 'Histogram of batch sizes',
    });
  });

  it('draws as many lines and bars as runs', () => {
    expect(count(svgById(html, 'fig-batches'), /<polyline class="series"/g)).toBe(3);
    expect(count(svgById(html, 'fig-duplicates'), /<rect class="bar"/g)).toBe(3);
    const coal = svgById(html, 'fig-coalescing');
    expect(count(coal, /<rect class="bar"/g)).toBe(3);
    expect(coal).toContain('>90<'); // the value labels
    // retries: one protocols run → one line in each panel (retries, EBUSYs, fallbacks); a cross for the failed run
    const ret = svgById(html, 'fig-retries');
    expect(count(ret, /<polyline class="series"/g)).toBe(3);
    expect(count(ret, /class="marker cross"/g)).toBe(3);
    // histogram of fetched: 100 → 64–127, 128 ×3 → 128–255, 256 ×2 → 256–511
    const hist = svgById(html, 'fig-histogram');
    expect(count(hist, /<rect class="bar"/g)).toBe(3);
    expect(hist).toContain('data-category="128–255"');
  });

  it('retries plot: one line per protocol against the storm rate (protocols preset)', () => {
    const runs = ['seq', 'valid-flag', 'lock-fallback'].flatMap((p) => [0, 100, 1000, 5000].map((stormRate) =>
      fakeResult(config({ preset: 'protocols', protocol: p as 'seq', stormRate }))));
    const r: ExperimentReport = { ...report, runs };
    const svg = toSvgFigure(r, 'retries');
    expect(count(svg, /<polyline class="series"/g)).toBe(3 * 3);
    for (const p of ['seq', 'valid-flag', 'lock-fallback']) expect(svg).toContain(`data-series="${p}"`);
    for (const rate of ['0', '100', '1000', '5000']) expect(svg).toContain(`>${rate}</text>`);
    expect(xmlProblem(svg)).toBeNull();
  });

  it('retries plot fills from runs of any preset when there is no protocols sweep (the lab\'s runs, issue 10)', () => {
    const runs = [
      result(config({ preset: 'demo', protocol: 'seq', stormRate: 1000 }), [rec(0, 0, { fetched: 10, unique: 10, rangeFaults: 1, retries: 3 })]),
      result(config({ preset: 'demo', protocol: 'valid-flag', stormRate: 1000 }), [rec(0, 0, { fetched: 10, unique: 10, rangeFaults: 1, retries: 5, ebusy: 1 })]),
    ];
    const svg = toSvgFigure({ ...report, runs }, 'retries');
    expect(svg).not.toContain('class="empty"');
    expect(count(svg, /<polyline class="series"/g)).toBe(2 * 3);
    for (const p of ['seq', 'valid-flag']) expect(svg).toContain(`data-series="${p}"`);
  });

  it('legends are never clipped: the figure is wide enough for the longest name', () => {
    const long = 'a run label that is much longer than the old 260-pixel legend allowed for';
    const svg = figure([{ kind: 'line', xLabel: 'x', yLabel: 'y', series: [{ name: long, points: [[0, 1], [1, 2]] }, { name: 'b', points: [[0, 2]] }] }], { title: 't' });
    const width = Number(/<svg[^>]* width="(\d+)"/.exec(svg)?.[1]);
    const legendX = Number(/class="legend"[^>]*translate\(([\d.]+)/.exec(svg)?.[1]);
    const shown = /class="legend"[\s\S]*?<text[^>]*>([^<]*)<\/text>/.exec(svg)?.[1] ?? '';
    expect(legendX + 28 + shown.length * 6.2).toBeLessThanOrEqual(width);
    expect(svg).toContain(`<title>${long}</title>`);
  });

  it('standalone SVG figures parse as XML and carry the SVG namespace', () => {
    for (const f of FIGURES) {
      const svg = toSvgFigure(report, f);
      expect(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      expect(xmlProblem(svg), f).toBeNull();
    }
  });

  it('escapes labels and survives empty reports', () => {
    const weird = syntheticReport();
    weird.adapter = '<b>"GPU" & co</b>';
    weird.runs[0].error = 'a <b> & "c"';
    weird.runs[0].ok = false;
    const h = toHtml(weird);
    expect(h).toContain('&lt;b&gt;&quot;GPU&quot; &amp; co&lt;/b&gt;');
    expect(h).not.toContain('<b>');
    const empty: ExperimentReport = { ...report, runs: [] };
    expect(count(toHtml(empty), /<svg[ >]/g)).toBe(0);
    for (const f of FIGURES) expect(xmlProblem(toSvgFigure(empty, f))).toBeNull();
  });

  it('includes the mm preset table when present', () => {
    const r: ExperimentReport = {
      ...report, mm: [{ scheme: 'seq', rounds: 10, committed: 10, retries: 4, stalePfnsCommitted: 0, ms: 3 }],
      mmOptions: { pages: 16, rounds: 10, seed: 1 },
    };
    expect(toHtml(r)).toMatch(/<td>seq<\/td><td class="num">10<\/td><td class="num">4<\/td><td class="num">0<\/td>/);
  });
});

describe('svg-plot', () => {
  it('nice ticks cover the range in 1/2/5 steps', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 97)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0, 0)).toEqual([0, 1]);
    const t = niceTicks(3, 3);
    expect(t[0]).toBeLessThanOrEqual(3);
    expect(t[t.length - 1]).toBeGreaterThanOrEqual(3);
  });

  it('line and bar charts: one polyline per series, one rect per value, legend, well-formed', () => {
    const line = figure([{
      kind: 'line', xLabel: 'x', yLabel: 'y', series: [
        { name: 'a', points: [[0, 1], [1, 3], [2, 2]] },
        { name: 'b & c', points: Array.from({ length: 5000 }, (_, i) => [i, i % 7] as [number, number]) },
      ],
    }], { title: 'T', caption: 'what it shows', standalone: true });
    expect(count(line, /<polyline class="series"/g)).toBe(2);
    expect(xmlProblem(line)).toBeNull();
    expect(line).toContain('>b &amp; c</text>'); // legend entry
    const pts = /data-series="b &amp; c"[^>]*points="([^"]*)"/.exec(line)![1].split(' ');
    expect(pts.length).toBeLessThanOrEqual(801); // decimated
    const bars = barChart({
      xLabel: 'x', yLabel: 'y', categories: ['p', 'q', 'r'], series: [{ name: 's', values: [1, null, 3] }, { name: 't', values: [2, 2, 2] }],
    }, { title: 'B', standalone: true });
    expect(count(bars, /<rect class="bar"/g)).toBe(5);
    expect(bars).toContain('>n/a<');
    expect(xmlProblem(bars)).toBeNull();
  });

  it('the XML check catches what it should', () => {
    expect(xmlProblem('<svg><g></svg>')).toMatch(/closes/);
    expect(xmlProblem('<svg a="1" a="2"/>')).toMatch(/repeated/);
    expect(xmlProblem('<svg a=1/>')).toMatch(/bad attribute/);
    expect(xmlProblem('<svg>a & b</svg>')).toMatch(/entity/);
    expect(xmlProblem('<svg/><svg/>')).toMatch(/second root/);
    expect(xmlProblem('<svg>')).toMatch(/unclosed/);
    expect(xmlProblem('<?xml version="1.0"?>\n<svg xmlns="x"><text x="1">&lt;&#39;</text></svg>\n')).toBeNull();
  });

  it('rec helper sanity', () => {
    expect(rec(2, 5, { fetched: 3 })).toMatchObject({ index: 2, t: 5, round: 2, fetched: 3, unique: 0 });
  });
});

describe('the policy table (issue 9)', () => {
  it('rows for runs with a policy, ratios to first touch on the same workload and oversubscription; CSV and HTML', async () => {
    const { csvField, htmlPolicyTable, policyRows, policyTable, toPolicyCsv } = await import('../../src/experiment/report.js');
    const p = (simTimeNs: number, bytes: number) => ({
      policy: 'x', devicePages: 10, simTimeNs, bytesToDevice: bytes, bytesToHost: 0, farFaults: 4, faultRecords: 4, faultGroups: 1, cpuFaults: 0,
      thrashingEvents: 0, throttles: 0, pins: 0, evictions: 0, evictedPages: 0, prefetchedPages: 0, prefetchHits: 0, remotePages: 0,
      migratedIn: 0, evictedOut: 0, skipped: 0, mappedFrees: 0, faultServiceMs: 10, policyMs: 1, moveMs: 2, serviceMs: 3,
      simFaultsPerWallSec: 40, policyStats: {},
    });
    const report: ExperimentReport = {
      ...syntheticReport(),
      runs: [
        result(config({ preset: 'policies', policy: 'first-touch', oversub: 1.5 }), [], { policy: p(2_000_000, 8192) }),
        result(config({ preset: 'policies', policy: 'remote-only', oversub: 1.5 }), [], { policy: p(1_000_000, 0) }),
        result(config({ preset: 'policies', policy: 'remote-only', oversub: 1 }), [], { policy: p(1_000_000, 0) }),
        result(config({ preset: 'coalescing' }), []),
      ],
    };
    const rows = policyRows(report);
    expect(rows.map((r) => [r.policy, r.oversub, r.timeVsFirstTouch, r.bytesVsFirstTouch])).toEqual([
      ['first-touch', 1.5, 1, 1], ['remote-only', 1.5, 0.5, 0], ['remote-only', 1, null, null],
    ]);
    expect(policyTable(report)).toContain('| 2 | stream | remote-only | 1.5x | 1 | 1.00 | 0.50 |');
    const csv = toPolicyCsv(report, csvField).split('\n');
    expect(csv[0]).toContain('sim_time_ns,time_vs_first_touch,bytes_to_device');
    expect(csv.length).toBe(5); // header, 3 rows, trailing newline
    expect(htmlPolicyTable(report)).toContain('<h2>Migration policies</h2>');
    expect(toPolicyCsv(syntheticReport(), csvField)).toBe('');
  });
});
