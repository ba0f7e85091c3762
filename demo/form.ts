// The run's settings form: built from the lab's config (bounds, lists), kept in the URL,
// errors shown per field. The form only reads and writes settings; runs are run.ts's.
import { RETRY_PROTOCOLS } from '../src/driver/retry.js';
import { REPLAY_POLICIES } from '../src/driver/servicer.js';
import {
  checkSettings, DEFAULT_SETTINGS, isPolicyModuleName, LAB_POLICIES, LIMITS, settingsFromQuery, settingsToQuery, WINDOWS,
  type LabSettings,
} from '../src/lab/config.js';
import { runEstimate } from '../src/lab/estimate.js';
import type { PolicySource } from '../src/lab/policy-module.js';
import { WORKLOADS } from '../src/workloads/names.js';
import { el } from './dom.js';

const form = (): HTMLFormElement => el<HTMLFormElement>('controls');
const field = (name: string): HTMLInputElement & HTMLSelectElement => form().elements.namedItem(name) as HTMLInputElement & HTMLSelectElement;

/** The user's policy module chosen with the file input (sent to the worker with each run). */
let policyFile: PolicySource | null = null;

export function chosenPolicyFile(): PolicySource | null {
  return policyFile;
}

function fill(select: HTMLSelectElement, values: readonly string[]): void {
  for (const v of values) select.add(new Option(v, v));
}

export function setupForm(): void {
  fill(field('workload'), WORKLOADS);
  fill(field('window'), WINDOWS.map((w) => w.label));
  fill(field('replay'), REPLAY_POLICIES);
  fill(field('protocol'), RETRY_PROTOCOLS);
  fill(field('policy'), LAB_POLICIES);
  for (const k of ['sizeMiB', 'batchSize', 'stormRate', 'writeFraction', 'seed', 'oversub'] as const) {
    field(k).min = String(LIMITS[k].min);
    field(k).max = String(LIMITS[k].max);
  }
  field('oversub').step = String(LIMITS.oversub.step);
  field('sizeMiB').step = String(LIMITS.sizeMiB.step);
  const file = el<HTMLInputElement>('policy-file');
  file.addEventListener('change', async (ev) => {
    // The file input sits in the form: its change must not reach the form's handler, which
    // re-checks the settings and would clear the message below.
    ev.stopPropagation();
    const f = file.files?.[0];
    if (!f) return;
    if (!isPolicyModuleName(f.name)) {
      const ts = /\.[cm]?tsx?$/i.test(f.name);
      showErrors([{
        field: 'policy',
        message: ts
          ? `policy module ${f.name} is TypeScript: the lab loads plain JavaScript. Build it first (npx tsc ${f.name} or esbuild) and choose the .js, or run it with the CLI: npm run experiment -- --policy ./${f.name}`
          : `policy module ${f.name}: the lab loads plain JavaScript modules (.js, .mjs); run other policies with npm run experiment -- --policy ./file`,
      }]);
      file.value = '';
      return;
    }
    policyFile = { name: f.name, text: await f.text() };
    policyOption(f.name);
    field('policy').value = f.name;
    form().dispatchEvent(new Event('change'));
  });
  const fromUrl = settingsFromQuery(location.search);
  writeForm(fromUrl.settings ?? DEFAULT_SETTINGS);
  if (fromUrl.settings === null) showErrors(fromUrl.errors, 'The link’s settings were refused; the defaults are shown. ');
  form().addEventListener('change', () => {
    const r = readForm();
    showErrors(r.errors);
    if (r.settings) keepInUrl(r.settings);
    showEstimate(r.settings);
  });
  showEstimate(fromUrl.settings ?? DEFAULT_SETTINGS);
}

function keepInUrl(s: LabSettings): void {
  const q = settingsToQuery(s);
  history.replaceState(null, '', `${location.pathname}${q ? `?${q}` : ''}`);
}

/** Puts `s` in the form and the URL (a scenario, an imported run). */
export function writeForm(s: LabSettings): void {
  field('workload').value = s.workload;
  field('sizeMiB').value = String(s.sizeMiB);
  field('writeFraction').value = String(s.writeFraction);
  field('window').value = WINDOWS.find((w) => w.value === s.window)?.label ?? '2m';
  field('batchSize').value = String(s.batchSize);
  field('replay').value = s.replay;
  field('protocol').value = s.protocol;
  field('coalesce').value = s.coalesce ? 'on' : 'off';
  field('stormRate').value = String(s.stormRate);
  field('seed').value = String(s.seed);
  if (isPolicyModuleName(s.policy)) policyOption(s.policy);
  field('policy').value = s.policy;
  field('oversub').value = String(s.oversub);
  showErrors([]);
  keepInUrl(s);
  showEstimate(s);
}

/** The select's entry for a user's module (a link names it; its file must be chosen again). */
function policyOption(name: string): void {
  const sel = field('policy');
  if (!Array.from(sel.options).some((o) => o.value === name)) sel.add(new Option(`${name} (your module)`, name));
}

export function readForm(): ReturnType<typeof checkSettings> {
  return checkSettings({
    workload: field('workload').value, sizeMiB: field('sizeMiB').value, writeFraction: field('writeFraction').value,
    window: field('window').value, batchSize: field('batchSize').value, replay: field('replay').value,
    protocol: field('protocol').value, coalesce: field('coalesce').value, stormRate: field('stormRate').value, seed: field('seed').value,
    policy: field('policy').value, oversub: field('oversub').value,
  });
}

export function showErrors(errors: readonly { field: string; message: string }[], prefix = ''): void {
  form().querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
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

/** Says before the run starts when it would take minutes (estimate.ts). */
function showEstimate(s: LabSettings | null): void {
  const box = el('estimate');
  const e = s === null ? null : runEstimate(s);
  box.hidden = e === null || !e.slow;
  box.textContent = e?.slow ? e.message : '';
}
