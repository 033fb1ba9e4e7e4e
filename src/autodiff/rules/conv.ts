import type { Node } from '../../ir/graph.js';
import { attrInt, attrInts, attrString, GraphError } from '../../ir/graph.js';
import { convParams } from '../../ir/shapes/index.js';
import { numel, tensor } from '../../ir/tensor.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';

// Gradients of Conv and ConvTranspose, written with Conv/ConvTranspose/MatMul/Transpose/Reshape/
// Slice/Tile/ReduceSum only. Shapes are static in training graphs, so all pads, output paddings
// and crops are computed here in TypeScript. Which of the equivalent forms is emitted was chosen
// by measurement on onnxruntime-node (bench/PROFILE.md).

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

/**
 * The unfolding of `x` as one Conv: an identity kernel bank `eye[C·Kt, 1, ...K]` (Kt = prod K;
 * output channel c·Kt + j copies kernel tap j of input channel c) with group = C and the forward
 * strides, dilations and pads gives the patches `P[N, C·Kt, ...O]` with
 * `P[n, c·Kt + j, o] = xpad[n, c, o·stride + k_j·dilation]` exactly (each output is one input
 * element times 1 plus zeros). The bank is a [Kt, 1, ...K] constant tiled C times (folded by
 * onnxruntime when the session is created).
 */
function unfold(ctx: GradContext, x: string, xShape: number[], geom: ConvGeometry): string {
  const b = ctx.b;
  const c = xShape[1]!;
  const kt = numel(geom.kernel);
  if (kt === 1 && geom.strides.every((s) => s === 1) && geom.pads.every((p) => p === 0)) return x;
  const eyeData = new Array<number>(kt * kt).fill(0);
  for (let j = 0; j < kt; j++) eyeData[j * kt + j] = 1;
  // `x` may be a gradient (ConvTranspose swaps roles): take the dtype of the forward node's input.
  const dtype = ctx.dtype(ctx.node.inputs[0]!);
  let eye =
    dtype === 'float16'
      ? b.cast(b.constant(tensor('float32', [kt, 1, ...geom.kernel], eyeData), 'unfold_eye'), dtype)
      : b.constant(tensor(dtype, [kt, 1, ...geom.kernel], eyeData), 'unfold_eye');
  if (c > 1) eye = b.op('Tile', [eye, b.ints([c, 1, ...geom.kernel.map(() => 1)])]);
  return b.op('Conv', [x, eye], {
    kernel_shape: geom.kernel,
    strides: geom.strides,
    dilations: geom.dilations,
    pads: geom.pads,
    group: c,
  });
}

/**
 * The 'im2col' strategy: the patches of `x` unfolded by one Conv (see `unfold`), then one batched
 * MatMul per image and group and a sum over the batch:
 *
 *   dW[g, m, (c, k)] = Σ_n Σ_o dy[n, g, m, o] · P[n, g, (c, k), o]
 *
 * i.e. MatMul(P[N, G, Cg·Kt, O], dyᵀ[N, G, O, Mg]) summed over N and transposed: the same products as
 * the 'conv' strategy, grouped differently (float32 rounding only). The patch tensor holds
 * Kt·|x|/prod(stride) values, which is the memory price of this form; `weightGradAuto` keeps
 * 'conv' when it would be large.
 */
export const weightGradByIm2col: ConvWeightGradFn = (
  ctx,
  { x, xShape, dy, dyShape, wShape, geom },
) => {
  const b = ctx.b;
  const [n, c] = xShape as [number, number];
  const m = dyShape[1]!;
  const g = geom.group;
  const kt = numel(geom.kernel);
  const ot = numel(dyShape.slice(2));
  const p = unfold(ctx, x, xShape, geom);
  const lead = g === 1 ? [n] : [n, g];
  const r = lead.length;
  // P[.., Cg·Kt, O] × dyᵀ[.., O, Mg]: onnxruntime fuses the Transpose into the MatMul, and packing
  // the thin dyᵀ costs less than packing Pᵀ (measured ~10% faster than dy × Pᵀ).
  const dyt = b.transpose(b.reshape(dy, [...lead, m / g, ot]), [...range(r), r + 1, r]);
  const prod = b.matmul(b.reshape(p, [...lead, (c / g) * kt, ot]), dyt);
  const summed = b.reduceSum(prod, [0], false);
  return b.reshape(b.transpose(summed, [...range(r - 1), r, r - 1]), wShape);
};

/**
 * Largest patch tensor (bytes) the 'auto' strategy lets 'im2col' materialise; larger ones keep
 * 'conv'. The patches are Kt× the layer's input (302 MiB for a 32-channel 3×3 layer on 64×64
 * images at batch 64): at the former 512 MiB cap they raised the memeff benchmark's peak RSS
 * from 454 to 704 MiB. Splitting the batch into chunks under the cap was tried: it kept batch
 * 128–256 of the benchmark CNN at 1.0 ms per example (1.6–1.95 with 'conv', bench/scaling.ts) but
 * onnxruntime still held ~660 MiB, so memory won.
 */
export const IM2COL_MAX_BYTES = 128 * 2 ** 20;

/**
 * The default 'auto' strategy: 'im2col' where it was measured faster, 'conv' elsewhere
 * (bench/PROFILE.md). The unfold Conv costs ~Kt² multiply-adds per patch row and the MatMul ~Kt·Mg,
 * so 'im2col' is taken when Kt ≤ Mg (output channels per group): every 3×3 layer with 16 or more
 * outputs and every 1×1 layer; depthwise layers (Mg = 1) and wide kernels on few outputs (a 7×7
 * stem) keep 'conv'. Patch tensors over `IM2COL_MAX_BYTES` keep 'conv' too.
 */
export const weightGradAuto: ConvWeightGradFn = (ctx, a) => {
  const kt = numel(a.geom.kernel);
  const mg = a.dyShape[1]! / a.geom.group;
  const patchBytes = a.xShape[0]! * a.xShape[1]! * kt * numel(a.dyShape.slice(2)) * 4;
  return kt <= mg && patchBytes <= IM2COL_MAX_BYTES
    ? weightGradByIm2col(ctx, a)
    : weightGradByConv(ctx, a);
};

const weightGradStrategies = new Map<string, ConvWeightGradFn>([
  ['auto', weightGradAuto],
  ['conv', weightGradByConv],
  ['im2col', weightGradByIm2col],
]);
/** dL/dW of `Conv(x, w)` with the selected strategy. */
export function convWeightGrad(ctx: GradContext, a: ConvWeightGradArgs): string {
  const form = weightGradStrategies.get(ctx.forms.convWeightGrad);
  if (!form)
    throw new Error(
      `unknown conv weight-gradient form '${ctx.forms.convWeightGrad}' (known: ${[...weightGradStrategies.keys()].join(', ')})`,
    );
  return form(ctx, a);
}

/**
 * The kernel of the adjoint of a stride-1 Conv: `w[g·Mg+m, c, k]` → `w'[g·Cg+c, m, K−1−k]`
 * (input and output channels swapped inside each group, every spatial axis reversed).
 */
function flippedKernel(ctx: GradContext, w: string, wShape: number[], group: number): string {
  const b = ctx.b;
  const rank = wShape.length;
  const [m, cg] = wShape as [number, number];
  const kernel = wShape.slice(2);
  let t: string;
  if (group === 1) t = b.transpose(w, swap01(rank));
  else {
    const split = b.reshape(w, [group, m / group, cg, ...kernel]);
    const swapped = b.transpose(split, [0, 2, 1, ...range(rank - 2, 3)]);
    t = b.reshape(swapped, [group * cg, m / group, ...kernel]);
  }
  const axes = range(rank - 2, 2).filter((i) => wShape[i]! > 1);
  if (axes.length === 0) return t;
  return b.op('Slice', [
    t,
    b.ints(axes.map(() => -1)),
    b.ints(axes.map((i) => -wShape[i]! - 1)),
    b.ints(axes),
    b.ints(axes.map(() => -1)),
  ]);
}

/**
 * dL/dx of `y = Conv(x, w)`: ConvTranspose(dy, w) with the same geometry, plus an output_padding
 * that restores the input rows no window reached (when (S + pads − eff_k) is not a multiple of
 * the stride), so the result has exactly x's shape.
 *
 * With stride 1 everywhere (and pads no wider than the dilated kernel reach) the same adjoint is
 * emitted as a plain Conv of dy with the flipped, channel-swapped kernel and pads
 * (eff_k − 1 − pads): the same products summed in another order (float32 rounding only), and
 * onnxruntime's Conv runs it about 1.5× faster than its ConvTranspose (bench/PROFILE.md).
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
  const flipPads = range(2 * nsp).map(
    (i) => effective(geom.kernel[i % nsp]!, geom.dilations[i % nsp]!) - 1 - geom.pads[i]!,
  );
  if (
    ctx.forms.convInputGrad === 'conv' &&
    geom.strides.every((s) => s === 1) &&
    flipPads.every((p) => p >= 0)
  ) {
    return ctx.b.op(
      'Conv',
      [
        dy,
        flippedKernel(ctx, w, [dyShape[1]!, xShape[1]! / geom.group, ...geom.kernel], geom.group),
      ],
      {
        kernel_shape: geom.kernel,
        dilations: geom.dilations,
        pads: flipPads,
        group: geom.group,
      },
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
