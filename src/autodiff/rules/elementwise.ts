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
