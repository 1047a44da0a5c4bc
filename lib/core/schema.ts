// The machinery of the option schemas (lib/core/options.ts, lib/app/run.ts): TypeBox
// builds each schema once, from which come the TypeScript types (Static), the validation
// (Ajv), the defaults and the published JSON Schema. Errors keep the project's wording:
// `config.training.epochs: expected a value >= 1, got 0` for configurations and
// `Trainer: attack: k must be an integer in [1, 1000], got number 0` for the API.
import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import { Static, TArray, TObject, TOptional, TSchema, TUnsafe, Type } from '@sinclair/typebox';

import { describe } from './is';

export type { Static, TSchema } from '@sinclair/typebox';

declare const HasDefault: unique symbol;

/**
 * A field with a default (its `default`, or one from an if/then branch of its object, as
 * AdamW's weight decay): optional in what a user writes ({@link Static}), present after
 * {@link fillDefaults} ({@link Resolved}). The marker exists only in the types.
 */
export type TDefaulted<T extends TSchema> = TOptional<T> & { readonly [HasDefault]: true };

/** Marks a field that has a default (see {@link TDefaulted}). */
export function defaulted<T extends TSchema>(schema: T): TDefaulted<T> {
  return Type.Optional(schema) as TDefaulted<T>;
}

/** What a schema's value is after {@link fillDefaults}: fields with a default are there. */
export type Resolved<S> =
  S extends TObject<infer P>
    ? Flat<
        { -readonly [K in keyof P as P[K] extends { readonly [HasDefault]: true } ? K : P[K] extends TOptional<TSchema> ? never : K]-?: Resolved<P[K]> } & {
          -readonly [K in keyof P as P[K] extends { readonly [HasDefault]: true } ? never : P[K] extends TOptional<TSchema> ? K : never]?: Resolved<P[K]>;
        }
      >
    : S extends TArray<infer I>
      ? Resolved<I>[]
      : S extends TSchema
        ? Static<S>
        : never;
type Flat<T> = { [K in keyof T]: T[K] };

/** A string that is one of `values` (a JSON Schema `enum`). */
export function StringEnum<const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

// The validator. strictNumbers: NaN and ±Infinity (JSON's 1e400) are not numbers.
// `errorMessage` (as VS Code reads it) phrases a rule the keywords cannot: "must be ...".
const ajv = new Ajv({ strict: true, strictTypes: false, strictTuples: false, strictRequired: false, strictNumbers: true, allErrors: false, verbose: true, allowUnionTypes: true });
ajv.addVocabulary(['errorMessage', 'markdownDescription']);

/** One problem with a value, in terms both dialects can word. */
export interface Issue {
  /** Where: keys and array indices from the validated value's root. */
  path: (string | number)[];
  /** The message after the field's name, config dialect (`expected a value >= 1, got 0`). */
  config: string;
  /** The predicate, API dialect (`must be an integer in [1, 1000], got number 0`). */
  api: string;
  /** A field that is missing or unknown (its name is the last of `path`). */
  kind: 'required' | 'unknown' | 'range' | 'type';
}

type Json = Record<string, unknown>;

/** A JSON value that is neither an object nor an array (the schemas' `const`s are strings). */
type Scalar = string | number | boolean | null;

/**
 * A schema node as plain JSON, with the keywords that end up in messages typed as this
 * project's schemas write them (Ajv's strict mode also requires the bounds to be numbers).
 */
export type SchemaJson = Json & {
  const?: Scalar;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
  description?: string;
};

function at(root: Json, pointer: string): Json | undefined {
  let node: unknown = root;
  for (const part of pointer.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Json)[key];
  }
  return node as Json | undefined;
}

/** ` for method 'pgd'` when the schema path goes through an if/then on a constant field. */
function branchOf(root: Json, schemaPath: string): string {
  const k = schemaPath.lastIndexOf('/then/');
  if (k < 0) return '';
  const cond = at(root, schemaPath.slice(0, k) + '/if') as { properties?: Record<string, { const?: Scalar }> } | undefined;
  const [field, rule] = Object.entries(cond?.properties ?? {})[0] ?? [];
  return field && rule?.const !== undefined ? ` for ${field} '${String(rule.const)}'` : '';
}

function interval(s: SchemaJson, integer: boolean): string {
  const lo = s.exclusiveMinimum ?? s.minimum;
  const hi = s.exclusiveMaximum ?? s.maximum;
  if (lo !== undefined && lo === hi) return String(lo);
  const left = lo === undefined ? '(-∞' : `${s.exclusiveMinimum !== undefined ? '(' : '['}${lo}`;
  const right = hi === undefined ? '∞)' : `${hi}${s.exclusiveMaximum !== undefined ? ')' : ']'}`;
  return `${integer ? 'an integer ' : ''}in ${left}, ${right}`;
}

/** What a schema accepts, as a noun phrase ("an integer >= 1", "one of 'a', 'b'"). */
export function expectedOf(s: SchemaJson): string {
  if (typeof s.errorMessage === 'string' && s.errorMessage.startsWith('must be ')) return s.errorMessage.slice('must be '.length);
  if (Array.isArray(s.enum)) return `one of ${s.enum.map((v) => `'${String(v)}'`).join(', ')}`;
  if (s.const !== undefined) return `'${String(s.const)}'`;
  if (Array.isArray(s.anyOf)) return (s.anyOf as SchemaJson[]).map(expectedOf).join(' or ');
  switch (s.type) {
    case 'integer':
    case 'number': {
      const base = s.type === 'integer' ? 'an integer' : 'a number';
      const bounds = [
        s.minimum !== undefined ? `>= ${s.minimum}` : s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : '',
        s.maximum !== undefined ? `<= ${s.maximum}` : s.exclusiveMaximum !== undefined ? `< ${s.exclusiveMaximum}` : '',
      ].filter(Boolean);
      return bounds.length ? `${base} ${bounds.join(' and ')}` : base;
    }
    case 'string':
      return s.minLength === 1 ? 'a non-empty string' : 'a string';
    case 'boolean':
      return 'true or false';
    case 'array':
      return s.minItems === 1 ? 'a non-empty array' : 'an array';
    case 'object':
      return 'an object';
    default:
      return 'a value';
  }
}

function pathOf(value: unknown, pointer: string): (string | number)[] {
  const out: (string | number)[] = [];
  let node = value;
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    const step = Array.isArray(node) ? Number(key) : key;
    out.push(step);
    node = node !== null && typeof node === 'object' ? (node as Record<string | number, unknown>)[step] : undefined;
  }
  return out;
}

function issueOf(root: Json, value: unknown, errors: ErrorObject[]): Issue {
  const relevant = errors.filter((e) => e.keyword !== 'if');
  // A union reports its branches' errors and then its own: the union's says what it takes.
  const e = relevant.find((x) => x.keyword === 'anyOf') ?? relevant[0] ?? errors[0];
  const path = pathOf(value, e.instancePath);
  const parent = (e.parentSchema ?? {}) as SchemaJson;
  const got = e.data;
  // A rule of an if/then branch names the branch; a rule with its own message says it.
  const custom = typeof parent.errorMessage === 'string' ? parent.errorMessage : undefined;
  const branch = custom ? '' : branchOf(root, e.schemaPath);
  const p = e.params as Record<string, unknown>;
  const rule = (config: string, api: string): Issue => ({ path, kind: 'range', config: `${config}${branch}, got ${String(got)}`, api: `${api}${branch}, got ${describe(got)}` });
  switch (e.keyword) {
    case 'required': {
      const missing = String(p.missingProperty);
      return { path: [...path, missing], kind: 'required', config: `is required${branch}`, api: `is required${branch}` };
    }
    case 'additionalProperties': {
      const known = Object.keys(parent.properties ?? {}).join(', ');
      return { path: [...path, String(p.additionalProperty)], kind: 'unknown', config: `unknown field (known: ${known})`, api: `(known: ${known})` };
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      if (custom) return rule(custom, custom);
      const op = { minimum: '>=', maximum: '<=', exclusiveMinimum: '>', exclusiveMaximum: '<' }[e.keyword];
      return rule(`expected a value ${op} ${String(p.limit)}`, `must be ${interval(parent, parent.type === 'integer')}`);
    }
    case 'minItems':
    case 'maxItems': {
      const many = Array.isArray(got) ? `${got.length} item(s)` : describe(got);
      const fixed = parent.minItems === parent.maxItems;
      const n = Number(p.limit);
      const expected = fixed ? `${n} item(s)` : e.keyword === 'minItems' ? `at least ${n} item(s)` : `at most ${n} item(s)`;
      const text = (lead: string) => `${custom ?? `${lead} ${expected}`}${branch}, got ${many}`;
      return { path, kind: 'range', config: text('expected'), api: text('must have') };
    }
  }
  let expected: string;
  if (custom) expected = custom.replace(/^must be /, '');
  else if (e.keyword === 'type') {
    const t = String(p.type);
    expected =
      t === 'integer' && typeof got === 'number' && Number.isFinite(got)
        ? 'an integer'
        : t === 'number' || t === 'integer'
          ? 'a finite number'
          : expectedOf({ type: t });
  } else if (e.keyword === 'minLength') {
    expected = 'a non-empty string';
  } else if (e.keyword === 'pattern') {
    expected = `a string matching /${String(p.pattern)}/`;
  } else {
    expected = expectedOf(parent);
  }
  return { path, kind: 'type', config: `expected ${expected}${branch}, got ${describe(got)}`, api: `must be ${expected}${branch}, got ${describe(got)}` };
}

/** `config.training.epochs`, `config.attack.groups[0].epsilon`. */
export function fieldName(root: string, path: readonly (string | number)[]): string {
  return path.reduce<string>((name, p) => (typeof p === 'number' ? `${name}[${p}]` : `${name}.${p}`), root);
}

/**
 * The error of the API dialect: `where: name must be ...` (TypeError, or RangeError for a
 * number out of range); `where` grows with the path (`Trainer: attack.groups[0]: p ...`).
 */
export function apiError(where: string, issue: Issue): TypeError | RangeError {
  // The subject is the last key with the indices after it (`betas[1]`); the rest is where.
  let k = issue.path.length - 1;
  while (k > 0 && typeof issue.path[k] === 'number') k--;
  const parent = issue.path.slice(0, Math.max(k, 0));
  const prefix = parent.length ? `${where}: ${fieldName('', parent).slice(1)}` : where;
  const subject = issue.path.length ? fieldName('', issue.path.slice(k)).slice(1) : 'options';
  if (issue.kind === 'unknown') return new TypeError(`${prefix}: unknown option '${subject}' ${issue.api}`);
  const message = `${prefix}: ${subject} ${issue.api}`;
  return issue.kind === 'range' ? new RangeError(message) : new TypeError(message);
}

/** A compiled schema: validation, defaults and the first problem as an {@link Issue}. */
export class Checker<T extends TSchema> {
  private readonly check: ValidateFunction;
  private readonly root: Json;

  constructor(readonly schema: T) {
    this.root = schema;
    this.check = ajv.compile(schema);
  }

  /** The first problem of `value` (defaults filled in first), or undefined. */
  issue(value: unknown): Issue | undefined {
    if (this.check(value)) return undefined;
    return issueOf(this.root, value, this.check.errors ?? []);
  }

  /** `value` with its defaults, and its first problem. */
  resolve(value: unknown): { value: unknown; issue?: Issue } {
    const filled = fillDefaults(this.schema, value);
    const issue = this.issue(filled);
    return issue ? { value: filled, issue } : { value: filled };
  }
}

const conditions = new WeakMap<object, ValidateFunction>();
function holds(condition: Json, value: unknown): boolean {
  let v = conditions.get(condition);
  if (!v) {
    v = ajv.compile(condition);
    conditions.set(condition, v);
  }
  return v(value);
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);

/**
 * A copy of `value` with the schema's defaults filled in: each missing property with a
 * `default` gets it (objects then get their own defaults, recursively), arrays' items get
 * theirs, and an object's `allOf` if/then branches that hold add their defaults. Values of
 * the wrong kind are left as they are for validation to report.
 */
export function fillDefaults<T extends TSchema>(schema: T, value: unknown): Resolved<T> {
  return fill(schema, value) as Resolved<T>;
}

function fill(s: Json, value: unknown): unknown {
  if (value === undefined && s.default !== undefined) value = structuredClone(s.default);
  if (Array.isArray(value) && isObject(s.items)) return value.map((v) => fill(s.items as Json, v));
  if (!isObject(value)) return value;
  let out: Json = value;
  const props = s.properties as Record<string, Json> | undefined;
  if (props) {
    out = { ...value };
    for (const [key, sub] of Object.entries(props)) {
      const v = fill(sub, Object.hasOwn(out, key) ? out[key] : undefined);
      if (v !== undefined) out[key] = v;
    }
  }
  for (const rule of (s.allOf ?? []) as Json[]) {
    if (isObject(rule.if)) {
      const branch = holds(rule.if, out) ? rule.then : rule.else;
      if (isObject(branch)) out = fill(branch, out) as Json;
    }
  }
  return out;
}

/** The schema as plain JSON (TypeBox's symbols dropped): what is published. */
export function toJsonSchema(schema: TSchema): Json {
  return JSON.parse(JSON.stringify(schema)) as Json;
}
