// The timeline, the heat map and the fault scatter: canvases on the shared time axis
// (timebase.ts). Drag to zoom, double-click for the whole run, Shift+drag (or the arrow
// keys) to pan; every uPlot chart follows. The selected range's statistics show below.
//   timeline   rounds (ticks), batches as spans with the service's parts nested (fetch,
//              mmap-lock wait and hold, coalesce, policy, migration, hmm_range_fault,
//              mirror update), invalidations as instants, migrations each way as marks
//   heat map   page × time: each column an address-space snapshot, GPU state colours
//              (the CPU's state, paler, where the mirror maps nothing)
//   scatter    each round's fault addresses at the round's time (uvm-eval's Fault.py view):
//              reads blue, writes red, protection faults hollow
import type { ServicePhase } from '../src/driver/records.js';
import type { LiveRun } from '../src/lab/view.js';
import { CPU_COLORS, GPU_COLORS } from './live.js';
import { el, fmt } from './dom.js';
import { batchTimes, timebase, visible } from './timebase.js';

const LEFT = 90;

type Draw = (g: CanvasRenderingContext2D, r: LiveRun, x: (t: number) => number, w: number, h: number) => void;

function setupCanvas(c: HTMLCanvasElement, height: number): { g: CanvasRenderingContext2D | null; w: number; h: number } {
  const w = Math.max(240, Math.floor(c.clientWidth || c.parentElement?.clientWidth || 600));
  c.width = w;
  c.height = height;
  const g = c.getContext('2d');
  g?.clearRect(0, 0, w, height);
  return { g, w, h: height };
}

function axis(g: CanvasRenderingContext2D, lo: number, hi: number, w: number, h: number): void {
  g.fillStyle = '#555';
  g.font = '11px system-ui, sans-serif';
  g.strokeStyle = '#ddd';
  for (let i = 0; i <= 4; i++) {
    const t = lo + ((hi - lo) * i) / 4;
    const x = LEFT + ((w - LEFT - 8) * i) / 4;
    g.beginPath();
    g.moveTo(x, 0);
    g.lineTo(x, h - 14);
    g.stroke();
    g.fillText(t.toFixed(t < 10 ? 2 : 0), Math.min(x, w - 40), h - 2);
  }
}

/** The service parts' colours (the timeline's legend lists them). */
export const PHASE_COLORS: Record<ServicePhase, string> = {
  fetch: '#9e9e9e', 'mmap lock wait': '#f9a825', 'mmap lock held': '#c8e6c9', coalesce: '#8e24aa', policy: '#6d4c41',
  migration: '#2e7d32', hmm_range_fault: '#00695c', 'mirror update': '#0277bd',
};

const timelineDraw: Draw = (g, r, x, w) => {
  const sim = timebase.axis === 'sim';
  let parts = 0;
  g.fillStyle = '#555';
  for (const rd of r.rounds) g.fillRect(x(sim ? rd.simMs : rd.wallMs), 4, 1, 14);
  const ends = batchTimes(r);
  for (let i = 0; i < ends.length; i++) {
    const rec = r.records[i];
    const start = sim ? r.series.simStart[i] : ends[i] - rec.serviceMs;
    const x0 = x(start);
    const x1 = Math.max(x0 + 1, x(sim ? r.series.simEnd[i] : ends[i]));
    // Two processes: P0 in the lane's upper half (blue), P1 in the lower (purple).
    const proc = r.series.proc[i] ?? 0;
    const two = r.processes > 1;
    g.fillStyle = rec.retries > 0 || rec.ebusy > 0 ? '#ef6c00' : proc === 0 ? '#1565c0' : '#7b1fa2';
    g.fillRect(x0, two ? 26 + proc * 7 : 26, x1 - x0, two ? 6 : 14);
    // The service's parts (the record's spans: src/driver/phases.ts), nested in the batch's
    // span in proportion: the lock's hold as a band, the parts under it on top.
    const span = x1 - x0;
    const f = rec.serviceMs > 0 ? span / rec.serviceMs : 0;
    const spans = rec.spans ?? [
      { phase: 'mmap lock wait' as const, start: 0, end: rec.mmapLockWaitMs },
      { phase: 'mmap lock held' as const, start: rec.mmapLockWaitMs, end: rec.mmapLockWaitMs + rec.mmapLockHoldMs },
    ];
    // The hold first: the parts under the lock draw over its band.
    for (const sp of [...spans].sort((a, b) => Number(b.phase === 'mmap lock held') - Number(a.phase === 'mmap lock held'))) {
      const held = sp.phase === 'mmap lock held';
      g.fillStyle = PHASE_COLORS[sp.phase];
      g.fillRect(x0 + sp.start * f, held ? 46 : 48, Math.max(held ? 0 : 0.5, (sp.end - sp.start) * f), held ? 18 : 14);
      parts++;
    }
    if (r.series.toDevice[i] > 0) { g.fillStyle = '#2e7d32'; g.fillRect(x(ends[i]) - 1, 92, 3, 7); }
    if (r.series.toHost[i] > 0) { g.fillStyle = '#1565c0'; g.fillRect(x(ends[i]) - 1, 100, 3, 7); }
  }
  g.fillStyle = '#d32f2f';
  for (const t of sim ? r.invalidations.simMs : r.invalidations.wallMs) g.fillRect(x(t), 70, 1, 14);
  g.canvas.dataset.spans = String(parts);
  void w;
};

const heatDraw: Draw = (g, r, x, w, h) => {
  const pages = r.buffer.pages;
  if (pages === 0) return;
  const sim = timebase.axis === 'sim';
  const rowsH = h - 16;
  const frames = r.frames;
  const img = g.createImageData(w - LEFT, rowsH);
  const rgb = (hex: string, pale: boolean): [number, number, number] => {
    const v = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    return pale ? v.map((c) => Math.round(c + (255 - c) * 0.6)) as [number, number, number] : v as [number, number, number];
  };
  const gpuRgb = GPU_COLORS.map((c) => rgb(c, false));
  const cpuRgb = CPU_COLORS.map((c) => rgb(c, true));
  for (let f = 0; f < frames.length; f++) {
    const t0 = sim ? frames[f].simMs : frames[f].wallMs;
    const t1 = f + 1 < frames.length ? (sim ? frames[f + 1].simMs : frames[f + 1].wallMs) : t0;
    const c0 = Math.max(0, Math.floor(x(t0)) - LEFT);
    const c1 = Math.min(w - LEFT, Math.max(c0 + 1, Math.ceil(x(t1)) - LEFT));
    for (let y = 0; y < rowsH; y++) {
      const p = Math.min(pages - 1, Math.floor((y * pages) / rowsH));
      const gs = frames[f].gpu[p];
      const col = gs !== 0 ? gpuRgb[gs] : cpuRgb[frames[f].cpu[p]];
      for (let c = c0; c < c1; c++) {
        const o = (y * (w - LEFT) + c) * 4;
        img.data[o] = col[0];
        img.data[o + 1] = col[1];
        img.data[o + 2] = col[2];
        img.data[o + 3] = 255;
      }
    }
  }
  g.putImageData(img, LEFT, 0);
};

/** Points the scatter draws at most: longer runs show every k-th round (k in the figure's data). */
export const MAX_SCATTER_POINTS = 40_000;

const scatterDraw: Draw = (g, r, x, _w, h) => {
  const pages = r.buffer.pages;
  if (pages === 0) return;
  const sim = timebase.axis === 'sim';
  const rowsH = h - 16;
  let n = 0;
  let all = 0;
  for (const rd of r.rounds) all += rd.history.pages.length;
  const every = Math.max(1, Math.ceil(all / MAX_SCATTER_POINTS));
  g.canvas.dataset.every = String(every);
  for (let k = 0; k < r.rounds.length; k += every) {
    const rd = r.rounds[k];
    const px = x(sim ? rd.simMs : rd.wallMs);
    const { pages: ps, access } = rd.history;
    for (let i = 0; i < ps.length; i++) {
      const y = Math.floor((ps[i] * rowsH) / pages);
      const a = access[i] & 3;
      g.fillStyle = a === 1 ? '#1565c0' : a === 2 ? '#c62828' : '#f9a825';
      if (access[i] & 4) g.strokeRect(px - 1, y - 1, 3, 3);
      else g.fillRect(px - 1, y, 2, 2);
      n++;
    }
  }
  g.canvas.dataset.points = String(n);
};

/** Two processes: a line between P0's pages and P1's, and their names. */
function processRows(g: CanvasRenderingContext2D, r: LiveRun, w: number, h: number): void {
  if (r.processes < 2) return;
  const rowsH = h - 16;
  g.fillStyle = '#000';
  for (let p = 1; p < r.processes; p++) g.fillRect(LEFT, Math.floor((p * rowsH) / r.processes), w - LEFT, 1);
  for (let p = 0; p < r.processes; p++) g.fillText(`P${p}`, 50, Math.floor((p * rowsH) / r.processes) + 24);
}

const VIEWS: { id: string; height: number; draw: Draw }[] = [
  { id: 'timeline', height: 124, draw: timelineDraw },
  { id: 'heatmap', height: 180, draw: heatDraw },
  { id: 'scatter', height: 180, draw: scatterDraw },
];

let last: LiveRun | null = null;
let drawnAt = 0;
let pending: ReturnType<typeof setTimeout> | null = null;
/** While a run streams, the canvases redraw at most this often (they are the page's heaviest drawing). */
const LIVE_REDRAW_MS = 250;

export function drawTimeline(r: LiveRun | null): void {
  last = r;
  const now = performance.now();
  if (r !== null && r.result === null && now - drawnAt < LIVE_REDRAW_MS) {
    pending ??= setTimeout(() => { pending = null; drawTimeline(last); }, LIVE_REDRAW_MS);
    return;
  }
  drawnAt = now;
  const [lo, hi] = visible([r]);
  for (const v of VIEWS) {
    const c = el<HTMLCanvasElement>(v.id);
    const { g, w, h } = setupCanvas(c, v.height);
    c.dataset.xMin = String(lo);
    c.dataset.xMax = String(hi);
    if (!g) continue;
    g.font = '11px system-ui, sans-serif';
    axis(g, lo, hi, w, h);
    if (r === null) continue;
    const x = (t: number): number => LEFT + ((t - lo) / (hi - lo)) * (w - LEFT - 8);
    g.save();
    g.beginPath();
    g.rect(LEFT, 0, w - LEFT, h);
    g.clip();
    v.draw(g, r, x, w, h);
    g.restore();
    g.fillStyle = '#333';
    if (v.id === 'timeline') ['rounds', 'batches', 'service parts', 'invalidations', 'migrations'].forEach((name, i) => g.fillText(name, 2, 14 + i * 22));
    else if (r.buffer.pages > 0) {
      g.fillText('page 0', 2, 12);
      g.fillText(`page ${r.buffer.pages / r.processes - 1}`, 2, h - 18);
      processRows(g, r, w, h);
    }
    if (v.id === 'timeline') c.dataset.processes = String(new Set(r.series.proc).size);
    c.dataset.drawn = String(r.records.length);
  }
  rangeStats(r, lo, hi);
}

function rangeStats(r: LiveRun | null, lo: number, hi: number): void {
  const box = el('range-stats');
  if (r === null) {
    box.textContent = '';
    return;
  }
  const t = batchTimes(r);
  let n = 0, fetched = 0, unique = 0, retries = 0, service = 0, calls = 0;
  for (let i = 0; i < t.length; i++) {
    if (t[i] < lo || t[i] > hi) continue;
    const rec = r.records[i];
    n++;
    fetched += rec.fetched;
    unique += rec.unique;
    retries += rec.retries;
    service += rec.serviceMs;
    calls += rec.rangeFaults;
  }
  const inv = (timebase.axis === 'sim' ? r.invalidations.simMs : r.invalidations.wallMs).filter((x) => x >= lo && x <= hi).length;
  box.dataset.batches = String(n);
  box.textContent = `${timebase.range ? 'Selected' : 'Whole run'}: ${timebase.label()} ${lo.toFixed(2)}–${hi.toFixed(2)}: ${fmt(n)} batches, ${fmt(fetched)} faults fetched, ` +
    `${fmt(unique)} unique, ${calls > 0 ? (unique / calls).toFixed(2) : '—'} unique per hmm_range_fault, ${fmt(retries)} retries, ` +
    `${n > 0 ? (service / n).toFixed(2) : '—'} ms service per batch (wall), ${fmt(inv)} invalidations`;
}

/** Drag to zoom, Shift+drag to pan, double-click for the whole run, arrows pan by a quarter. */
export function setupTimeline(): void {
  const legend = el('phase-legend');
  for (const [phase, color] of Object.entries(PHASE_COLORS)) {
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'sw';
    sw.style.background = color;
    sw.setAttribute('aria-hidden', 'true');
    li.append(sw, phase === 'mmap lock held' ? 'mmap lock held (band under the parts)' : phase);
    legend.append(li);
  }
  for (const v of VIEWS) {
    const c = el<HTMLCanvasElement>(v.id);
    let down: { x: number; range: [number, number]; pan: boolean } | null = null;
    const toT = (px: number, range: [number, number]): number => {
      const w = c.width;
      return range[0] + ((px - LEFT) / (w - LEFT - 8)) * (range[1] - range[0]);
    };
    c.addEventListener('pointerdown', (e) => {
      down = { x: e.offsetX, range: visible([last]), pan: e.shiftKey };
    });
    c.addEventListener('pointerup', (e) => {
      if (!down) return;
      const d = down;
      down = null;
      if (Math.abs(e.offsetX - d.x) < 3) return;
      if (d.pan) {
        const dt = toT(d.x, d.range) - toT(e.offsetX, d.range);
        timebase.setRange([d.range[0] + dt, d.range[1] + dt], v.id);
      } else {
        const a = toT(Math.min(d.x, e.offsetX), d.range);
        const b = toT(Math.max(d.x, e.offsetX), d.range);
        timebase.setRange([a, b], v.id);
      }
    });
    c.addEventListener('dblclick', () => timebase.setRange(null, v.id));
    c.addEventListener('keydown', (e) => {
      const r = visible([last]);
      const q = (r[1] - r[0]) / 4;
      if (e.key === 'ArrowLeft') timebase.setRange([r[0] - q, r[1] - q], v.id);
      else if (e.key === 'ArrowRight') timebase.setRange([r[0] + q, r[1] + q], v.id);
      else if (e.key === 'Escape') timebase.setRange(null, v.id);
    });
  }
  timebase.listen(() => drawTimeline(last));
  for (const input of Array.from(document.querySelectorAll<HTMLInputElement>("input[name=axis]"))) {
    input.addEventListener('change', () => { if (input.checked) timebase.setAxis(input.value === 'wall' ? 'wall' : 'sim'); });
  }
}
