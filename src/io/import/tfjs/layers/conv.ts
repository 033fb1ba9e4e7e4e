/** Layer converters: convolutions (dense, depthwise, separable, transposed). Keras kernels become channels-first ONNX kernels (Conv2D HWIO → OIHW, depthwise H×W×C×M → (C·M)×1×H×W with group C), and TF's SAME padding explicit pads. */

import type { Dim } from '../../../../ir/graph.js';
import { tensor } from '../../../../ir/tensor.js';
import { applyActivation } from '../activations.js';
import { onnxConvKernel, onnxDepthwiseKernel } from '../tf-conv.js';
import type { KValue } from '../context.js';
import { transposeData } from '../context.js';
import {
  biasParam,
  cfg,
  ints,
  num,
  numericDim,
  one,
  registerLayer,
  spatial,
  str,
  useBias,
  windowAttrs,
  windowPads,
} from './registry.js';
import type { LayerCall } from './registry.js';

registerLayer(['Conv2D', 'Conv1D', 'Conv3D'], (call) => {
  const n = Number(call.layer.className[4]);
  const x = one(call);
  const sp = spatial(call, x, n);
  const filters = num(call, 'filters');
  const { kernel, strides, dilations, padding } = windowConfig(call, n);
  const groups = num(call, 'groups', 1);
  if (padding === 'causal')
    call.cx.fail(call.layer, `padding 'causal' is not supported (same, valid)`);
  const cin = numericDim(call, sp.channels, 'number of input channels');
  if (cin % groups !== 0) call.cx.fail(call.layer, `${cin} channels do not split into ${groups}`);
  const k = call.cx.weight(call.layer, 'kernel', 0, [...kernel, cin / groups, filters]);
  const w = call.cx.param(call.layer, 'weight', () => onnxConvKernel(k.data, k.dims));
  const win = windowPads(call, sp.sizes, kernel, strides, dilations, padding);
  const inputs = [sp.name, w];
  if (useBias(call)) inputs.push(biasParam(call, 1, filters));
  const y = call.cx.b.op(
    'Conv',
    inputs,
    { kernel_shape: kernel, strides, dilations, group: groups, ...windowAttrs(win) },
    { name: call.layer.name },
  );
  const v: KValue = { name: y, layout: sp.layout, shape: sp.kerasShape(filters, win.out) };
  return [applyActivation(call.cx, call.layer, v, cfg(call, 'activation'))];
});

/** A conv layer's window: kernel_size, strides and dilation_rate (default 1), padding. */
function windowConfig(call: LayerCall, n: number) {
  const ones = new Array<number>(n).fill(1);
  return {
    kernel: ints(call, 'kernel_size', n),
    strides: ints(call, 'strides', n, ones),
    dilations: ints(call, 'dilation_rate', n, ones),
    padding: str(call, 'padding', 'valid'),
  };
}

/** Emits a depthwise conv (group C, multiplier M) from a Keras [k.., C, M] kernel. */
function depthwise(
  call: LayerCall,
  sp: ReturnType<typeof spatial>,
  { kernel, strides, dilations, padding }: ReturnType<typeof windowConfig>,
  role: string,
  withBias: boolean,
  nodeName: string,
) {
  const c = numericDim(call, sp.channels, 'number of input channels');
  const m = num(call, 'depth_multiplier', 1);
  const k = call.cx.weight(call.layer, 'depthwise_kernel', 0, [...kernel, c, m]);
  const w = call.cx.param(call.layer, role, () => onnxDepthwiseKernel(k.data, k.dims));
  const win = windowPads(call, sp.sizes, kernel, strides, dilations, padding);
  const inputs = [sp.name, w];
  if (withBias) inputs.push(biasParam(call, 1, c * m));
  const y = call.cx.b.op(
    'Conv',
    inputs,
    { kernel_shape: kernel, strides, dilations, group: c, ...windowAttrs(win) },
    { name: nodeName },
  );
  return { y, cm: c * m, out: win.out };
}

registerLayer(['DepthwiseConv2D', 'DepthwiseConv1D'], (call) => {
  const n = call.layer.className.endsWith('2D') ? 2 : 1;
  const x = one(call);
  const sp = spatial(call, x, n);
  const d = depthwise(call, sp, windowConfig(call, n), 'weight', useBias(call), call.layer.name);
  const v: KValue = { name: d.y, layout: sp.layout, shape: sp.kerasShape(d.cm, d.out) };
  return [applyActivation(call.cx, call.layer, v, cfg(call, 'activation'))];
});

registerLayer(['SeparableConv2D', 'SeparableConv1D'], (call) => {
  const n = call.layer.className.endsWith('2D') ? 2 : 1;
  const x = one(call);
  const sp = spatial(call, x, n);
  const filters = num(call, 'filters');
  const d = depthwise(
    call,
    sp,
    windowConfig(call, n),
    'depthwise_weight',
    false,
    `${call.layer.name}_depthwise`,
  );
  const ones = new Array<number>(n).fill(1);
  const pk = call.cx.weight(call.layer, 'pointwise_kernel', 1, [...ones, d.cm, filters]);
  const pw = call.cx.param(call.layer, 'weight', () => {
    const t = transposeData(pk.data, [d.cm, filters], [1, 0]);
    return tensor('float32', [filters, d.cm, ...ones], t.data);
  });
  const inputs = [d.y, pw];
  if (useBias(call)) inputs.push(biasParam(call, 2, filters));
  const y = call.cx.b.op('Conv', inputs, { kernel_shape: ones }, { name: call.layer.name });
  const v: KValue = { name: y, layout: sp.layout, shape: sp.kerasShape(filters, d.out) };
  return [applyActivation(call.cx, call.layer, v, cfg(call, 'activation'))];
});

registerLayer('Conv2DTranspose', (call) => {
  const n = 2;
  const x = one(call);
  const sp = spatial(call, x, n);
  const filters = num(call, 'filters');
  const { kernel, strides, dilations, padding } = windowConfig(call, n);
  if (dilations.some((d) => d !== 1)) call.cx.fail(call.layer, `dilation_rate must be 1`);
  if (cfg(call, 'output_padding') !== null && cfg(call, 'output_padding') !== undefined)
    call.cx.fail(call.layer, `output_padding is not supported`);
  if (padding !== 'same' && padding !== 'valid')
    call.cx.fail(call.layer, `padding '${padding}' is not supported (same, valid)`);
  const cin = numericDim(call, sp.channels, 'number of input channels');
  const k = call.cx.weight(call.layer, 'kernel', 0, [...kernel, filters, cin]);
  // Keras: [kh, kw, Cout, Cin] → ONNX ConvTranspose: [Cin, Cout, kh, kw].
  const w = call.cx.param(call.layer, 'weight', () => {
    const t = transposeData(k.data, k.dims, [3, 2, 0, 1]);
    return tensor('float32', t.dims, t.data);
  });
  // TF: out = in·s (+ max(k − s, 0) for valid); it is the gradient of a conv from `out` to `in`
  // whose SAME pads are total = max(0, k − s), the smaller half first. ONNX crops `pads` from the
  // full (in − 1)·s + k result and appends `output_padding` zeros when that is too short.
  const begin: number[] = [];
  const end: number[] = [];
  const outPad: number[] = [];
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const s = strides[i]!;
    const kk = kernel[i]!;
    const total = padding === 'same' ? Math.max(0, kk - s) : 0;
    const b0 = Math.floor(total / 2);
    // Length of TF's output minus ONNX's full length: the same for every input size.
    const extra = padding === 'same' ? s - kk : s + Math.max(kk - s, 0) - kk;
    const e0 = Math.max(0, -extra - b0);
    begin.push(b0);
    end.push(e0);
    outPad.push(Math.max(0, extra + b0));
    const size = sp.sizes[i]!;
    out.push(
      typeof size === 'number'
        ? size * s + (padding === 'valid' ? Math.max(kk - s, 0) : 0)
        : `${call.layer.name}_out${i}`,
    );
  }
  const inputs = [sp.name, w];
  if (useBias(call)) inputs.push(biasParam(call, 1, filters));
  const attrs: Record<string, number[]> = {
    kernel_shape: kernel,
    strides,
    pads: [...begin, ...end],
  };
  if (outPad.some((p) => p > 0)) attrs.output_padding = outPad;
  const y = call.cx.b.op('ConvTranspose', inputs, attrs, { name: call.layer.name });
  const v: KValue = { name: y, layout: sp.layout, shape: sp.kerasShape(filters, out) };
  return [applyActivation(call.cx, call.layer, v, cfg(call, 'activation'))];
});
