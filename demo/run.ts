// A run's life on the page: the worker (comlink), the run being drawn, the pinned and
// finished runs, and the one state machine (src/lab/lifecycle.ts) that the buttons and the
// worker's reports both go through. Views read this module's state; nothing here draws.
import * as Comlink from 'comlink';
import { totals } from '../src/driver/records.js';
import type { RunConfig, RunResult } from '../src/experiment/types.js';
import { controls, RunLife, type Phase } from '../src/lab/lifecycle.js';
import type { PolicySource } from '../src/lab/policy-module.js';
import type { TraceRecord } from '../src/policy/trace.js';
import type { LabEvent } from '../src/lab/session.js';
import { verdictOf } from '../src/lab/verdict.js';
import { describeConfig, LiveRun } from '../src/lab/view.js';
import type { LabWorker } from '../src/lab/worker.js';
import { announce, el, setStatus } from './dom.js';

/** Stop's promise: the run ends within this, or the worker is terminated and replaced. */
export const STOP_DEADLINE_MS = 900;

class Runs {
  readonly life = new RunLife();
  worker: Worker | null = null;
  api: Comlink.Remote<LabWorker> | null = null;
  adapter = '';
  /** The run the live views draw. */
  current: LiveRun | null = null;
  /** Runs pinned for comparison, oldest first. */
  readonly pinned: LiveRun[] = [];
  /** Finished runs of this session (and imported ones), in order: the report and the exports. */
  readonly finished: RunResult[] = [];
  /** Every finished run as the views draw it (the comparison of several runs). */
  readonly finishedLive: LiveRun[] = [];
  #stopClickedAt: number | null = null;
  #stopTimer: ReturnType<typeof setTimeout> | null = null;
  #changed: () => void = () => {};
  #ended: (r: LiveRun) => void = () => {};

  /** Views redraw on every change; `ended` hears each run that ends. */
  listen(changed: () => void, ended: (r: LiveRun) => void = () => {}): void {
    this.#changed = changed;
    this.#ended = ended;
  }

  get phase(): Phase {
    return this.life.phase;
  }

  spawn(): Comlink.Remote<LabWorker> {
    this.worker?.terminate();
    this.worker = new Worker(new URL('../src/lab/worker.ts', import.meta.url), { type: 'module', name: 'mirrorlab' });
    this.api = Comlink.wrap<LabWorker>(this.worker);
    return this.api;
  }

  #onEvents(me: LiveRun, events: LabEvent[]): void {
    if (this.current !== me) return;
    me.apply(events);
    for (const e of events) {
      if (e.kind !== 'state') continue;
      if (!this.life.send({ type: 'worker', mode: e.mode, held: e.held })) continue;
      const p = this.life.phase;
      setStatus(p, p === 'paused' && e.held ? `paused after ${me.counters.batches} batch${me.counters.batches === 1 ? '' : 'es'}` : p);
      if (e.held) announce(`Paused after ${me.counters.batches} batches.`);
    }
    this.#changed();
  }

  #end(me: LiveRun, result: RunResult): void {
    if (this.current !== me) return;
    me.finish(result);
    const v = verdictOf(me.result ?? result);
    if (!this.life.send({ type: 'end', state: v.state })) return;
    this.finished.push(me.result ?? result);
    this.finishedLive.push(me);
    if (this.#stopTimer !== null) clearTimeout(this.#stopTimer);
    this.#stopTimer = null;
    if (this.#stopClickedAt !== null) {
      el('status').dataset.stopMs = String(Math.round(performance.now() - this.#stopClickedAt));
      this.#stopClickedAt = null;
    }
    const r = me.result ?? result;
    setStatus(v.state, `${v.state}: ${v.text}; ${r.totals.batches} batches, ${r.verify.mismatches} wrong words`);
    announce(`Run ended (${v.state}): ${v.text}, ${r.totals.batches} batches.`);
    this.#ended(me);
    this.#changed();
  }

  /** Run (step false) or Step (true) from idle or an ended run. */
  async start(config: RunConfig, step: boolean, source?: PolicySource, trace?: TraceRecord[]): Promise<void> {
    if (!this.life.send({ type: 'start', step })) return;
    const remote = this.api ?? this.spawn();
    const me = new LiveRun(config);
    this.current = me;
    el('status').removeAttribute('data-stop-ms');
    setStatus(this.life.phase, step ? 'stepping: one batch' : 'running');
    announce(`Run started: ${describeConfig(config)}.`);
    this.#changed();
    try {
      const result = await remote.run(config, Comlink.proxy((ev: LabEvent[]) => this.#onEvents(me, ev)), step ? 'step' : 'run', source, trace);
      this.#end(me, result);
    } catch (e) {
      // The worker was replaced (Stop's deadline, Reset): #end ignores a run no longer current.
      this.#end(me, partialResult(me, e instanceof Error ? e.message : String(e)));
    }
  }

  command(c: 'pause' | 'resume' | 'step'): void {
    if (this.life.send({ type: c })) {
      void this.api?.command(c);
      this.#changed();
    }
  }

  stop(): void {
    const me = this.current;
    if (me === null || !this.life.send({ type: 'stop' })) return;
    this.#stopClickedAt = performance.now();
    setStatus('stopping', 'stopping…');
    void this.api?.command('stop');
    this.#changed();
    // Stop works at any moment: a run that does not reach a boundary in time (a long CPU
    // phase, a wedged GPU) loses its worker; what it measured so far is kept.
    this.#stopTimer = setTimeout(() => {
      if (this.current !== me || this.life.phase !== 'stopping') return;
      this.spawn();
      this.#end(me, partialResult(me, 'EINTR: stopped (the worker was ended)'));
    }, STOP_DEADLINE_MS);
  }

  reset(): void {
    if (this.life.phase !== 'idle' && this.current?.result === null) this.spawn();
    if (this.#stopTimer !== null) clearTimeout(this.#stopTimer);
    this.#stopTimer = null;
    this.life.send({ type: 'reset' });
    this.current = null;
    this.pinned.length = 0;
    this.finished.length = 0;
    this.finishedLive.length = 0;
    setStatus('idle', 'idle');
    announce('Reset: results cleared.');
    this.#changed();
  }

  pin(): void {
    const me = this.current;
    if (me === null || me.result === null || this.pinned.includes(me)) return;
    this.pinned.push(me);
    announce(`Pinned the run (${describeConfig(me.config)}); the next runs are compared with it.`);
    this.#changed();
  }

  /** Runs read from an export: finished, the last one shown. */
  imported(runs: readonly RunResult[]): LiveRun | null {
    let last: LiveRun | null = null;
    for (const r of runs) {
      this.finished.push(r);
      const lr = LiveRun.fromResult(r);
      this.finishedLive.push(lr);
      last = lr;
    }
    if (last !== null && (controls(this.life.phase).run)) this.current = last;
    this.#changed();
    return last;
  }
}

export const runs = new Runs();

/** What a run measured so far, as a RunResult (a run still going, or one whose worker was ended). */
export function partialResult(r: LiveRun, error: string | null = null): RunResult {
  const t = totals(r.records);
  return {
    config: r.config, ok: error === null, error, wallMs: r.counters.wallMs, rounds: r.counters.rounds, faultRounds: t.rounds,
    totals: t, records: [...r.records], storm: { ops: 0, byKind: {} }, verify: { checked: 0, mismatches: 0 },
    faultsPerSec: t.serviceMs > 0 ? (t.unique / t.serviceMs) * 1000 : 0,
    lab: { simNs: r.counters.simMs * 1e6, cost: 'uvm-smart', invalidations: r.counters.invalidations },
  };
}
