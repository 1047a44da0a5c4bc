// The data pipeline: readers, tokenizer, vocabulary, batching (a sampler and a collation
// per format), word vectors, image datasets and adapters for offline packages.

export { DataFormatError } from './errors';
export { readCsvRecords } from './csv';
export type { CsvRecord, CsvParserOptions } from './csv';
export { permutation, splitIndices, pick } from './random';
export type { Rng, SplitOptions } from './random';
export { readTextDataset, streamTextRecords, sortLabelNames } from './text/read';
export type { TextFormat, TextDatasetOptions, TextRecord, TextDataset, SkippedRow } from './text/read';
export { tokenize, englishStopwords } from './text/tokenize';
export type { TokenizeOptions } from './text/tokenize';
export { Vocabulary } from './text/vocabulary';
export type { VocabularyOptions, VocabularyJSON } from './text/vocabulary';
export { encodeTexts } from './text/encode';
export type { EncodeOptions } from './text/encode';
export { TextBatches } from './text/batches';
export type { TextBatchesOptions, TextBatch } from './text/batches';
export { loadWordVectors } from './text/vectors';
export type { WordVectorOptions, WordVectors } from './text/vectors';
export type { SamplerOptions } from './sampler';
export type { EpochBatches } from './batches';
export { readIdx, parseIdx, loadImageDataset, readCifar10Batch, ImageBatches, CIFAR10_CLASSES } from './images';
export type { IdxFile, IdxType, Normalize, ImageDataset, ImageDatasetOptions, CifarOptions, ImageBatchesOptions, ImageBatch } from './images';
export {
  loadSpamAssassin,
  loadSpamAssassinDecoded,
  decodeMail,
  SPAM_ASSASSIN_GROUPS,
  loadMnistPackage,
  loadFashionMnist,
  FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
} from './offline';
export type { SpamAssassinOptions, SpamAssassinDataset, MnistPackageOptions, FashionMnistOptions } from './offline';
