/**
 * An error raised by LibTorch or by the native layer: a shape mismatch, an unsupported
 * dtype, a disposed tensor, a failed kernel launch. The message is LibTorch's own,
 * without the C++ backtrace.
 *
 * The class is defined here and handed to the addon once, so native code constructs it
 * and `instanceof TorchError` holds for every native failure.
 */
export class TorchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TorchError';
  }
}

/** Adds the caller's stack to a native rejection so errors point at the caller's line. */
export async function withCallerStack<T>(promise: Promise<T>, caller: Error): Promise<T> {
  try {
    return await promise;
  } catch (e) {
    if (e instanceof Error && caller.stack) {
      e.stack = `${e.stack ?? e.message}\n    --- called from ---\n${caller.stack.split('\n').slice(1).join('\n')}`;
    }
    throw e;
  }
}

/**
 * Runs `start` (argument checks, then the native call) so that every failure, a
 * synchronous one included (a bad argument, a busy module), rejects the promise with
 * the same error instead of throwing; the rejection carries the caller's stack.
 */
export function rejecting<T>(start: () => Promise<T>): Promise<T> {
  const caller = new Error();
  let promise: Promise<T>;
  try {
    promise = start();
  } catch (e) {
    promise = Promise.reject(e);
  }
  return withCallerStack(promise, caller);
}
