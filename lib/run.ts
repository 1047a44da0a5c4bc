// A training run from a configuration: data, model, trainer, loggers, fit. The CLI, the
// demo and the batch-job example all go through runFromConfig().
import * as fs from 'fs';
import * as path from 'path';

import { applyOverrides, ConfigError, Field, validate } from './config';
import {
  loadFashionMnist,
  loadMnistPackage,
  loadSpamAssassin,
  loadWordVectors,
  readTextDataset,
  splitIndices,
  tokenize,
  ImageBatches,
  TextBatches,
  Vocabulary,
} from './data';
import { Batch, evaluate, fit, FitResult, Metrics } from './fit';
import { JsonlLogger, Logger, ProgressLogger, TensorBoardLogger } from './logging';
import { Module, ModelSpec } from './module';
import { constantLR, cosineLR, linearWarmup, Schedule, stepLR } from './schedule';
import { setNumThreads } from './backends';
import { manualSeed, Tensor } from './tensor';
import { AttackConfig, Trainer, TrainerOptions } from './trainer';

/** The schema of a run configuration (see docs/cli.md). */
export const RUN_SCHEMA: Field = {
  type: 'object',
  fields: {
    name: { type: 'string', default: 'run' },
    data: {
      type: 'object',
      required: true,
      fields: {
        source: { type: 'enum', values: ['csv', 'tsv', 'jsonl', 'spam-assassin', 'mnist', 'fashion-mnist'], required: true },
        path: { type: 'string' },
        textColumn: { type: 'any' },
        labelColumn: { type: 'any' },
        onBadRow: { type: 'enum', values: ['skip', 'fail'], default: 'fail' },
        maxExamples: { type: 'integer', min: 1 },
        validation: { type: 'number', min: 0, max: 1, exclusiveMax: true, default: 0.1 },
        lowercase: { type: 'boolean', default: true },
        removeStopwords: { type: 'boolean', default: false },
        removePunctuation: { type: 'boolean', default: true },
        vocabSize: { type: 'integer', min: 3, default: 30000 },
        minFreq: { type: 'integer', min: 1, default: 1 },
        maxLength: { type: 'integer', min: 1, default: 256 },
        vectors: { type: 'string' },
        batchSize: { type: 'integer', min: 1, default: 64 },
        bucket: { type: 'boolean', default: true },
        seed: { type: 'integer', min: 0, default: 0 },
      },
    },
    model: { type: 'object', open: true, fields: { kind: { type: 'enum', values: ['textrnn', 'textcnn', 'mlp', 'cnn28', 'resnet32', 'torchscript'], required: true }, path: { type: 'string' } } },
    optimizer: { type: 'object', open: true, fields: {} },
    loss: { type: 'object', open: true, fields: {} },
    attack: { type: 'object', open: true, fields: {} },
    training: {
      type: 'object',
      fields: {
        epochs: { type: 'integer', min: 1, default: 5 },
        seed: { type: 'integer', min: 0, default: 0 },
        threads: { type: 'integer', min: 1 },
        clipGradNorm: { type: 'number', min: 0 },
        accumulate: { type: 'integer', min: 1, default: 1 },
        schedule: {
          type: 'object',
          fields: {
            type: { type: 'enum', values: ['constant', 'cosine', 'step'], default: 'constant' },
            warmupSteps: { type: 'integer', min: 0, default: 0 },
            stepSize: { type: 'integer', min: 1 },
            gamma: { type: 'number', min: 0 },
            minLr: { type: 'number', min: 0 },
          },
        },
        earlyStopping: { type: 'object', fields: { monitor: { type: 'string', default: 'val.loss' }, patience: { type: 'integer', min: 1, default: 3 }, minDelta: { type: 'number', min: 0 } } },
        monitor: { type: 'string', default: 'val.accuracy' },
      },
    },
    output: {
      type: 'object',
      fields: {
        dir: { type: 'string', default: 'runs' },
        tensorboard: { type: 'boolean', default: true },
        jsonl: { type: 'boolean', default: true },
        progress: { type: 'boolean', default: true },
        checkpoint: { type: 'boolean', default: true },
      },
    },
    compare: {
      type: 'object',
      fields: { methods: { type: 'array', items: { type: 'object', open: true, fields: { label: { type: 'string', required: true } } } } },
    },
  },
};

export interface RunConfig {
  name: string;
  data: {
    source: 'csv' | 'tsv' | 'jsonl' | 'spam-assassin' | 'mnist' | 'fashion-mnist';
    path?: string;
    textColumn?: string | number;
    labelColumn?: string | number;
    onBadRow: 'skip' | 'fail';
    maxExamples?: number;
    validation: number;
    lowercase: boolean;
    removeStopwords: boolean;
    removePunctuation: boolean;
    vocabSize: number;
    minFreq: number;
    maxLength: number;
    vectors?: string;
    batchSize: number;
    bucket: boolean;
    seed: number;
  };
  model: { kind: string; path?: string; [key: string]: unknown };
  optimizer: Record<string, unknown>;
  loss: Record<string, unknown>;
  attack: Record<string, unknown>;
  training: {
    epochs: number;
    seed: number;
    threads?: number;
    clipGradNorm?: number;
    accumulate: number;
    schedule: { type: 'constant' | 'cosine' | 'step'; warmupSteps: number; stepSize?: number; gamma?: number; minLr?: number };
    earlyStopping?: { monitor: string; patience: number; minDelta?: number };
    monitor: string;
  };
  output: { dir: string; tensorboard: boolean; jsonl: boolean; progress: boolean; checkpoint: boolean };
  compare?: { methods?: ({ label: string } & Record<string, unknown>)[] };
}

/** Validates a raw configuration (after `--set` overrides), filling defaults. */
export function parseRunConfig(raw: Record<string, unknown>, overrides: string[] = []): RunConfig {
  const config = validate(applyOverrides(raw, overrides), RUN_SCHEMA, 'config') as unknown as RunConfig;
  const d = config.data;
  const text = ['csv', 'tsv', 'jsonl', 'spam-assassin'].includes(d.source);
  if (['csv', 'tsv', 'jsonl'].includes(d.source) && d.path === undefined) throw new ConfigError('config.data.path', `is required for source '${d.source}'`);
  if (config.model === undefined || (config.model as { kind?: string }).kind === undefined) throw new ConfigError('config.model.kind', 'is required');
  const kind = config.model.kind;
  if (text && !['textrnn', 'textcnn', 'torchscript'].includes(kind)) throw new ConfigError('config.model.kind', `'${kind}' does not take text; use textrnn, textcnn or torchscript`);
  if (!text && ['textrnn', 'textcnn'].includes(kind)) throw new ConfigError('config.model.kind', `'${kind}' needs text data, but data.source is '${d.source}'`);
  if (kind === 'torchscript' && config.model.path === undefined) throw new ConfigError('config.model.path', "is required for kind 'torchscript'");
  if (config.optimizer.type === undefined) config.optimizer = { type: 'adam', lr: 1e-3, ...config.optimizer };
  if (config.attack.method === undefined) config.attack = { method: 'none', ...config.attack };
  return config;
}

/** The data of a run, ready for fit(). */
export interface PreparedData {
  kind: 'text' | 'image';
  train: (epoch: number) => Iterable<Batch>;
  validation: (epoch: number) => Iterable<Batch>;
  numClasses: number;
  labelNames: string[];
  vocab?: Vocabulary;
  vectors?: Tensor;
  trainExamples: number;
  validationExamples: number;
}

/** Loads and prepares the data a configuration describes (deterministic in data.seed). */
export async function prepareData(config: RunConfig, vocabFile?: string): Promise<PreparedData> {
  const d = config.data;
  if (d.source === 'mnist' || d.source === 'fashion-mnist') {
    let train;
    let test;
    if (d.source === 'mnist') {
      ({ train, test } = loadMnistPackage({ seed: d.seed, ...(d.maxExamples !== undefined ? { train: d.maxExamples, test: Math.max(1, Math.floor(d.maxExamples / 3)) } : {}) }));
    } else {
      train = await loadFashionMnist({ split: 'train', ...(d.maxExamples !== undefined ? { limit: d.maxExamples } : {}) });
      test = await loadFashionMnist({ split: 'test', ...(d.maxExamples !== undefined ? { limit: Math.max(1, Math.floor(d.maxExamples / 3)) } : {}) });
    }
    const trainBatches = new ImageBatches(train, { batchSize: d.batchSize, shuffle: true, seed: d.seed });
    const testBatches = new ImageBatches(test, { batchSize: 512 });
    return {
      kind: 'image',
      train: (e) => trainBatches.epoch(e),
      validation: () => testBatches.epoch(1),
      numClasses: 10,
      labelNames: Array.from({ length: 10 }, (_, k) => String(k)),
      trainExamples: trainBatches.size,
      validationExamples: testBatches.size,
    };
  }
  let texts: string[];
  let labels: ArrayLike<number>;
  let labelNames: string[];
  if (d.source === 'spam-assassin') {
    const ds = loadSpamAssassin({ seed: d.seed, ...(d.maxExamples !== undefined ? { maxMessages: d.maxExamples } : {}) });
    ({ texts, labels } = ds);
    labelNames = [...ds.labelNames];
  } else {
    const ds = await readTextDataset(d.path as string, {
      format: d.source,
      textColumn: d.textColumn ?? 'text',
      labelColumn: d.labelColumn ?? 'label',
      onBadRow: d.onBadRow,
      ...(d.maxExamples !== undefined ? { limit: d.maxExamples } : {}),
    });
    ({ texts, labels, labelNames } = ds);
    if (ds.skipped.length > 0) console.error(`data: skipped ${ds.skipped.length} malformed row(s) of ${d.path} (first at line ${ds.skipped[0].line}: ${ds.skipped[0].reason})`);
  }
  const tokens = texts.map((t) => tokenize(t, { lowercase: d.lowercase, removeStopwords: d.removeStopwords, removePunctuation: d.removePunctuation }));
  const split = splitIndices(tokens.length, { validation: d.validation, seed: d.seed });
  const pick = <T>(xs: ArrayLike<T>, idx: Int32Array) => Array.from(idx, (i) => xs[i]);
  const trainTokens = pick(tokens, split.train);
  const vocab = vocabFile ? await Vocabulary.load(vocabFile) : Vocabulary.build(trainTokens, { maxSize: d.vocabSize, minFreq: d.minFreq });
  const options = { batchSize: d.batchSize, maxLength: d.maxLength };
  const train = TextBatches.fromTokens(trainTokens, pick(labels, split.train), vocab, { ...options, shuffle: true, seed: d.seed, bucket: d.bucket });
  const validation = TextBatches.fromTokens(pick(tokens, split.validation), pick(labels, split.validation), vocab, { ...options, batchSize: 256 });
  let vectors: Tensor | undefined;
  if (d.vectors !== undefined) vectors = (await loadWordVectors(d.vectors, vocab, { seed: d.seed })).vectors;
  return {
    kind: 'text',
    train: (e) => train.epoch(e),
    validation: () => validation.epoch(1),
    numClasses: labelNames.length,
    labelNames,
    vocab,
    ...(vectors ? { vectors } : {}),
    trainExamples: train.size,
    validationExamples: validation.size,
  };
}

/** The model a configuration describes, sized for the data. */
export async function buildModel(config: RunConfig, data: PreparedData): Promise<Module> {
  const { kind, path: file, ...rest } = config.model;
  if (kind === 'torchscript') return Module.load(file as string);
  const spec: Record<string, unknown> = { kind, numClasses: data.numClasses, ...rest };
  if (data.kind === 'text') {
    if (data.vectors) spec.pretrainedEmbedding = data.vectors;
    else spec.vocabSize = data.vocab!.size;
    if (spec.embedDim === undefined && !data.vectors) spec.embedDim = 128;
  }
  if (kind === 'mlp') throw new ConfigError('config.model.kind', "'mlp' takes flat vectors; for images use cnn28 or resnet32");
  try {
    return Module.build(spec as unknown as ModelSpec, { seed: config.training.seed });
  } catch (e) {
    throw new ConfigError('config.model', (e as Error).message);
  }
}

function schedule(config: RunConfig, stepsPerEpoch: number): Schedule | undefined {
  const s = config.training.schedule;
  const lr = config.optimizer.lr as number;
  if (s === undefined || typeof lr !== 'number') return undefined;
  const total = Math.max(1, stepsPerEpoch * config.training.epochs);
  let base: Schedule =
    s.type === 'cosine'
      ? cosineLR({ lr, totalSteps: total, ...(s.minLr !== undefined ? { minLr: s.minLr } : {}) })
      : s.type === 'step'
        ? stepLR({ lr, stepSize: s.stepSize ?? stepsPerEpoch, ...(s.gamma !== undefined ? { gamma: s.gamma } : {}) })
        : constantLR(lr);
  if (s.warmupSteps > 0) base = linearWarmup(base, s.warmupSteps);
  return base;
}

export interface RunSummary {
  name: string;
  label: string;
  method: string;
  dir: string;
  epochs: number;
  best: FitResult['best'];
  final: Metrics;
  trainLoss: number;
  seconds: number;
  secondsPerEpoch: number;
  history: FitResult['history'];
}

export interface RunOptions {
  /** Overrides the configuration's attack (compare). */
  attack?: AttackConfig;
  /** Label of this run in tables and paths. Default: the attack method. */
  label?: string;
  /** Prepared data to reuse (compare runs every method on the same data). */
  data?: PreparedData;
  /** Extra loggers (the batch-job example watches progress through one). */
  loggers?: Logger[];
  /** Progress output stream (default stdout). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Stops training after the current batch (fit's `signal`); the summary covers the finished epochs. */
  signal?: AbortSignal;
}

/** Trains the configuration's model on its data; logs and checkpoints under output.dir/name/label. */
export async function runFromConfig(config: RunConfig, options: RunOptions = {}): Promise<RunSummary> {
  if (config.training.threads !== undefined) setNumThreads(config.training.threads);
  manualSeed(config.training.seed);
  const data = options.data ?? (await prepareData(config));
  const attack = (options.attack ?? config.attack) as unknown as AttackConfig;
  const label = options.label ?? attack.method;
  const dir = path.join(config.output.dir, config.name, label.replace(/[^A-Za-z0-9._-]+/g, '_'));
  fs.mkdirSync(dir, { recursive: true });
  if (data.vocab) await data.vocab.save(path.join(dir, 'vocab.json'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, attack }, null, 2));
  const model = await buildModel(config, data);
  const trainerOptions = { optimizer: config.optimizer, attack, ...(Object.keys(config.loss).length ? { loss: config.loss } : {}) } as unknown as TrainerOptions;
  const trainer = new Trainer(model, trainerOptions);
  const loggers: Logger[] = [...(options.loggers ?? [])];
  if (config.output.progress) loggers.push(new ProgressLogger(options.stream ?? process.stdout, { epochs: config.training.epochs }));
  if (config.output.jsonl) loggers.push(new JsonlLogger(path.join(dir, 'log.jsonl')));
  if (config.output.tensorboard) loggers.push(new TensorBoardLogger(path.join(dir, 'tensorboard')));
  const stepsPerEpoch = Math.ceil(data.trainExamples / config.data.batchSize / config.training.accumulate);
  const lr = schedule(config, stepsPerEpoch);
  const started = Date.now();
  const result = await fit(trainer, {
    epochs: config.training.epochs,
    train: data.train,
    validation: data.validation,
    ...(lr ? { schedule: lr } : {}),
    ...(config.training.clipGradNorm !== undefined ? { clipGradNorm: config.training.clipGradNorm } : {}),
    ...(config.training.accumulate > 1 ? { accumulate: config.training.accumulate } : {}),
    ...(config.output.checkpoint ? { checkpoint: { dir: path.join(dir, 'checkpoints'), monitor: config.training.monitor } } : {}),
    ...(config.training.earlyStopping ? { earlyStopping: config.training.earlyStopping } : {}),
    loggers,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const seconds = (Date.now() - started) / 1000;
  const last = result.history[result.history.length - 1];
  if (last === undefined) throw new Error(`run '${config.name}' was aborted before its first epoch ended`);
  const summary: RunSummary = {
    name: config.name,
    label,
    method: attack.method,
    dir,
    epochs: result.history.length,
    best: result.best,
    final: last.validation as Metrics,
    trainLoss: last.trainLoss,
    seconds,
    secondsPerEpoch: seconds / Math.max(1, result.history.length),
    history: result.history,
  };
  fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2));
  return summary;
}

/** Evaluates a saved model (a checkpoint directory or a .pt file) on the configuration's validation data. */
export async function evaluateFromConfig(config: RunConfig, checkpoint: string): Promise<Metrics> {
  const file = fs.existsSync(path.join(checkpoint, 'model.pt')) ? path.join(checkpoint, 'model.pt') : checkpoint;
  const runDir = path.dirname(path.dirname(path.resolve(file)));
  const vocabFile = [path.join(runDir, 'vocab.json'), path.join(path.dirname(runDir), 'vocab.json')].find((f) => fs.existsSync(f));
  const data = await prepareData(config, vocabFile);
  const model = await Module.load(file);
  return evaluate(model, data.validation(1));
}
