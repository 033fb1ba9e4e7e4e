/** Shape rules: Elementwise, comparison, type and shape-reading ops, and the ops that keep their input shape. */

import type { Dim, ValueInfo } from '../graph.js';
import { attrInt, attrString } from '../graph.js';
import type { DType } from '../tensor.js';
import { dtypeFromOnnx } from '../tensor.js';
import type { ShapeRule } from './registry.js';
import { broadcastShapes, fail, registerShapeRule, req, same } from './registry.js';

registerShapeRule(
  [
    'Identity',
    'Neg',
    'Sqrt',
    'Exp',
    'Log',
    'Relu',
    'LeakyRelu',
    'Sigmoid',
    'Tanh',
    'Erf',
    'Gelu',
    'Softmax',
    'LogSoftmax',
    'Abs',
    'Reciprocal',
    'Sign',
    'Clip',
    'HardSigmoid',
    'HardSwish',
    'Elu',
    'Selu',
    'Softplus',
    'Floor',
    'Ceil',
    'Round',
    'Cos',
    'Sin',
    'Mish',
    'PRelu',
    'Celu',
    'Softsign',
    'ThresholdedRelu',
    'Atan',
    'CumSum',
    'Trilu',
    'InstanceNormalization',
    'GroupNormalization',
    'LpNormalization',
    'ScatterND',
    'ScatterElements',
  ],
  same,
);

registerShapeRule('GatherElements', (ctx) => ({
  outputs: [{ dtype: req(ctx, 0).dtype, shape: [...req(ctx, 1).shape] }],
}));

registerShapeRule(['DepthToSpace', 'SpaceToDepth'], (ctx) => {
  const x = req(ctx, 0).shape;
  const bs = attrInt(ctx.node, 'blocksize', 0);
  if (x.length !== 4 || bs < 1) fail(ctx, `needs a rank-4 input and a positive blocksize`);
  const up = ctx.node.opType === 'DepthToSpace';
  const scale = (d: Dim, f: number): Dim =>
    typeof d !== 'number' ? `${d}*${f}` : f >= 1 ? d * f : d / Math.round(1 / f);
  const [n, c, h, w] = x as [Dim, Dim, Dim, Dim];
  const shape: Dim[] = up
    ? [n, scale(c, 1 / (bs * bs)), scale(h, bs), scale(w, bs)]
    : [n, scale(c, bs * bs), scale(h, 1 / bs), scale(w, 1 / bs)];
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape }] };
});

registerShapeRule('Einsum', (ctx) => {
  const eq = attrString(ctx.node, 'equation', '').replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->') as [string, string | undefined];
  const terms = lhs.split(',');
  if (eq.includes('.') || terms.length !== ctx.node.inputs.length)
    fail(ctx, `equation '${eq}' is not supported (no ellipsis, one term per input)`);
  const size = new Map<string, Dim>();
  terms.forEach((t, k) => {
    const s = req(ctx, k).shape;
    if (s.length !== t.length)
      fail(ctx, `term '${t}' does not match input ${k} of rank ${s.length}`);
    [...t].forEach((ch, i) => {
      const prev = size.get(ch);
      if (prev === undefined || prev === 1) size.set(ch, s[i]!);
    });
  });
  let out = rhs;
  if (out === undefined) {
    const counts = new Map<string, number>();
    for (const ch of lhs.replace(/,/g, '')) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    out = [...counts]
      .filter(([, k]) => k === 1)
      .map(([ch]) => ch)
      .sort()
      .join('');
  }
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: [...out].map((ch) => size.get(ch)!) }] };
});

registerShapeRule('NonZero', (ctx) => ({
  outputs: [{ dtype: 'int64', shape: [req(ctx, 0).shape.length, `nonzero_${ctx.node.name}`] }],
}));

function elementwise(outDtype?: DType): ShapeRule {
  return (ctx) => {
    const ins = ctx.inputs.filter((v): v is ValueInfo => !!v);
    return {
      outputs: [
        {
          dtype: outDtype ?? ins[0]!.dtype,
          shape: broadcastShapes(
            ctx,
            ins.map((v) => v.shape),
          ),
        },
      ],
    };
  };
}
registerShapeRule(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean'], (ctx) => {
  const r = elementwise()(ctx);
  const [a, b] = [ctx.value(0), ctx.value(1)];
  // Shape arithmetic on small int vectors (e.g. batch * channels) stays static.
  if (
    a &&
    b &&
    ctx.node.inputs.length === 2 &&
    (a.length === b.length || a.length === 1 || b.length === 1)
  ) {
    const n = Math.max(a.length, b.length);
    const f = {
      Add: (x: number, y: number) => x + y,
      Sub: (x: number, y: number) => x - y,
      Mul: (x: number, y: number) => x * y,
      Div: (x: number, y: number) => Math.trunc(x / y),
    }[ctx.node.opType as 'Add'];
    if (f)
      r.values = [
        Array.from({ length: n }, (_, i) =>
          f(a[a.length === 1 ? 0 : i]!, b[b.length === 1 ? 0 : i]!),
        ),
      ];
  }
  return r;
});
registerShapeRule(
  ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Not'],
  elementwise('bool'),
);
registerShapeRule('Where', (ctx) => ({
  outputs: [
    {
      dtype: req(ctx, 1).dtype,
      shape: broadcastShapes(
        ctx,
        ctx.inputs.map((v) => v!.shape),
      ),
    },
  ],
}));

registerShapeRule('Cast', (ctx) => {
  const to = dtypeFromOnnx(attrInt(ctx.node, 'to', 1));
  if (!to) fail(ctx, `unsupported target type`);
  return { outputs: [{ dtype: to, shape: [...req(ctx, 0).shape] }], values: [ctx.dims(0)] };
});

registerShapeRule('Shape', (ctx) => {
  const s = req(ctx, 0).shape;
  const start = attrInt(ctx.node, 'start', 0);
  const end = attrInt(ctx.node, 'end', s.length);
  const sl = s.slice(start < 0 ? start + s.length : start, end < 0 ? end + s.length : end);
  return { outputs: [{ dtype: 'int64', shape: [sl.length] }], values: [sl] };
});

registerShapeRule('Size', () => ({ outputs: [{ dtype: 'int64', shape: [] }] }));
