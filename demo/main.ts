// The live demo: pick a workload and a fault-servicing configuration, run it on this
// browser's GPU through the same runner as `npm run experiment`, and see the report (the
// same table and plots as report.html). #smoke's and #report's data-status end as 'pass'
// or 'fail' (what headless checks wait for).
import { requestGpuDevice } from '../src/device/gpu.js';
import { runSmokeKernel, smokeReference } from '../src/device/smoke.js';
import { RETRY_PROTOCOLS } from '../src/driver/retry.js';
import { REPLAY_POLICIES } from '../src/driver/servicer.js';
import { toHtml } from '../src/experiment/report.js';
import { openExperiment, runOne } from '../src/experiment/runner.js';
import type { ExperimentReport, RunConfig, RunResult } from '../src/experiment/types.js';
import { WORKLOADS } from '../src/workloads/names.js';
import type { WindowPolicy } from '../src/driver/coalesce.js';

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e as T;
}

function fill(select: HTMLSelectElement, values: readonly string[], selected: string): void {
  for (const v of values) select.add(new Option(v, v, v === selected, v === selected));
}

async function smoke(): Promise<void> {
  const out = el('smoke');
  const ctx = await requestGpuDevice();
  const n = 10_000;
  const input = new Uint32Array(n).map((_, i) => (i * 2654435761) >>> 0);
  const got = await runSmokeKernel(ctx.device, input, 0xc0ffee);
  const want = smokeReference(input, 0xc0ffee);
  const bad = got.findIndex((v, i) => v !== want[i]);
  out.dataset.status = bad < 0 ? 'pass' : 'fail';
  out.className = bad < 0 ? 'pass' : 'fail';
  out.textContent = bad < 0 ? `pass (${n} elements)` : `FAIL at element ${bad}`;
  ctx.device.destroy();
}

async function main(): Promise<void> {
  const form = el<HTMLFormElement>('form');
  const field = (name: string): HTMLSelectElement & HTMLInputElement => form.elements.namedItem(name) as HTMLSelectElement & HTMLInputElement;
  fill(field('workload'), WORKLOADS, 'stream');
  fill(field('replay'), REPLAY_POLICIES, 'batch-flush');
  fill(field('protocol'), RETRY_PROTOCOLS, 'seq');
  const runs: RunResult[] = [];
  let adapter = '';
  try {
    await smoke();
    adapter = (await openExperiment()).adapter;
    el('adapter').textContent = adapter;
    el<HTMLButtonElement>('run').disabled = false;
  } catch (e) {
    el('adapter').textContent = `no WebGPU: ${e instanceof Error ? e.message : String(e)}`;
    el('smoke').dataset.status = 'fail';
    return;
  }
  const render = (): void => {
    const report: ExperimentReport = {
      generatedAt: new Date().toISOString(), adapter, node: navigator.userAgent, presets: ['demo'], runs,
    };
    const html = toHtml(report);
    const body = /<body[^>]*>([\s\S]*)<\/body>/.exec(html);
    el('report').innerHTML = body ? body[1] : html;
    el('report').dataset.status = runs.every((r) => r.ok && r.verify.mismatches === 0) ? 'pass' : 'fail';
  };
  el('clear').addEventListener('click', () => { runs.length = 0; el('report').innerHTML = ''; el('log').textContent = ''; });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const w = field('window').value;
    const config: RunConfig = {
      preset: 'demo',
      workload: field('workload').value as RunConfig['workload'],
      sizeMiB: Number(field('sizeMiB').value),
      writeFraction: Number(field('writeFraction').value),
      window: (w === 'amd' ? 'amd' : Number(w)) as WindowPolicy,
      batchSize: Number(field('batchSize').value),
      replay: field('replay').value as RunConfig['replay'],
      protocol: field('protocol').value as RunConfig['protocol'],
      coalesce: field('coalesce').value === 'on',
      stormRate: Number(field('stormRate').value),
      seed: runs.length + 1,
    };
    const button = el<HTMLButtonElement>('run');
    button.disabled = true;
    const log = el('log');
    log.textContent += `run ${runs.length + 1}: ${config.workload} ${config.sizeMiB} MiB, window ${String(config.window)}, ` +
      `batch ${config.batchSize}, ${config.replay}, ${config.protocol}, coalescing ${config.coalesce ? 'on' : 'off'}, storm ${config.stormRate}/s … `;
    const t0 = performance.now();
    void runOne(config, { onProgress: (m) => { log.dataset.progress = m; } })
      .then((r) => {
        runs.push(r);
        log.textContent += `${r.ok ? 'ok' : r.error} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`;
        render();
      })
      .catch((e: unknown) => { log.textContent += `failed: ${e instanceof Error ? e.message : String(e)}\n`; })
      .finally(() => { button.disabled = false; });
  });
}

void main();
