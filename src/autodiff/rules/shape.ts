import { attrInt, attrInts } from '../../ir/graph.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';
import { wrapAxis } from '../../ir/axes.js';

/** Ops that only reinterpret the shape: the gradient is dy reshaped to the input's shape. */
const reshapeBack = (ctx: GradContext, [dy]: (string | undefined)[]) => [
  ctx.b.reshape(dy!, ctx.shape(ctx.node.inputs[0]!)),
];
registerGradient(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze'], reshapeBack);

registerGradient('Transpose', (ctx, [dy]) => {
  const rank = ctx.shape(ctx.node.inputs[0]!).length;
  const perm = attrInts(
    ctx.node,
    'perm',
    Array.from({ length: rank }, (_, i) => rank - 1 - i),
  );
  const inv = new Array<number>(rank);
  perm.forEach((p, i) => (inv[p] = i));
  return [ctx.b.transpose(dy!, inv)];
});

registerGradient('Concat', (ctx, [dy]) => {
  const ins = ctx.node.inputs;
  const axis = wrapAxis(attrInt(ctx.node, 'axis', 0), ctx.shape(ins[0]!).length);
  const sizes = ins.map((x) => ctx.shape(x)[axis]!);
  const parts = ctx.b.opN('Split', [dy!, ctx.b.ints(sizes)], { axis }, { outputs: ins.length });
  return parts.map((p, i) => (ctx.needs(i) ? p : undefined));
});

registerGradient('Split', (ctx, dys) => {
  const x = ctx.node.inputs[0]!;
  const xs = ctx.shape(x);
  const axis = wrapAxis(attrInt(ctx.node, 'axis', 0), xs.length);
  // Outputs that do not reach the loss contribute zeros.
  const parts = ctx.node.outputs.map((o, i) => {
    if (dys[i]) return dys[i]!;
    const zero = {
      dtype: ctx.dtype(x),
      dims: [1],
      data: ctx.dtype(x) === 'float64' ? new Float64Array(1) : new Float32Array(1),
    };
    return ctx.b.op('ConstantOfShape', [ctx.b.ints(ctx.shape(o))], { value: zero });
  });
  return [ctx.b.concat(parts, axis)];
});
