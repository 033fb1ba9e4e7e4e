/**
 * Regression and image-restoration metrics: MSE, RMSE, MAE and, for image targets, PSNR. Pure
 * accumulation in float64 over model outputs and targets, plus one pass of a session over a
 * dataset with targets (the regression counterpart of `evaluateSession`).
 */

import type { Dataset } from '../data/dataset.js';
import { batches, hasImageTargets, targetSize } from '../data/dataset.js';
import type { Graph } from '../ir/graph.js';
import type { HostTensor, Session } from './session.js';

/** The peak signal value of PSNR: loaders scale pixels to [0, 1]. */
export const PSNR_PEAK = 1;

/**
 * The cap, in dB, on each image's PSNR in the mean over images: an image reproduced exactly has an
 * infinite PSNR, which would make the mean infinite however bad the other images are.
 */
export const PSNR_CAP_DB = 100;

/** Metrics of model outputs against regression targets. */
export interface RegressionMetrics {
  /** Number of examples. */
  n: number;
  /** Mean squared error over all target values (every value of every example). */
  mse: number;
  /** `sqrt(mse)`. */
  rmse: number;
  /** Mean absolute error over all target values. */
  mae: number;
  /**
   * Image targets only: PSNR in dB (peak 1) of the global `mse`, `10 log10(1 / mse)`; `Infinity`
   * when the outputs equal the targets exactly (`null` in JSON).
   */
  psnr?: number;
  /**
   * Image targets only: the mean over images of each image's PSNR in dB (peak 1, from that image's
   * MSE), each capped at `PSNR_CAP_DB`: the usual figure of restoration papers. It is at least
   * `psnr` when no image is capped (PSNR is convex in the MSE).
   */
  meanPsnr?: number;
  /**
   * Mask targets only (`Dataset.masks`): the fraction of pixels whose predicted class (argmax of
   * the C logits; for 0/1 masks, logit > 0) equals the mask's.
   */
  pixelAccuracy?: number;
  /** Mask targets only: the mean over classes (0/1 for binary masks) of intersection over union. */
  meanIou?: number;
  /** Mask targets only: the mean per-pixel cross-entropy (class masks) or binary cross-entropy. */
  loss?: number;
}

/** PSNR in dB of a mean squared error with peak value `peak`; `Infinity` for an MSE of 0. */
export function psnr(mse: number, peak = PSNR_PEAK): number {
  return mse === 0 ? Infinity : 10 * Math.log10((peak * peak) / mse);
}

/** Accumulates regression metrics batch by batch (float64 sums). */
export class RegressionAccumulator {
  private sumSq = 0;
  private sumAbs = 0;
  private sumPsnr = 0;
  private examples = 0;

  /**
   * @param perExample target values per example
   * @param images whether each example's target is an image (PSNR is then reported)
   */
  constructor(
    private readonly perExample: number,
    private readonly images: boolean,
  ) {}

  /**
   * Adds `count` examples: `pred` and `target` hold `count * perExample` values each.
   *
   * @throws Error when the lengths disagree
   */
  add(pred: ArrayLike<number>, target: ArrayLike<number>, count: number): void {
    const per = this.perExample;
    if (pred.length !== count * per || target.length !== count * per) {
      throw new Error(
        `${pred.length} outputs and ${target.length} targets for ${count} examples of ${per} values`,
      );
    }
    for (let i = 0; i < count; i++) {
      let sq = 0;
      let abs = 0;
      for (let j = i * per; j < (i + 1) * per; j++) {
        const d = pred[j]! - target[j]!;
        sq += d * d;
        abs += Math.abs(d);
      }
      this.sumSq += sq;
      this.sumAbs += abs;
      if (this.images) this.sumPsnr += Math.min(psnr(sq / per), PSNR_CAP_DB);
    }
    this.examples += count;
  }

  /** The metrics of everything added so far (NaN errors when nothing was added). */
  result(): RegressionMetrics {
    const values = this.examples * this.perExample;
    const mse = values > 0 ? this.sumSq / values : NaN;
    const out: RegressionMetrics = {
      n: this.examples,
      mse,
      rmse: Math.sqrt(mse),
      mae: values > 0 ? this.sumAbs / values : NaN,
    };
    if (this.images) {
      out.psnr = psnr(mse);
      out.meanPsnr = this.examples > 0 ? this.sumPsnr / this.examples : NaN;
    }
    return out;
  }
}

/**
 * Accumulates the metrics of per-pixel mask predictions: logits `[C, ...pixels]` per example
 * against one class index per pixel (`classes`), or logits against 0/1 values of the same
 * shape (`binary`). `mse`/`rmse`/`mae` are those of the predicted probabilities (softmax,
 * sigmoid) against the one-hot mask (the Brier score), so lower is better as for images.
 */
export class MaskAccumulator {
  private sumSq = 0;
  private sumAbs = 0;
  private sumLoss = 0;
  private correct = 0;
  private pixels = 0;
  private values = 0;
  private examples = 0;
  private readonly inter: Float64Array;
  private readonly union: Float64Array;

  /**
   * @param kind class masks or 0/1 masks
   * @param outPerExample logits per example (C · pixels)
   * @param targetPerExample mask values per example (pixels; C · pixels for binary masks)
   */
  constructor(
    private readonly kind: 'classes' | 'binary',
    private readonly outPerExample: number,
    private readonly targetPerExample: number,
  ) {
    const classes = kind === 'classes' ? outPerExample / targetPerExample : 2;
    this.inter = new Float64Array(classes);
    this.union = new Float64Array(classes);
  }

  /** Adds `count` examples. @throws Error when the lengths disagree */
  add(pred: ArrayLike<number>, target: ArrayLike<number>, count: number): void {
    const [po, pt] = [this.outPerExample, this.targetPerExample];
    if (pred.length !== count * po || target.length !== count * pt) {
      throw new Error(
        `${pred.length} outputs and ${target.length} targets for ${count} examples of ${po} logits and ${pt} mask values`,
      );
    }
    if (this.kind === 'binary') {
      for (let j = 0; j < pred.length; j++) {
        const z = pred[j]!;
        const t = target[j]! >= 0.5 ? 1 : 0;
        const p = 1 / (1 + Math.exp(-z));
        this.sumLoss += Math.max(z, 0) - z * t + Math.log1p(Math.exp(-Math.abs(z)));
        this.sumSq += (p - t) ** 2;
        this.sumAbs += Math.abs(p - t);
        const y = z > 0 ? 1 : 0;
        if (y === t) this.correct++;
        this.count(y, t);
      }
      this.pixels += pred.length;
      this.values += pred.length;
    } else {
      const classes = po / pt;
      for (let i = 0; i < count; i++) {
        for (let q = 0; q < pt; q++) {
          const at = (c: number) => pred[i * po + c * pt + q]!;
          const t = Math.round(target[i * pt + q]!);
          let max = -Infinity;
          let arg = 0;
          for (let c = 0; c < classes; c++) if (at(c) > max) [max, arg] = [at(c), c];
          let z = 0;
          for (let c = 0; c < classes; c++) z += Math.exp(at(c) - max);
          this.sumLoss += Math.log(z) + max - (t >= 0 && t < classes ? at(t) : -Infinity);
          for (let c = 0; c < classes; c++) {
            const d = Math.exp(at(c) - max) / z - (c === t ? 1 : 0);
            this.sumSq += d * d;
            this.sumAbs += Math.abs(d);
          }
          if (arg === t) this.correct++;
          this.count(arg, t);
        }
      }
      this.pixels += count * pt;
      this.values += count * po;
    }
    this.examples += count;
  }

  private count(pred: number, truth: number): void {
    if (pred === truth) {
      this.inter[pred]!++;
      this.union[pred]!++;
    } else {
      if (pred < this.union.length) this.union[pred]!++;
      if (truth >= 0 && truth < this.union.length) this.union[truth]!++;
    }
  }

  /** The metrics so far; classes absent from both masks and predictions do not enter the mean IoU. */
  result(): RegressionMetrics {
    const mse = this.values > 0 ? this.sumSq / this.values : NaN;
    const ious: number[] = [];
    for (let c = 0; c < this.union.length; c++)
      if (this.union[c]! > 0) ious.push(this.inter[c]! / this.union[c]!);
    return {
      n: this.examples,
      mse,
      rmse: Math.sqrt(mse),
      mae: this.values > 0 ? this.sumAbs / this.values : NaN,
      pixelAccuracy: this.pixels > 0 ? this.correct / this.pixels : NaN,
      meanIou: ious.length > 0 ? ious.reduce((a, b) => a + b, 0) / ious.length : NaN,
      loss: this.pixels > 0 ? this.sumLoss / this.pixels : NaN,
    };
  }
}

/**
 * The metrics of `pred` against `target`, both `n * prod(targetShape)` values; PSNR is included
 * when `targetShape` is an image `[c, h, w]`.
 */
export function regressionMetrics(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  targetShape: readonly number[],
): RegressionMetrics {
  const per = targetShape.reduce((p, d) => p * d, 1);
  const acc = new RegressionAccumulator(per, targetShape.length === 3);
  acc.add(pred, target, per > 0 ? target.length / per : 0);
  return acc.result();
}

/**
 * Runs a model over a dataset with targets and measures MSE, RMSE, MAE (and PSNR for image
 * targets) of its first output.
 *
 * @throws Error when the dataset has no targets or the output size per example differs from the
 *   target size (callers check shapes first to give the user a better message)
 */
export async function evaluateRegressionSession(
  session: Session,
  model: Graph,
  ds: Dataset,
  batchSize: number,
  addFeeds: (feeds: Record<string, HostTensor>) => void = () => {},
  onBatch?: (examplesDone: number) => void,
): Promise<RegressionMetrics> {
  if (!ds.targets) throw new Error(`${ds.name}: no regression targets to evaluate against`);
  const input = model.inputs[0]!.name;
  const output = model.outputs[0]!.name;
  let acc: RegressionAccumulator | MaskAccumulator | undefined = ds.masks
    ? undefined
    : new RegressionAccumulator(targetSize(ds), hasImageTargets(ds));
  let done = 0;
  for (const batch of batches(ds, { batchSize })) {
    const feeds: Record<string, HostTensor> = {
      [input]: { dtype: 'float32', dims: [batch.size, ...ds.shape], data: batch.x },
    };
    addFeeds(feeds);
    const res = await session.run(feeds, [output]);
    const out = res[output]!.data as Float32Array;
    // Masks: the logits per example are known once the model has run (C classes per pixel).
    acc ??= new MaskAccumulator(ds.masks!, out.length / batch.size, targetSize(ds));
    acc.add(out, batch.target!, batch.size);
    done += batch.size;
    onBatch?.(done);
  }
  return (acc ?? new RegressionAccumulator(targetSize(ds), false)).result();
}
