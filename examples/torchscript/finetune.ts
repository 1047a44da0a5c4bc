// Step 2 of the TorchScript drop-in example: Node fine-tunes the user's TorchScript model
// with DropAttack on its embedding table and the GRU's input weights, then saves it for
// Python and writes its held-out logits for check.py to compare.
//
//   node dist/examples/torchscript/finetune.js OUTDIR [--epochs N]
import * as fs from 'fs';
import * as path from 'path';

import { Batch, Module, Tensor, Trainer, fit, tensor } from '../../lib';

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
  const meta = JSON.parse(fs.readFileSync(path.join(out, 'meta.json'), 'utf8')) as Record<string, { examples: number; length: number }>;
  const load = (split: string) => {
    const { examples: n, length } = meta[split];
    return {
      tokens: readInt64(path.join(out, `${split}_tokens.bin`), [n, length]),
      lengths: readInt64(path.join(out, `${split}_lengths.bin`), [n]),
      labels: readInt64(path.join(out, `${split}_labels.bin`), [n]),
      n,
    };
  };
  const train = load('train');
  const test = load('test');
  const batches = (d: typeof train, size: number) => (): Batch[] => {
    const list: Batch[] = [];
    for (let b = 0; b < d.n; b += size) {
      const len = Math.min(size, d.n - b);
      list.push({ inputs: [d.tokens.narrow(0, b, len), d.lengths.narrow(0, b, len)], target: d.labels.narrow(0, b, len) });
    }
    return list;
  };

  const model = await Module.load(path.join(out, 'model.pt'));
  console.log(`loaded ${path.join(out, 'model.pt')}: ${[...model.namedParameters().keys()].join(', ')}`);
  const trainer = new Trainer(model, {
    optimizer: { type: 'adam', lr: 3e-3 },
    attack: {
      method: 'dropattack',
      seed: 1,
      groups: [
        { targets: 'embed.weight', epsilon: 1, p: 0.5 },
        { targets: 'rnn.weight_ih_l0', epsilon: 0.3, p: 0.5 },
      ],
    },
  });
  const result = await fit(trainer, {
    epochs,
    train: batches(train, 32),
    validation: batches(test, 128),
    onEpochEnd: (r) =>
      console.log(
        `epoch ${r.epoch}: train loss ${r.trainLoss.toFixed(4)}, adversarial ${r.trainAdversarialLoss.map((v) => v.toFixed(4)).join(' / ')}, held-out accuracy ${(100 * r.validation!.accuracy).toFixed(2)}%`,
      ),
  });
  await model.save(path.join(out, 'finetuned.pt'));
  model.eval();
  const logits = (await model.forward([test.tokens, test.lengths])) as Tensor;
  fs.writeFileSync(path.join(out, 'node_logits.bin'), Buffer.from((logits.toTypedArray() as Float32Array).buffer));
  console.log(`saved ${path.join(out, 'finetuned.pt')} (best held-out accuracy ${(100 * result.best!.value).toFixed(2)}%)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
