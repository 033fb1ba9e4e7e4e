/** Shape rules: Matrix products and normalisations. */

import type { Dim } from '../graph.js';
import { attrInt } from '../graph.js';
import { broadcastShapes, fail, normAxis, registerShapeRule, req } from './registry.js';

registerShapeRule('Gemm', (ctx) => {
  const a = req(ctx, 0);
  const b = req(ctx, 1);
  const ta = attrInt(ctx.node, 'transA', 0);
  const tb = attrInt(ctx.node, 'transB', 0);
  const m = ta ? a.shape[1]! : a.shape[0]!;
  const ka = ta ? a.shape[0]! : a.shape[1]!;
  const kb = tb ? b.shape[1]! : b.shape[0]!;
  const n = tb ? b.shape[0]! : b.shape[1]!;
  if (typeof ka === 'number' && typeof kb === 'number' && ka !== kb)
    fail(ctx, `inner dimensions ${ka} and ${kb} differ`);
  return { outputs: [{ dtype: a.dtype, shape: [m, n] }] };
});

registerShapeRule('MatMul', (ctx) => {
  const a = req(ctx, 0).shape;
  const b = req(ctx, 1).shape;
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const k1 = a2[a2.length - 1]!;
  const k2 = b2[b2.length - 2]!;
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2)
    fail(ctx, `inner dimensions ${k1} and ${k2} differ`);
  const batch = broadcastShapes(ctx, [a2.slice(0, -2), b2.slice(0, -2)]);
  const out: Dim[] = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]!);
  if (b.length > 1) out.push(b2[b2.length - 1]!);
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: out }] };
});

registerShapeRule('BatchNormalization', (ctx) => {
  const x = req(ctx, 0);
  const c = [x.shape[1]!];
  return {
    outputs: ctx.node.outputs.map((_, k) => ({
      dtype: x.dtype,
      shape: k === 0 ? [...x.shape] : c,
    })),
  };
});

registerShapeRule('LayerNormalization', (ctx) => {
  const x = req(ctx, 0);
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), x.shape.length);
  const stat = x.shape.map((d, i) => (i < axis ? d : 1));
  return {
    outputs: ctx.node.outputs.map((_, k) => ({
      dtype: k === 0 ? x.dtype : 'float32',
      shape: k === 0 ? [...x.shape] : stat,
    })),
  };
});

registerShapeRule('Dropout', (ctx) => {
  const x = req(ctx, 0);
  return {
    outputs: ctx.node.outputs.map((_, k) => ({
      dtype: k === 0 ? x.dtype : 'bool',
      shape: [...x.shape],
    })),
  };
});
