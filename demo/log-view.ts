// The log, virtualised: the ring (src/lab/view.ts LogRing) keeps the newest LOG_LINES
// lines; only the rows in view are in the DOM. It follows the end while the reader is at
// the end, so the run's `end:` line always shows when the run ends.
import type { LiveRun } from '../src/lab/view.js';
import { el } from './dom.js';

const ROW = 17;

let shownRun: LiveRun | null = null;
let shownTotal = -1;
let follow = true;
/** Where render last scrolled the box itself: its own scroll event is not the reader's. */
let ownTop = -1;

function cls(line: string): string {
  return line.startsWith('invalidate') || line.startsWith('…') ? 'inval' : line.startsWith('end') ? 'end' : '';
}

export function setupLog(): void {
  const box = el('log');
  box.addEventListener('scroll', () => {
    // The event of render's own scroll arrives later, maybe after more lines came (the end
    // is then further down): only a scroll by the reader decides whether to follow.
    if (box.scrollTop !== ownTop) follow = box.scrollTop + box.clientHeight >= box.scrollHeight - ROW;
    render(true);
  });
}

let current: LiveRun | null = null;

export function drawLog(r: LiveRun | null): void {
  current = r;
  if (r !== shownRun) {
    shownRun = r;
    shownTotal = -1;
    follow = true;
  }
  render(false);
}

function render(scrolled: boolean): void {
  const box = el('log');
  const inner = el('log-rows');
  const log = current?.log;
  const n = log?.length ?? 0;
  const total = log?.total ?? 0;
  const grew = total !== shownTotal;
  if (!scrolled && !grew) return;
  shownTotal = total;
  inner.style.height = `${n * ROW}px`;
  box.dataset.lines = String(n);
  box.dataset.total = String(total);
  // Counted whenever the log changed, whichever render saw it first: a scroll event can
  // render new lines before drawLog does, and drawLog then finds nothing new.
  if (grew && log) {
    let ends = 0;
    for (let i = 0; i < n; i++) if (log.at(i).startsWith('end:')) ends++;
    box.dataset.endLines = String(ends);
  }
  // Also on a scroll render: one may take lines drawLog has not seen, and drawLog then
  // finds nothing new and returns before it scrolls.
  if (follow) {
    box.scrollTop = Math.max(0, n * ROW - box.clientHeight);
    ownTop = box.scrollTop;
  }
  const first = Math.max(0, Math.floor(box.scrollTop / ROW) - 5);
  const last = Math.min(n, first + Math.ceil((box.clientHeight || 260) / ROW) + 10);
  inner.textContent = '';
  for (let i = first; i < last && log; i++) {
    const line = log.at(i);
    const div = document.createElement('div');
    div.className = `row ${cls(line)}`;
    div.style.top = `${i * ROW}px`;
    div.textContent = line;
    div.dataset.n = String(total - n + i + 1);
    inner.append(div);
  }
  // The end line is the last one pushed: keep it reachable for assistive tech and checks.
  const end = n > 0 && log ? log.at(n - 1) : '';
  el('log-last').textContent = end;
}
