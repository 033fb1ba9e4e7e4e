import { oneLineMessage, QuadranetError } from '../util/errors.js';

export { UserError } from '../util/errors.js';

/** Errors whose message is meant for the user as it is: every error quadranet raises for them. */
export function isUserFacing(e: unknown): e is Error {
  return e instanceof QuadranetError;
}

/** One line for any error: the message for user errors, a short internal-error note otherwise. */
export function oneLine(e: unknown): string {
  if (isUserFacing(e)) return oneLineMessage(e.message);
  const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
  return `internal error: ${msg} (set QUADRANET_DEBUG=1 for a stack trace, and please report it)`;
}
