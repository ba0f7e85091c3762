/**
 * One verdict per run, from its verification: the status line, the live announcement, the
 * comparison table, the log's end line and the report all read it from here, and it is the
 * report's own (summarizeRun: ok / error / mismatch), so the lab and runs.csv never disagree.
 * A run the user stopped (EINTR) is 'stopped', whatever it had verified so far.
 */
import { statusText, summarizeRun, type RunStatus } from '../experiment/report/summary.js';
import type { RunResult } from '../experiment/types.js';

export type EndState = 'done' | 'failed' | 'stopped';

export interface Verdict {
  /** How the run's life ended (lifecycle.ts): done only when the data verified. */
  state: EndState;
  /** The report's status of the run. */
  status: RunStatus;
  /** 'ok', 'WRONG: n of m words wrong', 'error: …' or 'stopped: …'. */
  text: string;
}

export function isStopped(r: RunResult): boolean {
  return /^EINTR\b/.test(r.error ?? '');
}

export function verdictOf(r: RunResult): Verdict {
  const s = summarizeRun(r, 0);
  if (isStopped(r)) return { state: 'stopped', status: s.status, text: `stopped (${r.error})` };
  return { state: s.status === 'ok' ? 'done' : 'failed', status: s.status, text: statusText(s) };
}
