import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { batches, numBatches } from '../data/dataset.js';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.js';
import { loadLatestCheckpoint, recoverCheckpoints, saveCheckpoint } from '../io/checkpoint.js';
import type { HistoryRecord } from '../report/run-format.js';
import { takesClassLabels } from '../autodiff/losses.js';
import type { StepResult, Trainer } from './trainer.js';

/** How a training run proceeds; the Trainer holds the model, optimizer and groups. */
export interface FitOptions {
  /** Training examples. */
  train: Dataset;
  /** Evaluated after every epoch (accuracy and loss; MSE and PSNR when it has targets). */
  val?: Dataset;
  /** Passes over `train`. */
  epochs: number;
  /** Seed of the data order (epoch e shuffles with seed + e, so a resumed run sees the same batches). */
  seed: number;
  /** Run directory: history.jsonl and checkpoints/ are written here. */
  runDir?: string;
  /** Continue from the run directory's latest checkpoint. */
  resume?: boolean;
  /** Also checkpoint every this many steps (default: only at epoch ends and on interrupt). */
  checkpointEvery?: number;
  /** Stop after the current step when this is aborted (Ctrl-C); a checkpoint is written. */
  signal?: AbortSignal;
  /** Called after every step and every epoch, e.g. for a progress bar. */
  onProgress?: (p: FitProgress) => void;
  /** Stop after this many steps in total (for tests and budgets). */
  maxSteps?: number;
}

/** Progress of a run, reported after every step. */
export interface FitProgress {
  /** `step` after every train step, `epoch` after every epoch (with its record). */
  kind: 'step' | 'epoch';
  /** Steps taken so far. */
  step: number;
  /** Steps the run will take in total. */
  totalSteps: number;
  /** Current epoch (0-based). */
  epoch: number;
  /** Loss of the last step (`step` events) or the epoch's mean loss (`epoch` events). */
  loss: number;
  /** Running training accuracy of the current epoch (NaN when the loss is not cross-entropy). */
  trainAccuracy: number;
  /** Training samples per wall-clock second so far. */
  samplesPerSecond: number;
  /** The history record of the epoch just finished (`epoch` events only). */
  record?: HistoryRecord;
}

/** How a run ended and what it recorded. */
export interface FitResult {
  /** `done`, `interrupted` (the signal was aborted; a checkpoint was written) or `diverged` (a non-finite loss). */
  status: 'done' | 'interrupted' | 'diverged';
  /** One record per epoch. */
  history: HistoryRecord[];
  /** A one-line explanation when the run did not finish normally. */
  message?: string;
  /** Process CPU seconds spent training (evaluation excluded). */
  cpuSeconds: number;
  /** Wall-clock seconds spent training (evaluation excluded). */
  wallSeconds: number;
}

interface Progress {
  epoch: number;
  /** Sums over the steps of the epoch in progress, so a resumed epoch reports all of it. */
  epochLoss?: number;
  epochCorrect?: number;
  epochSeen?: number;
  history: HistoryRecord[];
  cpuSeconds: number;
  wallSeconds: number;
  samples: number;
}

function cpuSecondsNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Trains for `epochs` with per-epoch evaluation, history and checkpoints. Resumable: the data
 * order is a function of (seed, epoch) and the checkpoint holds parameters, optimizer state, step
 * and the history, so a resumed run ends with the same parameters as an uninterrupted one.
 * A step whose loss is not finite is rolled back (the Trainer keeps the previous parameters) and
 * the run stops as 'diverged' with advice.
 */
export async function fit(trainer: Trainer, opts: FitOptions): Promise<FitResult> {
  const bs = trainer.opts.batchSize;
  const perEpoch = numBatches(opts.train.n, bs, true);
  if (perEpoch === 0)
    throw new Error(`the training set has ${opts.train.n} examples, fewer than one batch of ${bs}`);
  const totalSteps = Math.min(opts.maxSteps ?? Infinity, perEpoch * opts.epochs);
  const ckptDir = opts.runDir ? join(opts.runDir, 'checkpoints') : undefined;
  if (opts.runDir) await ensureWritableDir(opts.runDir);
  let p: Progress = { epoch: 0, history: [], cpuSeconds: 0, wallSeconds: 0, samples: 0 };
  if (opts.resume && ckptDir) {
    // A run killed while saving or pruning leaves temp and half-deleted directories; clear them.
    await recoverCheckpoints(ckptDir);
    const ck = await loadLatestCheckpoint(ckptDir);
    if (ck) {
      trainer.restore(ck);
      p = ck.meta['progress'] as unknown as Progress;
    }
  }
  const save = async (best = false): Promise<void> => {
    if (!ckptDir) return;
    const data = trainer.snapshot({ progress: p });
    await saveCheckpoint(ckptDir, data, best ? { tag: 'best' } : {});
  };
  const writeHistory = async (): Promise<void> => {
    if (!opts.runDir) return;
    await writeFileAtomic(
      join(opts.runDir, 'history.jsonl'),
      p.history.map((r) => JSON.stringify(r)).join('\n') + (p.history.length ? '\n' : ''),
    );
  };

  let status: FitResult['status'] = 'done';
  let message: string | undefined;
  const classify = takesClassLabels(trainer.opts.loss.kind);
  let bestVal = -Infinity;
  for (const r of p.history) bestVal = Math.max(bestVal, valScore(r));
  outer: while (trainer.step < totalSteps) {
    const epoch = Math.floor(trainer.step / perEpoch);
    const skip = trainer.step - epoch * perEpoch;
    if (skip === 0) {
      p.epochLoss = 0;
      p.epochCorrect = 0;
      p.epochSeen = 0;
    }
    let k = 0;
    for (const batch of batches(opts.train, {
      batchSize: bs,
      shuffle: true,
      seed: opts.seed + epoch,
      dropLast: true,
    })) {
      if (k++ < skip) continue;
      if (opts.signal?.aborted) {
        status = 'interrupted';
        message = `interrupted at step ${trainer.step}; continue with --resume`;
        break outer;
      }
      const w0 = performance.now();
      const c0 = cpuSecondsNow();
      const r: StepResult = await trainer.trainStep(batch);
      p.wallSeconds += (performance.now() - w0) / 1000;
      p.cpuSeconds += cpuSecondsNow() - c0;
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
      const correct = p.epochCorrect;
      const seen = p.epochSeen;
      opts.onProgress?.({
        kind: 'step',
        step: trainer.step,
        totalSteps,
        epoch,
        loss: r.loss,
        trainAccuracy: classify ? correct / seen : NaN,
        samplesPerSecond: p.samples / Math.max(p.wallSeconds, 1e-9),
      });
      // At an epoch end the epoch-end save follows, with the epoch's record; a periodic save
      // there would commit the step without it, and a crash in between would lose the record.
      const atEpochEnd = trainer.step % perEpoch === 0 || trainer.step >= totalSteps;
      if (opts.checkpointEvery && trainer.step % opts.checkpointEvery === 0 && !atEpochEnd) {
        await save();
      }
      if (trainer.step >= totalSteps) break;
    }
    const epochDone = trainer.step % perEpoch === 0 || trainer.step >= totalSteps;
    if (!epochDone) continue;
    const lossSum = p.epochLoss ?? 0;
    const correct = p.epochCorrect ?? 0;
    const seen = p.epochSeen ?? 0;
    const record: HistoryRecord = {
      step: trainer.step,
      epoch: epoch + 1,
      loss: seen ? lossSum / seen : NaN,
      trainAccuracy: seen && classify ? correct / seen : undefined,
      wallSeconds: p.wallSeconds,
      cpuSeconds: p.cpuSeconds,
      samples: p.samples,
      samplesPerSecond: p.samples / Math.max(p.wallSeconds, 1e-9),
      lr: trainer.currentLr(),
    };
    if (opts.val?.targets) {
      const ev = await trainer.evaluateTargets(opts.val);
      // Masks: the mean per-pixel (binary) cross-entropy, as trained.
      record.valLoss = ev.loss ?? (trainer.opts.loss.kind === 'l1' ? ev.mae : ev.mse);
      record.valMse = ev.mse;
      if (ev.psnr !== undefined) record.valPsnr = ev.psnr;
    } else if (opts.val) {
      const ev = await trainer.evaluate(opts.val);
      record.valAccuracy = ev.accuracy;
      record.valLoss = ev.loss;
    }
    p.history.push(record);
    p.epoch = epoch + 1;
    await writeHistory();
    await save();
    if (opts.val && valScore(record) > bestVal) {
      bestVal = valScore(record);
      await save(true);
    }
    opts.onProgress?.({
      kind: 'epoch',
      step: trainer.step,
      totalSteps,
      epoch,
      loss: record.loss,
      trainAccuracy: record.trainAccuracy ?? (classify ? 0 : NaN),
      samplesPerSecond: record.samplesPerSecond,
      record,
    });
  }
  if (status === 'interrupted') await save();
  return {
    status,
    history: p.history,
    message,
    cpuSeconds: p.cpuSeconds,
    wallSeconds: p.wallSeconds,
  };
}

/** How good a record's validation is, higher is better: accuracy, or -MSE for regression. */
function valScore(r: HistoryRecord): number {
  return r.valAccuracy ?? (r.valMse !== undefined ? -r.valMse : -Infinity);
}

/** Reads a run's history.jsonl (empty when absent). */
export async function readHistory(runDir: string): Promise<HistoryRecord[]> {
  try {
    const text = await readFile(join(runDir, 'history.jsonl'), 'utf8');
    return text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as HistoryRecord);
  } catch {
    return [];
  }
}
