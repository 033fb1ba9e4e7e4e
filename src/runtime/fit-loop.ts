/**
 * The one training loop: `fit` (Node: run directories, checkpoints, resume), the experiments'
 * finely validated runs and the browser's `adapt` all drive a Trainer through `fitLoop`, so
 * they cannot drift apart in data order, accounting, validation or divergence handling. No Node
 * built-ins here (the browser bundle uses it): storage and the CPU clock come in as options.
 */

import { takesClassLabels } from '../autodiff/losses.js';
import type { Dataset } from '../data/dataset.js';
import { batches, numBatches } from '../data/dataset.js';
import type { HistoryRecord } from '../io/formats/run-format.js';
import type { StepResult, Trainer } from './trainer.js';

/** Progress of a run, reported after every step and at every validation point. */
export interface FitProgress {
  /** `step` after every train step, `epoch` at every validation point (with its record). */
  kind: 'step' | 'epoch';
  /** Steps taken so far. */
  step: number;
  /** Steps the run will take in total. */
  totalSteps: number;
  /** Current epoch (0-based). */
  epoch: number;
  /** Loss of the last step (`step` events) or the mean since the last record (`epoch` events). */
  loss: number;
  /** Running training accuracy since the last record (NaN when the loss is not cross-entropy). */
  trainAccuracy: number;
  /** Training samples per wall-clock second so far. */
  samplesPerSecond: number;
  /** The history record just made (`epoch` events only). */
  record?: HistoryRecord;
  /** Wall-clock milliseconds of the last step (`step` events only). */
  stepMs?: number;
  /** Mean loss of the steps since the last record (`step` events only). */
  windowLoss?: number;
}

/** How a run ended and what it recorded. */
export interface FitResult {
  /** `done`, `interrupted` (the signal was aborted; a checkpoint was written) or `diverged` (a non-finite loss). */
  status: 'done' | 'interrupted' | 'diverged';
  /** One record per validation point (per epoch by default). */
  history: HistoryRecord[];
  /** A one-line explanation when the run did not finish normally. */
  message?: string;
  /** Process CPU seconds spent training (evaluation excluded; wall seconds where no CPU clock). */
  cpuSeconds: number;
  /** Wall-clock seconds spent training (evaluation excluded). */
  wallSeconds: number;
}

/**
 * The loop's own state, saved in checkpoints (meta key `progress`) so a resumed run continues
 * its accounting and the window in progress.
 */
export interface FitState {
  /** Whole epochs completed at the last record. */
  epoch: number;
  /** Sums over the steps since the last record (the window its record will average). */
  epochLoss?: number;
  epochCorrect?: number;
  epochSeen?: number;
  /** Records so far. */
  history: HistoryRecord[];
  cpuSeconds: number;
  wallSeconds: number;
  samples: number;
}

/** Where a run's checkpoints and history go (a run directory in Node; nowhere in the browser). */
export interface FitStore {
  /** Restores the trainer from the latest checkpoint and returns its loop state, if there is one. */
  resume(trainer: Trainer): Promise<FitState | undefined>;
  /** Commits a checkpoint of the trainer and the loop state (`best`: also tagged best). */
  checkpoint(trainer: Trainer, state: FitState, best?: boolean): Promise<void>;
  /** Writes the history so far. */
  writeHistory(history: readonly HistoryRecord[]): Promise<void>;
}

/** Options of {@link fitLoop}. */
export interface FitLoopOptions {
  /** Training examples. */
  train: Dataset;
  /** Evaluated at every validation point (accuracy and loss; MSE and PSNR when it has targets). */
  val?: Dataset;
  /** Passes over `train`. */
  epochs: number;
  /** Seed of epoch e's data order (a function of e alone, so a resumed run sees the same batches). */
  orderSeed: (epoch: number) => number;
  /** Stop after this many steps in total (for tests and budgets). */
  maxSteps?: number;
  /**
   * Validate when this many steps have passed since the last validation point (default: at every
   * epoch end instead).
   */
  evalEvery?: number;
  /** Also validate at epoch ends when `evalEvery` is set (default: only without `evalEvery`). */
  evalAtEpochEnds?: boolean;
  /** Also validate at these steps (e.g. the budgets a test accuracy is wanted at). */
  evalAtSteps?: readonly number[];
  /** Also checkpoint every this many steps (with a store; default: only at validation points and on interrupt). */
  checkpointEvery?: number;
  /** Checkpoints and history; none by default. */
  store?: FitStore;
  /** Process CPU seconds now (default: wall seconds, for hosts without a CPU clock). */
  cpuClock?: () => number;
  /** Stop after the current step when this is aborted (Ctrl-C); a checkpoint is written. */
  signal?: AbortSignal;
  /** Called after every step and at every validation point; may return a promise (a repaint). */
  onProgress?: (p: FitProgress) => void | Promise<void>;
  /** Called after each record is stored (e.g. to test the model at a budget). */
  onRecord?: (record: HistoryRecord, history: readonly HistoryRecord[]) => void | Promise<void>;
  /** Checked after each record: training stops there when it returns true. */
  stop?: (history: readonly HistoryRecord[], step: number) => boolean;
}

/** How good a record's validation is, higher is better: accuracy, or -MSE for regression. */
export function valScore(r: HistoryRecord): number {
  return r.valAccuracy ?? (r.valMse !== undefined ? -r.valMse : -Infinity);
}

const wallClock = () => performance.now() / 1000;

/**
 * Trains with validation points, history and checkpoints. Resumable: the data order is a
 * function of the epoch and the checkpoint holds parameters, optimizer state, step and the loop
 * state, so a resumed run ends with the same parameters as an uninterrupted one. A step whose
 * loss is not finite is rolled back (the Trainer keeps the previous parameters) and the run
 * stops as 'diverged' with advice.
 */
export async function fitLoop(trainer: Trainer, o: FitLoopOptions): Promise<FitResult> {
  const bs = trainer.opts.batchSize;
  const perEpoch = numBatches(o.train.n, bs, true);
  if (perEpoch === 0)
    throw new Error(`the training set has ${o.train.n} examples, fewer than one batch of ${bs}`);
  const totalSteps = Math.min(o.maxSteps ?? Infinity, perEpoch * o.epochs);
  const cpuNow = o.cpuClock ?? wallClock;
  const store = o.store;
  const p: FitState = (await store?.resume(trainer)) ?? {
    epoch: 0,
    history: [],
    cpuSeconds: 0,
    wallSeconds: 0,
    samples: 0,
  };
  const classify = takesClassLabels(trainer.opts.loss.kind);
  const atSteps = new Set(o.evalAtSteps ?? []);
  const atEpochEnds = o.evalAtEpochEnds ?? o.evalEvery === undefined;
  let lastRecord = p.history.at(-1)?.step ?? 0;
  // The next record averages the steps after the last one (older checkpoints taken at a record
  // still hold that record's sums).
  const newWindow = () => {
    p.epochLoss = 0;
    p.epochCorrect = 0;
    p.epochSeen = 0;
  };
  if (lastRecord === trainer.step) newWindow();
  const isRecordPoint = (step: number) =>
    step >= totalSteps ||
    atSteps.has(step) ||
    (atEpochEnds && step % perEpoch === 0) ||
    (o.evalEvery !== undefined && step - lastRecord >= o.evalEvery);
  let bestVal = -Infinity;
  for (const r of p.history) bestVal = Math.max(bestVal, valScore(r));

  const record = async (epoch: number): Promise<boolean> => {
    const lossSum = p.epochLoss ?? 0;
    const correct = p.epochCorrect ?? 0;
    const seen = p.epochSeen ?? 0;
    const rec: HistoryRecord = {
      step: trainer.step,
      epoch: trainer.step / perEpoch,
      loss: seen ? lossSum / seen : NaN,
      trainAccuracy: seen && classify ? correct / seen : undefined,
      wallSeconds: p.wallSeconds,
      cpuSeconds: p.cpuSeconds,
      samples: p.samples,
      samplesPerSecond: p.samples / Math.max(p.wallSeconds, 1e-9),
      lr: trainer.currentLr(),
    };
    if (o.val?.targets) {
      const ev = await trainer.evaluateTargets(o.val);
      // Masks: the mean per-pixel (binary) cross-entropy, as trained.
      rec.valLoss = ev.loss ?? (trainer.opts.loss.kind === 'l1' ? ev.mae : ev.mse);
      rec.valMse = ev.mse;
      if (ev.psnr !== undefined) rec.valPsnr = ev.psnr;
    } else if (o.val) {
      const ev = await trainer.evaluate(o.val);
      rec.valAccuracy = ev.accuracy;
      rec.valLoss = ev.loss;
    }
    p.history.push(rec);
    p.epoch = Math.floor(trainer.step / perEpoch);
    lastRecord = trainer.step;
    newWindow();
    await store?.writeHistory(p.history);
    await store?.checkpoint(trainer, p);
    if (o.val && valScore(rec) > bestVal) {
      bestVal = valScore(rec);
      await store?.checkpoint(trainer, p, true);
    }
    await o.onRecord?.(rec, p.history);
    await o.onProgress?.({
      kind: 'epoch',
      step: trainer.step,
      totalSteps,
      epoch,
      loss: rec.loss,
      trainAccuracy: rec.trainAccuracy ?? (classify ? 0 : NaN),
      samplesPerSecond: rec.samplesPerSecond,
      record: rec,
    });
    return o.stop?.(p.history, trainer.step) ?? false;
  };

  let status: FitResult['status'] = 'done';
  let message: string | undefined;
  outer: while (trainer.step < totalSteps) {
    const epoch = Math.floor(trainer.step / perEpoch);
    const skip = trainer.step - epoch * perEpoch;
    let k = 0;
    for (const batch of batches(o.train, {
      batchSize: bs,
      shuffle: true,
      seed: o.orderSeed(epoch),
      dropLast: true,
    })) {
      if (k++ < skip) continue;
      if (o.signal?.aborted) {
        status = 'interrupted';
        message = `interrupted at step ${trainer.step}; continue with --resume`;
        break outer;
      }
      const w0 = performance.now();
      const c0 = cpuNow();
      const r: StepResult = await trainer.trainStep(batch);
      const stepMs = performance.now() - w0;
      p.wallSeconds += stepMs / 1000;
      p.cpuSeconds += cpuNow() - c0;
      if (!Number.isFinite(r.loss) || !Number.isFinite(r.gradNorm)) {
        status = 'diverged';
        message =
          `the loss became ${r.loss} at step ${trainer.step + 1}; that step was rolled back. ` +
          `Lower the learning rate (now ${r.lr.toPrecision(3)}; for adaptation try a smaller --quad-lr) or set --clip-norm`;
        break outer;
      }
      p.samples += bs;
      p.epochLoss = (p.epochLoss ?? 0) + r.loss * bs;
      p.epochCorrect = (p.epochCorrect ?? 0) + r.correct;
      p.epochSeen = (p.epochSeen ?? 0) + bs;
      await o.onProgress?.({
        kind: 'step',
        step: trainer.step,
        totalSteps,
        epoch,
        loss: r.loss,
        trainAccuracy: classify ? p.epochCorrect / p.epochSeen : NaN,
        samplesPerSecond: p.samples / Math.max(p.wallSeconds, 1e-9),
        stepMs,
        windowLoss: p.epochLoss / p.epochSeen,
      });
      if (isRecordPoint(trainer.step)) {
        if (await record(epoch)) break outer;
      } else if (o.checkpointEvery && trainer.step % o.checkpointEvery === 0) {
        await store?.checkpoint(trainer, p);
      }
      if (trainer.step >= totalSteps) break outer;
    }
  }
  if (status === 'interrupted') await store?.checkpoint(trainer, p);
  return {
    status,
    history: p.history,
    message,
    cpuSeconds: p.cpuSeconds,
    wallSeconds: p.wallSeconds,
  };
}
