import { GraphBuilder } from '../ir/builder.js';
import type { Graph } from '../ir/graph.js';
import { emptyGraph } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { tensor } from '../ir/tensor.js';
import { Rng } from '../util/random.js';

/** Options of a convolution layer. */
export interface ConvLayerOptions {
  stride?: number;
  /** Symmetric padding; defaults to 'same'-style (k−1)·d/2. */
  pad?: number;
  dilation?: number;
  groups?: number;
  bias?: boolean;
}

/**
 * Builds first-order networks layer by layer, with PyTorch-style names (`conv1.weight`) and
 * PyTorch's default initialisation (uniform ±1/√fan_in), seeded.
 */
export class NetBuilder {
  readonly graph: Graph;
  readonly b: GraphBuilder;
  private readonly rng: Rng;
  /** The current activation. */
  x: string;

  constructor(inputShape: readonly number[], seed = 0, name = 'net') {
    this.graph = emptyGraph(name);
    this.b = new GraphBuilder(this.graph);
    this.rng = new Rng(seed);
    this.x = this.b.input('input', 'float32', ['batch', ...inputShape]);
  }

  private param(name: string, dims: number[], bound: number): string {
    const n = dims.reduce((p, d) => p * d, 1);
    const t: Tensor = { dtype: 'float32', dims, data: this.rng.uniformArray(n, -bound, bound) };
    this.b.reserve(name);
    this.graph.initializers.set(name, t);
    return name;
  }

  private constParam(name: string, dims: number[], value: number): string {
    const n = dims.reduce((p, d) => p * d, 1);
    this.b.reserve(name);
    this.graph.initializers.set(name, tensor('float32', dims, new Array(n).fill(value)));
    return name;
  }

  conv(name: string, cin: number, cout: number, k: number, o: ConvLayerOptions = {}): this {
    const groups = o.groups ?? 1;
    const dilation = o.dilation ?? 1;
    const pad = o.pad ?? ((k - 1) * dilation) / 2;
    const fanIn = (cin / groups) * k * k;
    const bound = 1 / Math.sqrt(fanIn);
    const w = this.param(`${name}.weight`, [cout, cin / groups, k, k], bound);
    const bias = o.bias === false ? undefined : this.param(`${name}.bias`, [cout], bound);
    this.x = this.b.op(
      'Conv',
      [this.x, w, bias],
      {
        kernel_shape: [k, k],
        strides: [o.stride ?? 1, o.stride ?? 1],
        pads: [pad, pad, pad, pad],
        dilations: [dilation, dilation],
        group: groups,
      },
      { name },
    );
    return this;
  }

  /** Fully connected layer as Gemm with transB = 1 (weight [out, in], as PyTorch stores it). */
  linear(name: string, nIn: number, nOut: number): this {
    const bound = 1 / Math.sqrt(nIn);
    const w = this.param(`${name}.weight`, [nOut, nIn], bound);
    const bias = this.param(`${name}.bias`, [nOut], bound);
    this.x = this.b.op('Gemm', [this.x, w, bias], { transB: 1 }, { name });
    return this;
  }

  /** Channels-last fully connected layer as MatMul + Add (weight [in, out]), as in ConvNeXt MLPs. */
  dense(name: string, nIn: number, nOut: number): this {
    const bound = 1 / Math.sqrt(nIn);
    const w = this.param(`${name}.weight`, [nIn, nOut], bound);
    const bias = this.param(`${name}.bias`, [nOut], bound);
    this.x = this.b.add(this.b.op('MatMul', [this.x, w], {}, { name }), bias);
    return this;
  }

  batchNorm(name: string, c: number): this {
    const scale = this.constParam(`${name}.weight`, [c], 1);
    const bias = this.constParam(`${name}.bias`, [c], 0);
    const mean = this.constParam(`${name}.running_mean`, [c], 0);
    const v = this.constParam(`${name}.running_var`, [c], 1);
    this.x = this.b.op(
      'BatchNormalization',
      [this.x, scale, bias, mean, v],
      { epsilon: 1e-5, momentum: 0.9 },
      { name },
    );
    return this;
  }

  /** LayerNorm over the last axis. */
  layerNorm(name: string, c: number): this {
    const scale = this.constParam(`${name}.weight`, [c], 1);
    const bias = this.constParam(`${name}.bias`, [c], 0);
    this.x = this.b.op(
      'LayerNormalization',
      [this.x, scale, bias],
      { axis: -1, epsilon: 1e-6 },
      { name },
    );
    return this;
  }

  relu(): this {
    this.x = this.b.relu(this.x);
    return this;
  }

  gelu(): this {
    this.x = this.b.op('Gelu', [this.x]);
    return this;
  }

  maxPool(k: number, stride = k): this {
    this.x = this.b.op('MaxPool', [this.x], { kernel_shape: [k, k], strides: [stride, stride] });
    return this;
  }

  globalAvgPool(): this {
    this.x = this.b.op('GlobalAveragePool', [this.x]);
    return this;
  }

  flatten(): this {
    this.x = this.b.op('Flatten', [this.x], { axis: 1 });
    return this;
  }

  transpose(perm: number[]): this {
    this.x = this.b.transpose(this.x, perm);
    return this;
  }

  /** Runs `body` on the current activation and adds the result back (a residual block). */
  residual(body: (net: this) => void, shortcut?: (net: this, input: string) => string): this {
    const input = this.x;
    body(this);
    const skip = shortcut ? shortcut(this, input) : input;
    this.x = this.b.add(this.x, skip);
    return this;
  }

  /** Marks the current activation as the graph output and returns the graph. */
  finish(classes: number, outputName = 'logits'): Graph {
    const out = this.b.op('Identity', [this.x], {}, { outputs: [outputName] });
    this.graph.outputs.push({ name: out, dtype: 'float32', shape: ['batch', classes] });
    return this.graph;
  }
}
