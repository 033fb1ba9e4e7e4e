import type { Dataset } from '../data/dataset.js';
import { targetSize } from '../data/dataset.js';
import { DataError } from '../data/errors.js';
import type { Graph } from '../ir/graph.js';
import type { EvalSummary, LatencySummary } from '../io/formats/run-format.js';
import type { RegressionMetrics } from '../runtime/regression.js';
import { evaluateRegressionSession } from '../runtime/regression.js';
import type { SessionOptions } from '../runtime/session.js';
import { Session } from '../runtime/session.js';
import { evaluateSession } from '../runtime/trainer.js';
import { Rng } from '../util/random.js';
import { detectOutputEnding } from '../passes/output-ending.js';

/**
 * Progress of a long phase (evaluation, latency runs, loading data), for progress displays: a
 * call with `done` 0 when it starts, calls as work is done, and one with `finished` at its end.
 */
export interface PhaseProgress {
  /** What is being done, e.g. 'evaluating the adapted model'. */
  phase: string;
  /** Units of work done so far. */
  done: number;
  /** Units of work in all; 0 when not known in advance. */
  total: number;
  /** What a unit is, e.g. 'examples'. */
  unit: string;
  /** The phase is over. */
  finished: boolean;
}

/** A phase's progress callback. */
export type OnPhase = (p: PhaseProgress) => void;

/** Reports the start of a phase without known size; returns the function that reports its end. */
export function startPhase(onPhase: OnPhase | undefined, phase: string): () => void {
  onPhase?.({ phase, done: 0, total: 0, unit: '', finished: false });
  return () => onPhase?.({ phase, done: 0, total: 0, unit: '', finished: true });
}

/** Runs `work` as a phase without known size: a start and a finish report around it. */
export async function inPhase<T>(
  onPhase: OnPhase | undefined,
  phase: string,
  work: () => Promise<T>,
): Promise<T> {
  onPhase?.({ phase, done: 0, total: 0, unit: '', finished: false });
  const r = await work();
  onPhase?.({ phase, done: 0, total: 0, unit: '', finished: true });
  return r;
}

/** A per-batch callback that reports `phase` over `total` examples (start reported at once). */
function exampleCounter(
  onPhase: OnPhase | undefined,
  phase: string,
  total: number,
): ((done: number) => void) | undefined {
  if (!onPhase) return undefined;
  onPhase({ phase, done: 0, total, unit: 'examples', finished: false });
  return (done) => onPhase({ phase, done, total, unit: 'examples', finished: done >= total });
}

/** How latency is measured. */
export interface LatencyOptions {
  /** Batch sizes to time (default [1, 32]). */
  batchSizes?: number[];
  /** Timed runs per batch size after warm-up (default 30). */
  runs?: number;
  /** onnxruntime session settings of the timed sessions. */
  session?: SessionOptions;
  /** Reports the timed rounds as they run. */
  onPhase?: OnPhase;
  /**
   * Fresh sessions the runs are spread over (default 6, at most `runs`). Each onnxruntime session
   * has a speed of its own for its lifetime (two sessions of one model differed by up to 1.6×,
   * bench/PROFILE.md), so timings from one pair of sessions would make a session's luck look
   * like a difference between models; the model order also rotates from one set to the next.
   * The sets are the independent repeats: the range of six set medians is a 97% interval
   * (sign test), which three cannot give (a model timed against its own copy: 3 of 18 intervals
   * excluded 1 with three sets, 0 of 18 with six).
   */
  sessionSets?: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/**
 * p50/p95 inference latency per batch and per sample, on random inputs of the models' shape.
 * Several models are timed alternately, run by run, so machine noise hits them alike, over
 * several fresh sets of sessions (`sessionSets`), so one session's own speed is not taken for
 * the model's. With two or more models the sessions do not spin (unless `session.spinning` says
 * so), which adds thread wake-up time to each run: absolute times at small batches read higher
 * than a lone spinning session's (bench CNN, batch 1: 0.22 vs 0.17 ms), and the ratios between
 * the models are fair. A model timed alone keeps onnxruntime's default, as it would be deployed.
 */
export async function measureLatency(
  models: readonly Graph[],
  shape: readonly number[],
  opts: LatencyOptions = {},
): Promise<LatencySummary[][]> {
  const rng = new Rng(0);
  const out: LatencySummary[][] = models.map(() => []);
  const batchSizes = opts.batchSizes ?? [1, 32];
  const runs = opts.runs ?? 30;
  const sets = Math.max(1, Math.min(opts.sessionSets ?? 6, runs));
  // Without spinning when sessions alternate run by run: one session's spinning threads kept the
  // cores from the next (2× the time at batch 64, ratios biased by model position).
  const session = {
    ...opts.session,
    spinning: opts.session?.spinning ?? (models.length > 1 ? false : undefined),
  };
  const phase = `timing inference (batch ${batchSizes.join(', ')})`;
  const total = batchSizes.length * runs;
  let done = 0;
  const tick = () => opts.onPhase?.({ phase, done, total, unit: 'runs', finished: done >= total });
  tick();
  const times: number[][][] = batchSizes.map(() => models.map(() => []));
  const setSizes: number[] = [];
  const data = batchSizes.map((bs) =>
    rng.uniformArray(bs * shape.reduce((p, d) => p * d, 1), 0, 1),
  );
  for (let set = 0; set < sets; set++) {
    const sessions = await Promise.all(models.map((m) => Session.create(m, session)));
    // Runs of this set; the model order rotates from set to set.
    const n = Math.floor(runs / sets) + (set < runs % sets ? 1 : 0);
    setSizes.push(n);
    const order = models.map((_, k) => (k + set) % models.length);
    try {
      for (let b = 0; b < batchSizes.length; b++) {
        const bs = batchSizes[b]!;
        const feeds = models.map((m) => ({
          [m.inputs[0]!.name]: { dtype: 'float32' as const, dims: [bs, ...shape], data: data[b]! },
        }));
        for (let i = 0; i < 3; i++) for (const k of order) await sessions[k]!.run(feeds[k]!);
        for (let i = 0; i < n; i++) {
          for (const k of order) {
            const t0 = performance.now();
            await sessions[k]!.run(feeds[k]!);
            times[b]![k]!.push(performance.now() - t0);
          }
          done++;
          tick();
        }
      }
    } finally {
      for (const s of sessions) await s.release();
    }
  }
  batchSizes.forEach((bs, b) => {
    times[b]!.forEach((t, k) => {
      const sorted = [...t].sort((x, y) => x - y);
      const p50 = percentile(sorted, 0.5);
      out[k]!.push({
        batchSize: bs,
        p50Ms: p50,
        p95Ms: percentile(sorted, 0.95),
        perSampleMs: p50 / bs,
        timesMs: t,
        setSizes: [...setSizes],
      });
    });
  });
  return out;
}

/** Accuracy, loss, per-class accuracy and confusion matrix of a classifier on a dataset. */
export async function classificationMetrics(
  model: Graph,
  ds: Dataset,
  session?: SessionOptions,
  onBatch?: (examplesDone: number) => void,
) {
  const s = await Session.create(model, session);
  try {
    const r = await evaluateSession(s, model, ds, 256, undefined, onBatch);
    const k = ds.numClasses;
    const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    for (let i = 0; i < ds.n; i++) confusion[ds.labels[i]!]![r.predictions[i]!]!++;
    const perClassAccuracy = confusion.map((row, c) => {
      const total = row.reduce((a, b) => a + b, 0);
      return total ? row[c]! / total : 0;
    });
    return { n: ds.n, accuracy: r.accuracy, loss: r.loss, perClassAccuracy, confusion };
  } finally {
    await s.release();
  }
}

/** What a model is evaluated on: class labels, or regression targets (`Dataset.targets`). */
export type Task = 'classification' | 'regression';

/** The task of a dataset: regression when it has targets. */
export function taskOf(ds: Dataset): Task {
  return ds.targets ? 'regression' : 'classification';
}

/** Names for the one-line errors of the evaluation: the model (file or arch) and the data spec. */
export interface EvalNames {
  /** The model file or built-in architecture. */
  model: string;
  /** The data spec. */
  data: string;
}

/**
 * Checks that the model's output holds one target's worth of values per example, statically
 * when the output shape is known beyond the batch dimension.
 *
 * @throws DataError naming the model and the data spec on a mismatch
 */
export function checkTargetShape(model: Graph, ds: Dataset, names: EvalNames): void {
  if (!ds.targets || !ds.targetShape) return;
  const out = model.outputs[0]?.shape.slice(1) ?? [];
  if (!out.every((d): d is number => typeof d === 'number' && d > 0)) return;
  const size = out.reduce((p, d) => p * d, 1);
  if (size !== targetSize(ds)) throw shapeError(`[${out.join(',')}]`, ds, names);
}

/**
 * Checks that a model trained or evaluated on class labels outputs class scores: a model whose
 * output is an image (more than one dim beyond the batch, e.g. a super-resolution network) is
 * refused with the data specs that fit it.
 *
 * @throws DataError naming the model and the data spec
 */
export function checkClassifierOutput(model: Graph, ds: Dataset, names: EvalNames): void {
  if (ds.targets) return;
  const out = model.outputs[0]?.shape.slice(1) ?? [];
  if (out.filter((d) => d !== 1).length <= 1) return;
  throw new DataError(
    `${names.model}: the model outputs [${out.join(',')}] per example, not class scores, but '${names.data}' has class labels; for an image-to-image model give pairs:DIR (input/ and target/ images) or a shift with target=clean`,
  );
}

function shapeError(out: string, ds: Dataset, names: EvalNames): DataError {
  return new DataError(
    `${names.model}: the model outputs ${out} per example but '${names.data}' has targets of shape [${ds.targetShape!.join(',')}]; use a model whose output matches the targets (an image-to-image model for target=clean, one output for csv task=regression)`,
  );
}

/**
 * MSE, RMSE, MAE (and PSNR for image targets) of a model's outputs against the data's targets.
 *
 * @throws DataError naming the model and the data when the output and target sizes differ
 */
export async function evaluateRegression(
  model: Graph,
  ds: Dataset,
  names: EvalNames,
  session?: SessionOptions,
  onBatch?: (examplesDone: number) => void,
): Promise<RegressionMetrics> {
  checkTargetShape(model, ds, names);
  const s = await Session.create(model, session);
  try {
    return await evaluateRegressionSession(s, model, ds, 256, undefined, onBatch);
  } catch (err) {
    // An output shape only known at run time: its size shows up as a length mismatch.
    if (err instanceof Error && /outputs and .* targets for/.test(err.message)) {
      throw shapeError('another number of values', ds, names);
    }
    throw err;
  } finally {
    await s.release();
  }
}

/** The task-dependent part of an `EvalSummary`. */
export type TaskMetrics = Pick<
  EvalSummary,
  'n' | 'accuracy' | 'loss' | 'perClassAccuracy' | 'confusion' | 'regression'
>;

/** Each task's metrics; regression reports MSE as its loss and no accuracy (NaN). */
const TASK_METRICS: Record<
  Task,
  (
    model: Graph,
    ds: Dataset,
    names: EvalNames,
    session?: SessionOptions,
    onBatch?: (examplesDone: number) => void,
  ) => Promise<TaskMetrics>
> = {
  classification: (model, ds, names, session, onBatch) => {
    // Scores for other classes than the data's would be counted against the wrong labels.
    const units = detectOutputEnding(model).units;
    if (units !== undefined && (units === 1 ? 2 : units) !== ds.numClasses)
      throw new DataError(
        `${names.model}: the model outputs ${units} classes but '${names.data}' has ${ds.numClasses}; evaluate a model trained for these classes (adapt/train --num-classes ${ds.numClasses})`,
      );
    return classificationMetrics(model, ds, session, onBatch);
  },
  regression: async (model, ds, names, session, onBatch) => {
    const { n, ...regression } = await evaluateRegression(model, ds, names, session, onBatch);
    return {
      n,
      // Masks: pixel accuracy and the mean per-pixel (binary) cross-entropy.
      accuracy: regression.pixelAccuracy ?? NaN,
      loss: regression.loss ?? regression.mse,
      perClassAccuracy: [],
      confusion: [],
      regression,
    };
  },
};

/**
 * The metrics of the data's task: classification metrics for labels, regression for targets.
 * `progress` reports the examples evaluated as the phase it names.
 */
export function taskMetrics(
  model: Graph,
  ds: Dataset,
  names: EvalNames,
  session?: SessionOptions,
  progress?: { onPhase?: OnPhase; phase: string },
): Promise<TaskMetrics> {
  const onBatch = exampleCounter(progress?.onPhase, progress?.phase ?? '', ds.n);
  return TASK_METRICS[taskOf(ds)](model, ds, names, session, onBatch);
}

/**
 * The full evaluation summary of a model (and optionally its base model) on a test set:
 * classification metrics, or regression metrics when the data has targets (`names` then goes into
 * shape errors; default: the model's graph name and the dataset's name).
 */
export async function evaluateModel(
  model: Graph,
  test: Dataset,
  opts: {
    base?: Graph;
    latency?: LatencyOptions;
    session?: SessionOptions;
    names?: EvalNames;
    /** Reports the phases: the model's evaluation, the latency runs, the base's evaluation. */
    onPhase?: OnPhase;
  } = {},
): Promise<EvalSummary> {
  const names = opts.names ?? { model: model.name, data: test.name };
  const { onPhase } = opts;
  const m = await taskMetrics(model, test, names, opts.session, {
    onPhase,
    phase: 'evaluating the trained model on the test split',
  });
  const models = opts.base ? [model, opts.base] : [model];
  const [latency, baseLatency] = await measureLatency(models, test.shape, {
    session: opts.session,
    ...opts.latency,
    onPhase,
  });
  const summary: EvalSummary = { ...m, latency: latency! };
  if (opts.base) {
    const b = await taskMetrics(opts.base, test, names, opts.session, {
      onPhase,
      phase: 'evaluating the original model on the test split',
    });
    summary.base = { accuracy: b.accuracy, loss: b.loss, latency: baseLatency! };
    if (b.regression) summary.base.regression = b.regression;
  }
  return summary;
}

/**
 * The 95% Wilson score interval of an accuracy measured on `n` examples: how far a small test
 * or validation split leaves the true accuracy open (3 of 3 right is 44%–100%).
 */
export function accuracyInterval(accuracy: number, n: number): [number, number] {
  if (n <= 0) return [0, 1];
  const z = 1.96;
  const z2n = (z * z) / n;
  const center = (accuracy + z2n / 2) / (1 + z2n);
  const half = (z * Math.sqrt((accuracy * (1 - accuracy)) / n + z2n / (4 * n))) / (1 + z2n);
  return [Math.max(0, center - half), Math.min(1, center + half)];
}

/** Splits this small give accuracies too coarse to compare methods by (a warning says so). */
export const SMALL_SPLIT = { validation: 50, test: 200 };
