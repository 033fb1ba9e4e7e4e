/** Shape inference over a graph: every value's type and shape from the registered rules. */

import type { Dim, Graph, Node, ValueInfo } from '../graph.js';
import { GraphError, topoSort } from '../graph.js';
import { toNumbers } from '../tensor.js';
import type { ShapeResult } from './registry.js';
import { shapeRule } from './registry.js';

/** The inferred type and shape of every value, and the nodes whose op had no rule. */
export interface ShapeInfo {
  values: Map<string, ValueInfo>;
  /** Statically known integer contents (e.g. of Shape → Gather → Concat chains). */
  constants: Map<string, Dim[]>;
  unsupported: Node[];
}

/** Options of `inferShapes`. */
export interface InferOptions {
  /**
   * Best effort: a node whose rule fails (e.g. a Pad whose pads are not known yet) is listed in
   * `unsupported` and its outputs left unknown, instead of throwing. Constant folding uses this
   * to get the shape arithmetic upstream of such nodes, which is what makes them foldable.
   */
  tolerant?: boolean;
}

/**
 * Infers dtype and shape of every value in the graph, in topological order. Nodes whose op has
 * no rule are listed in `unsupported` and their outputs left unknown (callers decide whether
 * that is an error).
 */
export function inferShapes(g: Graph, opts: InferOptions = {}): ShapeInfo {
  const values = new Map<string, ValueInfo>();
  const constants = new Map<string, Dim[]>();
  for (const v of g.inputs) values.set(v.name, v);
  for (const [name, t] of g.initializers) {
    values.set(name, { name, dtype: t.dtype, shape: [...t.dims] });
    if ((t.dtype === 'int64' || t.dtype === 'int32') && t.data.length <= 64)
      constants.set(name, toNumbers(t));
  }
  // Small float constants (Resize scales written as Constant nodes, or a Concat of them, as
  // torch.onnx.export writes nn.Upsample), so `floats` sees more than initializers.
  const floatValues = new Map<string, number[]>();
  for (const [name, t] of g.initializers) {
    if (
      (t.dtype === 'float32' || t.dtype === 'float64') &&
      t.dims.length <= 1 &&
      t.data.length <= 64
    )
      floatValues.set(name, toNumbers(t));
  }
  const unsupported: Node[] = [];
  for (const node of topoSort(g)) {
    const rule = node.domain === '' ? shapeRule(node.opType) : undefined;
    const inputs = node.inputs.map((i) => (i ? values.get(i) : undefined));
    if (!rule || inputs.some((v, k) => node.inputs[k] && !v)) {
      if (!rule) unsupported.push(node);
      continue;
    }
    let res: ShapeResult;
    try {
      res = rule({
        node,
        inputs,
        value: (k) => {
          const v = node.inputs[k] ? constants.get(node.inputs[k]!) : undefined;
          return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
        },
        dims: (k) => (node.inputs[k] ? constants.get(node.inputs[k]!) : undefined),
        lookup: (name) => values.get(name),
        floats: (k) => {
          const name = node.inputs[k];
          const t = name ? g.initializers.get(name) : undefined;
          if (t) return t.data.length > 0 ? toNumbers(t) : undefined;
          const f = name ? floatValues.get(name) : undefined;
          return f && f.length > 0 ? f : undefined;
        },
      });
    } catch (e) {
      if (opts.tolerant) {
        unsupported.push(node);
        continue;
      }
      if (e instanceof GraphError) throw e;
      throw new GraphError(
        `node '${node.name}' (${node.opType}): ${(e as Error).message}`,
        node.name,
      );
    }
    if (res.unknown) {
      unsupported.push(node);
      continue;
    }
    res.outputs.forEach((o, k) => {
      const name = node.outputs[k];
      if (name) values.set(name, { name, dtype: o.dtype, shape: o.shape });
    });
    res.values?.forEach((v, k) => {
      const name = node.outputs[k];
      if (name && v) constants.set(name, v);
    });
    const f = smallFloats(node, floatValues);
    if (f && node.outputs[0]) floatValues.set(node.outputs[0], f);
  }
  return { values, constants, unsupported };
}

/** The value of a small float Constant node, or of a Concat of known small float vectors. */
function smallFloats(node: Node, known: Map<string, number[]>): number[] | undefined {
  if (node.domain !== '') return undefined;
  if (node.opType === 'Constant') {
    const a = node.attrs['value'];
    if (a?.type !== 'tensor' || a.value.dims.length > 1 || a.value.data.length > 64)
      return undefined;
    return a.value.dtype === 'float32' || a.value.dtype === 'float64'
      ? toNumbers(a.value)
      : undefined;
  }
  if (node.opType === 'Concat') {
    const parts = node.inputs.map((i) => (i ? known.get(i) : undefined));
    return parts.every((p) => p) ? (parts as number[][]).flat() : undefined;
  }
  return undefined;
}

/** Static shape of a value, or a GraphError naming it when unknown or symbolic. */
export function staticShape(info: ShapeInfo, name: string): number[] {
  const v = info.values.get(name);
  if (!v) throw new GraphError(`the shape of '${name}' could not be inferred`);
  if (v.shape.some((d) => typeof d !== 'number')) {
    throw new GraphError(
      // Derived dims carry primes (height'); shown by the name they derive from.
      `value ${name} has a symbolic shape [${v.shape.map((d) => String(d).replace(/'+$/, '')).join(',')}]; a static shape is needed here: fix the model's open input size (the CLI's --input-shape, or the data's size)`,
    );
  }
  return v.shape as number[];
}
