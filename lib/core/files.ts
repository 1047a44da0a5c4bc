// Files the library writes (checkpoints, logs, comparison tables): every failure is an
// Error that names the file and the cause (ENOSPC, EACCES, EROFS, ...). Node's own
// messages for a failed write() or fsync() do not say which file it was.
import * as fs from 'fs';

const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a parent is not a directory',
  EISDIR: 'is a directory',
  EIO: 'input/output error',
  EFBIG: 'file too large',
  EMFILE: 'too many open files',
  EEXIST: 'exists and is not a directory',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
};

/** The cause of a failed file-system call in words: `<reason> (<CODE>)`, or the error's own message. */
export function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code && REASONS[code] ? `${REASONS[code]} (${code})` : e instanceof Error ? e.message : String(e);
}

/** An error for a failed write of `file`: `<where>: cannot write '<file>': <reason> (<CODE>)`, keeping `code` and `cause`. */
export function writeError(where: string, file: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const reason = fsReason(e);
  const err = new Error(`${where}: cannot write '${file}': ${reason}`, { cause: e }) as NodeJS.ErrnoException;
  if (code) err.code = code;
  return err;
}

/** Writes `data` to `file` (created or truncated) and flushes it to the device; failures name the file. */
export function writeFileSynced(where: string, file: string, data: string | Uint8Array): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'w');
  } catch (e) {
    throw writeError(where, file, e);
  }
  try {
    fs.writeFileSync(fd, data);
    if (fs.fstatSync(fd).isFile()) fs.fsyncSync(fd); // devices and pipes have nothing to flush
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      // the write's own error is the one worth reporting
    }
    throw writeError(where, file, e);
  }
  try {
    fs.closeSync(fd);
  } catch (e) {
    throw writeError(where, file, e);
  }
}
