// Run configuration files: reading, `--set` overrides and the keys refused everywhere.
// The schema that validates them is RUN_SCHEMA (run.ts); every error names the field
// (config.training.epochs) and the value received.
import * as fs from 'fs';

import { describe } from '../core/is';

/** A configuration error: names the field and the value received. */
export class ConfigError extends TypeError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** Keys that could reach an object's prototype when a path of keys is applied: rejected everywhere. */
export const FORBIDDEN_KEYS: readonly string[] = ['__proto__', 'prototype', 'constructor'];

/** Throws a ConfigError when `key` is one of {@link FORBIDDEN_KEYS}. */
export function checkKey(key: string, name: string): void {
  if (FORBIDDEN_KEYS.includes(key)) throw new ConfigError(name, `the key '${key}' is not allowed in a configuration`);
}

/** Rejects a forbidden key anywhere in a JSON value (objects and arrays, depth-first). */
export function checkKeysDeep(value: unknown, name: string): void {
  const stack: [unknown, string][] = [[value, name]];
  while (stack.length > 0) {
    const [v, n] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      v.forEach((x, k) => stack.push([x, `${n}[${k}]`]));
      continue;
    }
    for (const key of Object.keys(v)) {
      checkKey(key, `${n}.${key}`);
      stack.push([(v as Record<string, unknown>)[key], `${n}.${key}`]);
    }
  }
}

/**
 * Applies `key=value` overrides (dotted paths; the value parsed as JSON when it parses,
 * else taken as a string): `training.epochs=5`, `attack.groups[0].epsilon=0.5`.
 */
export function applyOverrides(config: Record<string, unknown>, overrides: string[]): Record<string, unknown> {
  const out = structuredClone(config);
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new ConfigError('--set', `expected key=value, got '${o}'`);
    const key = o.slice(0, eq);
    const raw = o.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    const parts = key.split('.').flatMap((p) => {
      const m = /^([^[\]]+)((?:\[\d+\])*)$/.exec(p);
      if (!m) throw new ConfigError('--set', `cannot parse the key '${key}'`);
      checkKey(m[1], '--set');
      return [m[1], ...[...m[2].matchAll(/\[(\d+)\]/g)].map((x) => Number(x[1]))];
    });
    checkKeysDeep(value, `--set ${key}`);
    let node: Record<string | number, unknown> = out;
    for (let k = 0; k < parts.length; k++) {
      const p = parts[k];
      const here = parts.slice(0, k + 1).join('.');
      if (typeof p === 'number') {
        if (!Array.isArray(node)) throw new ConfigError('--set', `'${parts.slice(0, k).join('.')}' is not an array in '${key}'`);
        if (p > node.length) throw new ConfigError('--set', `index ${p} is past the end of '${parts.slice(0, k).join('.')}' (length ${node.length}) in '${key}'`);
      } else if (Array.isArray(node)) {
        throw new ConfigError('--set', `'${parts.slice(0, k).join('.')}' is an array; use [index] in '${key}'`);
      }
      if (k === parts.length - 1) {
        node[p] = value;
        break;
      }
      if (node[p] === undefined || node[p] === null) node[p] = typeof parts[k + 1] === 'number' ? [] : {};
      if (typeof node[p] !== 'object') throw new ConfigError('--set', `'${here}' is not an object in '${key}'`);
      node = node[p] as Record<string | number, unknown>;
    }
  }
  return out;
}

/** Reads a JSON config file with a clear error for a missing file or a syntax error. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.message;
    throw new ConfigError('--config', `cannot read '${path}': ${why}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text) as unknown;
  } catch (e) {
    throw new ConfigError(path, `is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(path, `the top level must be an object, got ${describe(v)}`);
  checkKeysDeep(v, 'config');
  return v as Record<string, unknown>;
}
