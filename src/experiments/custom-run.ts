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

import os from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { numBatches } from '../data/dataset.js';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.js';
import { accountLayers } from '../passes/accounting.js';
import { quadParamNames } from '../passes/quadratic-spec.js';
import { reinitialize } from '../passes/reinit.js';
import type { EvalSummary, HistoryRecord, RunInfo } from '../report/run-format.js';
import type { FitResult } from '../runtime/fit.js';
import { fit } from '../runtime/fit.js';
import { Trainer } from '../runtime/trainer.js';
import { VERSION } from '../version.js';
import { evaluateModel } from '../workflow/evaluate.js';
import { prepareMethod } from '../workflow/methods.js';
import { imageInputShape } from '../workflow/model-source.js';
import { countParams, learnableParams } from '../workflow/params.js';
import type { RunOptions, RunResult } from '../workflow/run.js';
import { loadRunData } from '../workflow/run.js';

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
  const base = o.base.graph;
  const shape = imageInputShape(base, o.base.name);
  const data = await loadRunData(o.data, shape, {
    limit: o.limit,
    testLimit: o.testLimit,
    valFraction: o.valFraction,
    seed: o.seed,
    modelName: o.base.name,
  });
  const prepared = prepareMethod(o.method, base, {
    lr: o.lr,
    quadLr: o.quadLr,
    quad: o.quad,
    train: o.train,
    trainHead: o.trainHead,
    seed: o.seed,
  });
  const model = o.randomInit
    ? reinitialize(prepared.model, { seed: o.seed, scope: 'quadratic-random' })
    : prepared.model;
  const trainable = prepared.groups.flatMap((g) => g.params);
  const modelAcc = accountLayers(model);
  const allParams = [...new Set([...learnableParams(model), ...quadParamNames(model)])];
  const ortVersion = (
    createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }
  ).version;
  const runJson = join(o.outDir, 'run.json');
  const info: RunInfo = {
    format: 1,
    method: o.method,
    label: o.label ?? o.method,
    model: o.base.name,
    modelSha256: o.base.sha256,
    data: o.data,
    seed: o.seed,
    command: o.command ?? '',
    params: {
      total: countParams(model, allParams),
      trainable: countParams(model, trainable),
      base: countParams(base, learnableParams(base)),
    },
    flops: {
      model: modelAcc.totals.base.flops + modelAcc.totals.quadratic.flops,
      base: accountLayers(base).totals.base.flops,
    },
    trainFlopsPerSample: 3 * (modelAcc.totals.base.flops + modelAcc.totals.quadratic.flops),
    started: new Date().toISOString(),
    status: 'running',
    env: {
      quadranet: VERSION,
      onnxruntime: ortVersion,
      node: process.version,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      threads: o.threads ?? 2,
    },
  };
  await writeFileAtomic(runJson, JSON.stringify(info, null, 2) + '\n');
  const perEpoch = numBatches(data.train.n, o.batchSize, true);
  const steps = perEpoch * o.epochs;
  const trainer = await Trainer.create(model, {
    batchSize: o.batchSize,
    loss: { kind: 'cross_entropy' },
    optimizer:
      o.optimizer === 'sgd'
        ? { kind: 'sgd', momentum: 0.9, weightDecay: o.weightDecay }
        : { kind: 'adamw' },
    groups: prepared.groups.map((g) => ({
      ...g,
      weightDecay: o.optimizer === 'adamw' ? (o.weightDecay ?? 0) : undefined,
    })),
    schedule: {
      warmupSteps: o.warmupSteps ?? Math.min(50, Math.floor(steps / 10)),
      totalSteps: steps,
      minFactor: 0.05,
    },
    clipNorm: o.clipNorm,
    batchNorm: o.batchNorm ?? prepared.batchNorm,
    dropout: true,
    session: { threads: o.threads ?? 2 },
  });
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
        base,
        latency: o.latency,
        session: { threads: o.threads ?? 2 },
      });
      await writeFileAtomic(
        join(o.outDir, 'eval.json'),
        JSON.stringify(evalSummary, null, 2) + '\n',
      );
    }
    info.finished = new Date().toISOString();
    await writeFileAtomic(runJson, JSON.stringify(info, null, 2) + '\n');
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
