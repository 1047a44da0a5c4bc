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
