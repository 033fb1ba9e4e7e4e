import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { importModel } from '../src/io/import/importers.js';
import { importTfjsGraph } from '../src/io/import/tfjs/graph-model.js';
import type { Graph } from '../src/ir/graph.js';
import { cloneGraph } from '../src/ir/graph.js';
import { quadParamNames, quadratize } from '../src/passes/quadratize.js';
import { Session } from '../src/runtime/session.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';
import { expectAllClose } from './helpers/allclose.js';

// TF.js graph models ("format": "graph-model") imported and checked against TF.js' own graph
// executor (tf.loadGraphModel, pure-JS CPU backend, files read from disk):
//   - nsfwjs' MobileNetV2Mid, the one packaged graph model in node_modules (uint8-quantized,
//     _FusedConv2D / FusedDepthwiseConv2dNative with BiasAdd+Relu6, AddV2, AvgPool, Squeeze,
//     _FusedMatMul, Softmax; model.json and shards wrapped in JS files);
//   - the hand-written GraphDefs of scripts/make-tfjs-graph-models.ts (fixtures/tfjs-graph/), for
//     the ops that model does not use.
// Tolerances: imported vs TF.js |Δ| ≤ 1e-4 · max|TF.js output|; quadratized vs imported
// |Δ| ≤ 1e-6 · max|output| (DESIGN.md §3). Then a short quadratic adaptation must lower the loss.

const require = createRequire(import.meta.url);
const fixtures = fileURLToPath(new URL('../fixtures/tfjs-graph/', import.meta.url));
let root: string;

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'quadranet-tfjs-graph-'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Loads a graph model's model.json and shards from disk into TF.js. */
async function loadTfjsGraph(path: string): Promise<tf.GraphModel> {
  const json = JSON.parse(await readFile(path, 'utf8'));
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Buffer[] = [];
  for (const g of json.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) parts.push(await readFile(join(dirname(path), p)));
  }
  const all = Buffer.concat(parts);
  return tf.loadGraphModel({
    load: async () => ({
      modelTopology: json.modelTopology,
      format: json.format,
      signature: json.signature,
      userDefinedMetadata: json.userDefinedMetadata,
      weightSpecs: specs,
      weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer,
    }),
  });
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function run(
  g: Graph,
  dims: number[],
  x: Float32Array,
): Promise<Record<string, Float32Array>> {
  const s = await Session.create(g);
  const res = await s.run({ [g.inputs[0]!.name]: { dtype: 'float32', dims, data: x } });
  await s.release();
  return Object.fromEntries(Object.entries(res).map(([k, v]) => [k, v.data as Float32Array]));
}

/** Checks `ours` against `ref` at 1e-4 of max|ref| and returns the relative max difference. */
function closeTo(ours: Float32Array, ref: Float32Array, what: string): number {
  const scale = maxAbs(ref);
  assert.ok(scale > 0, `${what}: the reference is all zeros`);
  assert.equal(ours.length, ref.length, `${what}: size`);
  expectAllClose(ours, ref, { rtol: 0, atol: 1e-4 * scale, what });
  return maxDiff(ours, ref) / scale;
}

/** TF.js' outputs of a graph model for one input, by output node name. */
async function tfjsOutputs(
  model: tf.GraphModel,
  x: Float32Array,
  dims: number[],
  names: string[],
): Promise<Float32Array[]> {
  const out = model.execute(tf.tensor(x, dims), names);
  const list = Array.isArray(out) ? out : [out];
  return Promise.all(list.map(async (t) => (await t.data()) as Float32Array));
}

/** A copy of `g` whose output is the logits feeding its final Softmax. */
function withoutFinalSoftmax(g: Graph): Graph {
  const out = cloneGraph(g);
  const ident = out.nodes.find((n) => n.outputs[0] === out.outputs[0]!.name)!;
  const sm = out.nodes.find((n) => n.outputs[0] === ident.inputs[0]);
  assert.equal(sm?.opType, 'Softmax');
  ident.inputs[0] = sm.inputs[0]!;
  out.nodes = out.nodes.filter((n) => n !== sm);
  return out;
}

/** Runs `steps` cross-entropy steps on the quadratic parameters; returns the losses. */
async function adaptCe(g: Graph, x: Float32Array, y: Int32Array, steps: number, lr = 1e-3) {
  const trainer = await Trainer.create(g, {
    batchSize: y.length,
    loss: { kind: 'cross_entropy' },
    optimizer: { kind: 'adamw' },
    groups: [{ name: 'quad', params: quadParamNames(g), lr }],
    batchNorm: 'frozen',
    dropout: false,
  });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++)
    losses.push((await trainer.trainStep({ x, y, size: y.length })).loss);
  await trainer.release();
  return losses;
}

describe('TF.js graph model: nsfwjs MobileNetV2Mid (packaged, uint8-quantized, 224×224)', () => {
  const N = 2;
  const S = 224;
  let path: string;
  let graph: Graph;
  const rng = new Rng(5);
  const x = Float32Array.from({ length: N * S * S * 3 }, () => rng.next());

  before(async () => {
    // nsfwjs ships model.json as a JS module and each shard as a JS file holding one base64
    // string: unwrap them into the usual files (docs/adapting-a-tfjs-model.md shows the same).
    const m = require('nsfwjs/models/mobilenet_v2_mid').MobileNetV2MidModel;
    const json = (await m.modelJson()).default;
    assert.equal(json.format, 'graph-model');
    const shardDir = join(
      require.resolve('nsfwjs/models/mobilenet_v2_mid'),
      '../../../models/mobilenet_v2_mid',
    );
    const dir = join(root, 'mid');
    await mkdir(dir);
    for (const p of json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths)) {
      const js = await readFile(join(shardDir, `${p}.min.js`), 'utf8');
      const at = js.indexOf('exports="') + 'exports="'.length;
      await writeFile(join(dir, p), Buffer.from(js.slice(at, js.indexOf('"', at)), 'base64'));
    }
    path = join(dir, 'model.json');
    await writeFile(path, JSON.stringify(json));
  });

  it('is read by the tfjs-graph importer and matches TF.js', async (t) => {
    let t0 = Date.now();
    const model = await loadTfjsGraph(path);
    const [ref] = await tfjsOutputs(model, x, [N, S, S, 3], ['Identity']);
    const tfjsMs = Date.now() - t0;
    t0 = Date.now();
    const imported = await importModel(path);
    assert.equal(imported.format, 'tfjs-graph');
    graph = imported.graph;
    assert.deepEqual(graph.inputs[0]!.shape, ['batch', S, S, 3]);
    assert.deepEqual(graph.outputs[0]!.shape, ['batch', 5]);
    // Weights keep their TF names, wrapper scopes dropped.
    assert.ok(
      graph.initializers.has('sequential/keras_layer/predict/MobilenetV2/Conv/Conv2D_weights'),
    );
    const y = (await run(graph, [N, S, S, 3], x)).Identity!;
    const rel = closeTo(y, ref!, 'class probabilities');
    t.diagnostic(
      `max |Δ| vs TF.js ${rel.toExponential(2)} of max|p| = ${maxAbs(ref!).toFixed(3)}; ${graph.nodes.length} IR nodes; TF.js load+predict ${tfjsMs} ms, import+run ${Date.now() - t0} ms`,
    );
  });

  it('quadratize keeps the outputs, and a 2-class adaptation lowers the loss', async (t) => {
    const t0 = Date.now();
    // An explicit rank puts a term on every layer (the default ranks skip the stem and the 3×3
    // depthwise convs, whose term would cost more than the layer): every converted conv is checked.
    const { graph: q, targets } = quadratize(graph, { rank: 4 });
    const adapted = targets.filter((r) => r.matched).length;
    // 35 convs + 17 depthwise convs; the head (the MatMul producing the output) is left alone.
    assert.ok(adapted >= 50, `${adapted} adapted layers`);
    const base = (await run(graph, [N, S, S, 3], x)).Identity!;
    const yq = (await run(q, [N, S, S, 3], x)).Identity!;
    expectAllClose(yq, base, { rtol: 0, atol: 1e-6 * maxAbs(base), what: 'quadratized' });
    const r = new Rng(6);
    const img = new Float32Array(N * S * S * 3);
    for (let i = 0; i < S * S * 3; i++) {
      img[i] = (0.3 * (Math.floor(i / 3) % S)) / S;
      img[S * S * 3 + i] = 0.5 + 0.5 * r.next();
    }
    const losses = await adaptCe(withoutFinalSoftmax(q), img, Int32Array.of(0, 1), 4);
    t.diagnostic(
      `${adapted} layers adapted; quadratized max |Δ| ${(maxDiff(yq, base) / maxAbs(base)).toExponential(2)}; cross-entropy ${losses.map((l) => l.toFixed(4)).join(' → ')}; ${Date.now() - t0} ms`,
    );
    assert.ok(losses.every(Number.isFinite));
    assert.ok(losses[3]! < 0.8 * losses[0]!, `loss did not fall: ${losses.join(', ')}`);
  });
});

describe('TF.js graph models written by scripts/make-tfjs-graph-models.ts', () => {
  it('unfused ops (Conv2D, BiasAdd, FusedBatchNormV3, depthwise, Pad + MaxPool, AvgPool, ConcatV2, Mean, MatMul...) match TF.js; adaptation lowers the loss', async (t) => {
    const path = join(fixtures, 'unfused', 'model.json');
    const dims = [4, 12, 12, 3];
    const rng = new Rng(7);
    const x = Float32Array.from({ length: 4 * 12 * 12 * 3 }, () => 2 * rng.next() - 1);
    const [ref] = await tfjsOutputs(await loadTfjsGraph(path), x, dims, ['probs']);
    const g = await importTfjsGraph(path);
    assert.deepEqual(
      g.outputs.map((o) => [o.name, o.shape]),
      [['probs', ['batch', 5]]],
    );
    const rel = closeTo((await run(g, dims, x)).probs!, ref!, 'probs');
    const { graph: q, targets } = quadratize(g, { rank: 4 });
    assert.deepEqual(
      targets.filter((r) => r.matched).map((r) => r.node),
      ['conv1', 'dw/depthwise'],
    );
    const base = (await run(g, dims, x)).probs!;
    const yq = (await run(q, dims, x)).probs!;
    expectAllClose(yq, base, { rtol: 0, atol: 1e-6 * maxAbs(base), what: 'quadratized' });
    const losses = await adaptCe(withoutFinalSoftmax(q), x, Int32Array.of(0, 1, 2, 3), 12, 1e-2);
    t.diagnostic(
      `max |Δ| vs TF.js ${rel.toExponential(2)}; cross-entropy ${losses.map((l) => l.toFixed(4)).join(' → ')}`,
    );
    assert.ok(losses.every(Number.isFinite));
    assert.ok(losses[11]! < 0.9 * losses[0]!, `loss did not fall: ${losses.join(', ')}`);
  });

  it('fused ops (_FusedConv2D with dilation / EXPLICIT pads / LeakyRelu, FusedDepthwiseConv2dNative, _FusedMatMul transpose_b, Transpose, Reshape, ExpandDims, Squeeze, Elu) and two signature outputs match TF.js', async (t) => {
    const path = join(fixtures, 'fused', 'model.json');
    const dims = [3, 10, 10, 4];
    const rng = new Rng(8);
    const x = Float32Array.from({ length: 3 * 10 * 10 * 4 }, () => 2 * rng.next() - 1);
    const [logits, features] = await tfjsOutputs(await loadTfjsGraph(path), x, dims, [
      'logits',
      'features',
    ]);
    const g = await importTfjsGraph(path);
    assert.deepEqual(
      g.outputs.map((o) => [o.name, o.shape]),
      [
        ['logits', ['batch', 3]],
        ['features', ['batch', 6]],
      ],
    );
    const res = await run(g, dims, x);
    const r1 = closeTo(res.logits!, logits!, 'logits');
    const r2 = closeTo(res.features!, features!, 'features');
    const { graph: q, targets } = quadratize(g, { rank: 4 });
    assert.deepEqual(
      targets.filter((r) => r.matched).map((r) => r.node),
      ['c1', 'dw', 'c2', 'c3', 'fc_matmul'],
    );
    const yq = await run(q, dims, x);
    for (const k of ['logits', 'features']) {
      expectAllClose(yq[k]!, res[k]!, { rtol: 0, atol: 1e-6 * maxAbs(res[k]!), what: k });
    }
    t.diagnostic(
      `max |Δ| vs TF.js: logits ${r1.toExponential(2)}, features ${r2.toExponential(2)}`,
    );
  });

  it('_FusedConv2D with FusedBatchNorm (which TF.js refuses) equals its unfused twin run by TF.js', async () => {
    const dims = [2, 6, 6, 3];
    const rng = new Rng(9);
    const x = Float32Array.from({ length: 2 * 6 * 6 * 3 }, () => 2 * rng.next() - 1);
    const fusedPath = join(fixtures, 'fused-bn', 'model.json');
    const refPath = join(fixtures, 'fused-bn-reference', 'model.json');
    // The premise: TF.js cannot run the fused form, so the twin is the reference.
    const fusedTf = await loadTfjsGraph(fusedPath);
    assert.throws(() => fusedTf.execute(tf.tensor(x, dims)), /FusedBatchNorm is not supported/);
    const [ref] = await tfjsOutputs(await loadTfjsGraph(refPath), x, dims, ['conv']);
    const g = await importTfjsGraph(fusedPath);
    closeTo((await run(g, dims, x)).conv!, ref!, 'conv + batch norm + relu');
    assert.deepEqual(
      g.nodes.map((n) => n.opType).filter((o) => o !== 'Transpose' && o !== 'Identity'),
      ['Conv', 'BatchNormalization', 'Relu'],
    );
  });

  it('a Keras Flatten for an open batch (Shape → StridedSlice → Pack → Reshape) matches TF.js at two batch sizes', async () => {
    const path = join(fixtures, 'dynamic-flatten', 'model.json');
    const model = await loadTfjsGraph(path);
    const g = await importTfjsGraph(path);
    assert.deepEqual(g.outputs[0]!.shape, ['batch', 3]);
    // The shape arithmetic is evaluated at import: no Shape node reaches the IR.
    assert.ok(!g.nodes.some((n) => n.opType === 'Shape'));
    const rng = new Rng(10);
    for (const n of [1, 3]) {
      const x = Float32Array.from({ length: n * 4 * 4 * 2 }, () => 2 * rng.next() - 1);
      const [ref] = await tfjsOutputs(model, x, [n, 4, 4, 2], ['out']);
      closeTo((await run(g, [n, 4, 4, 2], x)).out!, ref!, `out (batch ${n})`);
    }
    const { targets } = quadratize(g, { rank: 4 });
    assert.deepEqual(
      targets.filter((r) => r.matched).map((r) => r.node),
      ['conv'],
    );
  });

  it('ResizeBilinear and ResizeNearestNeighbor (align_corners, half_pixel_centers, neither) match TF.js', async () => {
    const path = join(fixtures, 'resize', 'model.json');
    const names = ['bilinear_half', 'bilinear_align', 'bilinear'];
    names.push('nearest', 'nearest_half', 'nearest_align');
    const rng = new Rng(11);
    const x = Float32Array.from({ length: 2 * 3 * 3 * 2 }, () => 2 * rng.next() - 1);
    const refs = await tfjsOutputs(await loadTfjsGraph(path), x, [2, 3, 3, 2], names);
    const res = await run(await importTfjsGraph(path), [2, 3, 3, 2], x);
    names.forEach((n, i) => closeTo(res[n]!, refs[i]!, n));
  });

  it('a zero Pad before MaxPool keeps its zeros (all-negative input), as TF.js computes', async () => {
    // onnxruntime's PadFusion would fold the Pad into MaxPool's −inf padding: the importer guards it.
    const dir = await mkdtemp(join(root, 'padpool-'));
    const path = join(dir, 'model.json');
    await writeFile(
      join(dir, 'p.bin'),
      Buffer.from(Int32Array.from([0, 0, 1, 1, 1, 1, 0, 0]).buffer),
    );
    await writeFile(join(dir, 'w.bin'), Buffer.from(Float32Array.of(1).buffer));
    const s = (v: string) => ({ s: Buffer.from(v).toString('base64') });
    const ints = (v: number[]) => ({ list: { i: v.map(String) } });
    await writeFile(
      path,
      JSON.stringify({
        format: 'graph-model',
        modelTopology: {
          node: [
            {
              name: 'x',
              op: 'Placeholder',
              attr: {
                dtype: { type: 'DT_FLOAT' },
                shape: {
                  shape: { dim: [{ size: '-1' }, { size: '2' }, { size: '2' }, { size: '1' }] },
                },
              },
            },
            { name: 'p', op: 'Const', attr: { dtype: { type: 'DT_INT32' } } },
            { name: 'w', op: 'Const', attr: { dtype: { type: 'DT_FLOAT' } } },
            // A 1×1 identity conv, so that the Pad runs channels-first right before the MaxPool.
            {
              name: 'conv',
              op: 'Conv2D',
              input: ['x', 'w'],
              attr: {
                strides: ints([1, 1, 1, 1]),
                dilations: ints([1, 1, 1, 1]),
                padding: s('VALID'),
                data_format: s('NHWC'),
              },
            },
            { name: 'pad', op: 'Pad', input: ['conv', 'p'], attr: {} },
            {
              name: 'pool',
              op: 'MaxPool',
              input: ['pad'],
              attr: {
                ksize: ints([1, 2, 2, 1]),
                strides: ints([1, 2, 2, 1]),
                padding: s('VALID'),
                data_format: s('NHWC'),
              },
            },
          ],
          versions: { producer: 1 },
        },
        weightsManifest: [
          { paths: ['p.bin'], weights: [{ name: 'p', shape: [4, 2], dtype: 'int32' }] },
          { paths: ['w.bin'], weights: [{ name: 'w', shape: [1, 1, 1, 1], dtype: 'float32' }] },
        ],
      }),
    );
    const x = Float32Array.of(-1, -2, -3, -4);
    const [ref] = await tfjsOutputs(await loadTfjsGraph(path), x, [1, 2, 2, 1], ['pool']);
    assert.deepEqual(Array.from(ref!), [0, 0, 0, 0]);
    const y = (await run(await importTfjsGraph(path), [1, 2, 2, 1], x)).pool!;
    assert.deepEqual(Array.from(y), [0, 0, 0, 0]);
  });

  it('inspect (CLI) reads a graph model', () => {
    const bin = fileURLToPath(new URL('../bin/quadranet.js', import.meta.url));
    const path = join(fixtures, 'unfused', 'model.json');
    const r = spawnSync(process.execPath, [bin, 'inspect', path, '--json', '--latency-runs', '0'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(
      j.layers.map((l: { node: string; adaptable: boolean }) => [l.node, l.adaptable]),
      [
        // The 3-channel stem: its default term would cost more than the layer (it says so).
        ['conv1', false],
        ['dw/depthwise', true],
        ['dense/MatMul', false],
      ],
    );
    assert.match(j.layers[0].reason, /image stem .* name it in targets/);
  });
});

describe('TF.js graph models: bad input', () => {
  /** A one-line error naming the file. */
  const oneLine = (re: RegExp, file: string) => (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.doesNotMatch(e.message, /\n/);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    assert.match(e.message, re);
    return true;
  };

  async function writeGraph(nodes: unknown[], manifest: unknown[] = []): Promise<string> {
    const dir = await mkdtemp(join(root, 'bad-'));
    const path = join(dir, 'model.json');
    await writeFile(
      path,
      JSON.stringify({
        format: 'graph-model',
        modelTopology: { node: nodes },
        weightsManifest: manifest,
      }),
    );
    return path;
  }

  const input = {
    name: 'x',
    op: 'Placeholder',
    attr: {
      dtype: { type: 'DT_FLOAT' },
      shape: { shape: { dim: [{ size: '-1' }, { size: '4' }] } },
    },
  };

  it('an unsupported op is refused naming the node, the op and what to do', async () => {
    const path = await writeGraph([
      input,
      { name: 'top/TopKV2', op: 'TopKV2', input: ['x', 'k'] },
      { name: 'k', op: 'Const', attr: {} },
      { name: 'out', op: 'Relu', input: ['top/TopKV2'] },
      // Not reachable from the output: never converted, so never refused.
      { name: 'dead', op: 'While', input: ['x'] },
      { name: 'sink', op: 'NoOp', input: ['^dead'] },
    ]);
    await assert.rejects(
      importTfjsGraph(path),
      oneLine(/cannot import 1 node: 'top\/TopKV2' \(TopKV2\); .*tf2onnx/, path),
    );
  });

  it('a Const missing from the weights manifest, a missing input node, a cycle and a NCHW conv are named', async () => {
    let path = await writeGraph([
      input,
      { name: 'w', op: 'Const' },
      { name: 'y', op: 'Mul', input: ['x', 'w'] },
    ]);
    await assert.rejects(
      importTfjsGraph(path),
      oneLine(/node 'w' \(Const\): has no value in the weights manifest/, path),
    );
    path = await writeGraph([input, { name: 'y', op: 'Relu', input: ['ghost'] }]);
    await assert.rejects(
      importTfjsGraph(path),
      oneLine(/node 'y' reads 'ghost', which is not in the graph/, path),
    );
    path = await writeGraph([
      input,
      { name: 'a', op: 'Relu', input: ['b'] },
      { name: 'b', op: 'Relu', input: ['a'] },
      { name: 'out', op: 'Relu', input: ['a'] },
    ]);
    await assert.rejects(importTfjsGraph(path), oneLine(/node 'a' depends on itself/, path));
    const dir = dirname(path);
    await writeFile(join(dir, 'w.bin'), Buffer.alloc(4 * 4 * 4));
    path = join(dir, 'model.json');
    await writeFile(
      path,
      JSON.stringify({
        format: 'graph-model',
        modelTopology: {
          node: [
            {
              ...input,
              attr: {
                ...input.attr,
                shape: {
                  shape: { dim: [{ size: '-1' }, { size: '4' }, { size: '2' }, { size: '2' }] },
                },
              },
            },
            { name: 'w', op: 'Const' },
            {
              name: 'conv',
              op: 'Conv2D',
              input: ['x', 'w'],
              attr: {
                data_format: { s: Buffer.from('NCHW').toString('base64') },
                padding: { s: Buffer.from('VALID').toString('base64') },
              },
            },
          ],
        },
        weightsManifest: [
          { paths: ['w.bin'], weights: [{ name: 'w', shape: [1, 1, 4, 4], dtype: 'float32' }] },
        ],
      }),
    );
    await assert.rejects(
      importTfjsGraph(path),
      oneLine(/node 'conv' \(Conv2D\): data_format NCHW is not supported/, path),
    );
  });

  it('a resize by other than whole factors is refused, naming the node', async () => {
    const dir = await mkdtemp(join(root, 'resize-'));
    const path = join(dir, 'model.json');
    await writeFile(join(dir, 's.bin'), Buffer.from(Int32Array.of(5, 5).buffer));
    await writeFile(
      path,
      JSON.stringify({
        format: 'graph-model',
        modelTopology: {
          node: [
            {
              ...input,
              attr: {
                ...input.attr,
                shape: { shape: { dim: [-1, 3, 3, 1].map((d) => ({ size: String(d) })) } },
              },
            },
            { name: 's', op: 'Const' },
            { name: 'up', op: 'ResizeBilinear', input: ['x', 's'] },
          ],
        },
        weightsManifest: [
          { paths: ['s.bin'], weights: [{ name: 's', shape: [2], dtype: 'int32' }] },
        ],
      }),
    );
    await assert.rejects(
      importTfjsGraph(path),
      oneLine(/node 'up' \(ResizeBilinear\): resizing 3×3 to 5×5 is not by whole factors/, path),
    );
  });

  it('the registry sends layers models to the layers importer and graph models here', async () => {
    const layers = await importModel('node_modules/@upscalerjs/default-model/models/model.json');
    assert.equal(layers.format, 'tfjs');
    const graph = await importModel(join(fixtures, 'fused-bn', 'model.json'));
    assert.equal(graph.format, 'tfjs-graph');
  });
});
