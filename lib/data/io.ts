// Streaming text input shared by the readers: a file (gzip-compressed when its name ends
// in .gz) as UTF-8 chunks or as numbered lines, with errors that name the file.

import * as fs from 'fs';
import { pipeline, Readable } from 'stream';
import * as zlib from 'zlib';
import { readError } from './errors';

/** The file as a stream of UTF-8 text chunks; `.gz` files are decompressed on the fly. */
export function openTextStream(file: string): Readable {
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 16 });
  if (!/\.gz$/i.test(file)) {
    raw.setEncoding('utf8');
    return raw;
  }
  const gunzip = zlib.createGunzip();
  pipeline(raw, gunzip, () => undefined); // errors reach the consumer through gunzip
  gunzip.setEncoding('utf8');
  return gunzip;
}

/** The file's text in chunks (a leading byte-order mark removed); read errors name the file. */
export async function* readChunks(where: string, file: string): AsyncGenerator<string> {
  const stream = openTextStream(file);
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
        if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
      }
      yield chunk;
    }
  } finally {
    stream.destroy();
  }
}

/** The file's lines with their 1-based numbers; LF and CRLF line ends are removed. */
export async function* readLines(where: string, file: string): AsyncGenerator<{ line: number; text: string }> {
  let rest = '';
  let line = 0;
  for await (const chunk of readChunks(where, file)) {
    let start = 0;
    const s = rest.length > 0 ? rest + chunk : chunk;
    for (;;) {
      const nl = s.indexOf('\n', start);
      if (nl < 0) break;
      const end = nl > start && s.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      yield { line: ++line, text: s.slice(start, end) };
      start = nl + 1;
    }
    rest = s.slice(start);
  }
  if (rest.length > 0) yield { line: ++line, text: rest.endsWith('\r') ? rest.slice(0, -1) : rest };
}
