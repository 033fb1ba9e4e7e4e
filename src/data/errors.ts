/**
 * The one error type of the data layer. Loaders and parsers throw it for anything the user can fix
 * (a wrong path, a corrupt file, a bad spec), so the CLI can print its message as the one-line
 * reason and exit non-zero, while programming errors still surface as ordinary exceptions.
 */

import { QuadranetError } from '../util/errors.js';

/** A user-fixable data problem; the message is one line naming the file or spec and what to do. */
export class DataError extends QuadranetError {
  /** Always `DataError`. */
  override name = 'DataError';
}

/** The message of an unknown thrown value, for wrapping system errors into a `DataError`. */
export function reason(err: unknown): string {
  // Node's system errors already start with their code ("ENOENT: no such file ..."), so the
  // message alone is enough.
  return err instanceof Error ? err.message : String(err);
}
