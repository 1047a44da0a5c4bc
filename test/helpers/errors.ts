// Classifies what a binding call threw. N-API creates TypeError/RangeError in Node's main
// context while jest runs test files in a vm context, so the native errors' constructors
// are the main realm's: learn them from two calls known to fail.
import { TorchError } from '../../lib/core/errors';
import { native } from '../../lib/core/native';

type Fn = (...args: unknown[]) => unknown;
const binding = native as unknown as Record<string, Fn>;

function learnCtor(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return (e as { constructor?: unknown }).constructor;
  }
  throw new Error('test setup: expected a throw');
}

export const NativeTypeError = learnCtor(() => binding.shape(undefined)) as new () => Error;
export const NativeRangeError = learnCtor(() => binding.setNumThreads(0)) as new () => Error;
export const ALLOWED: Array<new (...a: never[]) => Error> = [TypeError, RangeError, TorchError, NativeTypeError, NativeRangeError];

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** Why a thrown value is not acceptable (not a TypeError/RangeError/TorchError with a clean message), or null. */
export function badThrow(e: unknown): string | null {
  if (typeof e !== 'object' || e === null) return `threw a non-object: ${String(e)}`;
  if (Object.prototype.toString.call(e) !== '[object Error]') return `threw a non-Error object: ${safeString(e)}`;
  if (!ALLOWED.some((C) => e instanceof C)) {
    return `threw ${(e as Error).constructor?.name ?? '?'} (${(e as Error).name}), not TypeError/RangeError/TorchError: ${(e as Error).message}`;
  }
  const msg = (e as Error).message;
  if (typeof msg !== 'string' || msg.length === 0) return 'threw an error with an empty message';
  if (/Exception raised from|frame #\d/.test(msg)) return `message carries a C++ backtrace: ${msg.slice(0, 300)}`;
  return null;
}
