/**
 * Every `npm run experiment` command in the README runs as printed (issue 19: its own
 * --record-trace example was refused). Each is taken from the README's sh blocks, its out/
 * paths moved to a temporary directory, and run through main() in order (a recorded trace
 * feeds the next command) with a fake runner: what is checked is that the command line is
 * accepted, nothing refused (exit 2) and no merge refused (exit 4). The mm preset runs for
 * real at a small size.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { EXIT_MERGE_REFUSED, EXIT_USAGE } from '../../src/experiment/exit-codes.js';
import { main, type Runner } from '../../src/experiment/main.js';
import { fakeRunner } from './fixtures.js';

/** The README's experiment commands, in order, as argv (comments dropped). */
export function readmeCommands(text: string): string[][] {
  const out: string[][] = [];
  for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const raw of block[1].split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').trim();
      const m = /^npm run experiment(?: -- (.*))?$/.exec(line);
      if (m === null || line.includes('$')) continue; // scheduler templates: their variables are the scheduler's
      out.push(m[1] === undefined ? [] : m[1].split(/\s+/));
    }
  }
  return out;
}

/** A fake runner that also records a trace when asked (two device faults, one CPU fault). */
function recordingRunner(): Runner {
  const base = fakeRunner();
  return {
    openExperiment: base.openExperiment,
    async runOne(cfg, ctx) {
      ctx.recordTrace?.push({ time: 0, addr: 0x4000_0000, access: 0, proc: 0 }, { time: 10, addr: 0x4000_1000, access: 1, proc: 0 },
        { time: 20, addr: 0x4000_0000, access: 1, proc: -1 });
      return base.runOne(cfg, ctx);
    },
  };
}

describe('README commands', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mirrorlab-readme-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const commands = readmeCommands(readFileSync('README.md', 'utf8'));

  it('finds the commands', () => {
    expect(commands.length).toBeGreaterThanOrEqual(8);
    expect(commands.some((c) => c[0] === 'merge')).toBe(true);
    expect(commands.some((c) => c.includes('--record-trace'))).toBe(true);
  });

  it.each(commands.map((c, i) => [i + 1, c.join(' ')] as const))('command %i runs as printed: npm run experiment -- %s', async (i) => {
    vi.spyOn(console, 'log').mockImplementation(() => {});
    vi.spyOn(console, 'error').mockImplementation(() => {});
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const argv = commands[i - 1].map((a) => a.replace(/^(trace:)?out\//, (_, t: string | undefined) => `${t ?? ''}${dir}/`));
    const small = argv.includes('--preset') && !argv.some((a) => /\bmm\b|\ball\b/.test(a)) ? [] : ['--pages', '16', '--rounds', '20'];
    const extra = argv[0] === 'merge' ? [] : [...small, ...(argv.includes('--out') ? [] : ['--out', join(dir, `run-${i}`)]), '--quiet'];
    const err: string[] = [];
    vi.mocked(console.error).mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
    const code = await main([...argv, ...extra], recordingRunner());
    expect([EXIT_USAGE, EXIT_MERGE_REFUSED], err.join('\n')).not.toContain(code);
    vi.restoreAllMocks();
  });
});
