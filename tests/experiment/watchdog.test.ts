/**
 * The no-progress watchdog (src/experiment/watchdog.ts), pure: samples in, verdicts out. The
 * rounds bound counts replay rounds since an invocation completed, so a thrashing livelock
 * (pages moving every round, nothing finishing) is ended whatever the clocks say.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_WATCHDOG, parseWatchdog, Watchdog, type ProgressSample } from '../../src/experiment/watchdog.js';

const sample = (rounds: number, s: Partial<ProgressSample> = {}): ProgressSample => ({
  progress: 0, simNs: 0, wallMs: 0, throttled: 0, migratedIn: 0, evictedOut: 0, faults: 0, rounds, completed: 0, ...s,
});

describe('watchdog', () => {
  it('ends a livelock: pages move in and out every round (progress by the mapping count), no invocation completes', () => {
    const dog = new Watchdog({ simNs: Infinity, wallMs: Infinity, rounds: 50 }, 'policy "first-touch+tree+lru"');
    let verdict = null;
    let r = 0;
    // backprop's weight update before the fetch-order fix: ~115 pages in and ~100 out a round, nothing done.
    for (r = 1; r <= 1000 && verdict === null; r++) {
      verdict = dog.check(sample(r, { progress: 115 * r, migratedIn: 115 * r, evictedOut: 100 * r, faults: 256 * r, simNs: 1.5e5 * r, completed: 7 }));
    }
    expect(r - 1).toBe(52); // the first sample sets the mark; 51 rounds later is past the bound
    expect(verdict?.code).toBe('ETIMEDOUT');
    expect(verdict?.message).toBe('ETIMEDOUT: watchdog: no invocation completed for 51 rounds (bound 50): policy "first-touch+tree+lru" kept ' +
      'moving pages (5865 in, 5100 out, 13056 faults) without an invocation finishing: a livelock (--watchdog SIM_S,WALL_S,ROUNDS sets the bounds)');
  });

  it('never ends a run whose invocations keep completing, however many rounds and pages it takes', () => {
    const dog = new Watchdog({ simNs: 0, wallMs: 0, rounds: 1 }, 'x');
    for (let r = 1; r <= 5000; r++) {
      expect(dog.check(sample(r, { progress: r, migratedIn: r, completed: r, simNs: r * 1e9, wallMs: r * 1e3 }))).toBeNull();
    }
  });

  it('without a rounds bound (off) a livelock is left to the clocks', () => {
    const dog = new Watchdog({ simNs: Infinity, wallMs: Infinity }, 'x');
    for (let r = 1; r <= 5000; r++) expect(dog.check(sample(r, { progress: r, migratedIn: r }))).toBeNull();
  });

  it('parses SIM_S,WALL_S[,ROUNDS]; two parts keep the default rounds', () => {
    expect(parseWatchdog('2,off')).toEqual({ simNs: 2e9, wallMs: Infinity, rounds: DEFAULT_WATCHDOG.rounds });
    expect(parseWatchdog('off,3,40')).toEqual({ simNs: Infinity, wallMs: 3000, rounds: 40 });
    expect(parseWatchdog('1,1,off')).toEqual({ simNs: 1e9, wallMs: 1000, rounds: Infinity });
    expect(parseWatchdog('1,1,0')).toMatch(/ROUNDS a positive whole number/);
    expect(parseWatchdog('1,1,2.5')).toMatch(/ROUNDS a positive whole number/);
    expect(parseWatchdog('1')).toMatch(/^SIM_S,WALL_S\[,ROUNDS\]/);
  });
});
