/**
 * A run's data: loading the splits for a model's input (sizes, channels-last models, masks and
 * targets checked against the model), the loss each task trains with, and small-split warnings.
 */

import { UserError } from '../util/errors.js';
import type { Dataset } from '../data/dataset.js';
import { split as splitDataset } from '../data/dataset.js';
import { loadDataset } from '../data/spec.js';
import type { Dim, Graph } from '../ir/graph.js';
import { cloneGraph } from '../ir/graph.js';
import { inferShapes } from '../ir/shapes/index.js';
import type { LossOptions } from '../autodiff/losses.js';
import type { Task } from './evaluate.js';
import { SMALL_SPLIT, accuracyInterval, taskOf } from './evaluate.js';
import { withInputShape } from './model-source.js';
import type { RunOptions } from './run.js';

/** The loss each task trains with. */
const TASK_LOSS: Record<Task, LossOptions> = {
  classification: { kind: 'cross_entropy' },
  regression: { kind: 'mse' },
};

/** The loss a dataset trains with: per-pixel (binary) cross-entropy for masks, else its task's. */
export function lossFor(ds: Dataset): LossOptions {
  if (ds.masks === 'classes') return { kind: 'pixel_cross_entropy' };
  if (ds.masks === 'binary') return { kind: 'pixel_bce' };
  return TASK_LOSS[taskOf(ds)];
}

/**
 * A model with an open input size (symbolic height/width, e.g. a segmentation net) sized to the
 * data: its open dims are set from the first training example's size (NCHW data; a channels-last
 * input [H, W, C] gets [h, w, c]). Models with a fixed input are returned as they are.
 */
export async function sizeToData(
  model: Graph,
  spec: string,
  o: { seed: number; modelName: string },
): Promise<Graph> {
  const dims = model.inputs[0]?.shape.slice(1) ?? [];
  if (dims.every((d) => typeof d === 'number') || dims.length !== 3) return model;
  const channelsLast = typeof dims[2] === 'number' && typeof dims[0] !== 'number';
  const c = (channelsLast ? dims[2] : dims[0]) as number | string;
  const probe = await loadDataset(spec, {
    split: 'train',
    limit: 1,
    seed: o.seed,
    shape: typeof c === 'number' ? [c, NaN, NaN] : undefined,
  });
  const [dc, h, w] = probe.shape;
  return withInputShape(model, channelsLast ? [h, w, dc] : [dc, h, w], o.modelName);
}

/**
 * Checks mask targets against the model's output (statically, from shape inference): class
 * masks need [C, ...pixels] logits for one class index per pixel; 0/1 masks the mask's shape.
 *
 * @throws UserError naming the model, the data and what to use
 */
export function checkMasks(
  model: Graph,
  ds: Dataset,
  names: { model: string; data: string },
): void {
  if (!ds.targets || !ds.targetShape) return;
  const out = inferShapes(model)
    .values.get(model.outputs[0]?.name ?? '')
    ?.shape.slice(1);
  if (!out || !out.every((d): d is number => typeof d === 'number')) return;
  const t = ds.targetShape;
  const pixels = (s: readonly number[]) => s.slice(1).join('x');
  const where = `${names.model} outputs [${out.join(',')}] per example and '${names.data}' has targets [${t.join(',')}]`;
  if (ds.masks === 'classes') {
    if (out.length !== t.length || pixels(out) !== pixels(t))
      throw new UserError(`${where}: class masks need one logit per class at each mask pixel`);
    return;
  }
  if (ds.masks === 'binary') {
    if (out.join() !== t.join())
      throw new UserError(`${where}: a 0/1 mask needs one logit per mask value`);
    return;
  }
  if (out.length === 3 && t.length === 3 && pixels(out) === pixels(t) && out[0] !== t[0]) {
    throw new UserError(
      `${where}: the channels differ (${out[0]} vs ${t[0]}); for class masks (one class index per pixel) use loss=ce, for 0/1 masks loss=bce (e.g. ${names.data}:loss=ce), or target_channels=${out[0]} for image targets`,
    );
  }
}

/** NCHW → NHWC of `n` images of shape [c, h, w]. */
export function toChannelsLast(
  x: Float32Array,
  n: number,
  [c, h, w]: readonly number[],
): Float32Array {
  const per = c! * h! * w!;
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c!; k++) {
      for (let p = 0; p < h! * w!; p++) out[i * per + p * c! + k] = x[i * per + k * h! * w! + p]!;
    }
  }
  return out;
}

/**
 * The dataset laid out as the model takes it: data is NCHW; a channels-last model (input
 * [H, W, C], e.g. imported from TF.js) gets its images transposed to NHWC (and image targets of
 * the input's shape too, as such a model outputs images channels-last), anything else of the
 * same size is only relabelled.
 */
export function fitToModel(d: Dataset, modelShape: [number, number, number]): Dataset {
  const [c, h, w] = d.shape;
  const channelsLast = modelShape[0] === h && modelShape[1] === w && modelShape[2] === c && c > 1;
  if (!channelsLast) return { ...d, shape: [...modelShape] };
  const images = toChannelsLast(d.images, d.n, d.shape);
  const out: Dataset = { ...d, images, shape: [...modelShape] };
  if (d.targets && d.targetShape?.join() === d.shape.join()) {
    out.targets = toChannelsLast(d.targets, d.n, d.shape);
    out.targetShape = [...modelShape];
  }
  return out;
}

/** The NCHW data shape for a model input: channels-last inputs [H, W, C] (C of 1 or 3) are reordered. */
export function dataShapeFor(modelShape: [number, number, number]): [number, number, number] {
  const [a, b, c] = modelShape;
  return (c === 1 || c === 3) && a !== 1 && a !== 3 ? [c, a, b] : modelShape;
}

/** `model` with the input and output shapes of `like` (the same graph before `sizeToData`). */
export function withOpenShapes(model: Graph, like: Graph): Graph {
  const g = cloneGraph(model);
  // Only the open (symbolic) dims come back: a new head's class count stays as trained.
  const reopen = (shape: readonly Dim[], likeShape: readonly Dim[] | undefined): Dim[] =>
    shape.map((d, k) => (typeof likeShape?.[k] === 'string' ? likeShape[k]! : d));
  g.inputs = g.inputs.map((v, i) => ({ ...v, shape: reopen(v.shape, like.inputs[i]?.shape) }));
  g.outputs = g.outputs.map((v, i) => ({ ...v, shape: reopen(v.shape, like.outputs[i]?.shape) }));
  return g;
}

/** A run's data: training, validation (when a fraction is held out) and test splits. */
export interface RunData {
  train: Dataset;
  val?: Dataset;
  test: Dataset;
}

/** Training and test data for a model, checked against the model's input. */
export async function loadRunData(
  spec: string,
  modelShape: [number, number, number],
  o: { limit?: number; testLimit?: number; valFraction?: number; seed: number; modelName: string },
): Promise<RunData> {
  const all = await loadDataset(spec, {
    split: 'train',
    limit: o.limit,
    seed: o.seed,
    shape: dataShapeFor(modelShape),
  });
  const test = await loadDataset(spec, {
    split: 'test',
    limit: o.testLimit,
    seed: o.seed,
    shape: dataShapeFor(modelShape),
  });
  const fits = (d: Dataset) =>
    d.shape.reduce((p, x) => p * x, 1) === modelShape.reduce((p, x) => p * x, 1);
  if (!fits(all)) {
    throw new UserError(
      `${o.modelName}: the model takes inputs of shape [${modelShape.join(',')}] but '${spec}' gives [${all.shape.join(',')}]; use a model made for this data (or a folder: spec with size=HxW, channels=C)`,
    );
  }
  for (const [d, split] of [
    [all, 'train'],
    [test, 'test'],
  ] as const) {
    if (d.n === 0)
      throw new UserError(
        `'${spec}': the ${split} split is empty; check the data source (and --limit)`,
      );
    const bad = d.images.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      const per = d.shape.reduce((p, x) => p * x, 1);
      throw new UserError(
        `'${spec}': ${split} example ${Math.floor(bad / per)} holds ${d.images[bad]}; remove or fix NaN/Inf values before training`,
      );
    }
  }
  const reshape = (d: Dataset): Dataset => fitToModel(d, modelShape);
  const vf = o.valFraction ?? 0.1;
  if (vf <= 0) return { train: reshape(all), test: reshape(test) };
  const { train, val } = splitDataset(all, { valFraction: vf, seed: o.seed });
  return { train: reshape(train), val: reshape(val), test: reshape(test) };
}

/** Warns when the validation or test split is too small for its accuracy to say much. */
export function warnSmallSplits(data: RunData, o: RunOptions): void {
  for (const [d, what, min, flag] of [
    [data.val, 'validation', SMALL_SPLIT.validation, '--val-fraction or --limit'],
    [data.test, 'test', SMALL_SPLIT.test, '--test-limit'],
  ] as const) {
    if (!d || d.n >= min) continue;
    const [lo, hi] = accuracyInterval(1, d.n);
    o.onWarning?.(
      `the ${what} split has only ${d.n} examples: even ${d.n} of ${d.n} right leaves the accuracy anywhere in ${(lo * 100).toFixed(0)}–${(hi * 100).toFixed(0)}% (95% interval); use more data (${flag}) to compare methods`,
    );
  }
}
