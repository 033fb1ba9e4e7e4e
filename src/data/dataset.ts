/**
 * The in-memory dataset every loader produces and every trainer consumes, and the pure operations
 * on it (subsets, splits, batching, normalisation). Operations never mutate their input: they
 * return new datasets with their own arrays, so a dataset can be shared between runs safely.
 */

import { Rng } from '../util/random.js';
import { DataError } from './errors.js';

/**
 * An in-memory labelled image dataset, float32 NCHW. A regression or image-restoration dataset
 * also carries `targets` (what the model should output for each example); its labels are then all
 * 0 in one class, so classification code keeps working on it.
 */
export interface Dataset {
  /** A short human-readable name for reports (e.g. `mnist`, `mnist+rotate@0.5`). */
  name: string;
  /** All images, NCHW, `n * c * h * w` values; loaders scale pixels to [0, 1]. */
  images: Float32Array;
  /** One class index per image, each in [0, numClasses). */
  labels: Int32Array;
  /** The number of examples. */
  n: number;
  /** The shape of one image: channels, height, width. */
  shape: [c: number, h: number, w: number];
  /** The number of classes of the task (not only those present in this split). */
  numClasses: number;
  /** Optional display names, one per class. */
  classNames?: string[];
  /**
   * Regression targets, `n * targetSize` values (example-major): e.g. one float per CSV row, or
   * the clean image of a restoration task (NCHW, pixels in [0, 1]). Absent for classification.
   */
  targets?: Float32Array;
  /** The shape of one example's target: `[k]` for k values, `[c, h, w]` for an image. */
  targetShape?: number[];
  /**
   * Image targets that are per-pixel masks (`pairs:DIR:loss=ce|bce`): `classes`, one class index
   * per pixel (trained with per-pixel cross-entropy against the model's C class logits), or
   * `binary`, 0/1 per pixel and channel (binary cross-entropy on logits). Absent: plain values (MSE).
   */
  masks?: MaskKind;
}

/** How a mask target is read and trained: class indices or 0/1 values per pixel. */
export type MaskKind = 'classes' | 'binary';

/** One mini-batch: images NCHW and their labels. */
export interface Batch {
  /** `size * c * h * w` image values, NCHW. */
  x: Float32Array;
  /** `size` labels. */
  y: Int32Array;
  /** The number of examples in this batch (below the batch size only for a last partial batch). */
  size: number;
  /** Regression targets (MSE/L1 losses), shaped like the model's output; absent for classification. */
  target?: Float32Array;
}

/** The fields of a dataset to be checked by `createDataset`; `n` is derived from the labels. */
export interface DatasetFields {
  /** See `Dataset.name`. */
  name: string;
  /** See `Dataset.images`. */
  images: Float32Array;
  /** See `Dataset.labels`. */
  labels: Int32Array;
  /** See `Dataset.shape`. */
  shape: [c: number, h: number, w: number];
  /** See `Dataset.numClasses`; default: the largest label + 1. */
  numClasses?: number;
  /** See `Dataset.classNames`; must have `numClasses` entries when given. */
  classNames?: string[];
  /** See `Dataset.targets`; `n * targetSize` finite values, given together with `targetShape`. */
  targets?: Float32Array;
  /** See `Dataset.targetShape`; positive integers. */
  targetShape?: number[];
  /** See `Dataset.masks`; needs image targets. */
  masks?: MaskKind;
}

/**
 * Builds a dataset after checking that its parts agree (sizes, label range). Loaders use it so a
 * malformed source fails at load time with its name in the message, not deep inside training.
 *
 * @throws DataError when the image count, shape, labels, class names or targets disagree
 */
export function createDataset(fields: DatasetFields): Dataset {
  const { name, images, labels, shape, classNames, targets, targetShape } = fields;
  const [c, h, w] = shape;
  if (![c, h, w].every((d) => Number.isInteger(d) && d > 0)) {
    throw new DataError(`${name}: image shape [${shape.join(', ')}] must be positive integers`);
  }
  const n = labels.length;
  if (images.length !== n * c * h * w) {
    throw new DataError(
      `${name}: ${images.length} image values do not match ${n} labels of shape ` +
        `[${shape.join(', ')}]; check that the images and labels files belong together`,
    );
  }
  let maxLabel = -1;
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (y < 0) throw new DataError(`${name}: label ${y} at index ${i} is negative; fix the labels`);
    if (y > maxLabel) maxLabel = y;
  }
  const numClasses = fields.numClasses ?? Math.max(maxLabel + 1, 1);
  if (!Number.isInteger(numClasses) || numClasses < 1 || maxLabel >= numClasses) {
    throw new DataError(
      `${name}: label ${maxLabel} is outside the ${numClasses} classes; ` +
        `fix the labels or the class count`,
    );
  }
  if (classNames !== undefined && classNames.length !== numClasses) {
    throw new DataError(
      `${name}: ${classNames.length} class names for ${numClasses} classes; ` +
        `give one name per class`,
    );
  }
  const ds: Dataset = { name, images, labels, n, shape: [c, h, w], numClasses };
  if (classNames !== undefined) ds.classNames = [...classNames];
  if ((targets === undefined) !== (targetShape === undefined)) {
    throw new DataError(`${name}: targets and their shape must be given together`);
  }
  if (targets !== undefined && targetShape !== undefined) {
    if (targetShape.length === 0 || !targetShape.every((d) => Number.isInteger(d) && d > 0)) {
      throw new DataError(
        `${name}: target shape [${targetShape.join(', ')}] must be positive integers`,
      );
    }
    const per = targetShape.reduce((p, d) => p * d, 1);
    if (targets.length !== n * per) {
      throw new DataError(
        `${name}: ${targets.length} target values do not match ${n} examples of target shape ` +
          `[${targetShape.join(', ')}]; check that the inputs and targets belong together`,
      );
    }
    const bad = targets.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new DataError(
        `${name}: target ${targets[bad]} of example ${Math.floor(bad / per)} is not finite; fix the targets`,
      );
    }
    ds.targets = targets;
    ds.targetShape = [...targetShape];
    if (fields.masks !== undefined) ds.masks = fields.masks;
  }
  return ds;
}

/** The number of values in one image (`c * h * w`). */
export function imageSize(ds: Dataset): number {
  return ds.shape[0] * ds.shape[1] * ds.shape[2];
}

/** The number of target values per example (0 for a dataset without targets). */
export function targetSize(ds: Dataset): number {
  return ds.targetShape ? ds.targetShape.reduce((p, d) => p * d, 1) : 0;
}

/** True when each example's target is an image (`targetShape` `[c, h, w]`): PSNR applies. */
export function hasImageTargets(ds: Dataset): boolean {
  return ds.targets !== undefined && ds.targetShape?.length === 3;
}

/**
 * `ds` with each example's target set to its current image (copied): the start of a restoration
 * task, whose inputs are then corrupted (e.g. by a shift) while the targets stay clean.
 */
export function withImageTargets(ds: Dataset): Dataset {
  return {
    ...withArrays(ds, ds.images.slice(), ds.labels.slice(), ds.images.slice()),
    targetShape: [...ds.shape],
  };
}

/**
 * The examples at `indices`, in that order (repeats allowed), as a new dataset with copied arrays.
 *
 * @throws DataError when an index is not an integer in [0, n)
 */
export function subset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const size = imageSize(ds);
  const tsize = targetSize(ds);
  const images = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  const targets = ds.targets ? new Float32Array(indices.length * tsize) : undefined;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    if (!Number.isInteger(i) || i < 0 || i >= ds.n) {
      throw new DataError(`${ds.name}: subset index ${i} is outside [0, ${ds.n})`);
    }
    images.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = ds.labels[i]!;
    targets?.set(ds.targets!.subarray(i * tsize, (i + 1) * tsize), k * tsize);
  }
  return withArrays(ds, images, labels, targets);
}

/**
 * A copy of `ds`'s metadata with new arrays (shape, classes and target shape unchanged). The
 * targets are `targets` when given, else a copy of `ds`'s (if it has any).
 */
export function withArrays(
  ds: Dataset,
  images: Float32Array,
  labels: Int32Array,
  targets?: Float32Array,
): Dataset {
  const out: Dataset = {
    name: ds.name,
    images,
    labels,
    n: labels.length,
    shape: [...ds.shape],
    numClasses: ds.numClasses,
  };
  if (ds.classNames !== undefined) out.classNames = [...ds.classNames];
  if (ds.targets !== undefined || targets !== undefined) {
    out.targets = targets ?? ds.targets!.slice();
    out.targetShape = [...(ds.targetShape ?? ds.shape)];
    if (ds.masks !== undefined) out.masks = ds.masks;
  }
  return out;
}

/** A random permutation of 0..n-1 drawn from `seed`. */
export function permutation(n: number, seed: number): Int32Array {
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  return new Rng(seed).shuffle(idx);
}

/** Options of `split`. */
export interface SplitOptions {
  /** The fraction of examples that go to `val`, in [0, 1]; the count is rounded to nearest. */
  valFraction: number;
  /** Seed of the random assignment; the same seed always gives the same split. */
  seed: number;
}

/**
 * Splits a dataset at random into train and validation parts (not stratified). Each part keeps the
 * original order of its examples, so the split is a pure function of (dataset, fraction, seed).
 *
 * @throws DataError when `valFraction` is not in [0, 1]
 */
export function split(ds: Dataset, opts: SplitOptions): { train: Dataset; val: Dataset } {
  const { valFraction, seed } = opts;
  if (!(valFraction >= 0 && valFraction <= 1)) {
    throw new DataError(`${ds.name}: validation fraction ${valFraction} must be in [0, 1]`);
  }
  const nVal = Math.round(ds.n * valFraction);
  const perm = permutation(ds.n, seed);
  const val = perm.slice(0, nVal).sort();
  const train = perm.slice(nVal).sort();
  return { train: subset(ds, train), val: subset(ds, val) };
}

/**
 * `n` examples chosen at random without replacement, in their original order; the whole dataset
 * (copied) when `n >= ds.n`, so a `--limit` larger than the data is harmless.
 *
 * @throws DataError when `n` is not a non-negative integer
 */
export function take(ds: Dataset, n: number, seed: number): Dataset {
  if (!Number.isInteger(n) || n < 0) {
    throw new DataError(`${ds.name}: cannot take ${n} examples; give a non-negative integer`);
  }
  if (n >= ds.n) return withArrays(ds, ds.images.slice(), ds.labels.slice());
  return subset(ds, permutation(ds.n, seed).slice(0, n).sort());
}

/** Options of `batches`. */
export interface BatchOptions {
  /** Examples per batch, a positive integer. */
  batchSize: number;
  /** Visit examples in a random order drawn from `seed` (default false: dataset order). */
  shuffle?: boolean;
  /**
   * Seed of the shuffle (default 0). One seed gives one order; pass a different seed per epoch
   * (e.g. `baseSeed + epoch`) for a fresh order each epoch.
   */
  seed?: number;
  /** Yield only full batches, dropping the last `n % batchSize` examples (default false). */
  dropLast?: boolean;
}

/** The number of batches `batches(ds, opts)` yields. */
export function numBatches(n: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/**
 * Mini-batches over a dataset. Each yielded batch owns **fresh** `x` and `y` arrays (never reused),
 * and a fresh `target` when the dataset has targets,
 * so a consumer may keep them or hand them to an asynchronous runtime without copying; the cost is
 * one allocation per batch, negligible next to a training step. `x` has `size * c * h * w` values:
 * `batchSize` examples except for a last partial batch when `dropLast` is false.
 *
 * @throws DataError when `batchSize` is not a positive integer
 */
export function* batches(ds: Dataset, opts: BatchOptions): Generator<Batch, void, undefined> {
  const { batchSize, shuffle = false, seed = 0, dropLast = false } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new DataError(`${ds.name}: batch size ${batchSize} must be a positive integer`);
  }
  const order = shuffle ? permutation(ds.n, seed) : null;
  const size = imageSize(ds);
  const tsize = targetSize(ds);
  const count = numBatches(ds.n, batchSize, dropLast);
  for (let b = 0; b < count; b++) {
    const start = b * batchSize;
    const m = Math.min(batchSize, ds.n - start);
    const x = new Float32Array(m * size);
    const y = new Int32Array(m);
    const target = ds.targets ? new Float32Array(m * tsize) : undefined;
    for (let k = 0; k < m; k++) {
      const i = order ? order[start + k]! : start + k;
      x.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
      y[k] = ds.labels[i]!;
      target?.set(ds.targets!.subarray(i * tsize, (i + 1) * tsize), k * tsize);
    }
    const batch: Batch = { x, y, size: m };
    if (target) batch.target = target;
    yield batch;
  }
}

/** Options of `normalize`: per-channel statistics, or one number for every channel. */
export interface NormalizeOptions {
  /** Subtracted from each channel. */
  mean: number | readonly number[];
  /** Each channel is divided by it; every value must be > 0. */
  std: number | readonly number[];
}

function perChannel(ds: Dataset, v: number | readonly number[], what: string): number[] {
  const c = ds.shape[0];
  const arr = typeof v === 'number' ? new Array<number>(c).fill(v) : [...v];
  if (arr.length !== c) {
    throw new DataError(`${ds.name}: ${what} has ${arr.length} values for ${c} channels`);
  }
  return arr;
}

/**
 * `(x - mean) / std` per channel, as a new dataset (labels copied). Targets are copied unchanged,
 * also image targets: they stay in the loaders' units (pixels in [0, 1]), so MSE and PSNR (peak
 * 1) keep their meaning and a restoration model learns to output plain images from normalised
 * inputs.
 *
 * @throws DataError when the statistics do not have one value per channel or a std is not > 0
 */
export function normalize(ds: Dataset, opts: NormalizeOptions): Dataset {
  const mean = perChannel(ds, opts.mean, 'mean');
  const std = perChannel(ds, opts.std, 'std');
  if (!std.every((s) => s > 0 && Number.isFinite(s))) {
    throw new DataError(`${ds.name}: std [${std.join(', ')}] must be finite and > 0`);
  }
  const [c, h, w] = ds.shape;
  const plane = h * w;
  const out = new Float32Array(ds.images.length);
  for (let i = 0; i < ds.n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const off = (i * c + ch) * plane;
      const m = mean[ch]!;
      const inv = 1 / std[ch]!;
      for (let p = off; p < off + plane; p++) out[p] = (ds.images[p]! - m) * inv;
    }
  }
  return withArrays(ds, out, ds.labels.slice());
}

/**
 * Per-channel mean and (population) standard deviation over the whole dataset, accumulated in
 * float64, to feed `normalize` from training data.
 */
export function channelStats(ds: Dataset): { mean: number[]; std: number[] } {
  const [c, h, w] = ds.shape;
  const plane = h * w;
  const sum = new Float64Array(c);
  const sumSq = new Float64Array(c);
  for (let i = 0; i < ds.n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const off = (i * c + ch) * plane;
      let s = 0;
      let s2 = 0;
      for (let p = off; p < off + plane; p++) {
        const v = ds.images[p]!;
        s += v;
        s2 += v * v;
      }
      sum[ch]! += s;
      sumSq[ch]! += s2;
    }
  }
  const count = ds.n * plane;
  const mean = Array.from(sum, (s) => (count > 0 ? s / count : 0));
  const std = Array.from(sumSq, (s2, ch) =>
    count > 0 ? Math.sqrt(Math.max(s2 / count - mean[ch]! ** 2, 0)) : 0,
  );
  return { mean, std };
}
