// The comparison: every pinned run and the current one, a column each; below, the run
// sets (same settings, several seeds) with each measure's mean ± spread.
import type { RunResult } from '../src/experiment/types.js';
import { compareRows, runSets } from '../src/lab/compare.js';
import { describeConfig, type LiveRun } from '../src/lab/view.js';
import { el } from './dom.js';
import { partialResult } from './run.js';

function row(cells: string[], head: boolean): HTMLTableRowElement {
  const tr = document.createElement('tr');
  cells.forEach((v, i) => {
    const c = document.createElement(i === 0 || head ? 'th' : 'td');
    if (i === 0 && !head) (c as HTMLTableCellElement).scope = 'row';
    if (head) (c as HTMLTableCellElement).scope = 'col';
    c.textContent = v;
    if (!head && i > 0 && /^[\d.,/ —-]+$/.test(v)) c.className = 'num';
    tr.append(c);
  });
  return tr;
}

export function drawCompare(current: LiveRun | null, pinned: readonly LiveRun[], finished: readonly RunResult[]): void {
  const sec = el('compare');
  const sets = runSets(finished).filter((s) => s.seeds.length > 1);
  sec.hidden = pinned.length === 0 && sets.length === 0;
  const head = (r: LiveRun): string => `${r.config.protocol}, ${r.config.workload}${r.config.policy !== undefined ? `, ${r.config.policy}` : ''}`;
  const cols = [...pinned];
  if (current && !pinned.includes(current)) cols.push(current);
  const table = el<HTMLTableElement>('compare-table');
  table.textContent = '';
  const thead = table.createTHead();
  thead.append(row(['measure', ...cols.map((r, i) => (i < pinned.length ? `pinned ${i + 1}: ${head(r)}` : `current: ${head(r)}`))], true));
  const body = table.createTBody();
  for (const cells of compareRows(cols.map((r) => r.result ?? partialResult(r)))) body.append(row(cells, false));
  table.dataset.runs = String(cols.length);
  const setsBox = el('run-sets');
  setsBox.textContent = '';
  for (const s of sets) {
    const h = document.createElement('h3');
    h.textContent = `Run set: ${describeConfig(s.config).replace(/, seed \d+/, '')}; seeds ${s.seeds.join(', ')}`;
    const t = document.createElement('table');
    t.append(row(['measure', 'mean', '± sd', 'runs'], true));
    for (const st of s.stats) t.append(row([st.label, st.mean.toFixed(2), st.sd.toFixed(2), String(st.n)], false));
    t.dataset.seeds = String(s.seeds.length);
    t.className = 'run-set';
    setsBox.append(h, t);
  }
}
