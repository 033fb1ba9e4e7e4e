import { attrInt, GraphError } from '../../ir/graph.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';
import { wrapAxis } from '../../ir/axes.js';

/** The axes a Reduce node reduces over (opset-18 form: axes as a constant input). */
function reducedAxes(ctx: GradContext, rank: number): number[] {
  const axesName = ctx.node.inputs[1];
  const t = axesName ? ctx.b.graph.initializers.get(axesName) : undefined;
  if (axesName && !t)
    throw new Error(`node '${ctx.node.name}': axes must be a constant to differentiate`);
  const axes = t ? Array.from(t.data as BigInt64Array, (v) => Number(v)) : [];
  if (axes.length === 0) {
    return attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1
      ? []
      : Array.from({ length: rank }, (_, i) => i);
  }
  return axes.map((a) => wrapAxis(a, rank));
}

/** Broadcasts a reduced gradient back over the input's shape. */
function expandBack(ctx: GradContext, dy: string, xs: number[], axes: number[]): string {
  const kept = xs.map((d, i) => (axes.includes(i) ? 1 : d));
  return ctx.b.op('Expand', [ctx.b.reshape(dy, kept), ctx.b.ints(xs)]);
}

registerGradient('ReduceSum', (ctx, [dy]) => {
  const xs = ctx.shape(ctx.node.inputs[0]!);
  return [expandBack(ctx, dy!, xs, reducedAxes(ctx, xs.length))];
});

registerGradient('ReduceMean', (ctx, [dy]) => {
  const xs = ctx.shape(ctx.node.inputs[0]!);
  const axes = reducedAxes(ctx, xs.length);
  const count = axes.reduce((p, a) => p * xs[a]!, 1);
  return [expandBack(ctx, ctx.b.mul(dy!, ctx.scalar(1 / count)), xs, axes)];
});

/** The reduced output viewed with the reduced axes kept (so it broadcasts against x). */
function kept(ctx: GradContext, v: string, xs: number[], axes: number[]): string {
  return ctx.b.reshape(
    v,
    xs.map((d, i) => (axes.includes(i) ? 1 : d)),
  );
}

// ReduceMax / ReduceMin: the gradient goes to the elements equal to the result, split equally
// among ties (as torch.amax / torch.amin do).
registerGradient(['ReduceMax', 'ReduceMin'], (ctx, [dy]) => {
  const b = ctx.b;
  const x = ctx.node.inputs[0]!;
  const xs = ctx.shape(x);
  const axes = reducedAxes(ctx, xs.length);
  const mask = b.cast(b.op('Equal', [x, kept(ctx, ctx.node.outputs[0]!, xs, axes)]), ctx.dtype(x));
  const count = b.reduceSum(mask, axes, true);
  return [b.mul(mask, b.div(kept(ctx, dy!, xs, axes), count))];
});

// ReduceL2: y = √Σx²; dx = dy · x / y.
registerGradient('ReduceL2', (ctx, [dy]) => {
  const x = ctx.node.inputs[0]!;
  const xs = ctx.shape(x);
  const axes = reducedAxes(ctx, xs.length);
  const y = kept(ctx, ctx.node.outputs[0]!, xs, axes);
  return [ctx.b.mul(x, ctx.b.div(kept(ctx, dy!, xs, axes), y))];
});

// ReduceLogSumExp: y = log Σ eˣ; dx = dy · e^(x − y) (the softmax over the reduced axes).
registerGradient('ReduceLogSumExp', (ctx, [dy]) => {
  const x = ctx.node.inputs[0]!;
  const xs = ctx.shape(x);
  const axes = reducedAxes(ctx, xs.length);
  const y = kept(ctx, ctx.node.outputs[0]!, xs, axes);
  return [ctx.b.mul(ctx.b.exp(ctx.b.sub(x, y)), kept(ctx, dy!, xs, axes))];
});

// ReduceProd: dx = dy · y / x. (Undefined where an element is exactly 0: the product of the
// others is not formed, to keep the rule to elementwise ops.)
registerGradient('ReduceProd', (ctx, [dy]) => {
  const x = ctx.node.inputs[0]!;
  const xs = ctx.shape(x);
  const axes = reducedAxes(ctx, xs.length);
  const y = kept(ctx, ctx.node.outputs[0]!, xs, axes);
  return [ctx.b.div(ctx.b.mul(kept(ctx, dy!, xs, axes), y), x)];
});

// LpNormalization (p 1 or 2) along one axis: y = x / n, n = ‖x‖_p;
// dx = (dy − s · Σ_axis(dy · y)) / n with s = y (p = 2) or sign(x) (p = 1).
registerGradient('LpNormalization', (ctx, [dy]) => {
  const b = ctx.b;
  const x = ctx.node.inputs[0]!;
  const y = ctx.node.outputs[0]!;
  const rank = ctx.shape(x).length;
  const axis = wrapAxis(attrInt(ctx.node, 'axis', -1), rank);
  const p = attrInt(ctx.node, 'p', 2);
  let norm: string;
  let s: string;
  if (p === 2) {
    norm = b.sqrt(b.reduceSum(b.mul(x, x), [axis], true));
    s = y;
  } else if (p === 1) {
    norm = b.reduceSum(b.op('Abs', [x]), [axis], true);
    s = b.op('Sign', [x]);
  } else {
    throw new GraphError(
      `node '${ctx.node.name}' (LpNormalization): p must be 1 or 2, not ${p}`,
      ctx.node.name,
    );
  }
  const dot = b.reduceSum(b.mul(dy!, y), [axis], true);
  return [b.div(b.sub(dy!, b.mul(s, dot)), norm)];
});
