/**
 * The usual transfer-learning step for a new class count: the classifier head (the Conv, Gemm or
 * MatMul whose output reaches the graph output through bias, pooling, reshape and activation ops)
 * is replaced by a freshly initialised one of the new width. Everything after it keeps working:
 * per-class bias/scale constants are resized, Reshape targets that name the class count are
 * rewritten, and the graph output gets the new shape. Parameter names stay the same (so adapter
 * files can store the new head under its old names, with the new shapes).
 */

import type { Graph, Node } from '../ir/graph.js';
import { attrInt, cloneGraph, consumers, GraphError, producers } from '../ir/graph.js';
import { inferShapes } from '../ir/shapes/index.js';
import type { Tensor } from '../ir/tensor.js';
import { numel, tensor } from '../ir/tensor.js';
import { Rng } from '../util/random.js';
import { readAdapterState } from './quadratic-spec.js';
import { constantLookup } from './targets.js';

/** Options of `replaceHead`. */
export interface ReplaceHeadOptions {
  /** Output units (classes) of the new head. */
  numClasses: number;
  /** Seed of the new head's initialisation (PyTorch's default: uniform ±1/√fan_in). */
  seed: number;
}

/** What `replaceHead` changed. */
export interface HeadReplacement {
  /** The head layer's node name and op. */
  node: string;
  op: string;
  /** Output units before and after. */
  from: number;
  to: number;
  /** Float initializers that were re-created with the new width (weight, bias, per-class constants). */
  params: string[];
}

/** Ops walked through between the head layer and the graph output. */
const PATH = new Set([
  'Identity',
  'Reshape',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Dropout',
  'Softmax',
  'LogSoftmax',
  'Sigmoid',
  'GlobalAveragePool',
]);

/** Elementwise ops on the path whose constant operand is per class: a bias (re-drawn) or a scale (set to 1). */
const PER_CLASS: Record<string, 'bias' | 'scale'> = {
  Add: 'bias',
  Sub: 'bias',
  Mul: 'scale',
  Div: 'scale',
};

/** A 32-bit seed from the global seed and a parameter name (FNV-1a), so draws do not depend on order. */
function paramSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  const key = `head:${name}`;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function fail(graph: Graph, msg: string): never {
  throw new GraphError(`graph '${graph.name}': ${msg}`);
}

/** `t` with `axis` resized to `n`, filled uniformly in ±bound (or with `fill`). */
function resized(
  t: Tensor,
  axis: number,
  n: number,
  rng: Rng,
  bound: number,
  fill?: number,
): Tensor {
  const dims = t.dims.map((d, i) => (i === axis ? n : d));
  const size = numel(dims);
  const data = t.dtype === 'float64' ? new Float64Array(size) : new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = fill ?? rng.uniform(-bound, bound);
  return { dtype: t.dtype, dims, data };
}

/**
 * Replaces the head of `graph` by a new one with `numClasses` outputs (see the module comment).
 * Pure; validates everything before changing the copy. Throws a GraphError naming the node at
 * fault when the output is not reached from a Conv/Gemm/MatMul through ops it can resize, or
 * when the graph already carries a quadratic adapter (replace the head first, then quadratize).
 */
export function replaceHead(
  graph: Graph,
  { numClasses, seed }: ReplaceHeadOptions,
): { graph: Graph; report: HeadReplacement } {
  if (!Number.isSafeInteger(numClasses) || numClasses < 1)
    fail(graph, `the new head needs a whole number of classes ≥ 1, not ${numClasses}`);
  if (readAdapterState(graph))
    fail(graph, 'replace the head before adding the quadratic adapter, not after');
  const out = graph.outputs[0];
  if (!out) fail(graph, 'the model has no output');
  const prod = producers(graph);
  const uses = consumers(graph);
  const constant = constantLookup(graph);
  const path: Node[] = [];
  let name = out.name;
  let head: Node | undefined;
  for (;;) {
    const p = prod.get(name);
    if (!p) fail(graph, `output '${out.name}' is not computed by a Conv, Gemm or MatMul head`);
    if (p.opType === 'Conv' || p.opType === 'Gemm' || p.opType === 'MatMul') {
      head = p;
      break;
    }
    if (PATH.has(p.opType) && p.inputs[0]) {
      path.push(p);
      name = p.inputs[0];
      continue;
    }
    const live = p.inputs.filter((i) => i && !constant(i));
    if (PER_CLASS[p.opType] && live.length === 1) {
      path.push(p);
      name = live[0]!;
      continue;
    }
    fail(
      graph,
      `the output comes from ${p.opType} '${p.name}', not from a Conv, Gemm or MatMul head (through bias, pooling, reshape and activation ops); a new head cannot be put there`,
    );
  }
  const weightName = head.inputs[1] ?? '';
  const w = graph.initializers.get(weightName);
  if (!w || (w.dtype !== 'float32' && w.dtype !== 'float64'))
    fail(graph, `head '${head.name}' (${head.opType}) has no float weight initializer`);
  const transB = attrInt(head, 'transB', 0);
  let outAxis: number;
  let fanIn: number;
  if (head.opType === 'Conv') {
    if (attrInt(head, 'group', 1) !== 1)
      fail(graph, `head '${head.name}' is a grouped Conv; a new head needs group 1`);
    outAxis = 0;
    fanIn = numel(w.dims.slice(1));
  } else {
    if (w.dims.length !== 2)
      fail(graph, `head '${head.name}' (${head.opType}) has a ${w.dims.length}-D weight`);
    outAxis = head.opType === 'Gemm' && transB ? 0 : 1;
    fanIn = w.dims[1 - outAxis]!;
  }
  const from = w.dims[outAxis]!;
  const shapes = inferShapes(graph);
  const per = shapes.values.get(out.name)?.shape.slice(1);
  const units =
    per && per.every((d): d is number => typeof d === 'number')
      ? per.reduce((a, d) => a * d, 1)
      : undefined;
  if (units !== undefined && units !== from)
    fail(
      graph,
      `output '${out.name}' holds ${units} values per example but head '${head.name}' has ${from} outputs; a new head fits classifiers with one score per class`,
    );
  const shared = (v: string) => (uses.get(v)?.length ?? 0) > 1;
  if (shared(weightName))
    fail(graph, `head weight '${weightName}' is shared with other layers; it cannot be replaced`);

  // Plan every change first (validation before mutation), then apply it to a copy.
  const bound = 1 / Math.sqrt(fanIn);
  const params = new Map<string, Tensor>();
  params.set(
    weightName,
    resized(w, outAxis, numClasses, new Rng(paramSeed(seed, weightName)), bound),
  );
  const resizePerClass = (v: string, kind: 'bias' | 'scale', where: Node) => {
    const t = constant(v);
    // A scalar broadcasts to any width (with one unit, a [1] constant is per class).
    if (!t || t.dims.length === 0 || (numel(t.dims) === 1 && from !== 1)) return;
    const axis = t.dims.lastIndexOf(from);
    if (
      axis < 0 ||
      numel(t.dims) !== from ||
      !graph.initializers.has(v) ||
      (t.dtype !== 'float32' && t.dtype !== 'float64')
    )
      fail(
        graph,
        `'${v}' of ${where.opType} '${where.name}' after the head has shape [${t.dims.join(',')}]; only per-class float initializers can be resized`,
      );
    if (shared(v)) fail(graph, `'${v}' after the head is shared with other nodes`);
    const rng = new Rng(paramSeed(seed, v));
    params.set(v, resized(t, axis, numClasses, rng, bound, kind === 'scale' ? 1 : undefined));
  };
  if (head.opType !== 'MatMul' && head.inputs[2]) resizePerClass(head.inputs[2], 'bias', head);
  const shapeEdits: { node: Node; input: number; value: number[] }[] = [];
  for (const n of path) {
    const kind = PER_CLASS[n.opType];
    if (kind) for (const i of n.inputs) if (i && constant(i)) resizePerClass(i, kind, n);
    if (n.opType === 'Reshape' && n.inputs[1]) {
      const s = constant(n.inputs[1]);
      if (!s) fail(graph, `Reshape '${n.name}' after the head has a computed target shape`);
      const dims = Array.from(s.data as ArrayLike<number | bigint>, Number);
      const hits = dims.flatMap((d, i) => (d === from ? [i] : []));
      if (hits.length > 1)
        fail(graph, `Reshape '${n.name}' after the head names ${from} more than once`);
      if (hits.length === 1)
        shapeEdits.push({
          node: n,
          input: 1,
          value: dims.map((d, i) => (i === hits[0] ? numClasses : d)),
        });
    }
  }

  const g = cloneGraph(graph);
  for (const [k, t] of params) g.initializers.set(k, t);
  const byName = new Map(g.nodes.map((n) => [n.name, n] as const));
  for (const e of shapeEdits) {
    let fresh = `${e.node.inputs[e.input]}_classes${numClasses}`;
    while (g.initializers.has(fresh)) fresh += '_';
    g.initializers.set(fresh, tensor('int64', [e.value.length], e.value));
    const old = e.node.inputs[e.input]!;
    byName.get(e.node.name)!.inputs[e.input] = fresh;
    if (!shared(old)) g.initializers.delete(old);
  }
  const inferred = inferShapes(g).values.get(out.name);
  const newOut = g.outputs[0]!;
  if (inferred) {
    // Keep symbolic dims (the batch) as named; take the rest from inference.
    newOut.shape = inferred.shape.map((d, i) =>
      typeof newOut.shape[i] === 'string' ? newOut.shape[i]! : d,
    );
  } else {
    newOut.shape = newOut.shape.map((d, i) =>
      i === newOut.shape.length - 1 && d === from ? numClasses : d,
    );
  }
  const after = newOut.shape.slice(1);
  if (after.every((d) => typeof d === 'number') && numel(after as number[]) !== numClasses)
    fail(
      g,
      `after replacing head '${head.name}' the output has shape [${newOut.shape.join(',')}], not ${numClasses} values per example`,
    );
  return {
    graph: g,
    report: { node: head.name, op: head.opType, from, to: numClasses, params: [...params.keys()] },
  };
}
