/**
 * runMethod with two additions the experiments need, writing the same run.json / history.jsonl /
 * eval.json (so `writeReport` reads the run like any other):
 *
 * - `evalEvery`: validation every this many steps instead of once per epoch. Time to accuracy is
 *   read from the validation points, so with one point per epoch a short adaptation could never
 *   show more than 1 − (one adaptation epoch / the scratch run) of saving. Training is unchanged:
 *   the same Trainer is driven by `fit` in chunks of `evalEvery` steps (`maxSteps`), and `fit`
 *   resumes mid-epoch from the trainer's step with the same data order and LR schedule, so the
 *   weights are exactly those of one uninterrupted run; `fit` validates at the end of each chunk.
 *   Validation is outside the measured training CPU-seconds, as in runMethod. History records
 *   carry the fractional epoch (`step / steps per epoch`).
 * - `randomInit`: the quadratic term starts with every factor random (A, B and U,
 *   `reinitialize(..., { scope: 'quadratic-random' })`) instead of U = 0: the init ablation.
 *
 * - `testAtEpochs`: test accuracy after these many epochs too (the headline study's budgets, read
 *   from one run of the largest budget at a constant learning rate).
 * - `stopWhen`: checked at every epoch end; training stops there when it returns true (the
 *   plateau rule of the headline study's from-scratch runs). The test evaluation is of the
 *   model at the stop.
 *
 * No checkpoints or adapter files are written: these runs are measurements. model.onnx only with
 * `saveModel` (a pretrained network later runs start from).
 */

import { join } from 'node:path';
import { encodeModel } from '../ir/onnx.js';
import { ensureWritableDir, writeFileAtomic, writeFilesAtomic } from '../io/atomic.js';
import { reinitialize } from '../passes/reinit.js';
import type { EvalSummary, HistoryRecord } from '../report/run-format.js';
import type { FitResult } from '../runtime/fit.js';
import { fit } from '../runtime/fit.js';
import { classificationMetrics, evaluateModel } from '../workflow/evaluate.js';
import type { RunOptions, RunResult } from '../workflow/run.js';
import { setUpRun } from '../workflow/run.js';

/** Options of {@link runMethodFine}: runMethod's, plus the two additions. */
export interface FineRunOptions extends RunOptions {
  /** Validate every this many steps (default: once per epoch). */
  evalEvery?: number;
  /** Start the quadratic term with all factors random (quadratic methods only). */
  randomInit?: boolean;
  /** Also measure test accuracy after these many epochs (rounded to whole steps). */
  testAtEpochs?: number[];
  /** Stop at the first epoch end where this holds (history so far, whole epochs done). */
  stopWhen?: (history: readonly HistoryRecord[], epochs: number) => boolean;
  /** Write the trained model to model.onnx. */
  saveModel?: boolean;
  /** Also evaluate the base model on the test split (default true; eval.json's `base`). */
  evalBase?: boolean;
}

/** Test accuracy at a budget of a finely validated run. */
export interface BudgetPoint {
  /** The budget in epochs, and the step it was measured at. */
  epochs: number;
  step: number;
  /** Cumulative training samples and process CPU-seconds at that step. */
  samples: number;
  cpuSeconds: number;
  testAccuracy: number;
  testN: number;
}

/** runMethod's result, plus the budgets' test accuracies and where training stopped. */
export interface FineRunResult extends RunResult {
  budgets: BudgetPoint[];
  /** Epochs trained (less than asked when `stopWhen` stopped the run). */
  epochsTrained: number;
}

/** One training run with finer validation and optional random quadratic init (see above). */
export async function runMethodFine(o: FineRunOptions): Promise<FineRunResult> {
  await ensureWritableDir(o.outDir);
  const { data, info, runJson, perEpoch, steps, trainer } = await setUpRun(o, (model) =>
    o.randomInit ? reinitialize(model, { seed: o.seed, scope: 'quadratic-random' }) : model,
  );
  const every = Math.max(1, Math.floor(o.evalEvery ?? perEpoch));
  const history: HistoryRecord[] = [];
  let cpu = 0;
  let wall = 0;
  let samples = 0;
  let result: FitResult = { status: 'done', history: [], cpuSeconds: 0, wallSeconds: 0 };
  const testSteps = [...new Set((o.testAtEpochs ?? []).map((e) => Math.round(e * perEpoch)))]
    .filter((x) => x > 0 && x <= steps)
    .sort((a, b) => a - b);
  const budgets: BudgetPoint[] = [];
  let stopped = false;
  try {
    while (trainer.step < steps && result.status === 'done' && !stopped) {
      const start = trainer.step;
      // Chunks end at validation points, budget steps and (with stopWhen) epoch ends.
      let end = Math.min(steps, start + every);
      const nextTest = testSteps.find((x) => x > start);
      if (nextTest !== undefined) end = Math.min(end, nextTest);
      if (o.stopWhen) end = Math.min(end, (Math.floor(start / perEpoch) + 1) * perEpoch);
      result = await fit(trainer, {
        train: data.train,
        val: data.val,
        epochs: o.epochs,
        seed: o.seed,
        maxSteps: end,
        signal: o.signal,
        onProgress: o.onProgress,
      });
      for (const r of result.history) {
        history.push({
          ...r,
          epoch: r.step / perEpoch,
          cpuSeconds: cpu + r.cpuSeconds,
          wallSeconds: wall + r.wallSeconds,
          samples: samples + r.samples,
        });
      }
      cpu += result.cpuSeconds;
      wall += result.wallSeconds;
      samples += (trainer.step - start) * o.batchSize;
      await writeFileAtomic(
        join(o.outDir, 'history.jsonl'),
        history.map((r) => JSON.stringify(r)).join('\n') + '\n',
      );
      if (result.status !== 'done') break;
      if (testSteps.includes(trainer.step)) {
        const m = await classificationMetrics(trainer.currentModel(), data.test, {
          threads: o.threads ?? 2,
        });
        budgets.push({
          epochs: trainer.step / perEpoch,
          step: trainer.step,
          samples,
          cpuSeconds: cpu,
          testAccuracy: m.accuracy,
          testN: data.test.n,
        });
      }
      if (o.stopWhen && trainer.step % perEpoch === 0 && trainer.step < steps) {
        stopped = o.stopWhen(history, trainer.step / perEpoch);
      }
    }
    info.status = result.status;
    let evalSummary: EvalSummary | undefined;
    if (result.status === 'done') {
      if (o.saveModel) {
        await writeFileAtomic(join(o.outDir, 'model.onnx'), encodeModel(trainer.currentModel()));
      }
      evalSummary = await evaluateModel(trainer.currentModel(), data.test, {
        base: o.evalBase === false ? undefined : o.base.graph,
        latency: o.latency,
        session: { threads: o.threads ?? 2 },
      });
    }
    info.finished = new Date().toISOString();
    // One step, so a kill never leaves eval.json beside a run.json that is not 'done'.
    await writeFilesAtomic(o.outDir, {
      ...(evalSummary ? { 'eval.json': JSON.stringify(evalSummary, null, 2) + '\n' } : {}),
      'run.json': JSON.stringify(info, null, 2) + '\n',
    });
    return {
      info,
      fit: { ...result, history, cpuSeconds: cpu, wallSeconds: wall },
      eval: evalSummary,
      files: [runJson, join(o.outDir, 'history.jsonl'), join(o.outDir, 'eval.json')],
      budgets,
      epochsTrained: trainer.step / perEpoch,
    };
  } finally {
    await trainer.release();
  }
}
