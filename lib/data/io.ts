// Input shared by every reader of the data pipeline. The rules live here once:
// - gzip is recognised by its magic bytes 1f 8b, never by the file name;
// - text is UTF-8, and one leading byte-order mark (U+FEFF) is dropped;
// - lines end at LF, CRLF or a lone CR (node:readline's rule, the same as the CSV reader's);
// - a file that cannot be opened or read is an error naming the function and the file.

import * as fs from 'fs';
import * as readline from 'readline';
import { pipeline, Readable } from 'stream';
import { promisify } from 'util';
import * as zlib from 'zlib';
import * as is from '../core/is';
import { DataFormatError, readError } from './errors';

const gunzipBuffer = promisify(zlib.gunzip);

/** Whether these first bytes of a file are the gzip magic number 1f 8b. */
export function isGzip(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** The text without its leading byte-order mark, when it has one. */
export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Reads a whole file, decompressing it when it is gzip data ({@link isGzip}). */
export async function readMaybeGzip(where: string, file: string): Promise<Buffer> {
  if (typeof file !== 'string' || file === '') throw is.invalidType(where, 'path', 'a file path', file);
  let buf: Buffer;
  try {
    buf = await fs.promises.readFile(file);
  } catch (e) {
    throw readError(where, file, e);
  }
  if (isGzip(buf)) {
    try {
      buf = await gunzipBuffer(buf);
    } catch (e) {
      throw new DataFormatError(file, undefined, `corrupt gzip data: ${(e as Error).message}`);
    }
  }
  return buf;
}

/**
 * The file's bytes as a stream, decompressed on the fly when it is gzip data. Errors
 * opening the file name it; later read errors reach the consumer through the stream.
 */
async function openBytes(where: string, file: string): Promise<Readable> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (e) {
    throw readError(where, file, e);
  }
  const head = Buffer.alloc(2);
  let got: number;
  try {
    got = (await fh.read(head, 0, 2, 0)).bytesRead;
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw readError(where, file, e);
  }
  const raw = fh.createReadStream({ start: 0, highWaterMark: 1 << 16 });
  if (!isGzip(head.subarray(0, got))) return raw;
  const gunzip = zlib.createGunzip();
  pipeline(raw, gunzip, () => undefined); // errors reach the consumer through gunzip
  return gunzip;
}

/**
 * The file's text in UTF-8 chunks, gzip data decompressed and a leading byte-order mark
 * dropped. Errors opening or reading the file name it (corrupt gzip data included).
 */
export async function* readChunks(where: string, file: string): AsyncGenerator<string> {
  const stream = await openBytes(where, file);
  stream.setEncoding('utf8');
  let first = true;
  try {
    const it = stream[Symbol.asyncIterator]();
    for (;;) {
      let r: IteratorResult<unknown>;
      try {
        r = await it.next();
      } catch (e) {
        throw readError(where, file, e);
      }
      if (r.done) break;
      let chunk = r.value as string;
      if (first) {
        first = false;
        chunk = stripBom(chunk);
      }
      yield chunk;
    }
  } finally {
    stream.destroy();
  }
}

/** The file's text ({@link readChunks}) as a readable stream of strings. */
export function textStream(where: string, file: string): Readable {
  return Readable.from(readChunks(where, file), { objectMode: false, encoding: 'utf8' });
}

/** The file's lines with their 1-based numbers, read with node:readline (line ends removed). */
export async function* readLines(where: string, file: string): AsyncGenerator<{ line: number; text: string }> {
  const input = textStream(where, file);
  // The first failure, of the stream or of the reading, thrown as it came.
  let failure: { error: unknown } | undefined;
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  input.on('error', (error) => {
    failure ??= { error };
    rl.close();
  });
  let line = 0;
  try {
    for await (const text of rl) {
      if (failure) break;
      yield { line: ++line, text };
    }
  } catch (error) {
    failure ??= { error };
  } finally {
    rl.close();
    input.destroy();
  }
  if (failure) throw failure.error;
}
