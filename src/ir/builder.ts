import type { Attribute, Graph, Node, ValueInfo } from './graph.js';
import { usedNames, uniqueName } from './graph.js';
import type { DType, Tensor } from './tensor.js';
import { int64s, ONNX_DTYPE, scalar } from './tensor.js';

/** An attribute as written in builder calls: plain values are typed by `toAttribute`. */
export type AttrInput = number | string | number[] | string[] | Tensor | Attribute;

/** Attributes that ONNX types as float even when the JS number is whole. */
const FLOAT_ATTRS = new Set([
  'alpha',
  'beta',
  'epsilon',
  'momentum',
  'gamma',
  'bias',
  'lambd',
  'scale',
  'value_float',
  'value_floats',
  'extrapolation_value',
  'cubic_coeff_a',
  'spatial_scale',
  'scales',
  'mean',
  'low',
  'high',
  'ratio',
  'min',
  'max',
]);

function isAttribute(v: AttrInput): v is Attribute {
  return typeof v === 'object' && !Array.isArray(v) && 'type' in v && 'value' in v;
}

/** Types a plain JS attribute value the way ONNX expects it for that attribute name. */
export function toAttribute(name: string, v: AttrInput): Attribute {
  if (isAttribute(v)) return v;
  const float = FLOAT_ATTRS.has(name);
  if (typeof v === 'number') {
    return float || !Number.isInteger(v) ? { type: 'float', value: v } : { type: 'int', value: v };
  }
  if (typeof v === 'string') return { type: 'string', value: v };
  if (Array.isArray(v)) {
    if (v.length > 0 && typeof v[0] === 'string') return { type: 'strings', value: v as string[] };
    const nums = v as number[];
    return float || nums.some((x) => !Number.isInteger(x))
      ? { type: 'floats', value: [...nums] }
      : { type: 'ints', value: [...nums] };
  }
  return { type: 'tensor', value: v };
}

/** Options for one emitted node. */
export interface OpOptions {
  /** Node name (made unique); defaults to the op type. */
  name?: string;
  /** Output names (made unique) or a count; defaults to one output. */
  outputs?: number | string[];
  /** Operator domain; '' is the default ONNX domain. */
  domain?: string;
}

/**
 * Appends nodes, constants and values to a graph with fresh unique names, so code that builds
 * graphs reads like the math: `b.add(b.matmul(x, w), bias)`. It mutates the graph it was given:
 * passes hand it a copy.
 */
export class GraphBuilder {
  private readonly names: Set<string>;
  /** Prefix for generated names, e.g. the pass that emits them. */
  prefix: string;

  constructor(
    readonly graph: Graph,
    prefix = '',
  ) {
    this.names = usedNames(graph);
    this.prefix = prefix;
  }

  /** A new unique value or node name. */
  fresh(base: string): string {
    return uniqueName(this.names, this.prefix + base);
  }

  /** Reserves an exact name (throws if already used). */
  reserve(name: string): string {
    if (this.names.has(name)) throw new Error(`name '${name}' is already used in the graph`);
    this.names.add(name);
    return name;
  }

  /** Emits a node and returns all its output names. */
  opN(
    opType: string,
    inputs: readonly (string | null | undefined)[],
    attrs: Record<string, AttrInput | undefined> = {},
    opts: OpOptions = {},
  ): string[] {
    const base = opts.name ?? opType;
    const outs =
      typeof opts.outputs === 'object'
        ? opts.outputs.map((o) => uniqueName(this.names, o))
        : Array.from({ length: opts.outputs ?? 1 }, () => this.fresh(`${base}_out`));
    const typed: Record<string, Attribute> = {};
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) typed[k] = toAttribute(k, v);
    const node: Node = {
      name: this.fresh(base),
      opType,
      domain: opts.domain ?? '',
      inputs: inputs.map((i) => i ?? ''),
      outputs: outs,
      attrs: typed,
    };
    this.graph.nodes.push(node);
    return outs;
  }

  /** Emits a single-output node and returns its output name. */
  op(
    opType: string,
    inputs: readonly (string | null | undefined)[],
    attrs: Record<string, AttrInput | undefined> = {},
    opts: OpOptions = {},
  ): string {
    return this.opN(opType, inputs, attrs, { ...opts, outputs: opts.outputs ?? 1 })[0]!;
  }

  /** Adds a constant initializer and returns its name. */
  constant(t: Tensor, base = 'const'): string {
    const name = this.fresh(base);
    this.graph.initializers.set(name, t);
    return name;
  }

  /** A scalar constant. */
  scalar(v: number, dtype: DType = 'float32'): string {
    return this.constant(scalar(v, dtype), 'c');
  }

  /** A 1-D int64 constant (shapes, axes). */
  ints(values: readonly number[]): string {
    return this.constant(int64s(values), 'ints');
  }

  /** Declares a graph input. */
  input(name: string, dtype: DType, shape: ValueInfo['shape']): string {
    this.reserve(name);
    this.graph.inputs.push({ name, dtype, shape: [...shape] });
    return name;
  }

  /** Declares a graph output (a value already produced). */
  output(name: string, dtype: DType, shape: ValueInfo['shape']): void {
    this.graph.outputs.push({ name, dtype, shape: [...shape] });
  }

  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  div(a: string, b: string): string {
    return this.op('Div', [a, b]);
  }
  neg(a: string): string {
    return this.op('Neg', [a]);
  }
  exp(a: string): string {
    return this.op('Exp', [a]);
  }
  log(a: string): string {
    return this.op('Log', [a]);
  }
  sqrt(a: string): string {
    return this.op('Sqrt', [a]);
  }
  relu(a: string): string {
    return this.op('Relu', [a]);
  }
  matmul(a: string, b: string): string {
    return this.op('MatMul', [a, b]);
  }
  identity(a: string): string {
    return this.op('Identity', [a]);
  }
  /** Reshape to a static shape (0 copies the dimension, -1 infers it). */
  reshape(x: string, shape: readonly number[]): string {
    return this.op('Reshape', [x, this.ints(shape)]);
  }
  transpose(x: string, perm: readonly number[]): string {
    return this.op('Transpose', [x], { perm: [...perm] });
  }
  reduceSum(x: string, axes: readonly number[], keepdims = true): string {
    return this.op('ReduceSum', [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }
  reduceMean(x: string, axes: readonly number[], keepdims = true): string {
    return this.op('ReduceMean', [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }
  unsqueeze(x: string, axes: readonly number[]): string {
    return this.op('Unsqueeze', [x, this.ints(axes)]);
  }
  squeeze(x: string, axes: readonly number[]): string {
    return this.op('Squeeze', [x, this.ints(axes)]);
  }
  concat(xs: readonly string[], axis: number): string {
    return this.op('Concat', xs, { axis });
  }
  cast(x: string, to: DType): string {
    return this.op('Cast', [x], { to: ONNX_DTYPE[to] });
  }
}
