import type { LossOptions } from '../autodiff/losses.js';
import { takesClassLabels } from '../autodiff/losses.js';
import { detectOutputEnding } from '../passes/output-ending.js';
import { unshareRunningStats } from '../passes/training-mode.js';
import { predictRows, rowLoss } from './class-scores.js';
import type { OptimizerOptions } from '../autodiff/optimizers.js';
import type { Graph } from '../ir/graph.js';
import { cloneGraph } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { allocate, numel } from '../ir/tensor.js';
import type { Batch, Dataset } from '../data/dataset.js';
import type { CheckpointData } from '../io/formats/checkpoint.js';
import type { SafeTensor } from '../io/formats/safetensors.js';
import { fromSafeTensor, toSafeTensor } from '../io/formats/tensors.js';
import { batches } from '../data/dataset.js';
import type { ScheduleOptions } from './schedule.js';
import { lrFactor } from './schedule.js';
import type { HostTensor, SessionOptions } from './session.js';
import { Session } from './session.js';
import type { RegressionMetrics } from './regression.js';
import { evaluateRegressionSession } from './regression.js';
import type { TrainGraph } from './train-graph.js';
import { buildTrainGraph } from './train-graph.js';

/** A group of parameters with its own base learning rate. */
export interface TrainGroup {
  /** Group name (in logs and the learning-rate input of the train step). */
  name: string;
  /** Names of the initializers this group trains; initializers in no group stay frozen. */
  params: string[];
  /** Base learning rate (scaled each step by the schedule). */
  lr: number;
  /** Weight decay of this group (default none). */
  weightDecay?: number;
}

/** Everything that defines a training run's step. */
export interface TrainerOptions {
  /** Fixed batch size of the train step (every `trainStep` batch must have it). */
  batchSize: number;
  /** The loss (cross-entropy for classifiers). */
  loss: LossOptions;
  /** SGD or AdamW, with their settings. */
  optimizer: OptimizerOptions;
  /** Trainable parameters by group, each with its own learning rate. */
  groups: TrainGroup[];
  /** Learning-rate schedule (default: constant). */
  schedule?: ScheduleOptions;
  /** Clip gradients to this global L2 norm (default: no clipping). */
  clipNorm?: number;
  /** Update BatchNorm running statistics (`train`, default) or keep them fixed (`frozen`). */
  batchNorm?: 'train' | 'frozen';
  /** Apply dropout during training (default true). */
  dropout?: boolean;
  /** Recompute quadratic branches in the backward pass (default true). */
  memoryEfficient?: boolean;
  /** onnxruntime session settings (threads, optimisation level). */
  session?: SessionOptions;
}

/** What one train step reports. */
export interface StepResult {
  /** Mean loss of the batch (before the update). */
  loss: number;
  /** Global L2 norm of the gradient (before clipping). */
  gradNorm: number;
  /** Correct predictions in the batch (classification only). */
  correct: number;
  /** Learning rate of group 0 at this step. */
  lr: number;
}

/** Metrics of an evaluation pass. */
export interface EvalResult {
  /** Number of examples evaluated. */
  n: number;
  /** Fraction predicted correctly. */
  accuracy: number;
  /** Mean loss (classification: cross-entropy, read as the output ends; see `evaluateSession`). */
  loss: number;
  /** Predicted class of every example, in order. */
  predictions: Int32Array;
}

/** Index of the largest logit in each row. */
export function argmaxRows(
  logits: Float32Array,
  rows: number,
  cols: number,
  out = new Int32Array(rows),
): Int32Array {
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bv = -Infinity;
    for (let c = 0; c < cols; c++) {
      const v = logits[r * cols + c]!;
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

/**
 * Runs training on onnxruntime: one compiled train-step graph (forward, loss, backward,
 * optimizer) and one evaluation graph. Parameters and optimizer state live in typed arrays that
 * are fed without copying; each step's outputs replace them (no copy either).
 */
export class Trainer {
  /** Current value of every initializer of the model (trained or frozen). */
  readonly params: Map<string, Tensor>;
  /** Optimizer state by input name (e.g. `conv1.weight.adam_m`). */
  readonly state: Map<string, Tensor>;
  /** Steps taken so far. */
  step = 0;
  private evalSession?: Session;
  private readonly evalInputs: string[];
  /** Static shapes of the data and label inputs, looked up once. */
  private readonly inShape: number[];
  private readonly labelShape: number[];
  /** int64 label buffer refilled each step (a step's run ends before the next step starts). */
  private readonly labels64: BigInt64Array;

  private constructor(
    /** The model being trained (its initializers are the starting values). */
    readonly model: Graph,
    /** The options the trainer was created with. */
    readonly opts: TrainerOptions,
    /** @internal The compiled train-step graph. */
    readonly train: TrainGraph,
    private readonly session: Session,
  ) {
    this.params = new Map(model.initializers);
    this.state = new Map();
    for (const u of train.updates) {
      const p = model.initializers.get(u.param)!;
      for (const s of u.state)
        this.state.set(s.input, {
          dtype: p.dtype,
          dims: [...p.dims],
          data: allocate(p.dtype, numel(p.dims)),
        });
    }
    this.evalInputs = [
      ...train.updates.map((u) => u.param),
      ...train.runningStats.map((r) => r.state),
    ];
    this.inShape = train.graph.inputs.find((v) => v.name === train.input)!.shape as number[];
    this.labelShape = train.graph.inputs.find((v) => v.name === train.labels)!.shape as number[];
    this.labels64 = new BigInt64Array(opts.batchSize);
  }

  /** Compiles the train step for `model` and creates its onnxruntime session. */
  static async create(base: Graph, opts: TrainerOptions): Promise<Trainer> {
    // Batch statistics are trained: each BatchNormalization needs running statistics of its own.
    const model = (opts.batchNorm ?? 'train') === 'train' ? unshareRunningStats(base) : base;
    const train = buildTrainGraph(model, {
      batchSize: opts.batchSize,
      loss: opts.loss,
      optimizer: opts.optimizer,
      groups: opts.groups.map((g) => ({
        name: g.name,
        params: g.params,
        weightDecay: g.weightDecay,
      })),
      clipNorm: opts.clipNorm,
      batchNorm: opts.batchNorm,
      dropout: opts.dropout,
      memoryEfficient: opts.memoryEfficient,
    });
    // The memory-pattern planner holds ~1.7× a train step's peak memory (bench/PROFILE.md).
    const session = await Session.create(train.graph, {
      ...opts.session,
      memoryPattern: opts.session?.memoryPattern ?? false,
    });
    return new Trainer(model, opts, train, session);
  }

  /** The learning rate of group 0 at the current step (for logs). */
  currentLr(): number {
    return (this.opts.groups[0]?.lr ?? 0) * lrFactor(this.step, this.opts.schedule);
  }

  /** Runs one optimizer step on a full batch. */
  async trainStep(batch: Batch): Promise<StepResult> {
    const t = this.train;
    const n = this.opts.batchSize;
    if (batch.size !== n)
      throw new Error(`train step needs a full batch of ${n}, got ${batch.size}`);
    const feeds: Record<string, HostTensor> = {
      [t.input]: { dtype: 'float32', dims: this.inShape, data: batch.x },
    };
    if (takesClassLabels(this.opts.loss.kind)) {
      const labels = this.labels64;
      for (let i = 0; i < n; i++) labels[i] = BigInt(batch.y[i]!);
      feeds[t.labels] = { dtype: 'int64', dims: this.labelShape, data: labels };
    } else {
      feeds[t.labels] = {
        dtype: 'float32',
        dims: this.labelShape,
        data: batch.target ?? Float32Array.from(batch.y),
      };
    }
    for (const u of t.updates) {
      feeds[u.param] = this.params.get(u.param)!;
      for (const s of u.state) feeds[s.input] = this.state.get(s.input)!;
    }
    for (const r of t.runningStats) feeds[r.state] = this.params.get(r.state)!;
    const factor = lrFactor(this.step, this.opts.schedule);
    for (const g of this.opts.groups) {
      feeds[t.lrInputs.get(g.name)!] = scalarF32(g.lr * factor);
    }
    if (this.opts.optimizer.kind === 'adamw') {
      const b1 = this.opts.optimizer.beta1 ?? 0.9;
      const b2 = this.opts.optimizer.beta2 ?? 0.999;
      feeds[t.bc1!] = scalarF32(1 - Math.pow(b1, this.step + 1));
      feeds[t.sqrtBc2!] = scalarF32(Math.sqrt(1 - Math.pow(b2, this.step + 1)));
    }
    const out = await this.session.run(feeds);
    const loss = Number(out[t.loss]!.data[0]);
    const gradNorm = Number(out[t.gradNorm]!.data[0]);
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      // Keep the previous parameters: a diverged step must not poison the run.
      return { loss, gradNorm, correct: 0, lr: (this.opts.groups[0]?.lr ?? 0) * factor };
    }
    for (const u of t.updates) {
      this.params.set(u.param, asTensor(out[u.newParam]!));
      for (const s of u.state) this.state.set(s.input, asTensor(out[s.output]!));
    }
    for (const r of t.runningStats) this.params.set(r.state, asTensor(out[r.update]!));
    let correct = 0;
    if (takesClassLabels(this.opts.loss.kind)) {
      const scores = out[t.output]!;
      const classes = scores.dims[1]!;
      // The loss reads logits under a Softmax/Sigmoid: one unit then predicts class 1 above 0.
      const pred = predictRows(
        scores.data as Float32Array,
        n,
        classes,
        t.ending.lossReadsLogits ? 'none' : t.ending.activation,
      );
      for (let i = 0; i < n; i++) if (pred[i] === batch.y[i]) correct++;
    }
    this.step++;
    return { loss, gradNorm, correct, lr: (this.opts.groups[0]?.lr ?? 0) * factor };
  }

  /**
   * Everything needed to resume: every parameter and running statistic (`param/NAME`), the
   * optimizer state (`state/NAME`) and the step, plus the caller's metadata (epoch, RNG...).
   * (`fit` checkpoints with it.)
   *
   * @internal
   */
  snapshot(meta: Record<string, unknown> = {}): CheckpointData {
    const tensors: Record<string, SafeTensor> = {};
    for (const [k, v] of this.params) tensors[`param/${k}`] = toSafeTensor(v);
    for (const [k, v] of this.state) tensors[`state/${k}`] = toSafeTensor(v);
    return { tensors, meta: { ...meta, step: this.step } };
  }

  /**
   * Restores a `snapshot`; refuses one whose tensors do not match this model and optimizer.
   *
   * @internal
   */
  restore(data: CheckpointData): void {
    const check = (map: Map<string, Tensor>, prefix: string) => {
      for (const [k, v] of map) {
        const t = data.tensors[`${prefix}/${k}`];
        if (!t)
          throw new Error(
            `checkpoint lacks ${prefix} '${k}'; it was written for another model or optimizer`,
          );
        const r = fromSafeTensor(t, k);
        if (r.dtype !== v.dtype || r.dims.join(',') !== v.dims.join(',')) {
          throw new Error(
            `checkpoint ${prefix} '${k}' has shape [${r.dims}] ${r.dtype}, expected [${v.dims}] ${v.dtype}`,
          );
        }
      }
    };
    // Validate everything before changing anything.
    check(this.params, 'param');
    check(this.state, 'state');
    for (const k of [...this.params.keys()])
      this.params.set(k, fromSafeTensor(data.tensors[`param/${k}`]!, k));
    for (const k of [...this.state.keys()])
      this.state.set(k, fromSafeTensor(data.tensors[`state/${k}`]!, k));
    this.step = data.meta.step;
  }

  /** The model graph with the current parameter values (inference mode), e.g. for export. */
  currentModel(): Graph {
    const g = cloneGraph(this.model);
    for (const [k, v] of this.params) g.initializers.set(k, v);
    return g;
  }

  /** Accuracy and loss of the current parameters on a dataset, in inference mode. */
  async evaluate(ds: Dataset, batchSize = 256): Promise<EvalResult> {
    return evaluateSession(await this.inferenceSession(), this.model, ds, batchSize, (feeds) => {
      for (const name of this.evalInputs) feeds[name] = this.params.get(name)!;
    });
  }

  /** MSE, RMSE, MAE (and PSNR for image targets) of the current parameters on a dataset with targets. */
  async evaluateTargets(ds: Dataset, batchSize = 256): Promise<RegressionMetrics> {
    const s = await this.inferenceSession();
    return evaluateRegressionSession(s, this.model, ds, batchSize, (feeds) => {
      for (const name of this.evalInputs) feeds[name] = this.params.get(name)!;
    });
  }

  /** The inference-mode session whose parameters are inputs, created on first use. */
  private async inferenceSession(): Promise<Session> {
    if (!this.evalSession) {
      const g = cloneGraph(this.model);
      for (const name of this.evalInputs) {
        const t = g.initializers.get(name)!;
        g.initializers.delete(name);
        g.inputs.push({ name, dtype: t.dtype, shape: [...t.dims] });
      }
      this.evalSession = await Session.create(g, this.opts.session);
    }
    return this.evalSession;
  }

  /** Frees the onnxruntime sessions; the trainer cannot be used afterwards. */
  async release(): Promise<void> {
    await this.session.release();
    await this.evalSession?.release();
  }
}

/**
 * Runs a classification model over a dataset and measures accuracy and mean loss: cross-entropy
 * of the class scores, read as the output's ending says (logits, probabilities after a Softmax,
 * log-probabilities, or binary cross-entropy for sigmoid and one-unit outputs).
 */
export async function evaluateSession(
  session: Session,
  model: Graph,
  ds: Dataset,
  batchSize: number,
  addFeeds: (feeds: Record<string, HostTensor>) => void = () => {},
  onBatch?: (examplesDone: number) => void,
): Promise<EvalResult> {
  const input = model.inputs[0]!.name;
  const output = model.outputs[0]!.name;
  const predictions = new Int32Array(ds.n);
  const activation = detectOutputEnding(model).activation;
  let correct = 0;
  let lossSum = 0;
  let k = 0;
  for (const batch of batches(ds, { batchSize })) {
    const feeds: Record<string, HostTensor> = {
      [input]: { dtype: 'float32', dims: [batch.size, ...ds.shape], data: batch.x },
    };
    addFeeds(feeds);
    const res = await session.run(feeds, [output]);
    const scores = res[output]!.data as Float32Array;
    const classes = scores.length / batch.size;
    const pred = predictRows(scores, batch.size, classes, activation);
    for (let i = 0; i < batch.size; i++) {
      lossSum += rowLoss(scores, i, classes, batch.y[i]!, activation);
      predictions[k + i] = pred[i]!;
      if (pred[i] === batch.y[i]) correct++;
    }
    k += batch.size;
    onBatch?.(k);
  }
  return { n: ds.n, accuracy: correct / ds.n, loss: lossSum / ds.n, predictions };
}

function scalarF32(v: number): HostTensor {
  return { dtype: 'float32', dims: [], data: Float32Array.of(v) };
}

function asTensor(h: HostTensor): Tensor {
  return { dtype: h.dtype, dims: [...h.dims], data: h.data };
}
