// Evaluation of a classifier over batches: accuracy, macro-F1 and mean cross-entropy.
import { Module } from '../core/module';
import { crossEntropy, Tensor } from '../core/tensor';
import { Batch, Metrics } from './types';

/** Accuracy, macro-F1 and mean cross-entropy of a classifier over batches (eval mode, no grad). */
export async function evaluate(module: Module, batches: Iterable<Batch> | AsyncIterable<Batch>): Promise<Metrics> {
  const wasTraining = module.training;
  module.eval();
  let lossSum = 0;
  let n = 0;
  let correct = 0;
  const confusion = new Map<string, number>();
  const classes = new Set<number>();
  try {
    for await (const b of batches) {
      // Module.forward runs where the module is; the metrics are read on the host.
      const raw = (await module.forward(b.inputs)) as Tensor;
      const out = raw.device === 'cpu' ? raw : raw.to('cpu');
      const count = b.target.shape[0];
      lossSum += crossEntropy(out, b.target).item() * count;
      const pred = out.argmax(1).toTypedArray() as BigInt64Array;
      const truth = b.target.toTypedArray() as BigInt64Array;
      for (let i = 0; i < count; i++) {
        const p = Number(pred[i]);
        const t = Number(truth[i]);
        classes.add(p);
        classes.add(t);
        if (p === t) correct++;
        const key = `${t},${p}`;
        confusion.set(key, (confusion.get(key) ?? 0) + 1);
      }
      n += count;
    }
  } finally {
    module.train(wasTraining);
  }
  if (n === 0) throw new RangeError('evaluate: the batches hold no examples');
  let f1 = 0;
  for (const c of classes) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (const [key, v] of confusion) {
      const [t, p] = key.split(',').map(Number);
      if (t === c && p === c) tp += v;
      else if (p === c) fp += v;
      else if (t === c) fn += v;
    }
    f1 += tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  }
  return { loss: lossSum / n, accuracy: correct / n, macroF1: f1 / classes.size, examples: n };
}
