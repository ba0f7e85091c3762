/**
 * A lab run's life, one state machine that the page's buttons and the worker's reports both
 * go through (demo/run.ts): the user's intents and the worker's state events are events
 * here; a transition not in the table is refused (null) and changes nothing. The buttons'
 * enabled state is derived from the phase alone (controls()).
 *
 *   idle ──start──▶ running ◀──resume/worker running──▶ paused ◀──worker held── stepping
 *     ▲               │  └──────────step──────────────▶ stepping                    │
 *     │              stop (any live phase) ──▶ stopping ──end──▶ stopped            │
 *   reset           end: the verdict (verdict.ts) ──▶ done | failed | stopped ◀──────┘
 *
 * 'stopped' is an ended phase like done and failed: a run the user stopped (EINTR).
 */
import type { RunMode } from './controller.js';
import type { EndState } from './verdict.js';

export type Phase = 'idle' | 'running' | 'paused' | 'stepping' | 'stopping' | EndState;

export type LifeEvent =
  /** Run (step: false) or Step (true) from idle or an ended run: a new run starts. */
  | { type: 'start'; step: boolean }
  /** The user's commands to a live run. */
  | { type: 'pause' } | { type: 'resume' } | { type: 'step' } | { type: 'stop' }
  /** The worker's controller reports its mode (held: it holds at a replay boundary now). */
  | { type: 'worker'; mode: RunMode; held: boolean }
  /** The run's result arrived, with its verdict. */
  | { type: 'end'; state: EndState }
  | { type: 'reset' };

const LIVE: readonly Phase[] = ['running', 'paused', 'stepping', 'stopping'];
const ENDED: readonly Phase[] = ['idle', 'done', 'failed', 'stopped'];

export function isLive(p: Phase): boolean {
  return LIVE.includes(p);
}

/** The phase after `e`, or null when `e` is not allowed in `p` (nothing changes). */
export function next(p: Phase, e: LifeEvent): Phase | null {
  switch (e.type) {
    case 'reset':
      return 'idle';
    case 'start':
      return ENDED.includes(p) ? (e.step ? 'stepping' : 'running') : null;
    case 'pause':
      return p === 'running' || p === 'stepping' ? 'paused' : null;
    case 'resume':
      return p === 'paused' ? 'running' : null;
    case 'step':
      return p === 'running' || p === 'paused' ? 'stepping' : null;
    case 'stop':
      return p === 'running' || p === 'paused' || p === 'stepping' ? 'stopping' : null;
    case 'worker':
      // Once stopping, only the end moves the run on; an ended run hears nothing more.
      if (p === 'stopping' || !isLive(p)) return null;
      return e.mode === 'paused' ? 'paused' : e.mode;
    case 'end':
      return isLive(p) ? e.state : null;
  }
}

/** Which controls a phase allows. */
export interface Controls {
  run: boolean;
  resume: boolean;
  pause: boolean;
  step: boolean;
  stop: boolean;
  /** Pin, export: a finished run exists in this phase. */
  ended: boolean;
}

export function controls(p: Phase): Controls {
  return {
    run: next(p, { type: 'start', step: false }) !== null,
    resume: next(p, { type: 'resume' }) !== null,
    pause: next(p, { type: 'pause' }) !== null,
    step: next(p, { type: 'start', step: true }) !== null || next(p, { type: 'step' }) !== null,
    stop: next(p, { type: 'stop' }) !== null,
    ended: p === 'done' || p === 'failed' || p === 'stopped',
  };
}

/** The run's life: the phase, moved only by send(). */
export class RunLife {
  #phase: Phase = 'idle';
  readonly #listeners: ((p: Phase, e: LifeEvent) => void)[] = [];

  get phase(): Phase {
    return this.#phase;
  }

  /** Applies `e`; false (and no change) when the phase does not allow it. */
  send(e: LifeEvent): boolean {
    const p = next(this.#phase, e);
    if (p === null) return false;
    this.#phase = p;
    for (const f of this.#listeners) f(p, e);
    return true;
  }

  onChange(f: (p: Phase, e: LifeEvent) => void): void {
    this.#listeners.push(f);
  }
}
