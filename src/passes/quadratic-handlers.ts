/**
 * Per-op handlers of the quadratic pass, keyed by op type (like PEFT's layer dispatchers): each
 * knows how to tell whether a node can be adapted, how to size its quadratic term
 * (DESIGN.md §3) and how to emit that term with standard ONNX ops. Adding an op type means
 * registering one handler; the pass itself has no per-op branches.
 */

import type { GraphBuilder } from '../ir/builder.js';
import type { Graph, Node } from '../ir/graph.js';
import { attrInt } from '../ir/graph.js';
import type { ShapeInfo } from '../ir/shapes/index.js';
import { convOutSize, convParams } from '../ir/shapes/index.js';
import type { Tensor } from '../ir/tensor.js';
import type {
  QuadLayerKind,
  QuadMode,
  QuadOp,
  QuadParamSpec,
  QuadPhi,
  QuadRole,
  QuadTargetSpec,
} from './quadratic-spec.js';
import { QuadratizeError } from './quadratic-spec.js';
import { requireVariant } from './variants/index.js';

/** What a handler may look at while inspecting or planning a node. */
export interface HandlerContext {
  graph: Graph;
  /** Shapes of the graph before any change. */
  shapes: ShapeInfo;
  /** The value of a constant (initializer or Constant node output), or undefined. */
  constant(name: string): Tensor | undefined;
}

/** Whether a node can be adapted: its weight and kind, or why not. */
export interface Inspection {
  /** Name of the weight value, when one was identified (also for refused nodes, for reports). */
  weight?: string;
  /** Layer kind when adaptable. */
  kind?: QuadLayerKind;
  /** Why the node cannot be adapted (absent when it can). */
  refusal?: string;
}

/** The settings one target is planned with (after defaults and per-target overrides). */
export interface TargetSettings {
  mode: QuadMode;
  /** Rank r (ignored in neuron mode). */
  rank: number;
  phi: QuadPhi;
  /** User kq: one value for every spatial axis, or one per axis; default: the atrous rule. */
  kernelSize?: number | readonly number[];
  /** User dq: one value for every spatial axis, or one per axis; default: the atrous rule. */
  dilation?: number | readonly number[];
}

/** A planned target: its spec plus what initialisation needs. */
export interface PlannedTarget {
  spec: QuadTargetSpec;
  /** Fan-in of A and B (Kaiming-uniform bound √(6 / fanIn)). */
  fanIn: number;
}

/** What `emit` receives: a builder on the copy being built, the node and its parameter names. */
export interface EmitContext {
  b: GraphBuilder;
  node: Node;
  spec: QuadTargetSpec;
  /** Initializer name of a parameter role (throws for a role the spec does not have). */
  param(role: QuadRole): string;
}

/** One op type's quadratic handler. */
export interface QuadHandler {
  /** Decides whether `node` can be adapted (never throws for unsupported nodes: it explains). */
  inspect(node: Node, ctx: HandlerContext): Inspection;
  /**
   * Sizes the quadratic term of an adaptable node. Throws a QuadratizeError naming the node
   * when the settings cannot be applied to it (e.g. a kq/dq that needs fractional padding).
   */
  plan(
    node: Node,
    weight: Tensor,
    kind: QuadLayerKind,
    s: TargetSettings,
    ctx: HandlerContext,
  ): PlannedTarget;
  /** Emits Q(x) (without the final Add) and returns its value name. */
  emit(ctx: EmitContext): string;
}

function fail(node: Node, msg: string): never {
  throw new QuadratizeError(`node '${node.name}' (${node.opType}): ${msg}`, node.name);
}

const FLOAT_WEIGHTS = new Set(['float32', 'float64']);

/** Common checks of the weight operand: present, constant, floating point. */
function inspectWeight(
  node: Node,
  index: number,
  ctx: HandlerContext,
): Inspection & { w?: Tensor } {
  const weight = node.inputs[index];
  if (!weight) return { refusal: 'has no weight input' };
  const w = ctx.constant(weight);
  if (!w) return { weight, refusal: 'weight is not a constant' };
  if (!FLOAT_WEIGHTS.has(w.dtype))
    return { weight, refusal: `weight dtype ${w.dtype} not supported (float32/float64 only)` };
  return { weight, w };
}

function param(role: QuadRole, weight: string, shape: number[]): QuadParamSpec {
  return { role, name: `${weight}.${role}`, shape };
}

/**
 * Parameters common to every op: A, B (shape `ab`; only when φ reads B), U (lowrank), then the
 * variant's per-channel parameters (`branch` channels), in `QUAD_ROLES` order.
 */
function params(
  weight: string,
  s: TargetSettings,
  ab: number[],
  u: number[],
  branch: number,
): QuadParamSpec[] {
  const v = requireVariant(s.phi);
  const out = [param('quad_a', weight, ab)];
  if (v.usesB) out.push(param('quad_b', weight, [...ab]));
  if (s.mode === 'lowrank') out.push(param('quad_u', weight, u));
  for (const c of v.channelParams ?? []) out.push(param(c.role, weight, [branch]));
  return out;
}

/**
 * φ(A(x), B(x)) by the target's variant. `channelShape` reshapes a per-channel parameter to
 * broadcast over the channel axis (e.g. [1, C, 1, 1] for NCHW; undefined when it already
 * broadcasts: last axis). `branch(role)` emits A(x) or B(x) (B only when φ reads it, so a linear
 * term has no B branch at all).
 */
export function emitPhi(
  ctx: EmitContext,
  branch: (role: 'quad_a' | 'quad_b') => string,
  channelShape: number[] | undefined,
): string {
  const v = requireVariant(ctx.spec.phi);
  const a = branch('quad_a');
  const b = v.usesB ? branch('quad_b') : undefined;
  return v.emit({ b: ctx.b, param: ctx.param, channelShape }, a, b);
}

/**
 * `branch` for emitPhi where A and B see the same input through the same op: one op over
 * Concat(A, B) (along `weightAxis`, their output-channel axis; onnxruntime folds the Concat of
 * constant weights) and a Split of its output along `outAxis`. One op with 2r outputs instead of
 * two with r: the adapted bench CNN (rank 4) measured 1.3–1.6× the original's inference time
 * instead of 1.75–2.8× with two thin convs. A variant without B: A alone, unsplit.
 */
function fusedBranches(
  ctx: EmitContext,
  run: (weight: string, name: string) => string,
  weightAxis: number,
  outAxis: number,
): (role: 'quad_a' | 'quad_b') => string {
  const { b, spec } = ctx;
  if (!requireVariant(spec.phi).usesB) return (role) => run(ctx.param(role), role.slice(5));
  let pair: string[] | undefined;
  return (role) => {
    if (!pair) {
      const a = ctx.param('quad_a');
      const r = b.graph.initializers.get(a)!.dims[weightAxis]!;
      const ab = run(b.concat([a, ctx.param('quad_b')], weightAxis), 'ab');
      pair = b.opN('Split', [ab, b.ints([r, r])], { axis: outAxis }, { name: 'split', outputs: 2 });
    }
    return pair[role === 'quad_a' ? 0 : 1]!;
  };
}

/** Expands a user kq/dq (one number or one per axis) to `n` axes. */
function perAxis(
  node: Node,
  v: number | readonly number[] | undefined,
  n: number,
  what: string,
): number[] | undefined {
  if (v === undefined) return undefined;
  const arr = typeof v === 'number' ? new Array<number>(n).fill(v) : [...v];
  if (arr.length !== n)
    fail(node, `${what} has ${arr.length} values but the convolution has ${n} spatial axes`);
  return arr;
}

/**
 * Conv: A and B are Convs Cin → g·r (groups g, kernel kq, dilation dq, the base stride, pads that
 * centre their window on the base window); U is a 1×1 Conv g·r → Cout with groups g. For groups 1
 * this is DESIGN.md's dense case and for groups = Cin = Cout the depthwise case (channel
 * multiplier r); other group counts get rank r per group, the same construction.
 */
const convHandler: QuadHandler = {
  inspect(node, ctx) {
    const r = inspectWeight(node, 1, ctx);
    if (r.refusal) return r;
    const w = r.w!;
    if (w.dims.length < 3)
      return { weight: r.weight, refusal: `weight of rank ${w.dims.length} is not a conv kernel` };
    const x = ctx.shapes.values.get(node.inputs[0] ?? '');
    if (!x)
      return { weight: r.weight, refusal: 'input shape unknown (an earlier op has no shape rule)' };
    if (x.shape.length !== w.dims.length) {
      return {
        weight: r.weight,
        refusal: `input of rank ${x.shape.length} does not match the kernel`,
      };
    }
    const g = attrInt(node, 'group', 1);
    const cin = w.dims[1]! * g;
    const cout = w.dims[0]!;
    if (g < 1 || cout % g !== 0) return { weight: r.weight, refusal: `invalid group count ${g}` };
    const kind: QuadLayerKind =
      g === 1 ? 'conv' : g === cin && cout === cin ? 'depthwise' : 'grouped';
    return { weight: r.weight, kind };
  },

  plan(node, w, kind, s, ctx) {
    const x = ctx.shapes.values.get(node.inputs[0]!)!;
    const n = w.dims.length - 2;
    const { kernel, strides, dilations, pads } = convParams(node, x, w.dims);
    const group = attrInt(node, 'group', 1);
    if (kernel.length !== n || kernel.some((k, i) => k !== w.dims[i + 2]))
      fail(
        node,
        `kernel_shape [${kernel.join(',')}] does not match the weight [${w.dims.join(',')}]`,
      );
    const userK = perAxis(node, s.kernelSize, n, 'kernelSize');
    const userD = perAxis(node, s.dilation, n, 'dilation');
    const kq: number[] = [];
    const dq: number[] = [];
    for (let i = 0; i < n; i++) {
      const k = kernel[i]!;
      const d = dilations[i]!;
      // Atrous default (lowrank): an odd k > 3 becomes 3×3 with dilation d·(k−1)/2, the same
      // receptive field for far fewer weights. Neuron mode keeps the layer's own kernel
      // ("A, B have the shape of L") unless the user sets kq/dq.
      const atrous = s.mode === 'lowrank' && k > 3 && k % 2 === 1;
      kq.push(userK?.[i] ?? (atrous ? 3 : k));
      dq.push(userD?.[i] ?? (atrous ? (d * (k - 1)) / 2 : d));
    }
    for (let i = 0; i < n; i++) {
      if (!Number.isInteger(kq[i]) || kq[i]! < 1)
        fail(node, `quadratic kernel size ${kq[i]} must be a whole number ≥ 1`);
      if (!Number.isInteger(dq[i]) || dq[i]! < 1)
        fail(node, `quadratic dilation ${dq[i]} must be a whole number ≥ 1`);
    }
    // Centre the branch window on the base window: both have the same centre offset when
    // pad_q = pad − ((k−1)·d − (kq−1)·dq)/2 per side, which also gives the same output size.
    const qpads = [...pads];
    for (let i = 0; i < n; i++) {
      const delta = (kernel[i]! - 1) * dilations[i]! - (kq[i]! - 1) * dq[i]!;
      if (delta % 2 !== 0) {
        fail(
          node,
          `quadratic kernel ${kq[i]} with dilation ${dq[i]} on spatial axis ${i} needs padding ` +
            `${pads[i]! - delta / 2} per side (not a whole number): (k−1)·d − (kq−1)·dq = ` +
            `${(kernel[i]! - 1) * dilations[i]!} − ${(kq[i]! - 1) * dq[i]!} must be even; ` +
            `choose another kq/dq or exclude this layer`,
        );
      }
      for (const j of [i, i + n]) {
        qpads[j] = pads[j]! - delta / 2;
        if (qpads[j]! < 0) {
          fail(
            node,
            `quadratic kernel ${kq[i]} with dilation ${dq[i]} on spatial axis ${i} would need ` +
              `negative padding ${qpads[j]} (its window is wider than the base window ` +
              `${(kernel[i]! - 1) * dilations[i]! + 1} plus its padding); choose a smaller kq/dq`,
          );
        }
      }
    }
    // Defensive: the branch must produce exactly y0's spatial shape.
    for (let i = 0; i < n; i++) {
      const size = x.shape[i + 2]!;
      const base = convOutSize(
        size,
        kernel[i]!,
        strides[i]!,
        dilations[i]!,
        pads[i]!,
        pads[i + n]!,
      );
      const quad = convOutSize(size, kq[i]!, strides[i]!, dq[i]!, qpads[i]!, qpads[i + n]!);
      if (base !== quad)
        fail(node, `quadratic branch output size ${quad} differs from the layer's ${base}`);
    }
    const cinPerGroup = w.dims[1]!;
    const cout = w.dims[0]!;
    const rank = s.mode === 'lowrank' ? s.rank : null;
    const branch = rank === null ? cout : group * rank;
    const ab = [branch, cinPerGroup, ...kq];
    const spec: QuadTargetSpec = {
      node: node.name,
      op: 'Conv',
      kind,
      weight: node.inputs[1]!,
      mode: s.mode,
      rank,
      phi: s.phi,
      kq,
      dq,
      strides: [...strides],
      pads: qpads,
      group,
      params: params(node.inputs[1]!, s, ab, [cout, rank ?? 0, ...kq.map(() => 1)], branch),
    };
    return { spec, fanIn: cinPerGroup * kq.reduce((p, k) => p * k, 1) };
  },

  emit(ctx) {
    const { b, node, spec } = ctx;
    const x = node.inputs[0]!;
    const attrs = {
      kernel_shape: spec.kq!,
      strides: spec.strides!,
      pads: spec.pads!,
      dilations: spec.dq!,
      group: spec.group!,
    };
    const ones = spec.kq!.map(() => 1);
    // Grouped and depthwise kernels would interleave A's and B's groups: two Convs there.
    const one = (w: string, name: string) => b.op('Conv', [x, w], attrs, { name });
    const p = emitPhi(
      ctx,
      spec.group === 1
        ? fusedBranches(ctx, one, 0, 1)
        : (role) => one(ctx.param(role), role.slice(5)),
      [1, -1, ...ones],
    );
    if (spec.mode === 'neuron') return p;
    return b.op(
      'Conv',
      [p, ctx.param('quad_u')],
      { kernel_shape: ones, group: spec.group! },
      { name: 'u' },
    );
  },
};

/**
 * Gemm (y0 = α·op(X)·op(W) + β·C): A(x) = op(X)·op(A), B likewise, Q = φ(A(x), B(x))·op(U), with
 * A, B and U stored in the base layer's transB convention (transB = 1: A, B are r×n, U is m×r;
 * transB = 0: A, B are n×r, U is r×m). α and β scale only the base term: the quadratic term is a
 * separate learned function and starts at zero whatever α is.
 */
const gemmHandler: QuadHandler = {
  inspect(node, ctx) {
    const r = inspectWeight(node, 1, ctx);
    if (r.refusal) return r;
    if (r.w!.dims.length !== 2) return { weight: r.weight, refusal: 'weight is not a matrix' };
    if (ctx.constant(node.inputs[0] ?? ''))
      return { weight: r.weight, refusal: 'input is a constant' };
    return { weight: r.weight, kind: 'gemm' };
  },

  plan(node, w, kind, s) {
    const transA = attrInt(node, 'transA', 0);
    const transB = attrInt(node, 'transB', 0);
    const [n, m] = transB ? [w.dims[1]!, w.dims[0]!] : [w.dims[0]!, w.dims[1]!];
    const rank = s.mode === 'lowrank' ? s.rank : null;
    const r = rank ?? m;
    const ab = rank === null ? [...w.dims] : transB ? [r, n] : [n, r];
    const u = transB ? [m, r] : [r, m];
    const spec: QuadTargetSpec = {
      node: node.name,
      op: 'Gemm',
      kind,
      weight: node.inputs[1]!,
      mode: s.mode,
      rank,
      phi: s.phi,
      transA,
      transB,
      params: params(node.inputs[1]!, s, ab, u, r),
    };
    return { spec, fanIn: n };
  },

  emit(ctx) {
    const { b, node, spec } = ctx;
    const x = node.inputs[0]!;
    const attrs = { transA: spec.transA ? 1 : undefined, transB: spec.transB ? 1 : undefined };
    const one = (w: string, name: string) => b.op('Gemm', [x, w], attrs, { name });
    const p = emitPhi(ctx, fusedBranches(ctx, one, spec.transB ? 0 : 1, 1), undefined);
    if (spec.mode === 'neuron') return p;
    return b.op(
      'Gemm',
      [p, ctx.param('quad_u')],
      { transB: spec.transB ? 1 : undefined },
      { name: 'u' },
    );
  },
};

/**
 * MatMul (y0 = x @ W, W an n×m constant, x of any rank ≥ 1 with batch axes): A, B are n×r,
 * U is r×m (neuron: A, B are n×m), Q = φ(x @ A, x @ B) @ U.
 */
const matmulHandler: QuadHandler = {
  inspect(node, ctx) {
    const left = node.inputs[0] ?? '';
    const right = node.inputs[1] ?? '';
    const lc = ctx.constant(left);
    const rc = ctx.constant(right);
    if (lc && !rc)
      return {
        weight: left,
        refusal: 'weight is the left operand (W @ x); only x @ W is supported',
      };
    const r = inspectWeight(node, 1, ctx);
    if (r.refusal) return r;
    if (lc) return { weight: r.weight, refusal: 'input is a constant' };
    if (r.w!.dims.length !== 2)
      return { weight: r.weight, refusal: `weight of rank ${r.w!.dims.length} is not a matrix` };
    return { weight: r.weight, kind: 'matmul' };
  },

  plan(node, w, kind, s) {
    const [n, m] = [w.dims[0]!, w.dims[1]!];
    const rank = s.mode === 'lowrank' ? s.rank : null;
    const r = rank ?? m;
    const spec: QuadTargetSpec = {
      node: node.name,
      op: 'MatMul',
      kind,
      weight: node.inputs[1]!,
      mode: s.mode,
      rank,
      phi: s.phi,
      params: params(node.inputs[1]!, s, [n, r], [r, m], r),
    };
    return { spec, fanIn: n };
  },

  emit(ctx) {
    const { b, node, spec } = ctx;
    const x = node.inputs[0]!;
    // Not fused as Conv and Gemm are: a Split along the last axis of a large N-d activation
    // (ConvNeXt's channels-last pointwise layers) measured slower than a second MatMul.
    const p = emitPhi(
      ctx,
      (role) => b.op('MatMul', [x, ctx.param(role)], {}, { name: role.slice(5) }),
      undefined,
    );
    if (spec.mode === 'neuron') return p;
    return b.op('MatMul', [p, ctx.param('quad_u')], {}, { name: 'u' });
  },
};

const handlers = new Map<string, QuadHandler>([
  ['Conv', convHandler],
  ['Gemm', gemmHandler],
  ['MatMul', matmulHandler],
]);

/** Registers (or replaces) the quadratic handler of an op type. */
export function registerQuadHandler(opType: string, handler: QuadHandler): void {
  handlers.set(opType, handler);
}

/** The handler of an op type in the default domain, if the pass can adapt that op. */
export function quadHandler(node: Node): QuadHandler | undefined {
  return node.domain === '' ? handlers.get(node.opType) : undefined;
}

/** Op types the quadratic pass can adapt. */
export function quadOpTypes(): QuadOp[] {
  return [...handlers.keys()] as QuadOp[];
}
