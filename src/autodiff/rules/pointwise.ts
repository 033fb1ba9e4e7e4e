import { attrFloat, GraphError } from '../../ir/graph.js';
import type { DType } from '../../ir/tensor.js';
import { dtypeFromOnnx } from '../../ir/tensor.js';
import { attrInt } from '../../ir/graph.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';
import { sumToShape } from '../util.js';

// Gradient rules of the pointwise ops that exporters write besides the common activations
// (activation.ts): ELU family, PRelu, Mish, Softsign, ThresholdedRelu, trigonometry, Cast, and
// the piecewise-constant ops whose gradient is zero almost everywhere.

/** `x > t` as a bool mask. */
function above(ctx: GradContext, x: string, t: number): string {
  return ctx.b.op('Greater', [x, ctx.scalar(t)]);
}

// Elu: y = x (x > 0), α(eˣ − 1) elsewhere; dx = dy (x > 0), dy (y + α) elsewhere.
registerGradient('Elu', (ctx, [dy]) => {
  const b = ctx.b;
  const [x] = ctx.node.inputs as [string];
  const alpha = attrFloat(ctx.node, 'alpha', 1);
  const neg = b.mul(dy!, b.add(ctx.node.outputs[0]!, ctx.scalar(alpha)));
  return [b.op('Where', [above(ctx, x, 0), dy!, neg])];
});

// Selu: y = γx (x > 0), γα(eˣ − 1) elsewhere; dx = γ dy (x > 0), dy (y + γα) elsewhere.
registerGradient('Selu', (ctx, [dy]) => {
  const b = ctx.b;
  const [x] = ctx.node.inputs as [string];
  const alpha = attrFloat(ctx.node, 'alpha', 1.67326319217681884765625);
  const gamma = attrFloat(ctx.node, 'gamma', 1.05070102214813232421875);
  const neg = b.mul(dy!, b.add(ctx.node.outputs[0]!, ctx.scalar(gamma * alpha)));
  return [b.op('Where', [above(ctx, x, 0), b.mul(dy!, ctx.scalar(gamma)), neg])];
});

// Celu: y = max(0, x) + min(0, α(e^(x/α) − 1)); dx = dy (x > 0), dy e^(x/α) = dy (y/α + 1) elsewhere.
registerGradient('Celu', (ctx, [dy]) => {
  const b = ctx.b;
  const [x] = ctx.node.inputs as [string];
  const alpha = attrFloat(ctx.node, 'alpha', 1);
  const d = b.add(b.mul(ctx.node.outputs[0]!, ctx.scalar(1 / alpha)), ctx.scalar(1));
  return [b.op('Where', [above(ctx, x, 0), dy!, b.mul(dy!, d)])];
});

// PRelu: y = x (x > 0), slope·x elsewhere, slope broadcast to x (unidirectionally).
// dx = dy or dy·slope; dslope = Σ over the broadcast axes of dy·x where x ≤ 0.
registerGradient('PRelu', (ctx, [dy]) => {
  const b = ctx.b;
  const [x, slope] = ctx.node.inputs as [string, string];
  const pos = above(ctx, x, 0);
  const out: (string | undefined)[] = [undefined, undefined];
  if (ctx.needs(0)) out[0] = b.op('Where', [pos, dy!, b.mul(dy!, slope)]);
  if (ctx.needs(1)) {
    const g = b.op('Where', [pos, ctx.scalar(0), b.mul(dy!, x)]);
    out[1] = sumToShape(ctx, g, ctx.shape(ctx.node.outputs[0]!), ctx.shape(slope));
  }
  return out;
});

// Mish: y = x tanh(softplus(x)); dy/dx = t + x σ(x) (1 − t²), t = tanh(softplus(x)).
registerGradient('Mish', (ctx, [dy]) => {
  const b = ctx.b;
  const [x] = ctx.node.inputs as [string];
  const t = b.op('Tanh', [b.op('Softplus', [x])]);
  const sech2 = b.sub(ctx.scalar(1), b.mul(t, t));
  // σ(x)·sech² first: onnxruntime would fuse x·σ(x) into QuickGelu, which has no float64 kernel.
  const d = b.add(t, b.mul(x, b.mul(b.op('Sigmoid', [x]), sech2)));
  return [b.mul(dy!, d)];
});

// Softsign: y = x / (1 + |x|); dy/dx = 1 / (1 + |x|)².
registerGradient('Softsign', (ctx, [dy]) => {
  const b = ctx.b;
  const den = b.add(b.op('Abs', [ctx.node.inputs[0]!]), ctx.scalar(1));
  return [b.div(dy!, b.mul(den, den))];
});

// ThresholdedRelu: y = x (x > α), 0 elsewhere; dx = dy where x > α.
registerGradient('ThresholdedRelu', (ctx, [dy]) => {
  const alpha = attrFloat(ctx.node, 'alpha', 1);
  return [ctx.b.op('Where', [above(ctx, ctx.node.inputs[0]!, alpha), dy!, ctx.scalar(0)])];
});

// Sin: dx = dy cos(x).  Cos: dx = −dy sin(x).  Atan: dx = dy / (1 + x²).
registerGradient('Sin', (ctx, [dy]) => [ctx.b.mul(dy!, ctx.b.op('Cos', [ctx.node.inputs[0]!]))]);
registerGradient('Cos', (ctx, [dy]) => [
  ctx.b.neg(ctx.b.mul(dy!, ctx.b.op('Sin', [ctx.node.inputs[0]!]))),
]);
registerGradient('Atan', (ctx, [dy]) => {
  const x = ctx.node.inputs[0]!;
  return [ctx.b.div(dy!, ctx.b.add(ctx.b.mul(x, x), ctx.scalar(1)))];
});

const FLOATS: readonly DType[] = ['float32', 'float64', 'float16'];

// Cast between float types: the gradient is cast back to the input's type. A cast to an
// integer or bool type ends the gradient path (its output never carries a gradient).
registerGradient('Cast', (ctx, [dy]) => {
  const x = ctx.node.inputs[0]!;
  const from = ctx.dtype(x);
  const to = dtypeFromOnnx(attrInt(ctx.node, 'to', 1));
  if (!dy || !FLOATS.includes(from)) return [undefined];
  if (!to || !FLOATS.includes(to)) {
    throw new GraphError(
      `node '${ctx.node.name}' (Cast): a cast to ${to ?? 'a non-float type'} has no gradient`,
      ctx.node.name,
    );
  }
  return [to === from ? dy : ctx.b.cast(dy, from)];
});

// Floor, Ceil, Round, Sign are piecewise constant: the gradient is zero almost everywhere, so
// nothing flows back through them (no node is emitted; the input gets no contribution).
registerGradient(['Floor', 'Ceil', 'Round', 'Sign'], () => [undefined]);
