/** Shape rules: Reductions, indexing and generators: ReduceX, ArgMax, Gather, Expand, Tile, OneHot, ConstantOfShape, Range, the loss op, Constant. */

import { attrInt, attrInts, attrString } from '../graph.js';
import type { ShapeRule } from './registry.js';
import { broadcastShapes, fail, normAxis, registerShapeRule, req } from './registry.js';

function reduce(axesFromInput: boolean): ShapeRule {
  return (ctx) => {
    const x = req(ctx, 0).shape;
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    const raw = axesFromInput ? ctx.value(1) : attrInts(ctx.node, 'axes');
    const noop = attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1;
    if (axesFromInput && ctx.node.inputs[1] && !raw) fail(ctx, `axes must be a constant`);
    const axes =
      raw && raw.length > 0
        ? raw.map((a) => normAxis(ctx, a, x.length))
        : noop
          ? []
          : x.map((_, i) => i);
    const out = keep
      ? x.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.filter((_, i) => !axes.includes(i));
    return { outputs: [{ dtype: req(ctx, 0).dtype, shape: out }] };
  };
}
registerShapeRule(
  [
    'ReduceSum',
    'ReduceMean',
    'ReduceMax',
    'ReduceMin',
    'ReduceProd',
    'ReduceL2',
    'ReduceSumSquare',
    'ReduceL1',
    'ReduceLogSumExp',
  ],
  reduce(true),
);

registerShapeRule(['ArgMax', 'ArgMin'], (ctx) => {
  const x = req(ctx, 0).shape;
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.length);
  const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
  return {
    outputs: [
      {
        dtype: 'int64',
        shape: keep ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis),
      },
    ],
  };
});

registerShapeRule('Gather', (ctx) => {
  const x = req(ctx, 0);
  const idx = req(ctx, 1);
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.shape.length);
  const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
  const v = ctx.dims(0);
  const iv = ctx.value(1);
  const values =
    v && iv && x.shape.length === 1 ? [iv.map((i) => v[i < 0 ? i + v.length : i]!)] : undefined;
  return { outputs: [{ dtype: x.dtype, shape }], values };
});

registerShapeRule('Expand', (ctx) => {
  // The target may hold the symbolic batch (ViT's class token, expanded to the batch).
  const shape = ctx.dims(1);
  if (!shape) fail(ctx, `shape must be a constant`);
  return {
    outputs: [
      { dtype: req(ctx, 0).dtype, shape: broadcastShapes(ctx, [req(ctx, 0).shape, shape]) },
    ],
  };
});

registerShapeRule('Tile', (ctx) => {
  const x = req(ctx, 0).shape;
  const reps = ctx.value(1);
  if (!reps) fail(ctx, `repeats must be a constant`);
  return {
    outputs: [
      {
        dtype: req(ctx, 0).dtype,
        shape: x.map((d, i) => (typeof d === 'number' ? d * reps[i]! : d)),
      },
    ],
  };
});

registerShapeRule('OneHot', (ctx) => {
  const idx = req(ctx, 0).shape;
  const depth = ctx.value(1);
  if (!depth) fail(ctx, `depth must be a constant`);
  const axis = attrInt(ctx.node, 'axis', -1);
  const out = [...idx];
  out.splice(axis < 0 ? idx.length + 1 + axis : axis, 0, depth[0]!);
  return { outputs: [{ dtype: req(ctx, 2).dtype, shape: out }] };
});

registerShapeRule('ConstantOfShape', (ctx) => {
  const shape = ctx.value(0);
  if (!shape) fail(ctx, `shape must be a constant`);
  const a = ctx.node.attrs['value'];
  return { outputs: [{ dtype: a?.type === 'tensor' ? a.value.dtype : 'float32', shape }] };
});

registerShapeRule('Range', (ctx) => {
  const [s, l, d] = [ctx.value(0), ctx.value(1), ctx.value(2)];
  const n =
    s && l && d ? Math.max(0, Math.ceil((l[0]! - s[0]!) / d[0]!)) : `range_${ctx.node.name}`;
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: [n] }] };
});

// SoftmaxCrossEntropyLoss is used by the loss builders in inference-only graphs.
registerShapeRule('SoftmaxCrossEntropyLoss', (ctx) => {
  const x = req(ctx, 0);
  const red = attrString(ctx.node, 'reduction', 'mean');
  return {
    outputs: ctx.node.outputs.map((_, k) => ({
      dtype: x.dtype,
      shape: k === 0 ? (red === 'none' ? [x.shape[0]!] : []) : [...x.shape],
    })),
  };
});

// Constant nodes are folded into initializers on import; a rule keeps graphs built by hand working.
registerShapeRule('Constant', (ctx) => {
  const a = ctx.node.attrs['value'];
  if (!a || a.type !== 'tensor') fail(ctx, `only tensor-valued Constant nodes are supported`);
  return { outputs: [{ dtype: a.value.dtype, shape: [...a.value.dims] }] };
});
