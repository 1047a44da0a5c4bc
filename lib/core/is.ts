// Argument checks shared by the public API. Every message names the function, the
// argument, what was expected and what was received: TypeError for the wrong kind,
// RangeError for a value out of range.

/** A short description of a received value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return `number ${value}`;
  if (typeof value === 'bigint') return `bigint ${value}n`;
  if (typeof value === 'string') return `string '${value.length > 40 ? value.slice(0, 40) + '...' : value}'`;
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === 'function') return 'a function';
  const name = value.constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

export function invalidType(where: string, name: string, expected: string, got: unknown): TypeError {
  return new TypeError(`${where}: ${name} must be ${expected}, got ${describe(got)}`);
}

export function invalidRange(where: string, name: string, expected: string, got: unknown): RangeError {
  return new RangeError(`${where}: ${name} must be ${expected}, got ${describe(got)}`);
}

/**
 * Array.isArray that keeps the declared element type: the built-in narrows a readonly
 * array (`readonly string[]`) to `any[]`.
 */
export function isArray<T>(value: T): value is Extract<T, readonly unknown[]> {
  return Array.isArray(value);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** An options object, or undefined; rejects unknown keys so typos do not pass silently. */
export function options<T extends object>(where: string, value: unknown, known: readonly string[]): Partial<T> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw invalidType(where, 'options', 'an object', value);
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new TypeError(`${where}: unknown option '${key}' (known: ${known.join(', ')})`);
    }
  }
  return value as Partial<T>;
}

export function number(where: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw invalidType(where, name, 'a number', value);
  return value;
}

export function finite(where: string, name: string, value: unknown): number {
  number(where, name, value);
  if (!Number.isFinite(value)) throw invalidRange(where, name, 'finite', value);
  return value as number;
}

export function inRange(where: string, name: string, value: unknown, lo: number, hi: number): number {
  number(where, name, value);
  const v = value as number;
  if (!(v >= lo && v <= hi)) throw invalidRange(where, name, `in [${lo}, ${hi}]`, value);
  return v;
}

export function integer(where: string, name: string, value: unknown, min = -Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw invalidType(where, name, 'an integer', value);
  if (!Number.isSafeInteger(value)) throw invalidRange(where, name, 'a safe integer', value);
  if (value < min) throw invalidRange(where, name, `an integer >= ${min}`, value);
  return value;
}

/** A non-negative 64-bit integer given as a safe integer number or a bigint. */
export function uint64(where: string, name: string, value: unknown): number | bigint {
  if (typeof value === 'bigint') {
    if (value < 0n || value >= 1n << 64n) throw invalidRange(where, name, 'in [0, 2^64)', value);
    return value;
  }
  if (typeof value !== 'number') throw invalidType(where, name, 'a non-negative integer or bigint', value);
  if (!Number.isSafeInteger(value) || value < 0) throw invalidRange(where, name, 'a non-negative safe integer', value);
  return value;
}

export function boolean(where: string, name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidType(where, name, 'a boolean', value);
  return value;
}

export function shape(where: string, name: string, value: unknown, allowInfer = false): number[] {
  if (!Array.isArray(value)) throw invalidType(where, name, 'an array of integers', value);
  let inferred = 0;
  value.forEach((s, k) => {
    if (typeof s !== 'number' || !Number.isSafeInteger(s)) {
      throw invalidType(where, `${name}[${k}]`, 'an integer', s);
    }
    if (s === -1 && allowInfer) {
      if (++inferred > 1) throw new RangeError(`${where}: ${name} may contain -1 only once`);
    } else if (s < 0) {
      throw invalidRange(where, `${name}[${k}]`, '>= 0', s);
    }
  });
  return value as number[];
}

export function oneOf<T extends string>(where: string, name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw invalidType(where, name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}
