// The layers of lib/ (docs/architecture.md): each folder imports only from the folders
// below it, and no module imports itself through others (no import circle, type-only
// imports included).
import * as fs from 'fs';
import * as path from 'path';

const LIB = path.join(__dirname, '..', 'lib');

/** The folders, lowest first; a module may import from its own folder and the ones it lists. */
const ALLOWED: Record<string, string[]> = {
  core: ['core'],
  data: ['data', 'core'],
  logging: ['logging', 'core'],
  train: ['train', 'logging', 'core'],
  app: ['app', 'train', 'data', 'logging', 'core'],
  '.': ['.', 'app', 'train', 'data', 'logging', 'core'],
};

function modules(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...modules(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function resolve(from: string, spec: string): string {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(c)) return c;
  throw new Error(`${path.relative(LIB, from)}: cannot resolve '${spec}'`);
}

function imports(file: string): string[] {
  const src = fs.readFileSync(file, 'utf8');
  const specs = [...src.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s+'(\.[^']*)'/g)].map((m) => m[1]);
  return specs.map((s) => resolve(file, s));
}

const layer = (file: string) => {
  const rel = path.relative(LIB, file).split(path.sep);
  return rel.length === 1 ? '.' : rel[0];
};

const graph = new Map(modules(LIB).map((f) => [f, imports(f)]));

describe('lib/ layers', () => {
  it('finds the modules and their imports', () => {
    expect(graph.size).toBeGreaterThan(20);
    expect(graph.get(path.join(LIB, 'core', 'trainer.ts'))).toContain(path.join(LIB, 'core', 'native.ts'));
  });

  it('each folder imports only from itself and the folders below it', () => {
    const bad: string[] = [];
    for (const [file, deps] of graph) {
      const allowed = ALLOWED[layer(file)];
      if (!allowed) {
        bad.push(`${path.relative(LIB, file)}: folder '${layer(file)}' is not a known layer`);
        continue;
      }
      for (const d of deps) {
        if (!allowed.includes(layer(d))) bad.push(`${path.relative(LIB, file)} imports ${path.relative(LIB, d)}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('has no import circle', () => {
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, 'open');
      stack.push(f);
      for (const d of graph.get(f) ?? []) {
        if (state.get(d) === 'open') {
          circles.push(stack.slice(stack.indexOf(d)).concat(d).map((x) => path.relative(LIB, x)).join(' -> '));
        } else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of graph.keys()) if (!state.has(f)) visit(f);
    expect(circles).toEqual([]);
  });
});
