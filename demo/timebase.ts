// The one time axis every plot shares: simulated time (the cost model's clock) by default,
// wall time on the toggle, and the zoomed range, which every plot follows (a zoom or pan in
// any of them moves all). Listeners redraw; nothing else keeps a range of its own.
import type { LiveRun } from '../src/lab/view.js';

export type Axis = 'sim' | 'wall';

type Listener = (from: string) => void;

class Timebase {
  axis: Axis = 'sim';
  /** The zoomed range in the axis's ms; null: the whole run. */
  range: [number, number] | null = null;
  readonly #listeners: Listener[] = [];

  listen(f: Listener): void {
    this.#listeners.push(f);
  }

  setRange(range: [number, number] | null, from = ''): void {
    if (range !== null && !(range[1] > range[0])) return;
    const same = range === null ? this.range === null : this.range !== null && this.range[0] === range[0] && this.range[1] === range[1];
    if (same) return;
    this.range = range;
    for (const f of this.#listeners) f(from);
  }

  setAxis(axis: Axis): void {
    if (axis === this.axis) return;
    this.axis = axis;
    this.range = null;
    for (const f of this.#listeners) f('axis');
  }

  label(): string {
    return this.axis === 'sim' ? 'simulated ms (cost model)' : 'wall ms';
  }
}

export const timebase = new Timebase();

/** The batch end times of a run on the chosen axis. */
export function batchTimes(r: LiveRun, axis: Axis = timebase.axis): number[] {
  return axis === 'sim' ? r.series.simMs : r.series.wallMs;
}

/** The extent of a run's events on the axis: [0, last event]. */
export function extent(runs: readonly (LiveRun | null)[], axis: Axis = timebase.axis): [number, number] {
  let hi = 0;
  for (const r of runs) {
    if (!r) continue;
    const t = batchTimes(r, axis);
    if (t.length) hi = Math.max(hi, t[t.length - 1]);
    const last = r.rounds.at(-1);
    if (last) hi = Math.max(hi, axis === 'sim' ? last.simMs : last.wallMs);
    const f = r.frames.at(-1);
    if (f) hi = Math.max(hi, axis === 'sim' ? f.simMs : f.wallMs);
  }
  return [0, hi > 0 ? hi : 1];
}

/** The range drawn now: the zoom, or the runs' extent. */
export function visible(runs: readonly (LiveRun | null)[]): [number, number] {
  return timebase.range ?? extent(runs);
}
