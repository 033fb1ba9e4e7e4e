import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';
import { sumToShape } from '../util.js';

// Binary arithmetic with numpy broadcasting: each operand's gradient is summed back to its shape.

registerGradient('Add', (ctx, [dy]) => {
  const [a, b] = ctx.node.inputs as [string, string];
  const ys = ctx.shape(ctx.node.outputs[0]!);
  return [
    ctx.needs(0) ? sumToShape(ctx, dy!, ys, ctx.shape(a)) : undefined,
    ctx.needs(1) ? sumToShape(ctx, dy!, ys, ctx.shape(b)) : undefined,
  ];
});

registerGradient('Sub', (ctx, [dy]) => {
  const [a, b] = ctx.node.inputs as [string, string];
  const ys = ctx.shape(ctx.node.outputs[0]!);
  return [
    ctx.needs(0) ? sumToShape(ctx, dy!, ys, ctx.shape(a)) : undefined,
    ctx.needs(1) ? sumToShape(ctx, ctx.b.neg(dy!), ys, ctx.shape(b)) : undefined,
  ];
});

registerGradient('Mul', (ctx, [dy]) => {
  const [a, b] = ctx.node.inputs as [string, string];
  const ys = ctx.shape(ctx.node.outputs[0]!);
  return [
    ctx.needs(0) ? sumToShape(ctx, ctx.b.mul(dy!, b), ys, ctx.shape(a)) : undefined,
    ctx.needs(1) ? sumToShape(ctx, ctx.b.mul(dy!, a), ys, ctx.shape(b)) : undefined,
  ];
});

registerGradient('Div', (ctx, [dy]) => {
  const [a, b] = ctx.node.inputs as [string, string];
  const y = ctx.node.outputs[0]!;
  const ys = ctx.shape(y);
  const da = ctx.needs(0) || ctx.needs(1) ? ctx.b.div(dy!, b) : undefined;
  return [
    ctx.needs(0) ? sumToShape(ctx, da!, ys, ctx.shape(a)) : undefined,
    // d(a/b)/db = -(a/b)/b = -y/b
    ctx.needs(1) ? sumToShape(ctx, ctx.b.neg(ctx.b.mul(da!, y)), ys, ctx.shape(b)) : undefined,
  ];
});

registerGradient('Neg', (ctx, [dy]) => [ctx.b.neg(dy!)]);

registerGradient('Identity', (_ctx, [dy]) => [dy]);

registerGradient('Sum', (ctx, [dy]) => {
  const ys = ctx.shape(ctx.node.outputs[0]!);
  return ctx.node.inputs.map((x, i) =>
    ctx.needs(i) ? sumToShape(ctx, dy!, ys, ctx.shape(x)) : undefined,
  );
});

// Max / Min (variadic, broadcasting): the gradient goes to the inputs equal to the result; on a
// tie it is split equally among them (torch.maximum / torch.minimum give 0.5 each to two tied
// inputs). mask_i = (x_i == y), dx_i = Σ_broadcast(dy · mask_i / Σ_j mask_j).
const extremum = (ctx: GradContext, [dy]: (string | undefined)[]) => {
  const b = ctx.b;
  const ins = ctx.node.inputs;
  const y = ctx.node.outputs[0]!;
  const ys = ctx.shape(y);
  if (ins.length === 1) return [dy];
  const dt = ctx.dtype(y);
  const masks = ins.map((x) => b.cast(b.op('Equal', [x, y]), dt));
  const share = b.div(dy!, b.op('Sum', masks));
  return ins.map((x, i) =>
    ctx.needs(i) ? sumToShape(ctx, b.mul(share, masks[i]!), ys, ctx.shape(x)) : undefined,
  );
};
registerGradient(['Max', 'Min'], extremum);

// Mean (variadic, broadcasting): dx_i = Σ_broadcast(dy / k).
registerGradient('Mean', (ctx, [dy]) => {
  const ins = ctx.node.inputs;
  const ys = ctx.shape(ctx.node.outputs[0]!);
  const g = ctx.b.mul(dy!, ctx.scalar(1 / ins.length));
  return ins.map((x, i) => (ctx.needs(i) ? sumToShape(ctx, g, ys, ctx.shape(x)) : undefined));
});

// Where(cond, a, b): a gets dy where cond holds, b elsewhere (each summed back to its shape).
registerGradient('Where', (ctx, [dy]) => {
  const [cond, a, bb] = ctx.node.inputs as [string, string, string];
  const ys = ctx.shape(ctx.node.outputs[0]!);
  const zero = ctx.scalar(0);
  return [
    undefined,
    ctx.needs(1)
      ? sumToShape(ctx, ctx.b.op('Where', [cond, dy!, zero]), ys, ctx.shape(a))
      : undefined,
    ctx.needs(2)
      ? sumToShape(ctx, ctx.b.op('Where', [cond, zero, dy!]), ys, ctx.shape(bb))
      : undefined,
  ];
});
