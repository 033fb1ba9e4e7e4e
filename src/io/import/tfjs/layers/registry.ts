/** The layer-converter registry (keyed by Keras class name) and the config readers the converters share. */

import type { Dim } from '../../../../ir/graph.js';
import { tensor } from '../../../../ir/tensor.js';
import type { ConversionContext, KValue, Layout } from '../context.js';
import type { KerasLayerJson } from '../model-json.js';
import { isObject } from '../model-json.js';
import type { TfWindow } from '../tf-conv.js';
import { tfWindow } from '../tf-conv.js';

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

export function cfg(call: LayerCall, key: string): unknown {
  return call.layer.config[key];
}

export function num(call: LayerCall, key: string, def?: number): number {
  const v = cfg(call, key) ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v))
    call.cx.fail(call.layer, `config '${key}' must be a number`);
  return v;
}

export function optNum(call: LayerCall, key: string): number | undefined {
  const v = cfg(call, key);
  return v === null || v === undefined ? undefined : num(call, key);
}

export function str(call: LayerCall, key: string, def: string): string {
  const v = cfg(call, key) ?? def;
  if (typeof v !== 'string') call.cx.fail(call.layer, `config '${key}' must be a string`);
  return v;
}

export function bool(call: LayerCall, key: string, def: boolean): boolean {
  const v = cfg(call, key) ?? def;
  if (typeof v !== 'boolean') call.cx.fail(call.layer, `config '${key}' must be true or false`);
  return v;
}

/** An int or a list of `n` ints (Keras' `kernel_size=3` or `(3, 3)`). */
export function ints(call: LayerCall, key: string, n: number, def?: number[]): number[] {
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
export function pairs(call: LayerCall, key: string, n: number): [number, number][] {
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

export function one(call: LayerCall): KValue {
  if (call.inputs.length !== 1)
    call.cx.fail(call.layer, `expects one input, got ${call.inputs.length}`);
  return call.inputs[0]!;
}

// ---------------------------------------------------------------- shapes and layouts

/** Spatial layout of a conv-like layer: which IR layout is channels-first and where C is. */
export function spatial(call: LayerCall, x: KValue, nSpatial: number) {
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
export function windowPads(
  call: LayerCall,
  sizes: Dim[],
  kernel: number[],
  strides: number[],
  dilations: number[],
  padding: string,
): TfWindow {
  if (padding !== 'same' && padding !== 'valid')
    call.cx.fail(call.layer, `padding '${padding}' is not supported (same, valid)`);
  return tfWindow(
    sizes,
    kernel,
    strides,
    dilations,
    padding,
    (message) => call.cx.fail(call.layer, message),
    (i) => `${call.layer.name}_out${i}`,
  );
}

export function numericDim(call: LayerCall, d: Dim, what: string): number {
  if (typeof d !== 'number')
    call.cx.fail(call.layer, `the ${what} must be known (it is '${d}'); give the input shape`);
  return d;
}

export function windowAttrs(w: { pads?: number[]; autoPad?: string }) {
  return w.pads ? { pads: w.pads } : { auto_pad: w.autoPad };
}

// ---------------------------------------------------------------- convolutions

export function useBias(call: LayerCall): boolean {
  return bool(call, 'use_bias', true);
}

export function biasParam(call: LayerCall, index: number, n: number): string {
  const w = call.cx.weight(call.layer, 'bias', index, [n]);
  return call.cx.param(call.layer, 'bias', () => tensor('float32', [n], w.data));
}

/** Whether a layer config is a nested model (its class holds layers). */
export function isModelClass(className: string, config: unknown): boolean {
  return (
    ['Functional', 'Model', 'Sequential'].includes(className) &&
    (Array.isArray(config) || (isObject(config) && Array.isArray(config.layers)))
  );
}

export function axisConfig(call: LayerCall, def: number): number {
  const a = cfg(call, 'axis') ?? def;
  const v = Array.isArray(a) && a.length === 1 ? a[0] : a;
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    call.cx.fail(call.layer, `config 'axis' must be one axis (got ${JSON.stringify(a)})`);
  return v;
}
