// Evaluation over batches: the loss the trainer trains with (computed natively, in eval
// mode, without gradients) and pluggable metrics on the output (accuracy and F1 over the
// non-ignored targets, token level included; MSE).
import * as is from '../core/is';
import { rejecting } from '../core/errors';
import { Module, nativeInputs } from '../core/module';
import { native } from '../core/native';
import { Tensor } from '../core/tensor';
import { LossConfig, lossSpec, Trainer } from '../core/trainer';
import { Batch, Metrics } from './types';

/**
 * A metric over batches. {@link evaluate} calls `reset()`, then `update()` once per batch
 * with the model's logits and the target (both on the CPU; either may be null: a model
 * with its own loss may return no logits, and its labels may be a forward argument), then
 * reads `value()`.
 */
export interface Metric {
  /** Its key in {@link Metrics.values} and in fit's monitors (`val.<name>`). */
  readonly name: string;
  /** Forgets every batch seen so far (called before the first batch). */
  reset(): void;
  /** Adds one batch: the model's logits and the target, either possibly null. */
  update(logits: Tensor | null, target: Tensor | null): void;
  /** The metric over the batches since the last `reset()` (the built-in metrics give NaN for none). */
  value(): number;
}

/** Class predictions and labels of the non-ignored targets of one batch. */
function predictions(where: string, logits: Tensor | null, target: Tensor | null, ignoreIndex: number): { pred: number[]; truth: number[] } {
  if (logits === null || target === null) return { pred: [], truth: [] };
  if (target.dtype !== 'int64') throw new TypeError(`${where}: the target must be int64 class indices, got ${target.dtype}`);
  const ls = logits.shape;
  const ts = target.shape;
  // Class-last ([B, T, C] with [B, T]) when the leading sizes are the target's, else
  // PyTorch's class-second layout ([B, C] with [B], [B, C, T] with [B, T]).
  const classLast = ls.length === ts.length + 1 && ls.length > 2 && ts.every((n, k) => n === ls[k]);
  const fits = classLast || (ls.length === ts.length + 1 && ls[0] === ts[0] && ts.slice(1).every((n, k) => n === ls[k + 2]));
  if (!fits) throw new RangeError(`${where}: logits of shape [${ls.join(', ')}] do not fit a target of shape [${ts.join(', ')}]`);
  const p = logits.argmax(classLast ? ls.length - 1 : 1).toTypedArray() as BigInt64Array;
  const t = target.toTypedArray() as BigInt64Array;
  const pred: number[] = [];
  const truth: number[] = [];
  for (let i = 0; i < t.length; i++) {
    const label = Number(t[i]);
    if (label === ignoreIndex) continue;
    pred.push(Number(p[i]));
    truth.push(label);
  }
  return { pred, truth };
}

/**
 * Accuracy over the non-ignored targets: per example for `[B, C]` logits, per token for
 * `[B, T, C]` (token accuracy). Named `accuracy` unless `name` says otherwise.
 */
export function accuracy(options?: { ignoreIndex?: number; name?: string }): Metric {
  const o = is.options<{ ignoreIndex: number; name: string }>('accuracy', options, ['ignoreIndex', 'name']);
  const ignore = o.ignoreIndex === undefined ? -100 : is.integer('accuracy', 'ignoreIndex', o.ignoreIndex, Number.MIN_SAFE_INTEGER);
  let correct = 0;
  let n = 0;
  return {
    name: o.name ?? 'accuracy',
    reset() {
      correct = 0;
      n = 0;
    },
    update(logits, target) {
      const { pred, truth } = predictions('accuracy', logits, target, ignore);
      for (let i = 0; i < pred.length; i++) if (pred[i] === truth[i]) correct++;
      n += pred.length;
    },
    value: () => (n === 0 ? NaN : correct / n),
  };
}

/** Token accuracy: {@link accuracy} over the non-ignored tokens, named `tokenAccuracy`. */
export function tokenAccuracy(options?: { ignoreIndex?: number }): Metric {
  return accuracy({ ...(options ?? {}), name: 'tokenAccuracy' });
}

/**
 * F1 over the non-ignored targets (tokens, for `[B, T, C]` logits): the mean over classes
 * of each class's F1 (`average: 'macro'`, default), or the F1 of the pooled counts of
 * every class but `exclude` (`average: 'micro'`; e.g. the "outside" tag of sequence
 * labelling). Named `macroF1` / `microF1` unless `name` says otherwise.
 */
export function f1(options?: { ignoreIndex?: number; average?: 'macro' | 'micro'; exclude?: number[]; name?: string }): Metric {
  const where = 'f1';
  const o = is.options<{ ignoreIndex: number; average: 'macro' | 'micro'; exclude: number[]; name: string }>(where, options, ['ignoreIndex', 'average', 'exclude', 'name']);
  const ignore = o.ignoreIndex === undefined ? -100 : is.integer(where, 'ignoreIndex', o.ignoreIndex, Number.MIN_SAFE_INTEGER);
  const average = o.average === undefined ? 'macro' : is.oneOf(where, 'average', o.average, ['macro', 'micro'] as const);
  const exclude = new Set(o.exclude ?? []);
  const tp = new Map<number, number>();
  const fp = new Map<number, number>();
  const fn = new Map<number, number>();
  const add = (m: Map<number, number>, c: number) => m.set(c, (m.get(c) ?? 0) + 1);
  return {
    name: o.name ?? `${average}F1`,
    reset() {
      tp.clear();
      fp.clear();
      fn.clear();
    },
    update(logits, target) {
      const { pred, truth } = predictions(where, logits, target, ignore);
      for (let i = 0; i < pred.length; i++) {
        if (pred[i] === truth[i]) add(tp, pred[i]);
        else {
          add(fp, pred[i]);
          add(fn, truth[i]);
        }
      }
    },
    value() {
      const classes = new Set([...tp.keys(), ...fp.keys(), ...fn.keys()].filter((c) => !exclude.has(c)));
      if (classes.size === 0) return NaN;
      if (average === 'micro') {
        let t = 0;
        let p = 0;
        let f = 0;
        for (const c of classes) {
          t += tp.get(c) ?? 0;
          p += fp.get(c) ?? 0;
          f += fn.get(c) ?? 0;
        }
        return t === 0 ? 0 : (2 * t) / (2 * t + p + f);
      }
      let sum = 0;
      for (const c of classes) {
        const t = tp.get(c) ?? 0;
        sum += t === 0 ? 0 : (2 * t) / (2 * t + (fp.get(c) ?? 0) + (fn.get(c) ?? 0));
      }
      return sum / classes.size;
    },
  };
}

/** Mean squared error between the output and the target, over every element. Named `mse`. */
export function mse(): Metric {
  let sum = 0;
  let n = 0;
  return {
    name: 'mse',
    reset() {
      sum = 0;
      n = 0;
    },
    update(logits, target) {
      if (logits === null || target === null) return;
      if (logits.numel !== target.numel) throw new RangeError(`mse: the output has ${logits.numel} elements but the target ${target.numel}`);
      const a = logits.to('float64').toTypedArray() as Float64Array;
      const b = target.to('float64').toTypedArray() as Float64Array;
      for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
      n += a.length;
    },
    value: () => (n === 0 ? NaN : sum / n),
  };
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** The loss of a {@link Module} (a {@link Trainer} brings its own). Default cross-entropy. */
  loss?: LossConfig;
  /**
   * The metrics. Default: accuracy and macro-F1 over the non-ignored targets for
   * cross-entropy (and for a model's own loss when it returns logits), MSE for `mse`.
   */
  metrics?: Metric[];
}

/** @internal evaluate()'s metrics for a loss (as the addon reads it) when none are given. */
export function defaultMetrics(spec: Record<string, unknown>): Metric[] {
  const ignoreIndex = typeof spec.ignoreIndex === 'number' ? spec.ignoreIndex : -100;
  if (spec.type === 'cross_entropy' || spec.type === 'model') return [accuracy({ ignoreIndex }), f1({ ignoreIndex })];
  if (spec.type === 'mse') return [mse()];
  return [];
}

/** The labels of a batch for the metrics: its target, else a forward argument named `labels`. */
function labelsOf(b: Batch): Tensor | null {
  if (b.target instanceof Tensor) return b.target;
  const inputs = b.inputs as unknown;
  if (is.isPlainObject(inputs) && inputs.labels instanceof Tensor) return inputs.labels;
  return null;
}

/**
 * The loss and metrics of a model over batches, in eval mode and without gradients (each
 * submodule's own mode is put back after each batch). With a {@link Trainer}, the loss is
 * the trainer's (the same one it trains with: cross-entropy with its ignoreIndex, MSE, the
 * model's own loss, ...); with a {@link Module}, `options.loss` (default cross-entropy).
 * The loss is the mean over every non-ignored target (rows, or tokens) of all batches.
 */
export async function evaluate(model: Module | Trainer, batches: Iterable<Batch> | AsyncIterable<Batch>, options?: EvaluateOptions): Promise<Metrics> {
  const where = 'evaluate';
  const o = is.options<EvaluateOptions>(where, options, ['loss', 'metrics']);
  let module: Module;
  let spec: Record<string, unknown>;
  let autocast = 'off';
  if (model instanceof Trainer) {
    if (o.loss !== undefined) throw new TypeError(`${where}: loss is the trainer's; pass it only with a Module`);
    module = model.module;
    spec = model.lossSpec;
    autocast = model.autocast;
  } else if (model instanceof Module) {
    module = model;
    spec = lossSpec(o.loss);
  } else {
    throw is.invalidType(where, 'model', 'a Module or a Trainer', model);
  }
  if (o.metrics !== undefined && (!Array.isArray(o.metrics) || o.metrics.some((m) => typeof m?.update !== 'function'))) {
    throw is.invalidType(where, 'metrics', 'an array of Metric objects', o.metrics);
  }
  const metrics = o.metrics ?? defaultMetrics(spec);
  metrics.forEach((m) => m.reset());
  let lossSum = 0;
  let count = 0;
  let examples = 0;
  for await (const b of batches) {
    const target = b.target instanceof Tensor ? b.target : null;
    const r = await rejecting(() => native.moduleEvaluate(module.handle, nativeInputs(where, b.inputs), target ? target.handle : null, spec, { autocast }));
    lossSum += r.loss * r.count;
    count += r.count;
    const logits = r.logits === null ? null : new Tensor(r.logits);
    const labels = labelsOf(b);
    const labelsCpu = labels === null ? null : labels.device === 'cpu' ? labels : labels.to('cpu');
    for (const m of metrics) m.update(logits, labelsCpu);
    examples += labels !== null && labels.shape.length > 0 ? labels.shape[0] : logits !== null && logits.shape.length > 0 ? logits.shape[0] : 1;
  }
  if (examples === 0) throw new RangeError(`${where}: the batches hold no examples`);
  const values: Record<string, number> = {};
  for (const m of metrics) values[m.name] = m.value();
  return {
    loss: count === 0 ? NaN : lossSum / count,
    accuracy: values.accuracy ?? NaN,
    macroF1: values.macroF1 ?? NaN,
    examples,
    values,
  };
}
