/**
 * Constant folding for ONNX graphs from the wild (issue #7). Exporters such as
 * `torch.onnx.export` and tf2onnx leave `Identity` nodes and shape arithmetic
 * (`Shape → Gather → Unsqueeze → Concat → Reshape`) in the graph; where the shapes are static,
 * that arithmetic is replaced here by initializers, so the layers behind it (a weight read
 * through an `Identity`, a Dense after a Keras Flatten) look like hand-written ones to the other
 * passes. Only small integer tensors are computed (shape arithmetic, never weight math), and a
 * symbolic dimension (a dynamic batch) is never treated as known: `Shape` of a tensor with a
 * dynamic batch stays, while a `Gather` that only reads its static dimensions folds.
 */

import type { Dim, Graph, Node } from '../ir/graph.js';
import {
  attrInt,
  cloneGraph,
  consumers,
  implicitInputs,
  topoSort,
  validateGraph,
} from '../ir/graph.js';
import type { ShapeInfo } from '../ir/shapes/index.js';
import { inferShapes, shapeRule } from '../ir/shapes/index.js';
import type { Tensor } from '../ir/tensor.js';
import { numel } from '../ir/tensor.js';
import { inlineConstantIfs } from './control-flow.js';
import { ADAPTER_METADATA_KEY, readAdapterState } from './quadratic-spec.js';
import { INT_TYPES, concatFloats, evaluate, make } from './fold-eval.js';

/** Largest tensor (in elements) that folding computes or creates: shape vectors are tiny. */
export const FOLD_MAX_ELEMENTS = 1024;

/** Rounds of folding after the first (each can unlock the next block's shape arithmetic). */
const FOLD_MAX_ROUNDS = 64;

/** Options of `foldConstants`. */
export interface FoldOptions {
  /** Fold only tensors of at most this many elements (default `FOLD_MAX_ELEMENTS`). */
  maxElements?: number;
}

/** What `foldConstants` did. */
export interface FoldReport {
  /**
   * Nodes folded away, by op type: `Identity` nodes removed (their readers rewired), the others
   * (`Shape`, `Gather`, `Concat`, ...) replaced by an initializer holding their value.
   */
  folded: Record<string, number>;
  /** Nodes removed because folding left all their outputs unused, by op type. */
  removed: Record<string, number>;
  /** Initializers removed because folding left them unused (e.g. a folded Gather's indices). */
  removedInitializers: string[];
}

/** The folded graph and what was folded. */
export interface FoldResult extends FoldReport {
  graph: Graph;
}

/** Ops whose output is computed when their inputs are small integer constants. */
const FOLDABLE = new Set([
  'Shape',
  'Gather',
  'Unsqueeze',
  'Squeeze',
  'Concat',
  'Slice',
  'Cast',
  'Mul',
  'Add',
  'Div',
  'Mod',
  'Sub',
  'Reshape',
  'ConstantOfShape',
  'Transpose',
]);

/** One line saying what was folded, e.g. `folded 7 constant-shape nodes (3 Gather, ...)`. */
export function describeFold(r: FoldReport): string | undefined {
  const count = (m: Record<string, number>) => Object.values(m).reduce((s, k) => s + k, 0);
  const list = (m: Record<string, number>) =>
    Object.entries(m)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([op, k]) => `${k} ${op}`)
      .join(', ');
  const n = count(r.folded);
  if (n === 0) return undefined;
  const removed = count(r.removed);
  const plural = (k: number, what: string) => `${k} ${what}${k === 1 ? '' : 's'}`;
  return [
    n > 0 ? `folded ${plural(n, 'node')} (${list(r.folded)})` : '',
    removed > 0 ? `removed ${plural(removed, 'node')} left unused (${list(r.removed)})` : '',
  ]
    .filter((x) => x)
    .join('; ');
}

/** Names the adapter record of a quadratized graph refers to: never folded, renamed or removed. */
interface Guard {
  nodes: Set<string>;
  values: Set<string>;
  initializers: Set<string>;
}

/** The adapter record's names, or undefined when the record cannot be read (fold nothing then). */
function adapterGuard(graph: Graph): Guard | undefined {
  const guard: Guard = { nodes: new Set(), values: new Set(), initializers: new Set() };
  if (!Object.hasOwn(graph.metadata, ADAPTER_METADATA_KEY)) return guard;
  try {
    const state = readAdapterState(graph)!;
    for (const t of state.targets) guard.nodes.add(t.node);
    for (const w of Object.values(state.wiring)) {
      for (const v of [w.output, w.baseOutput, w.quadOutput]) guard.values.add(v);
      guard.nodes.add(w.addNode);
      for (const n of w.nodes) guard.nodes.add(n);
      for (const i of w.initializers) guard.initializers.add(i);
    }
  } catch {
    return undefined;
  }
  return guard;
}

/**
 * Folds what is constant in an ONNX graph. Returns a new graph; the input graph is never
 * modified. The outputs (names, shapes and values) are unchanged.
 *
 * 1. `Identity` nodes are removed and their readers rewired to the Identity's input. An
 *    Identity producing a graph output is removed by giving its input's producer the output
 *    name instead; it stays when its input is a graph input, an initializer or another output.
 * 2. `Shape` of a tensor whose shape inference gives a fully static shape becomes an int64
 *    initializer. Symbolic dims (a dynamic batch) are not static: such a Shape stays, but a
 *    `Gather`/`Slice` of it that reads only static dims folds when the inference knows its value.
 * 3. `Gather`, `Unsqueeze`, `Squeeze`, `Concat`, `Slice`, `Cast`, `Mul`, `Add`, `Div`, `Sub` and
 *    `Reshape` with int32/int64 constant inputs of at most `maxElements` elements (and an integer
 *    result) are evaluated into initializers, and so are `ConstantOfShape` of an integer fill and
 *    integer `Transpose` (torch's `F.pad` pads). Float tensors are never computed, except a
 *    1-D `Concat` of float constants read only as Resize scales (torch's `interpolate`).
 * 4. Nodes and initializers left unused by the above are removed (graph inputs stay; values
 *    read inside the subgraphs of If/Loop/Scan nodes count as used), and the result is validated.
 * 5. An `If` whose condition is then a constant (an initializer, or Not/And/Or/comparisons of
 *    constants) is replaced by the branch it takes (see `inlineConstantIfs`), and the result is
 *    folded again; other `If`, `Loop` and `Scan` nodes stay as they are.
 *
 * Nodes outside the default ONNX domain, nodes producing a graph output, and the nodes and
 * values recorded by a quadratic adapter (see `quadratize`) are left as they are. Throws a
 * GraphError when the input graph is not valid.
 */
export function foldConstants(graph: Graph, opts: FoldOptions = {}): FoldResult {
  let { again, ...r } = foldOnce(graph, opts);
  // 5. An If whose condition became a constant is replaced by its taken branch, and the
  //    branch's nodes are folded in turn (nested Ifs included).
  // 6. Folding again while it can help: a node whose shape rule needed a folded value (a Pad
  //    whose pads come from shape arithmetic, one in each Swin block) is inferred on the next
  //    round, and what follows it can fold then.
  for (let round = 0; round < FOLD_MAX_ROUNDS; round++) {
    const { graph: inlined, inlined: ifs } = inlineConstantIfs(r.graph);
    if (ifs.length === 0 && !again) break;
    const { again: more, ...next } = foldOnce(inlined, opts);
    again = more;
    const add = (a: Record<string, number>, b: Record<string, number>) => {
      for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v;
      return a;
    };
    r = {
      graph: next.graph,
      folded: add(add({ ...r.folded }, ifs.length ? { If: ifs.length } : {}), next.folded),
      removed: add({ ...r.removed }, next.removed),
      removedInitializers: [...r.removedInitializers, ...next.removedInitializers].sort(),
    };
  }
  return r;
}

/**
 * One folding walk. `again`: another walk may fold more, because this one folded something and
 * its shape inference was blocked at a node whose rule failed (its input is folded now).
 */
function foldOnce(
  graph: Graph,
  { maxElements = FOLD_MAX_ELEMENTS }: FoldOptions,
): FoldResult & { again: boolean } {
  if (!Number.isSafeInteger(maxElements) || maxElements < 1) {
    throw new RangeError(
      `foldConstants: maxElements must be a positive integer, not ${maxElements}`,
    );
  }
  validateGraph(graph);
  const g = cloneGraph(graph);
  const report: FoldReport = { folded: {}, removed: {}, removedInitializers: [] };
  const guard = adapterGuard(graph);
  if (!guard) return { ...finish(g, report), again: false };
  // Shape inference is best effort here: without it only constant inputs are folded.
  const info = partialShapes(graph);
  const blocked = !!info?.unsupported.some((n) => n.domain === '' && shapeRule(n.opType));
  const graphOutputs = new Set(g.outputs.map((v) => v.name));
  const bump = (m: Record<string, number>, op: string) => (m[op] = (m[op] ?? 0) + 1);

  // 1–3: one walk in topological order; Identity outputs are renamed to their inputs.
  const rename = new Map<string, string>();
  const resolve = (name: string): string => {
    let v = name;
    for (let seen = 0; rename.has(v) && seen <= rename.size; seen++) v = rename.get(v)!;
    return v;
  };
  const constant = (name: string): Tensor | undefined => {
    const t = name ? g.initializers.get(name) : undefined;
    return t && INT_TYPES.has(t.dtype) && t.data.length <= maxElements ? t : undefined;
  };
  const readers = consumers(graph);
  const scalesOnly = (v: string) =>
    (readers.get(v) ?? []).every(
      (r) => r.opType === 'Resize' && r.inputs.indexOf(v) === 2 && r.inputs.lastIndexOf(v) === 2,
    ) && readers.has(v);
  const kept: Node[] = [];
  const dropped: Node[] = [];
  for (const n of topoSort(g)) {
    n.inputs = n.inputs.map((i) => (i ? resolve(i) : i));
    const out = n.outputs[0];
    const eligible =
      n.domain === '' &&
      !guard.nodes.has(n.name) &&
      n.outputs.length === 1 &&
      !!out &&
      !graphOutputs.has(out) &&
      !guard.values.has(out);
    if (eligible && n.opType === 'Identity' && n.inputs.length === 1 && n.inputs[0]) {
      rename.set(out, n.inputs[0]);
      bump(report.folded, 'Identity');
      dropped.push(n);
      continue;
    }
    if (eligible && n.opType === 'Concat' && scalesOnly(out)) {
      // Resize scales as torch writes them (Concat of float constants): the shape rule and the
      // opset upgrade need them constant. Only this float computation is done, and only here.
      const value = concatFloats(n, g, maxElements);
      if (value) {
        g.initializers.set(out, value);
        bump(report.folded, n.opType);
        dropped.push(n);
        continue;
      }
    }
    if (eligible && FOLDABLE.has(n.opType)) {
      let value: Tensor | undefined;
      try {
        value = evaluate(n, constant, maxElements) ?? inferred(n, info, maxElements);
      } catch {
        value = undefined; // a malformed node is left for the runtime to report
      }
      if (value) {
        g.initializers.set(out, value);
        bump(report.folded, n.opType);
        dropped.push(n);
        continue;
      }
    }
    kept.push(n);
  }

  // 1 (graph outputs): the producer of an output-Identity's input takes the output's name.
  const inputNames = new Set(g.inputs.map((v) => v.name));
  for (const n of [...kept]) {
    if (n.opType !== 'Identity' || n.domain !== '' || n.inputs.length !== 1) continue;
    if (n.outputs.length !== 1 || guard.nodes.has(n.name)) continue;
    const [x, y] = [n.inputs[0]!, n.outputs[0]!];
    if (!graphOutputs.has(y) || guard.values.has(x) || guard.values.has(y)) continue;
    if (!x || graphOutputs.has(x) || inputNames.has(x) || g.initializers.has(x)) continue;
    const producer = kept.find((p) => p !== n && p.outputs.includes(x));
    if (!producer || guard.nodes.has(producer.name)) continue;
    producer.outputs = producer.outputs.map((o) => (o === x ? y : o));
    for (const c of kept) c.inputs = c.inputs.map((i) => (i === x ? y : i));
    kept.splice(kept.indexOf(n), 1);
    bump(report.folded, 'Identity');
  }

  // 4: whatever the folded nodes read and nothing reads any more.
  const uses = new Map<string, number>();
  const use = (name: string, k: number) => {
    if (name) uses.set(name, (uses.get(name) ?? 0) + k);
  };
  for (const n of kept) for (const i of [...n.inputs, ...implicitInputs(n)]) use(i, 1);
  for (const o of graphOutputs) use(o, 1);
  const producerOf = new Map<string, Node>();
  for (const n of kept) for (const o of n.outputs) if (o) producerOf.set(o, n);
  const removedNodes = new Set<Node>();
  const work = [...dropped.flatMap((n) => n.inputs.map(resolve))];
  while (work.length > 0) {
    const v = work.pop()!;
    if (!v || (uses.get(v) ?? 0) > 0) continue;
    if (g.initializers.has(v)) {
      if (!guard.initializers.has(v)) {
        g.initializers.delete(v);
        if (graph.initializers.has(v)) report.removedInitializers.push(v);
      }
      continue;
    }
    const p = producerOf.get(v);
    if (!p || removedNodes.has(p) || p.domain !== '' || guard.nodes.has(p.name)) continue;
    if (p.outputs.some((o) => o && (uses.get(o) ?? 0) > 0)) continue;
    removedNodes.add(p);
    bump(report.removed, p.opType);
    for (const i of p.inputs) {
      use(i, -1);
      work.push(i);
    }
  }
  // Folded values nobody reads (e.g. a Shape whose Gathers all folded) are not kept either.
  for (const n of dropped) {
    const o = n.outputs[0]!;
    if (n.opType !== 'Identity' && (uses.get(o) ?? 0) === 0 && g.initializers.has(o))
      g.initializers.delete(o);
  }
  g.nodes = kept.filter((n) => !removedNodes.has(n));
  report.removedInitializers.sort();
  return { ...finish(g, report), again: blocked && Object.keys(report.folded).length > 0 };
}

function finish(g: Graph, report: FoldReport): FoldResult {
  validateGraph(g);
  return { graph: g, ...report };
}

/**
 * `foldConstants` as the ONNX importer applies it: a graph that does not validate is returned
 * as decoded, so that it fails later with the message it always had.
 */
export function foldOnImport(g: Graph): { graph: Graph; report?: FoldReport } {
  try {
    validateGraph(g);
  } catch {
    return { graph: g };
  }
  const { graph, ...report } = foldConstants(g);
  return { graph, report };
}

// ---------------------------------------------------------------------------------------------
// The value of a node from the shape inference (static dims read through a Shape).

/**
 * Shape inference of as much of the graph as it can follow: a node whose rule fails (e.g. a
 * Pad whose pads come from shape arithmetic, in every Swin block) is left unknown, and so is
 * what depends on it; everything else is inferred. Undefined when even that fails.
 */
function partialShapes(graph: Graph): ShapeInfo | undefined {
  try {
    return inferShapes(graph, { tolerant: true });
  } catch {
    return undefined;
  }
}

function inferred(n: Node, info: ShapeInfo | undefined, max: number): Tensor | undefined {
  if (!info) return undefined;
  const out = n.outputs[0]!;
  const vi = info.values.get(out);
  if (!vi || !INT_TYPES.has(vi.dtype) || !isStatic(vi.shape)) return undefined;
  let values: Dim[] | undefined;
  if (n.opType === 'Shape') {
    // Computed from the input's inferred shape, with opset-15 start/end clamped as ONNX does.
    const x = info.values.get(n.inputs[0]!);
    if (!x || !isStatic(x.shape)) return undefined;
    const r = x.shape.length;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
    values = x.shape.slice(clamp(attrInt(n, 'start', 0)), clamp(attrInt(n, 'end', r)));
  } else values = info.constants.get(out);
  if (!values || !isStatic(values) || values.length > max) return undefined;
  if (values.length !== numel(vi.shape)) return undefined;
  if (!values.every((v) => Number.isSafeInteger(v))) return undefined;
  return make(
    vi.dtype,
    vi.shape,
    values.map((v) => BigInt(v)),
  );
}

function isStatic(dims: readonly Dim[]): dims is number[] {
  return dims.every((d) => typeof d === 'number');
}
