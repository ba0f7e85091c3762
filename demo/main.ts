// The live lab's page: it only draws. The machine, the driver and the GPU work run in a
// Web Worker (src/lab/worker.ts, over comlink); a run's life is one state machine
// (src/lab/lifecycle.ts, driven in run.ts) that the buttons and the worker both follow; its
// event stream folds into a LiveRun (src/lab/view.ts) and the page redraws once a frame.
// Modules: form.ts (settings), run.ts (the run's life), live.ts (counters, meters, strip),
// log-view.ts, plots.ts + timeline.ts (one time axis), compare-view.ts, report-view.ts,
// gallery-view.ts, traces-view.ts (Perfetto / uvm-eval out, Nsight / uvm-eval in). The
// views first paint does not need load after it, each its own chunk (loadViews).
// Hooks for headless checks: body[data-lab] ('ready' | 'nogpu'), #status[data-state],
// #smoke[data-status], #c-batches, figure[data-points], #status[data-stop-ms].
import { fromRunConfig, isPolicyModuleName, toRunConfig } from '../src/lab/config.js';
import { controls } from '../src/lab/lifecycle.js';
import { verdictOf } from '../src/lab/verdict.js';
import { exportCsv, exportJson, importJson, labReport } from '../src/lab/view.js';
import type { AdapterInfo } from '../src/lab/worker.js';
import { announce, download, el, fmt, setStatus } from './dom.js';
import { chosenPolicyFile, readForm, setupForm, showErrors, writeForm } from './form.js';
import { setupGallery } from './gallery-view.js';
import { drawLive } from './live.js';
import { drawLog, setupLog } from './log-view.js';
import { runs } from './run.js';

/**
 * The views first paint does not need, loaded (dynamic import: their own chunks) once the
 * page has painted: the uPlot plots, the timeline canvases, the comparison, the embedded
 * report (the experiment's HTML and SVG plots), the traces in and out (sql.js loads later
 * still, on an import).
 */
async function loadViews(): Promise<Views> {
  const [{ Plots }, timeline, compare, report, traces] = await Promise.all([
    import('./plots.js'), import('./timeline.js'), import('./compare-view.js'), import('./report-view.js'), import('./traces-view.js'),
  ]);
  timeline.setupTimeline();
  traces.setupTraces(scheduleDraw);
  return { plots: new Plots(el('plots')), drawTimeline: timeline.drawTimeline, drawCompare: compare.drawCompare, drawReport: report.drawReport };
}

interface Views {
  plots: import('./plots.js').Plots;
  drawTimeline: typeof import('./timeline.js').drawTimeline;
  drawCompare: typeof import('./compare-view.js').drawCompare;
  drawReport: typeof import('./report-view.js').drawReport;
}

/**
 * Resolves once the page's first contentful paint has been presented (Paint Timing), so what
 * waits here never competes with it. On a freshly started browser that paint waits for
 * Chromium's GPU process (SwiftShader compiling its first pipelines) and can come seconds
 * after DOMContentLoaded: no short timeout, which would start the worker's WebGPU work and
 * the views' chunks in the middle of it. Where the browser has no paint timing: two frames.
 * A hidden page paints only once shown: nothing to wait for. `safetyMs` only guards against
 * a browser that reports paint timing yet never reports this paint.
 */
function afterFirstPaint(safetyMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    const painted = (): boolean => performance.getEntriesByName('first-contentful-paint').length > 0;
    if (painted() || document.visibilityState === 'hidden') {
      resolve();
      return;
    }
    if (!(PerformanceObserver.supportedEntryTypes ?? []).includes('paint')) {
      requestAnimationFrame(() => requestAnimationFrame(() => resolve()));
      return;
    }
    const obs = new PerformanceObserver(() => { if (painted()) done(); });
    const timer = setTimeout(() => done(), safetyMs);
    function done(): void {
      obs.disconnect();
      clearTimeout(timer);
      resolve();
    }
    obs.observe({ type: 'paint', buffered: true });
  });
}

const buttons = {
  run: el<HTMLButtonElement>('run'), pause: el<HTMLButtonElement>('pause'), step: el<HTMLButtonElement>('step'),
  stop: el<HTMLButtonElement>('stop'), reset: el<HTMLButtonElement>('reset'), pin: el<HTMLButtonElement>('pin'),
  json: el<HTMLButtonElement>('export-json'), csv: el<HTMLButtonElement>('export-csv'), html: el<HTMLButtonElement>('export-html'),
  perfetto: el<HTMLButtonElement>('export-perfetto'), uvm: el<HTMLButtonElement>('export-uvm'),
};

let views: Views | null = null;
let frame = 0;
let reportShown = -1;

function scheduleDraw(): void {
  if (frame !== 0) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    draw();
  });
}

function draw(): void {
  const r = runs.current;
  drawLive(r);
  drawLog(r);
  if (views !== null) {
    views.plots.draw(r, runs.pinned);
    views.drawTimeline(r);
    views.drawCompare(r, runs.pinned, runs.finished);
    if (reportShown !== runs.finished.length) {
      reportShown = runs.finished.length;
      views.drawReport(runs.finished, runs.adapter);
    }
  }
  showControls();
}

/** The buttons follow the run's phase (lifecycle.ts controls()), nothing else. */
function showControls(): void {
  const c = controls(runs.phase);
  const ready = runs.api !== null;
  buttons.run.disabled = !ready || !(c.run || c.resume);
  buttons.run.textContent = c.resume ? 'Resume' : c.run ? 'Run' : 'Running…';
  buttons.pause.disabled = !c.pause;
  buttons.step.disabled = !ready || !c.step;
  buttons.stop.disabled = !c.stop;
  buttons.pin.disabled = !c.ended && !(runs.current?.result && runs.phase === 'idle');
  const any = runs.finished.length === 0;
  for (const b of [buttons.json, buttons.csv, buttons.html, buttons.perfetto, buttons.uvm]) b.disabled = any;
}

/** Starts a run from the form (Run, or Step from idle). */
export async function runFromForm(step: boolean): Promise<void> {
  const r = readForm();
  showErrors(r.errors);
  if (r.settings === null) {
    announce('The run was not started: fix the settings shown.');
    return;
  }
  let source;
  if (isPolicyModuleName(r.settings.policy)) {
    const f = chosenPolicyFile();
    if (f?.name !== r.settings.policy) {
      showErrors([{ field: 'policy', message: `policy module ${r.settings.policy}: choose its file (links and exports name it but cannot carry it)` }]);
      announce('The run was not started: choose the policy module file.');
      return;
    }
    source = f;
  }
  await runs.start(toRunConfig(r.settings), step, source);
}

function setupButtons(): void {
  el<HTMLFormElement>('controls').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (controls(runs.phase).resume) runs.command('resume');
    else void runFromForm(false);
  });
  buttons.pause.addEventListener('click', () => runs.command('pause'));
  buttons.step.addEventListener('click', () => {
    if (controls(runs.phase).run) void runFromForm(true); // the first Step from idle runs one batch, then holds
    else runs.command('step');
  });
  buttons.stop.addEventListener('click', () => runs.stop());
  buttons.reset.addEventListener('click', () => {
    runs.reset();
    views?.plots.build(0);
  });
  buttons.pin.addEventListener('click', () => runs.pin());
  const report = (): ReturnType<typeof labReport> => labReport(runs.finished, runs.adapter, navigator.userAgent);
  buttons.json.addEventListener('click', () => download('mirrorlab-runs.json', 'application/json', exportJson(report())));
  buttons.csv.addEventListener('click', () => {
    const c = exportCsv(report());
    download('mirrorlab-runs.csv', 'text/csv', c.runs);
    download('mirrorlab-batches.csv', 'text/csv', c.batches);
  });
  buttons.html.addEventListener('click', async () => {
    const { toHtml } = await import('../src/experiment/report/html.js');
    download('mirrorlab-report.html', 'text/html', toHtml(report()));
  });
  el<HTMLInputElement>('import').addEventListener('change', async (ev) => {
    ev.stopPropagation();
    const input = ev.target as HTMLInputElement;
    const file = input.files?.[0];
    if (!file) return;
    try {
      const rep = importJson(await file.text());
      const last = runs.imported(rep.runs);
      let settings = '';
      if (last) {
        try {
          writeForm(fromRunConfig(last.config));
          settings = '; its settings are in the form';
        } catch (e) {
          settings = `; its settings cannot go in the form (${e instanceof Error ? e.message : String(e)})`;
        }
      }
      const v = last?.result ? verdictOf(last.result) : null;
      setStatus('imported', `imported ${rep.runs.length} run(s) from ${file.name}${v ? `; last run: ${v.text}` : ''}${settings}`);
      announce(`Imported ${rep.runs.length} run(s)${v ? `, the last ${v.text}` : ''}.`);
    } catch (e) {
      setStatus('failed', `import failed: ${e instanceof Error ? e.message : String(e)}`);
      announce('Import failed.');
    }
    input.value = '';
    scheduleDraw();
  });
}

// ---------------------------------------------------------------------------------------
// Start: is there WebGPU at all, then the worker's adapter.

function noGpu(why: string, detail: string): void {
  document.body.dataset.lab = 'nogpu';
  el('nogpu').hidden = false;
  el('nogpu-why').textContent = why;
  el('nogpu-detail').textContent = detail;
  el('smoke').dataset.status = 'fail';
  announce(`WebGPU is not available: ${why}`);
}

function showAdapter(a: AdapterInfo): void {
  runs.adapter = a.name;
  el('a-name').textContent = a.name;
  el('a-kind').textContent = a.software ? `software (a CPU rasteriser${a.fallback ? ', fallback adapter' : ''}): exact, slower` : 'hardware';
  el('a-binding').textContent = `${fmt(a.maxStorageBufferBindingSize)} bytes (${(a.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB)`;
  el('a-invocations').textContent = `${a.maxComputeInvocationsPerWorkgroup} (workgroups per dimension ≤ ${fmt(a.maxComputeWorkgroupsPerDimension)})`;
  const s = el('smoke');
  s.dataset.status = a.smoke.ok ? 'pass' : 'fail';
  s.className = a.smoke.ok ? 'pass' : 'fail';
  s.textContent = a.smoke.detail;
  el('adapter').dataset.status = 'ready';
}

async function main(): Promise<void> {
  // Before first paint only what the page shows at once: the form's fields and values, the
  // buttons, the gallery, the counters and the log. Everything else waits for the paint.
  setupForm();
  setupLog();
  setupButtons();
  setupGallery(runFromForm);
  runs.listen(scheduleDraw);
  draw();
  if (!window.isSecureContext) {
    noGpu(`this page was opened from ${location.origin}, which is not a secure context, so the browser hides WebGPU.`, `isSecureContext = false (${location.href})`);
    return;
  }
  if (!('gpu' in navigator) || !navigator.gpu) {
    noGpu('this browser does not offer WebGPU (navigator.gpu is missing): it is off, blocklisted or not supported here.', navigator.userAgent);
    return;
  }
  // The worker's first WebGPU work (adapter, smoke kernel, shader compiles) keeps the GPU
  // process busy and the views' chunks take the main thread: both start once the page has
  // painted, so first paint waits on neither.
  await afterFirstPaint();
  const probe = runs.spawn().probe();
  views = await loadViews();
  draw();
  try {
    showAdapter(await probe);
  } catch (e) {
    noGpu('the browser offers WebGPU but gave no usable adapter.', e instanceof Error ? e.message : String(e));
    return;
  }
  document.body.dataset.lab = 'ready';
  showControls();
}

void main();
