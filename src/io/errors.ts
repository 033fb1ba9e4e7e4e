/**
 * The one error type for reading and writing quadranet's files, and the translation of operating
 * system error codes into messages a user can act on.
 */

import { QuadranetError } from '../util/errors.js';

/**
 * A file could not be read or written. The message is one line naming the file and what to do;
 * `file` holds the path (or `<buffer>` for in-memory data) so callers can report it separately.
 */
export class QuadranetFileError extends QuadranetError {
  /** The path at fault, or `<buffer>` when decoding bytes that came from no file. */
  readonly file: string;

  constructor(file: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'QuadranetFileError';
    this.file = file;
  }
}

/** The `code` of a Node system error (`ENOSPC`, `EACCES`, ...), or undefined for anything else. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  const code = (err as { code: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Wraps a failure of `action` on `file` as a QuadranetFileError with an actionable message.
 * A QuadranetFileError passes through unchanged, so nested helpers can all call this safely.
 */
export function fileErrorFrom(
  err: unknown,
  file: string,
  action: 'read' | 'write' | 'remove',
): QuadranetFileError {
  if (err instanceof QuadranetFileError) return err;
  const code = errnoCode(err);
  const reason = err instanceof Error ? err.message : String(err);
  const message = ((): string => {
    switch (code) {
      case 'ENOSPC':
      case 'EDQUOT':
        return `disk full while writing ${file}; free space and retry`;
      case 'EROFS':
        return `cannot ${action} ${file}: the file system is read-only; choose another output directory`;
      case 'EACCES':
      case 'EPERM':
        return action === 'read'
          ? `cannot read ${file}: permission denied; check the file's permissions`
          : `cannot ${action} ${file}: permission denied; choose another output directory`;
      case 'ENOENT':
        return action === 'read'
          ? `${file} not found; check the path`
          : `cannot ${action} ${file}: its directory does not exist; create it or check the path`;
      case 'ENOTDIR':
        return `cannot ${action} ${file}: part of the path is a file, not a directory; check the path`;
      case 'EISDIR':
        return `cannot ${action} ${file}: it is a directory; give a file path`;
      case 'EMFILE':
      case 'ENFILE':
        return `cannot ${action} ${file}: too many open files; close other programs or raise the limit`;
      case 'EIO':
        return `cannot ${action} ${file}: input/output error from the device; check the disk and retry`;
      default:
        return `cannot ${action} ${file}: ${reason}; check the path and retry`;
    }
  })();
  return new QuadranetFileError(file, message, { cause: err });
}
