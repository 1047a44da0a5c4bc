import * as is from './is';
import { rejecting } from './errors';
import { native, ModuleMemory, NativeModule } from './native';
import { DType, Device, DTYPES, Tensor, deviceArg } from './tensor';

/** What a model's forward returns: a tensor, or (nested) lists/tuples and dicts of values. */
export type ModuleOutput = Tensor | number | boolean | string | null | ModuleOutput[] | { [key: string]: ModuleOutput };

/**
 * One forward argument, as TorchScript types it: a Tensor, a number (int or float), a
 * boolean, a string, `null` (None), an array (List or Tuple) or a plain object (a Dict
 * with str keys). Each is converted to the type forward's signature declares; a mismatch
 * is a TypeError naming the argument.
 */
export type ForwardValue = Tensor | number | bigint | boolean | string | null | ForwardValue[] | { [key: string]: ForwardValue };

/**
 * A model's forward arguments: one Tensor, an array (by position), or a plain object (by
 * name, as Python keyword arguments: keyword-only and optional arguments included;
 * omitted ones take their defaults).
 */
export type ForwardInputs = Tensor | ForwardValue[] | { [name: string]: ForwardValue };

/** @internal Forward arguments as the addon reads them: `{args, kwargs}` with native handles. */
export function nativeInputs(where: string, inputs: unknown): { args?: unknown[]; kwargs?: Record<string, unknown> } {
  const convert = (v: unknown, at: string): unknown => {
    if (v instanceof Tensor) return v.handle;
    if (v === null || v === undefined || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || typeof v === 'string') return v ?? null;
    if (Array.isArray(v)) return v.map((e, k) => convert(e, `${at}[${k}]`));
    if (is.isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, convert(e, `${at}.${k}`)]));
    throw is.invalidType(where, at, 'a Tensor, number, boolean, string, null, array or plain object', v);
  };
  if (inputs instanceof Tensor) return { args: [inputs.handle] };
  if (Array.isArray(inputs)) return { args: inputs.map((v, k) => convert(v, `inputs[${k}]`)) };
  if (is.isPlainObject(inputs)) {
    return { kwargs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, convert(v, `inputs.${k}`)])) };
  }
  throw is.invalidType(where, 'inputs', 'a Tensor, an array of forward arguments or an object of named arguments', inputs);
}

/** Options shared by the built-in models. */
interface ModelBase {
  /** Width of the output logits. Default 2. */
  numClasses?: number;
  /** Dropout in [0, 1), training only (where: see each model). Default 0. */
  dropout?: number;
}

/** Shared by the text models; their forward takes (tokens int64 [B, T], lengths int64 [B]). */
interface TextModelBase extends ModelBase {
  /** Vocabulary size (may be omitted with pretrainedEmbedding). */
  vocabSize?: number;
  /** Embedding width (may be omitted with pretrainedEmbedding). */
  embedDim?: number;
  /** Embedding row that gets no gradient and starts at zero; -1 for none. Default 0. */
  paddingIdx?: number;
  /** Initial embedding table [vocabSize, embedDim] (e.g. GloVe vectors). */
  pretrainedEmbedding?: Tensor;
  /** Keep the embedding fixed (it stays `embed.weight`, without gradient). Default false. */
  freezeEmbedding?: boolean;
  /**
   * A sparse gradient for the embedding, as `nn.Embedding(sparse=True)`: only the rows of
   * the batch's tokens. The Trainer's Adam then updates the table row-wise with
   * `torch.optim.SparseAdam`'s semantics (lazy moments; see docs/training.md). Needs
   * optimizer `adam` (weight decay 0, no amsgrad on the table) or `sgd` without momentum
   * or weight decay. Default false.
   */
  sparseEmbedding?: boolean;
}

/**
 * A built-in model. Parameter names follow torch.nn (`embed.weight`,
 * `rnn.weight_ih_l0`, `fc.weight`, ...), and every model saves as TorchScript that
 * Python loads, runs and back-propagates through.
 */
export type ModelSpec =
  | (TextModelBase & {
      /** LSTM or GRU over packed variable-length sequences (any order of lengths). Dropout is between stacked layers. */
      kind: 'textrnn';
      /** The recurrent cell. Default `'lstm'`. */
      cell?: 'lstm' | 'gru';
      /** Hidden state width. Default 128. */
      hiddenSize?: number;
      /** Stacked layers. Default 1. */
      numLayers?: number;
      /** Both directions, their final states concatenated. Default false. */
      bidirectional?: boolean;
      /** Dropout on the final hidden state before the classifier. */
      outputDropout?: number;
    })
  | (TextModelBase & {
      /** Kim (2014): parallel convolutions over the embeddings, max-pooled. Dropout on the pooled features. */
      kind: 'textcnn';
      /** Filters per kernel size. Default 100. */
      numFilters?: number;
      /** Widths of the convolutions, in tokens. Default [3, 4, 5]. */
      kernelSizes?: number[];
    })
  | (ModelBase & {
      /** forward(x float [B, inputDim]); dropout after each hidden ReLU. */
      kind: 'mlp';
      /** Width of the input vectors. */
      inputDim: number;
      /** Widths of the hidden layers; empty gives a linear classifier. Default [64]. */
      hiddenSizes?: number[];
    })
  | (ModelBase & {
      /** A small CNN for 1x28x28 images (MNIST); dropout before the classifier. */
      kind: 'cnn28';
      /** Channels of the two convolutions. Default [32, 64]. */
      channels?: [number, number];
    })
  | (ModelBase & {
      /** A ResNet for 3x32x32 images (CIFAR-10; 5 blocks per stage = ResNet-32), with batch norm. */
      kind: 'resnet32';
      /** Channels of the first stage (then 2x and 4x). Default 16. */
      width?: number;
      /** Residual blocks per stage. Default 5. */
      blocksPerStage?: number;
    });

const MODEL_KEYS: Record<ModelSpec['kind'], string[]> = {
  textrnn: ['cell', 'hiddenSize', 'numLayers', 'bidirectional', 'outputDropout'],
  textcnn: ['numFilters', 'kernelSizes'],
  mlp: ['inputDim', 'hiddenSizes'],
  cnn28: ['channels'],
  resnet32: ['width', 'blocksPerStage'],
};
const TEXT_KEYS = ['vocabSize', 'embedDim', 'paddingIdx', 'pretrainedEmbedding', 'freezeEmbedding', 'sparseEmbedding'];

/** @internal A forward's output from the addon: dicts come as plain objects, tensors as handles. */
export function wrapOutput(v: unknown): ModuleOutput {
  if (Array.isArray(v)) return v.map(wrapOutput);
  // Tensors come as NativeTensor handles; dicts as plain objects (made in the addon's
  // context, so their prototype need not be this context's Object.prototype).
  if (v !== null && typeof v === 'object' && v.constructor?.name !== 'NativeTensor') {
    return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, wrapOutput(e)]));
  }
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
 *
 * Its native memory is freed when the handle is garbage collected, or at once by
 * {@link Module.dispose} (or a `using` declaration). Using a disposed module, or a
 * trainer built on it, throws a `TorchError`.
 */
export class Module {
  /** @internal */
  readonly handle: NativeModule;

  /** Wraps a native handle; not for direct use: see {@link Module.load} and {@link Module.build}. */
  constructor(handle: NativeModule) {
    this.handle = handle;
  }

  /**
   * Builds a built-in model with deterministic initial weights from `seed` (PyTorch's
   * default initializations). It is a TorchScript module like any loaded one.
   */
  static build(spec: ModelSpec, options?: { seed?: number | bigint }): Module {
    const where = 'Module.build';
    if (!is.isPlainObject(spec)) throw is.invalidType(where, 'model', 'a model description object', spec);
    const kind = is.oneOf(where, 'kind', (spec as { kind?: unknown }).kind, Object.keys(MODEL_KEYS) as ModelSpec['kind'][]);
    const text = kind === 'textrnn' || kind === 'textcnn';
    is.options(where, spec, ['kind', 'numClasses', 'dropout', ...(text ? TEXT_KEYS : []), ...MODEL_KEYS[kind]]);
    const o = is.options<{ seed: number | bigint }>(where, options, ['seed']);
    const native_: Record<string, unknown> = { ...spec };
    const pre = (spec as { pretrainedEmbedding?: unknown }).pretrainedEmbedding;
    if (pre !== undefined) {
      if (!(pre instanceof Tensor)) throw is.invalidType(where, 'pretrainedEmbedding', 'a Tensor', pre);
      native_.pretrainedEmbedding = pre.handle;
    }
    for (const key of ['dropout', 'outputDropout']) {
      const v = (spec as Record<string, unknown>)[key];
      if (v !== undefined && (typeof v !== 'number' || !(v >= 0 && v < 1))) throw is.invalidRange(where, key, 'a number in [0, 1)', v);
    }
    const seed = o.seed === undefined ? 0 : is.uint64(where, 'seed', o.seed);
    return new Module(native.moduleBuild(native_, seed));
  }

  /**
   * Opens a TorchScript file, onto `device` when given (a model saved on a GPU opens on a
   * CPU-only machine with `{ device: 'cpu' }`). Rejects with a TorchError for a missing,
   * truncated or non-TorchScript file.
   */
  static load(path: string, options?: { device?: Device }): Promise<Module> {
    return rejecting(() => {
      if (typeof path !== 'string' || path.length === 0) throw is.invalidType('Module.load', 'path', 'a file path', path);
      const o = is.options<{ device: Device }>('Module.load', options, ['device']);
      const device = o.device === undefined ? null : deviceArg('Module.load', o.device);
      return native.moduleLoad(path, device).then((h) => new Module(h));
    });
  }

  /** Writes the module as TorchScript (Python: `torch.jit.load(path)`). */
  save(path: string): Promise<void> {
    return rejecting(() => {
      if (typeof path !== 'string' || path.length === 0) throw is.invalidType('Module.save', 'path', 'a file path', path);
      return native.moduleSave(this.handle, path);
    });
  }

  /**
   * Runs the model's forward on the thread pool, in the module's current mode (see
   * {@link train}). `inputs` are its arguments by position (an array) or by name (an
   * object); see {@link ForwardInputs}. Without `grad: true` no autograd graph is recorded
   * (inference). A dtype mismatch inside forward is a TorchError whose first line names the
   * argument and the dtype the model expects.
   */
  forward(inputs: ForwardInputs, options?: { grad?: boolean }): Promise<ModuleOutput> {
    return rejecting(() => {
      const args = nativeInputs('Module.forward', inputs);
      const o = is.options<{ grad: boolean }>('Module.forward', options, ['grad']);
      const grad = o.grad === undefined ? false : is.boolean('Module.forward', 'grad', o.grad);
      return native.moduleForward(this.handle, args, grad).then(wrapOutput);
    });
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

  /** True after {@link dispose}. */
  get isDisposed(): boolean {
    return native.moduleIsDisposed(this.handle);
  }

  /**
   * Frees the module's parameters, buffers and gradients now, with the optimizer state
   * of every `Trainer` built on it (they cannot run without it). Refused with a
   * `TorchError` while a forward, save or training step runs on it: await that first.
   * Tensors from {@link namedParameters} share the parameters' memory and keep it until
   * they are disposed themselves. A second call does nothing.
   */
  dispose(): void {
    native.moduleDispose(this.handle);
  }

  /** {@link dispose}, for `using m = Module.build(...)`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Native bytes the module holds: parameters, buffers and gradients (each storage once),
   * in total and per device. Refused with a `TorchError` while a call runs on it.
   */
  memory(): ModuleMemory {
    return native.moduleMemory(this.handle);
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
