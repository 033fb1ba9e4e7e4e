import { access, readFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { UserError } from '../cli/errors.js';
import type { Dataset } from '../data/dataset.js';
import { split as splitDataset } from '../data/dataset.js';
import { loadDataset } from '../data/spec.js';
import type { Graph } from '../ir/graph.js';
import { encodeModel } from '../ir/onnx.js';
import { saveAdapter } from '../io/adapter.js';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.js';
import { accountLayers } from '../passes/accounting.js';
import type { QuadratizeOptions } from '../passes/quadratize.js';
import type { EvalSummary, RunInfo, RunMethod } from '../report/run-format.js';
import type { FitProgress, FitResult } from '../runtime/fit.js';
import { fit } from '../runtime/fit.js';
import { Trainer } from '../runtime/trainer.js';
import { VERSION } from '../version.js';
import type { LossOptions } from '../autodiff/losses.js';
import type { Task } from './evaluate.js';
import { checkTargetShape, evaluateModel, taskOf } from './evaluate.js';
import { prepareMethod } from './methods.js';
import type { ModelSource } from './model-source.js';
import { imageInputShape } from './model-source.js';
import { countParams, learnableParams } from './params.js';
import { quadParamNames } from '../passes/quadratic-spec.js';

/** Everything one training run needs. */
export interface RunOptions {
  /** What to train: QuadraNet V2 adaptation or one of the baselines. */
  method: RunMethod;
  /** The pretrained (or built-in) model to start from. */
  base: ModelSource;
  /** Data spec, e.g. `mnist:shift=contrast,strength=0.6`. */
  data: string;
  /** Run directory. */
  outDir: string;
  /** Passes over the training examples. */
  epochs: number;
  /** Examples per train step. */
  batchSize: number;
  /** Learning rate of first-order parameters. */
  lr: number;
  /** Learning rate of quadratic / adapter parameters (default `lr`). */
  quadLr?: number;
  /** AdamW or SGD (momentum 0.9). */
  optimizer: 'adamw' | 'sgd';
  /** Weight decay (default 0). */
  weightDecay?: number;
  /** Warm-up steps of the cosine schedule. */
  warmupSteps?: number;
  /** After warm-up: cosine decay to 5% (default) or a constant rate (runs that may stop early). */
  lrSchedule?: 'cosine' | 'constant';
  /** Clip gradients to this global L2 norm (default: no clipping). */
  clipNorm?: number;
  /** The quadratic term: rank, φ, atrous, targets... (adapter methods). */
  quad?: QuadratizeOptions;
  /** quadratic-adapt: train only the adapter (default) or the whole network. */
  train?: 'adapter' | 'full';
  /** Adapter methods: also train the classifier head (default true). */
  trainHead?: boolean;
  /** Override the method's BatchNorm mode. */
  batchNorm?: 'train' | 'frozen';
  /** Use only this many training examples (before the validation split). */
  limit?: number;
  /** Use only this many test examples. */
  testLimit?: number;
  /** Fraction of the training examples held out for per-epoch validation (default 0.1). */
  valFraction?: number;
  /** Seed of data order, initialisation and shifts. */
  seed: number;
  /** onnxruntime threads (default 2). */
  threads?: number;
  /** Continue the run in `outDir` from its latest checkpoint. */
  resume?: boolean;
  /** Abort to stop after the current step (a checkpoint is written). */
  signal?: AbortSignal;
  /** Called after every step and epoch (e.g. for a progress bar). */
  onProgress?: (p: FitProgress) => void;
  /** Chart label (default: the method). */
  label?: string;
  /** The command line that started the run (recorded for reproduction). */
  command?: string;
  /** Latency batch sizes and runs for eval.json. */
  latency?: {
    /** Batch sizes to time (default [1, 32]). */
    batchSizes?: number[];
    /** Timed runs per batch size (default 30). */
    runs?: number;
  };
}

/** What a run produced. */
export interface RunResult {
  /** What run.json records. */
  info: RunInfo;
  /** How training ended and its history. */
  fit: FitResult;
  /** The evaluation written to eval.json (when training finished). */
  eval?: EvalSummary;
  /** The files written in the run directory. */
  files: string[];
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** The loss each task trains with. */
const TASK_LOSS: Record<Task, LossOptions> = {
  classification: { kind: 'cross_entropy' },
  regression: { kind: 'mse' },
};

/** NCHW → NHWC of `n` images of shape [c, h, w]. */
function toChannelsLast(x: Float32Array, n: number, [c, h, w]: readonly number[]): Float32Array {
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

/** @internal What every training run sets up before its first step (see {@link setUpRun}). */
export interface RunSetup {
  /** The run's train / validation / test splits, laid out as the model takes them. */
  data: RunData;
  /** The method's model (e.g. quadratized) and parameter groups. */
  prepared: ReturnType<typeof prepareMethod>;
  /** The model trained (the prepared one, after `adjust`). */
  model: Graph;
  /** Names of the trained parameters. */
  trainable: string[];
  /** The run record, written to run.json (status 'running'). */
  info: RunInfo;
  runJson: string;
  /** Train steps per epoch and in all. */
  perEpoch: number;
  steps: number;
  trainer: Trainer;
}

/**
 * @internal The part of a run shared by `runMethod` and the experiments' finely validated runs:
 * load and check the data, prepare the method (then `adjust` the model, e.g. re-initialise it),
 * write run.json and create the trainer.
 */
export async function setUpRun(
  o: RunOptions,
  adjust: (model: Graph) => Graph = (m) => m,
): Promise<RunSetup> {
  const runJson = join(o.outDir, 'run.json');
  const base = o.base.graph;
  const shape = imageInputShape(base, o.base.name);
  const data = await loadRunData(o.data, shape, {
    limit: o.limit,
    testLimit: o.testLimit,
    valFraction: o.valFraction,
    seed: o.seed,
    modelName: o.base.name,
  });
  const task = taskOf(data.train);
  checkTargetShape(base, data.train, { model: o.base.name, data: o.data });
  const classes = base.outputs[0]?.shape.at(-1);
  if (task === 'classification' && typeof classes === 'number' && data.train.numClasses > classes) {
    throw new UserError(
      `${o.base.name}: the model outputs ${classes} classes but '${o.data}' has ${data.train.numClasses}; adapt a model with enough outputs`,
    );
  }
  const prepared = prepareMethod(o.method, base, {
    lr: o.lr,
    quadLr: o.quadLr,
    quad: o.quad,
    train: o.train,
    trainHead: o.trainHead,
    seed: o.seed,
  });
  const model = adjust(prepared.model);
  const trainable = prepared.groups.flatMap((g) => g.params);
  const modelAcc = accountLayers(model);
  const allParams = [...new Set([...learnableParams(model), ...quadParamNames(model)])];
  const ortVersion = (
    createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }
  ).version;
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
  if (o.resume && (await exists(runJson))) {
    const prev = JSON.parse(await readFile(runJson, 'utf8')) as RunInfo;
    info.started = prev.started;
  }
  await writeFileAtomic(runJson, JSON.stringify(info, null, 2) + '\n');

  if (data.train.n < o.batchSize) {
    throw new UserError(
      `'${o.data}': ${data.train.n} training examples (after the validation split) are fewer than one batch of ${o.batchSize}; lower --batch-size or use more data`,
    );
  }
  const perEpoch = Math.floor(data.train.n / o.batchSize);
  const steps = perEpoch * o.epochs;
  const trainer = await Trainer.create(model, {
    batchSize: o.batchSize,
    loss: TASK_LOSS[task],
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
      minFactor: o.lrSchedule === 'constant' ? 1 : 0.05,
    },
    clipNorm: o.clipNorm,
    batchNorm: o.batchNorm ?? prepared.batchNorm,
    dropout: true,
    session: { threads: o.threads ?? 2 },
  });
  return { data, prepared, model, trainable, info, runJson, perEpoch, steps, trainer };
}

/**
 * One training run end to end: prepare the method, train with per-epoch validation,
 * checkpoints and history, export model.onnx (and the adapter files), evaluate on the test
 * split against the original model, and record run.json and eval.json in the run directory.
 */
export async function runMethod(o: RunOptions): Promise<RunResult> {
  await ensureWritableDir(o.outDir);
  if (!o.resume && (await exists(join(o.outDir, 'history.jsonl')))) {
    throw new UserError(
      `${o.outDir} already holds a run; continue it with --resume or choose another -o`,
    );
  }
  const base = o.base.graph;
  const { data, prepared, trainable, info, runJson, trainer } = await setUpRun(o);
  const files = [runJson, join(o.outDir, 'history.jsonl')];
  let result: FitResult;
  try {
    result = await fit(trainer, {
      train: data.train,
      val: data.val,
      epochs: o.epochs,
      seed: o.seed,
      runDir: o.outDir,
      resume: o.resume,
      signal: o.signal,
      onProgress: o.onProgress,
      checkpointEvery: 200,
    });
    info.status = result.status;
    let evalSummary: EvalSummary | undefined;
    if (result.status === 'done') {
      const trained = trainer.currentModel();
      const modelFile = join(o.outDir, 'model.onnx');
      await writeFileAtomic(modelFile, encodeModel(trained));
      files.push(modelFile);
      if (prepared.hasAdapter) {
        // Base parameters trained with the adapter (the head) travel with it, as in PEFT.
        const q = new Set(quadParamNames(trained));
        await saveAdapter(o.outDir, trained, o.base.sha256, {
          alsoSave: trainable.filter((p) => !q.has(p)),
        });
        files.push(join(o.outDir, 'adapter.safetensors'), join(o.outDir, 'adapter_config.json'));
      }
      evalSummary = await evaluateModel(trained, data.test, {
        base,
        latency: o.latency,
        session: { threads: o.threads ?? 2 },
        names: { model: o.base.name, data: o.data },
      });
      await writeFileAtomic(
        join(o.outDir, 'eval.json'),
        JSON.stringify(evalSummary, null, 2) + '\n',
      );
      files.push(join(o.outDir, 'eval.json'));
    }
    info.finished = new Date().toISOString();
    await writeFileAtomic(runJson, JSON.stringify(info, null, 2) + '\n');
    return { info, fit: result, eval: evalSummary, files };
  } finally {
    await trainer.release();
  }
}
