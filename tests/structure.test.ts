/**
 * The code's shape (issue 8's "Must show"): file sizes, no double casts, the mm's imports,
 * and no import cycle among the driver and device files. A tiny import graph built from
 * the sources' `import ... from '...'` lines (type-only imports included: a cycle of types
 * is still a cycle to a reader).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { AXES } from '../src/experiment/schema.js';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
const SRC = join(ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : /\.ts$/.test(n) ? [p] : [];
  });
}

const all = files(SRC);
const DEMO = files(join(ROOT, 'demo'));

/** The code of a file without its comments (a crude scan: enough for flags and field writes). */
function code(file: string): string {
  return readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}
const rel = (p: string): string => relative(ROOT, p);

/** The src files a file imports (relative specifiers only, '.js' → '.ts'). */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'/gms)) {
    const spec = m[1];
    if (!spec.endsWith('.js')) continue; // ?raw shaders and the like
    out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  for (const m of text.matchAll(/^import\s+'(\.[^']+)\.js';/gm)) out.push(resolve(dirname(file), `${m[1]}.ts`));
  return out;
}

describe('structure', () => {
  test('no file in src over 600 lines (src/mm/vma-tree.ts is one cohesive structure)', () => {
    const big = all.filter((f) => rel(f) !== 'src/mm/vma-tree.ts')
      .map((f) => ({ f: rel(f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
      .filter((x) => x.lines > 600);
    expect(big).toEqual([]);
  });

  test("no 'as unknown as' in src", () => {
    expect(all.filter((f) => readFileSync(f, 'utf8').includes('as unknown as')).map(rel)).toEqual([]);
  });

  test('src/mm imports only src/mm, src/sched and src/errors.ts', () => {
    const bad: string[] = [];
    for (const f of all.filter((x) => rel(x).startsWith('src/mm/'))) {
      for (const i of imports(f)) {
        const r = rel(i);
        if (!(r.startsWith('src/mm/') || r.startsWith('src/sched/') || r === 'src/errors.ts')) bad.push(`${rel(f)} → ${r}`);
      }
    }
    expect(bad).toEqual([]);
  });

  test('no import cycle among src/driver and src/device files', () => {
    const scope = all.filter((f) => /^src\/(driver|device)\//.test(rel(f)));
    const inScope = new Set(scope);
    const edges = new Map(scope.map((f) => [f, imports(f).filter((i) => inScope.has(i))]));
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].map(rel).join(' → '));
        return;
      }
      state.set(f, 'open');
      for (const g of edges.get(f) ?? []) visit(g, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of scope) visit(f, []);
    expect(cycles).toEqual([]);
  });

  test("the run schema (src/experiment/schema.ts) is the only place an axis's flag is spelled", () => {
    const flags = Object.values(AXES).map((a) => a.flag);
    expect(flags).toContain('--workload');
    const schema = code(join(SRC, 'experiment/schema.ts'));
    expect(flags.filter((f) => !new RegExp(`${f}(?![\\w-])`).test(schema))).toEqual([]); // the scan sees them
    const spelled: string[] = [];
    for (const f of [...all, ...DEMO].filter((x) => rel(x) !== 'src/experiment/schema.ts')) {
      const text = code(f);
      for (const flag of flags) if (new RegExp(`${flag}(?![\\w-])`).test(text)) spelled.push(`${rel(f)}: ${flag}`);
    }
    expect(spelled).toEqual([]);
  });

  test('the import scan sees imports (a sanity check of the scanner)', () => {
    const dm = imports(join(SRC, 'driver/dmirror.ts')).map(rel);
    expect(dm).toContain('src/driver/mirror-pt.ts');
    expect(dm).toContain('src/device/replay.ts');
  });
});
