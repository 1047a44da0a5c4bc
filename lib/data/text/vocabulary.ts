// The token <-> id mapping (pad at id 0, unk at id 1), built from a corpus, saved as JSON.

import * as fs from 'fs';
import * as is from '../../core/is';
import { DataFormatError, readError } from '../errors';

/** Options of {@link Vocabulary.build}. */
export interface VocabularyOptions {
  /** Largest size, pad and unk included (at least 3). Unlimited by default. */
  maxSize?: number;
  /** Least count for a token to enter. Default 1. */
  minFreq?: number;
  /** The padding token, id 0. Default '<pad>'. */
  pad?: string;
  /** The unknown-word token, id 1. Default '<unk>'. */
  unk?: string;
}

/** The JSON form of a {@link Vocabulary}. */
export interface VocabularyJSON {
  /** What the file is. */
  format: 'dropattack-vocabulary';
  /** The version of this format. */
  version: 1;
  /** The padding token (id 0). */
  pad: string;
  /** The unknown-word token (id 1). */
  unk: string;
  /** All tokens by id: tokens[0] is pad, tokens[1] is unk. */
  tokens: string[];
}

/**
 * A token ↔ id mapping with the padding token at id 0 and the unknown token at id 1.
 * Built tokens are ordered by count (descending), then by token (code units), so the
 * same corpus always gives the same ids.
 */
export class Vocabulary {
  /** The padding id. */
  static readonly PAD_ID = 0;
  /** The unknown-token id. */
  static readonly UNK_ID = 1;
  /** The padding token, at {@link Vocabulary.PAD_ID}. */
  readonly pad: string;
  /** The unknown-word token, at {@link Vocabulary.UNK_ID}. */
  readonly unk: string;
  private readonly list: string[];
  private readonly index: Map<string, number>;

  private constructor(tokens: string[], pad: string, unk: string) {
    this.list = tokens;
    this.pad = pad;
    this.unk = unk;
    this.index = new Map(tokens.map((t, k) => [t, k]));
  }

  /** Counts the tokens of a corpus and keeps the most frequent. */
  static build(tokenLists: Iterable<readonly string[]>, options?: VocabularyOptions): Vocabulary {
    const where = 'Vocabulary.build';
    if (tokenLists === null || typeof tokenLists !== 'object' || typeof (tokenLists as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw is.invalidType(where, 'tokenLists', 'an iterable of token arrays', tokenLists);
    }
    const o = is.options<VocabularyOptions>(where, options, ['maxSize', 'minFreq', 'pad', 'unk']);
    const maxSize = o.maxSize === undefined ? Infinity : is.integer(where, 'maxSize', o.maxSize, 3);
    const minFreq = o.minFreq === undefined ? 1 : is.integer(where, 'minFreq', o.minFreq, 1);
    const pad = o.pad === undefined ? '<pad>' : specialArg(where, 'pad', o.pad);
    const unk = o.unk === undefined ? '<unk>' : specialArg(where, 'unk', o.unk);
    if (pad === unk) throw new RangeError(`${where}: pad and unk must differ, both are '${pad}'`);
    const counts = new Map<string, number>();
    let k = 0;
    for (const tokens of tokenLists) {
      if (!is.isArray(tokens)) throw is.invalidType(where, `tokenLists[${k}]`, 'an array of strings', tokens);
      for (let j = 0; j < tokens.length; j++) {
        const t = tokens[j];
        if (typeof t !== 'string') throw is.invalidType(where, `tokenLists[${k}][${j}]`, 'a string', t);
        counts.set(t, (counts.get(t) ?? 0) + 1);
      }
      k++;
    }
    counts.delete(pad);
    counts.delete(unk);
    const kept: [string, number][] = [];
    for (const e of counts) if (e[1] >= minFreq) kept.push(e);
    if (kept.length === 0) {
      throw new RangeError(
        `${where}: empty vocabulary: no token occurs at least minFreq = ${minFreq} times (${counts.size} distinct tokens in ${k} token lists)`,
      );
    }
    kept.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const size = Math.min(kept.length, maxSize - 2);
    const tokens = [pad, unk];
    for (let i = 0; i < size; i++) tokens.push(kept[i][0]);
    return new Vocabulary(tokens, pad, unk);
  }

  /** A vocabulary from its JSON form ({@link toJSON}); `source` names the origin in errors. */
  static fromJSON(json: unknown, source = 'Vocabulary.fromJSON'): Vocabulary {
    const bad = (what: string): TypeError => new TypeError(`${source}: not a vocabulary: ${what}`);
    if (!is.isPlainObject(json)) throw bad(`expected an object, got ${is.describe(json)}`);
    if (json.format !== 'dropattack-vocabulary') throw bad(`field 'format' must be 'dropattack-vocabulary', got ${is.describe(json.format)}`);
    if (json.version !== 1) throw bad(`field 'version' must be 1, got ${is.describe(json.version)}`);
    if (typeof json.pad !== 'string' || json.pad === '') throw bad(`field 'pad' must be a non-empty string, got ${is.describe(json.pad)}`);
    if (typeof json.unk !== 'string' || json.unk === '') throw bad(`field 'unk' must be a non-empty string, got ${is.describe(json.unk)}`);
    const tokens = json.tokens;
    if (!Array.isArray(tokens) || tokens.length < 3) throw bad(`field 'tokens' must be an array of at least 3 strings, got ${is.describe(tokens)}`);
    if (tokens[0] !== json.pad) throw bad(`tokens[0] must be the pad token '${json.pad}', got ${is.describe(tokens[0])}`);
    if (tokens[1] !== json.unk) throw bad(`tokens[1] must be the unk token '${json.unk}', got ${is.describe(tokens[1])}`);
    const seen = new Set<string>();
    tokens.forEach((t, k) => {
      if (typeof t !== 'string') throw bad(`tokens[${k}] must be a string, got ${is.describe(t)}`);
      if (seen.has(t)) throw bad(`tokens[${k}] '${t}' is repeated`);
      seen.add(t);
    });
    return new Vocabulary([...(tokens as string[])], json.pad, json.unk);
  }

  /** Reads a vocabulary saved with {@link save}. */
  static async load(file: string): Promise<Vocabulary> {
    const where = 'Vocabulary.load';
    if (typeof file !== 'string') throw is.invalidType(where, 'path', 'a file path', file);
    let text: string;
    try {
      text = await fs.promises.readFile(file, 'utf8');
    } catch (e) {
      throw readError(where, file, e);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new DataFormatError(file, undefined, `invalid JSON: ${(e as Error).message}`);
    }
    return Vocabulary.fromJSON(json, file);
  }

  /** Number of tokens, pad and unk included. */
  get size(): number {
    return this.list.length;
  }
  /** All tokens by id. */
  get tokens(): readonly string[] {
    return this.list;
  }
  /** Whether the token has its own id. */
  has(token: string): boolean {
    return this.index.has(token);
  }
  /** The token's id, or -1 when it has none. */
  indexOf(token: string): number {
    return this.index.get(token) ?? -1;
  }
  /** The token's id, or the unk id. */
  id(token: string): number {
    return this.index.get(token) ?? Vocabulary.UNK_ID;
  }
  /** The token with this id. */
  token(id: number): string {
    is.integer('Vocabulary.token', 'id', id, 0);
    if (id >= this.list.length) throw is.invalidRange('Vocabulary.token', 'id', `below the vocabulary size ${this.list.length}`, id);
    return this.list[id];
  }
  /** The ids of the tokens (unk for unknown ones). */
  encode(tokens: readonly string[]): Int32Array {
    if (!is.isArray(tokens)) throw is.invalidType('Vocabulary.encode', 'tokens', 'an array of strings', tokens);
    const out = new Int32Array(tokens.length);
    for (let k = 0; k < tokens.length; k++) out[k] = this.index.get(tokens[k]) ?? Vocabulary.UNK_ID;
    return out;
  }
  /** The tokens of the ids; padding ids are dropped unless keepPad. */
  decode(ids: ArrayLike<number | bigint>, keepPad = false): string[] {
    const out: string[] = [];
    for (let k = 0; k < ids.length; k++) {
      const id = Number(ids[k]);
      if (id === Vocabulary.PAD_ID && !keepPad) continue;
      out.push(this.token(id));
    }
    return out;
  }
  /** The JSON form. */
  toJSON(): VocabularyJSON {
    return { format: 'dropattack-vocabulary', version: 1, pad: this.pad, unk: this.unk, tokens: [...this.list] };
  }
  /** Writes the JSON form to a file (through a temporary file, so a crash leaves no half file). */
  async save(file: string): Promise<void> {
    if (typeof file !== 'string') throw is.invalidType('Vocabulary.save', 'path', 'a file path', file);
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.promises.writeFile(tmp, JSON.stringify(this.toJSON()));
    await fs.promises.rename(tmp, file);
  }
}

function specialArg(where: string, name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw is.invalidType(where, name, 'a non-empty string', value);
  return value;
}
