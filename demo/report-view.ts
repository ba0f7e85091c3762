// The finished runs' report: the experiment's own HTML (the same table and plots as
// report.html), in a shadow root so the page's CSS stays out.
import { REPORT_CSS, toHtml } from '../src/experiment/report/html.js';
import type { RunResult } from '../src/experiment/types.js';
import { labReport } from '../src/lab/view.js';
import { verdictOf } from '../src/lab/verdict.js';
import { el } from './dom.js';

export function drawReport(finished: readonly RunResult[], adapter: string): void {
  const host = el('report');
  const root = host.shadowRoot ?? host.attachShadow({ mode: 'open' });
  host.dataset.runs = String(finished.length);
  if (finished.length === 0) {
    root.innerHTML = '<p style="color:#555;font-size:13px">Finished runs appear here, with the same table and plots as the experiment\'s report.html.</p>';
    host.dataset.status = 'empty';
    return;
  }
  const html = toHtml(labReport(finished, adapter, navigator.userAgent));
  const body = /<body[^>]*>([\s\S]*)<\/body>/.exec(html)?.[1] ?? '';
  root.innerHTML = `<style>${REPORT_CSS}:host{display:block}body,:host{margin:0;max-width:none;padding:0}</style>${body}`;
  host.dataset.status = finished.every((r) => verdictOf(r).status === 'ok') ? 'pass' : 'fail';
}
