/** The TF op-converter registry (keyed by TF op name) and the attribute, window and fused-activation helpers the converters share. */

import type { Dim } from '../../../../ir/graph.js';
import type { Layout } from '../context.js';
import type { GraphContext, RuntimeValue, TfNode, TfValue } from '../graph-context.js';
import { shortName } from '../graph-context.js';
import { tfWindow } from '../tf-conv.js';

/** One node: the context, the node and its input values (in TF input order). */
export interface OpCall {
  cx: GraphContext;
  node: TfNode;
  inputs: TfValue[];
}

/** Converts one node and returns its output values (output k is TF's `node:k`). */
export type OpConverter = (call: OpCall) => TfValue[];

const converters = new Map<string, OpConverter>();

/** Registers the converter of TF op names (several names may share one). */
export function registerTfOp(op: string | string[], conv: OpConverter): void {
  for (const o of Array.isArray(op) ? op : [op]) converters.set(o, conv);
}

/** The converter of a TF op, if any. */
export function tfOpConverter(op: string): OpConverter | undefined {
  return converters.get(op);
}

/** TF op names the graph-model importer converts (Placeholder and Const are read directly). */
export function supportedTfOps(): string[] {
  return [...converters.keys(), 'Const', 'Placeholder'].sort();
}

// ---------------------------------------------------------------- attributes

export function attrFloat(call: OpCall, key: string, def: number): number {
  const a = call.node.attr[key];
  if (a === undefined) return def;
  if (a.kind !== 'float') call.cx.fail(call.node, `attribute '${key}' must be a float`);
  return a.value;
}

export function attrBool(call: OpCall, key: string, def: boolean): boolean {
  const a = call.node.attr[key];
  if (a === undefined) return def;
  if (a.kind !== 'bool') call.cx.fail(call.node, `attribute '${key}' must be true or false`);
  return a.value;
}

export function attrStr(call: OpCall, key: string, def?: string): string {
  const a = call.node.attr[key];
  if (a === undefined && def !== undefined) return def;
  if (a?.kind !== 'string') call.cx.fail(call.node, `attribute '${key}' must be a string`);
  return a.value;
}

export function attrInts(call: OpCall, key: string, def?: number[]): number[] {
  const a = call.node.attr[key];
  if (a === undefined && def !== undefined) return def;
  if (a?.kind !== 'list') call.cx.fail(call.node, `attribute '${key}' must be a list of ints`);
  return a.ints;
}

function attrStrs(call: OpCall, key: string): string[] {
  const a = call.node.attr[key];
  if (a === undefined) return [];
  if (a.kind !== 'list') call.cx.fail(call.node, `attribute '${key}' must be a list of strings`);
  return a.strings;
}

export function nodeName(call: OpCall): { name: string } {
  return { name: shortName(call.node.name) };
}

export function input(call: OpCall, i: number, what: string): TfValue {
  const v = call.inputs[i];
  if (!v) call.cx.fail(call.node, `has no ${what} input (input ${i})`);
  return v;
}

export function nhwc(call: OpCall): void {
  const fmt = attrStr(call, 'data_format', 'NHWC');
  if (fmt !== 'NHWC') {
    call.cx.fail(
      call.node,
      `data_format ${fmt} is not supported (only NHWC, as TF.js runs it); convert the model with NHWC layers`,
    );
  }
}

export function numeric(call: OpCall, d: Dim, what: string): number {
  if (typeof d !== 'number')
    call.cx.fail(call.node, `the ${what} must be known (it is '${d}'); give the input shape`);
  return d;
}

// ---------------------------------------------------------------- windows

/**
 * Pads and output sizes of a 2-D window op with TF's rules: VALID has no padding; SAME makes
 * ceil(in / stride) outputs and pads the total (out − 1)·stride + window − in, the smaller half
 * first; EXPLICIT takes `explicit_paddings` (pairs per NHWC axis). When a SAME total depends on
 * an unknown size, `auto_pad` SAME_UPPER (the same rule, resolved by the runtime) is returned.
 */
export function window(
  call: OpCall,
  sizes: Dim[],
  kernel: number[],
  strides: number[],
  dilations: number[],
): { attrs: Record<string, number[] | string>; out: Dim[] } {
  const padding = attrStr(call, 'padding');
  if (padding !== 'SAME' && padding !== 'VALID' && padding !== 'EXPLICIT')
    call.cx.fail(call.node, `padding '${padding}' is not supported (SAME, VALID, EXPLICIT)`);
  const explicit = padding === 'EXPLICIT' ? attrInts(call, 'explicit_paddings') : [];
  if (padding === 'EXPLICIT' && explicit.length !== 8)
    call.cx.fail(call.node, `explicit_paddings must hold 8 ints (4 pairs), got ${explicit.length}`);
  const w = tfWindow(
    sizes,
    kernel,
    strides,
    dilations,
    padding === 'EXPLICIT'
      ? {
          explicit: sizes.map((_, i) => [explicit[2 * (i + 1)]!, explicit[2 * (i + 1) + 1]!]),
        }
      : padding === 'SAME'
        ? 'same'
        : 'valid',
    (message) => call.cx.fail(call.node, message),
    (i) => `${shortName(call.node.name)}_out${i}`,
  );
  return { attrs: w.pads ? { pads: w.pads } : { auto_pad: 'SAME_UPPER' }, out: w.out };
}

export function spatial4(call: OpCall, x: RuntimeValue): { sizes: Dim[]; channels: Dim } {
  if (x.shape.length !== 4)
    call.cx.fail(call.node, `expects a rank-4 NHWC input, got shape [${x.shape.join(', ')}]`);
  return { sizes: x.shape.slice(1, 3), channels: x.shape[3]! };
}

// ---------------------------------------------------------------- activations

/** Fused activations of _FusedConv2D / _FusedMatMul (tfjs-converter's names, lower case). */
const FUSED_ACTIVATIONS = ['relu', 'relu6', 'elu', 'leakyrelu', 'sigmoid', 'tanh', 'prelu'];

/** Applies a fused activation to `y` (held in `layout`, TF rank `r`). */
export function fusedActivation(
  call: OpCall,
  y: string,
  act: string | undefined,
  layout: Layout,
  r: number,
  preluAlpha: TfValue | undefined,
  base: string,
): string {
  const b = call.cx.b;
  const opts = { name: `${base}_${act ?? 'act'}` };
  switch (act) {
    case undefined:
      return y;
    case 'relu':
      return b.op('Relu', [y], {}, opts);
    case 'relu6':
      return b.op('Clip', [y, b.scalar(0), b.scalar(6)], {}, opts);
    case 'elu':
      return b.op('Elu', [y], { alpha: 1 }, opts);
    case 'leakyrelu':
      return b.op('LeakyRelu', [y], { alpha: attrFloat(call, 'leakyrelu_alpha', 0.2) }, opts);
    case 'sigmoid':
      return b.op('Sigmoid', [y], {}, opts);
    case 'tanh':
      return b.op('Tanh', [y], {}, opts);
    case 'prelu': {
      const alpha = call.cx.constant(call.node, preluAlpha, 'prelu alpha');
      return b.op('PRelu', [y, call.cx.operand(call.node, alpha, layout, r)], {}, opts);
    }
    default:
      return call.cx.fail(
        call.node,
        `fused activation '${act}' is not supported (${FUSED_ACTIVATIONS.join(', ')})`,
      );
  }
}

/** The fused ops of a _Fused* node: the extra op (biasadd / fusedbatchnorm) and activation. */
export function fusedOps(call: OpCall): { extra?: string; act?: string } {
  const ops = attrStrs(call, 'fused_ops').map((s) => s.toLowerCase());
  if (ops.length > 2)
    call.cx.fail(call.node, `fused_ops [${ops.join(', ')}] has more than two ops`);
  // TF.js reads [extra op, activation]; an activation alone is also accepted.
  if (ops.length === 1 && FUSED_ACTIVATIONS.includes(ops[0]!)) return { act: ops[0] };
  if (ops[0] !== undefined && ops[0] !== 'biasadd' && ops[0] !== 'fusedbatchnorm')
    call.cx.fail(call.node, `fused op '${ops[0]}' is not supported (BiasAdd, FusedBatchNorm)`);
  return { extra: ops[0], act: ops[1] };
}
