import { access, readFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { UserError } from '../util/errors.js';
import type { Dataset } from '../data/dataset.js';
import { split as splitDataset } from '../data/dataset.js';
import { loadDataset } from '../data/spec.js';
import type { Dim, Graph } from '../ir/graph.js';
import type { ExecutionProvider } from '../runtime/session.js';
import { cloneGraph } from '../ir/graph.js';
import { inferShapes } from '../ir/shapes.js';
import { encodeModel } from '../ir/onnx.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, saveAdapter } from '../io/adapter.js';
import {
  ensureWritableDir,
  removeAtomic,
  writeFileAtomic,
  writeFilesAtomic,
} from '../io/atomic.js';
import { accountLayers } from '../passes/accounting.js';
import type { QuadratizeOptions } from '../passes/quadratize.js';
import type { EvalSummary, RunInfo, RunMethod } from '../report/run-format.js';
import type { FitProgress, FitResult } from '../runtime/fit.js';
import { fit } from '../runtime/fit.js';
import { Trainer } from '../runtime/trainer.js';
import { VERSION } from '../version.js';
import type { LossOptions } from '../autodiff/losses.js';
import type { PhaseProgress, Task } from './evaluate.js';
import {
  SMALL_SPLIT,
  accuracyInterval,
  checkClassifierOutput,
  checkTargetShape,
  evaluateModel,
  startPhase,
  taskOf,
} from './evaluate.js';
import { prepareMethod } from './methods.js';
import type { ModelSource } from './model-source.js';
import { imageInputShape, withInputShape } from './model-source.js';
import { countParams, learnableParams } from './params.js';
import { quadParamNames } from '../passes/quadratic-spec.js';
import type { OutputEnding } from '../passes/output-ending.js';
import { classifierLoss, describeEnding, detectOutputEnding } from '../passes/output-ending.js';
import type { HeadReplacement } from '../passes/replace-head.js';
import { replaceHead } from '../passes/replace-head.js';
import { GraphError } from '../ir/graph.js';

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
  /**
   * Classification: the data's class count when it differs from the model's outputs. The head is
   * replaced by a new one of this width (seeded), trained with the method and saved with the adapter.
   */
  numClasses?: number;
  /** Called with one-line notes before training (the output activation found, a replaced head). */
  onNote?: (line: string) => void;
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
  /** onnxruntime execution provider of the run's sessions (default cpu). */
  ep?: ExecutionProvider;
  /** Continue the run in `outDir` from its latest checkpoint. */
  resume?: boolean;
  /** Start afresh in an `outDir` that holds another run, removing that run's files first. */
  force?: boolean;
  /** Abort to stop after the current step (a checkpoint is written). */
  signal?: AbortSignal;
  /** Called after every step and epoch (e.g. for a progress bar). */
  onProgress?: (p: FitProgress) => void;
  /** Called through the phases around training (loading data, evaluation, latency). */
  onPhase?: (p: PhaseProgress) => void;
  /** Told what the user should know but that does not stop the run (e.g. a tiny test split). */
  onWarning?: (message: string) => void;
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

/** What a run writes into its directory (removed by --force, or when a run fails to start). */
const RUN_FILES = [
  'run.json',
  'history.jsonl',
  'checkpoints',
  'model.onnx',
  ADAPTER_WEIGHTS_FILE,
  ADAPTER_CONFIG_FILE,
  'eval.json',
];

/** Removes a run's files from `dir`, or `dir` itself when the run created it (`whole`). */
async function removeRunFiles(dir: string, whole = false): Promise<void> {
  // Renamed aside, then deleted: a kill never leaves a half-deleted file under its real name.
  if (whole) await removeAtomic(dir);
  else for (const f of RUN_FILES) await removeAtomic(join(dir, f));
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

/** The loss a dataset trains with: per-pixel (binary) cross-entropy for masks, else its task's. */
export function lossFor(ds: Dataset): LossOptions {
  if (ds.masks === 'classes') return { kind: 'pixel_cross_entropy' };
  if (ds.masks === 'binary') return { kind: 'pixel_bce' };
  return TASK_LOSS[taskOf(ds)];
}

/**
 * A model with an open input size (symbolic height/width, e.g. a segmentation net) sized to the
 * data: its open dims are set from the first training example's size (NCHW data; a channels-last
 * input [H, W, C] gets [h, w, c]). Models with a fixed input are returned as they are.
 */
export async function sizeToData(
  model: Graph,
  spec: string,
  o: { seed: number; modelName: string },
): Promise<Graph> {
  const dims = model.inputs[0]?.shape.slice(1) ?? [];
  if (dims.every((d) => typeof d === 'number') || dims.length !== 3) return model;
  const channelsLast = typeof dims[2] === 'number' && typeof dims[0] !== 'number';
  const c = (channelsLast ? dims[2] : dims[0]) as number | string;
  const probe = await loadDataset(spec, {
    split: 'train',
    limit: 1,
    seed: o.seed,
    shape: typeof c === 'number' ? [c, NaN, NaN] : undefined,
  });
  const [dc, h, w] = probe.shape;
  return withInputShape(model, channelsLast ? [h, w, dc] : [dc, h, w], o.modelName);
}

/**
 * Checks mask targets against the model's output (statically, from shape inference): class
 * masks need [C, ...pixels] logits for one class index per pixel; 0/1 masks the mask's shape.
 *
 * @throws UserError naming the model, the data and what to use
 */
function checkMasks(model: Graph, ds: Dataset, names: { model: string; data: string }): void {
  if (!ds.targets || !ds.targetShape) return;
  const out = inferShapes(model)
    .values.get(model.outputs[0]?.name ?? '')
    ?.shape.slice(1);
  if (!out || !out.every((d): d is number => typeof d === 'number')) return;
  const t = ds.targetShape;
  const pixels = (s: readonly number[]) => s.slice(1).join('x');
  const where = `${names.model} outputs [${out.join(',')}] per example and '${names.data}' has targets [${t.join(',')}]`;
  if (ds.masks === 'classes') {
    if (out.length !== t.length || pixels(out) !== pixels(t))
      throw new UserError(`${where}: class masks need one logit per class at each mask pixel`);
    return;
  }
  if (ds.masks === 'binary') {
    if (out.join() !== t.join())
      throw new UserError(`${where}: a 0/1 mask needs one logit per mask value`);
    return;
  }
  if (out.length === 3 && t.length === 3 && pixels(out) === pixels(t) && out[0] !== t[0]) {
    throw new UserError(
      `${where}: the channels differ (${out[0]} vs ${t[0]}); for class masks (one class index per pixel) use loss=ce, for 0/1 masks loss=bce (e.g. ${names.data}:loss=ce), or target_channels=${out[0]} for image targets`,
    );
  }
}

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

/** `model` with the input and output shapes of `like` (the same graph before `sizeToData`). */
function withOpenShapes(model: Graph, like: Graph): Graph {
  const g = cloneGraph(model);
  // Only the open (symbolic) dims come back: a new head's class count stays as trained.
  const reopen = (shape: readonly Dim[], likeShape: readonly Dim[] | undefined): Dim[] =>
    shape.map((d, k) => (typeof likeShape?.[k] === 'string' ? likeShape[k]! : d));
  g.inputs = g.inputs.map((v, i) => ({ ...v, shape: reopen(v.shape, like.inputs[i]?.shape) }));
  g.outputs = g.outputs.map((v, i) => ({ ...v, shape: reopen(v.shape, like.outputs[i]?.shape) }));
  return g;
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

/** Warns when the validation or test split is too small for its accuracy to say much. */
function warnSmallSplits(data: RunData, o: RunOptions): void {
  for (const [d, what, min, flag] of [
    [data.val, 'validation', SMALL_SPLIT.validation, '--val-fraction or --limit'],
    [data.test, 'test', SMALL_SPLIT.test, '--test-limit'],
  ] as const) {
    if (!d || d.n >= min) continue;
    const [lo, hi] = accuracyInterval(1, d.n);
    o.onWarning?.(
      `the ${what} split has only ${d.n} examples: even ${d.n} of ${d.n} right leaves the accuracy anywhere in ${(lo * 100).toFixed(0)}–${(hi * 100).toFixed(0)}% (95% interval); use more data (${flag}) to compare methods`,
    );
  }
}

/** @internal What every training run sets up before its first step (see {@link setUpRun}). */
export interface RunSetup {
  /** The run's train / validation / test splits, laid out as the model takes them. */
  data: RunData;
  /** The base model as trained from: `o.base.graph`, or it with a new head (`numClasses`). */
  base: Graph;
  /** The head replacement, when `numClasses` asked for one. */
  head?: HeadReplacement;
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
  // An open input size (fully convolutional models) is trained at the data's resolution.
  const sized = await sizeToData(o.base.graph, o.data, { seed: o.seed, modelName: o.base.name });
  let base = sized;
  const shape = imageInputShape(base, o.base.name);
  const loaded = startPhase(o.onPhase, `loading '${o.data}'`);
  const data = await loadRunData(o.data, shape, {
    limit: o.limit,
    testLimit: o.testLimit,
    valFraction: o.valFraction,
    seed: o.seed,
    modelName: o.base.name,
  });
  loaded();
  const task = taskOf(data.train);
  if (task !== 'classification' && o.numClasses !== undefined)
    throw new UserError(
      `--num-classes is for class labels, but '${o.data}' has regression targets; drop it`,
    );
  checkMasks(base, data.train, { model: o.base.name, data: o.data });
  if (!data.train.masks) checkTargetShape(base, data.train, { model: o.base.name, data: o.data });
  checkClassifierOutput(base, data.train, { model: o.base.name, data: o.data });
  const classifier: ReturnType<typeof fitClasses> =
    task === 'classification' ? fitClasses(o, base, data.train.numClasses) : {};
  base = classifier.base ?? base;
  if (task === 'classification') warnSmallSplits(data, o);
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
      base: countParams(o.base.graph, learnableParams(o.base.graph)),
    },
    flops: {
      model: modelAcc.totals.base.flops + modelAcc.totals.quadratic.flops,
      base: accountLayers(sized).totals.base.flops,
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
  if (classifier.ending) {
    const loss = classifierLoss(classifier.ending);
    info.output = {
      activation: classifier.ending.activation,
      loss: loss.kind,
      lossReads: loss.reads,
      summary: describeEnding(classifier.ending),
    };
    o.onNote?.(info.output.summary);
  }
  if (classifier.head) {
    const h = classifier.head;
    info.head = { node: h.node, op: h.op, from: h.from, to: h.to, seed: o.seed };
    o.onNote?.(
      `replaced head '${h.node}' (${h.op}, ${h.from} → ${h.to} outputs, seed ${o.seed}); it trains with the run`,
    );
  }
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
  const built = startPhase(o.onPhase, 'building the training graph');
  const trainer = await Trainer.create(model, {
    batchSize: o.batchSize,
    loss: classifier.ending
      ? { kind: classifierLoss(classifier.ending).kind }
      : lossFor(data.train),
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
    session: { threads: o.threads ?? 2, ep: o.ep },
  });
  built();
  return {
    data,
    base,
    head: classifier.head,
    prepared,
    model,
    trainable,
    info,
    runJson,
    perEpoch,
    steps,
    trainer,
  };
}

/**
 * A classifier's fit to the data's classes: how its output ends (for the loss) and, with
 * `numClasses`, the base with a new head. A model whose outputs do not match the class count is
 * refused with the flag that fixes it (one output unit is a binary classifier: 2 classes).
 */
function fitClasses(
  o: RunOptions,
  original: Graph,
  dataClasses: number,
): { base?: Graph; head?: HeadReplacement; ending?: OutputEnding } {
  let base = original;
  let head: HeadReplacement | undefined;
  const classesOf = (units: number) => (units === 1 ? 2 : units);
  if (o.numClasses !== undefined) {
    if (o.numClasses !== dataClasses)
      throw new UserError(
        `--num-classes ${o.numClasses} does not match '${o.data}', which has ${dataClasses} classes; use --num-classes ${dataClasses}`,
      );
    const units = detectOutputEnding(base).units;
    if (units === undefined || classesOf(units) !== dataClasses) {
      if (o.trainHead === false)
        throw new UserError(
          '--num-classes puts a new, untrained head on the model; drop --no-train-head so it trains',
        );
      try {
        ({ graph: base, report: head } = replaceHead(base, {
          numClasses: dataClasses,
          seed: o.seed,
        }));
      } catch (e) {
        if (e instanceof GraphError)
          throw new UserError(
            `${o.base.name}: --num-classes cannot replace the head: ${e.message}`,
          );
        throw e;
      }
    }
  }
  const ending = detectOutputEnding(base);
  if (ending.units !== undefined && classesOf(ending.units) !== dataClasses) {
    throw new UserError(
      `${o.base.name}: the model outputs ${ending.units} classes but '${o.data}' has ${dataClasses}; add --num-classes ${dataClasses} to replace the head`,
    );
  }
  return { base: head ? base : undefined, head, ending };
}

/**
 * One training run end to end: prepare the method, train with per-epoch validation,
 * checkpoints and history, export model.onnx (and the adapter files), evaluate on the test
 * split against the original model, and record run.json and eval.json in the run directory.
 */
export async function runMethod(o: RunOptions): Promise<RunResult> {
  const created = !(await exists(o.outDir));
  if (!o.resume && (await exists(join(o.outDir, 'history.jsonl')))) {
    if (!o.force)
      throw new UserError(
        `${o.outDir} already holds a run; continue it with --resume, start afresh with --force, or choose another -o`,
      );
    await removeRunFiles(o.outDir);
  }
  await ensureWritableDir(o.outDir);
  let setup: RunSetup;
  try {
    setup = await setUpRun(o);
  } catch (e) {
    // Bad data, a model that does not fit it...: the failed run leaves nothing behind.
    if (!o.resume) await removeRunFiles(o.outDir, created);
    throw e;
  }
  const { data, head, prepared, trainable, info, runJson, trainer } = setup;
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
    if (result.status !== 'done') {
      info.finished = new Date().toISOString();
      await writeFileAtomic(runJson, JSON.stringify(info, null, 2) + '\n');
      return { info, fit: result, files };
    }
    // Trained at the data's size; written with the base model's own (open) input and outputs.
    const trained = withOpenShapes(trainer.currentModel(), o.base.graph);
    const evalSummary: EvalSummary = await evaluateModel(trained, data.test, {
      // The original head scores other classes: no side-by-side accuracy then.
      base: head ? undefined : o.base.graph,
      latency: o.latency,
      session: { threads: o.threads ?? 2, ep: o.ep },
      names: { model: o.base.name, data: o.data },
      onPhase: o.onPhase,
    });
    info.finished = new Date().toISOString();
    // The outputs of a finished run, committed in one step: a kill leaves the run as it was
    // (resumable) or finished, never a model without its adapter or a 'done' without the model.
    const outputs: Record<string, Uint8Array | string> = {
      'model.onnx': encodeModel(trained),
      'eval.json': JSON.stringify(evalSummary, null, 2) + '\n',
      'run.json': JSON.stringify(info, null, 2) + '\n',
    };
    files.push(join(o.outDir, 'model.onnx'));
    if (prepared.hasAdapter) {
      // Base parameters trained with the adapter (the head) travel with it, as in PEFT.
      const q = new Set(quadParamNames(trained));
      await saveAdapter(o.outDir, trained, o.base.sha256, {
        alsoSave: trainable.filter((p) => !q.has(p)),
        head: head && { node: head.node, numClasses: head.to, seed: o.seed },
        alongside: outputs,
      });
      files.push(join(o.outDir, 'adapter.safetensors'), join(o.outDir, 'adapter_config.json'));
    } else {
      await writeFilesAtomic(o.outDir, outputs);
    }
    files.push(join(o.outDir, 'eval.json'));
    return { info, fit: result, eval: evalSummary, files };
  } catch (e) {
    // A run that failed before its first checkpoint has nothing worth keeping.
    if (!o.resume && !(await exists(join(o.outDir, 'checkpoints'))))
      await removeRunFiles(o.outDir, created);
    throw e;
  } finally {
    await trainer.release();
  }
}
