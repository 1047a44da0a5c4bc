import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Module, Tensor, Trainer, TorchError, randn, tensor, Generator, randint } from '../lib';
import { maxAbsDiff, PYTHON } from './helpers/reference';

const tokens = (rows: number[][]): Tensor => {
  const width = Math.max(...rows.map((r) => r.length));
  const data = new BigInt64Array(rows.length * width);
  rows.forEach((r, i) => r.forEach((v, j) => (data[i * width + j] = BigInt(v))));
  return tensor(data, { shape: [rows.length, width] });
};
const lengths = (rows: number[][]): Tensor => tensor(BigInt64Array.from(rows.map((r) => BigInt(r.length))));

describe('built-in models', () => {
  test.each([
    [{ kind: 'textrnn', vocabSize: 50, embedDim: 8, hiddenSize: 12, numLayers: 2, bidirectional: true, numClasses: 3 }, 'text'],
    [{ kind: 'textrnn', vocabSize: 50, embedDim: 8, hiddenSize: 12, cell: 'gru', numClasses: 3 }, 'text'],
    [{ kind: 'textcnn', vocabSize: 50, embedDim: 8, numFilters: 4, kernelSizes: [2, 3], numClasses: 3 }, 'text'],
    [{ kind: 'mlp', inputDim: 6, hiddenSizes: [16, 16], numClasses: 3 }, 'vector'],
    [{ kind: 'cnn28', channels: [4, 8], numClasses: 3 }, 'image28'],
    [{ kind: 'resnet32', width: 4, blocksPerStage: 1, numClasses: 3 }, 'image32'],
  ] as const)('%j builds, runs forward and is deterministic in its seed', async (spec, input) => {
    const a = Module.build(spec as never, { seed: 5 });
    const b = Module.build(spec as never, { seed: 5 });
    const c = Module.build(spec as never, { seed: 6 });
    let inputs: Tensor[];
    if (input === 'text') {
      const rows = [[3, 4, 5, 6], [7, 8], [9, 10, 11]];
      const t = tokens(rows.map((r) => [...r, ...Array(4 - r.length).fill(0)]));
      inputs = [t, lengths(rows)];
    } else if (input === 'vector') inputs = [randn([3, 6])];
    else if (input === 'image28') inputs = [randn([3, 1, 28, 28])];
    else inputs = [randn([3, 3, 32, 32])];
    a.eval();
    b.eval();
    const out = (await a.forward(inputs)) as Tensor;
    expect(out.shape).toEqual([3, 3]);
    expect(out.isfinite().logicalNot().sum().item()).toBe(0);
    const sa = a.stateDict();
    const sb = b.stateDict();
    const sc = c.stateDict();
    for (const [name, t] of sa) expect(maxAbsDiff(t.to('float64'), (sb.get(name) as Tensor).to('float64'))).toBe(0);
    const differs = [...sa].some(([name, t]) => t.dtype === 'float32' && t.numel > 1 && maxAbsDiff(t, sc.get(name) as Tensor) > 0);
    expect(differs).toBe(true);
  });

  test('TextRNN parameter names follow torch.nn', () => {
    const m = Module.build({ kind: 'textrnn', vocabSize: 20, embedDim: 4, hiddenSize: 5, bidirectional: true, numClasses: 2 });
    expect([...m.namedParameters().keys()]).toEqual([
      'embed.weight',
      'rnn.weight_ih_l0',
      'rnn.weight_hh_l0',
      'rnn.bias_ih_l0',
      'rnn.bias_hh_l0',
      'rnn.weight_ih_l0_reverse',
      'rnn.weight_hh_l0_reverse',
      'rnn.bias_ih_l0_reverse',
      'rnn.bias_hh_l0_reverse',
      'fc.weight',
      'fc.bias',
    ]);
  });

  test('DropAttack on a TextRNN learns a token rule, attacks the embedding row-sparsely, and Python reloads it', async () => {
    const gen = new Generator(3);
    const model = Module.build({ kind: 'textrnn', vocabSize: 40, embedDim: 16, hiddenSize: 24, numClasses: 2 }, { seed: 1 });
    const trainer = new Trainer(model, {
      optimizer: { type: 'adam', lr: 0.01 },
      attack: {
        method: 'dropattack',
        seed: 9,
        groups: [
          { targets: 'embed.weight', epsilon: 1, p: 0.5 },
          { targets: 'rnn.weight_ih_l0', epsilon: 0.1, p: 0.5 },
        ],
      },
    });
    // Label: does token 7 occur? Lengths vary; padding id 0.
    const batch = () => {
      const t = randint(1, 40, [32, 10], { generator: gen }).toTypedArray() as BigInt64Array;
      const lens = randint(3, 11, [32], { generator: gen }).toTypedArray() as BigInt64Array;
      const labels = new BigInt64Array(32);
      for (let i = 0; i < 32; i++) {
        if (i % 2 === 0) t[i * 10 + Number(lens[i]) - 2] = 7n;
        for (let j = Number(lens[i]); j < 10; j++) t[i * 10 + j] = 0n;
        let has = 0n;
        for (let j = 0; j < Number(lens[i]); j++) if (t[i * 10 + j] === 7n) has = 1n;
        labels[i] = has;
      }
      return { x: tensor(t, { shape: [32, 10] }), len: tensor(lens), y: tensor(labels) };
    };
    let first = 0;
    let last = 0;
    for (let s = 0; s < 60; s++) {
      const b = batch();
      const r = await trainer.step([b.x, b.len], b.y);
      expect(r.applied).toBe(true);
      expect(r.sparseTargets).toEqual(['embed.weight']);
      if (s < 5) first += r.cleanLoss / 5;
      if (s >= 55) last += r.cleanLoss / 5;
    }
    expect(last).toBeLessThan(first * 0.6);
    // Python: torch.jit.load runs it and gets the same outputs.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-models-'));
    const file = path.join(dir, 'textrnn.pt');
    await model.save(file);
    const b = batch();
    model.eval();
    const out = (await model.forward([b.x, b.len])) as Tensor;
    fs.writeFileSync(path.join(dir, 'x.bin'), Buffer.from((b.x.toTypedArray() as BigInt64Array).buffer));
    fs.writeFileSync(path.join(dir, 'len.bin'), Buffer.from((b.len.toTypedArray() as BigInt64Array).buffer));
    const script = [
      'import sys, json, numpy as np, torch',
      'm = torch.jit.load(sys.argv[1]); m.eval()',
      'x = torch.from_numpy(np.fromfile(sys.argv[2], dtype=np.int64).reshape(32, 10))',
      'l = torch.from_numpy(np.fromfile(sys.argv[3], dtype=np.int64))',
      'print(json.dumps(m(x, l).reshape(-1).tolist()))',
    ].join('\n');
    const python = JSON.parse(execFileSync(PYTHON, ['-c', script, file, path.join(dir, 'x.bin'), path.join(dir, 'len.bin')], { encoding: 'utf8' })) as number[];
    const node = Array.from(out.toTypedArray() as Float32Array);
    python.forEach((v, k) => expect(Math.abs(v - node[k])).toBeLessThanOrEqual(1e-5));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a frozen pretrained embedding keeps its values and is not trained', async () => {
    const vectors = randn([30, 6], { generator: new Generator(2) });
    const model = Module.build({ kind: 'textcnn', pretrainedEmbedding: vectors, freezeEmbedding: true, numFilters: 3, kernelSizes: [2], numClasses: 2 });
    expect(maxAbsDiff(model.namedParameters().get('embed.weight') as Tensor, vectors)).toBe(0);
    const trainer = new Trainer(model, { optimizer: { type: 'sgd', lr: 0.5 } });
    const rows = [[1, 2, 3], [4, 5, 6]];
    await trainer.step([tokens(rows), lengths(rows)], tensor(new BigInt64Array([0n, 1n])));
    expect(maxAbsDiff(model.namedParameters().get('embed.weight') as Tensor, vectors)).toBe(0);
    expect(() => new Trainer(model, { optimizer: { type: 'sgd', lr: 0.5 }, attack: { method: 'fgm', groups: [{ targets: 'embed.weight', epsilon: 1 }] } })).toThrow(
      /target 'embed.weight' names frozen parameter\(s\) embed\.weight \(requires_grad is false/,
    );
  });

  test('bad model descriptions name the field', () => {
    expect(() => Module.build({ kind: 'transformer' } as never)).toThrow(/kind must be one of 'textrnn', 'textcnn', 'mlp', 'cnn28', 'resnet32'/);
    expect(() => Module.build({ kind: 'mlp', inputDim: 4, hiddenSize: 3 } as never)).toThrow(/unknown option 'hiddenSize'/);
    expect(() => Module.build({ kind: 'textrnn', vocabSize: 10, embedDim: 4, numLayers: 0 })).toThrow(TorchError);
    expect(() => Module.build({ kind: 'textrnn', vocabSize: 10, embedDim: 4, numLayers: 0 })).toThrow(/num_layers must be >= 1, got 0/);
    expect(() => Module.build({ kind: 'mlp', inputDim: 4, dropout: 1 })).toThrow(/dropout must be a number in \[0, 1\)/);
    expect(() => Module.build({ kind: 'textcnn', vocabSize: 10, embedDim: 4, cell: 'gru' } as never)).toThrow(/unknown option 'cell'/);
  });
});
