import { GraphBuilder } from '../ir/builder.js';
import type { Graph, Node } from '../ir/graph.js';
import { cloneGraph, GraphError, implicitInputs, topoSort } from '../ir/graph.js';
import type { ShapeInfo } from '../ir/shapes/index.js';
import { inferShapes, staticShape } from '../ir/shapes/index.js';
import type { DType } from '../ir/tensor.js';
import { scalar } from '../ir/tensor.js';
import type { GradContext, GradForms } from './registry.js';
import { DEFAULT_GRAD_FORMS, gradientRule } from './registry.js';
import type { RecomputeSegment } from './recompute.js';
import { applyRecompute } from './recompute.js';
import './rules/index.js';

/** What to differentiate. */
export interface BackwardOptions {
  /** Name of the scalar loss value. */
  loss: string;
  /** Values (parameters or inputs) whose gradients are wanted. */
  wrt: readonly string[];
  /** Prefix for the names of emitted gradient nodes. */
  prefix?: string;
  /** Forward segments to recompute in the backward pass instead of keeping their activations. */
  recompute?: readonly RecomputeSegment[];
  /** Alternative gradient forms (measurements and tests); default: the fastest measured. */
  forms?: GradForms;
}

/** The forward graph extended with gradient nodes, and each wanted value's gradient name. */
export interface BackwardResult {
  graph: Graph;
  grads: Map<string, string>;
  shapes: ShapeInfo;
}

const FLOAT_TYPES: DType[] = ['float32', 'float64', 'float16'];

/**
 * Reverse-mode differentiation over the IR. Only nodes on a path from a `wrt` value to the loss
 * get gradient nodes (so frozen parameters cost nothing). Needs static shapes. Throws a
 * GraphError naming the node when an op on that path has no gradient rule.
 */
export function backward(forward: Graph, opts: BackwardOptions): BackwardResult {
  const forms = { ...DEFAULT_GRAD_FORMS, ...opts.forms };
  const g = cloneGraph(forward);
  const shapes = inferShapes(g);
  const order = topoSort(g);
  const b = new GraphBuilder(g, opts.prefix ?? 'grad/');

  // Values that depend on a wrt value (forward reachability)... Integer and bool outputs
  // (Shape, Size, ArgMax, NonZero, Equal and the other comparisons, a Cast to int) carry no
  // gradient, so the path stops there: such ops never need a rule.
  const dependent = new Set(opts.wrt);
  const carries = (v: string) => {
    const t = shapes.values.get(v)?.dtype;
    return t === undefined || FLOAT_TYPES.includes(t);
  };
  // Control flow (If/Loop/Scan) reads values of this graph inside its subgraphs as well.
  const reads = (n: Node) => [...n.inputs, ...implicitInputs(n)];
  for (const n of order) {
    if (reads(n).some((i) => i && dependent.has(i)))
      for (const o of n.outputs) if (o && carries(o)) dependent.add(o);
  }
  // ...and nodes that lead to the loss (backward reachability).
  const reachesLoss = new Set<string>([opts.loss]);
  const active: Node[] = [];
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    if (!n.outputs.some((o) => o && reachesLoss.has(o) && dependent.has(o))) continue;
    active.push(n);
    for (const i of reads(n)) if (i) reachesLoss.add(i);
  }
  // Control flow on the path is refused first (its outputs may have no inferred shape).
  for (const n of active) {
    if (n.domain === '' && ['If', 'Loop', 'Scan'].includes(n.opType) && !gradientRule(n.opType)) {
      throw new GraphError(
        `node '${n.name}' (${n.opType}) is control flow that was not folded on import (only an If with a constant condition is); quadranet cannot train through it: adapt only layers after it (--targets) or re-export the model without it`,
        n.name,
      );
    }
  }
  if (!dependent.has(opts.loss)) {
    throw new GraphError(
      `the loss '${opts.loss}' does not depend on any of the values to differentiate`,
    );
  }

  const pending = new Map<string, string[]>();
  const push = (name: string, grad: string): void => {
    const list = pending.get(name);
    if (list) list.push(grad);
    else pending.set(name, [grad]);
  };
  const collect = (name: string): string | undefined => {
    const list = pending.get(name);
    if (!list || list.length === 0) return undefined;
    if (list.length === 1) return list[0];
    const sum = b.op('Sum', list, {}, { name: `sum_${name}` });
    pending.set(name, [sum]);
    return sum;
  };

  const lossInfo = shapes.values.get(opts.loss);
  const lossDtype = lossInfo?.dtype ?? 'float32';
  const lossShape = staticShape(shapes, opts.loss);
  if (lossShape.length > 0 && lossShape.some((d) => d !== 1)) {
    throw new GraphError(
      `the loss '${opts.loss}' must be a scalar, not of shape [${lossShape.join(',')}]`,
    );
  }
  push(opts.loss, b.constant({ ...scalar(1, lossDtype), dims: lossShape }, 'dloss'));

  for (const node of active) {
    const rule = gradientRule(node.opType);
    if (!rule || node.domain !== '') {
      throw new GraphError(
        `node '${node.name}' (${node.opType}) has no gradient rule; freeze the layers before it or replace the op`,
        node.name,
      );
    }
    const dOut = node.outputs.map((o) => (o ? collect(o) : undefined));
    if (dOut.every((d) => d === undefined)) continue;
    const floatDtype =
      node.inputs
        .map((i) => shapes.values.get(i)?.dtype)
        .find((t) => t && FLOAT_TYPES.includes(t)) ?? 'float32';
    const ctx: GradContext = {
      b,
      node,
      forms,
      shape: (name) => staticShape(shapes, name),
      dtype: (name) => {
        const v = shapes.values.get(name);
        if (!v) throw new GraphError(`the type of '${name}' could not be inferred`);
        return v.dtype;
      },
      needs: (i) => {
        const name = node.inputs[i];
        return (
          !!name &&
          dependent.has(name) &&
          FLOAT_TYPES.includes(shapes.values.get(name)?.dtype ?? 'int64')
        );
      },
      scalar: (v) => b.scalar(v, floatDtype),
    };
    const dIn = rule(ctx, dOut);
    node.inputs.forEach((name, i) => {
      const d = dIn[i];
      if (name && d && ctx.needs(i)) push(name, d);
    });
  }

  if (opts.recompute?.length) {
    applyRecompute(
      g,
      b,
      forward.nodes.length,
      opts.recompute,
      (v) => pending.get(v)?.[0],
      (v) => shapes.values.get(v)?.dtype ?? 'float32',
    );
  }

  const grads = new Map<string, string>();
  for (const w of opts.wrt) {
    const d = collect(w);
    if (d) {
      grads.set(w, d);
      continue;
    }
    // A value with no path to the loss has a zero gradient.
    const info = shapes.values.get(w);
    if (!info) throw new GraphError(`'${w}' is not a value of the graph`);
    const shape = staticShape(shapes, w);
    grads.set(
      w,
      b.op(
        'ConstantOfShape',
        [b.ints(shape)],
        { value: { ...scalar(0, info.dtype), dims: [1] } },
        { name: `zero_${w}` },
      ),
    );
  }
  return { graph: g, grads, shapes };
}
