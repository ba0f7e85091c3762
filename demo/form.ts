// The run's settings form: built from the lab's config (bounds, lists), kept in the URL,
// errors shown per field. The form only reads and writes settings; runs are run.ts's.
import { AXES } from '../src/experiment/schema.js';
import {
  checkSettings, DEFAULT_SETTINGS, formValue, isPolicyModuleName, LAB_FIELDS, settingsFromQuery, settingsToQuery,
  type LabSettings,
} from '../src/lab/config.js';
import { runEstimate } from '../src/lab/estimate.js';
import type { PolicySource } from '../src/lab/policy-module.js';
import { el } from './dom.js';

const form = (): HTMLFormElement => el<HTMLFormElement>('controls');
const field = (name: string): HTMLInputElement & HTMLSelectElement => form().elements.namedItem(name) as HTMLInputElement & HTMLSelectElement;

/** The user's policy module chosen with the file input (sent to the worker with each run). */
let policyFile: PolicySource | null = null;

export function chosenPolicyFile(): PolicySource | null {
  return policyFile;
}

function fill(select: HTMLSelectElement, values: readonly { value: string; label: string }[]): void {
  for (const v of values) select.add(new Option(v.label, v.value));
}

/** The form's inputs from the run schema (src/lab/config.ts LAB_FIELDS): options, bounds, and any input the page lacks. */
export function setupForm(): void {
  for (const f of LAB_FIELDS) {
    if (!field(f.key)) {
      const label = document.createElement('label');
      const input = document.createElement(f.options ? 'select' : 'input');
      input.name = f.key;
      if (input instanceof HTMLInputElement) input.type = 'number';
      label.append(`${f.label} `, input);
      form().querySelector('.fields')?.append(label);
    }
    const input = field(f.key);
    if (f.options && input.options.length === 0) fill(input, f.options);
    if (f.number) {
      input.min = String(f.number.min);
      input.max = String(f.number.max);
      if (f.number.step !== undefined) input.step = String(f.number.step);
    }
  }
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
          ? `policy module ${f.name} is TypeScript: the lab loads plain JavaScript. Build it first (npx tsc ${f.name} or esbuild) and choose the .js, or run it with the CLI: npm run experiment -- ${AXES.policy.flag} ./${f.name}`
          : `policy module ${f.name}: the lab loads plain JavaScript modules (.js, .mjs); run other policies with npm run experiment -- ${AXES.policy.flag} ./file`,
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
  if (isPolicyModuleName(s.policy)) policyOption(s.policy);
  for (const f of LAB_FIELDS) field(f.key).value = formValue(s, f.key);
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
  return checkSettings(Object.fromEntries(LAB_FIELDS.map((f) => [f.key, field(f.key).value])));
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
