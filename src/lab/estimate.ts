/**
 * Whether a run would take minutes, said before it starts. Each round of the command runs
 * the workload kernel over the whole buffer again (replays redo every invocation not yet
 * done), and on a software GPU a round over P pages costs roughly MS_PER_PAGE * P. The
 * number of rounds follows from the replay policy: 'once' services the whole fault buffer
 * per replay; the others replay after each batch of B faults (P / B rounds at least), and an
 * invalidation storm re-faults pages already serviced, which under 'block' (one batch, then
 * replay) keeps adding rounds for as long as the storm runs.
 * A rough figure on purpose: it decides a warning, not a result.
 */
import type { LabSettings } from './config.js';

/** A software rasteriser's cost of one round over one page (SwiftShader, 2 cores), ms. */
export const MS_PER_PAGE = 0.08;
/** Rounds' fixed cost (submit, map, read back), ms. */
export const MS_PER_ROUND = 4;
/** Above this the lab warns before the run. */
export const SLOW_SECONDS = 45;

export interface RunEstimate {
  pages: number;
  rounds: number;
  seconds: number;
  slow: boolean;
  message: string;
}

export function runEstimate(s: LabSettings): RunEstimate {
  const pages = Math.round(s.sizeMiB * 256);
  const perRound = s.replay === 'once' ? pages : Math.min(pages, s.batchSize);
  let rounds = Math.ceil(pages / Math.max(1, perRound)) + 1;
  // A storm invalidates pages while the rounds go; each re-faults (once more per round it
  // lands in). 'block' replays after a single batch, so re-faults cost whole rounds.
  if (s.stormRate > 0 && s.replay !== 'once') rounds = Math.ceil(rounds * (1 + s.stormRate / (s.replay === 'block' ? 500 : 2000)));
  const seconds = (rounds * (MS_PER_ROUND + MS_PER_PAGE * pages)) / 1000;
  const slow = seconds > SLOW_SECONDS;
  const message = slow
    ? `This run may take minutes on a software GPU (about ${rounds.toLocaleString('en-US')} rounds of the kernel over ${pages.toLocaleString('en-US')} pages, ~${Math.round(seconds / 60)} min): ` +
      `${s.replay === 'block' || s.replay === 'batch' || s.replay === 'batch-flush' ? `${s.replay} replays the kernel after every batch of ${s.batchSize} faults` : 'the buffer is large'}` +
      `${s.stormRate > 0 ? `, and the storm (${s.stormRate}/s) re-faults what it invalidates` : ''}. The progress bar shows how far it is; Stop keeps what it measured.`
    : '';
  return { pages, rounds, seconds, slow, message };
}
