/**
 * The layer converters, keyed by Keras class name: each turns one call of a Keras layer into IR
 * nodes with the same arithmetic as TF.js. Convolutions and pools run channels-first (ONNX); the
 * Keras kernels are converted (Conv2D HWIO → OIHW, depthwise H×W×C×M → (C·M)×1×H×W with group C),
 * and TF's SAME padding is resolved to explicit (possibly asymmetric) pads when sizes are known.
 */

import type { Dim } from '../../../ir/graph.js';
import { tensor } from '../../../ir/tensor.js';
import { applyActivation } from './activations.js';
import type { ConversionContext, KValue, Layout } from './context.js';
import { transposeData } from './context.js';
import type { KerasLayerJson } from './model-json.js';
import { isObject } from './model-json.js';
import { wrapAxis } from '../../../ir/axes.js';

/** One call of a layer: the context, the layer and its input tensors. */
export interface LayerCall {
  cx: ConversionContext;
  layer: KerasLayerJson;
  inputs: KValue[];
}

/** Converts one layer call to IR nodes and returns its output tensors. */
export type LayerConverter = (call: LayerCall) => KValue[];

const converters = new Map<string, LayerConverter>();

/** Registers the converter of a Keras class name (several names may share one). */
export function registerLayer(className: string | string[], conv: LayerConverter): void {
  for (const c of Array.isArray(className) ? className : [className]) converters.set(c, conv);
}

/** The converter of a class name, if any. */
export function layerConverter(className: string): LayerConverter | undefined {
  return converters.get(className);
}

/** Keras class names the importer converts (model containers excluded). */
export function supportedLayers(): string[] {
  return [...converters.keys()].sort();
}

// ---------------------------------------------------------------- config readers

function cfg(call: LayerCall, key: string): unknown {
  return call.layer.config[key];
}

function num(call: LayerCall, key: string, def?: number): number {
  const v = cfg(call, key) ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v))
    call.cx.fail(call.layer, `config '${key}' must be a number`);
  return v;
}

function optNum(call: LayerCall, key: string): number | undefined {
  const v = cfg(call, key);
  return v === null || v === undefined ? undefined : num(call, key);
}

function str(call: LayerCall, key: string, def: string): string {
  const v = cfg(call, key) ?? def;
  if (typeof v !== 'string') call.cx.fail(call.layer, `config '${key}' must be a string`);
  return v;
}

function bool(call: LayerCall, key: string, def: boolean): boolean {
  const v = cfg(call, key) ?? def;
  if (typeof v !== 'boolean') call.cx.fail(call.layer, `config '${key}' must be true or false`);
  return v;
}

/** An int or a list of `n` ints (Keras' `kernel_size=3` or `(3, 3)`). */
function ints(call: LayerCall, key: string, n: number, def?: number[]): number[] {
  const v = cfg(call, key) ?? def;
  const list = typeof v === 'number' ? new Array<number>(n).fill(v) : v;
  if (
    !Array.isArray(list) ||
    list.length !== n ||
    !list.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)
  ) {
    call.cx.fail(call.layer, `config '${key}' must be an int or a list of ${n} ints`);
  }
  return list as number[];
}

/** Keras padding pairs: `p`, `(a, b)` (symmetric per axis) or `((t, b), (l, r))`. */
function pairs(call: LayerCall, key: string, n: number): [number, number][] {
  const v = cfg(call, key);
  const bad = (): never =>
    call.cx.fail(call.layer, `config '${key}' must be an int, ${n} ints or ${n} pairs of ints`);
  const isInt = (d: unknown): d is number => typeof d === 'number' && Number.isSafeInteger(d);
  if (isInt(v)) return Array.from({ length: n }, () => [v, v]);
  if (!Array.isArray(v) || v.length !== n) return bad();
  return v.map((p): [number, number] => {
    if (isInt(p)) return [p, p];
    if (Array.isArray(p) && p.length === 2 && isInt(p[0]) && isInt(p[1])) return [p[0], p[1]];
    return bad();
  });
}

function one(call: LayerCall): KValue {
  if (call.inputs.length !== 1)
    call.cx.fail(call.layer, `expects one input, got ${call.inputs.length}`);
  return call.inputs[0]!;
}

// ---------------------------------------------------------------- shapes and layouts

/** Spatial layout of a conv-like layer: which IR layout is channels-first and where C is. */
function spatial(call: LayerCall, x: KValue, nSpatial: number) {
  const fmt = str(call, 'data_format', 'channels_last');
  if (fmt !== 'channels_last' && fmt !== 'channels_first')
    call.cx.fail(call.layer, `data_format '${fmt}' is not supported`);
  if (x.shape.length !== nSpatial + 2)
    call.cx.fail(
      call.layer,
      `expects a rank-${nSpatial + 2} input, got shape [${x.shape.join(', ')}]`,
    );
  const last = fmt === 'channels_last';
  // channels_last Keras tensors are convolved in the `cf` layout; channels_first ones as they are.
  const layout: Layout = last ? 'cf' : 'keras';
  const channels = x.shape[last ? nSpatial + 1 : 1]!;
  const sizes = last ? x.shape.slice(1, nSpatial + 1) : x.shape.slice(2);
  const kerasShape = (c: Dim, out: Dim[]): Dim[] =>
    last ? [x.shape[0]!, ...out, c] : [x.shape[0]!, c, ...out];
  return { layout, channels, sizes, kerasShape, name: call.cx.to(x, layout) };
}

/**
 * Pads and output size of a window op per spatial axis, with TF's rules: VALID has no padding;
 * SAME makes ceil(in / stride) outputs and pads the total (out − 1)·stride + window − in, the
 * smaller half first (the extra pixel of an odd total goes at the end). When the total depends on
 * an unknown size, `autoPad` SAME_UPPER (the same rule, resolved by the runtime) is returned.
 */
function windowPads(
  call: LayerCall,
  sizes: Dim[],
  kernel: number[],
  strides: number[],
  dilations: number[],
  padding: string,
): { pads?: number[]; autoPad?: string; out: Dim[] } {
  const n = sizes.length;
  if (padding !== 'same' && padding !== 'valid')
    call.cx.fail(call.layer, `padding '${padding}' is not supported (same, valid)`);
  const begin: number[] = [];
  const end: number[] = [];
  const out: Dim[] = [];
  let dynamic = false;
  for (let i = 0; i < n; i++) {
    const size = sizes[i]!;
    const eff = (kernel[i]! - 1) * dilations[i]! + 1;
    const s = strides[i]!;
    if (s < 1) call.cx.fail(call.layer, `strides must be ≥ 1`);
    if (padding === 'valid') {
      begin.push(0);
      end.push(0);
      if (typeof size === 'number') {
        if (size < eff) {
          call.cx.fail(
            call.layer,
            `input size ${size} is smaller than the window ${eff} (padding valid)`,
          );
        }
        out.push(Math.floor((size - eff) / s) + 1);
      } else out.push(s === 1 && eff === 1 ? size : `${call.layer.name}_out${i}`);
      continue;
    }
    if (typeof size === 'number') {
      const o = Math.ceil(size / s);
      const total = Math.max(0, (o - 1) * s + eff - size);
      begin.push(Math.floor(total / 2));
      end.push(total - Math.floor(total / 2));
      out.push(o);
    } else if (s === 1) {
      begin.push(Math.floor((eff - 1) / 2));
      end.push(eff - 1 - Math.floor((eff - 1) / 2));
      out.push(size);
    } else {
      dynamic = true;
      out.push(`${call.layer.name}_out${i}`);
    }
  }
  return dynamic ? { autoPad: 'SAME_UPPER', out } : { pads: [...begin, ...end], out };
}

function numericDim(call: LayerCall, d: Dim, what: string): number {
  if (typeof d !== 'number')
    call.cx.fail(call.layer, `the ${what} must be known (it is '${d}'); give the input shape`);
  return d;
}

function windowAttrs(w: { pads?: number[]; autoPad?: string }) {
  return w.pads ? { pads: w.pads } : { auto_pad: w.autoPad };
}

// ---------------------------------------------------------------- convolutions

function useBias(call: LayerCall): boolean {
  return bool(call, 'use_bias', true);
}

function biasParam(call: LayerCall, index: number, n: number): string {
  const w = call.cx.weight(call.layer, 'bias', index, [n]);
  return call.cx.param(call.layer, 'bias', () => tensor('float32', [n], w.data));
}

registerLayer(['Conv2D', 'Conv1D', 'Conv3D'], (call) => {
  const n = Number(call.layer.className[4]);
  const x = one(call);
  const sp = spatial(call, x, n);
  const filters = num(call, 'filters');
  const kernel = ints(call, 'kernel_size', n);
  const strides = ints(call, 'strides', n, new Array<number>(n).fill(1));
  const dilations = ints(call, 'dilation_rate', n, new Array<number>(n).fill(1));
  const groups = num(call, 'groups', 1);
  const padding = str(call, 'padding', 'valid');
  if (padding === 'causal')
    call.cx.fail(call.layer, `padding 'causal' is not supported (same, valid)`);
  const cin = numericDim(call, sp.channels, 'number of input channels');
  if (cin % groups !== 0) call.cx.fail(call.layer, `${cin} channels do not split into ${groups}`);
  const k = call.cx.weight(call.layer, 'kernel', 0, [...kernel, cin / groups, filters]);
  // Keras: [k1..kn, Cin/g, Cout] → ONNX: [Cout, Cin/g, k1..kn].
  const perm = [n + 1, n, ...Array.from({ length: n }, (_, i) => i)];
  const w = call.cx.param(call.layer, 'weight', () => {
    const t = transposeData(k.data, k.dims, perm);
    return tensor('float32', t.dims, t.data);
  });
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

/** Emits a depthwise conv (group C, multiplier M) from a Keras [k.., C, M] kernel. */
function depthwise(
  call: LayerCall,
  sp: ReturnType<typeof spatial>,
  kernel: number[],
  strides: number[],
  dilations: number[],
  padding: string,
  role: string,
  withBias: boolean,
  nodeName: string,
) {
  const n = kernel.length;
  const c = numericDim(call, sp.channels, 'number of input channels');
  const m = num(call, 'depth_multiplier', 1);
  const k = call.cx.weight(call.layer, 'depthwise_kernel', 0, [...kernel, c, m]);
  // [k.., C, M] → [C, M, k..] → [C·M, 1, k..]: output channel c·M + m, as TF orders them.
  const w = call.cx.param(call.layer, role, () => {
    const t = transposeData(k.data, k.dims, [n, n + 1, ...Array.from({ length: n }, (_, i) => i)]);
    return tensor('float32', [c * m, 1, ...kernel], t.data);
  });
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
  const kernel = ints(call, 'kernel_size', n);
  const strides = ints(call, 'strides', n, new Array<number>(n).fill(1));
  const dilations = ints(call, 'dilation_rate', n, new Array<number>(n).fill(1));
  const padding = str(call, 'padding', 'valid');
  const d = depthwise(
    call,
    sp,
    kernel,
    strides,
    dilations,
    padding,
    'weight',
    useBias(call),
    call.layer.name,
  );
  const v: KValue = { name: d.y, layout: sp.layout, shape: sp.kerasShape(d.cm, d.out) };
  return [applyActivation(call.cx, call.layer, v, cfg(call, 'activation'))];
});

registerLayer(['SeparableConv2D', 'SeparableConv1D'], (call) => {
  const n = call.layer.className.endsWith('2D') ? 2 : 1;
  const x = one(call);
  const sp = spatial(call, x, n);
  const filters = num(call, 'filters');
  const kernel = ints(call, 'kernel_size', n);
  const strides = ints(call, 'strides', n, new Array<number>(n).fill(1));
  const dilations = ints(call, 'dilation_rate', n, new Array<number>(n).fill(1));
  const padding = str(call, 'padding', 'valid');
  const d = depthwise(
    call,
    sp,
    kernel,
    strides,
    dilations,
    padding,
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
  const kernel = ints(call, 'kernel_size', n);
  const strides = ints(call, 'strides', n, [1, 1]);
  const dilations = ints(call, 'dilation_rate', n, [1, 1]);
  const padding = str(call, 'padding', 'valid');
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

// ---------------------------------------------------------------- dense and normalization

registerLayer('Dense', (call) => {
  const x = one(call);
  const units = num(call, 'units');
  const r = x.shape.length;
  if (r < 2) call.cx.fail(call.layer, `expects an input of rank ≥ 2`);
  const cin = numericDim(call, x.shape[r - 1]!, 'input size (last axis)');
  const k = call.cx.weight(call.layer, 'kernel', 0, [cin, units]);
  const w = call.cx.param(call.layer, 'weight', () => tensor('float32', k.dims, k.data));
  // Dense acts on the last Keras axis: MatMul on the Keras layout (any rank ≥ 2).
  let y = call.cx.b.op('MatMul', [call.cx.to(x, 'keras'), w], {}, { name: call.layer.name });
  if (useBias(call))
    y = call.cx.b.op(
      'Add',
      [y, biasParam(call, 1, units)],
      {},
      { name: `${call.layer.name}_bias` },
    );
  const v: KValue = { name: y, layout: 'keras', shape: [...x.shape.slice(0, -1), units] };
  return [applyActivation(call.cx, call.layer, v, cfg(call, 'activation'))];
});

function axisConfig(call: LayerCall, def: number): number {
  const a = cfg(call, 'axis') ?? def;
  const v = Array.isArray(a) && a.length === 1 ? a[0] : a;
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    call.cx.fail(call.layer, `config 'axis' must be one axis (got ${JSON.stringify(a)})`);
  return v;
}

registerLayer('BatchNormalization', (call) => {
  const x = one(call);
  const r = x.shape.length;
  const axis = axisConfig(call, -1);
  const a = wrapAxis(axis, r);
  // ONNX BatchNormalization normalises axis 1: the Keras channel axis must land there.
  let layout: Layout;
  if (a === 1) layout = 'keras';
  else if (a === r - 1 && r >= 3) layout = 'cf';
  else
    return call.cx.fail(call.layer, `axis ${axis} of a rank-${r} input is not supported (use -1)`);
  const c = numericDim(call, x.shape[a]!, 'number of channels');
  const eps = num(call, 'epsilon', 1e-3);
  let i = 0;
  const get = (suffix: string, role: string, on: boolean, fill: number): string => {
    if (!on)
      return call.cx.param(call.layer, role, () => tensor('float32', [c], new Array(c).fill(fill)));
    const w = call.cx.weight(call.layer, suffix, i++, [c]);
    return call.cx.param(call.layer, role, () => tensor('float32', [c], w.data));
  };
  const gamma = get('gamma', 'weight', bool(call, 'scale', true), 1);
  const beta = get('beta', 'bias', bool(call, 'center', true), 0);
  const mean = get('moving_mean', 'running_mean', true, 0);
  const variance = get('moving_variance', 'running_var', true, 1);
  const y = call.cx.b.op(
    'BatchNormalization',
    [call.cx.to(x, layout), gamma, beta, mean, variance],
    { epsilon: eps },
    { name: call.layer.name },
  );
  return [{ name: y, layout, shape: [...x.shape] }];
});

registerLayer('LayerNormalization', (call) => {
  const x = one(call);
  const r = x.shape.length;
  const axis = axisConfig(call, -1);
  if (axis !== -1 && axis !== r - 1)
    call.cx.fail(call.layer, `axis ${axis} is not supported (only the last axis)`);
  const c = numericDim(call, x.shape[r - 1]!, 'size of the last axis');
  let i = 0;
  const get = (suffix: string, role: string, on: boolean, fill: number): string => {
    if (!on)
      return call.cx.param(call.layer, role, () => tensor('float32', [c], new Array(c).fill(fill)));
    const w = call.cx.weight(call.layer, suffix, i++, [c]);
    return call.cx.param(call.layer, role, () => tensor('float32', [c], w.data));
  };
  const gamma = get('gamma', 'weight', bool(call, 'scale', true), 1);
  const beta = get('beta', 'bias', bool(call, 'center', true), 0);
  const y = call.cx.b.op(
    'LayerNormalization',
    [call.cx.to(x, 'keras'), gamma, beta],
    { axis: -1, epsilon: num(call, 'epsilon', 1e-3) },
    { name: call.layer.name },
  );
  return [{ name: y, layout: 'keras', shape: [...x.shape] }];
});

// ---------------------------------------------------------------- activations

registerLayer('Activation', (call) => [
  applyActivation(call.cx, call.layer, one(call), cfg(call, 'activation')),
]);

registerLayer('ReLU', (call) => {
  const x = one(call);
  const maxValue = optNum(call, 'max_value');
  const slope = num(call, 'negative_slope', 0);
  const threshold = num(call, 'threshold', 0);
  const b = call.cx.b;
  const name = { name: call.layer.name };
  let y: string;
  if (slope === 0 && threshold === 0) {
    y =
      maxValue === undefined
        ? b.op('Relu', [x.name], {}, name)
        : b.op('Clip', [x.name, b.scalar(0), b.scalar(maxValue)], {}, name);
  } else {
    // Keras: x ≥ threshold → x, else negative_slope · (x − threshold); then min(·, max_value).
    const below = b.mul(b.sub(x.name, b.scalar(threshold)), b.scalar(slope));
    const keep = b.op('GreaterOrEqual', [x.name, b.scalar(threshold)]);
    y = b.op('Where', [keep, x.name, below], {}, maxValue === undefined ? name : {});
    if (maxValue !== undefined) y = b.op('Min', [y, b.scalar(maxValue)], {}, name);
  }
  return [{ ...x, name: y }];
});

registerLayer('LeakyReLU', (call) => {
  const x = one(call);
  const alpha = optNum(call, 'alpha') ?? num(call, 'negative_slope', 0.3);
  const y = call.cx.b.op('LeakyRelu', [x.name], { alpha }, { name: call.layer.name });
  return [{ ...x, name: y }];
});

registerLayer('ELU', (call) => {
  const x = one(call);
  const y = call.cx.b.op(
    'Elu',
    [x.name],
    { alpha: num(call, 'alpha', 1) },
    { name: call.layer.name },
  );
  return [{ ...x, name: y }];
});

registerLayer('ThresholdedReLU', (call) => {
  const x = one(call);
  const b = call.cx.b;
  const theta = num(call, 'theta', 1);
  const mask = b.cast(b.op('Greater', [x.name, b.scalar(theta)]), 'float32');
  return [{ ...x, name: b.op('Mul', [x.name, mask], {}, { name: call.layer.name }) }];
});

registerLayer('Softmax', (call) => {
  const x = one(call);
  const axis = axisConfig(call, -1);
  const y = call.cx.b.op(
    'Softmax',
    [x.name],
    { axis: call.cx.irAxis(x, axis) },
    { name: call.layer.name },
  );
  return [{ ...x, name: y }];
});

registerLayer('PReLU', (call) => {
  const x = one(call);
  const r = x.shape.length;
  const shared = cfg(call, 'shared_axes');
  const sharedAxes =
    shared === null || shared === undefined ? [] : Array.isArray(shared) ? shared : [shared];
  // alpha has the input's shape without the batch, with size 1 on shared axes.
  const dims = x.shape
    .slice(1)
    .map((d, i) => (sharedAxes.includes(i + 1) ? 1 : numericDim(call, d, `size of axis ${i + 1}`)));
  const a = call.cx.weight(call.layer, 'alpha', 0, dims);
  const slope = call.cx.param(call.layer, 'slope', () => {
    if (x.layout === 'keras' || r < 3) return tensor('float32', dims, a.data);
    // In the cf layout the channel axis comes first among the non-batch axes.
    const perm = [r - 2, ...Array.from({ length: r - 2 }, (_, i) => i)];
    const t = transposeData(a.data, dims, perm);
    return tensor('float32', t.dims, t.data);
  });
  return [{ ...x, name: call.cx.b.op('PRelu', [x.name, slope], {}, { name: call.layer.name }) }];
});

// ---------------------------------------------------------------- pooling

function poolLayer(op: 'MaxPool' | 'AveragePool', n: number): LayerConverter {
  return (call) => {
    const x = one(call);
    const sp = spatial(call, x, n);
    const size = ints(call, 'pool_size', n, new Array<number>(n).fill(2));
    const stridesRaw = cfg(call, 'strides');
    const strides =
      stridesRaw === null || stridesRaw === undefined ? size : ints(call, 'strides', n);
    const win = windowPads(
      call,
      sp.sizes,
      size,
      strides,
      new Array<number>(n).fill(1),
      str(call, 'padding', 'valid'),
    );
    // AveragePool's default count_include_pad = 0 averages over the valid pixels, as TF does.
    const y = call.cx.b.op(
      op,
      [sp.name],
      { kernel_shape: size, strides, ...windowAttrs(win) },
      { name: call.layer.name },
    );
    return [{ name: y, layout: sp.layout, shape: sp.kerasShape(sp.channels, win.out) }];
  };
}

registerLayer('MaxPooling2D', poolLayer('MaxPool', 2));
registerLayer('AveragePooling2D', poolLayer('AveragePool', 2));
registerLayer('MaxPooling1D', poolLayer('MaxPool', 1));
registerLayer('AveragePooling1D', poolLayer('AveragePool', 1));

function globalPool(op: 'GlobalAveragePool' | 'GlobalMaxPool', n: number): LayerConverter {
  return (call) => {
    const x = one(call);
    const sp = spatial(call, x, n);
    const y = call.cx.b.op(op, [sp.name], {}, { name: call.layer.name });
    const ones = new Array<Dim>(n).fill(1);
    if (bool(call, 'keepdims', false))
      return [{ name: y, layout: sp.layout, shape: sp.kerasShape(sp.channels, ones) }];
    const flat = call.cx.b.op('Flatten', [y], { axis: 1 }, { name: `${call.layer.name}_flatten` });
    return [{ name: flat, layout: 'keras', shape: [x.shape[0]!, sp.channels] }];
  };
}

registerLayer('GlobalAveragePooling2D', globalPool('GlobalAveragePool', 2));
registerLayer('GlobalMaxPooling2D', globalPool('GlobalMaxPool', 2));
registerLayer('GlobalAveragePooling1D', globalPool('GlobalAveragePool', 1));
registerLayer('GlobalMaxPooling1D', globalPool('GlobalMaxPool', 1));

// ---------------------------------------------------------------- merging

/** Brings all inputs to one layout: the first input's when the ranks agree, else Keras. */
function commonLayout(call: LayerCall): { names: string[]; layout: Layout } {
  const ins = call.inputs;
  if (ins.length < 1) call.cx.fail(call.layer, `has no inputs`);
  const sameRank = ins.every((v) => v.shape.length === ins[0]!.shape.length);
  const layout: Layout = sameRank ? ins[0]!.layout : 'keras';
  return { names: ins.map((v) => call.cx.to(v, layout)), layout };
}

function broadcastKeras(call: LayerCall): Dim[] {
  const shapes = call.inputs.map((v) => v.shape);
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
          call.layer,
          `input shapes [${shapes.map((x) => x.join(', ')).join('] and [')}] do not match`,
        );
    }
    out.push(d);
  }
  return out;
}

function merge(op: string, variadic: boolean): LayerConverter {
  return (call) => {
    const { names, layout } = commonLayout(call);
    const shape = broadcastKeras(call);
    if (op === 'Sub' && names.length !== 2)
      call.cx.fail(call.layer, `expects exactly two inputs, got ${names.length}`);
    const b = call.cx.b;
    let y: string;
    if (variadic || names.length === 1) {
      y = b.op(op, names, {}, { name: call.layer.name });
    } else {
      y = names[0]!;
      for (let i = 1; i < names.length; i++) {
        y = b.op(op, [y, names[i]!], {}, { name: call.layer.name });
      }
    }
    return [{ name: y, layout, shape }];
  };
}

registerLayer('Add', merge('Add', false));
registerLayer('Subtract', merge('Sub', false));
registerLayer('Multiply', merge('Mul', false));
registerLayer('Average', merge('Mean', true));
registerLayer('Maximum', merge('Max', true));
registerLayer('Minimum', merge('Min', true));

registerLayer('Concatenate', (call) => {
  const { names, layout } = commonLayout(call);
  const first = call.inputs[0]!;
  const r = first.shape.length;
  if (!call.inputs.every((v) => v.shape.length === r))
    call.cx.fail(call.layer, `inputs must have the same rank`);
  const axis = num(call, 'axis', -1);
  const a = wrapAxis(axis, r);
  if (a <= 0 || a >= r) call.cx.fail(call.layer, `axis ${axis} is out of range for rank ${r}`);
  const sizes = call.inputs.map((v) => v.shape[a]!);
  const total: Dim = sizes.every((d) => typeof d === 'number')
    ? (sizes as number[]).reduce((p, q) => p + q, 0)
    : `${call.layer.name}_axis`;
  const shape = first.shape.map((d, i) => (i === a ? total : d));
  const y = call.cx.b.op(
    'Concat',
    names,
    { axis: call.cx.irAxis({ ...first, layout }, a) },
    { name: call.layer.name },
  );
  return [{ name: y, layout, shape }];
});

// ---------------------------------------------------------------- spatial reshaping

/** Keras spatial axes (in Keras numbering) of an n-d layer with the given data format. */
function spatialAxes(call: LayerCall, x: KValue, n: number): number[] {
  const fmt = str(call, 'data_format', 'channels_last');
  if (x.shape.length !== n + 2)
    call.cx.fail(call.layer, `expects a rank-${n + 2} input, got [${x.shape.join(', ')}]`);
  return Array.from({ length: n }, (_, i) => (fmt === 'channels_first' ? i + 2 : i + 1));
}

function upsampling(n: number): LayerConverter {
  return (call) => {
    const x = one(call);
    const axes = spatialAxes(call, x, n);
    const size = ints(call, 'size', n, new Array<number>(n).fill(2));
    const interp = str(call, 'interpolation', 'nearest');
    if (interp !== 'nearest' && interp !== 'bilinear')
      call.cx.fail(call.layer, `interpolation '${interp}' is not supported (nearest, bilinear)`);
    const scales = new Array<number>(x.shape.length).fill(1);
    const shape = [...x.shape];
    axes.forEach((a, i) => {
      scales[call.cx.irAxis(x, a)] = size[i]!;
      const d = x.shape[a]!;
      shape[a] = typeof d === 'number' ? d * size[i]! : `${d}*${size[i]}`;
    });
    const b = call.cx.b;
    // TF.js: resizeNearestNeighbor / resizeBilinear with align_corners = half_pixel = false,
    // i.e. source = floor(dst / scale) (asymmetric coordinates).
    const y = b.op(
      'Resize',
      [x.name, '', b.constant(tensor('float32', [scales.length], scales), 'scales')],
      interp === 'nearest'
        ? { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }
        : { mode: 'linear', coordinate_transformation_mode: 'asymmetric' },
      { name: call.layer.name },
    );
    return [{ ...x, name: y, shape }];
  };
}

registerLayer('UpSampling2D', upsampling(2));

registerLayer('ZeroPadding2D', (call) => {
  const x = one(call);
  const axes = spatialAxes(call, x, 2);
  const p = pairs(call, 'padding', 2);
  const r = x.shape.length;
  const pads = new Array<number>(2 * r).fill(0);
  const shape = [...x.shape];
  axes.forEach((a, i) => {
    const ia = call.cx.irAxis(x, a);
    pads[ia] = p[i]![0];
    pads[ia + r] = p[i]![1];
    const d = x.shape[a]!;
    shape[a] = typeof d === 'number' ? d + p[i]![0] + p[i]![1] : `${call.layer.name}_out${i}`;
  });
  const b = call.cx.b;
  const y = b.op('Pad', [x.name, b.ints(pads)], { mode: 'constant' }, { name: call.layer.name });
  return [{ ...x, name: y, shape }];
});

registerLayer('Cropping2D', (call) => {
  const x = one(call);
  const axes = spatialAxes(call, x, 2);
  const p = pairs(call, 'cropping', 2);
  const starts: number[] = [];
  const ends: number[] = [];
  const irAxes: number[] = [];
  const shape = [...x.shape];
  axes.forEach((a, i) => {
    irAxes.push(call.cx.irAxis(x, a));
    starts.push(p[i]![0]);
    ends.push(p[i]![1] === 0 ? Number.MAX_SAFE_INTEGER : -p[i]![1]);
    const d = x.shape[a]!;
    shape[a] = typeof d === 'number' ? d - p[i]![0] - p[i]![1] : `${call.layer.name}_out${i}`;
  });
  const b = call.cx.b;
  const y = b.op(
    'Slice',
    [x.name, b.ints(starts), b.ints(ends), b.ints(irAxes)],
    {},
    {
      name: call.layer.name,
    },
  );
  return [{ ...x, name: y, shape }];
});

// ---------------------------------------------------------------- shape layers

registerLayer('Flatten', (call) => {
  const x = one(call);
  const r = x.shape.length;
  let name = call.cx.to(x, 'keras');
  // With channels_first, Keras moves the channels last before flattening.
  if (str(call, 'data_format', 'channels_last') === 'channels_first' && r > 2) {
    name = call.cx.b.transpose(name, [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2), 1]);
  }
  const rest = x.shape.slice(1);
  const size: Dim = rest.every((d) => typeof d === 'number')
    ? (rest as number[]).reduce((a, b) => a * b, 1)
    : `${call.layer.name}_size`;
  const y = call.cx.b.op('Flatten', [name], { axis: 1 }, { name: call.layer.name });
  return [{ name: y, layout: 'keras', shape: [x.shape[0]!, size] }];
});

registerLayer('Reshape', (call) => {
  const x = one(call);
  const raw = cfg(call, 'target_shape');
  // TF.js writes an inferred size as null, Keras as -1.
  const target = Array.isArray(raw) ? raw.map((d) => (d === null ? -1 : d)) : raw;
  if (
    !Array.isArray(target) ||
    !target.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && (d > 0 || d === -1)) ||
    target.filter((d) => d === -1).length > 1
  ) {
    call.cx.fail(call.layer, `config 'target_shape' must be a list of sizes (one may be -1)`);
  }
  const t = target as number[];
  const rest = x.shape.slice(1);
  let shape: Dim[] = [x.shape[0]!, ...t];
  if (t.includes(-1)) {
    const known = t.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const total = rest.every((d) => typeof d === 'number')
      ? (rest as number[]).reduce((a, b) => a * b, 1)
      : undefined;
    shape = [
      x.shape[0]!,
      ...t.map((d) =>
        d !== -1 ? d : total !== undefined ? total / known : `${call.layer.name}_size`,
      ),
    ];
  }
  // 0 copies the batch size from the input.
  const y = call.cx.b.op(
    'Reshape',
    [call.cx.to(x, 'keras'), call.cx.b.ints([0, ...t])],
    {},
    { name: call.layer.name },
  );
  return [{ name: y, layout: 'keras', shape }];
});

registerLayer('Permute', (call) => {
  const x = one(call);
  const dims = cfg(call, 'dims');
  const r = x.shape.length;
  if (
    !Array.isArray(dims) ||
    dims.length !== r - 1 ||
    [...dims].sort().some((d, i) => d !== i + 1)
  ) {
    call.cx.fail(call.layer, `config 'dims' must be a permutation of 1..${r - 1}`);
  }
  const perm = [0, ...(dims as number[])];
  const y = call.cx.b.op(
    'Transpose',
    [call.cx.to(x, 'keras')],
    { perm },
    { name: call.layer.name },
  );
  return [{ name: y, layout: 'keras', shape: perm.map((p) => x.shape[p]!) }];
});

registerLayer('Rescaling', (call) => {
  const x = one(call);
  const b = call.cx.b;
  const y = b.op(
    'Add',
    [b.mul(x.name, b.scalar(num(call, 'scale'))), b.scalar(num(call, 'offset', 0))],
    {},
    { name: call.layer.name },
  );
  return [{ ...x, name: y }];
});

// Inference-time identities: their outputs are their inputs.
registerLayer(
  [
    'Dropout',
    'SpatialDropout1D',
    'SpatialDropout2D',
    'SpatialDropout3D',
    'GaussianNoise',
    'GaussianDropout',
    'AlphaDropout',
    'ActivityRegularization',
  ],
  (call) => [one(call)],
);

/** Whether a layer config is a nested model (its class holds layers). */
export function isModelClass(className: string, config: unknown): boolean {
  return (
    ['Functional', 'Model', 'Sequential'].includes(className) &&
    (Array.isArray(config) || (isObject(config) && Array.isArray(config.layers)))
  );
}
