/**
 * Parameters and FLOPs per Conv/Gemm/MatMul layer, split into the base layer and its quadratic
 * term, so the inference overhead of the quadratic terms is measured and reported, never hidden
 * (DESIGN.md §3).
 *
 * Convention: one multiply-add is 2 FLOPs (a Conv, Gemm or MatMul costs 2·MACs); every other
 * elementwise op (bias add, Add, Sub, Mul, Neg, Exp, ...) costs 1 FLOP per output element,
 * transcendental or not; reshapes and copies cost 0. FLOPs are per forward pass at the given
 * batch size.
 */

import type { Graph, Node } from '../ir/graph.js';
import { attrInt, cloneGraph, GraphError } from '../ir/graph.js';
import type { ShapeInfo } from '../ir/shapes/index.js';
import { inferShapes, staticShape } from '../ir/shapes/index.js';
import { numel } from '../ir/tensor.js';
import { readAdapterState } from './quadratic-spec.js';
import { quadHandler } from './quadratic-handlers.js';
import { constantLookup } from './targets.js';

/** Parameters and forward FLOPs of one piece of a model. */
export interface Cost {
  /** Number of parameters (elements of constant weights and biases). */
  params: number;
  /** Forward FLOPs at the accounting's batch size (2 per multiply-add). */
  flops: number;
}

/** One Conv/Gemm/MatMul layer. */
export interface LayerAccount {
  /** Node name of the base layer. */
  node: string;
  /** Op type. */
  op: string;
  /** Weight name, when the weight is a named value. */
  weight?: string;
  /** Output shape of the base layer at the accounting's batch size. */
  outputShape: number[];
  /** The base layer: its weight (and bias for Conv/Gemm; a MatMul's separate bias Add is not part of it). */
  base: Cost;
  /** The quadratic term (A, B, φ, U and the Add) when the layer has one, as it costs when enabled. */
  quadratic?: Cost;
}

/** Per-layer and total costs of a model. */
export interface ModelAccount {
  /** Batch size the FLOPs are computed for. */
  batchSize: number;
  /** Every base Conv/Gemm/MatMul, in graph order. */
  layers: LayerAccount[];
  /** Sums over `layers`. */
  totals: { base: Cost; quadratic: Cost };
  /** The FLOP convention, in words, for reports. */
  convention: string;
}

/** Options of `accountLayers`. */
export interface AccountOptions {
  /** Batch size substituted for a symbolic first dimension of the graph inputs (default 1). */
  batchSize?: number;
  /**
   * Dims after the batch of the first input, in the model's layout (e.g. [3, 224, 224]): sets
   * its open (symbolic) height and width, so a fully convolutional model with an open input
   * size is costed at that resolution. A fixed dim must be given as it is.
   */
  inputShape?: readonly number[];
}

/** Computes a node's forward FLOPs from static shapes. */
export type FlopRule = (node: Node, shape: (name: string) => number[]) => number;

const out0 = (n: Node, shape: (name: string) => number[]) => numel(shape(n.outputs[0]!));
const elementwise: FlopRule = out0;
const free: FlopRule = () => 0;

const flopRules = new Map<string, FlopRule>([
  [
    'Conv',
    (n, shape) => {
      const w = shape(n.inputs[1]!);
      const outs = out0(n, shape);
      // Each output element is a dot product over Cin/group × kernel inputs.
      return 2 * outs * numel(w.slice(1)) + (n.inputs[2] ? outs : 0);
    },
  ],
  [
    'Gemm',
    (n, shape) => {
      const a = shape(n.inputs[0]!);
      const k = attrInt(n, 'transA', 0) ? a[0]! : a[1]!;
      const outs = out0(n, shape);
      return 2 * outs * k + (n.inputs[2] ? outs : 0);
    },
  ],
  [
    'MatMul',
    (n, shape) => {
      const a = shape(n.inputs[0]!);
      return 2 * out0(n, shape) * a[a.length - 1]!;
    },
  ],
  ...['Add', 'Sub', 'Mul', 'Div', 'Neg', 'Exp', 'Relu', 'Sigmoid', 'Tanh', 'Gelu', 'Sqrt'].map(
    (op) => [op, elementwise] as [string, FlopRule],
  ),
  // Data movement only (the quadratic term's Concat of its A and B kernels and the Split of
  // their outputs among them).
  ...['Reshape', 'Identity', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Concat', 'Split'].map(
    (op) => [op, free] as [string, FlopRule],
  ),
]);

/** Registers (or replaces) the FLOP rule of an op type. */
export function registerFlopRule(opType: string, rule: FlopRule): void {
  flopRules.set(opType, rule);
}

/** Forward FLOPs of one node (throws a GraphError for an op without a rule or a symbolic shape). */
export function nodeFlops(node: Node, shapes: ShapeInfo): number {
  const rule = flopRules.get(node.opType);
  if (!rule)
    throw new GraphError(
      `node '${node.name}' (${node.opType}): no FLOP rule for this op`,
      node.name,
    );
  return rule(node, (name) => staticShape(shapes, name));
}

/**
 * Parameters and FLOPs of every base Conv/Gemm/MatMul and of its quadratic term (read from the
 * adapter record of a quadratized graph; none for a plain graph), with totals. Shapes come from
 * `inferShapes` with the symbolic batch dimension set to `batchSize` and open input dims set to
 * `inputShape`. Throws a GraphError when an input dim is still open.
 */
export function accountLayers(
  graph: Graph,
  { batchSize = 1, inputShape }: AccountOptions = {},
): ModelAccount {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new GraphError(`batch size must be a whole number ≥ 1, not ${batchSize}`);
  const g = cloneGraph(graph);
  for (const v of g.inputs) if (typeof v.shape[0] === 'string') v.shape[0] = batchSize;
  const first = g.inputs[0];
  if (inputShape && first) {
    const fixed = first.shape.slice(1);
    if (
      fixed.length !== inputShape.length ||
      fixed.some((d, i) => typeof d === 'number' && d !== inputShape[i])
    ) {
      throw new GraphError(
        `input shape [${inputShape.join(',')}] does not fit input '${first.name}' [${first.shape.join(',')}] (dims after the batch; only open dims may be set)`,
      );
    }
    first.shape = [first.shape[0]!, ...inputShape];
  }
  for (const v of g.inputs) {
    if (v.shape.some((d) => typeof d !== 'number')) {
      throw new GraphError(
        `input '${v.name}' has an open size [${v.shape.join(',')}]; FLOPs need a resolution: give inputShape (the CLI's --input-shape, e.g. ${v.shape
          .slice(1)
          .map((d) => (typeof d === 'number' ? d : 224))
          .join('x')})`,
      );
    }
  }
  const shapes = inferShapes(g);
  const constant = constantLookup(g);
  const state = readAdapterState(g);
  const adapterNodes = new Set<string>();
  for (const w of Object.values(state?.wiring ?? {})) for (const n of w.nodes) adapterNodes.add(n);
  const targets = new Map((state?.targets ?? []).map((t) => [t.node, t] as const));
  const byName = new Map(g.nodes.map((n) => [n.name, n] as const));

  const layers: LayerAccount[] = [];
  const totals = { base: { params: 0, flops: 0 }, quadratic: { params: 0, flops: 0 } };
  for (const node of g.nodes) {
    if (adapterNodes.has(node.name) || !quadHandler(node)) continue;
    // Weights and biases are the constant inputs after the data input.
    let params = 0;
    for (const i of node.inputs.slice(1)) {
      const t = constant(i);
      if (t) params += numel(t.dims);
    }
    const layer: LayerAccount = {
      node: node.name,
      op: node.opType,
      weight: node.inputs[1] || undefined,
      outputShape: staticShape(shapes, node.outputs[0]!),
      base: { params, flops: nodeFlops(node, shapes) },
    };
    const t = targets.get(node.name);
    if (t && state) {
      const w = state.wiring[node.name]!;
      let flops = 0;
      for (const name of w.nodes) {
        const n = byName.get(name);
        // The Add is counted as an Add even while the adapter is disabled (an Identity then):
        // this reports what the term costs when it is used.
        if (n) flops += n.name === w.addNode ? numel(layer.outputShape) : nodeFlops(n, shapes);
      }
      layer.quadratic = { params: t.params.reduce((s, p) => s + numel(p.shape), 0), flops };
      totals.quadratic.params += layer.quadratic.params;
      totals.quadratic.flops += layer.quadratic.flops;
    }
    totals.base.params += layer.base.params;
    totals.base.flops += layer.base.flops;
    layers.push(layer);
  }
  return {
    batchSize,
    layers,
    totals,
    convention:
      '1 multiply-add = 2 FLOPs (Conv, Gemm, MatMul); 1 FLOP per output element for elementwise ops (bias, Add, Mul, Sub, Neg, Exp); reshapes free',
  };
}
