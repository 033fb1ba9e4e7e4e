/** TF op converters: shapes, slicing, stacking, transposes, concatenation and padding. */

import type { Layout } from '../context.js';
import type { RuntimeValue } from '../graph-context.js';
import { rankOf, shapeOf, shortName } from '../graph-context.js';
import { attrStr, input, nodeName, registerTfOp } from './registry.js';

// ---------------------------------------------------------------- sizes

// Shape arithmetic (as Keras Flatten writes it for an open batch: Shape → StridedSlice → Pack →
// Reshape) is evaluated at import time over symbolic sizes; no IR nodes are emitted.
registerTfOp('Shape', (call) => {
  const x = call.cx.runtime(call.node, call.inputs[0], 'x');
  return [{ kind: 'dims', values: [...x.shape], scalar: false }];
});

registerTfOp('StridedSlice', (call) => {
  const { cx, node } = call;
  const v = input(call, 0, 'input');
  if (v.kind === 'value')
    cx.fail(node, `slicing computed tensors is not supported (only shapes and constants)`);
  const values = cx.dims(node, v, 'input');
  if (rankOf(v) !== 1) cx.fail(node, `only 1-D slices are supported`);
  const [begin] = cx.ints(node, call.inputs[1], 'begin');
  const [end] = cx.ints(node, call.inputs[2], 'end');
  const [stride] = cx.ints(node, call.inputs[3], 'strides');
  const mask = (k: string): number => {
    const a = node.attr[k];
    return a?.kind === 'int' ? a.value : 0;
  };
  if (mask('ellipsis_mask') || mask('new_axis_mask') || stride !== 1)
    cx.fail(node, `only stride-1 slices without ellipsis or new axes are supported`);
  const n = values.length;
  const at = (i: number): number => Math.min(n, Math.max(0, i < 0 ? i + n : i));
  if (mask('shrink_axis_mask') & 1) {
    const i = begin! < 0 ? begin! + n : begin!;
    if (i < 0 || i >= n) cx.fail(node, `index ${begin} is out of range for ${n} sizes`);
    return [{ kind: 'dims', values: [values[i]!], scalar: true }];
  }
  const b0 = mask('begin_mask') & 1 ? 0 : at(begin!);
  const e0 = mask('end_mask') & 1 ? n : at(end!);
  return [{ kind: 'dims', values: values.slice(b0, Math.max(b0, e0)), scalar: false }];
});

registerTfOp('Pack', (call) => {
  const { cx, node } = call;
  const axis = node.attr.axis;
  if (axis?.kind === 'int' && axis.value !== 0)
    cx.fail(node, `only packing sizes (axis 0) is supported`);
  const values = call.inputs.map((v, i) => {
    if (v.kind === 'value' || rankOf(v) !== 0)
      cx.fail(node, `only packing scalar sizes is supported (input ${i})`);
    return cx.dims(node, v, 'size')[0]!;
  });
  return [{ kind: 'dims', values, scalar: false }];
});

registerTfOp('Transpose', (call) => {
  const { cx, node } = call;
  const x = cx.runtime(node, call.inputs[0], 'x');
  const perm = cx.ints(node, call.inputs[1], 'perm');
  const r = x.shape.length;
  if (perm.length !== r || [...perm].sort((p, q) => p - q).some((p, i) => p !== i))
    cx.fail(node, `perm [${perm.join(', ')}] is not a permutation of rank ${r}`);
  const y = cx.b.op('Transpose', [cx.to(x, 'keras')], { perm }, nodeName(call));
  return [{ kind: 'value', name: y, layout: 'keras', shape: perm.map((p) => x.shape[p]!) }];
});

registerTfOp(['ConcatV2', 'Concat'], (call) => {
  const { cx, node } = call;
  const v1 = node.op === 'ConcatV2';
  const parts = v1 ? call.inputs.slice(0, -1) : call.inputs.slice(1);
  const axisIn = v1 ? call.inputs[call.inputs.length - 1] : call.inputs[0];
  const raw = cx.ints(node, axisIn, 'axis');
  if (raw.length !== 1) cx.fail(node, `the axis must be one int`);
  if (parts.length === 0) cx.fail(node, `has no tensors to concatenate`);
  const r = rankOf(parts[0]!);
  if (!parts.every((p) => rankOf(p) === r)) cx.fail(node, `inputs must have the same rank`);
  const a = raw[0]! < 0 ? raw[0]! + r : raw[0]!;
  if (a < 0 || a >= r) cx.fail(node, `axis ${raw[0]} is out of range for rank ${r}`);
  const runtime = parts.filter((p): p is RuntimeValue => p.kind === 'value');
  const layout: Layout = r >= 3 ? (runtime[0]?.layout ?? 'keras') : 'keras';
  const names = parts.map((p) =>
    p.kind === 'value' ? cx.to(p, layout) : cx.operand(node, p, layout, r),
  );
  const shapes = parts.map(shapeOf);
  const sizes = shapes.map((s) => s[a]!);
  const shape = shapes[0]!.map((d, i) => {
    if (i === a) {
      return sizes.every((z) => typeof z === 'number')
        ? (sizes as number[]).reduce((p, q) => p + q, 0)
        : `${shortName(node.name)}_axis`;
    }
    return shapes.map((s) => s[i]!).find((z) => typeof z === 'number') ?? d;
  });
  const y = cx.b.op('Concat', names, { axis: cx.irAxis(layout, r, a) }, nodeName(call));
  return [{ kind: 'value', name: y, layout, shape }];
});

registerTfOp(['Pad', 'PadV2', 'MirrorPad'], (call) => {
  const { cx, node } = call;
  const x = cx.runtime(node, call.inputs[0], 'x');
  const r = x.shape.length;
  const p = cx.ints(node, call.inputs[1], 'paddings');
  if (p.length !== 2 * r) cx.fail(node, `paddings must be [${r}, 2], got ${p.length} ints`);
  if (p.some((d) => d < 0)) cx.fail(node, `negative paddings are not supported`);
  let mode = 'constant';
  let extraZero = false;
  const extra: string[] = [];
  if (node.op === 'MirrorPad') {
    const m = attrStr(call, 'mode');
    // ONNX reflect is TF REFLECT (the edge is not repeated); SYMMETRIC has no ONNX mode.
    if (m !== 'REFLECT') cx.fail(node, `mode ${m} is not supported (REFLECT)`);
    mode = 'reflect';
  } else if (node.op === 'PadV2') {
    const c = cx.floats(node, call.inputs[2], 'constant value');
    if (c.data.length !== 1) cx.fail(node, `the constant value must be a scalar`);
    extra.push(cx.b.scalar(c.data[0]!));
    extraZero = c.data[0] === 0;
  }
  const layout: Layout = r >= 3 ? x.layout : 'keras';
  const pads = new Array<number>(2 * r).fill(0);
  for (let a = 0; a < r; a++) {
    const j = cx.irAxis(layout, r, a);
    pads[j] = p[2 * a]!;
    pads[j + r] = p[2 * a + 1]!;
  }
  const y = cx.b.op('Pad', [cx.to(x, layout), cx.b.ints(pads), ...extra], { mode }, nodeName(call));
  if (mode === 'constant' && (node.op === 'Pad' || extraZero)) cx.zeroPadded.add(y);
  const shape = x.shape.map((d, a) => {
    const more = p[2 * a]! + p[2 * a + 1]!;
    if (more === 0) return d;
    return typeof d === 'number' ? d + more : `${shortName(node.name)}_out${a}`;
  });
  return [{ kind: 'value', name: y, layout, shape }];
});
