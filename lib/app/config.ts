// Run configuration for the CLI: a JSON file validated against a schema. Every error
// names the field (config.training.epochs) and the value received.
import * as fs from 'fs';

import { describe } from '../core/is';

export type Field =
  | { type: 'number'; min?: number; max?: number; exclusiveMin?: boolean; exclusiveMax?: boolean; required?: boolean; default?: number; doc?: string }
  | { type: 'integer'; min?: number; max?: number; required?: boolean; default?: number; doc?: string }
  | { type: 'string'; required?: boolean; default?: string; pattern?: RegExp; patternDoc?: string; doc?: string }
  | { type: 'boolean'; required?: boolean; default?: boolean; doc?: string }
  | { type: 'enum'; values: readonly string[]; required?: boolean; default?: string; doc?: string }
  | { type: 'array'; items: Field; required?: boolean; default?: unknown[]; minItems?: number; doc?: string }
  | { type: 'object'; fields: Record<string, Field>; required?: boolean; open?: boolean; optional?: boolean; doc?: string }
  | { type: 'any'; required?: boolean; doc?: string };

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

/** Validates `value` against `field`, filling defaults; throws ConfigError naming the field. */
export function validate(value: unknown, field: Field, name: string): unknown {
  if (value === undefined) {
    if ('default' in field && field.default !== undefined) return structuredClone(field.default);
    if (field.required) throw new ConfigError(name, 'is required');
    if (field.type === 'object' && !field.optional) return validate({}, field, name);
    return undefined;
  }
  switch (field.type) {
    case 'any':
      checkKeysDeep(value, name);
      return value;
    case 'number':
    case 'integer': {
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new ConfigError(name, `expected a finite number, got ${describe(value)}`);
      if (field.type === 'integer' && !Number.isSafeInteger(value)) throw new ConfigError(name, `expected an integer, got ${describe(value)}`);
      if (field.min !== undefined) {
        const under = field.type === 'number' && field.exclusiveMin ? value <= field.min : value < field.min;
        if (under) throw new ConfigError(name, `expected a value ${field.type === 'number' && field.exclusiveMin ? '>' : '>='} ${field.min}, got ${value}`);
      }
      if (field.max !== undefined) {
        const over = field.type === 'number' && field.exclusiveMax ? value >= field.max : value > field.max;
        if (over) throw new ConfigError(name, `expected a value ${field.type === 'number' && field.exclusiveMax ? '<' : '<='} ${field.max}, got ${value}`);
      }
      return value;
    }
    case 'string':
      if (typeof value !== 'string') throw new ConfigError(name, `expected a string, got ${describe(value)}`);
      if (field.pattern && !field.pattern.test(value)) throw new ConfigError(name, `expected ${field.patternDoc ?? `a string matching ${field.pattern}`}, got ${describe(value)}`);
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw new ConfigError(name, `expected true or false, got ${describe(value)}`);
      return value;
    case 'enum':
      if (typeof value !== 'string' || !field.values.includes(value)) {
        throw new ConfigError(name, `expected one of ${field.values.map((v) => `'${v}'`).join(', ')}, got ${describe(value)}`);
      }
      return value;
    case 'array': {
      if (!Array.isArray(value)) throw new ConfigError(name, `expected an array, got ${describe(value)}`);
      if (field.minItems !== undefined && value.length < field.minItems) throw new ConfigError(name, `expected at least ${field.minItems} item(s)`);
      return value.map((v, k) => validate(v, field.items, `${name}[${k}]`));
    }
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(name, `expected an object, got ${describe(value)}`);
      const out: Record<string, unknown> = {};
      const v = value as Record<string, unknown>;
      for (const key of Object.keys(v)) {
        checkKey(key, `${name}.${key}`);
        const known = Object.hasOwn(field.fields, key);
        if (!known && !field.open) {
          throw new ConfigError(`${name}.${key}`, `unknown field (known: ${Object.keys(field.fields).join(', ')})`);
        }
        if (!known) {
          checkKeysDeep(v[key], `${name}.${key}`);
          out[key] = v[key];
        }
      }
      for (const [key, sub] of Object.entries(field.fields)) {
        const r = validate(v[key], sub, `${name}.${key}`);
        if (r !== undefined) out[key] = r;
      }
      return out;
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
    let node: Record<string | number, unknown> = out as Record<string, unknown>;
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
