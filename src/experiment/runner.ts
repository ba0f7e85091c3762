/**
 * PLACEHOLDER — the lead replaces this file with the real workload runner.
 *
 * It exists only so that main.ts type-checks against the runner's contract:
 *   runOne(config, ctx)   run one RunConfig on the GPU and measure it
 *   openExperiment()      open the GPU/machine once for the whole experiment
 * Both throw until the real runner lands.
 */
import type { RunConfig, RunResult } from './types.js';

export async function openExperiment(): Promise<{ adapter: string; close(): Promise<void> }> {
  throw new Error('runner not implemented (src/experiment/runner.ts is a placeholder)');
}

export async function runOne(config: RunConfig, ctx: { onProgress?: (msg: string) => void }): Promise<RunResult> {
  void config;
  void ctx;
  throw new Error('runner not implemented (src/experiment/runner.ts is a placeholder)');
}
