/** TF op converters: reductions, squeeze/expand and reshape. */

import type { Dim } from '../../../../ir/graph.js';
import type { Layout } from '../context.js';
import type { RuntimeValue } from '../graph-context.js';
import { shortName } from '../graph-context.js';
import { wrapAxis } from '../../../../ir/axes.js';
import { attrBool, attrInts, nodeName, registerTfOp } from './registry.js';
import type { OpCall, OpConverter } from './registry.js';

// ---------------------------------------------------------------- shapes and axes

export function normAxes(call: OpCall, axes: number[], r: number): number[] {
  const out = axes.map((a) => wrapAxis(a, r));
  if (out.some((a) => a < 0 || a >= r))
    call.cx.fail(call.node, `axes [${axes.join(', ')}] are out of range for rank ${r}`);
  return [...new Set(out)].sort((p, q) => p - q);
}

/**
 * The layout in which axes `removed` (TF numbering) can be dropped from `x` with the result
 * still in a known layout: `cf` when x is `cf` and neither the batch nor the channel axis goes
 * (the rest stays [N, C, spatial…]); TF order otherwise.
 */
export function removalLayout(x: RuntimeValue, removed: number[]): Layout {
  const r = x.shape.length;
  if (x.layout !== 'cf' || r < 3) return 'keras';
  return removed.includes(0) || removed.includes(r - 1) ? 'keras' : 'cf';
}

function reduce(op: string): OpConverter {
  return (call) => {
    const { cx, node } = call;
    const x = cx.runtime(node, call.inputs[0], 'x');
    const r = x.shape.length;
    const axes = normAxes(call, cx.ints(node, call.inputs[1], 'axes'), r);
    const keep = attrBool(call, 'keep_dims', false);
    const layout = keep ? (r >= 3 ? x.layout : 'keras') : removalLayout(x, axes);
    const irAxes = axes.map((a) => cx.irAxis(layout, r, a));
    const y = cx.b.op(
      op,
      [cx.to(x, layout), cx.b.ints(irAxes)],
      { keepdims: keep ? 1 : 0 },
      nodeName(call),
    );
    const shape = keep
      ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !axes.includes(i));
    return [{ kind: 'value', name: y, layout: shape.length >= 3 ? layout : 'keras', shape }];
  };
}

registerTfOp('Mean', reduce('ReduceMean'));
registerTfOp('Sum', reduce('ReduceSum'));
registerTfOp('Max', reduce('ReduceMax'));
registerTfOp('Min', reduce('ReduceMin'));
registerTfOp('Prod', reduce('ReduceProd'));

registerTfOp('Squeeze', (call) => {
  const { cx, node } = call;
  const x = cx.runtime(node, call.inputs[0], 'x');
  const r = x.shape.length;
  const listed = attrInts(call, 'squeeze_dims', attrInts(call, 'axis', []));
  let axes: number[];
  if (listed.length === 0) {
    if (x.shape.some((d) => typeof d !== 'number'))
      cx.fail(node, `squeezing every size-1 axis needs a known shape; list the axes`);
    axes = x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  } else {
    axes = normAxes(call, listed, r);
    const bad = axes.find((a) => typeof x.shape[a] === 'number' && x.shape[a] !== 1);
    if (bad !== undefined) cx.fail(node, `axis ${bad} has size ${x.shape[bad]}, not 1`);
  }
  const layout = removalLayout(x, axes);
  const y = cx.b.op(
    'Squeeze',
    [cx.to(x, layout), cx.b.ints(axes.map((a) => cx.irAxis(layout, r, a)))],
    {},
    nodeName(call),
  );
  const shape = x.shape.filter((_, i) => !axes.includes(i));
  return [{ kind: 'value', name: y, layout: shape.length >= 3 ? layout : 'keras', shape }];
});

registerTfOp('ExpandDims', (call) => {
  const { cx, node } = call;
  const x = cx.runtime(node, call.inputs[0], 'x');
  const raw = cx.ints(node, call.inputs[1], 'axis');
  if (raw.length !== 1) cx.fail(node, `the axis must be one int`);
  const r = x.shape.length + 1;
  const a = raw[0]! < 0 ? raw[0]! + r : raw[0]!;
  if (a < 0 || a >= r) cx.fail(node, `axis ${raw[0]} is out of range for rank ${r}`);
  const y = cx.b.op('Unsqueeze', [cx.to(x, 'keras'), cx.b.ints([a])], {}, nodeName(call));
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return [{ kind: 'value', name: y, layout: 'keras', shape }];
});

registerTfOp('Reshape', (call) => {
  const { cx, node } = call;
  const x = cx.runtime(node, call.inputs[0], 'tensor');
  const target = reshapeTarget(call, x, cx.dims(node, call.inputs[1], 'shape'));
  if (target.some((d) => d === 0 || d < KEEP) || target.filter((d) => d === -1).length > 1)
    cx.fail(node, `shape [${target.join(', ')}] may hold one -1 and otherwise positive sizes`);
  const prod = (ds: number[]): number => ds.reduce((p, q) => p * q, 1);
  const numbers = (ds: Dim[]): number[] => ds.filter((d): d is number => typeof d === 'number');
  // The -1 size: the input's known sizes over the target's, when the symbolic sizes of the
  // input are exactly those kept in place (e.g. [batch, 5, 5, 8] → [batch, -1]) or absent.
  const kept = target.flatMap((d, i) => (d === KEEP ? [x.shape[i]!] : []));
  const symbols = x.shape.filter((d) => typeof d === 'string');
  const keptAll = symbols.length === kept.length && symbols.every((d) => kept.includes(d));
  const inferred = prod(numbers(x.shape)) / prod(target.filter((d) => d > 0));
  const shape: Dim[] = target.map((d, i) => {
    if (d === KEEP) return x.shape[i]!;
    if (d !== -1) return d;
    if (keptAll && Number.isInteger(inferred)) return inferred;
    // [-1, …] over the same per-example size keeps the batch size.
    if (i === 0 && symbols.length === 1 && x.shape[0] === symbols[0] && inferred === 1)
      return x.shape[0]!;
    return `${shortName(node.name)}_size`;
  });
  // ONNX Reshape's 0 copies the input size at that position: the kept symbolic sizes.
  const onnxTarget = target.map((d) => (d === KEEP ? 0 : d));
  const y = cx.b.op('Reshape', [cx.to(x, 'keras'), cx.b.ints(onnxTarget)], {}, nodeName(call));
  return [{ kind: 'value', name: y, layout: 'keras', shape }];
});

/** Marks a target size that is the input's own (symbolic) size at the same position. */
export const KEEP = -2;

/**
 * A Reshape target from sizes that may be symbolic (`Shape` arithmetic for an open batch): a
 * symbolic size equal to the input's size at the same position is kept (ONNX Reshape's 0), one
 * other unknown becomes -1; anything else needs the input shape.
 */
export function reshapeTarget(call: OpCall, x: RuntimeValue, dims: Dim[]): number[] {
  const out = dims.map((d, i) => (typeof d === 'number' ? d : d === x.shape[i] ? KEEP : NaN));
  const open = out.filter((d) => Number.isNaN(d)).length;
  if (open === 0) return out;
  if (open === 1 && !out.includes(-1)) return out.map((d) => (Number.isNaN(d) ? -1 : d));
  return call.cx.fail(
    call.node,
    `the target shape [${dims.join(', ')}] depends on the input size; give the input shape`,
  );
}
