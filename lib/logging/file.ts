// An append-only file written through a stream, shared by the file loggers.
import * as fs from 'fs';

import { writeError } from '../core/files';

export class AppendFile {
  private readonly stream: fs.WriteStream;
  private error: Error | null = null;
  private closing: Promise<void> | null = null;

  /** Takes ownership of an open file descriptor. */
  constructor(readonly path: string, fd: number) {
    this.stream = fs.createWriteStream(path, { fd });
    // A failed write (a full disk) surfaces from close() as an error naming the file.
    this.stream.on('error', (err) => (this.error ??= writeError('log', path, err)));
  }

  get isClosed(): boolean {
    return this.closing !== null;
  }

  write(data: string | Uint8Array): void {
    this.stream.write(data);
  }

  /** Flushes, closes the descriptor, and rejects with the first write error if there was one. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve, reject) => {
      const done = () => (this.error ? reject(this.error) : resolve());
      if (this.stream.closed) return done();
      this.stream.once('close', done);
      this.stream.end();
    });
    return this.closing;
  }
}
