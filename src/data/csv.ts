/**
 * The `csv:FILE` loader: a tabular dataset, one example per row after a required header row. One
 * column (named by `label`, default `label`) holds the class, or with `task: 'regression'` a
 * numeric target (one float per row, `Dataset.targets` of shape `[1]`); every other column is a
 * numeric feature.
 *
 * Each example is stored as an "image" of shape `[1, 1, F]` (F = the number of feature columns),
 * so the rest of quadranet (batching, trainers) handles it unchanged and an MLP that starts with a
 * Flatten consumes it as a vector of F features.
 */

import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parse } from 'csv-parse/sync';
import { createDataset, type Dataset } from './dataset.js';
import { DataError, reason } from './errors.js';
import { checkLimit, DEFAULT_TEST_FRACTION, sampleIndices, splitByClass } from './folder.js';
import type { Split } from './mnist.js';

/** The label column's name when none is given. */
export const DEFAULT_LABEL_COLUMN = 'label';

/** What the label column holds: class labels, or a numeric target to regress. */
export const CSV_TASKS = ['classification', 'regression'] as const;

/** A CSV task. */
export type CsvTask = (typeof CSV_TASKS)[number];

/** Options of `loadCsv`. */
export interface CsvOptions {
  /** Which split to load (default `train`). */
  split?: Split;
  /** The name of the label (or, for regression, target) column (default `label`). */
  label?: string;
  /**
   * `classification` (default): the label column holds classes; `regression`: it holds a number
   * per row, loaded as the target (the features are standardised as usual, the target never).
   */
  task?: CsvTask;
  /**
   * Standardise every feature to zero mean and unit variance with the mean and (population)
   * standard deviation of the **train** split, whichever split is loaded, so train and test get
   * the same transform (default true). A constant feature is centred only.
   */
  standardize?: boolean;
  /** Keep a seeded random sample of `limit` rows of the split (all when absent or larger). */
  limit?: number;
  /** Seed of the train/test assignment and of the `limit` sample (default 0). */
  seed?: number;
  /** The fraction of each class's rows that go to test, in [0, 1] (default 0.2). */
  testFraction?: number;
  /** The dataset name for reports (default: the file's base name). */
  name?: string;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Loads one split of a CSV file as a dataset of shape `[1, 1, F]`. Labels are either all
 * non-negative integers (class indices; the class count is the largest + 1) or class names, mapped
 * to the indices of their sorted unique values (kept as `classNames`). Rows keep the file order.
 *
 * @throws DataError naming the file (and line and column for a bad cell): a missing file, no
 *   header or no rows, a missing label column, an empty or non-numeric feature cell, a negative
 *   integer label, bad options
 */
export async function loadCsv(file: string, opts: CsvOptions = {}): Promise<Dataset> {
  const {
    split = 'train',
    label = DEFAULT_LABEL_COLUMN,
    standardize = true,
    limit,
    seed = 0,
    testFraction = DEFAULT_TEST_FRACTION,
    task = 'classification',
  } = opts;
  checkLimit(limit, file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(`${file}: no such file; check the data path`);
    throw new DataError(`${file}: cannot read CSV file (${reason(err)})`);
  }
  const lines: number[] = [];
  let rows: string[][];
  try {
    rows = parse(text, {
      bom: true,
      trim: true,
      skip_empty_lines: true,
      on_record: (record: string[], ctx) => {
        lines.push(ctx.lines);
        return record;
      },
    });
  } catch (err) {
    throw new DataError(`${file}: malformed CSV (${reason(err)}); fix the file`);
  }
  if (rows.length === 0) {
    throw new DataError(`${file}: empty file; a CSV needs a header row naming its columns`);
  }
  const header = rows[0]!;
  const col = header.indexOf(label);
  if (col < 0) {
    if (header.every((h) => NUMBER.test(h))) {
      throw new DataError(
        `${file}: the first row (${header.slice(0, 4).map(shown).join(', ')}${header.length > 4 ? ', ...' : ''}) ` +
          `looks like data; add a header row naming the columns`,
      );
    }
    throw new DataError(
      `${file}: no column '${shown(label)}' (columns: ${listed(header)}); pass label=NAME`,
    );
  }
  const dup = header.find((h, i) => header.indexOf(h) !== i);
  if (dup !== undefined) {
    throw new DataError(`${file}: column '${shown(dup)}' appears twice in the header; rename one`);
  }
  const n = rows.length - 1;
  if (n === 0) throw new DataError(`${file}: header but no data rows`);
  const featureCols = header.map((_, i) => i).filter((i) => i !== col);
  const f = featureCols.length;
  if (f === 0) {
    throw new DataError(`${file}: only the label column '${shown(label)}'; add feature columns`);
  }
  const at = (r: number, c: number): string =>
    `${file}: line ${lines[r + 1]}, column '${shown(header[c]!)}'`;

  const raw = rows.slice(1).map((row, r) => {
    const v = row[col]!;
    if (v === '')
      throw new DataError(
        `${at(r, col)}: empty label; give every row a ${task === 'regression' ? 'target' : 'class'}`,
      );
    return v;
  });
  const { labels, numClasses, classNames, targets } = LABEL_PARSERS[task](raw, (r) => at(r, col));

  // Features, row-major [n, f].
  const x = new Float32Array(n * f);
  for (let r = 0; r < n; r++) {
    const row = rows[r + 1]!;
    for (let j = 0; j < f; j++) {
      const c = featureCols[j]!;
      const v = row[c]!;
      if (v === '') throw new DataError(`${at(r, c)}: empty cell; fill it or drop the row`);
      if (!NUMBER.test(v)) {
        throw new DataError(
          `${at(r, c)}: '${shown(v)}' is not a number; features must be numeric ` +
            `(name the label column with label=NAME)`,
        );
      }
      x[r * f + j] = Number(v);
    }
  }

  const parts = splitByClass(labels, testFraction, seed, file);
  if (standardize) standardizeInPlace(x, f, parts.train);
  const keep = sampleIndices(split === 'train' ? parts.train : parts.test, limit, seed);
  const images = new Float32Array(keep.length * f);
  for (let k = 0; k < keep.length; k++) {
    const r = keep[k]!;
    images.set(x.subarray(r * f, (r + 1) * f), k * f);
  }
  return createDataset({
    name: opts.name ?? basename(file),
    images,
    labels: Int32Array.from(keep, (r) => labels[r]!),
    shape: [1, 1, f],
    numClasses,
    classNames,
    ...(targets && { targets: Float32Array.from(keep, (r) => targets[r]!), targetShape: [1] }),
  });
}

/** What the label column of a CSV file becomes. */
interface ParsedLabels {
  /** One class index per row (all 0 for regression). */
  labels: Int32Array;
  /** The number of classes (1 for regression). */
  numClasses: number;
  /** Class names when the labels are names. */
  classNames?: string[];
  /** One target per row (regression). */
  targets?: Float32Array;
}

/** The label column's parser per task; `at(r)` names the file, line and column of row r. */
const LABEL_PARSERS: Record<CsvTask, (raw: string[], at: (r: number) => string) => ParsedLabels> = {
  // Labels: integers 0..K-1, or names mapped to their sorted order.
  classification: (raw, at) => {
    const n = raw.length;
    const labels = new Int32Array(n);
    if (raw.every((v) => /^[+-]?\d+$/.test(v))) {
      let max = 0;
      for (let r = 0; r < n; r++) {
        const y = Number(raw[r]);
        // Labels are stored as int32; a larger index would wrap around silently.
        if (y < 0 || y > 0x7fffffff) {
          throw new DataError(
            `${at(r)}: label ${shown(raw[r]!)} must be a class index 0..K-1 ` +
              `${y < 0 ? '' : '(below 2^31) '}or a class name`,
          );
        }
        labels[r] = y;
        max = Math.max(max, y);
      }
      return { labels, numClasses: max + 1 };
    }
    const classNames = [...new Set(raw)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const index = new Map(classNames.map((name, k) => [name, k]));
    for (let r = 0; r < n; r++) labels[r] = index.get(raw[r]!)!;
    return { labels, numClasses: classNames.length, classNames };
  },
  // Targets: one finite float32 per row; every example is in the single class 0.
  regression: (raw, at) => {
    const targets = new Float32Array(raw.length);
    for (let r = 0; r < raw.length; r++) {
      const v = raw[r]!;
      const y = Number(v);
      if (!NUMBER.test(v) || !Number.isFinite(Math.fround(y))) {
        throw new DataError(
          `${at(r)}: target '${shown(v)}' is not a finite number; task=regression needs a ` +
            `numeric target column (or drop task=regression for class labels)`,
        );
      }
      targets[r] = y;
    }
    return { labels: new Int32Array(raw.length), numClasses: 1, targets };
  },
};

/**
 * A value from the file as it appears in a one-line message: control characters (line breaks
 * included) escaped, long values cut short so a hostile cell cannot flood the log.
 */
function shown(text: string): string {
  const escaped = text.replace(
    /[\u0000-\u001f\u007f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return escaped.length > 40 ? `${escaped.slice(0, 37)}...` : escaped;
}

/** Column names for a message: the first 20, each `shown`. */
function listed(names: string[]): string {
  const head = names.slice(0, 20).map(shown).join(', ');
  return names.length > 20 ? `${head}, ... (${names.length} in all)` : head;
}

/**
 * Standardises the columns of row-major `[n, f]` data with the mean and population standard
 * deviation of the rows `fit` (accumulated in float64); a column with zero spread is only centred.
 */
function standardizeInPlace(x: Float32Array, f: number, fit: Int32Array): void {
  const n = x.length / f;
  const mean = new Float64Array(f);
  const sq = new Float64Array(f);
  for (const r of fit) for (let j = 0; j < f; j++) mean[j]! += x[r * f + j]!;
  for (let j = 0; j < f; j++) mean[j] = fit.length > 0 ? mean[j]! / fit.length : 0;
  for (const r of fit) {
    for (let j = 0; j < f; j++) sq[j]! += (x[r * f + j]! - mean[j]!) ** 2;
  }
  const inv = Array.from(sq, (s) => {
    const std = fit.length > 0 ? Math.sqrt(s / fit.length) : 0;
    return std > 0 ? 1 / std : 1;
  });
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < f; j++) x[r * f + j] = (x[r * f + j]! - mean[j]!) * inv[j]!;
  }
}
