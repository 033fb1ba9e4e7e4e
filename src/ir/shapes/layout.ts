/** Shape rules: Ops that rearrange or resize: Flatten, Reshape, Transpose, Concat, Split, Slice, Squeeze, Unsqueeze, Pad, Resize. */

import type { Dim, ValueInfo } from '../graph.js';
import { attrInt, attrInts } from '../graph.js';
import { sliceBounds, wrapAxis } from '../axes.js';
import { fail, normAxis, registerShapeRule, req, symbolFactor } from './registry.js';

registerShapeRule('Flatten', (ctx) => {
  const x = req(ctx, 0).shape;
  const axis = attrInt(ctx.node, 'axis', 1);
  const a = wrapAxis(axis, x.length);
  const prod = (ds: Dim[]): Dim =>
    ds.length === 1
      ? ds[0]!
      : ds.every((d) => typeof d === 'number')
        ? (ds as number[]).reduce((p, d) => p * d, 1)
        : `flat_${ctx.node.name}_${ds.join('x')}`;
  return {
    outputs: [{ dtype: req(ctx, 0).dtype, shape: [prod(x.slice(0, a)), prod(x.slice(a))] }],
  };
});

/**
 * The size of a Reshape's -1 dim: the input's elements over the other target dims. Symbolic dims
 * that appear on both sides cancel (a dynamic batch read back through Shape → Gather, as
 * torch writes `x.view(b, -1, h, w)`); one left over on the input side carries over when the
 * numbers match. Undefined when it cannot be known.
 */
function inferredDim(
  input: readonly Dim[],
  known: readonly Dim[],
  bad: () => never,
): Dim | undefined {
  // `batch*64` (a symbol times a number, from shape arithmetic) counts as `batch` and 64.
  const syms: string[] = [];
  let numIn = 1;
  for (const d of input) {
    if (typeof d === 'number') numIn *= d;
    else {
      const [s, m] = symbolFactor(d);
      syms.push(s);
      numIn *= m;
    }
  }
  let numOut = 1;
  for (const d of known) {
    if (typeof d === 'number') numOut *= d;
    else {
      const [s, m] = symbolFactor(d);
      const k = syms.indexOf(s);
      if (k < 0) return undefined;
      syms.splice(k, 1);
      numOut *= m;
    }
  }
  if (syms.length > 1) return undefined;
  if (numOut === 0 || numIn % numOut !== 0) return syms.length === 0 ? bad() : undefined;
  const n = numIn / numOut;
  if (syms.length === 0) return n;
  return n === 1 ? syms[0] : undefined;
}

registerShapeRule('Reshape', (ctx) => {
  const x = req(ctx, 0);
  const target = ctx.dims(1);
  if (!target) fail(ctx, `the target shape is not a constant`);
  const allowZero = attrInt(ctx.node, 'allowzero', 0) === 1;
  const out: Dim[] = target.map((d, i) => (d === 0 && !allowZero ? x.shape[i]! : d));
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    out[neg] =
      inferredDim(
        x.shape,
        out.filter((_, i) => i !== neg),
        () => fail(ctx, `cannot reshape [${x.shape.join(',')}] to [${target.join(',')}]`),
      ) ?? `reshape_${ctx.node.name}`;
  }
  return { outputs: [{ dtype: x.dtype, shape: out }], values: [ctx.dims(0)] };
});

registerShapeRule('Transpose', (ctx) => {
  const x = req(ctx, 0).shape;
  const perm = attrInts(
    ctx.node,
    'perm',
    x.map((_, i) => x.length - 1 - i),
  );
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: perm.map((p) => x[p]!) }] };
});

registerShapeRule('Concat', (ctx) => {
  const ins = ctx.inputs.filter((v): v is ValueInfo => !!v);
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), ins[0]!.shape.length);
  const out = [...ins[0]!.shape];
  let sum: Dim = 0;
  for (const v of ins) {
    const d = v.shape[axis]!;
    sum = typeof sum === 'number' && typeof d === 'number' ? sum + d : `concat_${ctx.node.name}`;
  }
  out[axis] = sum;
  const vals = ctx.node.inputs.map((_, k) => ctx.dims(k));
  return {
    outputs: [{ dtype: ins[0]!.dtype, shape: out }],
    values: [
      ins[0]!.shape.length === 1 && vals.every((v) => v) ? (vals as Dim[][]).flat() : undefined,
    ],
  };
});

registerShapeRule('Split', (ctx) => {
  const x = req(ctx, 0);
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.shape.length);
  const n = ctx.node.outputs.length;
  let sizes = ctx.value(1);
  if (!sizes) {
    const d = x.shape[axis]!;
    if (typeof d !== 'number') fail(ctx, `cannot split a symbolic axis without sizes`);
    const chunk = Math.ceil(d / n);
    sizes = Array.from({ length: n }, (_, i) => Math.min(chunk, d - chunk * i));
  }
  return {
    outputs: sizes.map((s) => ({
      dtype: x.dtype,
      shape: x.shape.map((d, i) => (i === axis ? s : d)),
    })),
  };
});

registerShapeRule('Slice', (ctx) => {
  const x = req(ctx, 0);
  const starts = ctx.value(1);
  const ends = ctx.value(2);
  if (!starts || !ends) fail(ctx, `starts and ends must be constants`);
  const axes = ctx.value(3) ?? starts.map((_, i) => i);
  const steps = ctx.value(4) ?? starts.map(() => 1);
  const out = [...x.shape];
  axes.forEach((ax, i) => {
    const a = normAxis(ctx, ax, x.shape.length);
    const d = x.shape[a]!;
    if (typeof d !== 'number') {
      out[a] = `slice_${ctx.node.name}_${a}`;
      return;
    }
    out[a] = sliceBounds(starts[i]!, ends[i]!, steps[i]!, d).count;
  });
  // dims, not value: a slice of a shape vector keeps its symbolic entries (tf2onnx's Flatten).
  const v = ctx.dims(0);
  let values: Dim[] | undefined;
  if (v && x.shape.length === 1 && steps[0] === 1) {
    const d = v.length;
    const b = sliceBounds(starts[0]!, ends[0]!, 1, d);
    values = v.slice(b.start, b.end);
  }
  return { outputs: [{ dtype: x.dtype, shape: out }], values: [values] };
});

registerShapeRule('Squeeze', (ctx) => {
  const x = req(ctx, 0).shape;
  const axes =
    ctx.value(1)?.map((a) => normAxis(ctx, a, x.length)) ??
    x.flatMap((d, i) => (d === 1 ? [i] : []));
  return {
    outputs: [{ dtype: req(ctx, 0).dtype, shape: x.filter((_, i) => !axes.includes(i)) }],
    values: [ctx.dims(0)],
  };
});

registerShapeRule('Unsqueeze', (ctx) => {
  const x = req(ctx, 0).shape;
  const axesRaw = ctx.value(1);
  if (!axesRaw) fail(ctx, `axes must be a constant`);
  const rank = x.length + axesRaw.length;
  const axes = axesRaw.map((a) => normAxis(ctx, a, rank));
  const out: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(axes.includes(i) ? 1 : x[k++]!);
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: out }], values: [ctx.dims(0)] };
});

registerShapeRule('Pad', (ctx) => {
  const x = req(ctx, 0).shape;
  const pads = ctx.value(1);
  if (!pads) fail(ctx, `pads must be a constant`);
  const axes = ctx.value(3)?.map((a) => normAxis(ctx, a, x.length)) ?? x.map((_, i) => i);
  const out = [...x];
  axes.forEach((a, i) => {
    const d = x[a]!;
    out[a] =
      typeof d === 'number' ? d + pads[i]! + pads[i + axes.length]! : `pad_${ctx.node.name}_${a}`;
  });
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: out }] };
});

registerShapeRule('Resize', (ctx) => {
  const x = req(ctx, 0).shape;
  const sizes = ctx.value(3);
  let out: Dim[];
  if (sizes && sizes.length > 0) out = sizes;
  else {
    const scales = ctx.floats(2);
    if (!scales) fail(ctx, `scales or sizes must be constants`);
    out = x.map((d, i) =>
      typeof d === 'number'
        ? Math.floor(d * scales[i]!)
        : scales[i] === 1
          ? d
          : `${d}*${scales[i]}`,
    );
  }
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: out }] };
});
