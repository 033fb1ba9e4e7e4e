import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { UserError } from '../util/errors.js';
import type { Graph } from '../ir/graph.js';
import type { ExecutionProvider } from '../runtime/session.js';
import { encodeModel } from '../ir/onnx.js';
import { saveAdapter } from './adapter-files.js';
import { ensureWritableDir, writeFileAtomic, writeFilesAtomic } from '../io/atomic.js';
import { accountLayers } from '../passes/accounting.js';
import type { QuadratizeOptions } from '../passes/quadratize.js';
import type { EvalSummary, RunInfo, RunMethod } from '../io/formats/run-format.js';
import type { FitProgress, FitResult } from '../runtime/fit.js';
import { fit } from '../runtime/fit.js';
import type { QuadBudget } from '../passes/budget/parse.js';
import { defaultSchedule } from '../runtime/schedule.js';
import type { BudgetPlan } from './budget.js';
import { budgetJson, budgetLine, planBudget } from './budget.js';
import { Trainer } from '../runtime/trainer.js';
import { VERSION } from '../version.js';
import type { PhaseProgress } from './evaluate.js';
import {
  checkClassifierOutput,
  checkTargetShape,
  evaluateModel,
  startPhase,
  taskOf,
} from './evaluate.js';
import { QUADRATIC_METHODS, prepareMethod } from './methods.js';
import type { ModelSource } from './model-source.js';
import { imageInputShape } from './model-source.js';
import { countParams, learnableParams } from './params.js';
import { quadParamNames } from '../passes/quadratic-spec.js';
import type { OutputEnding } from '../passes/output-ending.js';
import { classifierLoss, describeEnding, detectOutputEnding } from '../passes/output-ending.js';
import type { HeadReplacement } from '../passes/replace-head.js';
import { replaceHead } from '../passes/replace-head.js';
import { GraphError } from '../ir/graph.js';
import type { RunData } from './run-data.js';
import {
  checkMasks,
  loadRunData,
  lossFor,
  sizeToData,
  warnSmallSplits,
  withOpenShapes,
} from './run-data.js';
import { exists, removeRunFiles } from './run-dir.js';

export { dataShapeFor, fitToModel, loadRunData, lossFor, sizeToData } from './run-data.js';
export type { RunData } from './run-data.js';

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
  /**
   * Place and size the quadratic terms within this cost (quadratic-adapt, scratch-quadratic,
   * linear-adapter): usefulness scored on the training split, ranks up to `quad.rank` or the
   * defaults. The plan is recorded in run.json (`budget`).
   */
  budget?: QuadBudget;
  /** Batch size a latency budget is timed at (default 1). */
  budgetBatch?: number;
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
  let quad = o.quad;
  let budget: BudgetPlan | undefined;
  if (o.budget) {
    if (!QUADRATIC_METHODS.includes(o.method))
      throw new UserError(
        `--budget sizes quadratic terms, and method '${o.method}' has none; drop --budget`,
      );
    const planned = startPhase(o.onPhase, `planning the quadratic terms within --budget`);
    budget = await planBudget(base, {
      budget: o.budget,
      quad: { seed: o.seed, ...o.quad },
      data: data.train,
      latencyBatch: o.budgetBatch,
      session: { threads: o.threads ?? 2, ep: o.ep },
    });
    planned();
    quad = budget.options;
    o.onNote?.(budgetLine(budget));
  }
  const prepared = prepareMethod(o.method, base, {
    lr: o.lr,
    quadLr: o.quadLr,
    quad,
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
  if (budget) info.budget = budgetJson(budget);
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
    schedule: defaultSchedule(steps, {
      warmupSteps: o.warmupSteps,
      constant: o.lrSchedule === 'constant',
    }),
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
