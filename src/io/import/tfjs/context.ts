/**
 * The state shared by the layer converters while one TF.js model is turned into an IR graph:
 * the graph builder, the weights (looked up by Keras layer and weight name, each used once as an
 * initializer even when a layer is shared), and the layout of every Keras tensor in the IR.
 *
 * Layout: Keras tensors are channels-last (N, H, W, C); ONNX convolutions and pools want
 * channels-first. A value is held in the IR either as the Keras tensor itself (`keras`) or with
 * its last axis moved to position 1 (`cf`, e.g. NHWC → NCHW). Converters ask for the layout they
 * need; the Transpose between the two is emitted once per value and reused.
 */

import type { GraphBuilder } from '../../../ir/builder.js';
import type { Dim } from '../../../ir/graph.js';
import type { Tensor } from '../../../ir/tensor.js';
import { QuadranetFileError } from '../../errors.js';
import type { KerasLayerJson } from './model-json.js';
import type { DecodedWeight } from './weights.js';
import { wrapAxis } from '../../../ir/axes.js';

/** How a Keras tensor is held in the IR. */
export type Layout = 'keras' | 'cf';

/** A Keras tensor during conversion: its IR value, layout and Keras shape (batch first). */
export interface KValue {
  name: string;
  layout: Layout;
  /** The Keras shape, batch included; unknown sizes are symbolic names. */
  shape: Dim[];
}

/** The permutation that takes a Keras tensor of rank `r` to the `cf` layout. */
export function toCfPerm(r: number): number[] {
  return [0, r - 1, ...Array.from({ length: r - 2 }, (_, i) => i + 1)];
}

/** The permutation that takes a `cf` tensor of rank `r` back to the Keras layout. */
export function fromCfPerm(r: number): number[] {
  return [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2), 1];
}

/**
 * The IR value of `v` in `layout`: `v` itself, or a Transpose of it made once and kept in `cache`
 * (with the way back, which is `v`). Shared by the layers and graph-model contexts.
 */
export function inLayout(
  b: GraphBuilder,
  cache: Map<string, string>,
  v: { name: string; layout: Layout; shape: readonly Dim[] },
  layout: Layout,
): string {
  if (v.layout === layout) return v.name;
  const r = v.shape.length;
  const key = `${v.name}\u0000${layout}`;
  let name = cache.get(key);
  if (!name) {
    const perm = layout === 'cf' ? toCfPerm(r) : fromCfPerm(r);
    name = b.op('Transpose', [v.name], { perm }, { name: `${v.name}_to_${layout}` });
    cache.set(key, name);
    cache.set(`${name}\u0000${v.layout}`, v.name);
  }
  return name;
}

/** Transposes row-major data of shape `dims` by `perm` (output dim i = input dim perm[i]). */
export function transposeData(src: Float32Array, dims: readonly number[], perm: readonly number[]) {
  const r = dims.length;
  const outDims = perm.map((p) => dims[p]!);
  const inStrides = new Array<number>(r);
  let s = 1;
  for (let i = r - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= dims[i]!;
  }
  const stridesByOut = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(src.length);
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < out.length; o++) {
    let off = 0;
    for (let i = 0; i < r; i++) off += idx[i]! * stridesByOut[i]!;
    out[o] = src[off]!;
    for (let i = r - 1; i >= 0; i--) {
      if (++idx[i]! < outDims[i]!) break;
      idx[i] = 0;
    }
  }
  return { data: out, dims: outDims };
}

/** Conversion state: builder, weights and layout bookkeeping; errors name the file and layer. */
export class ConversionContext {
  private readonly byName = new Map<string, DecodedWeight>();
  private readonly used = new Set<string>();
  private readonly layoutCache = new Map<string, string>();
  private readonly params = new Map<string, string>();
  /** The outputs of each layer's first call, by layer name (for extra graph outputs). */
  readonly layerOutputs = new Map<string, KValue[]>();

  constructor(
    readonly b: GraphBuilder,
    readonly file: string,
    weights: Map<string, DecodedWeight>,
  ) {
    for (const [k, w] of weights) this.byName.set(k.replace(/:0$/, ''), w);
  }

  /** A one-line error naming the file and the layer. */
  fail(layer: KerasLayerJson, msg: string): never {
    throw new QuadranetFileError(
      this.file,
      `${this.file}: layer '${layer.name}' (${layer.className}): ${msg}`,
    );
  }

  /**
   * The weight `suffix` (e.g. `kernel`) of a layer, by its TF.js name `layer/suffix`; also
   * accepted: the Keras 3 form `layer/index` and names scoped by an enclosing model.
   */
  findWeight(layer: KerasLayerJson, suffix: string, index: number): DecodedWeight | undefined {
    const direct =
      this.byName.get(`${layer.name}/${suffix}`) ?? this.byName.get(`${layer.name}/${index}`);
    if (direct) return direct;
    const tail = `/${layer.name}/${suffix}`;
    const scoped = [...this.byName.keys()].filter((k) => k.endsWith(tail));
    return scoped.length === 1 ? this.byName.get(scoped[0]!) : undefined;
  }

  /**
   * A float32 weight of a layer, checked against the expected shape (`undefined` entries are
   * not checked). Missing weights and shape mismatches are errors naming the layer.
   */
  weight(
    layer: KerasLayerJson,
    suffix: string,
    index: number,
    expected?: readonly (number | undefined)[],
  ): { data: Float32Array; dims: number[] } {
    const w = this.findWeight(layer, suffix, index);
    if (!w) {
      this.fail(
        layer,
        `weight '${layer.name}/${suffix}' is not in the weights manifest; the model.json and its shards do not match`,
      );
    }
    this.used.add(w.spec.name);
    const dims = w.spec.shape;
    if (
      expected &&
      (expected.length !== dims.length || expected.some((e, i) => e !== undefined && e !== dims[i]))
    ) {
      this.fail(
        layer,
        `weight '${w.spec.name}' has shape [${dims.join(', ')}], expected [${expected.map((e) => e ?? '?').join(', ')}]`,
      );
    }
    if (!(w.data instanceof Float32Array))
      this.fail(layer, `weight '${w.spec.name}' has dtype ${w.spec.dtype}; float32 is needed`);
    return { data: w.data, dims: [...dims] };
  }

  /**
   * The initializer for one parameter of a layer, created on first use (shared layers reuse it).
   * Named `layer.role` (e.g. `conv1.weight`) so adapters and reports name the Keras layer.
   */
  param(layer: KerasLayerJson, role: string, make: () => Tensor): string {
    const key = `${layer.name}\u0000${role}`;
    let name = this.params.get(key);
    if (!name) {
      name = this.b.constant(make(), `${layer.name}.${role}`);
      this.params.set(key, name);
    }
    return name;
  }

  /** The IR value of `v` in `layout`, transposing (once per value) when needed. */
  to(v: KValue, layout: Layout): string {
    return inLayout(this.b, this.layoutCache, v, layout);
  }

  /** The IR axis holding Keras axis `axis` (negative counts from the end) of `v` in `layout`. */
  irAxis(v: KValue, axis: number, layout: Layout = v.layout): number {
    const r = v.shape.length;
    const a = wrapAxis(axis, r);
    if (layout === 'keras' || a === 0) return a;
    return a === r - 1 ? 1 : a + 1;
  }

  /** Names of manifest weights no layer used (e.g. optimizer state). */
  unusedWeights(): string[] {
    return [...this.byName.values()].map((w) => w.spec.name).filter((n) => !this.used.has(n));
  }
}
