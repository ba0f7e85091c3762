// Traces out (Perfetto trace-event JSON, uvm-eval's log) and in (Nsight Systems SQLite,
// uvm-eval logs): an imported trace is checked whole before anything runs; a bad one gets a
// message naming its line (or row) and field.
import wasmUrl from 'sql.js/dist/sql-wasm.wasm?url';
import type { TraceRecord } from '../src/policy/trace.js';
import { tracePagesOf } from '../src/trace/pages.js';
import { readNsight } from '../src/trace/nsight.js';
import { parseUvmEval, uvmEvalToTrace } from '../src/trace/uvm-eval.js';
import { labPerfetto, labUvmEval } from '../src/lab/trace-out.js';
import { toRunConfig } from '../src/lab/config.js';
import { announce, download, el, setStatus } from './dom.js';
import { readForm } from './form.js';
import { runs } from './run.js';
import { timebase } from './timebase.js';

let loaded: { name: string; records: TraceRecord[] } | null = null;

async function readTrace(file: File): Promise<{ records: TraceRecord[]; note: string }> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const isSqlite = bytes.length >= 16 && new TextDecoder().decode(bytes.subarray(0, 15)) === 'SQLite format 3';
  if (isSqlite || /\.(sqlite|db)$/i.test(file.name)) {
    // sql.js loads only when a trace is imported: it stays out of the first paint's bundle.
    const { default: initSqlJs } = await import('sql.js');
    const SQL = await initSqlJs({ locateFile: () => wasmUrl });
    const n = readNsight(SQL, bytes);
    return { records: n.records, note: `${n.faultRows} fault row(s), ${n.pageFaults} page fault(s), UM memcpy ${n.umHtoD} to device / ${n.umDtoH} to host` };
  }
  const batches = parseUvmEval(new TextDecoder().decode(bytes));
  const records = uvmEvalToTrace(batches);
  return { records, note: `${batches.length} batch(es), ${records.length} fault(s)` };
}

export function setupTraces(changed: () => void): void {
  el('export-perfetto').addEventListener('click', () => {
    const all = [...runs.finishedLive];
    const file = labPerfetto(all, timebase.axis);
    download('mirrorlab-trace.json', 'application/json', JSON.stringify(file));
    announce(`Exported ${all.length} run(s) for Perfetto (${timebase.label()}).`);
  });
  el('export-uvm').addEventListener('click', () => {
    const r = runs.current?.result ? runs.current : runs.finishedLive.at(-1);
    if (!r) return;
    download('mirrorlab-uvm-eval.log', 'text/plain', labUvmEval(r));
  });
  const input = el<HTMLInputElement>('import-trace');
  input.addEventListener('change', async (ev) => {
    ev.stopPropagation();
    const file = input.files?.[0];
    input.value = '';
    if (!file) return;
    const box = el('trace-status');
    try {
      const t = await readTrace(file);
      const pages = tracePagesOf(t.records);
      loaded = { name: file.name, records: t.records };
      box.dataset.state = 'loaded';
      box.textContent = `${file.name}: ${t.note}; spans ${pages} page(s). Run trace replays it with the form's driver settings.`;
      el<HTMLButtonElement>('run-trace').disabled = false;
      announce(`Trace ${file.name} read: ${t.note}.`);
    } catch (e) {
      loaded = null;
      el<HTMLButtonElement>('run-trace').disabled = true;
      box.dataset.state = 'error';
      box.textContent = `${file.name}: ${e instanceof Error ? e.message : String(e)}. Nothing was run.`;
      announce(`The trace was refused: ${box.textContent}`);
    }
    changed();
  });
  el('run-trace').addEventListener('click', () => {
    if (loaded === null) return;
    const f = readForm();
    if (f.settings === null) {
      setStatus('failed', 'fix the settings shown before running the trace');
      return;
    }
    const pages = tracePagesOf(loaded.records);
    const cfg = { ...toRunConfig(f.settings), workload: `trace:${loaded.name}` as const, sizeMiB: pages / 256 };
    void runs.start(cfg, false, undefined, loaded.records);
  });
}
