import { DataError } from '../data/errors.js';
import { GraphError } from '../ir/graph.js';
import { OnnxFormatError } from '../ir/onnx.js';
import { QuadranetFileError } from '../io/errors.js';
import { ReportError } from '../report/index.js';
import { ExecutionProviderError } from '../runtime/session.js';

/** A mistake in the user's input: reported as one line, never with a stack trace. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** Errors whose message is meant for the user as it is. */
export function isUserFacing(e: unknown): e is Error {
  return (
    e instanceof UserError ||
    e instanceof DataError ||
    e instanceof GraphError ||
    e instanceof OnnxFormatError ||
    e instanceof QuadranetFileError ||
    e instanceof ReportError ||
    e instanceof ExecutionProviderError
  );
}

/** One line for any error: the message for user errors, a short internal-error note otherwise. */
export function oneLine(e: unknown): string {
  if (isUserFacing(e)) return e.message.replace(/\s*\n\s*/g, ' ');
  const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
  return `internal error: ${msg} (set QUADRANET_DEBUG=1 for a stack trace, and please report it)`;
}
