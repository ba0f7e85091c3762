/**
 * A small SVG plotting helper for the experiment's report: line charts and (grouped) bar
 * charts with axes, ticks, labels, a legend, a title and a one-line caption. Pure string
 * building — no DOM, no node: imports — so the report renders the same in Node and in a
 * browser. Styling is done with presentation attributes (no <style>, no scripts, no
 * external references), so a chart pasted into HTML or written as a .svg file looks the same.
 *
 * Charts are made of panels: `lineChart` / `barChart` are one panel with a title; `figure`
 * puts several panels side by side under one title and caption with a shared legend.
 *
 * Numbers and ticks come from d3-format and d3-array; the drawing stays hand-written.
 */
import { extent, nice, ticks } from 'd3-array';
import { formatLocale } from 'd3-format';

export const PALETTE = [
  '#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
] as const;

const FONT = 'system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif';
const CHAR_W = 6.2; // rough width of a 11px character, for layout
const TITLE_H = 26;
const CAPTION_H = 22;

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A coordinate, rounded to 0.1 px. */
function n(v: number): string {
  return String(Math.round(v * 10) / 10);
}

/** d3-format with an ASCII minus (d3's default is U+2212), so labels stay plain text. */
const LOCALE = formatLocale({ decimal: '.', thousands: ',', grouping: [3], currency: ['', ''], minus: '-' });
const fixed0 = LOCALE.format('.0f');
const fixed1 = LOCALE.format('.1~f');
const fixed2 = LOCALE.format('.2~f');
const sig3 = LOCALE.format('.3~r');

/** Compact tick/label number: 1234 → 1234, 12345 → 12.3k, 2e6 → 2M, 0.125 → 0.125. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e9) return `${fixed2(v / 1e9)}G`;
  if (a >= 1e6) return `${fixed2(v / 1e6)}M`;
  if (a >= 1e4) return `${fixed1(v / 1e3)}k`;
  if (a >= 100 || a === 0) return fixed0(v);
  if (a >= 1) return fixed2(v);
  return sig3(v);
}

/**
 * "Nice" ticks (d3-array's 1, 2, 5 × 10^k steps) covering [lo, hi]: the domain is widened
 * to whole steps first (d3's nice), so the first tick is ≤ lo and the last ≥ hi.
 */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    if (lo === 0) return [0, 1];
    const pad = Math.abs(lo) * 0.5;
    lo -= pad;
    hi += pad;
    if (lo < 0 && lo + pad >= 0) lo = 0;
  }
  const [nlo, nhi] = nice(lo, hi, count);
  const out = ticks(nlo, nhi, count);
  if (out.length < 2) return [nlo, nhi];
  return out;
}

/**
 * At most `max` points, keeping each bucket's first, min and max points (in x order) so that
 * spikes survive. Points must be sorted by x.
 */
function decimate(points: readonly [number, number][], max: number): [number, number][] {
  if (points.length <= max) return points.slice();
  const buckets = Math.max(1, Math.floor(max / 3));
  const size = points.length / buckets;
  const out: [number, number][] = [];
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor(b * size);
    const to = Math.min(points.length, Math.floor((b + 1) * size));
    if (from >= to) continue;
    let lo = from;
    let hi = from;
    for (let i = from; i < to; i++) {
      if (points[i][1] < points[lo][1]) lo = i;
      if (points[i][1] > points[hi][1]) hi = i;
    }
    for (const i of [...new Set([from, lo, hi])].sort((a, c) => a - c)) out.push(points[i]);
  }
  const last = points[points.length - 1];
  if (out[out.length - 1] !== last) out.push(last);
  return out;
}

export interface LinePoint {
  x: number;
  y: number;
  /** Draw this point's marker as a cross (e.g. a run that ended in an error). */
  cross?: boolean;
}

export interface LineSeries {
  name: string;
  points: readonly (LinePoint | [number, number])[];
  color?: string;
  /** SVG stroke-dasharray, e.g. '6 4'. */
  dash?: string;
}

export interface LinePanel {
  kind: 'line';
  /** Panel heading (for multi-panel figures); optional for single charts (the chart title covers it). */
  heading?: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  /** Categorical x axis: a point's x is an index into these labels, spaced evenly. */
  xCategories?: readonly string[];
  /** Draw a marker at every point (default: only when a series has ≤ 40 points). */
  markers?: boolean;
  /** Decimate series longer than this (default 800 points). */
  maxPoints?: number;
  /** Shown in the plot area when there is nothing to draw. */
  emptyMessage?: string;
}

export interface BarSeries {
  name: string;
  /** One value per category; null = no bar (drawn as "n/a"). */
  values: readonly (number | null)[];
  color?: string;
  /** Per-bar colours (e.g. by preset), overriding `color`. */
  colors?: readonly string[];
}

export interface BarPanel {
  kind: 'bar';
  heading?: string;
  xLabel: string;
  yLabel: string;
  categories: readonly string[];
  series: readonly BarSeries[];
  /** Write each bar's value above it (default: when there are ≤ 24 bars). */
  valueLabels?: boolean;
  /** Format for value labels (default formatNumber). */
  format?: (v: number) => string;
  emptyMessage?: string;
}

export type Panel = LinePanel | BarPanel;

export interface FigureOptions {
  title: string;
  /** One line under the chart saying what it shows. */
  caption?: string;
  /** Size of each panel, px. */
  panelWidth?: number;
  panelHeight?: number;
  /** true: a standalone SVG document (xmlns, XML declaration) for writing to a .svg file. */
  standalone?: boolean;
  /** Legend entries; default: the union of the panels' series names (first colour/dash wins). */
  legend?: readonly { name: string; color: string; dash?: string }[];
  /** Extra attribute text for the root element (e.g. an id), already escaped. */
  id?: string;
}

interface Rendered {
  body: string;
  width: number;
  height: number;
}

interface Frame {
  left: number;
  top: number;
  width: number;
  height: number;
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${n(x)}" y="${n(y)}"${attrs ? ` ${attrs}` : ''}>${escapeXml(s)}</text>`;
}

function seriesColor(i: number, c?: string): string {
  return c ?? PALETTE[i % PALETTE.length];
}

function toPoint(p: LinePoint | [number, number]): LinePoint {
  return Array.isArray(p) ? { x: p[0], y: p[1] } : p;
}

/** Y axis with grid lines and tick labels; returns the y scale. */
function yAxis(out: string[], f: Frame, lo: number, hi: number, label: string): (v: number) => number {
  const ticks = niceTicks(lo, hi, 5);
  const t0 = ticks[0];
  const t1 = ticks[ticks.length - 1];
  const y = (v: number): number => f.top + f.height - ((v - t0) / (t1 - t0 || 1)) * f.height;
  out.push('<g class="y-axis" font-size="10" fill="#444">');
  for (const t of ticks) {
    out.push(`<line x1="${n(f.left)}" x2="${n(f.left + f.width)}" y1="${n(y(t))}" y2="${n(y(t))}" stroke="#e4e4e4" stroke-width="1"/>`);
    out.push(text(f.left - 6, y(t) + 3.5, formatNumber(t), 'text-anchor="end"'));
  }
  out.push('</g>');
  const cx = f.left - 44;
  const cy = f.top + f.height / 2;
  out.push(text(cx, cy, label, `class="axis-label" font-size="11" fill="#222" text-anchor="middle" transform="rotate(-90 ${n(cx)} ${n(cy)})"`));
  return y;
}

function axesFrame(out: string[], f: Frame): void {
  out.push(`<line x1="${n(f.left)}" x2="${n(f.left)}" y1="${n(f.top)}" y2="${n(f.top + f.height)}" stroke="#333" stroke-width="1"/>`);
  out.push(`<line x1="${n(f.left)}" x2="${n(f.left + f.width)}" y1="${n(f.top + f.height)}" y2="${n(f.top + f.height)}" stroke="#333" stroke-width="1"/>`);
}

function emptyMessage(out: string[], f: Frame, msg: string): void {
  out.push(text(f.left + f.width / 2, f.top + f.height / 2, msg, 'class="empty" font-size="12" fill="#888" text-anchor="middle"'));
}

/** Category labels under the x axis; rotated when they would not fit. Returns the height used. */
function categoryLabels(out: string[], f: Frame, labels: readonly string[], xOf: (i: number) => number, rotate: boolean): void {
  out.push('<g class="x-axis" font-size="10" fill="#444">');
  labels.forEach((l, i) => {
    const x = xOf(i);
    const y = f.top + f.height + 14;
    out.push(`<line x1="${n(x)}" x2="${n(x)}" y1="${n(f.top + f.height)}" y2="${n(f.top + f.height + 4)}" stroke="#333"/>`);
    if (rotate) {
      // Vertical, reading upwards, ending at the tick: never spills left or right of the panel.
      const short = l.length > MAX_ROTATED_CHARS ? `${l.slice(0, MAX_ROTATED_CHARS - 1)}…` : l;
      const ty = f.top + f.height + 8;
      out.push(text(x + 3.5, ty, short, `text-anchor="end" transform="rotate(-90 ${n(x + 3.5)} ${n(ty)})"`));
    } else out.push(text(x, y, l, 'text-anchor="middle"'));
  });
  out.push('</g>');
}

/** Rotated category labels longer than this are cut (the bar's tooltip has the full text). */
const MAX_ROTATED_CHARS = 42;

function rotatedLabelDepth(labels: readonly string[]): number {
  const longest = Math.min(MAX_ROTATED_CHARS, Math.max(0, ...labels.map((l) => l.length)));
  return longest * CHAR_W * 0.92 + 4;
}

function needsRotation(labels: readonly string[], plotWidth: number): boolean {
  if (labels.length === 0) return false;
  const longest = Math.max(...labels.map((l) => l.length));
  return longest * CHAR_W + 6 > plotWidth / labels.length;
}

function renderLine(p: LinePanel, width: number, plotHeight: number): Rendered {
  const out: string[] = [];
  const series = p.series.map((s) => ({ ...s, pts: s.points.map(toPoint).filter((q) => Number.isFinite(q.x) && Number.isFinite(q.y)) }));
  const all = series.flatMap((s) => s.pts);
  const cats = p.xCategories;
  const rotate = cats !== undefined && needsRotation(cats, width - 80);
  const headingH = p.heading ? 18 : 0;
  // Rotated labels make the panel taller instead of squashing the plot.
  const extra = rotate ? rotatedLabelDepth(cats ?? []) : 0;
  const height = plotHeight + extra;
  const bottom = 40 + extra;
  const f: Frame = { left: 62, top: 10 + headingH, width: width - 62 - 16, height: height - 10 - headingH - bottom };
  if (p.heading) out.push(text(f.left + f.width / 2, 14, p.heading, 'class="heading" font-size="12" font-weight="600" fill="#222" text-anchor="middle"'));

  // The y axis always shows 0, and at least one unit above the lowest value.
  const [dlo = 0, dhi = 1] = extent(all, (q) => q.y);
  const ylo = Math.min(0, dlo);
  const yhi = Math.max(dhi, ylo === 0 ? 1 : ylo + 1);
  const y = yAxis(out, f, ylo, yhi, p.yLabel);

  let x: (v: number) => number;
  if (cats !== undefined) {
    const step = f.width / Math.max(1, cats.length);
    x = (v) => f.left + step * (v + 0.5);
    categoryLabels(out, f, cats, x, rotate);
  } else {
    const [xlo = 0, xhi = 1] = extent(all, (q) => q.x);
    const xt = niceTicks(xlo, xhi, 6);
    const t0 = xt[0];
    const t1 = xt[xt.length - 1];
    x = (v) => f.left + ((v - t0) / (t1 - t0 || 1)) * f.width;
    out.push('<g class="x-axis" font-size="10" fill="#444">');
    for (const t of xt) {
      out.push(`<line x1="${n(x(t))}" x2="${n(x(t))}" y1="${n(f.top + f.height)}" y2="${n(f.top + f.height + 4)}" stroke="#333"/>`);
      out.push(text(x(t), f.top + f.height + 15, formatNumber(t), 'text-anchor="middle"'));
    }
    out.push('</g>');
  }
  out.push(text(f.left + f.width / 2, height - 6, p.xLabel, 'class="axis-label" font-size="11" fill="#222" text-anchor="middle"'));
  axesFrame(out, f);

  if (all.length === 0) emptyMessage(out, f, p.emptyMessage ?? 'no data');
  const max = p.maxPoints ?? 800;
  series.forEach((s, i) => {
    if (s.pts.length === 0) return;
    const color = seriesColor(i, s.color);
    const sorted = [...s.pts].sort((a, b) => a.x - b.x);
    const crosses = new Set(sorted.filter((q) => q.cross));
    const drawn = decimate(sorted.map((q) => [q.x, q.y] as [number, number]), max);
    const pts = drawn.map(([a, b]) => `${n(x(a))},${n(y(b))}`).join(' ');
    out.push(`<polyline class="series" data-series="${escapeXml(s.name)}" fill="none" stroke="${color}" stroke-width="1.8"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} stroke-linejoin="round" points="${pts}"/>`);
    const markers = p.markers ?? sorted.length <= 40;
    if (markers || sorted.length === 1) {
      for (const q of sorted) {
        const cx = x(q.x);
        const cy = y(q.y);
        if (crosses.has(q)) {
          out.push(`<path class="marker cross" d="M${n(cx - 4)},${n(cy - 4)}L${n(cx + 4)},${n(cy + 4)}M${n(cx - 4)},${n(cy + 4)}L${n(cx + 4)},${n(cy - 4)}" stroke="${color}" stroke-width="2"/>`);
        } else {
          out.push(`<circle class="marker" cx="${n(cx)}" cy="${n(cy)}" r="3" fill="${color}"/>`);
        }
      }
    }
  });
  return { body: out.join('\n'), width, height };
}

function renderBar(p: BarPanel, width: number, plotHeight: number): Rendered {
  const out: string[] = [];
  const cats = p.categories;
  const rotate = needsRotation(cats, width - 80);
  const headingH = p.heading ? 18 : 0;
  const extra = rotate ? rotatedLabelDepth(cats) : 0;
  const height = plotHeight + extra;
  const bottom = 40 + extra;
  const f: Frame = { left: 62, top: 10 + headingH, width: width - 62 - 16, height: height - 10 - headingH - bottom };
  if (p.heading) out.push(text(f.left + f.width / 2, 14, p.heading, 'class="heading" font-size="12" font-weight="600" fill="#222" text-anchor="middle"'));
  const vals = p.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const [vlo = 0, vhi = 0] = extent(vals);
  const ylo = Math.min(0, vlo);
  const yhi = Math.max(ylo === 0 ? 0 : ylo + 1, vhi);
  const y = yAxis(out, f, ylo, yhi === ylo ? ylo + 1 : yhi, p.yLabel);
  const step = f.width / Math.max(1, cats.length);
  const xOf = (i: number): number => f.left + step * (i + 0.5);
  categoryLabels(out, f, cats, xOf, rotate);
  out.push(text(f.left + f.width / 2, height - 6, p.xLabel, 'class="axis-label" font-size="11" fill="#222" text-anchor="middle"'));
  if (cats.length === 0 || p.series.length === 0) emptyMessage(out, f, p.emptyMessage ?? 'no data');
  const k = Math.max(1, p.series.length);
  const groupW = step * 0.8;
  const barW = groupW / k;
  const fmt = p.format ?? formatNumber;
  const labels = p.valueLabels ?? cats.length * k <= 24;
  const zero = y(Math.max(0, ylo));
  p.series.forEach((s, si) => {
    s.values.forEach((v, ci) => {
      if (ci >= cats.length) return;
      const color = s.colors?.[ci] ?? seriesColor(si, s.color);
      const x0 = xOf(ci) - groupW / 2 + si * barW;
      if (v === null || !Number.isFinite(v)) {
        out.push(text(x0 + barW / 2, zero - 3, 'n/a', 'class="na" font-size="9" fill="#999" text-anchor="middle"'));
        return;
      }
      const top = Math.min(y(v), zero);
      const h = Math.abs(zero - y(v));
      out.push(`<rect class="bar" data-series="${escapeXml(s.name)}" data-category="${escapeXml(cats[ci])}" x="${n(x0 + 0.5)}" y="${n(top)}" width="${n(Math.max(1, barW - 1))}" height="${n(h)}" fill="${color}"><title>${escapeXml(`${s.name === '' ? '' : `${s.name}, `}${cats[ci]}: ${fmt(v)}`)}</title></rect>`);
      if (labels && !(v === 0 && k > 1)) out.push(text(x0 + barW / 2, top - 3, fmt(v), 'class="value" font-size="9" fill="#333" text-anchor="middle"'));
    });
  });
  axesFrame(out, f);
  return { body: out.join('\n'), width, height };
}

function legendOf(panels: readonly Panel[]): { name: string; color: string; dash?: string }[] {
  const seen = new Map<string, { name: string; color: string; dash?: string }>();
  for (const p of panels) {
    p.series.forEach((s, i) => {
      if (s.name === '' || seen.has(s.name)) return;
      seen.set(s.name, { name: s.name, color: seriesColor(i, s.color), dash: 'dash' in s ? s.dash : undefined });
    });
  }
  return [...seen.values()];
}

const LEGEND_CHARS = 48;
function legendName(s: string): string {
  return s.length > LEGEND_CHARS ? `${s.slice(0, LEGEND_CHARS - 1)}…` : s;
}

/** Several panels side by side under one title, with a legend on the right and the caption below. */
export function figure(panels: readonly Panel[], opts: FigureOptions): string {
  const pw = opts.panelWidth ?? 640;
  const ph = opts.panelHeight ?? 320;
  const rendered = panels.map((p) => (p.kind === 'line' ? renderLine(p, pw, ph) : renderBar(p, pw, ph)));
  const legend = opts.legend ?? legendOf(panels);
  const showLegend = legend.length > 1 || (legend.length === 1 && panels.some((p) => p.kind === 'line'));
  // Wide enough for every name (long ones are cut with an ellipsis, their full text in a <title>).
  const legendW = showLegend ? 34 + Math.max(...legend.map((l) => legendName(l.name).length)) * CHAR_W + 8 : 0;
  const legendH = showLegend ? 8 + legend.length * 16 : 0;
  const panelsW = rendered.reduce((a, r) => a + r.width, 0);
  const panelsH = Math.max(0, ...rendered.map((r) => r.height));
  const width = Math.ceil(Math.max(panelsW + legendW + 8, opts.caption ? opts.caption.length * CHAR_W * 0.95 + 24 : 0));
  const height = Math.ceil(TITLE_H + Math.max(panelsH, legendH) + (opts.caption ? CAPTION_H : 6));
  const out: string[] = [];
  if (opts.standalone) out.push('<?xml version="1.0" encoding="UTF-8"?>');
  const ns = opts.standalone ? ' xmlns="http://www.w3.org/2000/svg"' : '';
  out.push(`<svg${ns}${opts.id ? ` id="${escapeXml(opts.id)}"` : ''} class="chart" role="img" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`);
  out.push(`<title>${escapeXml(opts.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(text(width / 2, 18, opts.title, 'class="title" font-size="14" font-weight="700" fill="#111" text-anchor="middle"'));
  let x = 0;
  for (const r of rendered) {
    out.push(`<g class="panel" transform="translate(${n(x)} ${TITLE_H})">`);
    out.push(r.body);
    out.push('</g>');
    x += r.width;
  }
  if (showLegend) {
    out.push(`<g class="legend" font-size="11" fill="#222" transform="translate(${n(panelsW + 4)} ${TITLE_H + 8})">`);
    legend.forEach((l, i) => {
      const ly = i * 16;
      out.push(`<line x1="0" x2="22" y1="${ly + 6}" y2="${ly + 6}" stroke="${l.color}" stroke-width="${panels.every((p) => p.kind === 'bar') ? 8 : 2.5}"${l.dash ? ` stroke-dasharray="${l.dash}"` : ''}/>`);
      const shown = legendName(l.name);
      out.push(shown === l.name ? text(28, ly + 10, l.name) : `<g>${text(28, ly + 10, shown)}<title>${escapeXml(l.name)}</title></g>`);
    });
    out.push('</g>');
  }
  if (opts.caption) out.push(text(12, height - 8, opts.caption, 'class="caption" font-size="11" font-style="italic" fill="#444"'));
  out.push('</svg>');
  return out.join('\n');
}

export interface ChartOptions {
  title: string;
  caption?: string;
  width?: number;
  height?: number;
  standalone?: boolean;
  id?: string;
}

/** One bar chart: a bar per category, grouped when there are several series. */
export function barChart(panel: Omit<BarPanel, 'kind'>, opts: ChartOptions): string {
  return figure([{ kind: 'bar', ...panel }], { ...opts, panelWidth: opts.width, panelHeight: opts.height });
}
