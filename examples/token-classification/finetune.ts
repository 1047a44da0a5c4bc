// Step 2 of the token-classification example: Node fine-tunes the Python-exported
// Transformer tagger with DropAttack on its token embeddings and attention input
// weights: token-level cross-entropy ([B, T, C] logits, padding tags -100 ignored), no
// weight decay on biases and norms, validation by token accuracy and token F1. Saves the
// model for Python and writes its held-out logits for check.py to compare.
//
//   node dist/examples/token-classification/finetune.js OUTDIR [--epochs N]
import * as fs from 'fs';
import * as path from 'path';

import { Batch, Module, Tensor, Trainer, f1, fit, tensor, tokenAccuracy } from '../../lib';

function readInt64(file: string, shape: number[]): Tensor {
  const buf = fs.readFileSync(file);
  const data = new BigInt64Array(buf.length / 8);
  new Uint8Array(data.buffer).set(buf);
  return tensor(data, { shape });
}

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new TypeError('usage: finetune.js OUTDIR [--epochs N]');
  const epochsAt = process.argv.indexOf('--epochs');
  const epochs = epochsAt > 0 ? Number(process.argv[epochsAt + 1]) : 4;
  // Written by export_model.py: each split's example count and padded length.
  const meta = JSON.parse(fs.readFileSync(path.join(out, 'meta.json'), 'utf8')) as Record<string, { examples: number; length: number }>;
  const load = (split: string) => {
    const { examples: n, length } = meta[split];
    const read = (name: string) => readInt64(path.join(out, `${split}_${name}.bin`), [n, length]);
    return { ids: read('ids'), mask: read('mask'), tags: read('tags'), n };
  };
  const train = load('train');
  const test = load('test');
  const batches = (d: typeof train, size: number) => (): Batch[] => {
    const list: Batch[] = [];
    for (let b = 0; b < d.n; b += size) {
      const len = Math.min(size, d.n - b);
      // Forward arguments by name, as the Python signature has them.
      list.push({ inputs: { input_ids: d.ids.narrow(0, b, len), attention_mask: d.mask.narrow(0, b, len) }, target: d.tags.narrow(0, b, len) });
    }
    return list;
  };

  const model = await Module.load(path.join(out, 'model.pt'));
  console.log(`loaded ${path.join(out, 'model.pt')} (saved in ${model.training ? 'training' : 'eval'} mode; each step trains it in training mode)`);
  const trainer = new Trainer(model, {
    optimizer: { type: 'adamw', lr: 2e-3, weightDecay: 0.01, groups: [{ params: ['*.bias', '/norm/'], weightDecay: 0 }] },
    loss: { type: 'crossEntropy', ignoreIndex: -100 },
    attack: {
      method: 'dropattack',
      seed: 1,
      groups: [
        { targets: 'tok_embed.weight', epsilon: 1, p: 0.7 },
        { targets: '/self_attn\\.in_proj_weight$/', epsilon: 0.1, relative: true, p: 0.7 },
      ],
    },
  });
  const result = await fit(trainer, {
    epochs,
    train: batches(train, 32),
    validation: batches(test, 128),
    metrics: [tokenAccuracy(), f1({ name: 'tokenF1' })],
    onEpochEnd: (r) =>
      console.log(
        `epoch ${r.epoch}: train loss ${r.trainLoss.toFixed(4)}, adversarial ${r.trainAdversarialLoss.map((v) => v.toFixed(4)).join(' / ')}, ` +
          `held-out token accuracy ${(100 * r.validation!.values.tokenAccuracy).toFixed(2)}%, token F1 ${r.validation!.values.tokenF1.toFixed(3)}`,
      ),
  });
  await model.save(path.join(out, 'finetuned.pt'));
  model.eval();
  const logits = (await model.forward([test.ids, test.mask])) as Tensor;
  fs.writeFileSync(path.join(out, 'node_logits.bin'), Buffer.from((logits.toTypedArray() as Float32Array).buffer));
  const last = result.history[result.history.length - 1];
  console.log(`saved ${path.join(out, 'finetuned.pt')} (held-out token accuracy ${(100 * last.validation!.values.tokenAccuracy).toFixed(2)}%)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
