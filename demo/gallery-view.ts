// The scenario gallery: a button and a sentence each; a click puts the scenario's runs in
// the form one after another, runs them, and pins each but the last for the comparison.
import { SCENARIOS } from '../src/lab/gallery.js';
import { announce, el } from './dom.js';
import { writeForm } from './form.js';
import { runs } from './run.js';

export function setupGallery(runFromForm: (step: boolean) => Promise<void>): void {
  const list = el('gallery-list');
  for (const s of SCENARIOS) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.scenario = s.id;
    b.textContent = s.title;
    const p = document.createElement('span');
    p.textContent = ` ${s.says}${s.runs.length > 1 ? ` (${s.runs.length} runs)` : ''}`;
    li.append(b, p);
    list.append(li);
    b.addEventListener('click', async () => {
      if (!(runs.phase === 'idle' || runs.phase === 'done' || runs.phase === 'failed' || runs.phase === 'stopped')) return;
      announce(`Scenario: ${s.title}.`);
      el('gallery').dataset.running = s.id;
      for (let i = 0; i < s.runs.length; i++) {
        writeForm(s.runs[i]);
        await runFromForm(false);
        if (runs.phase === 'stopped' || runs.phase === 'idle') break;
        if (i < s.runs.length - 1) runs.pin();
      }
      el('gallery').dataset.running = '';
      el('gallery').dataset.done = s.id;
    });
  }
}
