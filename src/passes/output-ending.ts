/**
 * How a classifier's output ends: most exported classifiers (Keras / TF.js `activation:
 * 'softmax'`, many ONNX exports) output probabilities, not logits. Softmax cross-entropy on top of
 * probabilities applies softmax twice and barely trains, so the loss must know the ending: it
 * reads the logits under a Softmax or Sigmoid (numerically stable forms) and the log-probabilities
 * of a LogSoftmax, while the model keeps its outputs.
 */

import type { Graph, Node } from '../ir/graph.js';
import { attrInt, producers } from '../ir/graph.js';
import type { Dim } from '../ir/graph.js';
import { inferShapes } from '../ir/shapes/index.js';
import type { LossKind } from '../autodiff/losses.js';
import { unload } from './adapter.js';
import { readAdapterState } from './quadratic-spec.js';
import { constantLookup } from './targets.js';

/** The output activation a classification loss accounts for ('none': the output is logits). */
export type OutputActivation = 'softmax' | 'log_softmax' | 'sigmoid' | 'none';

/** What the output of a classifier is, and what the loss should read. */
export interface OutputEnding {
  /** The activation the output ends in ('none' when it ends in none of Softmax, LogSoftmax, Sigmoid over the classes). */
  activation: OutputActivation;
  /** The activation node, when there is one. */
  node?: string;
  /** The graph output (the first one). */
  output: string;
  /** The scores under the activation (its input); the output itself when there is no activation. */
  logits: string;
  /** Shape-only nodes between the activation and the output (Identity, Reshape, Flatten...). */
  after: string[];
  /** Output values per example (the class count of a classifier), when static. */
  units?: number;
  /** The Conv/Gemm/MatMul layer computing the logits when the head is plain linear (bias, reshape and pooling allowed). */
  head?: { node: string; op: string };
  /** Otherwise the node that computes the logits (e.g. a Relu): the head is not a plain linear layer. */
  other?: { node: string; op: string };
  /** An activation that was seen but not used, and why (e.g. a Softmax over the spatial axes). */
  ignored?: string;
}

/** What each recognised output activation means for training. */
interface ActivationRule {
  kind: Exclude<OutputActivation, 'none'>;
  /** Whether the op normalises over an axis (then it must be the class axis). */
  axisOp: boolean;
  /** The loss of a classifier ending in it, and what that loss reads. */
  loss: LossKind;
  lossReads: 'logits' | 'output';
  /** What the exported model outputs, for messages. */
  outputs: string;
}

/** Output activations keyed by op type. */
const ACTIVATIONS: Record<string, ActivationRule> = {
  Softmax: {
    kind: 'softmax',
    axisOp: true,
    loss: 'cross_entropy',
    lossReads: 'logits',
    outputs: 'probabilities',
  },
  LogSoftmax: {
    kind: 'log_softmax',
    axisOp: true,
    loss: 'nll',
    lossReads: 'output',
    outputs: 'log-probabilities',
  },
  Sigmoid: {
    kind: 'sigmoid',
    axisOp: false,
    loss: 'bce_logits',
    lossReads: 'logits',
    outputs: 'per-unit probabilities',
  },
};

/** Ops that only reshape or copy an example's scores (walked through on both sides of the activation). */
const SHAPE_ONLY = new Set(['Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Dropout']);

/** Linear ops allowed between a head layer and its logits (pooling of a conv head, BN folded or not). */
const LINEAR_PATH = new Set([
  ...SHAPE_ONLY,
  'Transpose',
  'GlobalAveragePool',
  'AveragePool',
  'ReduceMean',
  'BatchNormalization',
]);

/** Elementwise ops that stay linear when their other operand is a constant (a bias or a scale). */
const WITH_CONSTANT = new Set(['Add', 'Sub', 'Mul', 'Div']);

const LAYERS = new Set(['Conv', 'Gemm', 'MatMul']);

/**
 * Whether a Softmax/LogSoftmax node normalises over all of an example's values (one score per
 * class), given its input shape: opset ≥ 13 uses one axis (the others must be 1), older opsets
 * flatten from `axis` on (the dims between the batch and `axis` must be 1).
 */
function overClasses(node: Node, shape: readonly Dim[] | undefined, opset: number): boolean {
  const legacy = opset < 13;
  const rank = shape?.length ?? 2;
  let axis = attrInt(node, 'axis', legacy ? 1 : -1);
  if (axis < 0) axis += rank;
  if (axis < 1 || axis >= rank) return false;
  if (!shape) return rank === 2;
  const rest = shape.map((d, i) => ({ d, i })).filter(({ i }) => i > 0);
  const mustBeOne = legacy ? rest.filter(({ i }) => i < axis) : rest.filter(({ i }) => i !== axis);
  return mustBeOne.every(({ d }) => d === 1);
}

/** The head behind `logits`: the linear layer reached through linear ops, or the node that is not linear. */
function headOf(graph: Graph, logits: string): Pick<OutputEnding, 'head' | 'other'> {
  const base = readAdapterState(graph) ? unload(graph) : graph;
  const prod = producers(base);
  const constant = constantLookup(base);
  let name = logits;
  const seen = new Set<string>();
  for (;;) {
    const p = prod.get(name);
    if (!p || seen.has(p.name)) return {};
    seen.add(p.name);
    if (LAYERS.has(p.opType)) return { head: { node: p.name, op: p.opType } };
    if (LINEAR_PATH.has(p.opType) && p.inputs[0]) {
      name = p.inputs[0];
      continue;
    }
    if (WITH_CONSTANT.has(p.opType)) {
      const live = p.inputs.filter((i) => i && !constant(i));
      if (live.length === 1) {
        name = live[0]!;
        continue;
      }
    }
    return { other: { node: p.name, op: p.opType } };
  }
}

/**
 * Finds how the first graph output of `graph` ends: walking back through shape-only ops, a
 * Softmax or LogSoftmax over the class axis, or a Sigmoid, is the output activation; the head is
 * the Conv/Gemm/MatMul reached from its input through linear ops. Pure and cheap; never throws
 * for a graph whose shapes cannot be inferred (the axis check then assumes [N, C]).
 */
export function detectOutputEnding(graph: Graph): OutputEnding {
  const output = graph.outputs[0]?.name ?? '';
  const prod = producers(graph);
  let shapes: ReturnType<typeof inferShapes> | undefined;
  try {
    shapes = inferShapes(graph);
  } catch {
    shapes = undefined;
  }
  const outShape = shapes?.values.get(output)?.shape ?? graph.outputs[0]?.shape;
  const per = outShape?.slice(1);
  const units =
    per && per.every((d): d is number => typeof d === 'number')
      ? per.reduce((a, d) => a * d, 1)
      : undefined;
  const after: string[] = [];
  let name = output;
  let p = prod.get(name);
  while (p && SHAPE_ONLY.has(p.opType) && p.inputs[0] && after.length < 64) {
    after.push(p.name);
    name = p.inputs[0];
    p = prod.get(name);
  }
  const rule = p && p.domain === '' ? ACTIVATIONS[p.opType] : undefined;
  if (p && rule && p.inputs[0]) {
    const inShape = shapes?.values.get(p.inputs[0])?.shape;
    if (!rule.axisOp || overClasses(p, inShape, graph.opset)) {
      return {
        activation: rule.kind,
        node: p.name,
        output,
        logits: p.inputs[0],
        after,
        units,
        ...headOf(graph, p.inputs[0]),
      };
    }
    return {
      activation: 'none',
      output,
      logits: output,
      after: [],
      units,
      ignored: `${p.opType} '${p.name}' normalises over another axis than the classes`,
      ...headOf(graph, output),
    };
  }
  return { activation: 'none', output, logits: output, after: [], units, ...headOf(graph, output) };
}

/** The classification loss that fits an ending, and whether it reads the logits under the activation. */
export function classifierLoss(e: OutputEnding): { kind: LossKind; reads: 'logits' | 'output' } {
  if (e.activation === 'none')
    return { kind: e.units === 1 ? 'bce_logits' : 'cross_entropy', reads: 'output' };
  const r = Object.values(ACTIVATIONS).find((a) => a.kind === e.activation)!;
  return { kind: r.loss, reads: r.lossReads };
}

/**
 * The activation a loss reads through: the loss is computed on the activation's input instead of
 * the output (softmax cross-entropy under a Softmax, BCE-with-logits under a Sigmoid).
 */
export function readsThrough(kind: LossKind, e: OutputEnding): boolean {
  if (e.activation === 'none') return false;
  const r = Object.values(ACTIVATIONS).find((a) => a.kind === e.activation)!;
  return r.lossReads === 'logits' && r.loss === kind;
}

const LOSS_TEXT: Partial<Record<LossKind, string>> = {
  cross_entropy: 'softmax cross-entropy',
  nll: 'negative log-likelihood',
  bce_logits: 'binary cross-entropy',
};

/** One line for `inspect` and the run log: what the output is and how a classifier trains on it. */
export function describeEnding(e: OutputEnding): string {
  const loss = classifierLoss(e);
  const lossText = LOSS_TEXT[loss.kind] ?? loss.kind;
  const units = e.units === undefined ? '' : ` (${e.units} unit${e.units === 1 ? '' : 's'})`;
  let text: string;
  if (e.activation === 'none') {
    text = `output '${e.output}'${units} is taken as logits; classifiers train with ${lossText} on it`;
  } else {
    const r = Object.values(ACTIVATIONS).find((a) => a.kind === e.activation)!;
    const op = Object.keys(ACTIVATIONS).find((k) => ACTIVATIONS[k] === r)!;
    const on =
      loss.reads === 'logits'
        ? `on the logits under it (numerically stable)`
        : `on its log-probabilities`;
    text =
      `output '${e.output}'${units} ends in ${op} '${e.node}': classifiers train with ${lossText} ${on}; ` +
      `the exported model still outputs ${r.outputs}`;
  }
  if (e.ignored) text += `; ${e.ignored}`;
  if (e.other)
    text += `; the scores come from ${e.other.op} '${e.other.node}', not a plain linear head`;
  return text;
}
