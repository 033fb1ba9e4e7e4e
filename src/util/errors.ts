/**
 * The one base of every error quadranet raises for its user (a bad file, flag, node or data
 * set): a leaf module, imported by every stage and importing nothing, so no stage reaches up to
 * the CLI for its error type. The CLI prints any `QuadranetError` as its one-line message and
 * anything else as an internal error.
 */

/** Folds line breaks (and the spaces around them) to one space: messages are one line. */
export function oneLineMessage(message: string): string {
  return message.replace(/\s*[\r\n\u2028\u2029]+\s*/g, ' ');
}

/**
 * An error whose message is meant for the user as it is: one line (line breaks smuggled in
 * through file or node names are folded), naming what is at fault and what to do.
 */
export class QuadranetError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(oneLineMessage(message), options);
    this.name = 'QuadranetError';
  }
}

/** A mistake in the user's input (a flag, an argument, a combination of them). */
export class UserError extends QuadranetError {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}
