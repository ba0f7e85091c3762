// The page's small DOM helpers, shared by the lab's views.

export function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e as T;
}

export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A polite live-region message: a fresh text node after a tick, so a repeat is announced too. */
export function announce(msg: string): void {
  const a = el('announce');
  a.textContent = '';
  setTimeout(() => { a.textContent = msg; }, 30);
}

/** The status line: its text and data-state (what headless checks read). */
export function setStatus(state: string, text: string): void {
  const s = el('status');
  s.dataset.state = state;
  s.textContent = text;
}

export function download(name: string, type: string, text: string | Uint8Array): void {
  const a = document.createElement('a');
  const part: BlobPart = typeof text === 'string' ? text : new Uint8Array(text);
  a.href = URL.createObjectURL(new Blob([part], { type }));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
