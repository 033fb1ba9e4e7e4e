import { attrFloat, attrInt, attrString, GraphError } from '../../ir/graph.js';
import { toNumbers } from '../../ir/tensor.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';
import { wrapAxis } from '../../ir/axes.js';
import { sumToShape } from '../util.js';

// Gradient rules of unary activations and the other pointwise maths ops. Every rule emits
// standard ONNX operators only (no Gelu, no contrib *Grad ops), in the node's float dtype.

/** `dy * d` for a unary op whose local derivative is `d`. */
function chain(ctx: GradContext, dy: string, d: string): string {
  return ctx.b.mul(dy, d);
}

/** The numbers of a constant input (initializer), or undefined when absent or not constant. */
function constantInput(ctx: GradContext, i: number): number[] | undefined {
  const name = ctx.node.inputs[i];
  const t = name ? ctx.b.graph.initializers.get(name) : undefined;
  return t ? toNumbers(t) : undefined;
}

/** `dy` where `cond` holds, else 0. */
function gate(ctx: GradContext, cond: string, dy: string): string {
  return ctx.b.op('Where', [cond, dy, ctx.scalar(0)]);
}

// Pow(x, p) with numpy broadcasting: dx = dy * p * x^(p-1); dp = dy * y * ln(x) (x > 0).
registerGradient('Pow', (ctx, [dy]) => {
  const [x, pRaw] = ctx.node.inputs as [string, string];
  const y = ctx.node.outputs[0]!;
  const xt = ctx.dtype(x);
  const ys = ctx.shape(y);
  // ONNX allows an integer exponent; compute in x's dtype.
  const p = ctx.dtype(pRaw) === xt ? pRaw : ctx.b.cast(pRaw, xt);
  const out: (string | undefined)[] = [undefined, undefined];
  if (ctx.needs(0)) {
    const pc = constantInput(ctx, 1);
    let d: string;
    if (pc && pc.length === 1 && pc[0] === 2) d = ctx.b.mul(x, ctx.scalar(2));
    else if (pc && pc.length === 1 && pc[0] === 1) d = ctx.scalar(1);
    else d = ctx.b.mul(p, ctx.b.op('Pow', [x, ctx.b.sub(p, ctx.scalar(1))]));
    out[0] = sumToShape(ctx, chain(ctx, dy!, d), ys, ctx.shape(x));
  }
  if (ctx.needs(1)) {
    const d = ctx.b.mul(y, ctx.b.log(x));
    out[1] = sumToShape(ctx, chain(ctx, dy!, d), ys, ctx.shape(pRaw));
  }
  return out;
});

// Sqrt: dx = dy / (2 y).
registerGradient('Sqrt', (ctx, [dy]) => [
  ctx.b.div(ctx.b.mul(dy!, ctx.scalar(0.5)), ctx.node.outputs[0]!),
]);

// Exp: dx = dy * y.
registerGradient('Exp', (ctx, [dy]) => [ctx.b.mul(dy!, ctx.node.outputs[0]!)]);

// Log: dx = dy / x.
registerGradient('Log', (ctx, [dy]) => [ctx.b.div(dy!, ctx.node.inputs[0]!)]);

// Relu: dx = dy * Sign(y) (0 at the kink): y = max(x, 0) ≥ 0, so Sign(y) is the 0/1 mask in the
// float dtype. One elementwise op instead of Greater + Where (Where was 1.5–2× slower per element
// in onnxruntime), and it reads the output, which the next layer keeps anyway, not the input.
registerGradient('Relu', (ctx, [dy]) => [ctx.b.mul(dy!, ctx.b.op('Sign', [ctx.node.outputs[0]!]))]);

// LeakyRelu: dx = dy where x > 0, alpha * dy elsewhere.
registerGradient('LeakyRelu', (ctx, [dy]) => {
  const x = ctx.node.inputs[0]!;
  const alpha = attrFloat(ctx.node, 'alpha', 0.01);
  return [
    ctx.b.op('Where', [
      ctx.b.op('Greater', [x, ctx.scalar(0)]),
      dy!,
      ctx.b.mul(dy!, ctx.scalar(alpha)),
    ]),
  ];
});

// Sigmoid: dx = dy * y * (1 - y).
registerGradient('Sigmoid', (ctx, [dy]) => {
  const y = ctx.node.outputs[0]!;
  return [chain(ctx, dy!, ctx.b.mul(y, ctx.b.sub(ctx.scalar(1), y)))];
});

// Tanh: dx = dy * (1 - y²).
registerGradient('Tanh', (ctx, [dy]) => {
  const y = ctx.node.outputs[0]!;
  return [chain(ctx, dy!, ctx.b.sub(ctx.scalar(1), ctx.b.mul(y, y)))];
});

// Erf: dx = dy * 2/√π * exp(-x²).
registerGradient('Erf', (ctx, [dy]) => {
  const x = ctx.node.inputs[0]!;
  const e = ctx.b.exp(ctx.b.mul(ctx.b.mul(x, x), ctx.scalar(-1)));
  return [chain(ctx, dy!, ctx.b.mul(e, ctx.scalar(2 / Math.sqrt(Math.PI))))];
});

// Gelu (opset 20), composed from Erf / Tanh / Exp so the training graph does not need Gelu.
//   none: y = x Φ(x), Φ(x) = ½(1 + erf(x/√2)); dy/dx = Φ(x) + x φ(x), φ(x) = exp(-x²/2)/√(2π)
//   tanh: y = ½x(1 + t), t = tanh(u), u = √(2/π)(x + 0.044715x³);
//         dy/dx = ½(1 + t) + ½x(1 - t²) √(2/π)(1 + 3·0.044715x²)
registerGradient('Gelu', (ctx, [dy]) => {
  const b = ctx.b;
  const x = ctx.node.inputs[0]!;
  const approx = attrString(ctx.node, 'approximate', 'none');
  const x2 = b.mul(x, x);
  let d: string;
  if (approx === 'none') {
    const cdf = b.mul(
      b.add(b.op('Erf', [b.mul(x, ctx.scalar(Math.SQRT1_2))]), ctx.scalar(1)),
      ctx.scalar(0.5),
    );
    const pdf = b.mul(b.exp(b.mul(x2, ctx.scalar(-0.5))), ctx.scalar(1 / Math.sqrt(2 * Math.PI)));
    d = b.add(cdf, b.mul(x, pdf));
  } else if (approx === 'tanh') {
    const k = Math.sqrt(2 / Math.PI);
    const c = 0.044715;
    const u = b.mul(b.add(x, b.mul(b.mul(x2, x), ctx.scalar(c))), ctx.scalar(k));
    const t = b.op('Tanh', [u]);
    const du = b.add(b.mul(x2, ctx.scalar(3 * c * k)), ctx.scalar(k));
    const left = b.mul(b.add(t, ctx.scalar(1)), ctx.scalar(0.5));
    const right = b.mul(b.mul(b.mul(x, ctx.scalar(0.5)), b.sub(ctx.scalar(1), b.mul(t, t))), du);
    d = b.add(left, right);
  } else {
    throw new GraphError(
      `node '${ctx.node.name}' (Gelu): unknown approximate '${approx}' (expected none or tanh)`,
      ctx.node.name,
    );
  }
  return [chain(ctx, dy!, d)];
});

/** The single softmax axis (opset 13 semantics; default -1). */
function softmaxAxis(ctx: GradContext): number {
  const rank = ctx.shape(ctx.node.inputs[0]!).length;
  return wrapAxis(attrInt(ctx.node, 'axis', -1), rank);
}

// Softmax: dx = y * (dy - Σ_axis(dy * y)).
registerGradient('Softmax', (ctx, [dy]) => {
  const y = ctx.node.outputs[0]!;
  const s = ctx.b.reduceSum(ctx.b.mul(dy!, y), [softmaxAxis(ctx)], true);
  return [ctx.b.mul(y, ctx.b.sub(dy!, s))];
});

// LogSoftmax: dx = dy - exp(y) * Σ_axis(dy).
registerGradient('LogSoftmax', (ctx, [dy]) => {
  const y = ctx.node.outputs[0]!;
  const s = ctx.b.reduceSum(dy!, [softmaxAxis(ctx)], true);
  return [ctx.b.sub(dy!, ctx.b.mul(ctx.b.exp(y), s))];
});

// Clip(x, min?, max?): dx = dy where min < x < max (bounds exclusive); the bounds get the
// gradient of the elements clipped to them.
registerGradient('Clip', (ctx, [dy]) => {
  const b = ctx.b;
  const [x, lo, hi] = ctx.node.inputs as [string, string | undefined, string | undefined];
  if (ctx.node.attrs['min'] || ctx.node.attrs['max']) {
    throw new GraphError(
      `node '${ctx.node.name}' (Clip): min/max attributes (opset < 11) are not supported; upgrade the model`,
      ctx.node.name,
    );
  }
  const ys = ctx.shape(ctx.node.outputs[0]!);
  const above = lo ? b.op('Greater', [x, lo]) : undefined;
  const below = hi ? b.op('Less', [x, hi]) : undefined;
  const inside = above && below ? b.op('And', [above, below]) : (above ?? below ?? undefined);
  const out: (string | undefined)[] = [inside ? gate(ctx, inside, dy!) : dy!];
  if (lo && ctx.needs(1)) {
    const under = b.op('Less', [x, lo]);
    out[1] = sumToShape(ctx, gate(ctx, under, dy!), ys, ctx.shape(lo));
  }
  if (hi && ctx.needs(2)) {
    const over = b.op('Greater', [x, hi]);
    out[2] = sumToShape(ctx, gate(ctx, over, dy!), ys, ctx.shape(hi));
  }
  return out;
});

// Dropout (opset 13): identity in inference mode; in training mode dx = dy * mask / (1 - ratio)
// with the mask the forward pass drew (the node's second output).
registerGradient('Dropout', (ctx, [dy]) => {
  const b = ctx.b;
  const node = ctx.node;
  const x = node.inputs[0]!;
  const ratioName = node.inputs[1];
  const tmName = node.inputs[2];
  if (!dy) return [undefined];
  // Training mode: absent means false; a constant decides statically; anything else is dynamic.
  let training: boolean | 'dynamic' = false;
  if (tmName) {
    const tm = constantInput(ctx, 2);
    training = tm ? tm[0] !== 0 : 'dynamic';
  }
  if (training === false) return [dy];
  const mask = node.outputs[1];
  if (!mask) {
    throw new GraphError(
      `node '${node.name}' (Dropout) is in training mode but has no mask output, so its gradient cannot be formed; run setTrainingMode on the graph first`,
      node.name,
    );
  }
  const dt = ctx.dtype(x);
  let scale: string;
  // A `ratio` attribute is the pre-opset-12 form (not moved to an input by upgradeOpset).
  const rc = ratioName ? constantInput(ctx, 1) : [attrFloat(node, 'ratio', 0.5)];
  if (rc) {
    const r = rc[0]!;
    scale = ctx.scalar(r >= 1 ? 0 : 1 / (1 - r));
  } else {
    const r = ctx.dtype(ratioName!) === dt ? ratioName! : b.cast(ratioName!, dt);
    scale = b.div(ctx.scalar(1), b.sub(ctx.scalar(1), r));
  }
  if (training === 'dynamic') scale = b.op('Where', [tmName!, scale, ctx.scalar(1)]);
  return [b.mul(b.mul(dy, b.cast(mask, dt)), scale)];
});

// Abs: dx = dy * sign(x).
registerGradient('Abs', (ctx, [dy]) => [chain(ctx, dy!, ctx.b.op('Sign', [ctx.node.inputs[0]!]))]);

// Reciprocal: dx = -dy * y².
registerGradient('Reciprocal', (ctx, [dy]) => {
  const y = ctx.node.outputs[0]!;
  return [ctx.b.neg(chain(ctx, dy!, ctx.b.mul(y, y)))];
});

// Softplus: y = ln(1 + eˣ); dx = dy * sigmoid(x).
registerGradient('Softplus', (ctx, [dy]) => [
  chain(ctx, dy!, ctx.b.op('Sigmoid', [ctx.node.inputs[0]!])),
]);

// HardSigmoid: y = max(0, min(1, αx + β)); dx = α dy where 0 < αx + β < 1.
registerGradient('HardSigmoid', (ctx, [dy]) => {
  const b = ctx.b;
  const x = ctx.node.inputs[0]!;
  const alpha = attrFloat(ctx.node, 'alpha', 0.2);
  const beta = attrFloat(ctx.node, 'beta', 0.5);
  const t = b.add(b.mul(x, ctx.scalar(alpha)), ctx.scalar(beta));
  const inside = b.op('And', [
    b.op('Greater', [t, ctx.scalar(0)]),
    b.op('Less', [t, ctx.scalar(1)]),
  ]);
  return [gate(ctx, inside, b.mul(dy!, ctx.scalar(alpha)))];
});

// HardSwish: y = x * max(0, min(1, x/6 + ½)); dy/dx = 0 (x < -3), 1 (x > 3), x/3 + ½ between.
registerGradient('HardSwish', (ctx, [dy]) => {
  const b = ctx.b;
  const x = ctx.node.inputs[0]!;
  const mid = b.add(b.mul(x, ctx.scalar(1 / 3)), ctx.scalar(0.5));
  const upper = b.op('Where', [b.op('Greater', [x, ctx.scalar(3)]), ctx.scalar(1), mid]);
  const d = b.op('Where', [b.op('Less', [x, ctx.scalar(-3)]), ctx.scalar(0), upper]);
  return [chain(ctx, dy!, d)];
});
