import fs from 'node:fs';
import path from 'node:path';

/*
 * The code's layers, checked on the TypeScript sources: every import goes downwards (or stays
 * in its layer), nothing imports in a circle, and the code a browser would load to act with a
 * trained policy uses no Node-only module.
 */

const ROOT = path.resolve(__dirname, '..', '..');

/** Layers from the ground up; a file may import its own layer and those below. */
const LAYERS: ReadonlyArray<[string, string]> = [
  ['runtime/core/', 'ground (runtime/core)'],
  ['envs/', 'envs'],
  ['agents/', 'agents'],
  ['trainers/', 'trainers'],
  ['runtime/rollout/', 'rollout (runtime/rollout)'],
  ['runtime/training/', 'training (runtime/training)'],
  ['scripts/', 'scripts'],
  ['index.ts', 'the package entry (index.ts)'],
];

function layerOf(file: string): number {
  const i = LAYERS.findIndex(([prefix]) => file === prefix || file.startsWith(prefix));
  if (i < 0) throw new Error(`${file} belongs to no layer; add its folder to LAYERS (and to the README's layout)`);
  return i;
}

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(rel);
    }
  };
  for (const dir of ['envs', 'agents', 'trainers', 'runtime', 'scripts']) walk(dir);
  out.push('index.ts');
  return out.sort();
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|(?:require|import)\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Every module a file names (relative ones resolved to source files, type-only imports included). */
function importsOf(file: string, files: ReadonlySet<string>): { local: string[]; external: string[] } {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  const local: string[] = [];
  const external: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith('.')) {
      external.push(spec);
      continue;
    }
    const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
    const target = [`${base}.ts`, `${base}/index.ts`].find((c) => files.has(c));
    if (!target) throw new Error(`${file}: cannot resolve '${spec}'`);
    local.push(target);
  }
  return { local, external };
}

const files = sourceFiles();
const fileSet = new Set(files);
const graph = new Map(files.map((f) => [f, importsOf(f, fileSet)]));

describe('architecture', () => {
  test('the source tree is what this test reads (sanity)', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(graph.get('trainers/mappo.ts')!.local).toContain('trainers/learner.ts');
  });

  test('no layer imports a higher one', () => {
    const upward: string[] = [];
    for (const [file, { local }] of graph) {
      for (const target of local) {
        if (layerOf(target) > layerOf(file)) upward.push(`${file} (${LAYERS[layerOf(file)][1]}) imports ${target} (${LAYERS[layerOf(target)][1]})`);
      }
    }
    expect(upward).toEqual([]);
  });

  test('no import cycle, type-only imports included', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string) => {
      state.set(file, 'open');
      stack.push(file);
      for (const next of graph.get(file)!.local) {
        if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].join(' → '));
        else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  test('the detectors can fail: a constructed upward import and cycle are found', () => {
    const fake = new Map<string, string[]>([
      ['envs/a.ts', ['trainers/b.ts']],
      ['trainers/b.ts', ['envs/a.ts']],
    ]);
    expect(layerOf('trainers/b.ts')).toBeGreaterThan(layerOf('envs/a.ts'));
    const seen = new Set<string>();
    let cycle = false;
    const walk = (f: string, path: string[]) => {
      if (path.includes(f)) {
        cycle = true;
        return;
      }
      if (seen.has(f)) return;
      seen.add(f);
      for (const n of fake.get(f) ?? []) walk(n, [...path, f]);
    };
    walk('envs/a.ts', []);
    expect(cycle).toBe(true);
  });

  test('acting code loads in a browser: building a policy reaches no Node-only module', () => {
    const NODE_ONLY = /^(node:|fs$|fs\/|path$|os$|crypto$|child_process$|worker_threads$|module$|url$|piscina$|@tensorflow\/tfjs-node)/;
    const entries = ['agents/policies/build-policy.ts', 'agents/policies/policy.ts', 'agents/experience.ts'];
    const reached = new Set<string>();
    const bad: string[] = [];
    const visit = (file: string) => {
      if (reached.has(file)) return;
      reached.add(file);
      const { local, external } = graph.get(file)!;
      for (const m of external) if (NODE_ONLY.test(m)) bad.push(`${file} imports '${m}'`);
      local.forEach(visit);
    };
    entries.forEach(visit);
    expect(reached.has('agents/networks/agent-network.ts')).toBe(true);
    expect(reached.has('runtime/core/checkpoint-format.ts')).toBe(true);
    expect(bad).toEqual([]);
  });
});
