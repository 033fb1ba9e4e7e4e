import { attrInt, attrString, GraphError } from '../../ir/graph.js';
import { numel, toNumbers } from '../../ir/tensor.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';
import { wrapAxis } from '../../ir/axes.js';
import { sumToShape } from '../util.js';

// Gradient rules of indexing and layout ops: Gather (embedding lookups), GatherElements,
// Expand, Tile, CumSum, DepthToSpace / SpaceToDepth (PixelShuffle) and Trilu. Scatters use
// ScatterND / ScatterElements with reduction 'add' (opset 16), so repeated indices sum.

/** A zero tensor of a static shape in the node's float dtype. */
function zeros(ctx: GradContext, shape: readonly number[], like: string): string {
  const dt = ctx.dtype(like);
  const value = {
    dtype: dt,
    dims: [1],
    data: dt === 'float64' ? new Float64Array(1) : new Float32Array(1),
  };
  return ctx.b.op('ConstantOfShape', [ctx.b.ints(shape)], { value });
}

/** Indices as int64 with negative entries made positive (index + size). */
function positiveIndices(ctx: GradContext, idx: string, size: number): string {
  const b = ctx.b;
  const i64 = ctx.dtype(idx) === 'int64' ? idx : b.cast(idx, 'int64');
  const t = b.graph.initializers.get(idx);
  if (t && toNumbers(t).every((v) => v >= 0)) return i64;
  const neg = b.op('Less', [i64, b.ints([0])]);
  return b.op('Where', [neg, b.add(i64, b.ints([size])), i64]);
}

// Gather(x, idx, axis): dy has shape pre + idx.shape + post. With x viewed as [A, P, Q]
// (A the gathered axis moved first) the gradient is ScatterND(zeros, idx as [M, 1], dy as
// [M, P, Q], reduction add): rows gathered twice receive the sum of both gradients.
registerGradient('Gather', (ctx, [dy]) => {
  const b = ctx.b;
  const [x, idx] = ctx.node.inputs as [string, string];
  if (!ctx.needs(0)) return [undefined, undefined];
  const xs = ctx.shape(x);
  const axis = wrapAxis(attrInt(ctx.node, 'axis', 0), xs.length);
  const a = xs[axis]!;
  const p = numel(xs.slice(0, axis));
  const q = numel(xs.slice(axis + 1));
  const m = numel(ctx.shape(idx));
  const ind = b.reshape(positiveIndices(ctx, idx, a), [m, 1]);
  const upd = p > 1 ? b.transpose(b.reshape(dy!, [p, m, q]), [1, 0, 2]) : b.reshape(dy!, [m, 1, q]);
  let g = b.op('ScatterND', [zeros(ctx, [a, p, q], x), ind, upd], { reduction: 'add' });
  if (p > 1) g = b.transpose(g, [1, 0, 2]);
  return [b.reshape(g, xs), undefined];
});

// GatherElements(x, idx, axis): dx = ScatterElements(zeros, idx, dy, axis, reduction add).
registerGradient('GatherElements', (ctx, [dy]) => {
  const [x, idx] = ctx.node.inputs as [string, string];
  if (!ctx.needs(0)) return [undefined, undefined];
  const xs = ctx.shape(x);
  const axis = wrapAxis(attrInt(ctx.node, 'axis', 0), xs.length);
  const ind = positiveIndices(ctx, idx, xs[axis]!);
  const g = ctx.b.op('ScatterElements', [zeros(ctx, xs, x), ind, dy!], {
    axis,
    reduction: 'add',
  });
  return [g, undefined];
});

// Expand: a broadcast, so the gradient is dy summed back to x's shape.
registerGradient('Expand', (ctx, [dy]) => [
  sumToShape(ctx, dy!, ctx.shape(ctx.node.outputs[0]!), ctx.shape(ctx.node.inputs[0]!)),
  undefined,
]);

// Tile: y has shape [r0·d0, r1·d1, ...]; viewed as [r0, d0, r1, d1, ...] the gradient sums the
// repeat axes.
registerGradient('Tile', (ctx, [dy]) => {
  const xs = ctx.shape(ctx.node.inputs[0]!);
  const ys = ctx.shape(ctx.node.outputs[0]!);
  const reps = xs.map((d, i) => ys[i]! / d);
  if (reps.every((r) => r === 1)) return [dy, undefined];
  const split = xs.flatMap((d, i) => [reps[i]!, d]);
  const axes = xs.map((_, i) => 2 * i);
  const s = ctx.b.reduceSum(ctx.b.reshape(dy!, split), axes, false);
  return [ctx.b.reshape(s, xs), undefined];
});

// CumSum: the gradient of a (reverse) cumulative sum is the cumulative sum the other way, with
// the same exclusive flag.
registerGradient('CumSum', (ctx, [dy]) => {
  const [, axis] = ctx.node.inputs as [string, string];
  const g = ctx.b.op('CumSum', [dy!, axis], {
    exclusive: attrInt(ctx.node, 'exclusive', 0),
    reverse: attrInt(ctx.node, 'reverse', 0) === 1 ? 0 : 1,
  });
  return [g, undefined];
});

/**
 * A Reshape → Transpose → Reshape op run backwards: dy is reshaped to the transposed shape,
 * transposed by the inverse permutation and reshaped to x's shape.
 */
function unpermute(ctx: GradContext, dy: string, split: number[], perm: number[]): string {
  const b = ctx.b;
  const moved = perm.map((p) => split[p]!);
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return b.reshape(b.transpose(b.reshape(dy, moved), inv), ctx.shape(ctx.node.inputs[0]!));
}

// DepthToSpace (PixelShuffle): x [N, C, H, W] → [N, C/b², H·b, W·b].
//   DCR: reshape [N, b, b, C/b², H, W], transpose [0, 3, 4, 1, 5, 2];
//   CRD: reshape [N, C/b², b, b, H, W], transpose [0, 1, 4, 2, 5, 3].
registerGradient('DepthToSpace', (ctx, [dy]) => {
  const [n, c, h, w] = ctx.shape(ctx.node.inputs[0]!) as [number, number, number, number];
  const bs = attrInt(ctx.node, 'blocksize', 0);
  const mode = attrString(ctx.node, 'mode', 'DCR');
  const c2 = c / (bs * bs);
  if (mode === 'DCR') return [unpermute(ctx, dy!, [n, bs, bs, c2, h, w], [0, 3, 4, 1, 5, 2])];
  if (mode === 'CRD') return [unpermute(ctx, dy!, [n, c2, bs, bs, h, w], [0, 1, 4, 2, 5, 3])];
  throw new GraphError(
    `node '${ctx.node.name}' (DepthToSpace): unknown mode '${mode}' (expected DCR or CRD)`,
    ctx.node.name,
  );
});

// SpaceToDepth: x [N, C, H, W] → reshape [N, C, H/b, b, W/b, b], transpose [0, 3, 5, 1, 2, 4].
registerGradient('SpaceToDepth', (ctx, [dy]) => {
  const [n, c, h, w] = ctx.shape(ctx.node.inputs[0]!) as [number, number, number, number];
  const bs = attrInt(ctx.node, 'blocksize', 0);
  return [unpermute(ctx, dy!, [n, c, h / bs, bs, w / bs, bs], [0, 3, 5, 1, 2, 4])];
});

// Trilu keeps a triangle: the gradient is dy with the same triangle kept (same k, same upper).
registerGradient('Trilu', (ctx, [dy]) => {
  const k = ctx.node.inputs[1];
  const g = ctx.b.op('Trilu', k ? [dy!, k] : [dy!], { upper: attrInt(ctx.node, 'upper', 1) });
  return [g, undefined];
});
