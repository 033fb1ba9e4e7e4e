/** Shape rules: Elementwise, comparison, type and shape-reading ops, and the ops that keep their input shape. */

import type { Dim, ValueInfo } from '../graph.js';
import { attrInt, attrString } from '../graph.js';
import type { DType } from '../tensor.js';
import { dtypeFromOnnx } from '../tensor.js';
import type { ShapeRule } from './registry.js';
import { broadcastShapes, fail, registerShapeRule, req, same, symbolFactor } from './registry.js';

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
registerShapeRule(
  ['Add', 'Sub', 'Mul', 'Div', 'Mod', 'Pow', 'Max', 'Min', 'Sum', 'Mean'],
  (ctx) => {
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
        Mod: (x: number, y: number) => intMod(x, y, attrInt(ctx.node, 'fmod', 0) === 1),
      }[ctx.node.opType as 'Add'];
      if (f && !(ctx.node.opType === 'Mod' && b.some((y) => y === 0)))
        r.values = [
          Array.from({ length: n }, (_, i) =>
            f(a[a.length === 1 ? 0 : i]!, b[b.length === 1 ? 0 : i]!),
          ),
        ];
    } else if (ctx.node.opType === 'Mul' || ctx.node.opType === 'Div') {
      // A symbolic dim times (or over) a number, as Swin's window partition writes
      // `B * (H / 7) * (W / 7)` from the shape: kept as `batch*64` so a Reshape can use it.
      const [da, db] = [ctx.dims(0), ctx.dims(1)];
      if (da?.length === 1 && db?.length === 1) {
        const v = scaleDim(da[0]!, db[0]!, ctx.node.opType === 'Div');
        if (v !== undefined) r.values = [[v]];
      }
    }
    return r;
  },
);

/**
 * `x·y` (or `x / y`) where one side is a symbolic dim and the other a number, as a symbolic dim
 * (`batch*64`); undefined when it is not a whole multiple of the symbol.
 */
function scaleDim(x: Dim, y: Dim, divide: boolean): Dim | undefined {
  const [sym, k] = typeof x === 'string' ? [x, y] : divide ? [undefined, y] : [y, x];
  if (typeof sym !== 'string' || typeof k !== 'number' || k <= 0) return undefined;
  const [base, m] = symbolFactor(sym);
  if (divide && m % k !== 0) return undefined;
  const f = divide ? m / k : m * k;
  return f === 1 ? base : `${base}*${f}`;
}
registerShapeRule(
  ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Not'],
  (ctx) => {
    const r = elementwise('bool')(ctx);
    // torch's expand writes `Where(Equal(shape, -1), ones, shape)` on shape vectors, where the
    // shape may hold the symbolic batch (ViT's class token): a dim is never negative.
    const [a, b] = [ctx.dims(0), ctx.dims(1)];
    const n = vectorLength(a, b);
    if (ctx.node.opType === 'Equal' && a && b && n !== undefined) {
      const eq = Array.from({ length: n }, (_, i) => dimsEqual(at(a, i), at(b, i)));
      if (eq.every((e) => e !== undefined)) r.values = [eq.map((e) => (e ? 1 : 0))];
    }
    return r;
  },
);
registerShapeRule('Where', (ctx) => {
  const [c, x, y] = [ctx.value(0), ctx.dims(1), ctx.dims(2)];
  const n = vectorLength(c, x, y);
  return {
    outputs: [
      {
        dtype: req(ctx, 1).dtype,
        shape: broadcastShapes(
          ctx,
          ctx.inputs.map((v) => v!.shape),
        ),
      },
    ],
    values:
      c && x && y && n !== undefined
        ? [Array.from({ length: n }, (_, i) => (at(c, i) ? at(x, i) : at(y, i)))]
        : undefined,
  };
});

/** Whether two shape entries are equal, when that is known (a symbolic dim is never < 0). */
function dimsEqual(x: Dim, y: Dim): boolean | undefined {
  if (typeof x === 'number' && typeof y === 'number') return x === y;
  if (typeof x === 'string' && typeof y === 'string') return x === y ? true : undefined;
  return (typeof x === 'number' ? x : (y as number)) < 0 ? false : undefined;
}

/** The common length of known value vectors (1 broadcasts), or undefined. */
function vectorLength(...vs: (readonly unknown[] | undefined)[]): number | undefined {
  if (vs.some((v) => !v)) return undefined;
  const n = Math.max(...vs.map((v) => v!.length));
  return vs.every((v) => v!.length === n || v!.length === 1) ? n : undefined;
}

/** Element i of a broadcast vector. */
const at = <T>(v: readonly T[], i: number): T => v[v.length === 1 ? 0 : i]!;

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

/**
 * Integer Mod as ONNX defines it: with fmod = 0 the result takes the divisor's sign (Python's
 * %), with fmod = 1 the dividend's (C's fmod). Swin's padding is `(w − h % w) % w` on shapes.
 */
export function intMod(x: number, y: number, fmod: boolean): number {
  const r = x % y;
  return fmod || r === 0 || Math.sign(r) === Math.sign(y) ? r : r + y;
}
