import { attrFloat, attrInt, GraphError } from '../../ir/graph.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';
import { wrapAxis } from '../../ir/axes.js';
import { sumToShape } from '../util.js';

// Gradient rules of BatchNormalization and LayerNormalization, written with standard ONNX ops
// (ReduceMean / ReduceSum / Sqrt / Reciprocal / arithmetic) in the input's dtype.

/** `1 / sqrt(v + eps)`. */
function invStd(ctx: GradContext, v: string, eps: number): string {
  return ctx.b.op('Reciprocal', [ctx.b.sqrt(ctx.b.add(v, ctx.scalar(eps)))]);
}

/**
 * The gradient of a normalisation `xhat = (x - mean) * inv` over `axes` (mean and biased
 * variance taken over those axes) given `g = d loss / d xhat`:
 * `dx = inv * (g - mean(g) - xhat * mean(g * xhat))`.
 */
function normalizeBack(
  ctx: GradContext,
  g: string,
  xhat: string,
  inv: string,
  axes: number[],
): string {
  const b = ctx.b;
  const mg = b.reduceMean(g, axes, true);
  const mgx = b.reduceMean(b.mul(g, xhat), axes, true);
  return b.mul(inv, b.sub(b.sub(g, mg), b.mul(xhat, mgx)));
}

// BatchNormalization (opset 15). Inputs X [N, C, ...], scale, B, input_mean, input_var (all [C]).
// training_mode 0: Y = scale (X - mean) / sqrt(var + eps) + B with the given statistics.
// training_mode 1: the same with the batch mean and the biased batch variance over all axes but
// 1; the op does not output them, so they are recomputed here. The running mean/var outputs
// are buffers, not differentiable values: gradients arriving at them are ignored.
registerGradient('BatchNormalization', (ctx, [dy]) => {
  const b = ctx.b;
  const node = ctx.node;
  const [x, scale, , mean, variance] = node.inputs as [string, string, string, string, string];
  if (!dy) return [];
  const xs = ctx.shape(x);
  if (xs.length < 2) {
    throw new GraphError(
      `node '${node.name}' (BatchNormalization): input must have rank >= 2, not ${xs.length}`,
      node.name,
    );
  }
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const training = attrInt(node, 'training_mode', 0) === 1;
  const axes = xs.map((_, i) => i).filter((i) => i !== 1);
  // Per-channel [C] values broadcast against X as [C, 1, ..., 1].
  const chanShape = [xs[1]!, ...xs.slice(2).map(() => 1)];
  const perChan = (v: string) => b.reshape(v, chanShape);
  const reduceToChan = (v: string) => b.reduceSum(v, axes, false);
  const out: (string | undefined)[] = [undefined, undefined, undefined, undefined, undefined];

  if (training) {
    const mu = b.reduceMean(x, axes, true);
    const xc = b.sub(x, mu);
    const inv = invStd(ctx, b.reduceMean(b.mul(xc, xc), axes, true), eps);
    const xhat = b.mul(xc, inv);
    if (ctx.needs(0)) out[0] = normalizeBack(ctx, b.mul(dy, perChan(scale)), xhat, inv, axes);
    if (ctx.needs(1)) out[1] = reduceToChan(b.mul(dy, xhat));
    if (ctx.needs(2)) out[2] = reduceToChan(dy);
    return out;
  }

  const inv = invStd(ctx, variance, eps); // [C]
  if (ctx.needs(0)) out[0] = b.mul(dy, perChan(b.mul(scale, inv)));
  const needXc = ctx.needs(1) || ctx.needs(4);
  const sdxc = needXc ? reduceToChan(b.mul(dy, b.sub(x, perChan(mean)))) : undefined; // [C]
  if (ctx.needs(1)) out[1] = b.mul(sdxc!, inv);
  if (ctx.needs(2) || ctx.needs(3)) {
    const sdy = reduceToChan(dy);
    if (ctx.needs(2)) out[2] = sdy;
    // d/dmean = -scale * inv * Σdy
    if (ctx.needs(3)) out[3] = b.neg(b.mul(b.mul(scale, inv), sdy));
  }
  // d/dvar = -½ scale inv³ Σ dy (x - mean)
  if (ctx.needs(4)) {
    const inv3 = b.mul(b.mul(inv, inv), inv);
    out[4] = b.mul(b.mul(b.mul(scale, inv3), sdxc!), ctx.scalar(-0.5));
  }
  return out;
});

// LayerNormalization (opset 17): normalises over axes [axis, rank); Y = xhat * Scale + B.
// The Mean and InvStdDev outputs are reused when present in X's dtype (with stash_type 1 they
// are float32 even for float64 X, so then they are recomputed in X's precision). Gradients
// that reach Mean / InvStdDev themselves are propagated too.
registerGradient('LayerNormalization', (ctx, [dy, dMean, dInv]) => {
  const b = ctx.b;
  const node = ctx.node;
  const [x, scale, bias] = node.inputs as [string, string, string | undefined];
  const [, meanOut, invOut] = node.outputs as [string, string | undefined, string | undefined];
  const xs = ctx.shape(x);
  const dt = ctx.dtype(x);
  const axis = wrapAxis(attrInt(node, 'axis', -1), xs.length);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const axes = xs.map((_, i) => i).filter((i) => i >= axis);
  const count = axes.reduce((p, a) => p * xs[a]!, 1);
  const usable = (o: string | undefined) => !!o && ctx.dtype(o) === dt;

  let xc: string | undefined;
  const centred = (mu: string) => (xc ??= b.sub(x, mu));
  const mu = usable(meanOut) ? meanOut! : b.reduceMean(x, axes, true);
  let inv: string;
  if (usable(invOut)) inv = invOut!;
  else {
    const c = centred(mu);
    inv = invStd(ctx, b.reduceMean(b.mul(c, c), axes, true), eps);
  }
  const xhat = b.mul(centred(mu), inv);

  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (dy) {
    if (ctx.needs(0)) out[0] = normalizeBack(ctx, b.mul(dy, scale), xhat, inv, axes);
    if (ctx.needs(1)) out[1] = sumToShape(ctx, b.mul(dy, xhat), xs, ctx.shape(scale));
    if (bias && ctx.needs(2)) out[2] = sumToShape(ctx, dy, xs, ctx.shape(bias));
  }
  if (ctx.needs(0)) {
    const extra: string[] = [];
    const inDt = (d: string, o: string) => (ctx.dtype(o) === dt ? d : b.cast(d, dt));
    // Mean = mean(x): each element gets dMean / count.
    if (dMean && meanOut) extra.push(b.mul(inDt(dMean, meanOut), ctx.scalar(1 / count)));
    // InvStdDev = (var + eps)^-½: d/dx = -inv² · xhat / count.
    if (dInv && invOut) {
      const k = b.mul(b.mul(inDt(dInv, invOut), b.mul(inv, inv)), ctx.scalar(-1 / count));
      extra.push(b.mul(k, xhat));
    }
    if (extra.length > 0) {
      // Sum broadcasts; Expand covers the case where only the [.., 1]-shaped stats reach the loss.
      const s = b.op('Sum', out[0] ? [out[0], ...extra] : extra);
      out[0] = out[0] ? s : b.op('Expand', [s, b.ints(xs)]);
    }
  }
  return out;
});

// InstanceNormalization: X [N, C, ...] normalised per (n, c) over the spatial axes;
// Y = xhat · scale[c] + B[c].
registerGradient('InstanceNormalization', (ctx, [dy]) => {
  const b = ctx.b;
  const node = ctx.node;
  const [x, scale] = node.inputs as [string, string, string];
  if (!dy) return [];
  const xs = ctx.shape(x);
  if (xs.length < 3) {
    throw new GraphError(
      `node '${node.name}' (InstanceNormalization): input must have rank >= 3, not ${xs.length}`,
      node.name,
    );
  }
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const axes = xs.map((_, i) => i).filter((i) => i >= 2);
  const chanShape = [xs[1]!, ...axes.map(() => 1)];
  const notChan = xs.map((_, i) => i).filter((i) => i !== 1);
  const mu = b.reduceMean(x, axes, true);
  const xc = b.sub(x, mu);
  const inv = invStd(ctx, b.reduceMean(b.mul(xc, xc), axes, true), eps);
  const xhat = b.mul(xc, inv);
  return [
    ctx.needs(0)
      ? normalizeBack(ctx, b.mul(dy, b.reshape(scale, chanShape)), xhat, inv, axes)
      : undefined,
    ctx.needs(1) ? b.reduceSum(b.mul(dy, xhat), notChan, false) : undefined,
    ctx.needs(2) ? b.reduceSum(dy, notChan, false) : undefined,
  ];
});

// GroupNormalization: X [N, C, ...] viewed as [N, G, C/G · spatial] and normalised over the last
// axis; Y = xhat · scale + bias with scale and bias per group ([G], opset 18) or per channel
// ([C], opset 21). The two are told apart by the size of scale.
registerGradient('GroupNormalization', (ctx, [dy]) => {
  const b = ctx.b;
  const node = ctx.node;
  const [x, scale] = node.inputs as [string, string, string];
  if (!dy) return [];
  const xs = ctx.shape(x);
  const groups = attrInt(node, 'num_groups', 0);
  const c = xs[1]!;
  if (xs.length < 3 || groups < 1 || c % groups !== 0) {
    throw new GraphError(
      `node '${node.name}' (GroupNormalization): needs rank >= 3 and channels (${c}) divisible by num_groups (${groups})`,
      node.name,
    );
  }
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const n = xs[0]!;
  const perGroup = ctx.shape(scale).reduce((p, d) => p * d, 1) === groups && groups !== c;
  const spatial = xs.slice(2).map(() => 1);
  // Per-channel scale [C, 1, ...]: a per-group scale is repeated C/G times.
  const chanScale = perGroup
    ? b.reshape(b.op('Expand', [b.reshape(scale, [groups, 1]), b.ints([groups, c / groups])]), [
        c,
        ...spatial,
      ])
    : b.reshape(scale, [c, ...spatial]);
  const grouped = [n, groups, -1];
  const xg = b.reshape(x, grouped);
  const mu = b.reduceMean(xg, [2], true);
  const xc = b.sub(xg, mu);
  const inv = invStd(ctx, b.reduceMean(b.mul(xc, xc), [2], true), eps);
  const xhatG = b.mul(xc, inv);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (ctx.needs(0)) {
    const g = b.reshape(b.mul(dy, chanScale), grouped);
    out[0] = b.reshape(normalizeBack(ctx, g, xhatG, inv, [2]), xs);
  }
  const notChan = xs.map((_, i) => i).filter((i) => i !== 1);
  const toParam = (perChan: string) =>
    perGroup ? b.reduceSum(b.reshape(perChan, [groups, c / groups]), [1], false) : perChan;
  if (ctx.needs(1)) {
    const xhat = b.reshape(xhatG, xs);
    out[1] = toParam(b.reduceSum(b.mul(dy, xhat), notChan, false));
  }
  if (ctx.needs(2)) out[2] = toParam(b.reduceSum(dy, notChan, false));
  return out;
});
