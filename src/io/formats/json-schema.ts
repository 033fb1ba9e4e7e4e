/**
 * Reading a JSON file against a zod schema, with the one-line errors every file format here
 * promises: the file, the field at fault and what it means for the user. The schemas are the
 * formats' single definition; their TypeScript types are inferred from them.
 */

import type { z } from 'zod';
import { QuadranetFileError } from '../errors.js';

/** A zod issue's path as messages name a field: `targets[0].params[1].name`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path
    .map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`))
    .join('');
}

/**
 * Parses `text` (the contents of `file`) as JSON and checks it against `schema`. Throws a
 * QuadranetFileError: `cannot read FILE: not valid JSON (…); HINT`, `… not a JSON object; HINT`
 * or `… "FIELD" MESSAGE; HINT` for the first field at fault.
 */
export function parseJsonFile<S extends z.ZodType>(
  schema: S,
  text: string,
  file: string,
  hint: string,
): z.infer<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new QuadranetFileError(
      file,
      `cannot read ${file}: not valid JSON (${(err as Error).message}); ${hint}`,
      { cause: err },
    );
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new QuadranetFileError(file, `cannot read ${file}: not a JSON object; ${hint}`);
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = fieldPath(issue.path);
  throw new QuadranetFileError(
    file,
    `cannot read ${file}: ${field ? `"${field}" ` : ''}${issue.message}; ${hint}`,
  );
}
