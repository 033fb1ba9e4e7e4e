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
  const acc = new RegressionAccumulator(targetSize(ds), hasImageTargets(ds));
  let done = 0;
  for (const batch of batches(ds, { batchSize })) {
    const feeds: Record<string, HostTensor> = {
      [input]: { dtype: 'float32', dims: [batch.size, ...ds.shape], data: batch.x },
    };
    addFeeds(feeds);
    const res = await session.run(feeds, [output]);
    acc.add(res[output]!.data as Float32Array, batch.target!, batch.size);
    done += batch.size;
    onBatch?.(done);
  }
  return acc.result();
}
