// The live panel: counters, meters, progress and the address-space strip, drawn from the
// current run (every meter from the same snapshot, so they agree; a cleared run clears all).
import {
  bandCounts, CPU_STATE_NAMES, GPU_STATE_NAMES, GpuState, MARK_THRASHING, type MirrorSnapshot,
} from '../src/lab/snapshot.js';
import type { LiveRun } from '../src/lab/view.js';
import { el, fmt } from './dom.js';

export const CPU_COLORS = ['#eeeeee', '#90caf9', '#1565c0', '#2e7d32', '#f9a825', '#8d6e63'];
export const GPU_COLORS = ['#eeeeee', '#80cbc4', '#00695c', '#2e7d32', '#f9a825'];
const INVAL_COLOR = [211, 47, 47];
/** Snapshots an invalidation's mark takes to fade out. */
export const FADE_SNAPSHOTS = 6;

export function drawLive(r: LiveRun | null): void {
  const c = r?.counters;
  const set = (id: string, v: number): void => { el(id).textContent = fmt(v); };
  set('c-batches', c?.batches ?? 0);
  set('c-fetched', c?.fetched ?? 0);
  set('c-duplicates', c?.duplicates ?? 0);
  set('c-unique', c?.unique ?? 0);
  set('c-rangeFaults', c?.rangeFaults ?? 0);
  set('c-retries', c?.retries ?? 0);
  set('c-ebusy', c?.ebusy ?? 0);
  set('c-invalidations', c?.invalidations ?? 0);
  set('c-toDevice', c?.migrationsToDevice ?? 0);
  set('c-toHost', c?.migrationsToHost ?? 0);
  set('c-thrashing', c?.thrashingEvents ?? 0);
  set('c-stalled', c?.stalledWorkgroups ?? 0);
  el('c-bytes').textContent = `${fmt(c?.bytesToDevice ?? 0)} / ${fmt(c?.bytesToHost ?? 0)}`;
  el('c-sim').textContent = (c?.simMs ?? 0).toFixed(2);
  set('c-wall', c?.wallMs ?? 0);
  el('c-tlb').textContent = c && c.tlbLookups > 0 ? `${(((c.tlbLookups - c.tlbWalks) / c.tlbLookups) * 100).toFixed(1)} %` : '—';
  const procs = r?.processes ?? 1;
  el('c-procs-box').hidden = procs < 2;
  const pp = el('c-procs');
  pp.textContent = r && procs > 1 ? r.perProcess.map((q, i) => `P${i}: ${fmt(q.batches)} batches, ${fmt(q.unique)} unique`).join(' · ') : '—';
  r?.perProcess.forEach((q, i) => { pp.dataset[`p${i}Batches`] = String(q.batches); pp.dataset[`p${i}Unique`] = String(q.unique); });
  const snap = r?.snapshot ?? null;
  const pages = r?.buffer.pages ?? 0;
  el<HTMLMeterElement>('m-pt').value = snap && pages > 0 ? snap.gpuMapped / pages : 0;
  el('m-pt-text').textContent = snap ? `${snap.gpuMapped} of ${pages} pages mapped (${snap.pageTable.leaves} leaf entr${snap.pageTable.leaves === 1 ? 'y' : 'ies'}${snap.pageTable.hugeLeaves ? `, ${snap.pageTable.hugeLeaves} huge` : ''}, ${snap.pageTable.tables} table(s))` : '—';
  el('m-pt-text').dataset.mapped = String(snap?.gpuMapped ?? 0);
  el<HTMLMeterElement>('m-ap').value = snap && snap.aperture.slots > 0 ? snap.aperture.used / snap.aperture.slots : 0;
  el('m-ap-text').textContent = snap ? `${snap.aperture.used} of ${snap.aperture.slots}` : '—';
  const each = pages / procs;
  el('strip-vma').textContent = r && pages > 0
    ? `${procs > 1 ? `${procs} processes, each its own ` : ''}VMA [0x${r.buffer.start.toString(16)}, 0x${(r.buffer.start + each * 4096).toString(16)}) rw-p anonymous, ${each} pages${procs > 1 ? ' (P0 first, then P1)' : ''}` : '—';
  el<HTMLMeterElement>('m-ring').value = r && r.ring.capacity > 0 ? r.ring.faults / r.ring.capacity : 0;
  el('m-ring-text').textContent = r && r.ring.capacity > 0 ? `${r.ring.faults} of ${r.ring.capacity}${r.ring.overflow ? ' (overflowed)' : ''}` : '—';
  const prog = el<HTMLProgressElement>('progress');
  const live = r !== null && r.result === null;
  prog.hidden = !live;
  prog.max = Math.max(1, r?.progress.total ?? 1);
  prog.value = r?.progress.done ?? 0;
  el('progress-text').textContent = live && r.progress.total > 0 ? `command ${fmt(r.progress.done)} of ${fmt(r.progress.total)} invocations done, ${fmt(r.counters.rounds)} round(s)` : '';
  drawStrip(el<HTMLCanvasElement>('strip'), r, el('strip-legend'));
}

function legendList(host: HTMLElement, title: string, names: readonly string[], colors: readonly string[], counts: number[], band: string): void {
  const h = document.createElement('li');
  h.className = 'band';
  h.textContent = title;
  host.append(h);
  names.forEach((name, s) => {
    const li = document.createElement('li');
    li.dataset.band = band;
    li.dataset.state = String(s);
    li.dataset.count = String(counts[s]);
    const sw = document.createElement('span');
    sw.className = 'sw';
    sw.style.background = colors[s];
    sw.setAttribute('aria-hidden', 'true');
    li.append(sw, `${name}: ${counts[s]}`);
    host.append(li);
  });
}

/**
 * One cell per page, split: the top half is the CPU's page table, the bottom half the
 * GPU's (the mirror). An invalidation is an overlay, a red frame that fades over the next
 * FADE_SNAPSHOTS snapshots; the policy's thrashing/pinned pages get a purple dot.
 */
export function drawStrip(canvas: HTMLCanvasElement, r: LiveRun | null, legend: HTMLElement): void {
  const snap: MirrorSnapshot | null = r?.snapshot ?? null;
  const n = snap?.gpu.length ?? 0;
  const fading = new Array<number>(FADE_SNAPSHOTS + 1).fill(0);
  let marked = 0;
  const cell = n <= 512 ? 10 : n <= 2048 ? 6 : 4;
  let cols = 1;
  let g: CanvasRenderingContext2D | null = null;
  if (snap) {
    // Only with pages to draw: a 2D context is the page's first GPU work (Chromium creates
    // its GPU context synchronously, waiting for a GPU process that may still be starting),
    // and clientWidth forces a layout; the empty strip at first paint needs neither.
    cols = Math.max(1, Math.floor(Math.max(200, canvas.clientWidth || 300) / cell));
    canvas.width = cols * cell;
    canvas.height = Math.max(1, Math.ceil(n / cols)) * cell;
    g = canvas.getContext('2d');
  }
  if (g && snap && r) {
    g.fillStyle = '#fff';
    g.fillRect(0, 0, canvas.width, canvas.height);
    const half = cell / 2;
    const gap = cell > 4 ? 1 : 0;
    for (let i = 0; i < n; i++) {
      const x = (i % cols) * cell;
      const y = Math.floor(i / cols) * cell;
      g.fillStyle = CPU_COLORS[snap.cpu[i]];
      g.fillRect(x, y, cell - gap, half);
      g.fillStyle = GPU_COLORS[snap.gpu[i]];
      g.fillRect(x, y + half, cell - gap, half - gap);
      const age = r.snapshots - r.invalidatedAt[i];
      if (age >= 0 && age < FADE_SNAPSHOTS) {
        fading[age]++;
        g.strokeStyle = `rgba(${INVAL_COLOR.join(',')},${(1 - age / FADE_SNAPSHOTS).toFixed(2)})`;
        g.lineWidth = 1;
        g.strokeRect(x + 0.5, y + 0.5, cell - gap - 1, cell - gap - 1);
      }
      if (snap.marks[i] & MARK_THRASHING) {
        marked++;
        g.fillStyle = '#6a1b9a';
        g.fillRect(x + cell / 2 - 1, y + half - 1, 2, 2);
      }
    }
  } else if (canvas.dataset.drawn === '1') {
    canvas.height = 10; // a new, clear bitmap one row high (Reset), no context needed
  }
  canvas.dataset.drawn = snap ? '1' : '';
  const cpuCounts = snap ? bandCounts(snap.cpu, CPU_STATE_NAMES.length) : new Array<number>(CPU_STATE_NAMES.length).fill(0);
  const gpuCounts = snap ? bandCounts(snap.gpu, GPU_STATE_NAMES.length) : new Array<number>(GPU_STATE_NAMES.length).fill(0);
  legend.textContent = '';
  legendList(legend, 'CPU (top half):', CPU_STATE_NAMES, CPU_COLORS, cpuCounts, 'cpu');
  legendList(legend, 'GPU mirror (bottom half):', GPU_STATE_NAMES, GPU_COLORS, gpuCounts, 'gpu');
  const inval = document.createElement('li');
  inval.dataset.overlay = 'invalidated';
  inval.dataset.count = String(fading[0]);
  inval.innerHTML = '<span class="sw" style="background:#fff;border:2px solid #d32f2f" aria-hidden="true"></span>';
  inval.append(`invalidated (red frame, fades): ${fading[0]} in the last snapshot, ${fading.reduce((a, b) => a + b, 0)} recent`);
  const thr = document.createElement('li');
  thr.dataset.overlay = 'thrashing';
  thr.append(`thrashing / pinned (purple dot): ${marked}`);
  legend.append(inval, thr);
  canvas.dataset.gpuMapped = String(n - gpuCounts[GpuState.none]);
  canvas.setAttribute('aria-label', `address space, ${n} pages. CPU: ${CPU_STATE_NAMES.map((s, i) => `${cpuCounts[i]} ${s}`).join(', ')}. GPU: ${GPU_STATE_NAMES.map((s, i) => `${gpuCounts[i]} ${s}`).join(', ')}. ${fading[0]} just invalidated.`);
}
