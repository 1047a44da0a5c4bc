// Models users already have, written in Python for this test (test/python/dropin_models.py):
// a BERT-like token classifier, a masked LM returning a dict with its loss, a model with
// keyword-only and optional arguments, BatchNorm and a frozen layer. Each trains with
// DropAttack from Node, is saved, and Python reloads it and gets Node's outputs.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Module, Tensor, Trainer, TorchError, evaluate, f1, mse, tensor, tokenAccuracy } from '../lib';

const PYTHON = process.env.DROPATTACK_PYTHON ?? '/usr/bin/python3';
const SCRIPT = path.join(__dirname, 'python', 'dropin_models.py');

interface Fixture {
  data: Record<string, { data: number[] | number[][]; dtype: 'int64' | 'float32' }>;
  ref: Record<string, number | number[] | boolean>;
}

let dir: string;
let fx: Fixture;
const t = (name: string): Tensor => tensor(fx.data[name].data, { dtype: fx.data[name].dtype });
const ref = (name: string): number => fx.ref[name] as number;
const refList = (name: string): number[] => fx.ref[name] as number[];
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const floats = (x: Tensor): number[] => Array.from(x.toTypedArray() as Float32Array);
const kwInputs = () => ({ x: t('x'), extra: { shift: t('shift') }, mask: null, scale: 0.5, labels: t('kw_labels'), mode: 'double', feats: [t('feat')] });

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropin-'));
  execFileSync(PYTHON, [SCRIPT, 'export', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  fx = JSON.parse(fs.readFileSync(path.join(dir, 'data.json'), 'utf8')) as Fixture;
}, 60000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('drop-in models from Python', () => {
  const nodeOutputs: Record<string, number[]> = {};

  test('token classification: [B, T, C] cross-entropy with ignoreIndex equals PyTorch, DropAttack on the embedding (row-sparse), evaluate() with token metrics', async () => {
    const model = await Module.load(path.join(dir, 'tokcls.pt'));
    const trainer = new Trainer(model, {
      optimizer: { type: 'adamw', lr: 1e-2 },
      loss: { type: 'crossEntropy', ignoreIndex: -100 },
      attack: { method: 'dropattack', seed: 3, groups: [{ targets: 'encoder.tok_embed.weight', epsilon: 1, p: 0.7 }] },
    });
    const inputs = { input_ids: t('ids'), attention_mask: t('mask') };
    const first = await trainer.step(inputs, t('tags'));
    expect(Math.abs(first.cleanLoss - ref('tokcls_loss'))).toBeLessThan(1e-5);
    expect(first.sparseTargets).toEqual(['encoder.tok_embed.weight']);
    expect(first.groupLosses[0]).not.toBeCloseTo(first.cleanLoss, 6);
    for (let s = 0; s < 4; s++) await trainer.step(inputs, t('tags'));
    const m = await evaluate(trainer, [{ inputs, target: t('tags') }], { metrics: [tokenAccuracy(), f1({ name: 'tokenF1' })] });
    // Independent check of the metrics from the logits, over the non-ignored tokens.
    const logits = (await model.forward(inputs)) as Tensor; // eval mode: evaluate() put it back, and forward keeps it
    const pred = logits.argmax(2).toTypedArray() as BigInt64Array;
    const tags = t('tags').toTypedArray() as BigInt64Array;
    let correct = 0;
    let n = 0;
    tags.forEach((v, k) => {
      if (v === -100n) return;
      n++;
      if (pred[k] === v) correct++;
    });
    expect(m.values.tokenAccuracy).toBeCloseTo(correct / n, 12);
    expect(m.examples).toBe(4);
    expect(Number.isFinite(m.values.tokenF1)).toBe(true);
    expect(m.loss).toBeLessThan(first.cleanLoss);
    await model.save(path.join(dir, 'tokcls_trained.pt'));
    model.eval();
    nodeOutputs.tokcls = floats((await model.forward([t('ids'), t('mask')])) as Tensor);
  });

  test("masked-LM fine-tuning: loss type 'model' takes the dict's 'loss' (labels by name), equals PyTorch, and evaluate() uses it", async () => {
    const model = await Module.load(path.join(dir, 'mlm.pt'));
    const trainer = new Trainer(model, {
      optimizer: { type: 'adam', lr: 1e-2 },
      loss: { type: 'model' },
      attack: { method: 'dropattack', k: 2, seed: 5, groups: [{ targets: ['encoder.tok_embed.weight', 'lm_head.weight'], epsilon: 0.5, p: 0.5 }] },
    });
    const inputs = { input_ids: t('mlm_ids'), attention_mask: t('mask'), labels: t('mlm_labels') };
    const first = await trainer.step(inputs);
    expect(Math.abs(first.cleanLoss - ref('mlm_loss'))).toBeLessThan(1e-5);
    expect(first.applied).toBe(true);
    for (let s = 0; s < 4; s++) await trainer.step(inputs);
    const m = await evaluate(trainer, [{ inputs }]);
    // The loss evaluate() reports is the model's own, in eval mode.
    model.eval();
    const out = (await model.forward(inputs)) as Record<string, Tensor>;
    expect(Object.keys(out).sort()).toEqual(['logits', 'loss']);
    expect(m.loss).toBeCloseTo(out.loss.item(), 6);
    expect(m.values.accuracy).toBeGreaterThanOrEqual(0);
    await model.save(path.join(dir, 'mlm_trained.pt'));
    nodeOutputs.mlm = floats(((await model.forward({ input_ids: t('mlm_ids'), attention_mask: t('mask') })) as Record<string, Tensor>).logits);
  });

  test('keyword-only and optional arguments, a dict, a list, a string and a float; the attack on an input by name; train mode during the step, eval mode restored', async () => {
    const model = await Module.load(path.join(dir, 'kwmodel.pt'));
    expect(model.training).toBe(false); // saved after model.eval()
    const trainer = new Trainer(model, {
      optimizer: { type: 'sgd', lr: 0 },
      loss: { type: 'model' },
      attack: { method: 'none' },
    });
    const r = await trainer.step(kwInputs());
    expect(Math.abs(r.cleanLoss - ref('kw_loss'))).toBeLessThan(1e-5);
    expect(model.training).toBe(false);
    // The step ran in training mode: BatchNorm's running mean moved as PyTorch's train() does.
    expect(maxDiff(floats(model.stateDict().get('bn.running_mean')!), refList('bn_mean_one_pass'))).toBeLessThan(1e-6);

    const attacked = new Trainer(model, {
      optimizer: { type: 'sgd', lr: 0.05 },
      loss: { type: 'model' },
      attack: { method: 'dropattack', seed: 1, groups: [{ targets: 'input:x', epsilon: 0.5 }, { targets: 'out.weight', epsilon: 0.3, p: 0.5 }] },
    });
    expect(attacked.targets).toEqual([['input:x'], ['out.weight']]);
    for (let s = 0; s < 3; s++) {
      const step = await attacked.step(kwInputs());
      expect(step.applied).toBe(true);
      expect(step.skipped).toEqual([0, 0]);
    }
    await model.save(path.join(dir, 'kwmodel_trained.pt'));
    fs.writeFileSync(path.join(dir, 'node_bn.json'), JSON.stringify(floats(model.stateDict().get('bn.running_mean')!)));
    const out = (await model.forward(kwInputs())) as [Tensor, Tensor];
    nodeOutputs.kwmodel = floats(out[1]);
  });

  test('Python reloads every model Node trained and gets the same outputs', () => {
    fs.writeFileSync(path.join(dir, 'node_outputs.json'), JSON.stringify(nodeOutputs));
    expect(Object.keys(nodeOutputs).sort()).toEqual(['kwmodel', 'mlm', 'tokcls']);
    const diffs = JSON.parse(execFileSync(PYTHON, [SCRIPT, 'check', dir], { encoding: 'utf8' })) as Record<string, number | boolean>;
    for (const name of ['tokcls', 'mlm', 'kwmodel']) {
      expect(diffs[`${name}_numel`]).toBe(true);
      expect(diffs[name]).toBeLessThan(1e-6);
    }
    expect(diffs.kwmodel_bn_mean).toBe(0);
  });

  test("batchNormStats 'clean-pass': the attack passes leave BatchNorm's statistics as the clean pass made them; 'every-pass' lets them move", async () => {
    const stats = async (batchNormStats: 'clean-pass' | 'every-pass') => {
      const model = await Module.load(path.join(dir, 'kwmodel.pt'));
      const trainer = new Trainer(model, {
        optimizer: { type: 'sgd', lr: 0 },
        loss: { type: 'model' },
        batchNormStats,
        attack: { method: 'dropattack', k: 2, seed: 1, groups: [{ targets: ['fc.weight', 'bn.weight'], epsilon: 1 }] },
      });
      const r = await trainer.step(kwInputs());
      expect(r.applied).toBe(true);
      const sd = model.stateDict();
      return { mean: floats(sd.get('bn.running_mean')!), batches: Number(sd.get('bn.num_batches_tracked')!.item()) };
    };
    const frozen = await stats('clean-pass');
    expect(maxDiff(frozen.mean, refList('bn_mean_one_pass'))).toBeLessThan(1e-6);
    expect(frozen.batches).toBe(1);
    const every = await stats('every-pass');
    expect(every.batches).toBe(3); // the clean pass and k = 2 attack passes
    expect(maxDiff(every.mean, refList('bn_mean_one_pass'))).toBeGreaterThan(1e-4);
  });

  test('parameter groups by name pattern match torch.optim.SGD with the same groups', async () => {
    const model = await Module.load(path.join(dir, 'tokcls.pt'));
    const trainer = new Trainer(model, {
      optimizer: { type: 'sgd', lr: 0.1, weightDecay: 0.5, groups: [{ params: ['*.bias', '/norm/'], weightDecay: 0, lr: 0.05 }] },
      loss: { type: 'crossEntropy' },
    });
    const r = await trainer.step({ input_ids: t('ids'), attention_mask: t('mask') }, t('tags'));
    expect(r.lr).toBe(0.1);
    const p = model.namedParameters();
    expect(maxDiff(floats(p.get('classifier.weight')!), refList('groups_classifier_weight'))).toBeLessThan(1e-6);
    expect(maxDiff(floats(p.get('classifier.bias')!), refList('groups_classifier_bias'))).toBeLessThan(1e-6);
    expect(maxDiff(floats(p.get('encoder.norm.weight')!), refList('groups_norm_weight'))).toBeLessThan(1e-6);
  });

  test('mse metric and loss type mse through evaluate() with a Module', async () => {
    const model = Module.build({ kind: 'mlp', inputDim: 4, hiddenSizes: [], numClasses: 2 }, { seed: 1 });
    const x = t('x');
    const y = tensor(Array.from({ length: 16 }, (_, k) => k / 10), { dtype: 'float32' }).reshape([8, 2]);
    const m = await evaluate(model, [{ inputs: [x], target: y }], { loss: { type: 'mse' }, metrics: [mse()] });
    const out = (await model.forward(x)) as Tensor;
    const a = floats(out);
    const b = floats(y);
    const expected = a.reduce((s, v, k) => s + (v - b[k]) ** 2, 0) / a.length;
    expect(m.values.mse).toBeCloseTo(expected, 6);
    expect(m.loss).toBeCloseTo(expected, 5);
    expect(Number.isNaN(m.accuracy)).toBe(true);
  });
});

describe('drop-in failure cases', () => {
  test('a frozen parameter named as a target is an error saying it is frozen', async () => {
    const model = await Module.load(path.join(dir, 'kwmodel.pt'));
    expect([...model.namedParameters().keys()]).toContain('frozen.weight');
    expect(() => new Trainer(model, { optimizer: { type: 'sgd', lr: 0.1 }, loss: { type: 'model' }, attack: { method: 'dropattack', groups: [{ targets: 'frozen.weight', epsilon: 1 }] } })).toThrow(
      /target 'frozen\.weight' names frozen parameter\(s\) frozen\.weight \(requires_grad is false/,
    );
    expect(() => new Trainer(model, { optimizer: { type: 'sgd', lr: 0.1, groups: [{ params: 'frozen.*', weightDecay: 0 }] }, loss: { type: 'model' } })).toThrow(
      /optimizer\.groups\[0\] names only frozen parameter\(s\) frozen\.weight, frozen\.bias/,
    );
  });

  test('float token ids: the error names the argument and the dtype the model expects first', async () => {
    const model = await Module.load(path.join(dir, 'tokcls.pt'));
    const err = await model.forward([t('ids').to('float32'), t('mask')]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorchError);
    const first = (err as Error).message.split('\n')[0];
    expect(first).toMatch(/^Module\.forward: the model expects int64 where it got float32: forward argument 'input_ids' \(argument 0\) is float32; give it as int64/);
  });

  test('tensor() makes integer arrays int64 (as torch.tensor), fractions float32', () => {
    expect(tensor([[1, 2]]).dtype).toBe('int64');
    expect(tensor([[1, 2.5]]).dtype).toBe('float32');
    expect(tensor(3).dtype).toBe('int64');
    expect(tensor([true, false]).dtype).toBe('bool');
    expect(tensor([1, 2], { dtype: 'float32' }).dtype).toBe('float32');
  });

  test('wrong argument types, names and counts are TypeErrors or TorchErrors naming the argument', async () => {
    const model = await Module.load(path.join(dir, 'kwmodel.pt'));
    const trainer = new Trainer(model, { optimizer: { type: 'sgd', lr: 0.1 }, loss: { type: 'model' } });
    await expect(trainer.step({ ...kwInputs(), scale: 'big' })).rejects.toThrow(/argument 'scale' must be a number \(float\), got/);
    await expect(trainer.step({ ...kwInputs(), extra: [t('shift')] })).rejects.toThrow(/argument 'extra' must be an object \(Dict\[str, Tensor\]\)/);
    await expect(trainer.step({ ...kwInputs(), nope: 1 })).rejects.toThrow(/has no argument 'nope'/);
    const { mode: _mode, ...withoutMode } = kwInputs();
    await expect(trainer.step(withoutMode)).rejects.toThrow(/missing argument 'mode' \(str\)/);
    // TorchScript keeps no keyword-only marks in a saved schema: by position, the next missing one is named.
    await expect(trainer.step([t('x'), { shift: t('shift') }, null, 0.5])).rejects.toThrow(/missing argument 'labels' \(Tensor\) of forward\(x, extra, mask, scale, labels, mode, feats\)/);
    await expect(model.forward({ ...kwInputs(), mode: 3 })).rejects.toThrow(/Module\.forward: argument 'mode' must be a string \(str\), got number 3/);
  });

  test("the attack's input must be a float tensor of forward: 'input[k]' and 'input:name' name it", async () => {
    const model = await Module.load(path.join(dir, 'kwmodel.pt'));
    const make = (target: string) =>
      new Trainer(model, { optimizer: { type: 'sgd', lr: 0.1 }, loss: { type: 'model' }, attack: { method: 'fgm', groups: [{ targets: target, epsilon: 1 }] } });
    await expect(make('input[1]').step(kwInputs())).rejects.toThrow(/targets 'input\[1\]', forward argument 'extra', which is Dict\[str, Tensor\]; only a float tensor/);
    await expect(make('input:nothing').step(kwInputs())).rejects.toThrow(/forward has no argument 'nothing'/);
    expect(() =>
      new Trainer(model, { optimizer: { type: 'sgd', lr: 0.1 }, loss: { type: 'model' }, attack: { method: 'fgm', groups: [{ targets: 'input:x', epsilon: 1 }, { targets: 'input[0]', epsilon: 1 }] } }),
    ).toThrow(/every group must attack the same input/);
  });

  test("sparse 'on' with ambiguous token ids is an error; explicit ids give the dense result; another input's ids are caught", async () => {
    const run = async (sparse: 'on' | 'off', tokenIds?: Tensor) => {
      const model = await Module.load(path.join(dir, 'pair.pt'));
      const trainer = new Trainer(model, {
        optimizer: { type: 'sgd', lr: 0.1 },
        attack: { method: 'dropattack', seed: 4, groups: [{ targets: 'embed.weight', epsilon: 1, p: 0.6, sparse }] },
      });
      return trainer.step([t('segment'), t('ids')], tensor([0, 1, 1, 0]), tokenIds ? { tokenIds } : {});
    };
    await expect(run('on')).rejects.toThrow(/sparse is 'on' but the token ids are ambiguous: forward arguments segment, words are all int64; pass the ids/);
    const dense = await run('off');
    const sparse = await run('on', t('ids'));
    expect(sparse.sparseTargets).toEqual(['embed.weight']);
    expect(sparse.groupLosses[0]).toBeCloseTo(dense.groupLosses[0], 5);
    await expect(run('on', t('segment'))).rejects.toThrow(/sparse is 'on' but the gradient of embed\.weight is not zero outside the rows/);
  });

  test("a target is required unless the loss is the model's; a model loss must be a scalar", async () => {
    const model = await Module.load(path.join(dir, 'tokcls.pt'));
    const ce = new Trainer(model, { optimizer: { type: 'sgd', lr: 0.1 } });
    await expect(ce.step([t('ids'), t('mask')])).rejects.toThrow(/target must be a Tensor \(loss type 'cross_entropy'/);
    const own = new Trainer(model, { optimizer: { type: 'sgd', lr: 0.1 }, loss: { type: 'model' } });
    await expect(own.step([t('ids'), t('mask')])).rejects.toThrow(/the model's loss must be a single number, got shape \[4, 6, 5\]/);
  });
});
