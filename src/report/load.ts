/**
 * Reading and validating run directories (see run-format.ts) for the report.
 *
 * Every failure is a QuadranetFileError whose one-line message names the file at fault (and the
 * line, for history.jsonl) and says what to do. What is required and what is tolerated:
 *
 * - `run.json` is required: `format` (1), `method`, `label`, `data`, `seed`, `params`, `flops` and
 *   `status` must be present and well typed; `model`, `command`, `started`, `env` may be missing
 *   (shown as "unknown").
 * - `history.jsonl` is required and needs at least one record; every record needs `step`, `epoch`,
 *   `cpuSeconds` and `samples`, and the cumulative counters must not go backwards. A last line
 *   without a trailing newline that does not parse (a writer killed mid-line) is skipped with a
 *   warning rather than refused.
 * - `eval.json` is optional (an interrupted run has none; the report then uses the last history
 *   accuracy and says so); when present it must be valid.
 */

import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { QuadranetFileError, errnoCode, fileErrorFrom } from '../io/errors.js';
import { fieldPath } from '../io/formats/json-schema.js';
import type { z } from 'zod';
import type { EvalSummary, HistoryRecord, RunInfo } from '../io/formats/run-format.js';
import {
  EvalSummarySchema,
  HistoryRecordSchema,
  RunInfoSchema,
} from '../io/formats/run-schemas.js';

export { RUN_METHODS } from '../io/formats/run-schemas.js';

/** A run directory as read from disk, validated. */
export interface LoadedRun {
  /** The directory as given by the caller. */
  dir: string;
  info: RunInfo;
  /** At least one record, cumulative counters non-decreasing. */
  history: HistoryRecord[];
  /** Absent when the run wrote no eval.json. */
  eval?: EvalSummary;
  /** Non-fatal problems found while reading (already phrased for the user). */
  warnings: string[];
}

/** Reads and validates several run directories; refuses the same directory given twice. */
export async function loadRuns(dirs: readonly string[]): Promise<LoadedRun[]> {
  const seen = new Map<string, string>();
  for (const dir of dirs) {
    const key = resolve(dir);
    const prev = seen.get(key);
    if (prev !== undefined) {
      throw new QuadranetFileError(dir, `run directory ${dir} is given twice; list each run once`);
    }
    seen.set(key, dir);
  }
  return Promise.all(dirs.map((d) => loadRun(d)));
}

/** Reads and validates one run directory. */
export async function loadRun(dir: string): Promise<LoadedRun> {
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) {
      throw new QuadranetFileError(
        dir,
        `${dir} is not a directory; give the run directory written by quadranet adapt or train`,
      );
    }
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new QuadranetFileError(dir, `run directory ${dir} not found; check the path`, {
        cause: err,
      });
    }
    throw fileErrorFrom(err, dir, 'read');
  }
  const warnings: string[] = [];
  const infoFile = join(dir, 'run.json');
  const info = parseRunInfo(await readRequired(infoFile, dir), infoFile);
  const historyFile = join(dir, 'history.jsonl');
  const history = parseHistory(await readRequired(historyFile, dir), historyFile, warnings);
  const evalFile = join(dir, 'eval.json');
  const evalText = await readOptional(evalFile);
  let evalSummary: EvalSummary | undefined;
  if (evalText === undefined) {
    warnings.push(
      `${evalFile} is missing (the run did not finish evaluating); its final accuracy is the last accuracy in history.jsonl`,
    );
  } else {
    evalSummary = parseEvalSummary(evalText, evalFile);
  }
  if (info.status !== 'done') {
    warnings.push(`run ${info.label} (${dir}) has status "${info.status}", not "done"`);
  }
  const run: LoadedRun = { dir, info, history, warnings };
  if (evalSummary) run.eval = evalSummary;
  return run;
}

async function readRequired(file: string, dir: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new QuadranetFileError(
        file,
        `${file} not found; is ${dir} a run directory written by quadranet adapt or train?`,
        { cause: err },
      );
    }
    throw fileErrorFrom(err, file, 'read');
  }
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw fileErrorFrom(err, file, 'read');
  }
}

// ---------------------------------------------------------------------------------------------
// Validation: the schemas (io/formats/run-schemas.ts) decide; these phrase their first complaint
// as the one line the report has always given. `where` prefixes messages ("line 3: ").

/** Throws the report's one-line error about `file`. */
function fail(file: string, message: string, where = ''): never {
  throw new QuadranetFileError(
    file,
    `${file}: ${where}${message}; fix or regenerate the file, or leave this run out of the report`,
  );
}

function parseText(text: string, file: string, where = ''): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    return fail(
      file,
      `not valid JSON (${err instanceof Error ? err.message : String(err)})`,
      where,
    );
  }
}

const A_TYPE: Record<string, string> = { object: 'a JSON object', array: 'an array' };

/** `value` checked by `schema`; its first fault becomes the one-line error. */
function check<T>(schema: z.ZodType<T>, value: unknown, file: string, what: string, where = ''): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return fail(file, `${what} must be a JSON object`, where);
  const r = schema.safeParse(value, { reportInput: true });
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = `field "${fieldPath(issue.path)}"`;
  if (issue.input === undefined) return fail(file, `${field} is missing`, where);
  switch (issue.code) {
    case 'invalid_type':
      return fail(
        file,
        `${field} must be ${A_TYPE[issue.expected] ?? `a ${issue.expected}`}`,
        where,
      );
    case 'too_small':
      return fail(file, `${field} must be ≥ ${String(issue.minimum)}`, where);
    case 'too_big':
      return fail(file, `${field} must be ≤ ${String(issue.maximum)}`, where);
    case 'invalid_value':
      return fail(
        file,
        `${field} is ${JSON.stringify(issue.input)}; expected one of ${issue.values.join(', ')}`,
        where,
      );
    default:
      return fail(file, `${field} ${issue.message}`, where);
  }
}

/** Validates the text of a run.json. */
export function parseRunInfo(text: string, file: string): RunInfo {
  const o = parseText(text, file);
  const format = (o as { format?: unknown } | null)?.format;
  if (typeof o === 'object' && o !== null && !Array.isArray(o) && format !== 1) {
    fail(
      file,
      format === undefined
        ? 'field "format" is missing'
        : `unsupported format ${JSON.stringify(format)} (this quadranet reads format 1); use the quadranet version that wrote it`,
    );
  }
  return check(RunInfoSchema, o, file, 'run.json');
}

/**
 * Validates the text of a history.jsonl. Blank lines are ignored; a final unterminated line that
 * does not parse is skipped with a warning pushed to `warnings`.
 */
export function parseHistory(text: string, file: string, warnings: string[] = []): HistoryRecord[] {
  const lines = text.split('\n');
  const out: HistoryRecord[] = [];
  let prev: HistoryRecord | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `line ${i + 1}: `;
    let value: unknown;
    try {
      value = JSON.parse(line) as unknown;
    } catch (err) {
      if (i === lines.length - 1 && out.length > 0) {
        warnings.push(
          `${file}: line ${i + 1} is incomplete (the writer was probably stopped mid-line) and was skipped`,
        );
        continue;
      }
      fail(file, `not valid JSON (${err instanceof Error ? err.message : String(err)})`, where);
    }
    const rec = check(HistoryRecordSchema, value, file, 'each record', where);
    if (prev) {
      for (const k of ['cpuSeconds', 'samples', 'step'] as const) {
        if (rec[k] < prev[k]) {
          fail(
            file,
            `"${k}" goes backwards (${rec[k]} after ${prev[k]}); the values are cumulative, so the file mixes two runs`,
            where,
          );
        }
      }
    }
    out.push(rec);
    prev = rec;
  }
  if (out.length === 0) fail(file, 'has no records (the run has not completed an epoch)');
  return out;
}

/** Validates the text of an eval.json. */
export function parseEvalSummary(text: string, file: string): EvalSummary {
  return check(EvalSummarySchema, parseText(text, file), file, 'eval.json');
}
