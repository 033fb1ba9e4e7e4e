/** TF op converters: convolutions (fused and depthwise), batch normalisation and matrix products. */

import type { Dim } from '../../../../ir/graph.js';
import { tensor } from '../../../../ir/tensor.js';
import type { Layout } from '../context.js';
import { onnxConvKernel, onnxDepthwiseKernel } from '../tf-conv.js';
import { transposeData } from '../context.js';
import type { TfValue } from '../graph-context.js';
import { shortName } from '../graph-context.js';
import {
  attrBool,
  attrFloat,
  attrInts,
  fusedActivation,
  fusedOps,
  input,
  nhwc,
  nodeName,
  numeric,
  registerTfOp,
  spatial4,
  window,
} from './registry.js';
import type { OpCall, OpConverter } from './registry.js';

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
      w = cx.param(f, 'conv', () => onnxConvKernel(f.data, f.dims));
    } else {
      if (fin !== cin)
        cx.fail(node, `the depthwise filter has ${fin} channels but the input has ${cin}`);
      group = cin;
      cout = cin * fout;
      w = cx.param(f, 'depthwise', () => onnxDepthwiseKernel(f.data, f.dims));
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
