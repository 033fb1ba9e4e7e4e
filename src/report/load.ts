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
import type {
  EvalSummary,
  HistoryRecord,
  LatencySummary,
  RegressionSummary,
  RunInfo,
  RunMethod,
} from '../io/formats/run-format.js';

/** Every method the run format defines, in the order the report lists them. */
export const RUN_METHODS: readonly RunMethod[] = [
  'quadratic-adapt',
  'linear-adapter',
  'fine-tune',
  'head-only',
  'scratch-quadratic',
  'scratch',
];

const STATUSES: readonly RunInfo['status'][] = ['running', 'done', 'interrupted', 'diverged'];

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
// Validation helpers. `where` prefixes messages ("line 3: ") for multi-record files.

type Obj = Record<string, unknown>;

class Reader {
  constructor(
    private readonly file: string,
    private readonly where = '',
  ) {}

  fail(message: string): never {
    throw new QuadranetFileError(
      this.file,
      `${this.file}: ${this.where}${message}; fix or regenerate the file, or leave this run out of the report`,
    );
  }

  json(text: string): unknown {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return this.fail(`not valid JSON (${why})`);
    }
  }

  obj(v: unknown, name: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      return this.fail(`${name} must be a JSON object`);
    }
    return v as Obj;
  }

  num(o: Obj, key: string, name = key, opts: { min?: number; max?: number } = {}): number {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      return this.fail(
        v === undefined ? `field "${name}" is missing` : `field "${name}" must be a number`,
      );
    }
    if (opts.min !== undefined && v < opts.min) this.fail(`field "${name}" must be ≥ ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) this.fail(`field "${name}" must be ≤ ${opts.max}`);
    return v;
  }

  optNum(
    o: Obj,
    key: string,
    name = key,
    opts: { min?: number; max?: number } = {},
  ): number | undefined {
    return o[key] === undefined || o[key] === null ? undefined : this.num(o, key, name, opts);
  }

  str(o: Obj, key: string, name = key): string {
    const v = o[key];
    if (typeof v !== 'string') {
      return this.fail(
        v === undefined ? `field "${name}" is missing` : `field "${name}" must be a string`,
      );
    }
    return v;
  }

  optStr(o: Obj, key: string, fallback: string): string {
    const v = o[key];
    return typeof v === 'string' ? v : fallback;
  }

  oneOf<T extends string>(o: Obj, key: string, allowed: readonly T[]): T {
    const v = this.str(o, key);
    if (!(allowed as readonly string[]).includes(v)) {
      this.fail(`field "${key}" is "${v}"; expected one of ${allowed.join(', ')}`);
    }
    return v as T;
  }
}

/** Validates the text of a run.json. */
export function parseRunInfo(text: string, file: string): RunInfo {
  const r = new Reader(file);
  const o = r.obj(r.json(text), 'run.json');
  if (o['format'] !== 1) {
    r.fail(
      o['format'] === undefined
        ? 'field "format" is missing'
        : `unsupported format ${JSON.stringify(o['format'])} (this quadranet reads format 1); use the quadranet version that wrote it`,
    );
  }
  const method = r.oneOf(o, 'method', RUN_METHODS);
  const label = r.str(o, 'label');
  if (label.trim() === '') r.fail('field "label" is empty');
  const params = r.obj(o['params'], 'field "params"');
  const flops = r.obj(o['flops'], 'field "flops"');
  const env = o['env'] === undefined ? {} : r.obj(o['env'], 'field "env"');
  const info: RunInfo = {
    format: 1,
    method,
    label,
    model: r.optStr(o, 'model', 'unknown'),
    data: r.str(o, 'data'),
    seed: r.num(o, 'seed'),
    command: r.optStr(o, 'command', ''),
    params: {
      total: r.num(params, 'total', 'params.total', { min: 0 }),
      trainable: r.num(params, 'trainable', 'params.trainable', { min: 0 }),
      base: r.num(params, 'base', 'params.base', { min: 0 }),
    },
    flops: {
      model: r.num(flops, 'model', 'flops.model', { min: 0 }),
      base: r.num(flops, 'base', 'flops.base', { min: 0 }),
    },
    started: r.optStr(o, 'started', ''),
    status: r.oneOf(o, 'status', STATUSES),
    env: {
      quadranet: r.optStr(env, 'quadranet', 'unknown'),
      onnxruntime: r.optStr(env, 'onnxruntime', 'unknown'),
      node: r.optStr(env, 'node', 'unknown'),
      cpu: r.optStr(env, 'cpu', 'unknown'),
      threads: r.optNum(env, 'threads', 'env.threads', { min: 0 }) ?? 0,
    },
  };
  if (typeof o['modelSha256'] === 'string') info.modelSha256 = o['modelSha256'];
  const tfs = r.optNum(o, 'trainFlopsPerSample', 'trainFlopsPerSample', { min: 0 });
  if (tfs !== undefined) info.trainFlopsPerSample = tfs;
  if (typeof o['finished'] === 'string') info.finished = o['finished'];
  return info;
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
    const lineNo = i + 1;
    const r = new Reader(file, `line ${lineNo}: `);
    const isUnterminatedLast = i === lines.length - 1;
    let value: unknown;
    try {
      value = JSON.parse(line) as unknown;
    } catch (err) {
      if (isUnterminatedLast && out.length > 0) {
        warnings.push(
          `${file}: line ${lineNo} is incomplete (the writer was probably stopped mid-line) and was skipped`,
        );
        continue;
      }
      const why = err instanceof Error ? err.message : String(err);
      r.fail(`not valid JSON (${why})`);
    }
    const o = r.obj(value, 'each record');
    const acc = { min: 0, max: 1 };
    const rec: HistoryRecord = {
      step: r.num(o, 'step', 'step', { min: 0 }),
      epoch: r.num(o, 'epoch', 'epoch', { min: 0 }),
      // A diverged run may record a non-finite loss as null; the report does not use the loss.
      loss: o['loss'] === null ? Number.NaN : r.num(o, 'loss'),
      wallSeconds: r.optNum(o, 'wallSeconds', 'wallSeconds', { min: 0 }) ?? 0,
      cpuSeconds: r.num(o, 'cpuSeconds', 'cpuSeconds', { min: 0 }),
      samples: r.num(o, 'samples', 'samples', { min: 0 }),
      samplesPerSecond: r.optNum(o, 'samplesPerSecond', 'samplesPerSecond', { min: 0 }) ?? 0,
      lr: r.optNum(o, 'lr') ?? 0,
    };
    const train = r.optNum(o, 'trainAccuracy', 'trainAccuracy', acc);
    if (train !== undefined) rec.trainAccuracy = train;
    const val = r.optNum(o, 'valAccuracy', 'valAccuracy', acc);
    if (val !== undefined) rec.valAccuracy = val;
    const valLoss = r.optNum(o, 'valLoss');
    if (valLoss !== undefined) rec.valLoss = valLoss;
    const valMse = r.optNum(o, 'valMse', 'valMse', { min: 0 });
    if (valMse !== undefined) rec.valMse = valMse;
    // An infinite PSNR (outputs equal to the targets) is written as null.
    if (o['valPsnr'] === null) rec.valPsnr = Infinity;
    else {
      const valPsnr = r.optNum(o, 'valPsnr');
      if (valPsnr !== undefined) rec.valPsnr = valPsnr;
    }
    if (prev) {
      for (const k of ['cpuSeconds', 'samples', 'step'] as const) {
        if (rec[k] < prev[k]) {
          r.fail(
            `"${k}" goes backwards (${rec[k]} after ${prev[k]}); the values are cumulative, so the file mixes two runs`,
          );
        }
      }
    }
    out.push(rec);
    prev = rec;
  }
  if (out.length === 0) {
    new Reader(file).fail('has no records (the run has not completed an epoch)');
  }
  return out;
}

function parseLatency(r: Reader, v: unknown, name: string): LatencySummary[] {
  if (!Array.isArray(v)) return r.fail(`field "${name}" must be an array`);
  return v.map((item, i) => {
    const o = r.obj(item, `${name}[${i}]`);
    const out: LatencySummary = {
      batchSize: r.num(o, 'batchSize', `${name}[${i}].batchSize`, { min: 1 }),
      p50Ms: r.num(o, 'p50Ms', `${name}[${i}].p50Ms`, { min: 0 }),
      p95Ms: r.num(o, 'p95Ms', `${name}[${i}].p95Ms`, { min: 0 }),
      perSampleMs: r.num(o, 'perSampleMs', `${name}[${i}].perSampleMs`, { min: 0 }),
    };
    if (o['timesMs'] !== undefined) {
      const t = o['timesMs'];
      if (
        !Array.isArray(t) ||
        !t.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0)
      )
        return r.fail(`field "${name}[${i}].timesMs" must be an array of non-negative numbers`);
      out.timesMs = t as number[];
    }
    return out;
  });
}

/** The `regression` field of an eval.json (or of its `base`), when present. */
function parseRegression(r: Reader, v: unknown, name: string): RegressionSummary | undefined {
  if (v === undefined || v === null) return undefined;
  const o = r.obj(v, `field "${name}"`);
  const out: RegressionSummary = {
    mse: r.num(o, 'mse', `${name}.mse`, { min: 0 }),
    rmse: r.num(o, 'rmse', `${name}.rmse`, { min: 0 }),
    mae: r.num(o, 'mae', `${name}.mae`, { min: 0 }),
  };
  // PSNR is null in JSON when infinite (outputs equal to the targets).
  for (const k of ['psnr', 'meanPsnr'] as const) {
    if (o[k] === null) out[k] = Infinity;
    else if (o[k] !== undefined) out[k] = r.num(o, k, `${name}.${k}`);
  }
  return out;
}

/**
 * An accuracy field: a fraction, or null (NaN) in the eval.json of regression data, which has
 * `regression` metrics instead.
 */
function parseAccuracy(r: Reader, o: Record<string, unknown>, name: string, regression: boolean) {
  return regression && o['accuracy'] === null
    ? Number.NaN
    : r.num(o, 'accuracy', name, { min: 0, max: 1 });
}

/** Validates the text of an eval.json. */
export function parseEvalSummary(text: string, file: string): EvalSummary {
  const r = new Reader(file);
  const o = r.obj(r.json(text), 'eval.json');
  const regression = parseRegression(r, o['regression'], 'regression');
  const out: EvalSummary = {
    n: r.num(o, 'n', 'n', { min: 0 }),
    accuracy: parseAccuracy(r, o, 'accuracy', regression !== undefined),
    loss: o['loss'] === null ? Number.NaN : r.num(o, 'loss'),
    perClassAccuracy: Array.isArray(o['perClassAccuracy'])
      ? (o['perClassAccuracy'] as unknown[]).filter((x): x is number => typeof x === 'number')
      : [],
    confusion: Array.isArray(o['confusion']) ? (o['confusion'] as number[][]) : [],
    latency: o['latency'] === undefined ? [] : parseLatency(r, o['latency'], 'latency'),
  };
  if (regression) out.regression = regression;
  if (o['base'] !== undefined && o['base'] !== null) {
    const b = r.obj(o['base'], 'field "base"');
    const baseRegression = parseRegression(r, b['regression'], 'base.regression');
    out.base = {
      accuracy: parseAccuracy(r, b, 'base.accuracy', baseRegression !== undefined),
      loss: b['loss'] === null ? Number.NaN : r.num(b, 'loss', 'base.loss'),
      latency: b['latency'] === undefined ? [] : parseLatency(r, b['latency'], 'base.latency'),
    };
    if (baseRegression) out.base.regression = baseRegression;
  }
  return out;
}
