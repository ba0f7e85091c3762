// The live lab's page: it only draws. The machine, the driver and the GPU work run in a
// Web Worker (src/lab/worker.ts, over comlink); its event stream folds into a LiveRun
// (src/lab/view.ts) and the page redraws once a frame. Hooks for headless checks:
// body[data-lab] ('ready' | 'nogpu'), #status[data-state], #smoke[data-status],
// #c-batches, figure[data-points], #status[data-stop-ms] (Stop to end, measured here).
import * as Comlink from 'comlink';
import { REPORT_CSS, toHtml } from '../src/experiment/report/html.js';
import { AXES } from '../src/experiment/schema.js';
import type { RunResult } from '../src/experiment/types.js';
import { totals } from '../src/driver/records.js';
import {
  checkSettings, DEFAULT_SETTINGS, formValue, isPolicyModuleName, LAB_FIELDS, settingsFromQuery, settingsToQuery, toRunConfig,
  type LabSettings,
} from '../src/lab/config.js';
import type { PolicySource } from '../src/lab/policy-module.js';
import type { LabEvent } from '../src/lab/session.js';
import { compareRows, describeConfig, exportCsv, exportJson, importJson, labReport, LiveRun } from '../src/lab/view.js';
import type { AdapterInfo, LabCommand, LabWorker } from '../src/lab/worker.js';
import { drawStrip, Plots } from './plots.js';

/** Stop's promise: the run ends within this, or the worker is terminated and replaced. */
const STOP_DEADLINE_MS = 900;

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e as T;
}

const form = el<HTMLFormElement>('controls');
const field = (name: string): HTMLInputElement & HTMLSelectElement => form.elements.namedItem(name) as HTMLInputElement & HTMLSelectElement;
const buttons = {
  run: el<HTMLButtonElement>('run'), pause: el<HTMLButtonElement>('pause'), step: el<HTMLButtonElement>('step'),
  stop: el<HTMLButtonElement>('stop'), reset: el<HTMLButtonElement>('reset'), pin: el<HTMLButtonElement>('pin'),
  json: el<HTMLButtonElement>('export-json'), csv: el<HTMLButtonElement>('export-csv'), html: el<HTMLButtonElement>('export-html'),
};

let worker: Worker | null = null;
let api: Comlink.Remote<LabWorker> | null = null;
let adapter = '';
let current: LiveRun | null = null;
let pinned: LiveRun | null = null;
/** Finished runs of this session (and imported ones), in order: the report and the exports. */
const finished: RunResult[] = [];
let running = false;
let stopClickedAt: number | null = null;
let stopTimer: ReturnType<typeof setTimeout> | null = null;
/** The user's policy module chosen with the file input (sent to the worker with each run). */
let policyFile: PolicySource | null = null;

function spawnWorker(): Comlink.Remote<LabWorker> {
  worker?.terminate();
  worker = new Worker(new URL('../src/lab/worker.ts', import.meta.url), { type: 'module', name: 'mirrorlab' });
  api = Comlink.wrap<LabWorker>(worker);
  return api;
}

function announce(msg: string): void {
  const a = el('announce');
  a.textContent = '';
  // A fresh text node after a tick: screen readers announce a change, not a repeat.
  setTimeout(() => { a.textContent = msg; }, 30);
}

function setStatus(state: string, text: string): void {
  const s = el('status');
  s.dataset.state = state;
  s.textContent = text;
}

// ---------------------------------------------------------------------------------------
// Settings: form ⇄ URL.

function fill(select: HTMLSelectElement, values: readonly { value: string; label: string }[]): void {
  for (const v of values) select.add(new Option(v.label, v.value));
}

/** The form's inputs from the run schema (src/lab/config.ts LAB_FIELDS): options, bounds, and any input the page lacks. */
function setupForm(): void {
  for (const f of LAB_FIELDS) {
    if (!field(f.key)) {
      const label = document.createElement('label');
      const input = document.createElement(f.options ? 'select' : 'input');
      input.name = f.key;
      if (input instanceof HTMLInputElement) input.type = 'number';
      label.append(`${f.label} `, input);
      form.querySelector('.fields')?.append(label);
    }
    const input = field(f.key);
    if (f.options && input.options.length === 0) fill(input, f.options);
    if (f.number) {
      input.min = String(f.number.min);
      input.max = String(f.number.max);
      if (f.number.step !== undefined) input.step = String(f.number.step);
    }
  }
  el<HTMLInputElement>('policy-file').addEventListener('change', async (ev) => {
    const input = ev.target as HTMLInputElement;
    const file = input.files?.[0];
    if (!file) return;
    if (!isPolicyModuleName(file.name)) {
      showErrors([{ field: 'policy', message: `policy module ${file.name}: the lab loads plain JavaScript modules (.js, .mjs); run TypeScript policies with npm run experiment -- ${AXES.policy.flag} ./file.ts` }]);
      input.value = '';
      return;
    }
    policyFile = { name: file.name, text: await file.text() };
    policyOption(file.name);
    field('policy').value = file.name;
    form.dispatchEvent(new Event('change'));
  });
  const fromUrl = settingsFromQuery(location.search);
  writeForm(fromUrl.settings ?? DEFAULT_SETTINGS);
  if (fromUrl.settings === null) showErrors(fromUrl.errors, 'The link’s settings were refused; the defaults are shown. ');
  form.addEventListener('change', () => {
    const r = readForm();
    showErrors(r.errors);
    if (r.settings) history.replaceState(null, '', `${location.pathname}${settingsToQuery(r.settings) ? `?${settingsToQuery(r.settings)}` : ''}`);
  });
}

function writeForm(s: LabSettings): void {
  if (isPolicyModuleName(s.policy)) policyOption(s.policy);
  for (const f of LAB_FIELDS) field(f.key).value = formValue(s, f.key);
}

/** The select's entry for a user's module (a link names it; its file must be chosen again). */
function policyOption(name: string): void {
  const sel = field('policy');
  if (!Array.from(sel.options).some((o) => o.value === name)) sel.add(new Option(`${name} (your module)`, name));
}

function readForm(): ReturnType<typeof checkSettings> {
  return checkSettings(Object.fromEntries(LAB_FIELDS.map((f) => [f.key, field(f.key).value])));
}

function showErrors(errors: readonly { field: string; message: string }[], prefix = ''): void {
  form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
  const box = el('form-errors');
  box.textContent = '';
  if (errors.length === 0) return;
  const ul = document.createElement('ul');
  for (const e of errors) {
    field(e.field).setAttribute('aria-invalid', 'true');
    const li = document.createElement('li');
    li.textContent = e.message;
    ul.append(li);
  }
  if (prefix) box.append(prefix);
  box.append(ul);
}

// ---------------------------------------------------------------------------------------
// Drawing.

let plots: Plots;
let frame = 0;

function scheduleDraw(): void {
  if (frame !== 0) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    draw();
  });
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function draw(): void {
  const r = current;
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
  el('c-bytes').textContent = `${fmt(c?.bytesToDevice ?? 0)} / ${fmt(c?.bytesToHost ?? 0)}`;
  set('c-sim', c?.simMs ?? 0);
  set('c-wall', c?.wallMs ?? 0);
  const snap = r?.snapshot ?? null;
  if (snap) {
    const pt = snap.pageTable;
    el<HTMLMeterElement>('m-pt').value = r!.buffer.pages > 0 ? pt.leaves / r!.buffer.pages : 0;
    el('m-pt-text').textContent = `${pt.leaves} of ${r!.buffer.pages} pages mapped, ${pt.tables} table(s)`;
    el<HTMLMeterElement>('m-ap').value = snap.aperture.slots > 0 ? snap.aperture.used / snap.aperture.slots : 0;
    el('m-ap-text').textContent = `${snap.aperture.used} of ${snap.aperture.slots}`;
    el('strip-vma').textContent = `VMA [0x${r!.buffer.start.toString(16)}, 0x${(r!.buffer.start + r!.buffer.pages * 4096).toString(16)}) rw-p anonymous, ${r!.buffer.pages} pages`;
  }
  if (r) {
    el<HTMLMeterElement>('m-ring').value = r.ring.capacity > 0 ? r.ring.faults / r.ring.capacity : 0;
    el('m-ring-text').textContent = r.ring.capacity > 0 ? `${r.ring.faults} of ${r.ring.capacity}${r.ring.overflow ? ' (overflowed)' : ''}` : '—';
  }
  drawStrip(el<HTMLCanvasElement>('strip'), snap, el('strip-legend'));
  plots.draw(r, pinned);
  drawLog();
  drawCompare();
}

let logShown = 0;
let logRun: LiveRun | null = null;
function drawLog(): void {
  const ol = el<HTMLOListElement>('log');
  if (logRun !== current) {
    ol.textContent = '';
    logShown = 0;
    logRun = current;
  }
  const lines = current?.log ?? [];
  if (lines.length < logShown) {
    ol.textContent = '';
    logShown = 0;
  }
  const atEnd = ol.scrollTop + ol.clientHeight >= ol.scrollHeight - 4;
  for (const line of lines.slice(logShown)) {
    const li = document.createElement('li');
    li.textContent = line;
    if (line.startsWith('invalidate') || line.startsWith('…')) li.className = 'inval';
    if (line.startsWith('end')) li.className = 'end';
    ol.append(li);
  }
  logShown = lines.length;
  while (ol.children.length > 400) ol.firstElementChild?.remove();
  if (atEnd) ol.scrollTop = ol.scrollHeight;
}

function drawCompare(): void {
  const sec = el('compare');
  sec.hidden = pinned === null;
  if (pinned === null) return;
  const head = (c: LiveRun['config']): string => `${c.protocol}, ${c.workload}${c.policy !== undefined ? `, ${c.policy}` : ''}`;
  el('compare-a').textContent = `pinned: ${head(pinned.config)}`;
  el('compare-b').textContent = current && current !== pinned ? `current: ${head(current.config)}` : 'current: —';
  const body = el('compare-table').querySelector('tbody')!;
  body.textContent = '';
  const cur = current && current !== pinned ? current.result ?? partialResult(current) : null;
  for (const [label, a, b] of compareRows(pinned.result ?? partialResult(pinned), cur)) {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = label;
    tr.append(th);
    for (const v of [a, b]) {
      const td = document.createElement('td');
      td.textContent = v;
      if (/^[\d.,/ —-]+$/.test(v)) td.className = 'num';
      tr.append(td);
    }
    body.append(tr);
  }
}

/** What a run measured so far, as a RunResult (a run still going, or one whose worker was ended). */
function partialResult(r: LiveRun, error: string | null = null): RunResult {
  const t = totals(r.records);
  return {
    config: r.config, ok: error === null, error, wallMs: r.counters.wallMs, rounds: r.counters.rounds, faultRounds: t.rounds,
    totals: t, records: [...r.records], storm: { ops: 0, byKind: {} }, verify: { checked: 0, mismatches: 0 },
    faultsPerSec: t.serviceMs > 0 ? (t.unique / t.serviceMs) * 1000 : 0,
  };
}

function drawReport(): void {
  const host = el('report');
  const root = host.shadowRoot ?? host.attachShadow({ mode: 'open' });
  if (finished.length === 0) {
    root.innerHTML = '<p style="color:#555;font-size:13px">Finished runs appear here, with the same table and plots as the experiment\'s report.html.</p>';
    host.dataset.status = 'empty';
    return;
  }
  const html = toHtml(labReport(finished, adapter, navigator.userAgent));
  const body = /<body[^>]*>([\s\S]*)<\/body>/.exec(html)?.[1] ?? '';
  // The report's own stylesheet, scoped to it by the shadow root (the page's CSS stays out).
  root.innerHTML = `<style>${REPORT_CSS}:host{display:block}body,:host{margin:0;max-width:none;padding:0}</style>${body}`;
  host.dataset.status = finished.every((r) => r.ok && r.verify.mismatches === 0) ? 'pass' : 'fail';
  host.dataset.runs = String(finished.length);
}

function controls(): void {
  const live = running && current !== null;
  buttons.run.disabled = running || api === null;
  buttons.pause.disabled = !live || current?.status === 'paused' || current?.status === 'stopping';
  buttons.pause.textContent = 'Pause';
  buttons.step.disabled = (running && (current?.status === 'stopping')) || api === null;
  buttons.stop.disabled = !live || current?.status === 'stopping';
  buttons.pin.disabled = current === null || running;
  buttons.json.disabled = finished.length === 0;
  buttons.csv.disabled = finished.length === 0;
  buttons.html.disabled = finished.length === 0;
  buttons.run.textContent = running ? 'Running…' : 'Run';
  if (live && current?.status === 'paused') {
    buttons.run.disabled = false;
    buttons.run.textContent = 'Resume';
  }
}

// ---------------------------------------------------------------------------------------
// Running.

function onEvents(events: LabEvent[]): void {
  if (!current) return;
  current.apply(events);
  for (const e of events) {
    if (e.kind === 'state') {
      const label = e.mode === 'paused' && e.held ? `paused after batch ${current.counters.batches}` : e.mode;
      setStatus(e.mode === 'paused' && e.held ? 'paused' : e.mode, label);
      if (e.held) announce(`Paused after ${current.counters.batches} batches.`);
      controls();
    }
  }
  scheduleDraw();
}

function endRun(result: RunResult, how: string): void {
  if (!current) return;
  if (current.result === null) current.finish(result);
  finished.push(result);
  running = false;
  if (stopTimer !== null) clearTimeout(stopTimer);
  stopTimer = null;
  if (stopClickedAt !== null) {
    el('status').dataset.stopMs = String(Math.round(performance.now() - stopClickedAt));
    stopClickedAt = null;
  }
  const state = current.status;
  setStatus(state, `${how}: ${result.ok ? 'ok' : result.error}; ${result.totals.batches} batches, ${result.verify.mismatches} wrong words`);
  announce(`Run ended (${how}): ${result.ok ? 'ok' : result.error}, ${result.totals.batches} batches.`);
  draw();
  drawReport();
  controls();
}

async function startRun(startPaused: boolean): Promise<void> {
  const r = readForm();
  showErrors(r.errors);
  if (r.settings === null) {
    announce('The run was not started: fix the settings shown.');
    return;
  }
  const config = toRunConfig(r.settings);
  let source: PolicySource | undefined;
  if (isPolicyModuleName(r.settings.policy)) {
    if (policyFile?.name !== r.settings.policy) {
      showErrors([{ field: 'policy', message: `policy module ${r.settings.policy}: choose its file (links and exports name it but cannot carry it)` }]);
      announce('The run was not started: choose the policy module file.');
      return;
    }
    source = policyFile;
  }
  const remote = api ?? spawnWorker();
  current = new LiveRun(config);
  running = true;
  el('status').removeAttribute('data-stop-ms');
  setStatus(startPaused ? 'stepping' : 'running', startPaused ? 'stepping: one batch' : 'running');
  announce(`Run started: ${describeConfig(config)}.`);
  controls();
  scheduleDraw();
  const me = current;
  try {
    const result = await remote.run(config, Comlink.proxy(onEvents), startPaused ? 'step' : 'run', source);
    if (current === me && running) endRun(result, result.ok ? 'done' : /^EINTR/.test(result.error ?? '') ? 'stopped' : 'failed');
  } catch (e) {
    if (current !== me || !running) return; // the worker was replaced (Stop's deadline, Reset)
    const msg = e instanceof Error ? e.message : String(e);
    me.status = 'failed';
    endRun(partialResult(me, msg), 'failed');
  }
}

function command(c: LabCommand): void {
  void api?.command(c);
}

function stop(): void {
  if (!running || !current) return;
  stopClickedAt = performance.now();
  setStatus('stopping', 'stopping…');
  command('stop');
  const me = current;
  // Stop works at any moment: a run that does not reach a boundary in time (a long CPU
  // phase, a wedged GPU) loses its worker; what it measured so far is kept.
  stopTimer = setTimeout(() => {
    if (current !== me || !running) return;
    spawnWorker();
    me.status = 'stopped';
    endRun(partialResult(me, 'EINTR: stopped (the worker was ended)'), 'stopped');
  }, STOP_DEADLINE_MS);
}

function reset(): void {
  if (running) {
    running = false;
    spawnWorker();
  }
  current = null;
  pinned = null;
  finished.length = 0;
  plots.build(false);
  setStatus('idle', 'idle');
  announce('Reset: results cleared.');
  draw();
  drawReport();
  controls();
}

function download(name: string, type: string, text: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function setupButtons(): void {
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (running && current?.status === 'paused') command('resume');
    else if (!running) void startRun(false);
  });
  buttons.pause.addEventListener('click', () => command('pause'));
  buttons.step.addEventListener('click', () => {
    if (running) command('step');
    else void startRun(true); // the first Step from idle runs exactly one batch, then holds
  });
  buttons.stop.addEventListener('click', stop);
  buttons.reset.addEventListener('click', reset);
  buttons.pin.addEventListener('click', () => {
    if (!current) return;
    pinned = current;
    plots.build(true, `pinned (${pinned.config.protocol})`);
    announce(`Pinned the run (${describeConfig(pinned.config)}); the next run is compared with it.`);
    draw();
  });
  const report = (): ReturnType<typeof labReport> => labReport(finished, adapter, navigator.userAgent);
  buttons.json.addEventListener('click', () => download('mirrorlab-runs.json', 'application/json', exportJson(report())));
  buttons.csv.addEventListener('click', () => {
    const c = exportCsv(report());
    download('mirrorlab-runs.csv', 'text/csv', c.runs);
    download('mirrorlab-batches.csv', 'text/csv', c.batches);
  });
  buttons.html.addEventListener('click', () => download('mirrorlab-report.html', 'text/html', toHtml(report())));
  el<HTMLInputElement>('import').addEventListener('change', async (ev) => {
    const input = ev.target as HTMLInputElement;
    const file = input.files?.[0];
    if (!file) return;
    try {
      const rep = importJson(await file.text());
      for (const r of rep.runs) finished.push(r);
      const last = rep.runs.at(-1);
      if (last && !running) {
        const lr = new LiveRun(last.config);
        lr.apply(last.records.map((rec) => ({ kind: 'batch' as const, rec, wallMs: 0 })));
        lr.finish(last);
        current = lr;
      }
      setStatus('imported', `imported ${rep.runs.length} run(s) from ${file.name}`);
      announce(`Imported ${rep.runs.length} run(s).`);
    } catch (e) {
      setStatus('failed', `import failed: ${e instanceof Error ? e.message : String(e)}`);
      announce('Import failed.');
    }
    input.value = '';
    draw();
    drawReport();
    controls();
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
  adapter = a.name;
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
  setupForm();
  plots = new Plots(el('plots'));
  setupButtons();
  draw();
  drawReport();
  if (!window.isSecureContext) {
    noGpu(`this page was opened from ${location.origin}, which is not a secure context, so the browser hides WebGPU.`, `isSecureContext = false (${location.href})`);
    return;
  }
  if (!('gpu' in navigator) || !navigator.gpu) {
    noGpu('this browser does not offer WebGPU (navigator.gpu is missing): it is off, blocklisted or not supported here.', navigator.userAgent);
    return;
  }
  try {
    const info = await spawnWorker().probe();
    showAdapter(info);
  } catch (e) {
    noGpu('the browser offers WebGPU but gave no usable adapter.', e instanceof Error ? e.message : String(e));
    return;
  }
  document.body.dataset.lab = 'ready';
  controls();
}

void main();
