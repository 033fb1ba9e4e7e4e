/**
 * The state shared by the TensorFlow op converters while one TF.js graph model (a frozen TF
 * GraphDef in `model.json`) becomes an IR graph: the parsed nodes and their attributes, the value
 * of every TF tensor (a constant known at import time, or an IR value with its layout), and the
 * initializers made from constants.
 *
 * Layout: TF graph models are channels-last (NHWC); ONNX convolutions and pools want NCHW. As in
 * the layers importer, a runtime value is held either in TF order (`keras`) or with its last axis
 * moved to position 1 (`cf`); converters ask for the layout they need and the Transpose between
 * the two is emitted once per value.
 */

import type { GraphBuilder } from '../../../ir/builder.js';
import type { Dim } from '../../../ir/graph.js';
import type { Tensor } from '../../../ir/tensor.js';
import { tensor } from '../../../ir/tensor.js';
import { QuadranetFileError } from '../../errors.js';
import type { Layout } from './context.js';
import { inLayout, toCfPerm, transposeData } from './context.js';
import { wrapAxis } from '../../../ir/axes.js';

/** A decoded TF attribute (`AttrValue` in the JSON form tfjs-converter writes). */
export type TfAttr =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'string'; value: string }
  | { kind: 'type'; value: string }
  | { kind: 'shape'; value: (number | null)[] | undefined }
  | { kind: 'list'; ints: number[]; floats: number[]; strings: string[] }
  | { kind: 'other' };

/** One GraphDef node. Inputs are `node` or `node:k` references. */
export interface TfNode {
  name: string;
  op: string;
  inputs: string[];
  /** Nodes this one runs after (`^node` inputs): no data, but they count as consumers. */
  controlInputs: string[];
  attr: Record<string, TfAttr>;
}

/** A runtime float32 value: its IR name, layout and TF shape (batch first). */
export interface RuntimeValue {
  kind: 'value';
  name: string;
  layout: Layout;
  shape: Dim[];
}

/** A constant known at import time (a Const node's weight, or derived from one). */
export interface ConstValue {
  kind: 'const';
  /** The TF name it came from (names its initializers). */
  tfName: string;
  dtype: 'float32' | 'int32' | 'bool';
  dims: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

/**
 * An int32 vector (or scalar) of sizes known at import time up to symbolic dims: what
 * `Shape(x)` and slices of it give, e.g. `[batch, -1]` for a Keras Flatten with an open batch.
 */
export interface DimsValue {
  kind: 'dims';
  values: Dim[];
  /** Whether it is a scalar (one size) rather than a vector. */
  scalar: boolean;
}

/** A TF tensor during conversion. */
export type TfValue = RuntimeValue | ConstValue | DimsValue;

/** The rank of a value. */
export function rankOf(v: TfValue): number {
  if (v.kind === 'dims') return v.scalar ? 0 : 1;
  return v.kind === 'const' ? v.dims.length : v.shape.length;
}

/** The TF shape of a value. */
export function shapeOf(v: TfValue): Dim[] {
  if (v.kind === 'dims') return v.scalar ? [] : [v.values.length];
  return v.kind === 'const' ? [...v.dims] : [...v.shape];
}

/**
 * A shorter name for a TF node or tensor: the SavedModel wrapper scopes
 * (`StatefulPartitionedCall/…`) that every converted Keras model carries are dropped.
 */
export function shortName(tfName: string): string {
  const parts = tfName
    .split('/')
    .filter((p) => !/^(Stateful)?PartitionedCall(_\d+)?$/.test(p) && p !== 'Func');
  return parts.length > 0 ? parts.join('/') : tfName;
}

/** Conversion state: builder, values by TF tensor name, layouts and initializers. */
export class GraphContext {
  private readonly layoutCache = new Map<string, string>();
  private readonly params = new Map<string, string>();
  /** IR values made by a Pad with zeros (MaxPool guards against onnxruntime's PadFusion). */
  readonly zeroPadded = new Set<string>();

  constructor(
    readonly b: GraphBuilder,
    readonly file: string,
  ) {}

  /** A one-line error naming the file and the node. */
  fail(node: TfNode, msg: string): never {
    throw new QuadranetFileError(
      this.file,
      `${this.file}: node '${node.name}' (${node.op}): ${msg}`,
    );
  }

  /** The IR value of `v` in `layout`, transposing (once per value) when needed. */
  to(v: RuntimeValue, layout: Layout): string {
    // Below rank 3 both layouts are the same order.
    if (v.shape.length < 3) return v.name;
    return inLayout(this.b, this.layoutCache, v, layout);
  }

  /** The IR axis holding TF axis `axis` (negative counts from the end) of a rank-`r` value. */
  irAxis(layout: Layout, r: number, axis: number): number {
    const a = wrapAxis(axis, r);
    if (layout === 'keras' || r < 3 || a === 0) return a;
    return a === r - 1 ? 1 : a + 1;
  }

  /** A runtime value, or an error naming the node when `v` is a constant. */
  runtime(node: TfNode, v: TfValue | undefined, what: string): RuntimeValue {
    if (!v) this.fail(node, `has no ${what} input`);
    if (v.kind !== 'value') {
      this.fail(
        node,
        `the ${what} is ${v.kind === 'dims' ? 'a shape' : 'a constant'}; only computed values are supported there`,
      );
    }
    return v;
  }

  /** A constant input, or an error naming the node when it is computed at run time. */
  constant(node: TfNode, v: TfValue | undefined, what: string): ConstValue {
    if (!v) this.fail(node, `has no ${what} input`);
    if (v.kind !== 'const') {
      this.fail(
        node,
        `the ${what} is computed at run time; only constant ${what}s are supported (freeze the model with a fixed input size)`,
      );
    }
    return v;
  }

  /** The integers of an int32 constant (axes, shapes, paddings), or of fully known sizes. */
  ints(node: TfNode, v: TfValue | undefined, what: string): number[] {
    if (v?.kind === 'dims') {
      const d = this.dims(node, v, what);
      if (d.every((x): x is number => typeof x === 'number')) return d;
      this.fail(
        node,
        `the ${what} [${d.join(', ')}] depends on the input size; give the input shape`,
      );
    }
    const c = this.constant(node, v, what);
    if (c.dtype !== 'int32') this.fail(node, `the ${what} must be int32, got ${c.dtype}`);
    return Array.from(c.data);
  }

  /** Sizes (possibly symbolic) from an int32 constant or a shape computation. */
  dims(node: TfNode, v: TfValue | undefined, what: string): Dim[] {
    if (v?.kind === 'dims') return [...v.values];
    return this.ints(node, v, what);
  }

  /** The float32 data of a constant, checked against an expected shape. */
  floats(
    node: TfNode,
    v: TfValue | undefined,
    what: string,
    expected?: readonly (number | undefined)[],
  ): ConstValue & { data: Float32Array } {
    const c = this.constant(node, v, what);
    if (c.dtype !== 'float32') this.fail(node, `the ${what} must be float32, got ${c.dtype}`);
    if (
      expected &&
      (expected.length !== c.dims.length ||
        expected.some((e, i) => e !== undefined && e !== c.dims[i]))
    ) {
      this.fail(
        node,
        `the ${what} '${c.tfName}' has shape [${c.dims.join(', ')}], expected [${expected.map((e) => e ?? '?').join(', ')}]`,
      );
    }
    return c as ConstValue & { data: Float32Array };
  }

  /**
   * The initializer made from constant `c` for one use (`role`, e.g. the transposed conv
   * weight); created once and shared by every node using it the same way. Named after the TF
   * constant so adapters and reports name the TF layer.
   */
  param(c: ConstValue, role: string, make: () => Tensor): string {
    const key = `${c.tfName}\u0000${role}`;
    let name = this.params.get(key);
    if (!name) {
      name = this.b.constant(make(), shortName(c.tfName));
      this.params.set(key, name);
    }
    return name;
  }

  /**
   * Constant `c` as an elementwise operand of a rank-`r` result held in `layout`: TF broadcasts
   * from the trailing axis, so in the `cf` layout the constant is padded to rank `r` with leading
   * ones and permuted like the value.
   */
  operand(node: TfNode, c: ConstValue | DimsValue, layout: Layout, r: number): string {
    if (c.kind === 'dims') this.fail(node, `arithmetic on tensor shapes is not supported`);
    if (c.dtype !== 'float32') {
      this.fail(node, `constant '${c.tfName}' is ${c.dtype}; only float32 arithmetic is supported`);
    }
    const n = c.data.length;
    if (layout === 'keras' || r < 3 || n === 1) {
      return this.param(c, 'operand', () => tensor('float32', c.dims, c.data));
    }
    return this.param(c, `operand-cf${r}`, () => {
      const dims = [...new Array<number>(r - c.dims.length).fill(1), ...c.dims];
      const t = transposeData(c.data as Float32Array, dims, toCfPerm(r));
      return tensor('float32', t.dims, t.data);
    });
  }
}
