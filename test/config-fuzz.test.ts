// Property test of configuration validation: the example configurations mutated at random
// (seeded) — wrong types, out-of-range numbers, missing and extra fields, odd strings,
// __proto__ keys, broken JSON, random --set overrides — go through the CLI with --dry-run.
// Every outcome is success or a single clean error line; never a stack, a crash, an
// internal error, a write, or a polluted prototype.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { runCli } from '../lib/app/cli';
import { mulberry32 } from '../lib/data/random';

const CASES = 400;
const EXAMPLES = path.join(__dirname, '..', 'examples', 'configs');

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const ODD_VALUES: Json[] = [
  0, -1, 1, 0.5, 1.5, -1e-9, 1e308, -1e308, 2 ** 53, 3, 100000, '', ' ', '..', '.', '../../escape', 'a/b', '/proc/self', '\u0000', '\u001b[2J\u0007',
  'x'.repeat(3000), '\u202eevil', 'üñí©ødé', 'NaN', 'true', '1e400', true, false, null, [], [1, 'a', null], {}, { x: 1 }, { kind: 'mlp' }, [{}],
];
const EXTRA_KEYS = ['extra', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', ' ', 'kind', 'groups', 'validation'];
const SET_KEYS = ['__proto__.x', 'constructor.prototype.x', 'a..b', '[0]', 'attack.groups[999999999].epsilon', 'training.epochs[0]', 'data', 'x.y.z', 'name', '=', 'model.__proto__'];
const SET_VALUES = ['1', '"s"', '{', 'null', '[]', '{"__proto__":{"p":1}}', '1e400', '-0', 'undefined', '"../.."', '\u0000', ''];

interface Slot {
  parent: Json[] | { [k: string]: Json };
  key: string | number;
  path: string;
}

function slots(value: Json, at = ''): Slot[] {
  const out: Slot[] = [];
  if (Array.isArray(value)) {
    value.forEach((v, k) => {
      out.push({ parent: value, key: k, path: `${at}[${k}]` });
      out.push(...slots(v, `${at}[${k}]`));
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const p = at ? `${at}.${k}` : k;
      out.push({ parent: value, key: k, path: p });
      out.push(...slots(v, p));
    }
  }
  return out;
}

function mutate(config: Json, rand: () => number): { config: Json; text?: string; sets: string[] } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const sets: string[] = [];
  const n = 1 + Math.floor(rand() * 3);
  for (let m = 0; m < n; m++) {
    const all = slots(config);
    const op = rand();
    if (op < 0.35 && all.length) {
      const s = pick(all);
      (s.parent as Record<string | number, Json>)[s.key] = structuredClone(pick(ODD_VALUES));
    } else if (op < 0.5 && all.length) {
      const s = pick(all);
      if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
      else delete s.parent[s.key as string];
    } else if (op < 0.7) {
      const objects = [config, ...all.map((s) => (s.parent as Record<string | number, Json>)[s.key])].filter(
        (v): v is { [k: string]: Json } => v !== null && typeof v === 'object' && !Array.isArray(v),
      );
      if (objects.length) {
        // defineProperty so that '__proto__' becomes an own key, as JSON.parse makes it.
        Object.defineProperty(pick(objects), pick(EXTRA_KEYS), { value: structuredClone(pick(ODD_VALUES)), enumerable: true, writable: true, configurable: true });
      }
    } else if (op < 0.85) {
      const known = all.map((s) => s.path);
      const key = rand() < 0.6 && known.length ? pick(known) : pick(SET_KEYS);
      const value = rand() < 0.5 ? pick(SET_VALUES) : JSON.stringify(pick(ODD_VALUES));
      sets.push(`${key}=${value}`);
    } else if (op < 0.9) {
      config = structuredClone(pick(ODD_VALUES));
    } else if (op < 0.95) {
      const text = JSON.stringify(config);
      return { config, text: text.slice(0, Math.floor(rand() * text.length)), sets };
    } else {
      return { config, text: JSON.stringify(config).replace(/"[a-z]/, '"\u001b\ud800'), sets };
    }
  }
  return { config, sets };
}

test(`${CASES} mutated example configurations: success or one clean error line`, async () => {
  const examples = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.json')).sort();
  expect(examples.length).toBeGreaterThanOrEqual(2);
  const bases = examples.map((f) => JSON.parse(fs.readFileSync(path.join(EXAMPLES, f), 'utf8')) as Json);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-config-fuzz-'));
  const cwd = process.cwd();
  process.chdir(dir); // a relative output.dir would land here; --dry-run must write nothing
  const rand = mulberry32(20240611);
  const outcomes = { ok: 0, config: 0, runtime: 0 };
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  // structuredClone makes objects of the outer realm (jest runs tests in a vm context): watch both prototypes.
  const outer = Object.getPrototypeOf(structuredClone({})) as object;
  const protoKeys = Object.getOwnPropertyNames(Object.prototype).sort();
  const outerKeys = Object.getOwnPropertyNames(outer).sort();
  try {
    for (let c = 0; c < CASES; c++) {
      const { config, text, sets } = mutate(structuredClone(bases[c % bases.length]), rand);
      const file = path.join(dir, `case-${c}.json`);
      fs.writeFileSync(file, text ?? JSON.stringify(config));
      const command = rand() < 0.7 ? 'train' : 'compare';
      const argv = [command, '--config', file, '--dry-run', ...sets.flatMap((s) => ['--set', s])];
      const errs: string[] = [];
      let code: number;
      try {
        code = await runCli(argv, { write: (s: string) => errs.push(s) }, {});
      } catch (e) {
        throw new Error(`case ${c} (${JSON.stringify(argv)}): runCli threw ${String(e)}`);
      }
      const err = errs.join('');
      const context = `case ${c}: ${JSON.stringify(argv)} ${(text ?? JSON.stringify(config)).slice(0, 300)}\n${err}`;
      if (code === 0) {
        if (err !== '') throw new Error(`success with stderr output: ${context}`);
        outcomes.ok++;
        continue;
      }
      if (code !== 1 && code !== 2) throw new Error(`exit status ${code}: ${context}`);
      code === 2 ? outcomes.config++ : outcomes.runtime++;
      const line = err.endsWith('\n') ? err.slice(0, -1) : null;
      if (line === null || line.includes('\n')) throw new Error(`not one line: ${context}`);
      if (!line.startsWith('dropattack: ')) throw new Error(`no prefix: ${context}`);
      if (/internal error|\n\s+at |\bat .*:\d+:\d+\)/.test(line)) throw new Error(`internal error or stack: ${context}`);
      // eslint-disable-next-line no-control-regex
      if (/[\x00-\x1f\x7f-\x9f\ufffd\u202e]|[\ud800-\udfff]/.test(line)) throw new Error(`unescaped character: ${context}`);
      if (line.length > 1100) throw new Error(`line too long (${line.length}): ${context}`);
    }
  } finally {
    log.mockRestore();
    process.chdir(cwd);
  }
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoKeys);
  expect(Object.getOwnPropertyNames(outer).sort()).toEqual(outerKeys);
  expect(({} as Record<string, unknown>).x).toBeUndefined();
  expect(({} as Record<string, unknown>).p).toBeUndefined();
  expect(fs.readdirSync(dir).filter((f) => !/^case-\d+\.json$/.test(f))).toEqual([]);
  // Both outcomes occur: the mutations neither all pass nor all fail.
  expect(outcomes.ok).toBeGreaterThan(10);
  expect(outcomes.config).toBeGreaterThan(CASES / 2);
  fs.rmSync(dir, { recursive: true, force: true });
}, 120000);
