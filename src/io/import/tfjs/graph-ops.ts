/**
 * The TensorFlow op converters of the graph-model importer, keyed by TF op name: each turns one
 * GraphDef node into IR nodes with the arithmetic TF.js' graph executor uses (tfjs-converter's
 * op mappings: attribute names, defaults, fused ops). Convolutions and pools run channels-first;
 * TF filters are converted (Conv2D HWIO → OIHW, depthwise H×W×C×M → (C·M)×1×H×W with group C)
 * and SAME padding is resolved to explicit pads when sizes are known.
 */

import type { Dim } from '../../../ir/graph.js';
import { tensor } from '../../../ir/tensor.js';
import type { Layout } from './context.js';
import { transposeData } from './context.js';
import type { GraphContext, RuntimeValue, TfNode, TfValue } from './graph-context.js';
import { rankOf, shapeOf, shortName } from './graph-context.js';
import { wrapAxis } from '../../../ir/axes.js';

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

function attrFloat(call: OpCall, key: string, def: number): number {
  const a = call.node.attr[key];
  if (a === undefined) return def;
  if (a.kind !== 'float') call.cx.fail(call.node, `attribute '${key}' must be a float`);
  return a.value;
}

function attrBool(call: OpCall, key: string, def: boolean): boolean {
  const a = call.node.attr[key];
  if (a === undefined) return def;
  if (a.kind !== 'bool') call.cx.fail(call.node, `attribute '${key}' must be true or false`);
  return a.value;
}

function attrStr(call: OpCall, key: string, def?: string): string {
  const a = call.node.attr[key];
  if (a === undefined && def !== undefined) return def;
  if (a?.kind !== 'string') call.cx.fail(call.node, `attribute '${key}' must be a string`);
  return a.value;
}

function attrInts(call: OpCall, key: string, def?: number[]): number[] {
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

function nodeName(call: OpCall): { name: string } {
  return { name: shortName(call.node.name) };
}

function input(call: OpCall, i: number, what: string): TfValue {
  const v = call.inputs[i];
  if (!v) call.cx.fail(call.node, `has no ${what} input (input ${i})`);
  return v;
}

function nhwc(call: OpCall): void {
  const fmt = attrStr(call, 'data_format', 'NHWC');
  if (fmt !== 'NHWC') {
    call.cx.fail(
      call.node,
      `data_format ${fmt} is not supported (only NHWC, as TF.js runs it); convert the model with NHWC layers`,
    );
  }
}

function numeric(call: OpCall, d: Dim, what: string): number {
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
function window(
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
  const begin: number[] = [];
  const end: number[] = [];
  const out: Dim[] = [];
  let dynamic = false;
  sizes.forEach((size, i) => {
    const eff = (kernel[i]! - 1) * dilations[i]! + 1;
    const s = strides[i]!;
    if (!(s >= 1)) call.cx.fail(call.node, `strides must be ≥ 1`);
    let b0 = 0;
    let e0 = 0;
    if (padding === 'EXPLICIT') {
      b0 = explicit[2 * (i + 1)]!;
      e0 = explicit[2 * (i + 1) + 1]!;
    } else if (padding === 'SAME') {
      if (typeof size !== 'number') {
        if (s !== 1) {
          dynamic = true;
          out.push(`${shortName(call.node.name)}_out${i}`);
          begin.push(0);
          end.push(0);
          return;
        }
        b0 = Math.floor((eff - 1) / 2);
        e0 = eff - 1 - b0;
      } else {
        const o = Math.ceil(size / s);
        const total = Math.max(0, (o - 1) * s + eff - size);
        b0 = Math.floor(total / 2);
        e0 = total - b0;
      }
    }
    begin.push(b0);
    end.push(e0);
    if (typeof size === 'number') {
      const padded = size + b0 + e0;
      if (padded < eff)
        call.cx.fail(call.node, `input size ${size} is smaller than the window ${eff}`);
      out.push(Math.floor((padded - eff) / s) + 1);
    } else {
      // An unknown size stays itself only when the pads make up exactly for the window.
      out.push(s === 1 && b0 + e0 === eff - 1 ? size : `${shortName(call.node.name)}_out${i}`);
    }
  });
  return {
    attrs: dynamic ? { auto_pad: 'SAME_UPPER' } : { pads: [...begin, ...end] },
    out,
  };
}

function spatial4(call: OpCall, x: RuntimeValue): { sizes: Dim[]; channels: Dim } {
  if (x.shape.length !== 4)
    call.cx.fail(call.node, `expects a rank-4 NHWC input, got shape [${x.shape.join(', ')}]`);
  return { sizes: x.shape.slice(1, 3), channels: x.shape[3]! };
}

// ---------------------------------------------------------------- activations

/** Fused activations of _FusedConv2D / _FusedMatMul (tfjs-converter's names, lower case). */
const FUSED_ACTIVATIONS = ['relu', 'relu6', 'elu', 'leakyrelu', 'sigmoid', 'tanh', 'prelu'];

/** Applies a fused activation to `y` (held in `layout`, TF rank `r`). */
function fusedActivation(
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
function fusedOps(call: OpCall): { extra?: string; act?: string } {
  const ops = attrStrs(call, 'fused_ops').map((s) => s.toLowerCase());
  if (ops.length > 2)
    call.cx.fail(call.node, `fused_ops [${ops.join(', ')}] has more than two ops`);
  // TF.js reads [extra op, activation]; an activation alone is also accepted.
  if (ops.length === 1 && FUSED_ACTIVATIONS.includes(ops[0]!)) return { act: ops[0] };
  if (ops[0] !== undefined && ops[0] !== 'biasadd' && ops[0] !== 'fusedbatchnorm')
    call.cx.fail(call.node, `fused op '${ops[0]}' is not supported (BiasAdd, FusedBatchNorm)`);
  return { extra: ops[0], act: ops[1] };
}

// ---------------------------------------------------------------- convolutions

type ConvKind = 'conv' | 'depthwise';

function convolution(kind: ConvKind, fused: boolean): OpConverter {
  return (call) => {
    const { cx, node } = call;
    nhwc(call);
    const x = cx.runtime(node, call.inputs[0], 'image');
    const { sizes, channels } = spatial4(call, x);
    const f = cx.floats(node, call.inputs[1], 'filter');
    if (f.dims.length !== 4) cx.fail(node, `the filter must be rank 4, got [${f.dims.join(', ')}]`);
    const [kh, kw, fin, fout] = f.dims as [number, number, number, number];
    const cin = numeric(call, channels, 'number of input channels');
    const s4 = attrInts(call, 'strides', [1, 1, 1, 1]);
    const d4 = attrInts(call, 'dilations', [1, 1, 1, 1]);
    if (s4.length !== 4 || d4.length !== 4)
      cx.fail(node, `strides and dilations must hold 4 ints (NHWC)`);
    const strides = [s4[1]!, s4[2]!];
    const dilations = [d4[1]!, d4[2]!];
    let group = 1;
    let cout: number;
    let w: string;
    if (kind === 'conv') {
      if (cin % fin !== 0)
        cx.fail(node, `${cin} input channels do not split into filters of depth ${fin}`);
      group = cin / fin;
      cout = fout;
      // TF: [kh, kw, Cin/g, Cout] → ONNX: [Cout, Cin/g, kh, kw].
      w = cx.param(f, 'conv', () => {
        const t = transposeData(f.data, f.dims, [3, 2, 0, 1]);
        return tensor('float32', t.dims, t.data);
      });
    } else {
      if (fin !== cin)
        cx.fail(node, `the depthwise filter has ${fin} channels but the input has ${cin}`);
      group = cin;
      cout = cin * fout;
      // [kh, kw, C, M] → [C, M, kh, kw] → [C·M, 1, kh, kw]: output channel c·M + m, as TF.
      w = cx.param(f, 'depthwise', () => {
        const t = transposeData(f.data, f.dims, [2, 3, 0, 1]);
        return tensor('float32', [cout, 1, kh, kw], t.data);
      });
    }
    const win = window(call, sizes, [kh, kw], strides, dilations);
    const inputs = [cx.to(x, 'cf'), w];
    // TF names a fused node after its last op (…/Relu6, …/FusedBatchNormV3); the filter's name
    // (…/Conv2D_weights, …/kernel) names the layer better.
    const layerName = /(_weights|\/kernel)$/;
    const base = layerName.test(f.tfName)
      ? shortName(f.tfName).replace(layerName, '')
      : shortName(node.name);
    const { extra, act } = fused ? fusedOps(call) : {};
    const args = call.inputs.slice(2);
    if (extra === 'biasadd') {
      const bias = cx.floats(node, args[0], 'bias', [cout]);
      inputs.push(cx.param(bias, 'bias', () => tensor('float32', [cout], bias.data)));
    }
    let y = cx.b.op(
      'Conv',
      inputs,
      { kernel_shape: [kh, kw], strides, dilations, group, ...win.attrs },
      // The node's own name goes to its last IR op; a bias is the Conv's own input.
      { name: base },
    );
    if (extra === 'fusedbatchnorm') y = batchNorm(call, y, args, cout, `${base}_bn`);
    const prelu = args[extra === 'biasadd' ? 1 : extra === 'fusedbatchnorm' ? 4 : 0];
    y = fusedActivation(call, y, act, 'cf', 4, prelu, base);
    return [{ kind: 'value', name: y, layout: 'cf', shape: [x.shape[0]!, ...win.out, cout] }];
  };
}

registerTfOp('Conv2D', convolution('conv', false));
registerTfOp('_FusedConv2D', convolution('conv', true));
registerTfOp(['DepthwiseConv2dNative', 'DepthwiseConv2d'], convolution('depthwise', false));
registerTfOp('FusedDepthwiseConv2dNative', convolution('depthwise', true));

/** ONNX BatchNormalization of `x` (channels on axis 1) from TF's scale, offset, mean, variance. */
function batchNorm(call: OpCall, x: string, args: TfValue[], c: number, name: string): string {
  const { cx, node } = call;
  const names = ['scale', 'offset', 'mean', 'variance'];
  const params = names.map((what, i) => {
    const p = cx.floats(node, args[i], what, [c]);
    return cx.param(p, 'bn', () => tensor('float32', [c], p.data));
  });
  return cx.b.op(
    'BatchNormalization',
    [x, ...params],
    { epsilon: attrFloat(call, 'epsilon', 0.001) },
    { name },
  );
}

registerTfOp(['FusedBatchNorm', 'FusedBatchNormV2', 'FusedBatchNormV3'], (call) => {
  const { cx, node } = call;
  nhwc(call);
  const x = cx.runtime(node, call.inputs[0], 'x');
  const r = x.shape.length;
  if (r < 2) cx.fail(node, `expects an input of rank ≥ 2`);
  if (attrBool(call, 'is_training', false))
    cx.fail(node, `is_training is set; export the model for inference`);
  const c = numeric(call, x.shape[r - 1]!, 'number of channels');
  // ONNX normalises axis 1: the TF channel axis (last) lands there in the cf layout.
  const layout: Layout = r >= 3 ? 'cf' : 'keras';
  const y = batchNorm(call, cx.to(x, layout), call.inputs.slice(1), c, shortName(node.name));
  return [{ kind: 'value', name: y, layout, shape: [...x.shape] }];
});

// ---------------------------------------------------------------- matmul

function matmul(fused: boolean): OpConverter {
  return (call) => {
    const { cx, node } = call;
    const ta = attrBool(call, 'transpose_a', attrBool(call, 'adj_x', false));
    const tb = attrBool(call, 'transpose_b', attrBool(call, 'adj_y', false));
    const a = cx.runtime(node, call.inputs[0], 'left operand');
    const bIn = input(call, 1, 'right operand');
    const r = a.shape.length;
    if (r < 2) cx.fail(node, `expects operands of rank ≥ 2`);
    let an = cx.to(a, 'keras');
    let aShape = a.shape;
    if (ta) {
      const perm = [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
      an = cx.b.transpose(an, perm);
      aShape = perm.map((p) => a.shape[p]!);
    }
    let bn: string;
    let n: Dim;
    if (bIn.kind === 'const') {
      const w = cx.floats(node, bIn, 'weight');
      if (w.dims.length !== 2)
        cx.fail(node, `the weight must be rank 2, got [${w.dims.join(', ')}]`);
      const [k0, n0] = tb ? [w.dims[1]!, w.dims[0]!] : [w.dims[0]!, w.dims[1]!];
      const k = aShape[r - 1]!;
      if (typeof k === 'number' && k !== k0)
        cx.fail(node, `the weight has ${k0} rows but the input has ${k} columns`);
      // Stored [k, n] so the IR reads it as a MatMul weight, as the layers importer writes Dense.
      bn = cx.param(w, tb ? 'matmul-t' : 'matmul', () => {
        if (!tb) return tensor('float32', w.dims, w.data);
        const t = transposeData(w.data, w.dims, [1, 0]);
        return tensor('float32', t.dims, t.data);
      });
      n = n0;
    } else {
      const bv = cx.runtime(node, bIn, 'right operand');
      const rb = bv.shape.length;
      bn = cx.to(bv, 'keras');
      if (tb) {
        bn = cx.b.transpose(bn, [...Array.from({ length: rb - 2 }, (_, i) => i), rb - 1, rb - 2]);
      }
      n = bv.shape[tb ? rb - 2 : rb - 1]!;
    }
    const { extra, act } = fused ? fusedOps(call) : {};
    if (extra === 'fusedbatchnorm') cx.fail(node, `FusedBatchNorm cannot be fused into MatMul`);
    let y = cx.b.op(
      'MatMul',
      [an, bn],
      {},
      extra || act ? { name: `${shortName(node.name)}_matmul` } : nodeName(call),
    );
    const args = call.inputs.slice(2);
    if (extra === 'biasadd') {
      const bias = cx.floats(node, args[0], 'bias');
      y = cx.b.op(
        'Add',
        [y, cx.operand(node, bias, 'keras', r)],
        {},
        { name: `${shortName(node.name)}_bias` },
      );
    }
    y = fusedActivation(
      call,
      y,
      act,
      'keras',
      r,
      args[extra === 'biasadd' ? 1 : 0],
      shortName(node.name),
    );
    return [{ kind: 'value', name: y, layout: 'keras', shape: [...aShape.slice(0, -1), n] }];
  };
}

registerTfOp(['MatMul', 'BatchMatMul', 'BatchMatMulV2'], matmul(false));
registerTfOp('_FusedMatMul', matmul(true));

// ---------------------------------------------------------------- elementwise

/** NumPy/TF broadcasting of shapes; mismatching known sizes are an error. */
function broadcast(call: OpCall, shapes: Dim[][]): Dim[] {
  const r = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const e = s[s.length - r + i];
      if (e === undefined || e === 1) continue;
      if (d === 1 || typeof d === 'string') d = e;
      else if (typeof e === 'number' && e !== d)
        call.cx.fail(
          call.node,
          `input shapes [${shapes.map((x) => x.join(', ')).join('] and [')}] do not broadcast`,
        );
    }
    out.push(d);
  }
  return out;
}

/**
 * The IR names of elementwise operands in one layout, and that layout: the layout of the first
 * full-rank computed input, unless a lower-rank computed input needs TF order.
 */
function elementwiseOperands(call: OpCall, values: TfValue[]) {
  const { cx, node } = call;
  const shape = broadcast(call, values.map(shapeOf));
  const r = shape.length;
  const runtime = values.filter((v): v is RuntimeValue => v.kind === 'value');
  const full = runtime.find((v) => v.shape.length === r);
  let layout: Layout = full?.layout ?? 'keras';
  if (runtime.some((v) => v.shape.length < r)) layout = 'keras';
  if (r < 3) layout = 'keras';
  const names = values.map((v) =>
    v.kind === 'value' ? cx.to(v, layout) : cx.operand(node, v, layout, r),
  );
  return { names, layout, shape };
}

function binary(op: string, post?: (call: OpCall, y: string) => string): OpConverter {
  return (call) => {
    if (call.inputs.length !== 2) call.cx.fail(call.node, `expects two inputs`);
    const { names, layout, shape } = elementwiseOperands(call, call.inputs);
    let y = call.cx.b.op(op, names, {}, post ? {} : nodeName(call));
    if (post) y = post(call, y);
    return [{ kind: 'value', name: y, layout, shape }];
  };
}

registerTfOp(['Add', 'AddV2', 'BiasAdd'], binary('Add'));
registerTfOp('Sub', binary('Sub'));
registerTfOp('Mul', binary('Mul'));
registerTfOp(['RealDiv', 'Div'], binary('Div'));
registerTfOp('Maximum', binary('Max'));
registerTfOp('Minimum', binary('Min'));
registerTfOp('Pow', binary('Pow'));
registerTfOp(
  'SquaredDifference',
  binary('Sub', (call, d) => call.cx.b.op('Mul', [d, d], {}, nodeName(call))),
);

registerTfOp('AddN', (call) => {
  const { names, layout, shape } = elementwiseOperands(call, call.inputs);
  const y = call.cx.b.op('Sum', names, {}, nodeName(call));
  return [{ kind: 'value', name: y, layout, shape }];
});

registerTfOp('Prelu', (call) => {
  const { names, layout, shape } = elementwiseOperands(call, call.inputs);
  const y = call.cx.b.op('PRelu', names, {}, nodeName(call));
  return [{ kind: 'value', name: y, layout, shape }];
});

function unary(emit: (call: OpCall, x: string) => string): OpConverter {
  return (call) => {
    const x = call.cx.runtime(call.node, call.inputs[0], 'x');
    return [{ ...x, name: emit(call, x.name) }];
  };
}

function simple(op: string, attrs: (call: OpCall) => Record<string, number> = () => ({})) {
  return unary((call, x) => call.cx.b.op(op, [x], attrs(call), nodeName(call)));
}

registerTfOp('Relu', simple('Relu'));
registerTfOp(
  'Elu',
  simple('Elu', () => ({ alpha: 1 })),
);
registerTfOp(
  'Selu',
  simple('Selu', () => ({ alpha: 1.6732632423543772, gamma: 1.0507009873554805 })),
);
registerTfOp('Sigmoid', simple('Sigmoid'));
registerTfOp('Tanh', simple('Tanh'));
registerTfOp('Softplus', simple('Softplus'));
registerTfOp('Exp', simple('Exp'));
registerTfOp('Log', simple('Log'));
registerTfOp('Sqrt', simple('Sqrt'));
registerTfOp('Neg', simple('Neg'));
registerTfOp('Abs', simple('Abs'));
registerTfOp('Floor', simple('Floor'));
registerTfOp('Reciprocal', simple('Reciprocal'));
registerTfOp('Erf', simple('Erf'));
registerTfOp(
  'LeakyRelu',
  simple('LeakyRelu', (call) => ({ alpha: attrFloat(call, 'alpha', 0.2) })),
);
registerTfOp(
  'Relu6',
  unary((call, x) =>
    call.cx.b.op('Clip', [x, call.cx.b.scalar(0), call.cx.b.scalar(6)], {}, nodeName(call)),
  ),
);
registerTfOp(
  'Rsqrt',
  unary((call, x) => call.cx.b.op('Reciprocal', [call.cx.b.sqrt(x)], {}, nodeName(call))),
);
registerTfOp(
  'Square',
  unary((call, x) => call.cx.b.op('Mul', [x, x], {}, nodeName(call))),
);

function softmax(op: 'Softmax' | 'LogSoftmax'): OpConverter {
  return (call) => {
    const x = call.cx.runtime(call.node, call.inputs[0], 'logits');
    const axis = call.cx.irAxis(x.layout, x.shape.length, -1);
    return [{ ...x, name: call.cx.b.op(op, [x.name], { axis }, nodeName(call)) }];
  };
}

registerTfOp('Softmax', softmax('Softmax'));
registerTfOp('LogSoftmax', softmax('LogSoftmax'));

// Inference-time identities.
registerTfOp(['Identity', 'StopGradient', 'Snapshot', 'PreventGradient'], (call) => [
  input(call, 0, 'x'),
]);

registerTfOp('Cast', (call) => {
  const dst = call.node.attr.DstT;
  const to = dst?.kind === 'type' ? dst.value : 'unknown';
  const x = input(call, 0, 'x');
  // Sizes may be cast between int32 and int64 (Shape's out_type); floats stay floats.
  if (x.kind === 'dims' && (to === 'DT_INT32' || to === 'DT_INT64')) return [x];
  if (to !== 'DT_FLOAT' || x.kind === 'dims' || (x.kind === 'const' && x.dtype !== 'float32'))
    call.cx.fail(call.node, `only float32 → float32 casts (and casts of sizes) are supported`);
  return [x];
});

// ---------------------------------------------------------------- pooling

function pool(op: 'MaxPool' | 'AveragePool'): OpConverter {
  return (call) => {
    const { cx, node } = call;
    nhwc(call);
    const x = cx.runtime(node, call.inputs[0], 'x');
    const { sizes, channels } = spatial4(call, x);
    const k = attrInts(call, 'ksize');
    const s = attrInts(call, 'strides');
    if (k.length !== 4 || s.length !== 4 || k[0] !== 1 || k[3] !== 1)
      cx.fail(node, `ksize and strides must be [1, h, w, 1]`);
    const win = window(call, sizes, [k[1]!, k[2]!], [s[1]!, s[2]!], [1, 1]);
    let xin = cx.to(x, 'cf');
    if (op === 'MaxPool' && cx.zeroPadded.has(x.name)) {
      // onnxruntime's PadFusion (basic optimizations, 1.30) folds a zero Pad into MaxPool's pads,
      // which pool as −inf: wrong wherever a window's real values are all negative. Clip(·, ±inf)
      // is the identity (with a gradient rule) and keeps the Pad out of the MaxPool.
      const inf = cx.b.scalar(Infinity);
      xin = cx.b.op(
        'Clip',
        [xin, cx.b.neg(inf), inf],
        {},
        { name: `${shortName(node.name)}_keep_pad` },
      );
    }
    // AveragePool's default count_include_pad = 0 averages over the valid pixels, as TF does.
    const y = cx.b.op(
      op,
      [xin],
      { kernel_shape: [k[1]!, k[2]!], strides: [s[1]!, s[2]!], ...win.attrs },
      nodeName(call),
    );
    return [{ kind: 'value', name: y, layout: 'cf', shape: [x.shape[0]!, ...win.out, channels] }];
  };
}

registerTfOp('MaxPool', pool('MaxPool'));
registerTfOp('AvgPool', pool('AveragePool'));

// ---------------------------------------------------------------- resizing

/**
 * ResizeBilinear / ResizeNearestNeighbor with TF.js' coordinate rules as ONNX Resize modes:
 * align_corners → `align_corners`, half_pixel_centers → `half_pixel`, neither → `asymmetric`.
 */
function resize(mode: 'linear' | 'nearest'): OpConverter {
  return (call) => {
    const { cx, node } = call;
    const x = cx.runtime(node, call.inputs[0], 'images');
    const { sizes } = spatial4(call, x);
    const size = cx.ints(node, call.inputs[1], 'size');
    if (size.length !== 2 || size.some((d) => d < 1))
      cx.fail(node, `the size must be two positive ints, got [${size.join(', ')}]`);
    const align = attrBool(call, 'align_corners', false);
    const half = attrBool(call, 'half_pixel_centers', false);
    if (align && half) cx.fail(node, `align_corners and half_pixel_centers cannot both be set`);
    const coord = align ? 'align_corners' : half ? 'half_pixel' : 'asymmetric';
    const attrs: Record<string, string> = { mode, coordinate_transformation_mode: coord };
    // TF nearest: round half up with align_corners, else floor(src) where half-pixel src is
    // (x + 0.5)·in/out, i.e. ONNX half_pixel's (x + 0.5)·in/out − 0.5 rounded half up.
    if (mode === 'nearest') attrs.nearest_mode = align || half ? 'round_prefer_ceil' : 'floor';
    const b = cx.b;
    const xin = cx.to(x, 'cf');
    const [h, w] = [size[0]!, size[1]!];
    const [H, W] = [
      numeric(call, sizes[0]!, 'input height'),
      numeric(call, sizes[1]!, 'input width'),
    ];
    // Whole factors only: ONNX Resize then takes exact scales (what the Resize gradient rule
    // reads); other ratios would need sizes with the open batch size, which the IR's shape
    // inference cannot follow.
    if (h % H !== 0 || w % W !== 0) {
      cx.fail(
        node,
        `resizing ${H}×${W} to ${h}×${w} is not by whole factors; only whole-factor resizes are supported (convert the model to ONNX with tf2onnx for others)`,
      );
    }
    const scales = b.constant(tensor('float32', [4], [1, 1, h / H, w / W]), 'scales');
    const y = b.op('Resize', [xin, '', scales], attrs, nodeName(call));
    return [{ kind: 'value', name: y, layout: 'cf', shape: [x.shape[0]!, h, w, x.shape[3]!] }];
  };
}

registerTfOp('ResizeBilinear', resize('linear'));
registerTfOp('ResizeNearestNeighbor', resize('nearest'));

// ---------------------------------------------------------------- shapes and axes

function normAxes(call: OpCall, axes: number[], r: number): number[] {
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
function removalLayout(x: RuntimeValue, removed: number[]): Layout {
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
const KEEP = -2;

/**
 * A Reshape target from sizes that may be symbolic (`Shape` arithmetic for an open batch): a
 * symbolic size equal to the input's size at the same position is kept (ONNX Reshape's 0), one
 * other unknown becomes -1; anything else needs the input shape.
 */
function reshapeTarget(call: OpCall, x: RuntimeValue, dims: Dim[]): number[] {
  const out = dims.map((d, i) => (typeof d === 'number' ? d : d === x.shape[i] ? KEEP : NaN));
  const open = out.filter((d) => Number.isNaN(d)).length;
  if (open === 0) return out;
  if (open === 1 && !out.includes(-1)) return out.map((d) => (Number.isNaN(d) ? -1 : d));
  return call.cx.fail(
    call.node,
    `the target shape [${dims.join(', ')}] depends on the input size; give the input shape`,
  );
}

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
