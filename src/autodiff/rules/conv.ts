import type { Node } from '../../ir/graph.js';
import { attrInt, attrInts, attrString, GraphError } from '../../ir/graph.js';
import { convParams } from '../../ir/shapes.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';

// Gradients of Conv and ConvTranspose, written with Conv/ConvTranspose/Transpose/Reshape/Slice/
// ReduceSum only. Shapes are static in training graphs, so all pads, output paddings and crops
// are computed here in TypeScript.

/** Geometry of a convolution: everything but the tensors. `pads` is [begins..., ends...]. */
export interface ConvGeometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
  group: number;
}

/** What a weight-gradient strategy receives: `y = Conv(x, w)` with geometry `geom`. */
export interface ConvWeightGradArgs {
  /** The convolution's input, shape `xShape` = [N, C, ...S]. */
  x: string;
  xShape: number[];
  /** The gradient of the convolution's output, shape `dyShape` = [N, M, ...O]. */
  dy: string;
  dyShape: number[];
  /** Shape of the weight, [M, C / group, ...kernel]. */
  wShape: number[];
  geom: ConvGeometry;
}

/** Emits dL/dW of a convolution; returns a value of shape `wShape`. */
export type ConvWeightGradFn = (ctx: GradContext, a: ConvWeightGradArgs) => string;

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => i + from);

/** Permutation swapping axes 0 and 1 of a rank-`rank` tensor. */
const swap01 = (rank: number): number[] => [1, 0, ...range(rank - 2, 2)];

/** Effective (dilated) kernel extent. */
const effective = (k: number, d: number): number => (k - 1) * d + 1;

/** A Slice of `x` keeping `[0, ends[i])` on spatial axis i (axes 2...); skips axes not cropped. */
function cropEnd(ctx: GradContext, x: string, shape: number[], ends: number[]): string {
  const axes: number[] = [];
  const e: number[] = [];
  ends.forEach((end, i) => {
    if (end < shape[i + 2]!) {
      axes.push(i + 2);
      e.push(end);
    }
  });
  if (axes.length === 0) return x;
  return ctx.b.op('Slice', [x, ctx.b.ints(axes.map(() => 0)), ctx.b.ints(e), ctx.b.ints(axes)]);
}

/**
 * The 'conv' strategy (DESIGN.md §6), generalised to groups by folding the groups into the
 * channel axis of a grouped Conv:
 *
 *   dW[g·Mg+m, c, k] = Σ_{n,o} dy[n, g·Mg+m, o] · xpad[n, g·Cg+c, o·stride + k·dilation]
 *
 * is a Conv whose batch is c, whose input channels are (g, n) and whose output channels are
 * (g, m): x → [Cg, G·N, ...S], dy → [M, N, ...O] used as the weight, group = G,
 * strides = dilation, dilations = stride, the forward pads. Its output [Cg, M, ...K'] is cropped
 * to the kernel (K' ≥ K when some input rows are not reached by any window) and transposed to
 * [M, Cg, ...K]. Depthwise (Cg = 1) is a single grouped Conv with batch 1, no per-channel loop.
 */
export const weightGradByConv: ConvWeightGradFn = (ctx, { x, xShape, dy, dyShape, geom }) => {
  const b = ctx.b;
  const rank = xShape.length;
  const [n, c] = xShape as [number, number];
  const spatial = xShape.slice(2);
  const outSpatial = dyShape.slice(2);
  const m = dyShape[1]!;
  const g = geom.group;
  const cg = c / g;
  const nsp = spatial.length;

  let xt: string;
  if (g === 1) xt = b.transpose(x, swap01(rank));
  else if (cg === 1) xt = b.reshape(b.transpose(x, swap01(rank)), [1, g * n, ...spatial]);
  else {
    const split = b.reshape(x, [n, g, cg, ...spatial]);
    xt = b.reshape(b.transpose(split, [2, 1, 0, ...range(nsp, 3)]), [cg, g * n, ...spatial]);
  }
  const dyt = b.transpose(dy, swap01(rank));

  // Trim the end padding that would only produce kernel positions past K; crop what remains.
  const padsBegin = geom.pads.slice(0, nsp);
  const padsEnd = geom.pads.slice(nsp);
  const full: number[] = [];
  for (let i = 0; i < nsp; i++) {
    const reach = effective(outSpatial[i]!, geom.strides[i]!);
    const size = (pe: number) =>
      Math.floor((spatial[i]! + padsBegin[i]! + pe - reach) / geom.dilations[i]!) + 1;
    const excess = size(padsEnd[i]!) - geom.kernel[i]!;
    if (excess < 0) {
      throw new GraphError(
        `node '${ctx.node.name}': inconsistent convolution geometry on spatial axis ${i}`,
        ctx.node.name,
      );
    }
    padsEnd[i] = Math.max(0, padsEnd[i]! - excess * geom.dilations[i]!);
    full.push(size(padsEnd[i]!));
  }
  const z = b.op('Conv', [xt, dyt], {
    kernel_shape: outSpatial,
    strides: geom.dilations,
    dilations: geom.strides,
    pads: [...padsBegin, ...padsEnd],
    group: g,
  });
  const cropped = cropEnd(ctx, z, [cg, m, ...full], geom.kernel);
  return b.transpose(cropped, swap01(rank));
};

const weightGradStrategies = new Map<string, ConvWeightGradFn>([['conv', weightGradByConv]]);
let currentStrategy = 'conv';

/**
 * Registers a weight-gradient strategy (e.g. an im2col form: Pad/Slice/Concat + one MatMul) under
 * `name`, so `setConvWeightGradStrategy(name)` can select it.
 */
export function registerConvWeightGradStrategy(name: string, fn: ConvWeightGradFn): void {
  weightGradStrategies.set(name, fn);
}

/**
 * Selects how Conv/ConvTranspose weight gradients are emitted by later `backward` calls; returns
 * the previous setting. Only 'conv' is built in.
 */
export function setConvWeightGradStrategy(name: string): string {
  if (!weightGradStrategies.has(name)) {
    throw new Error(
      `unknown conv weight-gradient strategy '${name}' (known: ${[...weightGradStrategies.keys()].join(', ')})`,
    );
  }
  const prev = currentStrategy;
  currentStrategy = name;
  return prev;
}

/** The strategy in use. */
export function convWeightGradStrategy(): string {
  return currentStrategy;
}

/** dL/dW of `Conv(x, w)` with the selected strategy. */
export function convWeightGrad(ctx: GradContext, a: ConvWeightGradArgs): string {
  return weightGradStrategies.get(currentStrategy)!(ctx, a);
}

/**
 * dL/dx of `y = Conv(x, w)`: ConvTranspose(dy, w) with the same geometry, plus an output_padding
 * that restores the input rows no window reached (when (S + pads − eff_k) is not a multiple of
 * the stride), so the result has exactly x's shape.
 */
export function convInputGrad(
  ctx: GradContext,
  dy: string,
  w: string,
  xShape: number[],
  dyShape: number[],
  geom: ConvGeometry,
): string {
  const nsp = xShape.length - 2;
  const outPad = range(nsp).map((i) => {
    const used =
      geom.strides[i]! * (dyShape[i + 2]! - 1) +
      effective(geom.kernel[i]!, geom.dilations[i]!) -
      geom.pads[i]! -
      geom.pads[i + nsp]!;
    return xShape[i + 2]! - used;
  });
  if (outPad.some((p, i) => p < 0 || p >= Math.max(geom.strides[i]!, geom.dilations[i]!))) {
    throw new GraphError(
      `node '${ctx.node.name}': inconsistent convolution geometry (output padding [${outPad.join(',')}])`,
      ctx.node.name,
    );
  }
  return ctx.b.op('ConvTranspose', [dy, w], {
    kernel_shape: geom.kernel,
    strides: geom.strides,
    dilations: geom.dilations,
    pads: geom.pads,
    group: geom.group,
    output_padding: outPad.some((p) => p > 0) ? outPad : undefined,
  });
}

/** Bias gradient: dy summed over batch and spatial axes. */
export function biasGrad(ctx: GradContext, dy: string, rank: number): string {
  return ctx.b.reduceSum(dy, [0, ...range(rank - 2, 2)], false);
}

/** Geometry of a Conv node from its static input and weight shapes (auto_pad resolved). */
export function convGeometry(ctx: GradContext, node: Node, xShape: number[], wShape: number[]) {
  const { kernel, strides, dilations, pads } = convParams(
    node,
    { name: node.inputs[0]!, dtype: ctx.dtype(node.inputs[0]!), shape: xShape },
    wShape,
  );
  return { kernel, strides, dilations, pads, group: attrInt(node, 'group', 1) };
}

registerGradient('Conv', (ctx, [dy]) => {
  const node = ctx.node;
  const [x, w] = node.inputs as [string, string];
  const xShape = ctx.shape(x);
  const wShape = ctx.shape(w);
  const dyShape = ctx.shape(node.outputs[0]!);
  const geom = convGeometry(ctx, node, xShape, wShape);
  return [
    ctx.needs(0) ? convInputGrad(ctx, dy!, w, xShape, dyShape, geom) : undefined,
    ctx.needs(1) ? convWeightGrad(ctx, { x, xShape, dy: dy!, dyShape, wShape, geom }) : undefined,
    ctx.needs(2) ? biasGrad(ctx, dy!, xShape.length) : undefined,
  ];
});

/**
 * Explicit pads and output size of a ConvTranspose node, following onnxruntime (checked on
 * 1.30): with `output_shape` or auto_pad SAME_*, total = stride·(I−1) + output_padding + eff − T
 * is split with the odd element at the end for SAME_UPPER and at the beginning otherwise;
 * SAME_* without `output_shape` gives T = I·stride.
 */
export function convTransposePads(
  node: Node,
  inSpatial: number[],
  kernel: number[],
  strides: number[],
  dilations: number[],
  outPad: number[],
): { pads: number[]; outSpatial: number[] } {
  const nsp = kernel.length;
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const outShape = attrInts(node, 'output_shape');
  const natural = (i: number, pb: number, pe: number) =>
    strides[i]! * (inSpatial[i]! - 1) + outPad[i]! + effective(kernel[i]!, dilations[i]!) - pb - pe;
  if (!outShape && (autoPad === 'NOTSET' || autoPad === 'VALID')) {
    const pads =
      autoPad === 'VALID' ? new Array<number>(2 * nsp).fill(0) : attrInts(node, 'pads', []);
    if (pads.length === 0) pads.push(...new Array<number>(2 * nsp).fill(0));
    return { pads, outSpatial: range(nsp).map((i) => natural(i, pads[i]!, pads[i + nsp]!)) };
  }
  const outSpatial = outShape ?? inSpatial.map((s, i) => s * strides[i]!);
  const pads = new Array<number>(2 * nsp).fill(0);
  for (let i = 0; i < nsp; i++) {
    const total = natural(i, 0, 0) - outSpatial[i]!;
    if (total < 0) {
      throw new GraphError(
        `node '${node.name}' (ConvTranspose): output size ${outSpatial[i]} needs negative padding; not supported`,
        node.name,
      );
    }
    const small = Math.floor(total / 2);
    pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
    pads[i + nsp] = total - pads[i]!;
  }
  return { pads, outSpatial };
}

/**
 * ConvTranspose(x, w) is the adjoint of Conv(·, w) with the same geometry, so
 * dx = Conv(dy, w) and dw is the Conv weight gradient with the roles of x and dy swapped.
 * Output rows added by output_padding past the end padding are reached by no input: they are
 * cropped from dy first and the end pad reduced accordingly.
 */
registerGradient('ConvTranspose', (ctx, [dy]) => {
  const node = ctx.node;
  const [x, w] = node.inputs as [string, string];
  const xShape = ctx.shape(x);
  const wShape = ctx.shape(w);
  const nsp = xShape.length - 2;
  const kernel = attrInts(node, 'kernel_shape') ?? wShape.slice(2);
  const strides = attrInts(node, 'strides', new Array<number>(nsp).fill(1));
  const dilations = attrInts(node, 'dilations', new Array<number>(nsp).fill(1));
  const outPad = attrInts(node, 'output_padding', new Array<number>(nsp).fill(0));
  const group = attrInt(node, 'group', 1);
  const { pads, outSpatial } = convTransposePads(
    node,
    xShape.slice(2),
    kernel,
    strides,
    dilations,
    outPad,
  );
  const n = xShape[0]!;
  const cout = wShape[1]! * group;
  const dyShape = [n, cout, ...outSpatial];

  // Crop the output_padding rows that lie past the end pad; they do not depend on x or w.
  const keep = outSpatial.map((t, i) => t - Math.max(0, outPad[i]! - pads[i + nsp]!));
  const needsDyCrop = ctx.needs(0) || ctx.needs(1);
  const dyc = needsDyCrop ? cropEnd(ctx, dy!, dyShape, keep) : dy!;
  const geom: ConvGeometry = {
    kernel,
    strides,
    dilations,
    pads: [
      ...pads.slice(0, nsp),
      ...range(nsp).map((i) => Math.max(0, pads[i + nsp]! - outPad[i]!)),
    ],
    group,
  };
  const croppedShape = [n, cout, ...keep];
  return [
    ctx.needs(0)
      ? ctx.b.op('Conv', [dyc, w], {
          kernel_shape: kernel,
          strides,
          dilations,
          pads: geom.pads,
          group,
        })
      : undefined,
    ctx.needs(1)
      ? convWeightGrad(ctx, { x: dyc, xShape: croppedShape, dy: x, dyShape: xShape, wShape, geom })
      : undefined,
    ctx.needs(2) ? biasGrad(ctx, dy!, xShape.length) : undefined,
  ];
});
