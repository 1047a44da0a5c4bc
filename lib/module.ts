import * as is from './is';
import { native, NativeModule } from './native';
import { DType, Device, DTYPES, Tensor } from './tensor';

/** What a model's forward returns: a tensor, or (nested) lists/tuples of values. */
export type ModuleOutput = Tensor | number | boolean | string | null | ModuleOutput[];

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

function wrapOutput(v: unknown): ModuleOutput {
  if (Array.isArray(v)) return v.map(wrapOutput);
  if (v !== null && typeof v === 'object') return new Tensor(v as never);
  return v as ModuleOutput;
}

/**
 * A model: any TorchScript module (from `torch.jit.script` or `torch.jit.trace` in
 * Python) or a built-in model. Its parameters live in native memory; `save()` writes
 * TorchScript that Python's `torch.jit.load` opens.
 *
 * While a `forward()` or a training step runs on it, other calls are refused with a
 * `TorchError` instead of racing.
 */
export class Module {
  /** @internal */
  readonly handle: NativeModule;

  /** @internal */
  constructor(handle: NativeModule) {
    this.handle = handle;
  }

  /** Opens a TorchScript file. Rejects with a TorchError for a missing, truncated or non-TorchScript file. */
  static load(path: string): Promise<Module> {
    if (typeof path !== 'string' || path.length === 0) throw is.invalidType('Module.load', 'path', 'a file path', path);
    return withCallerStack(
      native.moduleLoad(path).then((h) => new Module(h)),
      new Error(),
    );
  }

  /** Writes the module as TorchScript (Python: `torch.jit.load(path)`). */
  save(path: string): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw is.invalidType('Module.save', 'path', 'a file path', path);
    return withCallerStack(native.moduleSave(this.handle, path), new Error());
  }

  /**
   * Runs the model's forward on the thread pool. Without `grad: true` no autograd graph
   * is recorded (inference).
   */
  forward(inputs: Tensor | Tensor[], options?: { grad?: boolean }): Promise<ModuleOutput> {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    list.forEach((t, k) => {
      if (!(t instanceof Tensor)) throw is.invalidType('Module.forward', `inputs[${k}]`, 'a Tensor', t);
    });
    const o = is.options<{ grad: boolean }>('Module.forward', options, ['grad']);
    const grad = o.grad === undefined ? false : is.boolean('Module.forward', 'grad', o.grad);
    return withCallerStack(
      native.moduleForward(this.handle, list.map((t) => t.handle), grad).then(wrapOutput),
      new Error(),
    );
  }

  /** The parameters by name, in model order. The tensors are the module's own (not copies). */
  namedParameters(): Map<string, Tensor> {
    return new Map(native.moduleNamedParameters(this.handle).map((e) => [e.name, new Tensor(e.tensor)]));
  }

  /** The parameters in model order. */
  parameters(): Tensor[] {
    return [...this.namedParameters().values()];
  }

  /** Copies of every parameter and buffer, by name. */
  stateDict(): Map<string, Tensor> {
    return new Map(native.moduleStateDict(this.handle).map((e) => [e.name, new Tensor(e.tensor)]));
  }

  /**
   * Copies values into the module's parameters and buffers. With `strict` (default) the
   * names must match exactly; shapes must always match.
   */
  loadStateDict(state: Map<string, Tensor> | Record<string, Tensor>, options?: { strict?: boolean }): void {
    const o = is.options<{ strict: boolean }>('Module.loadStateDict', options, ['strict']);
    const entries = state instanceof Map ? [...state.entries()] : is.isPlainObject(state) ? Object.entries(state) : null;
    if (entries === null) throw is.invalidType('Module.loadStateDict', 'state', 'a Map or an object of Tensors', state);
    const list = entries.map(([name, t]) => {
      if (!(t instanceof Tensor)) throw is.invalidType('Module.loadStateDict', `state['${name}']`, 'a Tensor', t);
      return { name, tensor: t.handle };
    });
    native.moduleLoadStateDict(this.handle, list, o.strict === undefined ? true : is.boolean('Module.loadStateDict', 'strict', o.strict));
  }

  /** Training mode (dropout on, batch-norm statistics updated). Returns this. */
  train(on = true): this {
    native.moduleTrain(this.handle, is.boolean('Module.train', 'on', on));
    return this;
  }

  /** Evaluation mode. Returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Whether the module is in training mode. */
  get training(): boolean {
    return native.moduleIsTraining(this.handle);
  }

  /** Whether a forward or a training step is running on it. */
  get busy(): boolean {
    return native.moduleIsBusy(this.handle);
  }

  /** Moves parameters and buffers to a device and/or float dtype, in place. Returns this. */
  to(target: Device | DType | { device?: Device; dtype?: DType }): this {
    let device: string | null = null;
    let dtype: string | null = null;
    if (typeof target === 'string') {
      if ((DTYPES as readonly string[]).includes(target)) dtype = target;
      else device = target;
    } else {
      const o = is.options<{ device: Device; dtype: DType }>('Module.to', target, ['device', 'dtype']);
      device = o.device ?? null;
      dtype = o.dtype ?? null;
    }
    native.moduleTo(this.handle, device, dtype);
    return this;
  }
}
