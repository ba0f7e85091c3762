/**
 * The code's shape (issue 8's "Must show"): file sizes, no double casts, the mm's imports,
 * and no import cycle among the driver and device files. A tiny import graph built from
 * the sources' `import ... from '...'` lines (type-only imports included: a cycle of types
 * is still a cycle to a reader).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
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

  test('no double cast through unknown in src, tests or bench (a deliberately ill-typed input goes through tests/support/forge.ts)', () => {
    const more = [...files(join(ROOT, 'tests')), ...files(join(ROOT, 'bench')).filter((f) => !rel(f).startsWith('bench/.tmp/'))];
    const needle = ['as', 'unknown', 'as'].join(' ');
    expect([...all, ...more].filter((f) => readFileSync(f, 'utf8').includes(needle)).map(rel)).toEqual([]);
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

  test('no file under src/policy imports from src/driver (the policy is pure: plans go out, results come back)', () => {
    const bad = all.filter((f) => rel(f).startsWith('src/policy/'))
      .flatMap((f) => imports(f).filter((i) => rel(i).startsWith('src/driver/')).map((i) => `${rel(f)} → ${rel(i)}`));
    expect(bad).toEqual([]);
  });

  test("no module (a directory of src) writes a field of another module's object", () => {
    // The type checker resolves each assignment's target: a property declared by a class in
    // another directory of src (its state) must not be assigned (=, op=, ++, --) from here.
    const program = ts.createProgram(all, { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, noEmit: true, skipLibCheck: true, types: [] });
    const checker = program.getTypeChecker();
    const writes: string[] = [];
    let seen = 0;
    const target = (n: ts.Node): ts.PropertyAccessExpression | null => {
      if (ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment) {
        return ts.isPropertyAccessExpression(n.left) ? n.left : null;
      }
      if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)) {
        return ts.isPropertyAccessExpression(n.operand) ? n.operand : null;
      }
      return null;
    };
    for (const sf of program.getSourceFiles().filter((f) => all.includes(resolve(f.fileName)))) {
      const dir = dirname(rel(resolve(sf.fileName)));
      const visit = (n: ts.Node): void => {
        const t = target(n);
        const decl = t === null ? undefined : checker.getSymbolAtLocation(t.name)?.valueDeclaration;
        if (t !== null && decl !== undefined && ts.isPropertyDeclaration(decl) && ts.isClassLike(decl.parent)) {
          seen++;
          const owner = dirname(rel(resolve(decl.getSourceFile().fileName)));
          if (owner !== dir) writes.push(`${rel(resolve(sf.fileName))}: ${t.getText(sf)} (a field of ${decl.parent.name?.text ?? 'a class'} in ${owner})`);
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
    expect(seen).toBeGreaterThan(100); // the scan sees class fields being written (each class's own)
    expect(writes).toEqual([]);
  }, 120_000);

  test('no dead export: every name src exports is used somewhere (src, tests, demo, bench, scripts, examples)', () => {
    const others = ['tests', 'demo', 'bench', 'scripts', 'examples'].flatMap((d) => {
      try {
        return files(join(ROOT, d));
      } catch {
        return [];
      }
    }).filter((f) => !rel(f).startsWith('bench/.tmp/'));
    const text = new Map([...all, ...others].map((f) => [f, readFileSync(f, 'utf8')]));
    const dead: string[] = [];
    for (const f of all) {
      for (const m of text.get(f)!.matchAll(/^export (?:async )?(?:function|const|let|class|abstract class|type|interface|enum)\s+(\w+)/gm)) {
        const word = new RegExp(`\\b${m[1]}\\b`, 'g');
        const uses = [...text].reduce((n, [g, t]) => n + (t.match(word)?.length ?? 0) - (g === f ? 1 : 0), 0);
        if (uses === 0) dead.push(`${rel(f)}: ${m[1]}`);
      }
    }
    expect(dead).toEqual([]);
  });

  test('one retry loop: in src/driver only hmmRangeLoop calls hmm_range_fault (valid-flag\'s v5.2 call aside)', () => {
    const calls = all.filter((f) => rel(f).startsWith('src/driver/'))
      .flatMap((f) => [...code(f).matchAll(/\bhmmRangeFault\(/g)].map(() => rel(f)));
    expect(calls).toEqual(['src/driver/retry.ts']);
    const retry = code(join(SRC, 'driver/retry.ts'));
    const loop = retry.slice(retry.indexOf('export async function hmmRangeLoop'));
    expect(loop.indexOf('hmmRangeFault(')).toBeGreaterThan(0);
    expect(loop.slice(0, loop.indexOf('\n}\n')).includes('hmmRangeFault(')).toBe(true);
  });

  test('two fault services behind FaultService, observed through events: nothing subclasses, wraps or replaces a service', () => {
    const driver = all.filter((f) => rel(f).startsWith('src/driver/'));
    const services = driver.filter((f) => /class \w+ extends ServiceCore\b/.test(code(f))).map(rel).sort();
    expect(services).toEqual(['src/driver/batch-service.ts', 'src/driver/range-service.ts']);
    const outside = [...all, ...files(join(ROOT, 'tests'))].filter((f) => !services.includes(rel(f)) && rel(f) !== 'tests/structure.test.ts')
      .filter((f) => /extends (?:ServiceCore|BatchFaultService|RangeFaultService)\b|\.servicer\s*=[^=]|wrapServicer|ObservedServicer/.test(code(f))).map(rel);
    expect(outside).toEqual([]);
  });

  test('one thrashing detector: the residency counts no thrashing (thrashing.ts does)', () => {
    expect(code(join(SRC, 'policy/residency.ts'))).not.toMatch(/thrash/i);
    expect(code(join(SRC, 'policy/thrashing.ts'))).toMatch(/export class ThrashingMeter\b/);
  });

  test('words(), WORDS_PER_PAGE and the macrotask shim are written once (src, tests, bench)', () => {
    const more = [...all, ...files(join(ROOT, 'tests')), ...files(join(ROOT, 'bench')).filter((f) => !rel(f).startsWith('bench/.tmp/'))];
    const where = (re: RegExp): string[] => more.filter((f) => re.test(code(f))).map(rel);
    expect(where(/function words\(/)).toEqual(['src/device/abi.ts']);
    expect(where(/\bWORDS_PER_PAGE\s*=/)).toEqual(['src/device/abi.ts']);
    expect(where(/MessageChannel\(\)/)).toEqual(['src/sched/macrotask.ts']);
  });

  test('no test file outside tests/support calls createMachine: machines come from the fixtures, torn down with the leak check', () => {
    // machineTest / mirrorTest (and their `machines` factory) for tests; standaloneMachine
    // (teardown.ts) for code that also runs outside vitest (the search harness, under
    // scripts/soak.ts). Every one ends in checkMachineTeardown. The scan sees calls: the
    // support files make theirs.
    const callers = files(join(ROOT, 'tests')).filter((f) => /\bcreateMachine\s*\(/.test(code(f))).map(rel).sort();
    expect(callers).toEqual(['tests/support/machine.ts', 'tests/support/mirror.ts', 'tests/support/teardown.ts']);
  });

  test('one thing is called aperture (the driver\'s Aperture) and evict means device memory going home', () => {
    const apertures = all.filter((f) => /^\s*(?:readonly\s+)?aperture\s*:/m.test(code(f))).map(rel);
    expect(apertures.filter((f) => f !== 'src/driver/dmirror.ts' && f !== 'src/lab/snapshot.ts')).toEqual([]);
    expect(all.filter((f) => rel(f).startsWith('src/device/') || rel(f) === 'src/driver/mirror-pt.ts').filter((f) => /\bevict\w*\s*\(/.test(code(f))).map(rel)).toEqual([]);
  });

  test('the import scan sees imports (a sanity check of the scanner)', () => {
    const dm = imports(join(SRC, 'driver/dmirror.ts')).map(rel);
    expect(dm).toContain('src/driver/mirror-pt.ts');
    expect(dm).toContain('src/device/replay.ts');
  });
});
