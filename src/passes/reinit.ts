/**
 * Re-initialisation for the from-scratch baselines, and the head layer's parameters for
 * head-only fine-tuning.
 *
 * `reinitialize` gives every layer PyTorch's default initialisation, so a "trained from scratch"
 * run starts where a freshly constructed PyTorch model would:
 * - Conv, Gemm and MatMul weights (constant initializers): uniform ±1/√fan_in, with fan_in =
 *   Cin/group·∏k for a Conv weight [Cout, Cin/group, k...], n for a Gemm/MatMul n → m (the Gemm's
 *   transB convention is honoured). This is `kaiming_uniform_(a = √5)`, PyTorch's default.
 * - Their biases: uniform ±1/√fan_in of the layer (a Conv's or Gemm's third input, and a
 *   MatMul's bias: the Add right after it with a constant operand, as `nn.Linear` channels-last).
 * - BatchNormalization: scale 1, bias 0, running mean 0, running variance 1;
 *   LayerNormalization and InstanceNormalization: scale 1, bias 0.
 * - Quadratic parameters of a quadratized graph: A, B and U uniform ±1/√fan_in of each factor
 *   (U: fan_in = r), γ = 1. Unlike `quadratize`, U is NOT zero: a from-scratch quadratic network
 *   has no pretrained function to preserve, and a zero U would make it start as the plain
 *   first-order network of the same size. Both factors random lets the branch learn from step 0
 *   on both sides (with U = 0, A and B get no gradient at the first step).
 *
 * Other constants (shape tensors, Constant-node weights, other elementwise operands) are left as
 * they are. Every parameter is drawn from its own stream, seeded by `seed` and the parameter's
 * name, so the result does not depend on the node order and the same seed gives the same
 * weights.
 */

import type { Graph, Node } from '../ir/graph.js';
import { attrInt, cloneGraph, consumers, GraphError } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { numel } from '../ir/tensor.js';
import { Rng } from '../util/random.js';
import { unload } from './adapter.js';
import type { AdapterState, QuadTargetSpec } from './quadratic-spec.js';
import { readAdapterState } from './quadratic-spec.js';
import { quadHandler } from './quadratic-handlers.js';
import { constantLookup, findHeads } from './targets.js';
import { requireVariant } from './variants/index.js';

/** Options of `reinitialize`. */
export interface ReinitOptions {
  /** Seed of the random draws (with each parameter's name). */
  seed: number;
  /**
   * `all` (default): every layer above, and the quadratic parameters if any; `quadratic-random`:
   * only the quadratic parameters (all factors random, U ≠ 0), the base network untouched (a
   * pretrained base with a randomly started quadratic branch; needs a quadratized graph).
   */
  scope?: 'all' | 'quadratic-random';
}

/** A 32-bit seed for one parameter: FNV-1a of its name mixed with the global seed. */
function paramSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0) ^ Math.floor(seed / 2 ** 32);
  const key = `reinit:${name}`;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Fan-in of a weight in ONNX layout: Conv [O, I/g, k...], Gemm per transB, MatMul [n, m]. */
function fanIn(op: string, dims: readonly number[], transB: number): number {
  if (op === 'Conv') return numel(dims.slice(1));
  if (op === 'Gemm') return transB ? dims[1]! : dims[0]!;
  return dims[0]!;
}

/** The rewrite being built: checks dtypes and never writes a parameter twice. */
class Writer {
  readonly done = new Set<string>();
  constructor(
    readonly g: Graph,
    readonly seed: number,
  ) {}

  private target(name: string): Tensor | undefined {
    if (!name || this.done.has(name)) return undefined;
    const t = this.g.initializers.get(name);
    if (!t) return undefined;
    if (t.dtype !== 'float32' && t.dtype !== 'float64')
      throw new GraphError(
        `parameter '${name}' is ${t.dtype}; reinitialize supports float32 and float64 only`,
      );
    this.done.add(name);
    return t;
  }

  uniform(name: string, bound: number): void {
    const t = this.target(name);
    if (!t) return;
    const rng = new Rng(paramSeed(this.seed, name));
    const n = numel(t.dims);
    const data = t.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = rng.uniform(-bound, bound);
    this.g.initializers.set(name, { dtype: t.dtype, dims: [...t.dims], data });
  }

  fill(name: string | undefined, value: number): void {
    const t = this.target(name ?? '');
    if (!t) return;
    const n = numel(t.dims);
    const data = t.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
    data.fill(value);
    this.g.initializers.set(name!, { dtype: t.dtype, dims: [...t.dims], data });
  }
}

/** Re-draws the quadratic parameters of every target (U random, per-channel ones at their init). */
function reinitQuadratic(w: Writer, state: AdapterState): void {
  for (const t of state.targets) {
    const channel = requireVariant(t.phi).channelParams ?? [];
    for (const p of t.params) {
      const c = channel.find((x) => x.role === p.role);
      if (c) w.fill(p.name, c.init);
      else w.uniform(p.name, 1 / Math.sqrt(fanIn(t.op, p.shape, t.transB ?? 0)));
    }
  }
}

/** The output of a layer as its consumers see it (after the quadratic Add when it is a target). */
function layerOutput(node: Node, state: AdapterState | undefined): string {
  return state?.wiring[node.name]?.output ?? node.outputs[0]!;
}

/**
 * A copy of `graph` with PyTorch's default initialisation (see the module comment): names,
 * shapes, dtypes, nodes and metadata unchanged, only initializer values re-drawn. Pure; the same
 * seed gives the same weights.
 */
export function reinitialize(graph: Graph, { seed, scope = 'all' }: ReinitOptions): Graph {
  if (!Number.isSafeInteger(seed))
    throw new GraphError(`reinitialize: seed must be a whole number, not ${seed}`);
  if (scope !== 'all' && scope !== 'quadratic-random')
    throw new GraphError(
      `reinitialize: scope must be 'all' or 'quadratic-random', not '${String(scope)}'`,
    );
  const state = readAdapterState(graph);
  const g = cloneGraph(graph);
  const w = new Writer(g, seed);
  if (scope === 'quadratic-random') {
    if (!state)
      throw new GraphError(
        `reinitialize: scope 'quadratic-random' needs a quadratized graph; '${graph.name}' has no quadratic adapter`,
      );
    reinitQuadratic(w, state);
    return g;
  }
  if (state) reinitQuadratic(w, state);
  const adapterNodes = new Set(Object.values(state?.wiring ?? {}).flatMap((x) => x.nodes));
  const uses = consumers(g);
  const constant = constantLookup(g);
  for (const node of g.nodes) {
    if (adapterNodes.has(node.name) || node.domain !== '') continue;
    const ins = node.inputs;
    switch (node.opType) {
      case 'Conv':
      case 'Gemm':
      case 'MatMul': {
        const weight = g.initializers.get(ins[1] ?? '');
        if (!weight || !quadHandler(node)) break;
        const transB = attrInt(node, 'transB', 0);
        const bound = 1 / Math.sqrt(fanIn(node.opType, weight.dims, transB));
        w.uniform(ins[1]!, bound);
        if (node.opType !== 'MatMul') {
          if (ins[2]) w.uniform(ins[2], bound);
          break;
        }
        // A MatMul's bias is the constant operand of the one Add that reads its output.
        const next = uses.get(layerOutput(node, state)) ?? [];
        if (next.length === 1 && next[0]!.opType === 'Add') {
          const bias = next[0]!.inputs.filter((i) => i && constant(i));
          if (bias.length === 1) w.uniform(bias[0]!, bound);
        }
        break;
      }
      case 'BatchNormalization':
        w.fill(ins[1], 1);
        w.fill(ins[2], 0);
        w.fill(ins[3], 0);
        w.fill(ins[4], 1);
        break;
      case 'LayerNormalization':
      case 'InstanceNormalization':
        w.fill(ins[1], 1);
        w.fill(ins[2], 0);
        break;
    }
  }
  return g;
}

/** Elementwise ops between a head and its output whose constant operand belongs to the head. */
const BIAS_OPS = new Set(['Add', 'Sub', 'Mul', 'Div']);

/**
 * Initializer names of the head: the Conv/Gemm/MatMul layer whose output reaches a graph output
 * through pass-through ops (as `quadratize` finds it), its weight and bias, and the constant
 * operands of the ops between it and the output (a MatMul's bias Add). For head-only
 * fine-tuning. On a quadratized graph the head is found on the base graph, and the head's
 * quadratic parameters are included when the head is a target. Throws a GraphError when no
 * graph output comes from such a layer.
 */
export function headParams(graph: Graph): string[] {
  const state = readAdapterState(graph);
  const base = state ? unload(graph) : graph;
  const constant = constantLookup(base);
  const paths = new Map<string, Node[]>();
  const heads = findHeads(
    base,
    (n) => !!quadHandler(n),
    (name) => !!constant(name),
    paths,
  );
  if (heads.size === 0)
    throw new GraphError(
      `graph '${graph.name}': no graph output is produced by a Conv, Gemm or MatMul layer (through pass-through ops); cannot tell the head`,
    );
  const out: string[] = [];
  const add = (name: string | undefined) => {
    const t = name ? base.initializers.get(name) : undefined;
    if (t && (t.dtype === 'float32' || t.dtype === 'float64') && !out.includes(name!))
      out.push(name!);
  };
  const byName = new Map(base.nodes.map((n) => [n.name, n] as const));
  for (const head of heads.keys()) {
    for (const i of byName.get(head)!.inputs.slice(1)) add(i);
    for (const n of [...paths.get(head)!].reverse())
      if (BIAS_OPS.has(n.opType)) for (const i of n.inputs) add(i);
    const spec: QuadTargetSpec | undefined = state?.targets.find((t) => t.node === head);
    if (spec) for (const p of spec.params) if (!out.includes(p.name)) out.push(p.name);
  }
  return out;
}
