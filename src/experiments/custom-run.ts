/**
 * runMethod with two additions the experiments need, writing the same run.json / history.jsonl /
 * eval.json (so `writeReport` reads the run like any other):
 *
 * - `evalEvery`: validation every this many steps instead of once per epoch. Time to accuracy is
 *   read from the validation points, so with one point per epoch a short adaptation could never
 *   show more than 1 − (one adaptation epoch / the scratch run) of saving. Training is unchanged:
 *   the one training loop (`fit`) validates at these points, outside the measured training
 *   CPU-seconds, as in runMethod. History records carry the fractional epoch
 *   (`step / steps per epoch`).
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
import type { EvalSummary, HistoryRecord } from '../io/formats/run-format.js';
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
  const testSteps = [...new Set((o.testAtEpochs ?? []).map((e) => Math.round(e * perEpoch)))]
    .filter((x) => x > 0 && x <= steps)
    .sort((a, b) => a - b);
  const budgets: BudgetPoint[] = [];
  const historyFile = join(o.outDir, 'history.jsonl');
  try {
    const result = await fit(trainer, {
      train: data.train,
      val: data.val,
      epochs: o.epochs,
      seed: o.seed,
      signal: o.signal,
      onProgress: o.onProgress,
      // Validation points: every `every` steps since the last one, the budgets, and (with
      // stopWhen) the epoch ends.
      evalEvery: every,
      evalAtSteps: testSteps,
      evalAtEpochEnds: o.stopWhen !== undefined,
      onRecord: async (r, history) => {
        await writeFileAtomic(historyFile, history.map((h) => JSON.stringify(h)).join('\n') + '\n');
        if (!testSteps.includes(r.step)) return;
        const m = await classificationMetrics(trainer.currentModel(), data.test, {
          threads: o.threads ?? 2,
        });
        budgets.push({
          epochs: r.step / perEpoch,
          step: r.step,
          samples: r.samples,
          cpuSeconds: r.cpuSeconds,
          testAccuracy: m.accuracy,
          testN: data.test.n,
        });
      },
      stop: (history, step) =>
        o.stopWhen !== undefined &&
        step % perEpoch === 0 &&
        step < steps &&
        o.stopWhen(history, step / perEpoch),
    });
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
      fit: result,
      eval: evalSummary,
      files: [runJson, historyFile, join(o.outDir, 'eval.json')],
      budgets,
      epochsTrained: trainer.step / perEpoch,
    };
  } finally {
    await trainer.release();
  }
}
