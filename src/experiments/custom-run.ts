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
 * No checkpoints, model.onnx or adapter files are written: these runs are measurements.
 */

import { join } from 'node:path';
import { ensureWritableDir, writeFileAtomic, writeFilesAtomic } from '../io/atomic.js';
import { reinitialize } from '../passes/reinit.js';
import type { EvalSummary, HistoryRecord } from '../report/run-format.js';
import type { FitResult } from '../runtime/fit.js';
import { fit } from '../runtime/fit.js';
import { evaluateModel } from '../workflow/evaluate.js';
import type { RunOptions, RunResult } from '../workflow/run.js';
import { setUpRun } from '../workflow/run.js';

/** Options of {@link runMethodFine}: runMethod's, plus the two additions. */
export interface FineRunOptions extends RunOptions {
  /** Validate every this many steps (default: once per epoch). */
  evalEvery?: number;
  /** Start the quadratic term with all factors random (quadratic methods only). */
  randomInit?: boolean;
}

/** One training run with finer validation and optional random quadratic init (see above). */
export async function runMethodFine(o: FineRunOptions): Promise<RunResult> {
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
  try {
    while (trainer.step < steps && result.status === 'done') {
      const start = trainer.step;
      result = await fit(trainer, {
        train: data.train,
        val: data.val,
        epochs: o.epochs,
        seed: o.seed,
        maxSteps: Math.min(steps, start + every),
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
    }
    info.status = result.status;
    let evalSummary: EvalSummary | undefined;
    if (result.status === 'done') {
      evalSummary = await evaluateModel(trainer.currentModel(), data.test, {
        base: o.base.graph,
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
    };
  } finally {
    await trainer.release();
  }
}
