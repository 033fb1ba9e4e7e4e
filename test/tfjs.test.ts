import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { QuadranetFileError } from '../src/io/errors.js';
import { importModel } from '../src/io/import/importers.js';
import type { TfjsImportOptions } from '../src/io/import/tfjs/index.js';
import { importTfjs } from '../src/io/import/tfjs/index.js';
import { decodeWeight, halfToFloat } from '../src/io/import/tfjs/weights.js';
import type { Graph } from '../src/ir/graph.js';
import { toHalfBits } from '../src/ir/tensor.js';
import { Session } from '../src/runtime/session.js';
import { Rng } from '../src/util/random.js';
import { expectAllClose } from './helpers/allclose.js';

// Each converter is checked against TF.js itself (pure-JS CPU backend) on tiny models: TF.js
// builds the model, saves model.json + a weight shard to a temp dir, loads them back from disk,
// and its prediction is the reference for the imported graph run on onnxruntime. Tolerance:
// |ours − tfjs| ≤ 1e-4 · max|tfjs output| elementwise (float32 arithmetic in different orders).

let root: string;
let counter = 0;

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'quadranet-tfjs-'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function newDir(): Promise<string> {
  const dir = join(root, `m${counter++}`);
  await import('node:fs/promises').then((fs) => fs.mkdir(dir));
  return dir;
}

function bytesOf(data: ArrayBuffer | ArrayBuffer[]): Uint8Array {
  const parts = Array.isArray(data) ? data : [data];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), at);
    at += p.byteLength;
  }
  return out;
}

/** Gives every weight seeded random values (positive where BatchNorm needs it). */
function randomizeWeights(model: tf.LayersModel, seed: number): void {
  const rng = new Rng(seed);
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    const names = layer.weights.map((w) => w.name);
    layer.setWeights(
      ws.map((w, i) => {
        const positive = /moving_variance|gamma/.test(names[i]!);
        const values = Float32Array.from({ length: w.size }, () =>
          positive ? rng.uniform(0.5, 1.5) : rng.uniform(-0.5, 0.5),
        );
        return tf.tensor(values, w.shape);
      }),
    );
  }
}

/** Saves a TF.js model as model.json + one shard into a new directory; returns the json path. */
async function saveModel(model: tf.LayersModel): Promise<string> {
  const dir = await newDir();
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      const json = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: null,
        modelTopology: a.modelTopology,
        weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: a.weightSpecs ?? [] }],
      };
      await writeFile(join(dir, 'model.json'), JSON.stringify(json));
      await writeFile(join(dir, 'group1-shard1of1.bin'), bytesOf(a.weightData ?? []));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return join(dir, 'model.json');
}

/** Loads model.json and its shards from disk into TF.js (no network). */
async function loadTfjs(path: string): Promise<tf.LayersModel> {
  const json = JSON.parse(await readFile(path, 'utf8'));
  const dir = join(path, '..');
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const g of json.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) parts.push(await readFile(join(dir, p)));
  }
  const data = bytesOf(
    parts.map((p) => p.buffer.slice(p.byteOffset, p.byteOffset + p.byteLength) as ArrayBuffer),
  );
  return tf.loadLayersModel({
    load: async () => ({
      modelTopology: json.modelTopology,
      weightSpecs: specs,
      weightData: data.buffer as ArrayBuffer,
    }),
  });
}

function randomInput(shape: number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1));
}

async function runGraph(g: Graph, feeds: Record<string, { dims: number[]; data: Float32Array }>) {
  const s = await Session.create(g);
  const res = await s.run(
    Object.fromEntries(
      Object.entries(feeds).map(([k, v]) => [k, { dtype: 'float32' as const, ...v }]),
    ),
  );
  await s.release();
  return res;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Imports `path`, runs it and TF.js on the same inputs, and compares every output. */
async function compareWithTfjs(
  path: string,
  inputShapes: number[][],
  options: TfjsImportOptions = {},
  seed = 1,
): Promise<Graph> {
  const model = await loadTfjs(path);
  const xs = inputShapes.map((s, i) => randomInput(s, seed + i));
  const pred = model.predict(xs.map((x, i) => tf.tensor(x, inputShapes[i]))) as
    tf.Tensor | tf.Tensor[];
  const refs = await Promise.all(
    (Array.isArray(pred) ? pred : [pred]).map(async (t) => ({
      shape: t.shape,
      data: (await t.data()) as Float32Array,
    })),
  );
  const g = await importTfjs(path, options);
  assert.equal(g.inputs.length, inputShapes.length);
  const res = await runGraph(
    g,
    Object.fromEntries(g.inputs.map((v, i) => [v.name, { dims: inputShapes[i]!, data: xs[i]! }])),
  );
  assert.equal(g.outputs.length, refs.length);
  g.outputs.forEach((o, i) => {
    const ours = res[o.name]!;
    assert.deepEqual(ours.dims, refs[i]!.shape, `output ${o.name} shape`);
    // Declared shape: numbers where TF.js knows the size.
    o.shape.forEach((d, k) => {
      if (typeof d === 'number')
        assert.equal(d, refs[i]!.shape[k], `declared dim ${k} of ${o.name}`);
    });
    expectAllClose(ours.data as Float32Array, refs[i]!.data, {
      rtol: 0,
      atol: 1e-4 * maxAbs(refs[i]!.data),
      what: `${o.name} vs TF.js`,
    });
  });
  return g;
}

async function build(model: tf.LayersModel, seed = 7): Promise<string> {
  randomizeWeights(model, seed);
  return saveModel(model);
}

const L = tf.layers;

describe('TF.js import: each converter matches TF.js', () => {
  for (const [h, w] of [
    [8, 8],
    [7, 9],
  ] as const) {
    it(`Conv2D SAME with stride 2 (asymmetric pads) on a ${h}×${w} input, kernels 1–4`, async () => {
      const m = tf.sequential({
        layers: [
          L.conv2d({
            inputShape: [h, w, 3],
            filters: 4,
            kernelSize: 3,
            strides: 2,
            padding: 'same',
            activation: 'relu',
          }),
          L.conv2d({ filters: 5, kernelSize: 2, strides: 2, padding: 'same' }),
          L.conv2d({
            filters: 3,
            kernelSize: [4, 1],
            strides: [2, 1],
            padding: 'same',
            activation: 'tanh',
          }),
        ],
      });
      const g = await compareWithTfjs(await build(m), [[2, h, w, 3]]);
      // Explicit pads, not auto_pad, when the size is known.
      const convs = g.nodes.filter((n) => n.opType === 'Conv');
      assert.equal(convs.length, 3);
      for (const c of convs)
        assert.ok(c.attrs.pads && !c.attrs.auto_pad, `${c.name} has explicit pads`);
      if (h === 7) assert.deepEqual(convs[0]!.attrs.pads!.value, [1, 1, 1, 1]);
      if (h === 8) assert.deepEqual(convs[0]!.attrs.pads!.value, [0, 0, 1, 1]);
    });
  }

  it('Conv2D valid with dilation, no bias, and every activation', async () => {
    const acts = [
      'sigmoid',
      'elu',
      'selu',
      'softplus',
      'softsign',
      'swish',
      'mish',
      'hardSigmoid',
      'relu6',
      'linear',
      'softmax',
    ] as const;
    const m = tf.sequential({
      layers: [
        L.conv2d({
          inputShape: [11, 10, 3],
          filters: 6,
          kernelSize: 3,
          dilationRate: 2,
          useBias: false,
          activation: 'relu',
        }),
        ...acts.map((a) => L.conv2d({ filters: 6, kernelSize: 1, activation: a })),
      ],
    });
    await compareWithTfjs(await build(m), [[2, 11, 10, 3]]);
  });

  // TF.js drops SeparableConv2D's depth_multiplier when it reloads a model, so the separable layers
  // here use multiplier 1; the multiplier path (shared with DepthwiseConv2D) is checked above.
  // TF.js ignores DepthwiseConv2D's dilation_rate: the dilated case is checked separately below.
  it('DepthwiseConv2D (multiplier 2, stride 2 SAME, odd size) and SeparableConv2D', async () => {
    const m = tf.sequential({
      layers: [
        L.depthwiseConv2d({
          inputShape: [13, 11, 3],
          kernelSize: 3,
          depthMultiplier: 2,
          strides: 2,
          padding: 'same',
          activation: 'relu',
        }),
        L.depthwiseConv2d({ kernelSize: 3, padding: 'valid', useBias: false }),
        L.separableConv2d({
          filters: 5,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
        }),
        L.separableConv2d({
          filters: 4,
          kernelSize: 2,
          strides: 1,
          padding: 'valid',
          useBias: false,
        }),
      ],
    });
    const g = await compareWithTfjs(await build(m), [[2, 13, 11, 3]]);
    const dw = g.nodes.find((n) => n.opType === 'Conv')!;
    assert.equal(dw.attrs.group!.value, 3);
    assert.deepEqual(g.initializers.get(dw.inputs[1]!)!.dims, [6, 1, 3, 3]);
  });

  it('dilated DepthwiseConv2D equals an undilated one with a zero-interleaved kernel (TF.js)', async () => {
    // TF.js' DepthwiseConv2D ignores dilation_rate, so the reference is a 5×5 kernel holding the
    // 3×3 taps at even offsets: the same function as 3×3 with dilation 2.
    const dilated = tf.sequential({
      layers: [
        L.depthwiseConv2d({
          inputShape: [9, 8, 2],
          kernelSize: 3,
          dilationRate: 2,
          depthMultiplier: 2,
          padding: 'same',
        }),
      ],
    });
    randomizeWeights(dilated, 11);
    const [k3, bias] = dilated.layers[0]!.getWeights() as [tf.Tensor, tf.Tensor];
    const k3v = (await k3.data()) as Float32Array;
    const k5v = new Float32Array(5 * 5 * 2 * 2);
    for (let h = 0; h < 3; h++)
      for (let w = 0; w < 3; w++)
        for (let j = 0; j < 4; j++) k5v[(2 * h * 5 + 2 * w) * 4 + j] = k3v[(h * 3 + w) * 4 + j]!;
    const plain = tf.sequential({
      layers: [
        L.depthwiseConv2d({
          inputShape: [9, 8, 2],
          kernelSize: 5,
          depthMultiplier: 2,
          padding: 'same',
        }),
      ],
    });
    plain.layers[0]!.setWeights([tf.tensor(k5v, [5, 5, 2, 2]), bias]);
    const x = randomInput([2, 9, 8, 2], 4);
    const ref = (await (
      plain.predict(tf.tensor(x, [2, 9, 8, 2])) as tf.Tensor
    ).data()) as Float32Array;
    const g = await importTfjs(await saveModel(dilated));
    const conv = g.nodes.find((n) => n.opType === 'Conv')!;
    assert.deepEqual(conv.attrs.dilations!.value, [2, 2]);
    const res = await runGraph(g, { [g.inputs[0]!.name]: { dims: [2, 9, 8, 2], data: x } });
    expectAllClose(res[g.outputs[0]!.name]!.data as Float32Array, ref, {
      rtol: 0,
      atol: 1e-4 * maxAbs(ref),
      what: 'dilated depthwise',
    });
  });

  for (const [k, s, padding] of [
    [3, 2, 'same'],
    [2, 2, 'valid'],
    [3, 1, 'valid'],
    [1, 2, 'same'],
    [1, 3, 'valid'],
    [4, 2, 'same'],
  ] as const) {
    it(`Conv2DTranspose kernel ${k} stride ${s} ${padding}`, async () => {
      const m = tf.sequential({
        layers: [
          L.conv2dTranspose({
            inputShape: [5, 4, 3],
            filters: 2,
            kernelSize: k,
            strides: s,
            padding,
          }),
        ],
      });
      await compareWithTfjs(await build(m), [[2, 5, 4, 3]]);
    });
  }

  it('Dense on rank 2 and on channels-last rank 4, BatchNormalization, LayerNormalization', async () => {
    const m = tf.sequential({
      layers: [
        L.conv2d({ inputShape: [6, 5, 3], filters: 4, kernelSize: 3, padding: 'same' }),
        L.batchNormalization({ axis: -1, epsilon: 0.01 }),
        L.dense({ units: 3, activation: 'relu' }),
        L.batchNormalization({ center: false }),
        L.flatten(),
        L.dense({ units: 7 }),
        L.batchNormalization({ scale: false }),
        L.layerNormalization({ epsilon: 1e-3 }),
        L.dense({ units: 4, activation: 'softmax', useBias: false }),
      ],
    });
    const g = await compareWithTfjs(await build(m), [[3, 6, 5, 3]]);
    assert.ok(g.nodes.some((n) => n.opType === 'MatMul'));
    assert.equal(g.nodes.filter((n) => n.opType === 'BatchNormalization').length, 3);
  });

  it('pooling: max/average SAME stride 2 on odd sizes, valid, global average/max', async () => {
    const inp = tf.input({ shape: [9, 7, 4] });
    const a = L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(
      inp,
    ) as tf.SymbolicTensor;
    const b = L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(
      inp,
    ) as tf.SymbolicTensor;
    const c = L.averagePooling2d({ poolSize: 2, padding: 'valid' }).apply(inp) as tf.SymbolicTensor;
    const d = L.globalAveragePooling2d({}).apply(inp) as tf.SymbolicTensor;
    const e = L.globalMaxPooling2d({}).apply(inp) as tf.SymbolicTensor;
    const m = tf.model({ inputs: inp, outputs: [a, b, c, d, e] });
    const g = await compareWithTfjs(await build(m), [[2, 9, 7, 4]]);
    assert.equal(g.outputs.length, 5);
  });

  it('merges, activation layers, padding/cropping/upsampling and shape layers (functional)', async () => {
    const inp = tf.input({ shape: [6, 5, 3] });
    const c1 = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(
      inp,
    ) as tf.SymbolicTensor;
    const c2 = L.conv2d({ filters: 4, kernelSize: 1 }).apply(inp) as tf.SymbolicTensor;
    const add = L.add().apply([c1, c2]) as tf.SymbolicTensor;
    const mul = L.multiply().apply([c1, add]) as tf.SymbolicTensor;
    const avg = L.average().apply([mul, c2, c1]) as tf.SymbolicTensor;
    const mx = L.maximum().apply([avg, c1]) as tf.SymbolicTensor;
    const mn = L.minimum().apply([mx, c2]) as tf.SymbolicTensor;
    const cat = L.concatenate({ axis: -1 }).apply([mn, inp, c1]) as tf.SymbolicTensor;
    let x = L.reLU({ maxValue: 0.8 }).apply(cat) as tf.SymbolicTensor;
    x = L.leakyReLU({ alpha: 0.2 }).apply(
      L.conv2d({ filters: 3, kernelSize: 1 }).apply(cat),
    ) as tf.SymbolicTensor;
    const pr = L.prelu({ sharedAxes: [1, 2] }).apply(x) as tf.SymbolicTensor;
    const el = L.elu({}).apply(pr) as tf.SymbolicTensor;
    const th = L.thresholdedReLU({ theta: 0.1 }).apply(el) as tf.SymbolicTensor;
    const sm = L.softmax({ axis: -1 }).apply(th) as tf.SymbolicTensor;
    const pad = L.zeroPadding2d({
      padding: [
        [1, 2],
        [0, 3],
      ],
    }).apply(sm) as tf.SymbolicTensor;
    const crop = L.cropping2D({
      cropping: [
        [2, 0],
        [1, 1],
      ],
    }).apply(pad) as tf.SymbolicTensor;
    const up = L.upSampling2d({ size: [2, 3] }).apply(crop) as tf.SymbolicTensor;
    const upb = L.upSampling2d({ size: [2, 2], interpolation: 'bilinear' }).apply(
      crop,
    ) as tf.SymbolicTensor;
    const conv = L.conv2d({ filters: 2, kernelSize: 3, strides: 2, padding: 'same' }).apply(
      up,
    ) as tf.SymbolicTensor;
    const drop = L.dropout({ rate: 0.5 }).apply(conv) as tf.SymbolicTensor;
    const perm = L.permute({ dims: [3, 1, 2] }).apply(drop) as tf.SymbolicTensor;
    const resh = L.reshape({ targetShape: [-1, 6] }).apply(perm) as tf.SymbolicTensor;
    const act = L.activation({ activation: 'tanh' }).apply(resh) as tf.SymbolicTensor;
    const flat = L.flatten().apply(upb) as tf.SymbolicTensor;
    const m = tf.model({ inputs: inp, outputs: [act, flat, x] });
    await compareWithTfjs(await build(m), [[2, 6, 5, 3]]);
  });

  it('Rescaling, Conv1D, pooling 1D and global pooling 1D', async () => {
    const m = tf.sequential({
      layers: [
        L.rescaling({ inputShape: [11, 3], scale: 0.5, offset: -0.25 }),
        L.conv1d({
          filters: 4,
          kernelSize: 3,
          strides: 2,
          padding: 'same',
          activation: 'relu',
        }),
        L.maxPooling1d({ poolSize: 2, padding: 'same' }),
        L.averagePooling1d({ poolSize: 2, strides: 1 }),
        L.globalAveragePooling1d({}),
      ],
    });
    await compareWithTfjs(await build(m), [[2, 11, 3]]);
  });

  it('nested models, a shared layer called twice, and two inputs', async () => {
    const inner = tf.sequential({
      name: 'inner',
      layers: [
        L.conv2d({
          inputShape: [6, 6, 3],
          filters: 3,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
        }),
        L.batchNormalization({}),
      ],
    });
    const a = tf.input({ shape: [6, 6, 3], name: 'a' });
    const b = tf.input({ shape: [6, 6, 3], name: 'b' });
    const shared = L.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'shared' });
    const sa = shared.apply(a) as tf.SymbolicTensor;
    const sb = shared.apply(b) as tf.SymbolicTensor;
    const n = inner.apply(L.add().apply([sa, sb]) as tf.SymbolicTensor) as tf.SymbolicTensor;
    const out = L.dense({ units: 2 }).apply(
      L.globalAveragePooling2d({}).apply(n),
    ) as tf.SymbolicTensor;
    const m = tf.model({ inputs: [a, b], outputs: out });
    const g = await compareWithTfjs(await build(m), [
      [2, 6, 6, 3],
      [2, 6, 6, 3],
    ]);
    // The shared layer's weights are one initializer used by both calls.
    const sharedConvs = g.nodes.filter(
      (nd) => nd.opType === 'Conv' && nd.name.startsWith('shared'),
    );
    assert.equal(sharedConvs.length, 2);
    assert.equal(sharedConvs[0]!.inputs[1], sharedConvs[1]!.inputs[1]);
  });

  it('unknown input sizes: stride-2 SAME resolves at run time; inputShape fixes them', async () => {
    const m = tf.sequential({
      layers: [
        L.conv2d({
          inputShape: [null, null, 3] as unknown as number[],
          filters: 4,
          kernelSize: 3,
          strides: 2,
          padding: 'same',
        }),
        L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
        L.conv2d({ filters: 2, kernelSize: 3, padding: 'same' }),
      ],
    });
    const path = await build(m);
    const g = await compareWithTfjs(path, [[1, 9, 7, 3]]);
    assert.deepEqual(g.inputs[0]!.shape, ['batch', 'height', 'width', 3]);
    assert.ok(g.nodes.some((n) => n.attrs.auto_pad?.value === 'SAME_UPPER'));
    const fixed = await compareWithTfjs(path, [[1, 9, 7, 3]], { inputShape: [9, 7, 3] });
    assert.deepEqual(fixed.inputs[0]!.shape, ['batch', 9, 7, 3]);
    assert.deepEqual(fixed.outputs[0]!.shape, ['batch', 3, 2, 2]);
    assert.ok(!fixed.nodes.some((n) => n.attrs.auto_pad));
    await assert.rejects(importTfjs(path, { inputShape: [9, 7, 4] }), /does not match/);
  });

  it('channels_first layers compute the channels_last function on transposed inputs', async () => {
    // TF.js' CPU backend has no NCHW convolutions, so the reference is the channels_last model
    // (checked against TF.js) fed the same images in NHWC.
    const m = tf.sequential({
      layers: [
        L.conv2d({ inputShape: [7, 6, 3], filters: 4, kernelSize: 3, strides: 2, padding: 'same' }),
        L.batchNormalization({ axis: -1 }),
        L.maxPooling2d({ poolSize: 2, padding: 'same' }),
        L.zeroPadding2d({
          padding: [
            [1, 0],
            [0, 2],
          ],
        }),
        L.upSampling2d({ size: [2, 1] }),
        L.depthwiseConv2d({ kernelSize: 2 }),
        L.flatten(),
        L.dense({ units: 3 }),
      ],
    });
    const path = await build(m);
    await compareWithTfjs(path, [[2, 7, 6, 3]]);
    const raw = JSON.parse(await readFile(path, 'utf8'));
    for (const l of raw.modelTopology.config.layers) {
      if (l.config.data_format || l.class_name === 'Flatten')
        l.config.data_format = 'channels_first';
      if (l.class_name === 'BatchNormalization') l.config.axis = 1;
      if (l.config.batch_input_shape) l.config.batch_input_shape = [null, 3, 7, 6];
    }
    const cfPath = join(path, '..', 'channels-first.model.json');
    await writeFile(cfPath, JSON.stringify(raw));
    const nhwc = randomInput([2, 7, 6, 3], 5);
    const nchw = new Float32Array(nhwc.length);
    for (let n = 0; n < 2; n++)
      for (let h = 0; h < 7; h++)
        for (let w = 0; w < 6; w++)
          for (let c = 0; c < 3; c++)
            nchw[((n * 3 + c) * 7 + h) * 6 + w] = nhwc[((n * 7 + h) * 6 + w) * 3 + c]!;
    const last = await importTfjs(path);
    const first = await importTfjs(cfPath);
    assert.deepEqual(first.inputs[0]!.shape, ['batch', 3, 7, 6]);
    // No layout Transposes (channels_first tensors are what ONNX convolves): only Flatten's
    // move of the channels to the end, as Keras does for channels_first.
    assert.equal(first.nodes.filter((n) => n.opType === 'Transpose').length, 1);
    const a = await runGraph(last, { [last.inputs[0]!.name]: { dims: [2, 7, 6, 3], data: nhwc } });
    const b = await runGraph(first, {
      [first.inputs[0]!.name]: { dims: [2, 3, 7, 6], data: nchw },
    });
    const ya = a[last.outputs[0]!.name]!.data as Float32Array;
    expectAllClose(b[first.outputs[0]!.name]!.data as Float32Array, ya, {
      rtol: 0,
      atol: 1e-5 * maxAbs(ya),
      what: 'channels_first vs channels_last',
    });
  });

  it('extra outputs by layer name; the importer registry reads model.json as tfjs', async () => {
    const m = tf.sequential({
      layers: [
        L.conv2d({ inputShape: [5, 5, 2], filters: 3, kernelSize: 3, name: 'feat' }),
        L.flatten({ name: 'flat' }),
        L.dense({ units: 2, name: 'head' }),
      ],
    });
    const path = await build(m);
    const g = await importTfjs(path, { outputs: ['feat'] });
    assert.deepEqual(
      g.outputs.map((o) => [o.name, o.shape]),
      [
        ['head', ['batch', 2]],
        ['feat', ['batch', 3, 3, 3]],
      ],
    );
    const imported = await importModel(path);
    assert.equal(imported.format, 'tfjs');
    assert.equal(imported.graph.outputs[0]!.name, 'head');
    await assert.rejects(importTfjs(path, { outputs: ['nope'] }), /no layer named 'nope'/);
  });
});

// ------------------------------------------------------------------ hand-written files

interface WeightIn {
  name: string;
  shape: number[];
  values: number[];
  quantization?: 'uint8' | 'uint16' | 'float16';
}

/** Writes a Keras-converter-style model.json (model_config wrapper) and its shard. */
async function writeHandMade(
  layers: unknown[],
  weights: WeightIn[],
  { className = 'Sequential', shard = 'group1-shard1of1.bin' } = {},
): Promise<string> {
  const dir = await newDir();
  const specs: unknown[] = [];
  const chunks: Uint8Array[] = [];
  for (const w of weights) {
    if (!w.quantization) {
      specs.push({ name: w.name, shape: w.shape, dtype: 'float32' });
      chunks.push(new Uint8Array(Float32Array.from(w.values).buffer));
    } else if (w.quantization === 'float16') {
      specs.push({
        name: w.name,
        shape: w.shape,
        dtype: 'float32',
        quantization: { dtype: 'float16' },
      });
      chunks.push(new Uint8Array(Uint16Array.from(w.values, toHalfBits).buffer));
    } else {
      const levels = w.quantization === 'uint8' ? 255 : 65535;
      const min = Math.min(...w.values);
      const scale = (Math.max(...w.values) - min) / levels || 1;
      const q = w.values.map((v) => Math.round((v - min) / scale));
      specs.push({
        name: w.name,
        shape: w.shape,
        dtype: 'float32',
        quantization: { dtype: w.quantization, min, scale },
      });
      chunks.push(
        new Uint8Array(
          w.quantization === 'uint8' ? Uint8Array.from(q).buffer : Uint16Array.from(q).buffer,
        ),
      );
    }
  }
  const json = {
    format: 'layers-model',
    generatedBy: 'keras v2.10.0',
    convertedBy: 'TensorFlow.js Converter v4.0.0',
    modelTopology: {
      keras_version: '2.10.0',
      backend: 'tensorflow',
      model_config: { class_name: className, config: { name: 'hand', layers } },
    },
    weightsManifest: [{ paths: [shard], weights: specs }],
  };
  await writeFile(join(dir, 'model.json'), JSON.stringify(json));
  await writeFile(
    join(dir, 'group1-shard1of1.bin'),
    bytesOf(chunks.map((c) => c.slice().buffer as ArrayBuffer)),
  );
  return join(dir, 'model.json');
}

function values(n: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.uniform(-1, 1));
}

const denseLayer = (name: string, units: number, extra: Record<string, unknown> = {}) => ({
  class_name: 'Dense',
  config: { name, units, activation: 'linear', use_bias: true, ...extra },
});

describe('TF.js import: hand-written model.json and weights', () => {
  it('uint8 / uint16 quantized and float16 weights dequantize exactly as TF.js does', async () => {
    const path = await writeHandMade(
      [
        denseLayer('d1', 5, { batch_input_shape: [null, 4], activation: 'relu' }),
        denseLayer('d2', 3),
      ],
      [
        { name: 'd1/kernel', shape: [4, 5], values: values(20, 1), quantization: 'uint8' },
        { name: 'd1/bias', shape: [5], values: values(5, 2), quantization: 'uint16' },
        { name: 'd2/kernel', shape: [5, 3], values: values(15, 3), quantization: 'float16' },
        { name: 'd2/bias', shape: [3], values: values(3, 4) },
      ],
    );
    const g = await compareWithTfjs(path, [[3, 4]]);
    // The initializers hold exactly TF.js' dequantized values.
    const model = await loadTfjs(path);
    const tfW = (await model.getLayer('d1').getWeights()[0]!.data()) as Float32Array;
    assert.deepEqual(g.initializers.get('d1.weight')!.data, tfW);
    const tfH = (await model.getLayer('d2').getWeights()[0]!.data()) as Float32Array;
    assert.deepEqual(g.initializers.get('d2.weight')!.data, tfH);
  });

  it('float16 decoding covers normals, subnormals, signs and infinities', () => {
    assert.equal(halfToFloat(0x3c00), 1);
    assert.equal(halfToFloat(0xc000), -2);
    assert.equal(halfToFloat(0x0001), 2 ** -24);
    assert.equal(halfToFloat(0x7bff), 65504);
    assert.equal(halfToFloat(0xfc00), -Infinity);
    assert.ok(Number.isNaN(halfToFloat(0x7e00)));
    const spec = {
      name: 'w',
      shape: [2],
      dtype: 'float32' as const,
      quantization: { dtype: 'float16' as const },
    };
    // Any byte alignment.
    const bytes = new Uint8Array([0, 0x00, 0x3c, 0x00, 0xbc]).subarray(1);
    assert.deepEqual(Array.from(decodeWeight(spec, bytes).data), [1, -1]);
  });

  it('a functional Keras-2 file ("Model") with Conv2D, ZeroPadding2D, ReLU(6) and SAME stride 2', async () => {
    const conv = (name: string, inbound: string, extra: Record<string, unknown>) => ({
      class_name: 'Conv2D',
      name,
      config: {
        name,
        filters: 2,
        kernel_size: [3, 3],
        strides: [1, 1],
        padding: 'same',
        data_format: 'channels_last',
        dilation_rate: [1, 1],
        activation: 'linear',
        use_bias: true,
        ...extra,
      },
      inbound_nodes: [[[inbound, 0, 0, {}]]],
    });
    const layers = [
      {
        class_name: 'InputLayer',
        name: 'img',
        config: { name: 'img', batch_input_shape: [null, 7, 6, 2], dtype: 'float32' },
        inbound_nodes: [],
      },
      {
        class_name: 'ZeroPadding2D',
        name: 'pad',
        config: {
          name: 'pad',
          padding: [
            [0, 1],
            [0, 1],
          ],
          data_format: 'channels_last',
        },
        inbound_nodes: [[['img', 0, 0, {}]]],
      },
      conv('c1', 'pad', { strides: [2, 2], padding: 'valid' }),
      {
        class_name: 'ReLU',
        name: 'r',
        config: { name: 'r', max_value: 6, negative_slope: 0, threshold: 0 },
        inbound_nodes: [[['c1', 0, 0, {}]]],
      },
      conv('c2', 'r', { strides: [2, 2] }),
    ];
    const dir = await writeHandMade(
      layers,
      [
        { name: 'c1/kernel', shape: [3, 3, 2, 2], values: values(36, 5).map((v) => 4 * v) },
        { name: 'c1/bias', shape: [2], values: values(2, 6) },
        { name: 'c2/kernel', shape: [3, 3, 2, 2], values: values(36, 7) },
        { name: 'c2/bias', shape: [2], values: values(2, 8) },
      ],
      { className: 'Model' },
    );
    const raw = JSON.parse(await readFile(dir, 'utf8'));
    raw.modelTopology.model_config.config.input_layers = [['img', 0, 0]];
    raw.modelTopology.model_config.config.output_layers = [['c2', 0, 0]];
    await writeFile(dir, JSON.stringify(raw));
    const g = await compareWithTfjs(dir, [[2, 7, 6, 2]], {}, 3);
    assert.ok(g.nodes.some((n) => n.opType === 'Clip'));
    assert.deepEqual(g.outputs[0]!.shape, ['batch', 2, 2, 2]);
  });
});

describe('TF.js import: Keras semantics TF.js does not implement', () => {
  it('ReLU with negative_slope, threshold and max_value follows Keras', async () => {
    const path = await writeHandMade(
      [
        {
          class_name: 'ReLU',
          config: {
            name: 'r',
            batch_input_shape: [null, 6],
            max_value: 2,
            negative_slope: 0.1,
            threshold: 0.5,
          },
        },
      ],
      [],
    );
    const g = await importTfjs(path);
    const x = Float32Array.of(-1, 0, 0.5, 1, 2.5, 3);
    const y = (await runGraph(g, { r_input: { dims: [1, 6], data: x } })).r!.data as Float32Array;
    const keras = Array.from(x, (v) => Math.min(2, v >= 0.5 ? v : 0.1 * (v - 0.5)));
    expectAllClose(y, keras, { rtol: 1e-6, atol: 1e-7, what: 'Keras ReLU' });
  });
});

describe('TF.js import: errors are one line and name the file', () => {
  function oneLine(re: RegExp, path: string) {
    return (e: unknown) => {
      assert.ok(e instanceof QuadranetFileError, `QuadranetFileError, got ${String(e)}`);
      assert.ok(!e.message.includes('\n'), 'one line');
      assert.ok(e.message.includes(path), `names ${path}: ${e.message}`);
      assert.match(e.message, re);
      return true;
    };
  }

  it('a missing weight shard is named', async () => {
    const path = await writeHandMade(
      [denseLayer('d', 2, { batch_input_shape: [null, 2] })],
      [
        { name: 'd/kernel', shape: [2, 2], values: [1, 2, 3, 4] },
        { name: 'd/bias', shape: [2], values: [0, 0] },
      ],
      { shard: 'missing-shard.bin' },
    );
    await assert.rejects(importTfjs(path), oneLine(/missing-shard\.bin.*not found/, path));
  });

  it('a truncated shard and a weight of the wrong shape are refused', async () => {
    const path = await writeHandMade(
      [denseLayer('d', 2, { batch_input_shape: [null, 2] })],
      [
        { name: 'd/kernel', shape: [2, 2], values: [1, 2, 3, 4] },
        { name: 'd/bias', shape: [2], values: [0, 0] },
      ],
    );
    const shard = join(path, '..', 'group1-shard1of1.bin');
    const bytes = await readFile(shard);
    await writeFile(shard, bytes.subarray(0, 10));
    await assert.rejects(
      importTfjs(path),
      oneLine(/hold 10 bytes but the manifest needs 24/, path),
    );
    await writeFile(shard, bytes);
    const raw = JSON.parse(await readFile(path, 'utf8'));
    raw.modelTopology.model_config.config.layers[0].config.batch_input_shape = [null, 1];
    raw.weightsManifest[0].weights[0].shape = [1, 4];
    await writeFile(path, JSON.stringify(raw));
    await assert.rejects(
      importTfjs(path),
      oneLine(
        /layer 'd' \(Dense\): weight 'd\/kernel' has shape \[1, 4\], expected \[1, 2\]/,
        path,
      ),
    );
  });

  it('bad JSON, a graph model and a missing file are refused', async () => {
    const dir = await newDir();
    const bad = join(dir, 'model.json');
    await writeFile(bad, '{ "modelTopology": ');
    await assert.rejects(importTfjs(bad), oneLine(/is not valid JSON/, bad));
    await writeFile(bad, JSON.stringify({ format: 'graph-model', modelTopology: { node: [] } }));
    await assert.rejects(importTfjs(bad), oneLine(/graph model/, bad));
    await writeFile(bad, JSON.stringify({ weightsManifest: [] }));
    await assert.rejects(importTfjs(bad), oneLine(/no modelTopology/, bad));
    const none = join(dir, 'nope', 'model.json');
    await assert.rejects(importTfjs(none), oneLine(/not found/, none));
  });

  it('every unsupported layer is listed by name in one error', async () => {
    const path = await writeHandMade(
      [
        denseLayer('d', 2, { batch_input_shape: [null, 2] }),
        { class_name: 'Lambda', config: { name: 'my_lambda', function: ['x'] } },
        { class_name: 'MyCustomLayer', config: { name: 'custom_1' } },
        denseLayer('g', 2, { activation: 'gelu' }),
        { class_name: 'LSTM', config: { name: 'rnn', units: 2 } },
      ],
      [],
    );
    await assert.rejects(
      importTfjs(path),
      oneLine(
        /cannot import 4 layers: 'my_lambda' \(Lambda: .*\), 'custom_1' \(MyCustomLayer: .*\), 'g' \(Dense: activation 'gelu'\), 'rnn' \(LSTM: .*\)/,
        path,
      ),
    );
  });

  it('a layer reading a tensor that does not exist is named', async () => {
    const path = await writeHandMade(
      [
        {
          class_name: 'InputLayer',
          name: 'x',
          config: { name: 'x', batch_input_shape: [null, 2] },
          inbound_nodes: [],
        },
        { ...denseLayer('d', 2), name: 'd', inbound_nodes: [[['ghost', 0, 0, {}]]] },
      ],
      [],
      { className: 'Functional' },
    );
    const raw = JSON.parse(await readFile(path, 'utf8'));
    Object.assign(raw.modelTopology.model_config.config, {
      input_layers: [['x', 0, 0]],
      output_layers: [['d', 0, 0]],
    });
    await writeFile(path, JSON.stringify(raw));
    await assert.rejects(
      importTfjs(path),
      oneLine(/layer 'd' \(Dense\) reads layer 'ghost'/, path),
    );
  });
});
