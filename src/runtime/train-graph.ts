import { foldConstants } from '../passes/fold.js';
import { backward } from '../autodiff/backward.js';
import type { LossOptions } from '../autodiff/losses.js';
import { addLoss, lossTargetShape, takesClassLabels } from '../autodiff/losses.js';
import type { OptimizerOptions, ParamUpdate } from '../autodiff/optimizers.js';
import { clipByGlobalNorm, emitUpdate } from '../autodiff/optimizers.js';
import { GraphBuilder } from '../ir/builder.js';
import type { Graph } from '../ir/graph.js';
import { cloneGraph, GraphError } from '../ir/graph.js';
import { inferShapes, staticShape } from '../ir/shapes/index.js';
import type { RecomputeSegment } from '../autodiff/recompute.js';
import { readAdapterState } from '../passes/quadratic-spec.js';
import { setTrainingMode } from '../passes/training-mode.js';
import type { OutputEnding } from '../passes/output-ending.js';
import { detectOutputEnding, readsThrough } from '../passes/output-ending.js';
import type { GradForms } from '../autodiff/registry.js';

/** A set of parameters sharing a learning rate and weight decay. */
export interface ParamGroup {
  /** Group name (used for the learning-rate input `lr/<name>`). */
  name: string;
  params: string[];
  /** Weight decay of this group (default: none). */
  weightDecay?: number;
}

/** What the train-step graph computes. */
export interface TrainGraphOptions {
  /** Fixed batch size of the train step (symbolic batch dims are set to it). */
  batchSize: number;
  /** Alternative gradient forms (measurements); default: the fastest measured. */
  gradForms?: GradForms;
  loss: LossOptions;
  optimizer: OptimizerOptions;
  /** Trainable parameters by group; initializers not listed stay frozen constants. */
  groups: ParamGroup[];
  /** Clip gradients to this global L2 norm. */
  clipNorm?: number;
  /** Update BatchNorm running statistics ('train') or keep them fixed ('frozen'). */
  batchNorm?: 'train' | 'frozen';
  /** Apply dropout during training. */
  dropout?: boolean;
  /**
   * Memory-efficient backpropagation (default true): the backward pass recomputes each
   * quadratic branch's A(x), B(x) and φ from x instead of keeping them alive.
   */
  memoryEfficient?: boolean;
}

/** The recompute segments of a quadratized graph: each branch up to (not including) U. */
export function quadraticSegments(g: Graph): RecomputeSegment[] {
  const state = readAdapterState(g);
  if (!state || !state.enabled) return [];
  const byName = new Map(g.nodes.map((n) => [n.name, n] as const));
  return state.targets.flatMap((t) => {
    const w = state.wiring[t.node];
    if (!w) return [];
    const u = new Set(t.params.filter((p) => p.role === 'quad_u').map((p) => p.name));
    const gated = t.params.filter((p) => p.role !== 'quad_u').map((p) => p.name);
    const nodes = w.nodes.filter(
      (n) => n !== w.addNode && !byName.get(n)?.inputs.some((i) => u.has(i)),
    );
    return [{ nodes, anchor: w.quadOutput, gated }];
  });
}

/** The compiled train step: an ONNX graph and how the runtime feeds and reads it. */
export interface TrainGraph {
  graph: Graph;
  /** Model input (data) and the labels input. */
  input: string;
  labels: string;
  /** Scalar outputs. */
  loss: string;
  gradNorm: string;
  /**
   * What the loss reads in the train step, [N, C] for class losses (for training accuracy): the
   * model's output, or the logits under its Softmax/Sigmoid when the loss reads through it.
   */
  output: string;
  /** How the model's output ends (Softmax, LogSoftmax, Sigmoid or none) and what the loss read. */
  ending: OutputEnding & { lossReadsLogits: boolean };
  updates: ParamUpdate[];
  /** Running statistics: state initializer → output with its new value. */
  runningStats: { state: string; update: string }[];
  /** Scalar inputs per group: learning rate; and AdamW's bias corrections. */
  lrInputs: Map<string, string>;
  bc1?: string;
  sqrtBc2?: string;
}

/**
 * Builds the whole train step as one ONNX graph: forward in training mode, loss, backward for
 * the trainable parameters only, gradient clipping and the optimizer update. Trainable
 * parameters and optimizer state become graph inputs with `.next` outputs; frozen parameters
 * stay initializers, so they get no gradient subgraph at all.
 */
export function buildTrainGraph(model: Graph, opts: TrainGraphOptions): TrainGraph {
  if (model.inputs.length !== 1 || model.outputs.length < 1) {
    throw new GraphError(
      `training needs a model with one input and an output (has ${model.inputs.length} inputs)`,
    );
  }
  const trainable = opts.groups.flatMap((g) => g.params);
  for (const p of trainable) {
    if (!model.initializers.has(p))
      throw new GraphError(`trainable parameter '${p}' is not an initializer of the model`);
  }
  if (new Set(trainable).size !== trainable.length)
    throw new GraphError('a parameter is listed in two groups');

  const base = cloneGraph(model);
  const input = base.inputs[0]!;
  input.shape = input.shape.map((d, i) => (i === 0 ? opts.batchSize : d));
  if (input.shape.some((d) => typeof d !== 'number')) {
    throw new GraphError(
      `input '${input.name}' has symbolic dims [${input.shape.join(',')}] besides the batch; give it a static shape`,
    );
  }
  // With the batch fixed every shape is static: fold the shape arithmetic (Shape → Gather →
  // Concat → Reshape of exported Flattens), which has no gradient rules and needs none.
  const { graph: g, runningStats } = setTrainingMode(foldConstants(base).graph, {
    batchNorm: opts.batchNorm ?? 'train',
    dropout: opts.dropout ?? true,
  });
  // A classifier ending in Softmax/Sigmoid is trained on the logits under it (stable, and not
  // softmax twice); the model itself keeps the activation.
  const ending = detectOutputEnding(g);
  const lossReadsLogits = readsThrough(opts.loss.kind, ending);
  const modelOut = g.outputs[0]!.name;
  g.outputs = [];
  // Trainable parameters are fed each step: move them from initializers to inputs.
  for (const p of trainable) {
    const t = g.initializers.get(p)!;
    g.initializers.delete(p);
    g.inputs.push({ name: p, dtype: t.dtype, shape: [...t.dims] });
  }
  const shapes = inferShapes(g);
  const b = new GraphBuilder(g);
  let out = lossReadsLogits ? ending.logits : modelOut;
  let outShape = staticShape(shapes, out);
  const dtype = shapes.values.get(out)!.dtype;
  const modelShape = staticShape(shapes, modelOut);
  if (lossReadsLogits && outShape.join() !== modelShape.join()) {
    // e.g. [N,1,1,C] logits of a conv head reshaped to [N,C] after the Softmax.
    outShape = [opts.batchSize, outShape.slice(1).reduce((p, d) => p * d, 1)];
    out = b.reshape(out, outShape);
  }
  const labels = takesClassLabels(opts.loss.kind)
    ? b.input('labels', 'int64', [opts.batchSize])
    : b.input('labels', dtype, lossTargetShape(opts.loss.kind, outShape));
  const loss = b.identity(addLoss(b, out, labels, outShape, opts.loss, dtype));

  const bw = backward(g, {
    loss,
    wrt: trainable,
    recompute: opts.memoryEfficient === false ? [] : quadraticSegments(g),
    forms: opts.gradForms,
  });
  const tg = bw.graph;
  const tb = new GraphBuilder(tg, 'opt/');
  const grads = trainable.map((p) => bw.grads.get(p)!);
  const clipped = clipByGlobalNorm(tb, grads, opts.clipNorm, dtype);
  const lrInputs = new Map<string, string>();
  const bc1 = opts.optimizer.kind === 'adamw' ? tb.input('adam_bc1', dtype, []) : undefined;
  const sqrtBc2 =
    opts.optimizer.kind === 'adamw' ? tb.input('adam_sqrt_bc2', dtype, []) : undefined;
  const updates: ParamUpdate[] = [];
  let k = 0;
  for (const group of opts.groups) {
    const lr = tb.input(`lr/${group.name}`, dtype, []);
    lrInputs.set(group.name, lr);
    for (const p of group.params) {
      const shape = tg.inputs.find((v) => v.name === p)!.shape as number[];
      updates.push(
        emitUpdate(
          tb,
          p,
          clipped.grads[k++]!,
          shape,
          dtype,
          opts.optimizer,
          { lr, bc1, sqrtBc2 },
          group.weightDecay ?? 0,
        ),
      );
    }
  }
  const outInfo = (name: string, shape: number[]) => ({ name, dtype, shape });
  tg.outputs.push(outInfo(loss, []), outInfo(clipped.norm, []), outInfo(out, outShape));
  for (const u of updates) {
    const shape = tg.inputs.find((v) => v.name === u.param)!.shape as number[];
    tg.outputs.push(outInfo(u.newParam, shape));
    for (const s of u.state) tg.outputs.push(outInfo(s.output, shape));
  }
  for (const r of runningStats) {
    const t = tg.initializers.get(r.state);
    if (!t) throw new GraphError(`running statistic '${r.state}' is not an initializer`);
    // Running stats are fed like parameters so each step sees the previous step's values.
    tg.initializers.delete(r.state);
    tg.inputs.push({ name: r.state, dtype: t.dtype, shape: [...t.dims] });
    tg.outputs.push({ name: r.update, dtype: t.dtype, shape: [...t.dims] });
  }
  return {
    graph: tg,
    input: input.name,
    labels,
    loss,
    gradNorm: clipped.norm,
    output: out,
    ending: { ...ending, lossReadsLogits },
    updates,
    runningStats,
    lrInputs,
    bc1,
    sqrtBc2,
  };
}
