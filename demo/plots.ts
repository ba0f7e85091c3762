// The per-batch plots (uPlot) on the shared time axis (timebase.ts): x is each batch's end
// on simulated time (or wall time, toggled); zoom (drag) or reset (double-click) in any
// plot moves all of them and the timeline, heat map and scatter; hover shows every plot's
// values at the same moment (cursor sync). Pinned runs add their first series, grey.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { LiveRun, Series } from '../src/lab/view.js';
import { batchTimes, timebase } from './timebase.js';

interface SeriesSpec {
  label: string;
  key: keyof Series;
  color: string;
  /** Dash pattern and point shape tell series apart without colour. */
  dash?: number[];
  points?: boolean;
}

interface PlotSpec {
  id: string;
  title: string;
  y: string;
  series: SeriesSpec[];
}

export const PLOTS: readonly PlotSpec[] = [
  {
    id: 'faults', title: 'Faults per batch', y: 'faults', series: [
      { label: 'fetched', key: 'fetched', color: '#1565c0', points: true },
      { label: 'unique', key: 'unique', color: '#2e7d32', dash: [8, 4] },
      { label: 'duplicates', key: 'duplicates', color: '#c62828', dash: [2, 3] },
    ],
  },
  {
    id: 'coalescing', title: 'Coalescing factor (unique faults per hmm_range_fault call)', y: 'unique / call', series: [
      { label: 'coalescing factor', key: 'coalescing', color: '#6a1b9a', points: true },
    ],
  },
  {
    id: 'retries', title: 'Retries and EBUSYs (running totals)', y: 'count', series: [
      { label: 'retries', key: 'retriesTotal', color: '#ef6c00', points: true },
      { label: 'EBUSYs', key: 'ebusyTotal', color: '#b00020', dash: [8, 4] },
    ],
  },
  {
    id: 'migrations', title: 'Migrations each way and thrashing events (migration policy)', y: 'pages', series: [
      { label: 'to device', key: 'toDevice', color: '#2e7d32', points: true },
      { label: 'home', key: 'toHost', color: '#1565c0', dash: [8, 4] },
      { label: 'thrashing events', key: 'thrashing', color: '#6a1b9a', dash: [2, 3] },
    ],
  },
  {
    id: 'ring', title: 'Fault ring fill and workgroup TLB hit rate of the replay', y: '0–1', series: [
      { label: 'ring fill', key: 'ringFill', color: '#00838f', points: true },
      { label: 'TLB hit rate', key: 'tlbHitRate', color: '#5d4037', dash: [8, 4] },
    ],
  },
];

const PIN_COLORS = ['#888', '#a1887f', '#90a4ae', '#ce93d8'];

function widthOf(el: HTMLElement): number {
  return Math.max(240, Math.floor(el.clientWidth || 320));
}

export class Plots {
  readonly #charts = new Map<string, uPlot>();
  readonly #host: HTMLElement;
  #pins = 0;
  #drawing = false;

  constructor(host: HTMLElement) {
    this.#host = host;
    this.build(0);
    new ResizeObserver(() => {
      for (const [id, u] of this.#charts) {
        const box = document.getElementById(`plot-${id}`);
        if (box) u.setSize({ width: widthOf(box), height: 200 });
      }
    }).observe(host);
    timebase.listen((from) => {
      if (from === 'axis') this.build(this.#pins);
      for (const u of this.#charts.values()) {
        if (from === u.root.id) continue;
        this.#applyRange(u);
      }
    });
  }

  #applyRange(u: uPlot): void {
    this.#drawing = true;
    const r = timebase.range;
    const xs = u.data[0];
    if (r) u.setScale('x', { min: r[0], max: r[1] });
    else if (xs.length) u.setScale('x', { min: Math.min(0, xs[0]), max: xs[xs.length - 1] > 0 ? xs[xs.length - 1] : 1 });
    this.#drawing = false;
    const fig = u.root.parentElement;
    if (fig) { fig.dataset.xMin = String(u.scales.x.min ?? 0); fig.dataset.xMax = String(u.scales.x.max ?? 0); }
  }

  /** (Re)creates the charts, with `pins` pinned runs' first series in grey. */
  build(pins: number): void {
    this.#pins = pins;
    for (const u of this.#charts.values()) u.destroy();
    this.#charts.clear();
    this.#host.textContent = '';
    for (const p of PLOTS) {
      const box = document.createElement('figure');
      box.className = 'plot';
      box.id = `plot-${p.id}`;
      box.dataset.points = '0';
      const h = document.createElement('h3');
      h.textContent = p.title;
      box.append(h);
      box.setAttribute('aria-label', `${p.title}: ${p.series.map((s) => s.label).join(', ')} against ${timebase.label()}`);
      this.#host.append(box);
      const series: uPlot.Series[] = [{ label: timebase.label(), value: (_u, v) => (v == null ? '—' : v.toFixed(2)) }];
      for (const s of p.series) {
        series.push({ label: `${s.label} (${s.dash ? (s.dash[0] > 4 ? 'dashed' : 'dotted') : 'solid'}${s.points ? ', dots' : ''})`, stroke: s.color, width: 2, dash: s.dash, points: { show: s.points ?? false, size: 5 }, spanGaps: true });
      }
      for (let i = 0; i < pins; i++) {
        series.push({ label: `pinned ${i + 1}: ${p.series[0].label} (dotted, hollow dots)`, stroke: PIN_COLORS[i % PIN_COLORS.length], width: 2, dash: [1, 4], spanGaps: true, points: { show: true, size: 4, fill: '#fff' } });
      }
      const u = new uPlot({
        id: `u-${p.id}`,
        width: widthOf(box), height: 200, series,
        scales: { x: { time: false } },
        axes: [{ label: timebase.label() }, { label: p.y, size: 56 }],
        legend: { live: true },
        cursor: { show: true, sync: { key: 'mirrorlab', setSeries: false }, drag: { x: true, y: false, setScale: true } },
        hooks: {
          setScale: [(uu, key) => {
            if (key !== 'x' || this.#drawing) return;
            const min = uu.scales.x.min;
            const max = uu.scales.x.max;
            if (min == null || max == null) return;
            const fig = uu.root.parentElement;
            if (fig) { fig.dataset.xMin = String(min); fig.dataset.xMax = String(max); }
            const xs = uu.data[0];
            const full = xs.length === 0 || (min <= Math.min(0, xs[0]) && max >= xs[xs.length - 1]);
            timebase.setRange(full ? null : [min, max], uu.root.id);
          }],
        },
      }, [[], ...series.slice(1).map(() => [])], box);
      u.root.id = `u-${p.id}`;
      this.#charts.set(p.id, u);
    }
  }

  /** Redraws every chart from the current run (and the pinned ones). */
  draw(run: LiveRun | null, pinned: readonly LiveRun[]): void {
    if (pinned.length !== this.#pins) this.build(pinned.length);
    for (const p of PLOTS) {
      const u = this.#charts.get(p.id);
      if (!u) continue;
      const tables: uPlot.AlignedData[] = [];
      const own = (r: LiveRun, keys: (keyof Series)[]): uPlot.AlignedData => {
        const x = batchTimes(r).slice();
        // uPlot needs x strictly ordered: equal times (a clock that did not move) nudge apart.
        for (let i = 1; i < x.length; i++) if (x[i] <= x[i - 1]) x[i] = x[i - 1] + 1e-6;
        return [x, ...keys.map((k) => r.series[k] as (number | null)[])] as uPlot.AlignedData;
      };
      const empty: uPlot.AlignedData = [[], ...p.series.map(() => [])] as uPlot.AlignedData;
      tables.push(run ? own(run, p.series.map((s) => s.key)) : empty);
      for (const pin of pinned) tables.push(own(pin, [p.series[0].key]));
      const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
      this.#drawing = true;
      u.setData(data, timebase.range === null);
      this.#drawing = false;
      this.#applyRange(u);
      const box = document.getElementById(`plot-${p.id}`);
      if (box) box.dataset.points = String(run?.series.batch.length ?? 0);
    }
  }

  /** The x range a chart shows now (tests read it through the DOM: data-x-min/max). */
  ranges(): [number, number][] {
    return [...this.#charts.values()].map((u) => [u.scales.x.min ?? 0, u.scales.x.max ?? 0]);
  }
}
