// The live plots (uPlot) and the address-space strip: drawing only, fed from LiveRun.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { PAGE_STATE_NAMES } from '../src/lab/snapshot.js';
import type { MirrorSnapshot } from '../src/lab/snapshot.js';
import type { LiveRun, Series } from '../src/lab/view.js';

/** One colour per state; the legend beside the strip gives each its name and count. */
export const STATE_COLORS = ['#e6e6e6', '#9e9e9e', '#64b5f6', '#0d47a1', '#2e7d32', '#f9a825', '#d32f2f', '#6a1b9a'];

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
    id: 'time', title: 'Simulated and wall time', y: 'ms since start', series: [
      { label: 'simulated ms', key: 'simMs', color: '#00838f', points: true },
      { label: 'wall ms', key: 'wallMs', color: '#455a64', dash: [8, 4] },
    ],
  },
];

function widthOf(el: HTMLElement): number {
  return Math.max(240, Math.floor(el.clientWidth || 320));
}

export class Plots {
  readonly #charts = new Map<string, uPlot>();
  readonly #host: HTMLElement;
  #pinnedLabel = '';

  constructor(host: HTMLElement) {
    this.#host = host;
    this.build(false);
    new ResizeObserver(() => {
      for (const [id, u] of this.#charts) {
        const box = document.getElementById(`plot-${id}`);
        if (box) u.setSize({ width: widthOf(box), height: 200 });
      }
    }).observe(host);
  }

  /** (Re)creates the charts; with a pinned run each gets its first series again, grey and dotted. */
  build(pinned: boolean, pinnedLabel = ''): void {
    this.#pinnedLabel = pinnedLabel;
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
      box.setAttribute('aria-label', `${p.title}: ${p.series.map((s) => s.label).join(', ')} against batch number`);
      this.#host.append(box);
      const series: uPlot.Series[] = [{ label: 'batch' }];
      for (const s of p.series) {
        series.push({ label: `${s.label} (${s.dash ? (s.dash[0] > 4 ? 'dashed' : 'dotted') : 'solid'}${s.points ? ', dots' : ''})`, stroke: s.color, width: 2, dash: s.dash, points: { show: s.points ?? false, size: 5 }, spanGaps: true });
      }
      if (pinned) series.push({ label: `${pinnedLabel}: ${p.series[0].label} (grey, dotted, hollow dots)`, stroke: '#888', width: 2, dash: [1, 4], spanGaps: true, points: { show: true, size: 4, fill: '#fff' } });
      const u = new uPlot({
        width: widthOf(box), height: 200, series,
        scales: { x: { time: false } },
        axes: [{ label: 'batch' }, { label: p.y, size: 56 }],
        legend: { live: false },
        cursor: { show: true },
      }, [[], ...series.slice(1).map(() => [])], box);
      this.#charts.set(p.id, u);
    }
  }

  get pinnedLabel(): string {
    return this.#pinnedLabel;
  }

  /** Redraws every chart from the current run (and the pinned one). */
  draw(run: LiveRun | null, pinned: LiveRun | null): void {
    for (const p of PLOTS) {
      const u = this.#charts.get(p.id);
      if (!u) continue;
      const cur = run?.series;
      const pin = pinned?.series;
      const n = Math.max(cur?.batch.length ?? 0, pin?.batch.length ?? 0);
      const x = Array.from({ length: n }, (_, i) => i);
      const col = (s: Series | undefined, key: keyof Series): (number | null)[] => x.map((i) => (s && i < s.batch.length ? (s[key][i] as number | null) : null));
      const data: (number | null)[][] = [x, ...p.series.map((s) => col(cur, s.key))];
      if (u.series.length > p.series.length + 1) data.push(col(pin, p.series[0].key));
      u.setData(data as uPlot.AlignedData);
      const box = document.getElementById(`plot-${p.id}`);
      if (box) box.dataset.points = String(cur?.batch.length ?? 0);
    }
  }
}

/** Draws the strip: one cell per page, in rows, coloured by state. */
export function drawStrip(canvas: HTMLCanvasElement, snap: MirrorSnapshot | null, legend: HTMLElement): void {
  const pages = snap?.pages ?? new Uint8Array(0);
  const width = Math.max(200, canvas.clientWidth || 300);
  const cell = pages.length <= 512 ? 8 : pages.length <= 2048 ? 4 : 2;
  const cols = Math.max(1, Math.floor(width / cell));
  const rows = Math.max(1, Math.ceil(pages.length / cols));
  canvas.width = cols * cell;
  canvas.height = rows * cell;
  const g = canvas.getContext('2d');
  const counts = new Array<number>(STATE_COLORS.length).fill(0);
  if (g) {
    g.fillStyle = '#fff';
    g.fillRect(0, 0, canvas.width, canvas.height);
    for (let i = 0; i < pages.length; i++) {
      const s = pages[i];
      counts[s]++;
      g.fillStyle = STATE_COLORS[s];
      g.fillRect((i % cols) * cell, Math.floor(i / cols) * cell, cell - (cell > 2 ? 1 : 0), cell - (cell > 2 ? 1 : 0));
    }
  } else {
    for (const s of pages) counts[s]++;
  }
  legend.textContent = '';
  PAGE_STATE_NAMES.forEach((name, s) => {
    const li = document.createElement('li');
    li.dataset.state = String(s);
    const sw = document.createElement('span');
    sw.className = 'sw';
    sw.style.background = STATE_COLORS[s];
    sw.setAttribute('aria-hidden', 'true');
    li.append(sw, `${name}: ${counts[s]}`);
    legend.append(li);
  });
  canvas.setAttribute('aria-label', `address space, ${pages.length} pages: ${PAGE_STATE_NAMES.map((n, s) => `${counts[s]} ${n}`).join(', ')}`);
}
