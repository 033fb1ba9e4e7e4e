import { attrInt } from '../../ir/graph.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';

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
  return axes.map((a) => (a < 0 ? a + rank : a));
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
