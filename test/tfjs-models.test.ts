import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { importTfjs } from '../src/io/import/tfjs/index.js';
import type { Graph } from '../src/ir/graph.js';
import { cloneGraph } from '../src/ir/graph.js';
import { accountLayers } from '../src/passes/accounting.js';
import { quadParamNames, quadratize } from '../src/passes/quadratize.js';
import { Session } from '../src/runtime/session.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';
import { expectAllClose } from './helpers/allclose.js';

// The two pretrained TF.js LayersModels shipped as npm devDependencies, imported and checked
// against TF.js itself (pure-JS CPU backend, no network: files are read from disk):
//   - @upscalerjs/default-model: a 2× super-resolution CNN (Conv2D, Concatenate, Add,
//     UpSampling2D; unknown input size);
//   - nsfwjs' MobileNetV2 (224×224, uint8-quantized weights; ZeroPadding2D, stride-2 convs,
//     DepthwiseConv2D, BatchNormalization, ReLU(6), AveragePooling2D, Flatten, Dense, Dropout).
// Tolerances: imported vs TF.js |Δ| ≤ 1e-4 · max|TF.js output|; quadratized vs imported
// |Δ| ≤ 1e-6 · max|output| (DESIGN.md §3). Then a short quadratic adaptation must lower the loss.

const require = createRequire(import.meta.url);
let root: string;

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'quadranet-tfjs-models-'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Loads model.json and its shards from disk into TF.js. */
async function loadTfjs(path: string): Promise<tf.LayersModel> {
  const json = JSON.parse(await readFile(path, 'utf8'));
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Buffer[] = [];
  for (const g of json.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) parts.push(await readFile(join(path, '..', p)));
  }
  const all = Buffer.concat(parts);
  return tf.loadLayersModel({
    load: async () => ({
      modelTopology: json.modelTopology,
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
function closeTo(ours: Float32Array, ref: Float32Array, what: string, rel = 1e-4): number {
  const scale = maxAbs(ref);
  expectAllClose(ours, ref, { rtol: 0, atol: rel * scale, what });
  return maxDiff(ours, ref) / scale;
}

describe('TF.js import: @upscalerjs/default-model (2× super-resolution)', () => {
  const path = 'node_modules/@upscalerjs/default-model/models/model.json';
  const [N, H, W] = [2, 16, 12];
  const rng = new Rng(1);
  const x = Float32Array.from({ length: N * H * W * 3 }, () => rng.next());
  let graph: Graph;
  let ref: Float32Array;

  it('matches TF.js (unknown input size and with inputShape)', async (t) => {
    let t0 = Date.now();
    const model = await loadTfjs(path);
    const y = model.predict(tf.tensor(x, [N, H, W, 3])) as tf.Tensor;
    assert.deepEqual(y.shape, [N, 2 * H, 2 * W, 3]);
    ref = (await y.data()) as Float32Array;
    const tfjsMs = Date.now() - t0;
    t0 = Date.now();
    const open = await importTfjs(path);
    assert.deepEqual(open.inputs[0]!.shape, ['batch', 'height', 'width', 3]);
    const relOpen = closeTo((await run(open, [N, H, W, 3], x)).SR!, ref, 'SR (open size)');
    graph = await importTfjs(path, { inputShape: [H, W, 3] });
    assert.deepEqual(graph.outputs[0]!.shape, ['batch', 2 * H, 2 * W, 3]);
    const rel = closeTo((await run(graph, [N, H, W, 3], x)).SR!, ref, 'SR');
    t.diagnostic(
      `max |Δ| vs TF.js: ${relOpen.toExponential(2)} (open size), ${rel.toExponential(2)} of max|y| = ${maxAbs(ref).toFixed(3)}; TF.js ${tfjsMs} ms, import+runs ${Date.now() - t0} ms`,
    );
  });

  it('quadratize keeps the outputs, and an MSE adaptation lowers the loss', async (t) => {
    const t0 = Date.now();
    const { graph: q, targets } = quadratize(graph);
    const adapted = targets.filter((r) => r.matched).length;
    assert.ok(adapted >= 10, `${adapted} adapted layers`);
    const yq = (await run(q, [N, H, W, 3], x)).SR!;
    const base = (await run(graph, [N, H, W, 3], x)).SR!;
    expectAllClose(yq, base, { rtol: 0, atol: 1e-6 * maxAbs(base), what: 'quadratized SR' });
    // Task: a brighter, higher-contrast upscaling (y' = 1.15·y + 0.05) of the same images.
    const target = Float32Array.from(base, (v) => 1.15 * v + 0.05);
    const trainer = await Trainer.create(q, {
      batchSize: N,
      loss: { kind: 'mse' },
      optimizer: { kind: 'adamw' },
      groups: [{ name: 'quad', params: quadParamNames(q), lr: 1e-3 }],
      batchNorm: 'frozen',
      dropout: false,
    });
    const losses: number[] = [];
    for (let s = 0; s < 6; s++)
      losses.push((await trainer.trainStep({ x, y: new Int32Array(N), size: N, target })).loss);
    await trainer.release();
    t.diagnostic(
      `${adapted} layers adapted; quadratized max |Δ| ${(maxDiff(yq, base) / maxAbs(base)).toExponential(2)}; MSE ${losses.map((l) => l.toFixed(5)).join(' → ')}; ${Date.now() - t0} ms`,
    );
    assert.ok(losses.every(Number.isFinite));
    assert.ok(losses[5]! < 0.8 * losses[0]!, `loss did not fall: ${losses.join(', ')}`);
  });
});

describe('TF.js import: nsfwjs MobileNetV2 (uint8-quantized, 224×224)', () => {
  const N = 2;
  const S = 224; // Flatten → Dense(1280) needs a 7×7 final map: the model takes 193–224 pixels.
  let path: string;
  let graph: Graph;
  const rng = new Rng(2);
  const x = Float32Array.from({ length: N * S * S * 3 }, () => rng.next());

  before(async () => {
    // The package ships model.json and its shard wrapped in JS modules (the shard as base64):
    // unwrap them into the usual files.
    const m = require('nsfwjs/models/mobilenet_v2').MobileNetV2Model;
    const json = (await m.modelJson()).default;
    // The shard module is one 3.5 MB base64 string: read it as text (requiring it is slow).
    const shardJs = join(
      require.resolve('nsfwjs/models/mobilenet_v2'),
      '../../../models/mobilenet_v2/group1-shard1of1.min.js',
    );
    const shard = /"([A-Za-z0-9+/=]{100000,})"/.exec(await readFile(shardJs, 'utf8'))![1]!;
    const dir = await mkdtemp(join(root, 'mobilenet-'));
    path = join(dir, 'model.json');
    const manifest = json.weightsManifest.map((g: { weights: unknown[] }) => ({
      weights: g.weights,
      paths: ['group1-shard1of1.bin'],
    }));
    await writeFile(
      path,
      JSON.stringify({
        format: 'layers-model',
        modelTopology: json.modelTopology,
        weightsManifest: manifest,
      }),
    );
    await writeFile(join(dir, 'group1-shard1of1.bin'), Buffer.from(shard, 'base64'));
  });

  it('matches TF.js on the class probabilities and on the last feature map', async (t) => {
    let t0 = Date.now();
    const model = await loadTfjs(path);
    const probe = tf.model({
      inputs: model.inputs,
      outputs: [model.outputs[0]!, model.getLayer('out_relu').output as tf.SymbolicTensor],
    });
    const [p, f] = probe.predict(tf.tensor(x, [N, S, S, 3])) as tf.Tensor[];
    const refP = (await p!.data()) as Float32Array;
    const refF = (await f!.data()) as Float32Array;
    const tfjsMs = Date.now() - t0;
    t0 = Date.now();
    const probed = await importTfjs(path, { outputs: ['out_relu'] });
    assert.deepEqual(probed.outputs[1]!.shape, ['batch', 7, 7, 1280]);
    const res = await run(probed, [N, S, S, 3], x);
    const relP = closeTo(res.dense_3!, refP, 'probabilities');
    const relF = closeTo(res.out_relu!, refF, 'out_relu features');
    graph = await importTfjs(path);
    const ms = Date.now() - t0;
    t.diagnostic(
      `max |Δ| vs TF.js: probabilities ${relP.toExponential(2)}, out_relu ${relF.toExponential(2)} of max (${maxAbs(refF).toFixed(2)}); TF.js load+predict ${tfjsMs} ms, import+run ${ms} ms`,
    );
  });

  it('quadratize keeps the outputs, and a 2-class adaptation lowers the loss', async (t) => {
    const t0 = Date.now();
    const { graph: q, targets } = quadratize(graph);
    const adapted = targets.filter((r) => r.matched).length;
    // Default ranks: the 3×3 depthwise convs (a rank-1 term would cost twice the layer) are
    // left out; every other Conv/MatMul but the head is adapted.
    assert.ok(adapted >= 35, `${adapted} adapted layers`);
    for (const r of targets.filter((x) => !x.matched))
      assert.match(r.reason, /^(depthwise|image stem|head)/, `${r.node}: ${r.reason}`);
    const acc = accountLayers(q);
    const added = acc.totals.quadratic.flops / acc.totals.base.flops;
    t.diagnostic(`default quadratic term: +${(100 * added).toFixed(1)}% FLOPs`);
    assert.ok(added <= 0.25, `+${(100 * added).toFixed(1)}% FLOPs`);
    const base = (await run(graph, [N, S, S, 3], x)).dense_3!;
    const yq = (await run(q, [N, S, S, 3], x)).dense_3!;
    expectAllClose(yq, base, {
      rtol: 0,
      atol: 1e-6 * maxAbs(base),
      what: 'quadratized probabilities',
    });
    // Cross-entropy wants logits: drop the final softmax (Dense 'dense_3' activation).
    const logits = withoutFinalSoftmax(q);
    // Two synthetic classes: smooth dark gradients (0) and bright noise (1), one of each.
    const r = new Rng(3);
    const img = new Float32Array(N * S * S * 3);
    for (let i = 0; i < S * S * 3; i++) {
      img[i] = (0.3 * (Math.floor(i / 3) % S)) / S;
      img[S * S * 3 + i] = 0.5 + 0.5 * r.next();
    }
    const trainer = await Trainer.create(logits, {
      batchSize: N,
      loss: { kind: 'cross_entropy' },
      optimizer: { kind: 'adamw' },
      groups: [{ name: 'quad', params: quadParamNames(logits), lr: 1e-3 }],
      batchNorm: 'frozen',
      dropout: false,
    });
    const losses: number[] = [];
    for (let s = 0; s < 4; s++)
      losses.push((await trainer.trainStep({ x: img, y: Int32Array.of(0, 1), size: N })).loss);
    await trainer.release();
    t.diagnostic(
      `${adapted} layers adapted; quadratized max |Δ| ${(maxDiff(yq, base) / maxAbs(base)).toExponential(2)}; cross-entropy ${losses.map((l) => l.toFixed(4)).join(' → ')}; ${Date.now() - t0} ms`,
    );
    assert.ok(losses.every(Number.isFinite));
    assert.ok(losses[3]! < 0.8 * losses[0]!, `loss did not fall: ${losses.join(', ')}`);
  });
});

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
