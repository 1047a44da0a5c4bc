// A training run from a configuration: data, model, trainer, loggers, fit. The CLI, the
// demo and the batch-job example all go through runFromConfig().
import * as fs from 'fs';
import * as path from 'path';

import { applyOverrides, checkKeysDeep, ConfigError } from './config';
import { Type } from '@sinclair/typebox';
import {
  DataFormatError,
  loadFashionMnist,
  loadMnistPackage,
  loadSpamAssassinDecoded,
  loadWordVectors,
  readTextDataset,
  splitIndices,
  tokenize,
  ImageBatches,
  TextBatches,
  Vocabulary,
} from '../data';
import { readError } from '../data/errors';
import { ProcessGroup } from '../core/distributed';
import { fsReason, writeError, writeFileSynced } from '../core/files';
import { Batch, evaluate, fit, FitResult, Metrics } from '../train/fit';
import { JsonlLogger, Logger, ProgressLogger, TensorBoardLogger } from '../logging';
import { Module, ModelSpec } from '../core/module';
import { constantLR, cosineLR, linearWarmup, Schedule, stepLR } from '../train/schedule';
import { backends, setJitOptions, setNumThreads } from '../core/backends';
import { Device, DEVICE_PATTERN, manualSeed, Tensor } from '../core/tensor';
import { AttackConfig, Trainer, TrainerOptions } from '../core/trainer';
import { attackProperties, attackSchema, AUTOCAST, lossSchema, methodRules, optimizerSchema } from '../core/options';
import { Checker, defaulted, fieldName, Resolved, Static, StringEnum } from '../core/schema';

/** Run names and labels become directory names: plain file names only. */
export const SAFE_NAME = /^(?!\.\.?$)[A-Za-z0-9._-]{1,128}$/;
export const SAFE_NAME_DOC = "a plain file name of letters, digits, '.', '_' and '-' (1 to 128 characters, not '.' or '..')";

/** The metrics fit() can monitor. */
export const METRICS = ['train.loss', 'val.loss', 'val.accuracy', 'val.macroF1'] as const;

const TEXT_SOURCES = ['csv', 'tsv', 'jsonl', 'spam-assassin'] as const;
const FILE_SOURCES = ['csv', 'tsv', 'jsonl'] as const;
const name = (description: string, extra: Record<string, unknown> = {}) =>
  Type.String({ pattern: SAFE_NAME.source, errorMessage: `must be ${SAFE_NAME_DOC}`, description, ...extra });
const column = (description: string) =>
  Type.Optional(Type.Union([Type.String(), Type.Integer({ minimum: 0 })], { errorMessage: 'must be a column name or a 0-based index', description }));

/**
 * The schema of a run configuration: its types ({@link RunConfig}), checks, defaults,
 * docs/config.md and dropattack.schema.json all come from here. The optimizer, loss and
 * attack are the Trainer's own (lib/core/options.ts).
 */
export const RUN_SCHEMA = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'the JSON Schema of the file, for editors (ignored)' })),
    name: defaulted(name('run name: the directory under output.dir', { default: 'run' })),
    data: Type.Object(
      {
        source: StringEnum(['csv', 'tsv', 'jsonl', 'spam-assassin', 'mnist', 'fashion-mnist'], { description: 'where the data comes from' }),
        path: Type.Optional(Type.String({ description: 'the file, for csv, tsv and jsonl (required there)' })),
        textColumn: column("the text's column (name or 0-based index) or JSON key; default 'text'"),
        labelColumn: column("the label's column (name or 0-based index) or JSON key; default 'label'"),
        onBadRow: defaulted(StringEnum(['skip', 'fail'], { default: 'fail', description: 'malformed rows fail with file:line, or are skipped and counted' })),
        maxExamples: Type.Optional(Type.Integer({ minimum: 1, description: 'use only the first N examples' })),
        validation: defaulted(
          Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.1, description: 'held-out fraction of data.path (text); both parts must be non-empty; image sets use their test split' }),
        ),
        validationPath: Type.Optional(
          Type.String({ description: "a separate validation file (csv, tsv, jsonl; same columns): all of data.path trains and data.validation must not be given; its labels must be the training file's" }),
        ),
        lowercase: defaulted(Type.Boolean({ default: true, description: 'tokenizer: lowercase' })),
        removeStopwords: defaulted(Type.Boolean({ default: false, description: 'tokenizer: drop English stop words' })),
        removePunctuation: defaulted(Type.Boolean({ default: true, description: 'tokenizer: drop punctuation' })),
        vocabSize: defaulted(Type.Integer({ minimum: 3, default: 30000, description: 'vocabulary size, built on the training split' })),
        minFreq: defaulted(Type.Integer({ minimum: 1, default: 1, description: 'vocabulary: least count of a token' })),
        maxLength: defaulted(Type.Integer({ minimum: 1, default: 256, description: 'tokens kept per text' })),
        vectors: Type.Optional(Type.String({ description: 'GloVe or word2vec text file to initialize the embedding (text data)' })),
        batchSize: defaulted(Type.Integer({ minimum: 1, default: 64, description: 'examples per batch' })),
        bucket: defaulted(Type.Boolean({ default: true, description: 'batches of texts of similar length' })),
        seed: defaulted(Type.Integer({ minimum: 0, default: 0, description: 'shuffling and split seed' })),
      },
      { additionalProperties: false, description: 'the data' },
    ),
    model: Type.Object(
      {
        kind: StringEnum(['textrnn', 'textcnn', 'mlp', 'cnn28', 'resnet32', 'torchscript'], {
          description: 'a built-in model (its other fields as in Module.build) or torchscript with path',
        }),
        path: Type.Optional(Type.String({ description: "the TorchScript file, for kind 'torchscript'" })),
        sparseEmbedding: Type.Optional(
          Type.Boolean({
            description:
              "textrnn, textcnn: a sparse embedding gradient (nn.Embedding(sparse=True)); optimizer 'adam' then updates the table row-wise as torch.optim.SparseAdam (weightDecay 0 and no amsgrad for it), or 'sgd' without momentum and weight decay",
          }),
        ),
      },
      { additionalProperties: true, description: 'the model; other fields as in Module.build' },
    ),
    optimizer: defaulted(optimizerSchema({ default: {} })),
    loss: defaulted(lossSchema({ default: {} })),
    attack: defaulted(attackSchema({ default: {} })),
    training: defaulted(
      Type.Object(
        {
          epochs: defaulted(Type.Integer({ minimum: 1, default: 5, description: 'epochs to train' })),
          seed: defaulted(Type.Integer({ minimum: 0, default: 0, description: 'seed of the model and the training' })),
          threads: Type.Optional(Type.Integer({ minimum: 1, description: "LibTorch's intra-op threads (default: LibTorch's)" })),
          clipGradNorm: Type.Optional(Type.Number({ minimum: 0, description: "clip the gradient's global L2 norm" })),
          accumulate: defaulted(Type.Integer({ minimum: 1, default: 1, description: 'micro-batches per step (at most the batches of an epoch)' })),
          schedule: defaulted(
            Type.Object(
              {
                type: defaulted(StringEnum(['constant', 'cosine', 'step'], { default: 'constant', description: 'learning rate per step' })),
                warmupSteps: defaulted(Type.Integer({ minimum: 0, default: 0, description: 'linear warm-up steps' })),
                stepSize: Type.Optional(Type.Integer({ minimum: 1, description: "step: steps between decays (default: an epoch's)" })),
                gamma: Type.Optional(Type.Number({ minimum: 0, description: 'step: decay factor' })),
                minLr: Type.Optional(Type.Number({ minimum: 0, description: 'cosine: final learning rate' })),
              },
              { additionalProperties: false, default: {}, description: 'the learning rate schedule' },
            ),
          ),
          earlyStopping: Type.Optional(
            Type.Object(
              {
                monitor: defaulted(StringEnum(METRICS, { default: 'val.loss', description: 'the metric watched' })),
                patience: defaulted(Type.Integer({ minimum: 1, default: 3, description: 'epochs without improvement before stopping' })),
                minDelta: Type.Optional(Type.Number({ minimum: 0, description: 'least change that counts as improvement' })),
              },
              { additionalProperties: false, description: 'off unless given; when it stops a run it prints early stopping: ...' },
            ),
          ),
          monitor: defaulted(StringEnum(METRICS, { default: 'val.accuracy', description: 'metric of the best checkpoint' })),
          maxSkippedShare: defaulted(
            Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: "largest share of an epoch's steps that may fail (non-finite) before the run stops; 1 disables" }),
          ),
          device: defaulted(
            Type.String({ pattern: DEVICE_PATTERN.source, default: 'cpu', errorMessage: "must be 'cpu', 'cuda' or 'cuda:N'", description: 'where the model, the batches and the optimizer state live' }),
          ),
          autocast: defaulted(StringEnum(AUTOCAST, { default: 'off', description: "'bf16': forward passes under autocast to bfloat16, fp32 master weights" })),
          jit: defaulted(
            Type.Object(
              {
                executor: defaulted(StringEnum(['simple', 'profiling', 'legacy'], { default: 'simple', description: 'TorchScript executor (docs/jit.md)' })),
                fuser: defaulted(StringEnum(['none', 'tensorexpr'], { default: 'none', description: 'TorchScript fuser (docs/jit.md)' })),
              },
              { additionalProperties: false, default: {}, description: 'TorchScript execution (setJitOptions)' },
            ),
          ),
          distributed: defaulted(
            Type.Object(
              {
                direction: defaulted(
                  StringEnum(['local', 'allreduced'], { default: 'local', description: "the gradient each rank attacks with: its own batch's, or the average across ranks" }),
                ),
                bucketMB: defaulted(Type.Number({ exclusiveMinimum: 0, maximum: 1048576, default: 25, description: 'size of the all-reduce buckets in MiB' })),
                overlap: defaulted(
                  Type.Boolean({ default: true, description: "start each bucket's all-reduce during the last backward pass, as soon as its gradients are there" }),
                ),
                timeoutMs: defaulted(Type.Integer({ minimum: 1, default: 300000, description: 'how long to wait for another rank' })),
              },
              {
                additionalProperties: false,
                default: {},
                description: "data-parallel training (train --nproc N, or torchrun's environment; docs/methods.md, \"Distributed training\")",
              },
            ),
          ),
        },
        { additionalProperties: false, default: {}, description: 'the training loop' },
      ),
    ),
    output: defaulted(
      Type.Object(
        {
          dir: defaulted(Type.String({ default: 'runs', description: 'runs are written to output.dir/name/<label>/' })),
          tensorboard: defaulted(Type.Boolean({ default: true, description: 'write TensorBoard events' })),
          jsonl: defaulted(Type.Boolean({ default: true, description: 'write log.jsonl' })),
          progress: defaulted(Type.Boolean({ default: true, description: 'print progress' })),
          checkpoint: defaulted(Type.Boolean({ default: true, description: 'write checkpoints (best and last)' })),
        },
        { additionalProperties: false, default: {}, description: 'what to write, and where' },
      ),
    ),
    compare: Type.Optional(
      Type.Object(
        {
          methods: Type.Optional(
            Type.Array(
              Type.Object({ label: name('its folder and its name in the table'), ...attackProperties() }, { additionalProperties: false, allOf: methodRules() }),
              { minItems: 1, description: 'replaces the default list of compare: each an attack with a label' },
            ),
          ),
        },
        { additionalProperties: false, description: 'the methods compare runs' },
      ),
    ),
  },
  { additionalProperties: false, title: 'dropattack run configuration', description: 'A run configuration of the dropattack command (docs/config.md).' },
);

/** A run configuration with its defaults filled in. */
export type RunConfig = Omit<Resolved<typeof RUN_SCHEMA>, '$schema' | 'model'> & { model: { kind: string; path?: string; [key: string]: unknown } };
/** A run configuration as written (defaults optional). */
export type RunConfigInput = Static<typeof RUN_SCHEMA>;

const RUN_CHECKER = new Checker(RUN_SCHEMA);

/** Validates a raw configuration (after `--set` overrides), filling defaults. */
export function parseRunConfig(raw: Record<string, unknown>, overrides: string[] = []): RunConfig {
  checkKeysDeep(raw, 'config');
  const merged = applyOverrides(raw, overrides);
  const { value, issue } = RUN_CHECKER.resolve(merged);
  if (issue) throw new ConfigError(fieldName('config', issue.path), issue.config);
  const { $schema: _schema, ...config } = value as RunConfig & { $schema?: string };
  const d = config.data;
  const text = (TEXT_SOURCES as readonly string[]).includes(d.source);
  const file = (FILE_SOURCES as readonly string[]).includes(d.source);
  if (file && d.path === undefined) throw new ConfigError('config.data.path', `is required for source '${d.source}'`);
  if (!file && d.path !== undefined) throw new ConfigError('config.data.path', `is not used by source '${d.source}'`);
  if (d.validationPath !== undefined) {
    if (!file) throw new ConfigError('config.data.validationPath', `is only for sources csv, tsv and jsonl (source '${d.source}' has its own validation split)`);
    if ((merged.data as Record<string, unknown>).validation !== undefined) {
      throw new ConfigError('config.data.validation', 'is not used with data.validationPath (the validation data is that file); give one of them');
    }
  }
  if (!text && d.vectors !== undefined) throw new ConfigError('config.data.vectors', `word vectors need text data, but data.source is '${d.source}'`);
  const labels = (config.compare?.methods ?? []).map((m) => m.label);
  const repeated = labels.find((l, k) => labels.indexOf(l) !== k);
  if (repeated !== undefined) throw new ConfigError('config.compare.methods', `the label '${repeated}' is used twice (each method writes to output.dir/name/<label>/)`);
  const kind = config.model.kind;
  if (text && !['textrnn', 'textcnn', 'torchscript'].includes(kind)) throw new ConfigError('config.model.kind', `'${kind}' does not take text; use textrnn, textcnn or torchscript`);
  if (!text && ['textrnn', 'textcnn'].includes(kind)) throw new ConfigError('config.model.kind', `'${kind}' needs text data, but data.source is '${d.source}'`);
  if (kind === 'torchscript' && config.model.path === undefined) throw new ConfigError('config.model.path', "is required for kind 'torchscript'");
  if (config.model.sparseEmbedding === true) checkSparseEmbedding(config);
  return config;
}

// A sparse embedding gradient needs an optimizer that updates it row-wise (the engine
// refuses the others at the first step; this says so before anything runs).
function checkSparseEmbedding(config: RunConfig): void {
  const field = 'config.model.sparseEmbedding';
  if (!['textrnn', 'textcnn'].includes(config.model.kind)) {
    throw new ConfigError(field, `is for the built-in text models (textrnn, textcnn), not '${config.model.kind}' (a TorchScript model has its own nn.Embedding(sparse=True))`);
  }
  const o = config.optimizer;
  const groups = o.groups ?? [];
  // The table's group: the first whose pattern (name, glob or /regex/) matches embed.weight.
  const matches = (p: string): boolean =>
    p.length >= 2 && p.startsWith('/') && p.endsWith('/')
      ? new RegExp(p.slice(1, -1)).test('embed.weight')
      : new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test('embed.weight');
  const tableDecay = groups.find((g) => (Array.isArray(g.params) ? g.params : [g.params]).some(matches))?.weightDecay ?? o.weightDecay ?? 0;
  if (o.type === 'adamw') throw new ConfigError(field, "needs optimizer.type 'adam' (row-wise, as torch.optim.SparseAdam) or 'sgd' without momentum and weight decay; 'adamw' cannot update a sparse gradient");
  if (o.type === 'adam' && (tableDecay !== 0 || o.amsgrad)) {
    throw new ConfigError(field, `optimizer 'adam' updates the table row-wise as torch.optim.SparseAdam, which has no weight decay and no amsgrad: set optimizer.weightDecay to 0 (or give embed.weight a group with weightDecay 0) and amsgrad false, got weightDecay ${tableDecay}, amsgrad ${o.amsgrad}`);
  }
  if (o.type === 'sgd' && ((o.momentum ?? 0) !== 0 || tableDecay !== 0)) {
    throw new ConfigError(field, `optimizer 'sgd' takes a sparse gradient only without momentum and weight decay, got momentum ${o.momentum ?? 0}, weightDecay ${tableDecay}; use optimizer.type 'adam'`);
  }
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

/** Fixed inputs of {@link prepareData}: those a trained run saved (resume, eval). */
export interface PrepareOptions {
  /** The run's vocabulary (vocab.json) instead of one built from the training split. */
  vocabFile?: string;
  /** The run's label names (labels.json): label ids follow them, an unknown label is an error. */
  labelsFile?: string;
  /**
   * Train on this fraction (0, 1] of the training split: a subset drawn with data.seed,
   * stratified by label; the validation data stays the same. Text data only.
   */
  trainFraction?: number;
}

/** Saves a run's label names (label id = index) as JSON: `{"labels": [...]}`. */
export function saveLabels(file: string, names: readonly string[]): void {
  writeFileSynced('run', file, JSON.stringify({ labels: names }, null, 2) + '\n');
}

/** Reads label names saved with {@link saveLabels}; a malformed file is an error naming it. */
export function loadLabels(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw readError('loadLabels', file, e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DataFormatError(file, undefined, `invalid JSON: ${(e as Error).message}`);
  }
  const labels = (json as { labels?: unknown } | null)?.labels;
  if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === 'string' && l.trim() !== '')) {
    throw new DataFormatError(file, undefined, 'expected {"labels": [non-empty strings]}');
  }
  if (new Set(labels).size !== labels.length) throw new DataFormatError(file, undefined, 'a label is repeated');
  return labels as string[];
}

/** An input file the configuration names: it must be a readable regular file (a FIFO or a device would block). */
function checkInputFile(field: string, file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw readError(field, file, e);
  }
  if (st.isDirectory()) throw new DataFormatError(file, undefined, `is a directory (${field})`);
  if (!st.isFile()) throw new DataFormatError(file, undefined, `is not a regular file (${field})`);
}

async function readLabelled(
  config: RunConfig,
  field: string,
  file: string,
  labelNames?: string[],
  limit = true,
): Promise<{ texts: string[]; labels: Int32Array; labelNames: string[] }> {
  const d = config.data;
  checkInputFile(field, file);
  const ds = await readTextDataset(file, {
    format: d.source as 'csv' | 'tsv' | 'jsonl',
    textColumn: d.textColumn ?? 'text',
    labelColumn: d.labelColumn ?? 'label',
    onBadRow: d.onBadRow,
    ...(labelNames ? { labels: labelNames } : {}),
    ...(limit && d.maxExamples !== undefined ? { limit: d.maxExamples } : {}),
  });
  if (ds.skipped.length > 0) console.error(`data: skipped ${ds.skipped.length} malformed row(s) of ${file} (first at line ${ds.skipped[0].line}: ${ds.skipped[0].reason})`);
  return ds;
}

/** Loads and prepares the data a configuration describes (deterministic in data.seed). */
export async function prepareData(config: RunConfig, fixed: PrepareOptions | string = {}): Promise<PreparedData> {
  const o: PrepareOptions = typeof fixed === 'string' ? { vocabFile: fixed } : fixed;
  const d = config.data;
  const savedLabels = o.labelsFile !== undefined ? loadLabels(o.labelsFile) : undefined;
  const fraction = o.trainFraction ?? 1;
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction <= 1)) throw new ConfigError('--train-fraction', `expected a fraction in (0, 1], got ${String(fraction)}`);
  if (d.source === 'mnist' || d.source === 'fashion-mnist') {
    if (fraction < 1) throw new ConfigError('--train-fraction', `applies to text data; data.source is '${d.source}'`);
    const names = Array.from({ length: 10 }, (_, k) => String(k));
    if (savedLabels && savedLabels.join('\u0000') !== names.join('\u0000')) {
      throw new DataFormatError(o.labelsFile as string, undefined, `the run's labels (${savedLabels.join(', ')}) are not the 10 digit classes of ${d.source}`);
    }
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
      labelNames: names,
      trainExamples: trainBatches.size,
      validationExamples: testBatches.size,
    };
  }
  let texts: string[];
  let labels: ArrayLike<number>;
  let labelNames: string[];
  let held: { texts: string[]; labels: ArrayLike<number> } | undefined;
  if (d.source === 'spam-assassin') {
    // Decoded (MIME parts, transfer encodings, HTML to text): the text a reader sees.
    const ds = await loadSpamAssassinDecoded({ seed: d.seed, ...(d.maxExamples !== undefined ? { maxMessages: d.maxExamples } : {}) });
    ({ texts, labels } = ds);
    labelNames = [...ds.labelNames];
    if (savedLabels && savedLabels.join('\u0000') !== labelNames.join('\u0000')) {
      throw new DataFormatError(o.labelsFile as string, undefined, `the run's labels (${savedLabels.join(', ')}) differ from spam-assassin's (${labelNames.join(', ')})`);
    }
  } else {
    ({ texts, labels, labelNames } = await readLabelled(config, 'config.data.path', d.path as string, savedLabels));
    if (d.validationPath !== undefined) {
      // Label ids follow the training file (or the run); a label it does not have is an error.
      held = await readLabelled(config, 'config.data.validationPath', d.validationPath, labelNames, false);
    }
  }
  const tok = (t: string) => tokenize(t, { lowercase: d.lowercase, removeStopwords: d.removeStopwords, removePunctuation: d.removePunctuation });
  const tokens = texts.map(tok);
  const pick = <T>(xs: ArrayLike<T>, idx: Int32Array) => Array.from(idx, (i) => xs[i]);
  let trainTokens: string[][];
  let trainLabels: number[];
  let valTokens: string[][];
  let valLabels: number[];
  if (held) {
    trainTokens = tokens;
    trainLabels = Array.from(labels);
    valTokens = held.texts.map(tok);
    valLabels = Array.from(held.labels);
  } else {
    const split = splitIndices(tokens.length, { validation: d.validation, seed: d.seed });
    if (split.validation.length === 0 || split.train.length === 0) {
      throw new ConfigError(
        'config.data.validation',
        `a fraction of ${d.validation} of ${tokens.length} examples leaves ${split.train.length} for training and ${split.validation.length} for validation; change it or give data.validationPath`,
      );
    }
    trainTokens = pick(tokens, split.train);
    trainLabels = pick(labels, split.train);
    valTokens = pick(tokens, split.validation);
    valLabels = pick(labels, split.validation);
  }
  if (fraction < 1) {
    const keep = splitIndices(trainTokens.length, { validation: 1 - fraction, seed: d.seed, stratify: trainLabels }).train;
    if (keep.length === 0) throw new ConfigError('--train-fraction', `${fraction} of ${trainTokens.length} training examples leaves none`);
    trainTokens = pick(trainTokens, keep);
    trainLabels = pick(trainLabels, keep);
  }
  const vocab = o.vocabFile ? await Vocabulary.load(o.vocabFile) : Vocabulary.build(trainTokens, { maxSize: d.vocabSize, minFreq: d.minFreq });
  const options = { batchSize: d.batchSize, maxLength: d.maxLength };
  const train = TextBatches.fromTokens(trainTokens, trainLabels, vocab, { ...options, shuffle: true, seed: d.seed, bucket: d.bucket });
  const validation = TextBatches.fromTokens(valTokens, valLabels, vocab, { ...options, batchSize: 256 });
  let vectors: Tensor | undefined;
  if (d.vectors !== undefined) {
    checkInputFile('config.data.vectors', d.vectors);
    vectors = (await loadWordVectors(d.vectors, vocab, { seed: d.seed })).vectors;
  }
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
  if (kind === 'torchscript') return Module.load(file as string, { device: config.training.device as Device });
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

/** Fails before anything is written when the configured device is not there. */
export function checkDevice(device: string): void {
  if (device === 'cpu') return;
  const b = backends();
  const index = device === 'cuda' ? 0 : Number(device.slice('cuda:'.length));
  if (!b.cudaKernels) {
    throw new ConfigError('config.training.device', `'${device}' needs a CUDA build of the addon (this one is built against a CPU LibTorch ${b.libtorch}; see README, "Building with CUDA")`);
  }
  if (index >= b.cudaDeviceCount) {
    throw new ConfigError('config.training.device', `'${device}' is not present: this machine has ${b.cudaDeviceCount} CUDA device(s)`);
  }
}

/** Moves the model to the configured device (its parameters, buffers and then the optimizer state). */
export function placeModel(model: Module, device: string): void {
  if (device !== 'cpu') model.to(device as Device);
}

/**
 * The model (on the configured device) and its trainer for one attack, as a run trains
 * them. Any error from the trainer is its options' (optimizer, loss, attack targets): a
 * ConfigError under `field`.
 */
export async function makeTrainer(
  config: RunConfig,
  data: PreparedData,
  attack: AttackConfig,
  field: string,
  group?: ProcessGroup,
): Promise<{ model: Module; trainer: Trainer }> {
  checkDevice(config.training.device);
  const model = await buildModel(config, data);
  placeModel(model, config.training.device);
  const dist = config.training.distributed;
  const options: TrainerOptions = {
    optimizer: config.optimizer,
    attack,
    loss: config.loss,
    autocast: config.training.autocast,
    ...(group ? { distributed: { group, direction: dist.direction, bucketMB: dist.bucketMB, overlap: dist.overlap } } : {}),
  };
  try {
    return { model, trainer: new Trainer(model, options) };
  } catch (e) {
    if (typeof (e as Error | null)?.message === 'string') throw new ConfigError(field, (e as Error).message);
    throw e;
  }
}

function schedule(config: RunConfig, stepsPerEpoch: number): Schedule | undefined {
  const s = config.training.schedule;
  const lr = config.optimizer.lr;
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
  /** Resumes from output.dir/name/label/checkpoints/last, with the run's saved vocabulary and labels. */
  resume?: boolean;
  /**
   * Data-parallel training with this process group: each rank trains on its shard of every
   * epoch's batches (config.data.batchSize per rank); rank 0 alone writes the run's files
   * (logs, TensorBoard, checkpoints, summary).
   */
  group?: ProcessGroup;
}

/** Trains the configuration's model on its data; logs and checkpoints under output.dir/name/label. */
export async function runFromConfig(config: RunConfig, options: RunOptions = {}): Promise<RunSummary> {
  const attack = options.attack ?? config.attack;
  const method = attack.method ?? 'none';
  const label = options.label ?? method;
  const dir = runDirectory(config, label);
  const checkpoints = path.join(dir, 'checkpoints');
  const notify = (line: string) => (options.stream ?? process.stdout).write(`${line}\n`);
  // Everything is checked before anything is written: output folder, data, model, trainer.
  checkOutputDir(dir);
  let fixed: PrepareOptions = {};
  if (options.resume) {
    if (!['last', 'last.old'].some((n) => fs.existsSync(path.join(checkpoints, n, 'state.json')))) {
      throw new ConfigError('--resume', `no checkpoint to resume in '${checkpoints}' (expected ${path.join(checkpoints, 'last', 'state.json')})`);
    }
    if (options.data) throw new ConfigError('--resume', 'cannot reuse prepared data: a resumed run reads its own vocabulary and labels');
    fixed = {
      ...(fs.existsSync(path.join(dir, 'vocab.json')) ? { vocabFile: path.join(dir, 'vocab.json') } : {}),
      ...(fs.existsSync(path.join(dir, 'labels.json')) ? { labelsFile: path.join(dir, 'labels.json') } : {}),
    };
    if (isFileSource(config) && fixed.labelsFile === undefined) {
      throw new ConfigError('--resume', `'${dir}' has no labels.json: the run's label ids are unknown, so it cannot be resumed safely`);
    }
  }
  if (config.training.threads !== undefined) setNumThreads(config.training.threads);
  checkDevice(config.training.device);
  setJitOptions(config.training.jit);
  manualSeed(config.training.seed);
  const data = options.data ?? (await prepareData(config, fixed));
  const world = options.group?.worldSize ?? 1;
  const writes = (options.group?.rank ?? 0) === 0;
  // Each rank runs its share of the batches (the remainder of the count divided by the
  // world size is dropped: see shardBatches).
  const batchesPerEpoch = Math.floor(Math.ceil(data.trainExamples / config.data.batchSize) / world);
  if (config.training.accumulate > batchesPerEpoch) {
    throw new ConfigError(
      'config.training.accumulate',
      `${config.training.accumulate} micro-batches per step, but an epoch has only ${batchesPerEpoch} batch(es)${world > 1 ? ` per process (${world} processes)` : ''} (${data.trainExamples} examples, batchSize ${config.data.batchSize}): no optimizer step would run`,
    );
  }
  const { trainer } = await makeTrainer(config, data, attack, 'config', options.group);
  await trainer.ready;
  // Now the run's files (rank 0's alone in distributed training).
  const loggers: Logger[] = [...(options.loggers ?? [])];
  if (writes) {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw writeError('run', dir, e);
    }
    if (data.vocab && !fixed.vocabFile) {
      const file = path.join(dir, 'vocab.json');
      await data.vocab.save(file).catch((e: unknown) => {
        throw writeError('run', file, e);
      });
    }
    if (!fixed.labelsFile) saveLabels(path.join(dir, 'labels.json'), data.labelNames);
    writeFileSynced('run', path.join(dir, 'config.json'), JSON.stringify({ ...config, attack }, null, 2));
    if (config.output.progress) loggers.push(new ProgressLogger(options.stream ?? process.stdout, { epochs: config.training.epochs }));
    if (config.output.jsonl) loggers.push(new JsonlLogger(path.join(dir, 'log.jsonl')));
    if (config.output.tensorboard) loggers.push(new TensorBoardLogger(path.join(dir, 'tensorboard')));
  }
  const stepsPerEpoch =
    world === 1
      ? Math.ceil(data.trainExamples / config.data.batchSize / config.training.accumulate)
      : Math.max(1, Math.floor(batchesPerEpoch / config.training.accumulate));
  const lr = schedule(config, stepsPerEpoch);
  const started = Date.now();
  const result = await fit(trainer, {
    epochs: config.training.epochs,
    train: data.train,
    validation: data.validation,
    ...(lr ? { schedule: lr } : {}),
    ...(config.training.clipGradNorm !== undefined ? { clipGradNorm: config.training.clipGradNorm } : {}),
    ...(config.training.accumulate > 1 ? { accumulate: config.training.accumulate } : {}),
    ...(config.output.checkpoint ? { checkpoint: { dir: checkpoints, monitor: config.training.monitor } } : {}),
    ...(config.training.earlyStopping ? { earlyStopping: config.training.earlyStopping } : {}),
    ...(options.resume ? { resume: checkpoints } : {}),
    maxSkippedShare: config.training.maxSkippedShare,
    loggers,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (result.stopReason && writes) notify(result.stopReason);
  const seconds = (Date.now() - started) / 1000;
  const last = result.history[result.history.length - 1];
  if (last === undefined) throw new Error(`run '${config.name}' was aborted before its first epoch ended`);
  const summary: RunSummary = {
    name: config.name,
    label,
    method,
    dir,
    epochs: result.history.length,
    best: result.best,
    final: last.validation as Metrics,
    trainLoss: last.trainLoss,
    seconds,
    secondsPerEpoch: seconds / Math.max(1, result.history.length),
    history: result.history,
  };
  if (writes) writeFileSynced('run', path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2));
  return summary;
}

const isFileSource = (config: RunConfig) => ['csv', 'tsv', 'jsonl'].includes(config.data.source);
const isTextSource = (config: RunConfig) => ['csv', 'tsv', 'jsonl', 'spam-assassin'].includes(config.data.source);

/** Where a run with this label writes: output.dir/name/label (the label made a plain file name). */
export function runDirectory(config: RunConfig, label: string): string {
  const safe = label.replace(/[^A-Za-z0-9._-]+/g, '_');
  if (!SAFE_NAME.test(safe)) throw new ConfigError('label', `'${label}' cannot be a directory name; use ${SAFE_NAME_DOC}`);
  if (!SAFE_NAME.test(config.name)) throw new ConfigError('config.name', `expected ${SAFE_NAME_DOC}, got '${config.name}'`);
  return path.join(config.output.dir, config.name, safe);
}

const VIRTUAL_ROOTS = ['/proc', '/sys', '/dev'];

/**
 * Checks, without writing anything, that `dir` can be created and written: not under a
 * virtual file system (/proc, /sys, /dev), its nearest existing ancestor a writable directory.
 */
export function checkOutputDir(dir: string): void {
  const field = 'config.output.dir';
  const abs = path.resolve(dir);
  let existing = abs;
  while (!fs.existsSync(existing)) {
    const up = path.dirname(existing);
    if (up === existing) break;
    existing = up;
  }
  let real = existing;
  try {
    real = path.join(fs.realpathSync(existing), path.relative(existing, abs));
  } catch {
    // keep the lexical path
  }
  for (const root of VIRTUAL_ROOTS) {
    for (const p of [abs, real]) {
      if (p === root || p.startsWith(root + path.sep)) throw new ConfigError(field, `'${dir}' is under ${root}, not a place for run files; choose a directory on disk`);
    }
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(existing);
  } catch (e) {
    throw new ConfigError(field, `cannot use '${dir}': ${fsReason(e)}`);
  }
  if (!st.isDirectory()) throw new ConfigError(field, `cannot create '${dir}': '${existing}' exists and is not a directory`);
  try {
    fs.accessSync(existing, fs.constants.W_OK | fs.constants.X_OK);
  } catch (e) {
    throw new ConfigError(field, `cannot create '${dir}': '${existing}' is not writable: ${fsReason(e)}`);
  }
}

/** One line with the effective settings of a run, defaults included. */
export function describeRun(config: RunConfig): string {
  const d = config.data;
  const t = config.training;
  const o = config.optimizer as { type?: string; lr?: number };
  const a = config.attack as { method?: string };
  const es = t.earlyStopping ? `${t.earlyStopping.monitor} patience ${t.earlyStopping.patience}${t.earlyStopping.minDelta ? ` minDelta ${t.earlyStopping.minDelta}` : ''}` : 'off';
  const source = isFileSource(config) ? `${d.source} ${d.path}` : d.source;
  const validation = d.validationPath !== undefined ? `file ${d.validationPath}` : isFileSource(config) || d.source === 'spam-assassin' ? `${d.validation} held out` : 'test split';
  return (
    `settings: data ${source}, validation ${validation}, batchSize ${d.batchSize}, model ${config.model.kind}, ` +
    `optimizer ${o.type}${o.lr !== undefined ? ` lr ${o.lr}` : ''}, attack ${a.method}, epochs ${t.epochs}, accumulate ${t.accumulate}, ` +
    `schedule ${t.schedule.type}, monitor ${t.monitor}, earlyStopping ${es}, maxSkippedShare ${t.maxSkippedShare}, seeds data ${d.seed} training ${t.seed}, ` +
    `output ${path.join(config.output.dir, config.name)}`
  );
}

/** Where a trained run's vocabulary and labels are, for {@link evaluateFromConfig}. */
export interface EvaluateOptions {
  /** Evaluate on this whole file (same format and columns as data.path) instead of the configuration's validation data. */
  data?: string;
  /** The run's vocab.json (default: found next to the checkpoint). */
  vocab?: string;
  /** The run's labels.json (default: found next to the checkpoint). */
  labels?: string;
}

/** The run folder's file `name` near a checkpoint: the checkpoint folder or up to three folders above. */
function findRunFile(modelFile: string, name: string): string | undefined {
  let dir = path.dirname(path.resolve(modelFile));
  for (let k = 0; k < 4; k++) {
    const f = path.join(dir, name);
    if (fs.existsSync(f)) return f;
    dir = path.dirname(dir);
  }
  return undefined;
}

/**
 * Evaluates a saved model (a checkpoint directory or a .pt file) on the configuration's
 * validation data, or on `options.data`. Label ids and tokens come from the run that
 * trained the model (its labels.json and vocab.json); without them it refuses.
 */
export async function evaluateFromConfig(config: RunConfig, checkpoint: string, options: EvaluateOptions = {}): Promise<Metrics> {
  if (!fs.existsSync(checkpoint)) throw new ConfigError('--checkpoint', `'${checkpoint}': no such file or directory`);
  const file = fs.statSync(checkpoint).isDirectory() ? path.join(checkpoint, 'model.pt') : checkpoint;
  if (!fs.existsSync(file)) throw new ConfigError('--checkpoint', `'${checkpoint}' is a directory without model.pt`);
  const fixed: PrepareOptions = {};
  const need = (flag: '--vocab' | '--labels', name: string): string => {
    const given = options[flag === '--vocab' ? 'vocab' : 'labels'];
    const found = given ?? findRunFile(file, name);
    if (found === undefined) {
      throw new ConfigError(
        flag,
        `no ${name} found next to '${file}' (looked in its folder and three above): the model's ${flag === '--vocab' ? 'vocabulary' : 'label ids'} are unknown; give ${flag} FILE from the run that trained it`,
      );
    }
    if (!fs.existsSync(found)) throw new ConfigError(flag, `'${found}': no such file`);
    return found;
  };
  if (isTextSource(config)) fixed.vocabFile = need('--vocab', 'vocab.json');
  if (isFileSource(config)) fixed.labelsFile = need('--labels', 'labels.json');
  else if (options.labels !== undefined) fixed.labelsFile = options.labels;
  let batches: Iterable<Batch>;
  if (options.data !== undefined) {
    if (!isFileSource(config)) throw new ConfigError('--data', `needs data.source csv, tsv or jsonl (the configuration has '${config.data.source}')`);
    const names = loadLabels(fixed.labelsFile as string);
    const vocab = await Vocabulary.load(fixed.vocabFile as string);
    const d = config.data;
    const ds = await readLabelled(config, '--data', options.data, names, false);
    const tokens = ds.texts.map((t) => tokenize(t, { lowercase: d.lowercase, removeStopwords: d.removeStopwords, removePunctuation: d.removePunctuation }));
    batches = TextBatches.fromTokens(tokens, Array.from(ds.labels), vocab, { batchSize: 256, maxLength: d.maxLength }).epoch(1);
  } else {
    batches = (await prepareData(config, fixed)).validation(1);
  }
  checkDevice(config.training.device);
  setJitOptions(config.training.jit);
  const model = await Module.load(file, { device: config.training.device as Device });
  placeModel(model, config.training.device);
  return evaluate(model, batches);
}
