/**
 * Writes small TensorFlow.js graph models (`"format": "graph-model"`: a TF GraphDef in the JSON
 * form tfjs-converter writes, plus one weight shard) under fixtures/tfjs-graph/, for the tests of
 * the graph-model importer. There is no Python TensorFlow here, so the GraphDefs are written by
 * hand with the converter's encodings (int64 as strings, strings base64, `DT_FLOAT` types), each
 * with a few ops that the one packaged graph model (nsfwjs' MobileNetV2Mid) does not use. The
 * tests check every file against TF.js' own graph executor (tf.loadGraphModel), so a file that
 * TF.js reads differently from TF would show there.
 *
 *   node --import tsx scripts/make-tfjs-graph-models.ts      (deterministic: same bytes each run)
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

type Json = Record<string, unknown>;

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const ints = (v: number[]): Json => ({ list: { i: v.map(String) } });
const strs = (v: string[]): Json => ({ list: { s: v.map(b64) } });
const str = (s: string): Json => ({ s: b64(s) });
const T: Json = { T: { type: 'DT_FLOAT' } };

/** A GraphDef under construction with its weights (one float32/int32 shard). */
class GraphDef {
  readonly nodes: Json[] = [];
  private readonly specs: Json[] = [];
  private readonly bytes: Buffer[] = [];
  private seed: number;

  constructor(seed: number) {
    this.seed = seed;
  }

  /** Uniform in [-1, 1) from a 32-bit LCG (reproducible across machines). */
  private rand(): number {
    this.seed = (Math.imul(this.seed, 1664525) + 1013904223) >>> 0;
    return this.seed / 2 ** 31 - 1;
  }

  input(name: string, shape: number[]): string {
    this.nodes.push({
      name,
      op: 'Placeholder',
      attr: {
        dtype: { type: 'DT_FLOAT' },
        shape: { shape: { dim: shape.map((d) => ({ size: String(d) })) } },
      },
    });
    return name;
  }

  /** A float32 Const: explicit values, or uniform random times `scale` plus `offset`. */
  weight(name: string, dims: number[], scale = 0.5, offset = 0, values?: number[]): string {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = Float32Array.from(
      values ?? Array.from({ length: n }, () => offset + scale * this.rand()),
    );
    return this.constant(name, dims, 'float32', Buffer.from(data.buffer));
  }

  /** An int32 Const (shapes, axes, paddings, perms). */
  int(name: string, dims: number[], values: number[]): string {
    return this.constant(name, dims, 'int32', Buffer.from(Int32Array.from(values).buffer));
  }

  private constant(name: string, dims: number[], dtype: string, data: Buffer): string {
    const tfType = dtype === 'float32' ? 'DT_FLOAT' : 'DT_INT32';
    this.nodes.push({
      name,
      op: 'Const',
      attr: {
        value: {
          tensor: { dtype: tfType, tensorShape: { dim: dims.map((d) => ({ size: String(d) })) } },
        },
        dtype: { type: tfType },
      },
    });
    this.specs.push({ name, shape: dims, dtype });
    this.bytes.push(data);
    return name;
  }

  op(name: string, op: string, input: string[], attr: Json = {}): string {
    this.nodes.push({ name, op, input, attr });
    return name;
  }

  write(dir: string, signatureOutputs?: string[]): void {
    mkdirSync(dir, { recursive: true });
    const json: Json = {
      format: 'graph-model',
      generatedBy: 'hand-written GraphDef',
      convertedBy: 'quadranet scripts/make-tfjs-graph-models.ts',
      modelTopology: { node: this.nodes, library: {}, versions: { producer: 1 } },
      weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: this.specs }],
    };
    if (signatureOutputs) {
      json.signature = {
        outputs: Object.fromEntries(
          signatureOutputs.map((o) => [`${o}:0`, { name: `${o}:0`, dtype: 'DT_FLOAT' }]),
        ),
      };
    }
    writeFileSync(join(dir, 'model.json'), `${JSON.stringify(json, null, 1)}\n`);
    writeFileSync(join(dir, 'group1-shard1of1.bin'), Buffer.concat(this.bytes));
  }
}

const conv = (strides: number[], padding: string, extra: Json = {}): Json => ({
  ...T,
  strides: ints(strides),
  padding: str(padding),
  data_format: str('NHWC'),
  dilations: ints([1, 1, 1, 1]),
  ...extra,
});

/**
 * `unfused`: Conv2D + BiasAdd + FusedBatchNormV3 + Relu6, DepthwiseConv2dNative (multiplier 2),
 * LeakyRelu, Pad, MaxPool, AvgPool (SAME), Softplus, a Swish (x·sigmoid(x)), ConcatV2 on channels,
 * Sub/RealDiv/Tanh by constants, Mean over H and W, MatMul + BiasAdd, Softmax.
 */
function unfused(dir: string): void {
  const g = new GraphDef(11);
  const x = g.input('images', [-1, 12, 12, 3]);
  let h = g.op(
    'conv1/Conv2D',
    'Conv2D',
    [x, g.weight('conv1/kernel', [3, 3, 3, 8])],
    conv([1, 2, 2, 1], 'SAME'),
  );
  h = g.op('conv1/BiasAdd', 'BiasAdd', [h, g.weight('conv1/bias', [8], 0.1)], {
    ...T,
    data_format: str('NHWC'),
  });
  h = g.op(
    'bn1/FusedBatchNormV3',
    'FusedBatchNormV3',
    [
      h,
      g.weight('bn1/gamma', [8], 0.2, 1),
      g.weight('bn1/beta', [8], 0.1),
      g.weight('bn1/moving_mean', [8], 0.1),
      g.weight('bn1/moving_variance', [8], 0.3, 1),
    ],
    {
      ...T,
      U: { type: 'DT_FLOAT' },
      epsilon: { f: 0.001 },
      data_format: str('NHWC'),
      is_training: { b: false },
    },
  );
  h = g.op('relu1', 'Relu6', [h], T);
  h = g.op(
    'dw/depthwise',
    'DepthwiseConv2dNative',
    [h, g.weight('dw/depthwise_kernel', [3, 3, 8, 2])],
    conv([1, 1, 1, 1], 'SAME'),
  );
  h = g.op('dw/LeakyRelu', 'LeakyRelu', [h], { ...T, alpha: { f: 0.1 } });
  h = g.op('pad', 'Pad', [h, g.int('pad/paddings', [4, 2], [0, 0, 1, 1, 1, 1, 0, 0])], {
    ...T,
    Tpaddings: { type: 'DT_INT32' },
  });
  h = g.op('pool/MaxPool', 'MaxPool', [h], {
    ...T,
    ksize: ints([1, 3, 3, 1]),
    strides: ints([1, 2, 2, 1]),
    padding: str('VALID'),
    data_format: str('NHWC'),
  });
  const a = g.op('avg/AvgPool', 'AvgPool', [h], {
    ...T,
    ksize: ints([1, 2, 2, 1]),
    strides: ints([1, 1, 1, 1]),
    padding: str('SAME'),
    data_format: str('NHWC'),
  });
  const e = g.op('softplus', 'Softplus', [a], T);
  const sw = g.op('swish/mul', 'Mul', [h, g.op('swish/Sigmoid', 'Sigmoid', [h], T)], T);
  h = g.op('concat', 'ConcatV2', [e, sw, g.int('concat/axis', [], [3])], {
    ...T,
    N: { i: '2' },
    Tidx: { type: 'DT_INT32' },
  });
  h = g.op('sub', 'Sub', [h, g.weight('sub/y', [32], 0.1)], T);
  h = g.op('div', 'RealDiv', [h, g.weight('div/y', [], 0, 2, [2])], T);
  h = g.op('tanh', 'Tanh', [h], T);
  h = g.op('gap/Mean', 'Mean', [h, g.int('gap/axes', [2], [1, 2])], {
    ...T,
    keep_dims: { b: false },
    Tidx: { type: 'DT_INT32' },
  });
  h = g.op('dense/MatMul', 'MatMul', [h, g.weight('dense/kernel', [32, 5])], {
    ...T,
    transpose_a: { b: false },
    transpose_b: { b: false },
  });
  h = g.op('dense/BiasAdd', 'BiasAdd', [h, g.weight('dense/bias', [5], 0.1)], {
    ...T,
    data_format: str('NHWC'),
  });
  g.op('probs', 'Softmax', [h], T);
  g.write(dir);
}

/**
 * `fused`: _FusedConv2D with [BiasAdd, Relu] (dilated), [BiasAdd, LeakyRelu] (EXPLICIT pads,
 * stride 2) and [BiasAdd] alone, FusedDepthwiseConv2dNative [BiasAdd, Relu6], AddV2 (residual),
 * ExpandDims/Squeeze, Transpose, Reshape (flatten), _FusedMatMul [BiasAdd, Relu] with transpose_b,
 * a plain MatMul head and Identity, Elu; two outputs named in a signature.
 */
function fused(dir: string): void {
  const g = new GraphDef(23);
  const x = g.input('x', [-1, 10, 10, 4]);
  const fusedConv = (
    name: string,
    input: string,
    kernel: number[],
    ops: string[],
    attrs: Json,
  ): string =>
    g.op(
      name,
      '_FusedConv2D',
      [input, g.weight(`${name}/kernel`, kernel), g.weight(`${name}/bias`, [kernel[3]!], 0.1)],
      {
        ...conv([1, 1, 1, 1], 'SAME'),
        num_args: { i: '1' },
        fused_ops: strs(ops),
        epsilon: { f: 0 },
        ...attrs,
      },
    );
  const c1 = fusedConv('c1', x, [3, 3, 4, 6], ['BiasAdd', 'Relu'], {
    dilations: ints([1, 2, 2, 1]),
  });
  const dw = g.op(
    'dw',
    'FusedDepthwiseConv2dNative',
    [c1, g.weight('dw/kernel', [3, 3, 6, 1]), g.weight('dw/bias', [6], 0.1)],
    {
      ...conv([1, 1, 1, 1], 'SAME'),
      num_args: { i: '1' },
      fused_ops: strs(['BiasAdd', 'Relu6']),
    },
  );
  const c2 = fusedConv('c2', dw, [1, 1, 6, 6], ['BiasAdd'], {});
  const res = g.op('res/add', 'AddV2', [c1, c2], T);
  const c3 = fusedConv('c3', res, [3, 3, 6, 8], ['BiasAdd', 'LeakyRelu'], {
    strides: ints([1, 2, 2, 1]),
    padding: str('EXPLICIT'),
    explicit_paddings: ints([0, 0, 1, 0, 0, 1, 0, 0]),
    leakyrelu_alpha: { f: 0.15 },
  });
  // [N, 5, 5, 8] → [N, 8, 5, 5] → [N, 200]: a Transpose before the flatten, as PyTorch-born graphs do.
  const tr = g.op('to_nchw', 'Transpose', [c3, g.int('to_nchw/perm', [4], [0, 3, 1, 2])], {
    ...T,
    Tperm: { type: 'DT_INT32' },
  });
  const flat = g.op('flatten', 'Reshape', [tr, g.int('flatten/shape', [2], [-1, 200])], {
    ...T,
    Tshape: { type: 'DT_INT32' },
  });
  const fc = g.op(
    'fc',
    '_FusedMatMul',
    [flat, g.weight('fc/kernel', [16, 200], 0.1), g.weight('fc/bias', [16], 0.1)],
    {
      ...T,
      transpose_a: { b: false },
      transpose_b: { b: true },
      num_args: { i: '1' },
      fused_ops: strs(['BiasAdd', 'Relu']),
      epsilon: { f: 0 },
    },
  );
  const ex = g.op('expand', 'ExpandDims', [fc, g.int('expand/dim', [], [1])], {
    ...T,
    Tdim: { type: 'DT_INT32' },
  });
  const sq = g.op('squeeze', 'Squeeze', [ex], { ...T, squeeze_dims: ints([1]) });
  const logits = g.op('head/MatMul', 'MatMul', [sq, g.weight('head/kernel', [16, 3])], {
    ...T,
    transpose_a: { b: false },
    transpose_b: { b: false },
  });
  g.op('logits', 'Identity', [logits], T);
  // Global features from the residual block, a second output.
  const mean = g.op('features/Mean', 'Mean', [res, g.int('features/axes', [2], [1, 2])], {
    ...T,
    keep_dims: { b: false },
    Tidx: { type: 'DT_INT32' },
  });
  g.op('features', 'Elu', [mean], T);
  g.write(dir, ['logits', 'features']);
}

/**
 * `fused-bn` and `fused-bn-reference`: _FusedConv2D with [FusedBatchNorm, Relu] (what TF's
 * grappler writes for Conv + BN + ReLU; TF.js refuses to run it) and the same weights as
 * Conv2D + FusedBatchNormV3 + Relu, which TF.js runs: the importer must give both the same.
 */
function fusedBn(dir: string, refDir: string): void {
  for (const [out, isFused] of [
    [dir, true],
    [refDir, false],
  ] as const) {
    const g = new GraphDef(37);
    const x = g.input('x', [-1, 6, 6, 3]);
    const k = g.weight('conv/kernel', [3, 3, 3, 4]);
    const bn = [
      g.weight('bn/scale', [4], 0.2, 1),
      g.weight('bn/offset', [4], 0.1),
      g.weight('bn/mean', [4], 0.1),
      g.weight('bn/variance', [4], 0.3, 1),
    ];
    if (isFused) {
      g.op('conv', '_FusedConv2D', [x, k, ...bn], {
        ...conv([1, 1, 1, 1], 'VALID'),
        num_args: { i: '4' },
        fused_ops: strs(['FusedBatchNorm', 'Relu']),
        epsilon: { f: 0.001 },
      });
    } else {
      const c = g.op('conv/Conv2D', 'Conv2D', [x, k], conv([1, 1, 1, 1], 'VALID'));
      const b = g.op('conv/bn', 'FusedBatchNormV3', [c, ...bn], {
        ...T,
        epsilon: { f: 0.001 },
        data_format: str('NHWC'),
      });
      g.op('conv', 'Relu', [b], T);
    }
    g.write(out);
  }
}

/**
 * `dynamic-flatten`: Keras' Flatten for an open batch size, Shape → StridedSlice → Pack → Reshape,
 * between a Conv2D + Relu and a MatMul head.
 */
function dynamicFlatten(dir: string): void {
  const g = new GraphDef(41);
  const x = g.input('x', [-1, 4, 4, 2]);
  const c = g.op(
    'conv/Conv2D',
    'Conv2D',
    [x, g.weight('conv/kernel', [3, 3, 2, 2])],
    conv([1, 1, 1, 1], 'SAME'),
  );
  const r = g.op('conv/Relu', 'Relu', [c], T);
  const shape = g.op('flatten/Shape', 'Shape', [r], { ...T, out_type: { type: 'DT_INT32' } });
  const batch = g.op(
    'flatten/strided_slice',
    'StridedSlice',
    [
      shape,
      g.int('flatten/begin', [1], [0]),
      g.int('flatten/end', [1], [1]),
      g.int('flatten/strides', [1], [1]),
    ],
    { T: { type: 'DT_INT32' }, Index: { type: 'DT_INT32' }, shrink_axis_mask: { i: '1' } },
  );
  const target = g.op('flatten/Reshape/shape', 'Pack', [batch, g.int('flatten/minus1', [], [-1])], {
    T: { type: 'DT_INT32' },
    N: { i: '2' },
    axis: { i: '0' },
  });
  const flat = g.op('flatten/Reshape', 'Reshape', [r, target], {
    ...T,
    Tshape: { type: 'DT_INT32' },
  });
  g.op('out', 'MatMul', [flat, g.weight('head/kernel', [32, 3])], {
    ...T,
    transpose_a: { b: false },
    transpose_b: { b: false },
  });
  g.write(dir);
}

/**
 * `resize`: ResizeBilinear (half_pixel_centers to 6×9, align_corners to 6×6, neither to 9×6) and
 * ResizeNearestNeighbor (neither to 6×6, half_pixel_centers to 9×6, align_corners to 9×9) from
 * 3×3, one output each.
 */
function resizes(dir: string): void {
  const g = new GraphDef(43);
  const x = g.input('x', [-1, 3, 3, 2]);
  const cases: [string, string, number[], Json][] = [
    ['bilinear_half', 'ResizeBilinear', [6, 9], { half_pixel_centers: { b: true } }],
    ['bilinear_align', 'ResizeBilinear', [6, 6], { align_corners: { b: true } }],
    ['bilinear', 'ResizeBilinear', [9, 6], {}],
    ['nearest', 'ResizeNearestNeighbor', [6, 6], {}],
    ['nearest_half', 'ResizeNearestNeighbor', [9, 6], { half_pixel_centers: { b: true } }],
    ['nearest_align', 'ResizeNearestNeighbor', [9, 9], { align_corners: { b: true } }],
  ];
  for (const [name, op, size, attrs] of cases) {
    g.op(name, op, [x, g.int(`${name}/size`, [2], size)], {
      ...T,
      align_corners: { b: false },
      half_pixel_centers: { b: false },
      ...attrs,
    });
  }
  g.write(
    dir,
    cases.map((c) => c[0]),
  );
}

const root = resolve(fileURLToPath(import.meta.url), '../../fixtures/tfjs-graph');
unfused(join(root, 'unfused'));
fused(join(root, 'fused'));
fusedBn(join(root, 'fused-bn'), join(root, 'fused-bn-reference'));
dynamicFlatten(join(root, 'dynamic-flatten'));
resizes(join(root, 'resize'));
console.log(`wrote ${root}/{unfused,fused,fused-bn,fused-bn-reference,dynamic-flatten,resize}`);
