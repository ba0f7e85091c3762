/**
 * The policy lab's README table ("The migration-policy lab") from experiment reports:
 *   node --import tsx scripts/policy-table.ts out/DIR/report.json [more.json ...]
 * One table per workload: each policy's simulated time and bytes moved (both ways) at each
 * oversubscription, with the ratio to first touch on the same workload and oversubscription.
 */
import { readFileSync } from 'node:fs';
import type { ExperimentReport, RunResult } from '../src/experiment/types.js';

const runs: RunResult[] = process.argv.slice(2).flatMap((f) => (JSON.parse(readFileSync(f, 'utf8')) as ExperimentReport).runs);
const withPolicy = runs.filter((r) => r.policy && r.ok && r.verify.mismatches === 0);
const key = (r: RunResult): string => `${r.config.workload}|${r.config.sizeMiB}|${r.config.phases ?? ''}`;
const groups = new Map<string, RunResult[]>();
for (const r of withPolicy) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
const oversubs = [...new Set(withPolicy.map((r) => r.config.oversub ?? 1))].sort((a, b) => a - b);
const moved = (r: RunResult): number => r.policy!.bytesToDevice + r.policy!.bytesToHost;
for (const [k, rs] of groups) {
  const [workload, size, phases] = k.split('|');
  const pages = Math.round(Number(size) * 256);
  console.log(`\n**${workload}** (${pages} pages${phases ? `, ${phases} hand-offs` : ''})\n`);
  console.log(`| policy | ${oversubs.map((o) => `${o}x sim time | ${o}x moved`).join(' | ')} |`);
  console.log(`|---|${oversubs.map(() => '---:|---:').join('|')}|`);
  const policies = [...new Set(rs.map((r) => r.config.policy!))];
  for (const p of policies) {
    const cells = oversubs.map((o) => {
      const r = rs.find((x) => x.config.policy === p && (x.config.oversub ?? 1) === o);
      const ft = rs.find((x) => x.config.policy === 'first-touch' && (x.config.oversub ?? 1) === o);
      if (!r) return '— | —';
      const t = r.policy!.simTimeNs / 1e6;
      const tr = ft ? ` (${(r.policy!.simTimeNs / ft.policy!.simTimeNs).toFixed(2)})` : '';
      const mb = moved(r) / 1048576;
      const br = ft && moved(ft) > 0 ? ` (${(moved(r) / moved(ft)).toFixed(2)})` : '';
      return `${t.toFixed(2)} ms${tr} | ${mb.toFixed(2)} MiB${br}`;
    });
    console.log(`| ${p} | ${cells.join(' | ')} |`);
  }
}
