/**
 * npm run soak's settings: the environment (SOAK_RUNS, SOAK_SEED, SOAK_PROTOCOLS) and
 * argv (--help; nothing else is an option). A word it does not know is an error, not the
 * start of a soak of hours.
 */
export const SOAK_PROTOCOLS = ['seq', 'lock-fallback', 'valid-flag'] as const;
export type SoakProtocol = (typeof SOAK_PROTOCOLS)[number];

export const SOAK_USAGE = `Usage: npm run soak   (settings from the environment)

The concurrency search (tests/search) at a hundred times the cases npm test runs, per retry
protocol; prints the cases, schedules and violations by protocol, and each protocol's first
violating case shrunk, with the seed and path that replay it:
  SEARCH_SEED=<seed> SEARCH_PATH=<path> npx vitest run --project node tests/search

Environment:
  SOAK_RUNS=N             cases per protocol (default 25000)
  SOAK_SEED=N             fast-check seed (default: random, printed)
  SOAK_PROTOCOLS=a,b      of ${SOAK_PROTOCOLS.join(', ')} (default all three)

Exit status: 0 when it finished (violations are reported, not an error), 2 bad settings.`;

export type SoakSettings =
  | { kind: 'run'; runs: number; seed: number; protocols: SoakProtocol[] }
  | { kind: 'help' }
  | { kind: 'error'; message: string };

export function soakSettings(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): SoakSettings {
  if (argv.some((a) => a === '--help' || a === '-h')) return { kind: 'help' };
  if (argv.length > 0) return { kind: 'error', message: `unexpected argument '${argv[0]}' (settings come from the environment; --help)` };
  const runs = Number(env.SOAK_RUNS ?? 100 * 250);
  if (!Number.isSafeInteger(runs) || runs < 1) return { kind: 'error', message: `SOAK_RUNS=${env.SOAK_RUNS} is not a positive integer` };
  const seed = env.SOAK_SEED !== undefined ? Number(env.SOAK_SEED) : Math.floor(Math.random() * 0x7fffffff);
  if (!Number.isSafeInteger(seed)) return { kind: 'error', message: `SOAK_SEED=${env.SOAK_SEED} is not an integer` };
  const protocols = env.SOAK_PROTOCOLS?.split(',').map((p) => p.trim()) ?? [...SOAK_PROTOCOLS];
  const unknown = protocols.find((p) => !(SOAK_PROTOCOLS as readonly string[]).includes(p));
  if (unknown !== undefined) return { kind: 'error', message: `SOAK_PROTOCOLS: unknown protocol '${unknown}' (${SOAK_PROTOCOLS.join(', ')})` };
  return { kind: 'run', runs, seed, protocols: protocols as SoakProtocol[] };
}
