/**
 * Normalises what exporters write for training into the inference form the other passes expect
 * (issue #12): `torch.onnx.export(..., training=TrainingMode.TRAINING, do_constant_folding=False)`
 * writes BatchNormalization with its running-statistic outputs, Dropout with a constant-true
 * `training_mode`, and Linear layers as `MatMul(x, Transpose(W))`. A registry of rules keyed by
 * op type; the imported model computes what the exported one computes in inference (PyTorch's
 * `eval()`), and a train step puts BatchNormalization and Dropout back into training mode itself
 * (`setTrainingMode`).
 *
 * A weight read through `Transpose` or a float `Cast` of an initializer that nothing else reads
 * is stored transposed (cast) under the initializer's own name, so the layer sees a constant
 * weight and adapter parameters keep the name the exporter gave the weight (`fc.weight.quad_a`):
 * the same name PyTorch's state_dict uses. Its layout is then the reader's (MatMul: in × out);
 * the report lists every such initializer with its permutation.
 */

import type { Graph, Node } from '../ir/graph.js';
import {
  attrInt,
  attrInts,
  cloneGraph,
  consumers,
  GraphError,
  uniqueName,
  usedNames,
} from '../ir/graph.js';
import type { DType, Tensor } from '../ir/tensor.js';
import { allocate, cloneTensor, dtypeFromOnnx } from '../ir/tensor.js';

/** An initializer now stored in the layout (dtype) its reader saw through a folded node. */
export interface FoldedWeight {
  /** Initializer name (unchanged). */
  name: string;
  /** The op folded into it. */
  op: 'Transpose' | 'Cast';
  /** Transpose: the permutation applied (new dims[i] = old dims[perm[i]]). */
  perm?: number[];
  /** Cast: the dtype it was converted to. */
  to?: DType;
}

/** An initializer the exporter merged from equal tensors, given one copy per reader. */
export interface UntiedInitializer {
  /** Initializer name (kept by its first reader). */
  name: string;
  /** Node inputs that read it, so copies made = readers − 1. */
  readers: number;
}

/** What `normalizeExport` did. */
export interface NormalizeReport {
  /** Nodes put from their training form into inference form, by op type. */
  inference: Record<string, number>;
  /** Initializers that absorbed a Transpose or Cast node. */
  folded: FoldedWeight[];
  /** Initializers of one repeated value read by several nodes, untied on import (`untieMerged`). */
  untied: UntiedInitializer[];
}

/** The normalised graph and what was done. */
export interface NormalizeResult {
  graph: Graph;
  report: NormalizeReport;
}

/** What a rule sees. */
interface NormalizeContext {
  graph: Graph;
  /** Readers of each value in the graph as given to the pass. */
  readers: Map<string, Node[]>;
  /** Names of the graph outputs. */
  outputs: Set<string>;
  /** Makes every reader of `from` read `to` instead (for a node that is dropped). */
  rename(from: string, to: string): void;
  report: NormalizeReport;
}

/** A rule: rewrites `n` in place and returns true to keep it, or false to drop it. */
type NormalizeRule = (n: Node, ctx: NormalizeContext) => boolean;

const rules = new Map<string, NormalizeRule>();

/** Registers the normalisation rule of an op type. */
function registerNormalizer(opType: string, rule: NormalizeRule): void {
  rules.set(opType, rule);
}

/** Whether `normalizeExport` changed anything (a report worth showing). */
export function normalizedAnything(report: NormalizeReport): boolean {
  return (
    Object.keys(report.inference).length > 0 || report.folded.length > 0 || report.untied.length > 0
  );
}

/** One line, or undefined when nothing was done. */
export function describeNormalize(r: NormalizeReport): string | undefined {
  const parts: string[] = [];
  const inf = Object.entries(r.inference).sort((a, b) => a[0].localeCompare(b[0]));
  if (inf.length)
    parts.push(
      `training-mode nodes put in inference form (${inf.map(([op, k]) => `${k} ${op}`).join(', ')})`,
    );
  const t = r.folded.filter((f) => f.op === 'Transpose');
  const c = r.folded.filter((f) => f.op === 'Cast');
  const names = (fs: FoldedWeight[]) =>
    fs.length <= 4
      ? fs.map((f) => f.name).join(', ')
      : `${fs
          .slice(0, 3)
          .map((f) => f.name)
          .join(', ')} and ${fs.length - 3} more`;
  if (t.length) parts.push(`${t.length} weight(s) stored transposed (${names(t)})`);
  if (c.length) parts.push(`${c.length} weight(s) stored cast (${names(c)})`);
  const u = r.untied;
  if (u.length) {
    const copies = u.reduce((k, x) => k + x.readers - 1, 0);
    const list =
      u.length <= 3 ? u.map((x) => x.name).join(', ') : `${u[0]!.name} and ${u.length - 1} more`;
    parts.push(
      `${u.length} initializer(s) the exporter merged from equal tensors (one repeated value, read by several layers) given ${copies} copies, so the layers train apart (${list})`,
    );
  }
  return parts.length ? parts.join('; ') : undefined;
}

function fail(n: Node, msg: string): never {
  throw new GraphError(`node '${n.name}' (${n.opType}): ${msg}`, n.name);
}

/**
 * Puts training-form BatchNormalization and Dropout nodes into inference form and folds
 * `Transpose`/`Cast` of initializers into them (see the module comment). Returns a new graph;
 * the input is never modified. Throws a GraphError naming the node when a running-statistic
 * output is read (the model would not be an inference model).
 */
export function normalizeExport(graph: Graph): NormalizeResult {
  const g = cloneGraph(graph);
  const report: NormalizeReport = { inference: {}, folded: [], untied: [] };
  const renames = new Map<string, string>();
  const ctx: NormalizeContext = {
    graph: g,
    readers: consumers(graph),
    outputs: new Set(graph.outputs.map((v) => v.name)),
    rename: (from, to) => renames.set(from, to),
    report,
  };
  const kept: Node[] = [];
  for (const n of g.nodes) {
    const rule = n.domain === '' ? rules.get(n.opType) : undefined;
    if (!rule || rule(n, ctx)) kept.push(n);
  }
  // Folded nodes never produce a graph output (see soleWeight), so only readers are renamed.
  for (const n of kept) n.inputs = n.inputs.map((i) => renames.get(i) ?? i);
  g.nodes = kept;
  // A constant training flag nobody reads any more goes with its reader.
  const still = consumers(g);
  for (const n of graph.nodes) {
    if (n.opType !== 'Dropout') continue;
    const flag = n.inputs[2];
    if (flag && !still.has(flag) && g.initializers.get(flag)?.dtype === 'bool')
      g.initializers.delete(flag);
  }
  return { graph: g, report };
}

const FLOATS = new Set<DType>(['float32', 'float64', 'float16']);

/** Whether every element of a float tensor is the same (NaN never is). */
function oneValue(t: Tensor): boolean {
  const d = t.data as ArrayLike<number>;
  for (let i = 1; i < d.length; i++) if (d[i] !== d[0]) return false;
  return d.length > 0 && d[0] === d[0];
}

/**
 * Exporters merge initializers of equal value: torch.onnx.export in eval mode gave a freshly
 * initialised DenseNet one zero tensor for 62 biases, and its BatchNorm scales the same tensor
 * of ones as their running variances. Trained as they are, those layers would be tied together,
 * which PyTorch never did. A float initializer (2+ elements) that holds one repeated value and
 * is read by several node inputs keeps its name for the first reader and gets a copy for each
 * other. A tensor of varied values stays shared: that is weight tying, and it is meant. Runs
 * after constant folding, since torch reads the merged tensor through Identity nodes. Pure: the
 * input graph is returned as it is when nothing is merged, else a changed copy.
 */
export function untieMerged(graph: Graph): { graph: Graph; untied: UntiedInitializer[] } {
  // Readers by node index and input slot, found on the input graph: a copy is made only when
  // something is merged (cloneGraph keeps the node order).
  const readers = new Map<string, [number, number][]>();
  graph.nodes.forEach((node, j) =>
    node.inputs.forEach((i, k) => {
      if (!i || !graph.initializers.has(i)) return;
      const list = readers.get(i);
      if (list) list.push([j, k]);
      else readers.set(i, [[j, k]]);
    }),
  );
  const merged = [...readers].filter(([name, rs]) => {
    const t = graph.initializers.get(name)!;
    return rs.length > 1 && FLOATS.has(t.dtype) && t.data.length > 1 && oneValue(t);
  });
  if (merged.length === 0) return { graph, untied: [] };
  const g = cloneGraph(graph);
  const names = usedNames(g);
  for (const [name, rs] of merged) {
    for (const [j, k] of rs.slice(1)) {
      const copy = uniqueName(names, name);
      g.initializers.set(copy, cloneTensor(g.initializers.get(name)!));
      g.nodes[j]!.inputs[k] = copy;
    }
  }
  return { graph: g, untied: merged.map(([name, rs]) => ({ name, readers: rs.length })) };
}

const bump = (ctx: NormalizeContext, op: string) =>
  (ctx.report.inference[op] = (ctx.report.inference[op] ?? 0) + 1);

/** Whether a value is read by a node or is a graph output. */
const used = (ctx: NormalizeContext, v: string | undefined) =>
  !!v && (ctx.readers.has(v) || ctx.outputs.has(v));

registerNormalizer('BatchNormalization', (n, ctx) => {
  if (attrInt(n, 'training_mode', 0) === 0 && n.outputs.length <= 1) return true;
  for (const o of n.outputs.slice(1)) {
    if (used(ctx, o))
      fail(
        n,
        `its running-statistic output '${o}' is used, so this is a training graph, not a model; export the model in inference mode`,
      );
  }
  n.outputs = [n.outputs[0]!];
  delete n.attrs['training_mode'];
  bump(ctx, 'BatchNormalization');
  return true;
});

registerNormalizer('Dropout', (n, ctx) => {
  const flag = n.inputs[2];
  const t = flag ? ctx.graph.initializers.get(flag) : undefined;
  // A training flag fed at run time is the user's switch: left alone.
  if (flag && !t) return true;
  let changed = false;
  if (t) {
    n.inputs = n.inputs.slice(0, 2);
    while (n.inputs.length > 1 && n.inputs[n.inputs.length - 1] === '') n.inputs.pop();
    changed = true;
  }
  if (n.outputs.length > 1 && !used(ctx, n.outputs[1])) {
    n.outputs = [n.outputs[0]!];
    changed = true;
  }
  if (changed) bump(ctx, 'Dropout');
  return true;
});

/** The initializer `n` reads as its only input, when `n` is its only reader and may be folded. */
function soleWeight(n: Node, ctx: NormalizeContext): Tensor | undefined {
  const w = n.inputs[0];
  const t = w ? ctx.graph.initializers.get(w) : undefined;
  if (!t || (t.dtype !== 'float32' && t.dtype !== 'float64')) return undefined;
  if ((ctx.readers.get(w!) ?? []).length !== 1 || ctx.outputs.has(w!)) return undefined;
  if (n.outputs.length !== 1 || ctx.outputs.has(n.outputs[0]!)) return undefined;
  return t;
}

registerNormalizer('Transpose', (n, ctx) => {
  const t = soleWeight(n, ctx);
  if (!t) return true;
  const rank = t.dims.length;
  const perm = attrInts(n, 'perm') ?? [...Array(rank).keys()].reverse();
  if (perm.length !== rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) return true;
  ctx.graph.initializers.set(n.inputs[0]!, transpose(t, perm));
  ctx.rename(n.outputs[0]!, n.inputs[0]!);
  ctx.report.folded.push({ name: n.inputs[0]!, op: 'Transpose', perm });
  return false;
});

registerNormalizer('Cast', (n, ctx) => {
  const t = soleWeight(n, ctx);
  const to = dtypeFromOnnx(attrInt(n, 'to', 0));
  if (!t || (to !== 'float32' && to !== 'float64')) return true;
  const data = allocate(to, t.data.length);
  (data as Float32Array | Float64Array).set(t.data as Float32Array | Float64Array);
  ctx.graph.initializers.set(n.inputs[0]!, { dtype: to, dims: [...t.dims], data });
  ctx.rename(n.outputs[0]!, n.inputs[0]!);
  ctx.report.folded.push({ name: n.inputs[0]!, op: 'Cast', to });
  return false;
});

/** `t` transposed by `perm` (row-major; new dims[i] = dims[perm[i]]). */
export function transpose(t: Tensor, perm: readonly number[]): Tensor {
  const dims = perm.map((p) => t.dims[p]!);
  const inStrides = stridesOf(t.dims);
  const outStrides = stridesOf(dims);
  const n = t.data.length;
  const data = allocate(t.dtype, n) as Float32Array | Float64Array;
  const src = t.data as Float32Array | Float64Array;
  for (let o = 0; o < n; o++) {
    let rem = o;
    let i = 0;
    for (let a = 0; a < dims.length; a++) {
      const c = Math.floor(rem / outStrides[a]!);
      rem -= c * outStrides[a]!;
      i += c * inStrides[perm[a]!]!;
    }
    data[o] = src[i]!;
  }
  return { dtype: t.dtype, dims, data };
}

function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let a = dims.length - 2; a >= 0; a--) s[a] = s[a + 1]! * dims[a + 1]!;
  return s;
}
