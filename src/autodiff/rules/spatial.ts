import { attrInt, attrInts, attrString, GraphError } from '../../ir/graph.js';
import type { DType } from '../../ir/tensor.js';
import { tensor, toNumbers } from '../../ir/tensor.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';
import { sliceBounds } from '../../ir/axes.js';
import { wrapAxis } from '../../ir/axes.js';

// Gradients of Pad (constant mode), Resize (nearest, integer up-sampling) and Slice.

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

function refuse(ctx: GradContext, why: string): never {
  throw new GraphError(`node '${ctx.node.name}' (${ctx.node.opType}): ${why}`, ctx.node.name);
}

/** The numbers of constant input `i` (an initializer or a Constant node), or undefined if absent. */
function constInput(ctx: GradContext, i: number, what: string): number[] | undefined {
  const name = ctx.node.inputs[i];
  if (!name) return undefined;
  const v = constValue(ctx, name, 0);
  if (v) return v;
  refuse(ctx, `${what} must be a constant to differentiate`);
}

/**
 * The numbers of a constant value: an initializer, a Constant node, or a 1-D Concat of such (as
 * torch.onnx.export writes nn.Upsample's scales), or undefined.
 */
function constValue(ctx: GradContext, name: string, depth: number): number[] | undefined {
  const init = ctx.b.graph.initializers.get(name);
  if (init) return toNumbers(init);
  const producer = ctx.b.graph.nodes.find((n) => n.outputs[0] === name && n.domain === '');
  const value = producer?.opType === 'Constant' ? producer.attrs['value'] : undefined;
  if (value?.type === 'tensor') return toNumbers(value.value);
  if (producer?.opType !== 'Concat' || depth > 4) return undefined;
  const parts = producer.inputs.map((p) => (p ? constValue(ctx, p, depth + 1) : undefined));
  return parts.every((p) => p) ? (parts as number[][]).flat() : undefined;
}

/** A zero tensor of a static shape. */
function zeros(ctx: GradContext, shape: number[], dtype: DType): string {
  return ctx.b.op('ConstantOfShape', [ctx.b.ints(shape)], { value: tensor(dtype, [1], [0]) });
}

/** Slice of `x` on the listed axes (skipped when there is nothing to cut). */
function slice(ctx: GradContext, x: string, starts: number[], ends: number[], axes: number[]) {
  if (axes.length === 0) return x;
  return ctx.b.op('Slice', [x, ctx.b.ints(starts), ctx.b.ints(ends), ctx.b.ints(axes)]);
}

/** Zero padding of `x` by `begin`/`end` per axis (all axes; skipped when all zero). */
function zeroPad(ctx: GradContext, x: string, begin: number[], end: number[]): string {
  if (begin.every((p) => p === 0) && end.every((p) => p === 0)) return x;
  return ctx.b.op('Pad', [x, ctx.b.ints([...begin, ...end])], { mode: 'constant' });
}

/**
 * Pad (constant mode): input element i sits at output i + pad_begin. Positive pads are cut from
 * dy with one Slice; negative pads (ONNX crops) become zero padding of the gradient with one Pad.
 * The constant value, when it needs a gradient, gets sum(dy) − sum(dx).
 */
registerGradient('Pad', (ctx, [dy]) => {
  const node = ctx.node;
  const x = node.inputs[0]!;
  const xShape = ctx.shape(x);
  const rank = xShape.length;
  const mode = attrString(node, 'mode', 'constant');
  if (mode !== 'constant') refuse(ctx, `only mode 'constant' is differentiable, not '${mode}'`);
  const pads = constInput(ctx, 1, 'pads')!;
  const axes = (constInput(ctx, 3, 'axes') ?? xShape.map((_, i) => i)).map((a) =>
    wrapAxis(a, rank),
  );
  const begin = new Array<number>(rank).fill(0);
  const end = new Array<number>(rank).fill(0);
  axes.forEach((a, i) => {
    begin[a] = pads[i]!;
    end[a] = pads[i + axes.length]!;
  });
  const dtype = ctx.dtype(x);
  const kept = xShape.map((d, a) => d + Math.min(begin[a]!, 0) + Math.min(end[a]!, 0));
  let dx: string;
  if (kept.some((k) => k <= 0)) {
    dx = zeros(ctx, xShape, dtype);
  } else {
    const cut = range(rank).filter((a) => begin[a]! > 0 || end[a]! > 0);
    const sliced = slice(
      ctx,
      dy!,
      cut.map((a) => Math.max(begin[a]!, 0)),
      cut.map((a) => Math.max(begin[a]!, 0) + kept[a]!),
      cut,
    );
    dx = zeroPad(
      ctx,
      sliced,
      begin.map((p) => Math.max(-p, 0)),
      end.map((p) => Math.max(-p, 0)),
    );
  }
  let dc: string | undefined;
  const c = node.inputs[2];
  if (c && ctx.needs(2)) {
    const total = ctx.b.op('ReduceSum', [dy!], { keepdims: 0 });
    const inner = ctx.b.op('ReduceSum', [dx], { keepdims: 0 });
    dc = ctx.b.reshape(ctx.b.sub(total, inner), ctx.shape(c));
  }
  return [ctx.needs(0) ? dx : undefined, undefined, dc];
});

/**
 * The input index that nearest Resize reads for output index `o` on an axis of `inLen` elements
 * up-sampled by the integer factor `f` (ONNX coordinate transforms and rounding modes), or
 * undefined for a transform this rule does not model.
 */
function nearestSource(
  coord: string,
  nearest: string,
  o: number,
  f: number,
  inLen: number,
): number | undefined {
  const outLen = inLen * f;
  let c: number;
  if (coord === 'half_pixel') c = (o + 0.5) / f - 0.5;
  else if (coord === 'pytorch_half_pixel') c = outLen > 1 ? (o + 0.5) / f - 0.5 : 0;
  else if (coord === 'asymmetric') c = o / f;
  else if (coord === 'tf_half_pixel_for_nn') c = (o + 0.5) / f;
  else if (coord === 'align_corners') c = outLen > 1 ? (o * (inLen - 1)) / (outLen - 1) : 0;
  else return undefined;
  let i: number;
  const frac = c - Math.floor(c);
  if (nearest === 'floor') i = Math.floor(c);
  else if (nearest === 'ceil') i = Math.ceil(c);
  else if (nearest === 'round_prefer_floor') i = frac === 0.5 ? Math.floor(c) : Math.round(c);
  else if (nearest === 'round_prefer_ceil') i = frac === 0.5 ? Math.ceil(c) : Math.round(c);
  else return undefined;
  return Math.min(Math.max(i, 0), inLen - 1);
}

/**
 * Resize (nearest, integer up-sampling factors): each input element is copied to a block of
 * f₁×f₂×… outputs, so dx = ReduceSum of dy reshaped to [N, C, H, f_h, W, f_w] over the factor
 * axes. Which (coordinate_transformation_mode, nearest_mode) pairs do that is checked here per
 * axis: asymmetric + floor, tf_half_pixel_for_nn + floor, half_pixel / pytorch_half_pixel with
 * either round mode (the source coordinate i + (j + 0.5)/f − 0.5 is strictly within 0.5 of i),
 * asymmetric + round_prefer_floor for f = 2, ... Other modes and mappings are refused with a
 * GraphError naming the node.
 */
registerGradient('Resize', (ctx, [dy]) => {
  const node = ctx.node;
  const x = node.inputs[0]!;
  const xShape = ctx.shape(x);
  const yShape = ctx.shape(node.outputs[0]!);
  const mode = attrString(node, 'mode', 'nearest');
  const coord = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  const nearest = attrString(node, 'nearest_mode', 'round_prefer_floor');
  if (mode !== 'nearest') refuse(ctx, `only mode 'nearest' is differentiable, not '${mode}'`);
  if (attrInt(node, 'antialias', 0) !== 0) refuse(ctx, `antialias is not differentiable`);
  const rank = xShape.length;
  const factors = xShape.map((d, i) => yShape[i]! / d);
  if (factors.some((f) => !Number.isInteger(f) || f < 1)) {
    refuse(
      ctx,
      `only integer up-sampling is differentiable ([${xShape.join(',')}] → [${yShape.join(',')}])`,
    );
  }
  // Scales given as floats must be exactly those integers: a scale of 2.0000001 maps differently.
  const scales = node.inputs[2] ? constInput(ctx, 2, 'scales') : undefined;
  if (scales && scales.length > 0) {
    const axes = attrInts(node, 'axes')?.map((a) => wrapAxis(a, rank)) ?? range(rank);
    if (axes.some((a, i) => scales[i] !== factors[a])) {
      refuse(ctx, `scales [${scales.join(',')}] are not the integer factors of the shapes`);
    }
  }
  // The gradient below assumes output o reads input floor(o / f); check the node's mapping does.
  xShape.forEach((d, a) => {
    const f = factors[a]!;
    for (let o = 0; o < d * f; o++) {
      if (nearestSource(coord, nearest, o, f, d) !== Math.floor(o / f)) {
        refuse(
          ctx,
          `coordinate_transformation_mode '${coord}' with nearest_mode '${nearest}' does not copy ` +
            `each input to a block of ${f} outputs on axis ${a}; only such block up-sampling is ` +
            `differentiable (e.g. asymmetric + floor, half_pixel + round_prefer_floor)`,
        );
      }
    }
  });
  if (factors.every((f) => f === 1)) return [dy];
  const split = xShape.flatMap((d, i) => (factors[i]! > 1 ? [d, factors[i]!] : [d]));
  const sumAxes: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) {
    k++;
    if (factors[i]! > 1) sumAxes.push(k++);
  }
  return [ctx.b.reduceSum(ctx.b.reshape(dy!, split), sumAxes, false)];
});

/**
 * Slice (constant starts/ends/axes/steps): dy is written back at the selected positions, zeros
 * elsewhere. Steps |k| > 1 interleave k − 1 zeros after each element (Unsqueeze, Pad, Reshape);
 * negative steps reverse dy first (a Slice with step −1) so the positions ascend; then one Pad
 * places the block and one Slice crops any overhang of the last stride.
 */
registerGradient('Slice', (ctx, [dy]) => {
  const node = ctx.node;
  const x = node.inputs[0]!;
  const xShape = ctx.shape(x);
  const rank = xShape.length;
  const starts = constInput(ctx, 1, 'starts')!;
  const ends = constInput(ctx, 2, 'ends')!;
  const axes = (constInput(ctx, 3, 'axes') ?? starts.map((_, i) => i)).map((a) =>
    wrapAxis(a, rank),
  );
  const steps = constInput(ctx, 4, 'steps') ?? starts.map(() => 1);
  const dtype = ctx.dtype(x);

  // Per axis: first selected index (lowest), count and |step|; unsliced axes keep everything.
  const first = new Array<number>(rank).fill(0);
  const count = [...xShape];
  const stride = new Array<number>(rank).fill(1);
  const reversed: number[] = [];
  axes.forEach((a, i) => {
    const d = xShape[a]!;
    const step = steps[i]!;
    if (step === 0) refuse(ctx, `a step of 0 is invalid`);
    const { start: s, count: n } = sliceBounds(starts[i]!, ends[i]!, step, d);
    count[a] = n;
    stride[a] = Math.abs(step);
    first[a] = step > 0 ? s : s + (n - 1) * step;
    if (step < 0 && n > 1) reversed.push(a);
  });
  if (count.some((n) => n === 0)) return [zeros(ctx, xShape, dtype)];

  let g = dy!;
  if (reversed.length > 0) {
    g = ctx.b.op('Slice', [
      g,
      ctx.b.ints(reversed.map(() => -1)),
      ctx.b.ints(reversed.map((a) => -(count[a]! + 1))),
      ctx.b.ints(reversed),
      ctx.b.ints(reversed.map(() => -1)),
    ]);
  }
  // Interleave zeros on strided axes: [.., n, ..] → [.., n, k, ..] → [.., n·k, ..].
  const cur = [...count];
  for (let a = 0; a < rank; a++) {
    const k = stride[a]!;
    if (k === 1 || count[a]! === 1) continue;
    const padEnd = new Array<number>(rank + 1).fill(0);
    padEnd[a + 1] = k - 1;
    const u = zeroPad(
      ctx,
      ctx.b.unsqueeze(g, [a + 1]),
      new Array<number>(rank + 1).fill(0),
      padEnd,
    );
    cur[a] = count[a]! * k;
    g = ctx.b.reshape(u, cur);
  }
  const begin = first;
  const endPad = xShape.map((d, a) => d - first[a]! - cur[a]!);
  g = zeroPad(
    ctx,
    g,
    begin,
    endPad.map((p) => Math.max(p, 0)),
  );
  const over = range(rank).filter((a) => endPad[a]! < 0);
  g = slice(
    ctx,
    g,
    over.map(() => 0),
    over.map((a) => xShape[a]!),
    over,
  );
  return [g];
});
