import type { Attribute } from '../../ir/graph.js';
import { attrInt, attrInts, GraphError } from '../../ir/graph.js';
import { convParams, convOutSize } from '../../ir/shapes/index.js';
import type { DType } from '../../ir/tensor.js';
import { numel, tensor } from '../../ir/tensor.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';
import { convInputGrad } from './conv.js';

// Gradients of MaxPool, AveragePool and GlobalAveragePool.

/** A constant of the given float dtype (float16 is built in float32 and cast). */
function floatConstant(
  ctx: GradContext,
  dtype: DType,
  dims: number[],
  values: ArrayLike<number>,
): string {
  if (dtype === 'float16') {
    return ctx.b.cast(ctx.b.constant(tensor('float32', dims, values), 'pool_const'), 'float16');
  }
  return ctx.b.constant(tensor(dtype, dims, values), 'pool_const');
}

/** Pool geometry with auto_pad resolved. */
function poolGeometry(ctx: GradContext, xShape: number[]) {
  const x = ctx.node.inputs[0]!;
  return convParams(ctx.node, { name: x, dtype: ctx.dtype(x), shape: xShape });
}

/**
 * MaxPool with non-overlapping windows (kernel = strides, no pads, no dilation, float32), without
 * argmax indices or a scatter: with `up` the nearest-neighbour Resize by the kernel,
 *
 *   z     = (x == up(y)) · rank        rank = Kt − (row-major position in the window) ∈ 1..Kt
 *   first = z == up(MaxPool(z))        the earliest element equal to the window maximum
 *   dx    = first · up(dy)
 *
 * so ties go to the first maximum in row-major order, exactly as onnxruntime's argmax (and
 * PyTorch) pick it: dx equals the scatter form's value for value (a zero may come out as −0).
 * A window holding a NaN, or an infinite dy, already poisons the loss; its gradient may differ
 * from the scatter's. Input rows and columns past the last full window get zero gradient.
 * Returns undefined when the pool does not qualify.
 */
function maxPoolGradNonOverlapping(ctx: GradContext, dy: string): string | undefined {
  const node = ctx.node;
  const x = node.inputs[0]!;
  const y = node.outputs[0]!;
  if (ctx.dtype(x) !== 'float32') return undefined;
  const xShape = ctx.shape(x);
  const yShape = ctx.shape(y);
  const { kernel, strides, pads } = poolGeometry(ctx, xShape);
  const dil = attrInts(node, 'dilations');
  const spatial = xShape.slice(2);
  const outSpatial = yShape.slice(2);
  if (
    kernel.some((k, i) => k !== strides[i] || outSpatial[i]! * k > spatial[i]!) ||
    pads.some((p) => p !== 0) ||
    (dil && dil.some((d) => d !== 1))
  ) {
    return undefined;
  }
  const b = ctx.b;
  const nsp = kernel.length;
  const kt = numel(kernel);
  const covered = outSpatial.map((o, i) => o * kernel[i]!);
  const rest = spatial.map((s, i) => s - covered[i]!);
  let xc = x;
  if (rest.some((r) => r > 0)) {
    xc = b.op('Slice', [x, b.ints(covered.map(() => 0)), b.ints(covered), b.ints(range(nsp, 2))]);
  }
  const scales = floatConstant(ctx, 'float32', [nsp + 2], [1, 1, ...kernel]);
  const up = (t: string) =>
    b.op('Resize', [t, '', scales], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
  const rankData = new Array<number>(numel(covered));
  for (let flat = 0; flat < rankData.length; flat++) {
    let rest2 = flat;
    let pos = 0;
    let weight = 1;
    for (let i = nsp - 1; i >= 0; i--) {
      pos += ((rest2 % covered[i]!) % kernel[i]!) * weight;
      weight *= kernel[i]!;
      rest2 = Math.floor(rest2 / covered[i]!);
    }
    rankData[flat] = kt - pos;
  }
  const rank = floatConstant(ctx, 'float32', [1, 1, ...covered], rankData);
  // Masks are applied as Mul(Cast(mask), v), which onnxruntime runs faster than Where.
  const z = b.mul(b.cast(b.op('Equal', [xc, up(y)]), 'float32'), rank);
  const pool = b.op('MaxPool', [z], { kernel_shape: kernel, strides: kernel });
  const first = b.cast(b.op('Equal', [z, up(pool)]), 'float32');
  let g = b.mul(first, up(dy));
  if (rest.some((r) => r > 0)) {
    g = b.op('Pad', [g, b.ints([0, 0, ...rest.map(() => 0), 0, 0, ...rest])]);
  }
  return g;
}

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => i + from);

/**
 * MaxPool: non-overlapping float32 pools use `maxPoolGradNonOverlapping`. Otherwise dy is scattered (ScatterElements, reduction 'add') onto the argmax of each window in a
 * flat zero tensor. The argmax is the Indices output of the node when it has one (storage order
 * 0), else of a second MaxPool on the same input with the same attributes emitted here. Indices
 * are flat over the whole [N, C, ...S] tensor (onnxruntime and the ONNX spec), so one scatter
 * covers all images and channels. Works for pads, dilations and ceil_mode alike.
 */
registerGradient('MaxPool', (ctx, [dy]) => {
  const node = ctx.node;
  const x = node.inputs[0]!;
  const xShape = ctx.shape(x);
  const dtype = ctx.dtype(x);
  const masked = ctx.forms.maxPoolMask ? maxPoolGradNonOverlapping(ctx, dy!) : undefined;
  if (masked) return [masked];
  let indices = node.outputs[1];
  if (!indices || attrInt(node, 'storage_order', 0) !== 0) {
    const attrs: Record<string, Attribute> = { ...node.attrs };
    delete attrs['storage_order'];
    indices = ctx.b.opN('MaxPool', [x], attrs, { outputs: 2, name: 'MaxPool_argmax' })[1]!;
  }
  const total = numel(xShape);
  const zeros = ctx.b.op('ConstantOfShape', [ctx.b.ints([total])], {
    value: tensor(dtype, [1], [0]),
  });
  const scattered = ctx.b.op(
    'ScatterElements',
    [zeros, ctx.b.reshape(indices, [-1]), ctx.b.reshape(dy!, [-1])],
    { axis: 0, reduction: 'add' },
  );
  return [ctx.b.reshape(scattered, xShape)];
});

/**
 * AveragePool: dx = ConvTranspose(dy / count, ones[C, 1, ...k], group = C) with the pool's
 * strides and pads (the input gradient of a depthwise Conv with a ones kernel). The divisor is
 * prod(k) for count_include_pad = 1, otherwise the number of in-bounds elements of each window,
 * a constant [1, 1, ...O] computed here. Non-overlapping unpadded pools (kernel = stride) use a
 * cheaper Reshape/Expand instead.
 */
registerGradient('AveragePool', (ctx, [dy]) => {
  const node = ctx.node;
  const x = node.inputs[0]!;
  const xShape = ctx.shape(x);
  const dtype = ctx.dtype(x);
  const yShape = ctx.shape(node.outputs[0]!);
  const { kernel, strides, pads } = poolGeometry(ctx, xShape);
  const nsp = kernel.length;
  const spatial = xShape.slice(2);
  const outSpatial = yShape.slice(2);
  const dil = attrInts(node, 'dilations');
  if (dil && dil.some((d) => d !== 1)) {
    throw new GraphError(
      `node '${node.name}' (AveragePool): dilations are not supported by its gradient`,
      node.name,
    );
  }
  const floorOut = spatial.map((s, i) =>
    convOutSize(s, kernel[i]!, strides[i]!, 1, pads[i]!, pads[i + nsp]!),
  );
  if (floorOut.some((o, i) => o !== outSpatial[i])) {
    throw new GraphError(
      `node '${node.name}' (AveragePool): ceil_mode windows past the padded input are not supported by its gradient`,
      node.name,
    );
  }
  const includePad = attrInt(node, 'count_include_pad', 0) === 1;
  let scaled: string;
  if (includePad) {
    scaled = ctx.b.mul(dy!, ctx.scalar(1 / numel(kernel)));
  } else {
    // Per-axis in-bounds counts; the window count is their product.
    const axisCounts = outSpatial.map((o, i) =>
      Array.from({ length: o }, (_, j) => {
        const start = j * strides[i]! - pads[i]!;
        return Math.min(start + kernel[i]!, spatial[i]!) - Math.max(start, 0);
      }),
    );
    const inv = new Array<number>(numel(outSpatial));
    for (let flat = 0; flat < inv.length; flat++) {
      let rest = flat;
      let count = 1;
      for (let i = nsp - 1; i >= 0; i--) {
        count *= axisCounts[i]![rest % outSpatial[i]!]!;
        rest = Math.floor(rest / outSpatial[i]!);
      }
      inv[flat] = 1 / count;
    }
    scaled = ctx.b.mul(dy!, floatConstant(ctx, dtype, [1, 1, ...outSpatial], inv));
  }

  const nonOverlapping = kernel.every((k, i) => k === strides[i]) && pads.every((p) => p === 0);
  if (nonOverlapping) {
    // Each input element belongs to exactly one window: broadcast, then zero the leftover rows.
    const [n, c] = xShape as [number, number];
    const inter = outSpatial.flatMap((o) => [o, 1]);
    const expanded = outSpatial.flatMap((o, i) => [o, kernel[i]!]);
    let g = ctx.b.op('Expand', [
      ctx.b.reshape(scaled, [n, c, ...inter]),
      ctx.b.ints([n, c, ...expanded]),
    ]);
    g = ctx.b.reshape(g, [n, c, ...outSpatial.map((o, i) => o * kernel[i]!)]);
    const rest = spatial.map((s, i) => s - outSpatial[i]! * kernel[i]!);
    if (rest.some((r) => r > 0)) {
      g = ctx.b.op('Pad', [g, ctx.b.ints([0, 0, ...rest.map(() => 0), 0, 0, ...rest])]);
    }
    return [g];
  }
  const c = xShape[1]!;
  const ones = floatConstant(
    ctx,
    dtype,
    [c, 1, ...kernel],
    new Array<number>(c * numel(kernel)).fill(1),
  );
  const geom = { kernel, strides, dilations: kernel.map(() => 1), pads, group: c };
  return [convInputGrad(ctx, scaled, ones, xShape, yShape, geom)];
});

/** GlobalAveragePool: dy / prod(S) broadcast over the spatial axes. */
registerGradient('GlobalAveragePool', (ctx, [dy]) => {
  const xShape = ctx.shape(ctx.node.inputs[0]!);
  const scaled = ctx.b.mul(dy!, ctx.scalar(1 / numel(xShape.slice(2))));
  return [ctx.b.op('Expand', [scaled, ctx.b.ints(xShape)])];
});
