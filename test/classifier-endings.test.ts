import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { backward } from '../src/autodiff/backward.js';
import type { LossKind } from '../src/autodiff/losses.js';
import { addLoss } from '../src/autodiff/losses.js';
import { importTfjs } from '../src/io/import/tfjs/index.js';
import { GraphBuilder } from '../src/ir/builder.js';
import type { Graph } from '../src/ir/graph.js';
import { emptyGraph } from '../src/ir/graph.js';
import { decodeModel } from '../src/ir/onnx.js';
import { tensor } from '../src/ir/tensor.js';
import { NetBuilder } from '../src/models/net-builder.js';
import { mlp } from '../src/models/zoo.js';
import type { OutputEnding } from '../src/passes/output-ending.js';
import { classifierLoss, describeEnding, detectOutputEnding } from '../src/passes/output-ending.js';
import type { RunInfo } from '../src/io/formats/run-format.js';
import { predictRows, rowLoss } from '../src/runtime/class-scores.js';
import { Session } from '../src/runtime/session.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';
import { runMethod } from '../src/workflow/run.js';
import { expectAllClose } from './helpers/allclose.js';
import type { FixtureTensor } from './helpers/fixtures.js';
import { loadFixtures } from './helpers/fixtures.js';
import { gradcheck } from './helpers/gradcheck.js';

let root: string;
before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'qn-endings-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A small MLP classifier ending in `act` (none: logits), output 'out'. */
function classifier(
  act?: 'Softmax' | 'LogSoftmax' | 'Sigmoid',
  o: { classes?: number; seed?: number; input?: [number, number, number] } = {},
): Graph {
  const shape = o.input ?? [1, 4, 4];
  const classes = o.classes ?? 3;
  const n = new NetBuilder(shape, o.seed ?? 3, 'clf')
    .flatten()
    .linear('fc1', shape[0] * shape[1] * shape[2], 32)
    .relu()
    .linear('head', 32, classes);
  if (act) n.x = n.b.op(act, [n.x], act === 'Sigmoid' ? {} : { axis: -1 }, { name: 'act' });
  return n.finish(classes, 'out');
}

describe('output endings are detected', () => {
  it('Softmax, LogSoftmax, Sigmoid and plain logits after a Gemm head', () => {
    const cases: [Graph, OutputEnding['activation'], LossKind, 'logits' | 'output'][] = [
      [classifier(), 'none', 'cross_entropy', 'output'],
      [classifier('Softmax'), 'softmax', 'cross_entropy', 'logits'],
      [classifier('LogSoftmax'), 'log_softmax', 'nll', 'output'],
      [classifier('Sigmoid'), 'sigmoid', 'bce_logits', 'logits'],
      [classifier('Sigmoid', { classes: 1 }), 'sigmoid', 'bce_logits', 'logits'],
      [classifier(undefined, { classes: 1 }), 'none', 'bce_logits', 'output'],
    ];
    for (const [g, activation, loss, reads] of cases) {
      const e = detectOutputEnding(g);
      assert.equal(e.activation, activation);
      assert.deepEqual(classifierLoss(e), { kind: loss, reads });
      assert.deepEqual(e.head, { node: 'head', op: 'Gemm' });
      assert.equal(e.other, undefined);
      if (activation !== 'none') {
        assert.equal(e.node, 'act');
        assert.equal(e.logits, g.nodes.find((n) => n.name === 'act')!.inputs[0]);
        assert.deepEqual(e.after, [g.nodes.at(-1)!.name], 'the Identity of finish()');
      }
    }
    assert.match(
      describeEnding(detectOutputEnding(classifier('Softmax'))),
      /ends in Softmax 'act'.*logits under it.*still outputs probabilities/,
    );
  });

  it('Softmax followed by Reshape/Flatten, and a conv head whose Softmax sits after a Reshape', () => {
    const a = new NetBuilder([2, 3, 3], 1, 'a').flatten().linear('head', 18, 4);
    a.x = a.b.op('Softmax', [a.x], { axis: 1 }, { name: 'sm' });
    a.x = a.b.reshape(a.x, [-1, 1, 4]);
    a.x = a.b.op('Flatten', [a.x], { axis: 1 });
    const ea = detectOutputEnding(a.finish(4, 'p'));
    assert.equal(ea.activation, 'softmax');
    assert.equal(ea.after.length, 3);
    assert.equal(ea.units, 4);
    // TF.js MobileNet style: 1×1 conv classifier → Reshape [N, C] → Softmax.
    const b = new NetBuilder([3, 4, 4], 1, 'b').conv('c1', 3, 8, 3).relu().globalAvgPool();
    b.conv('logits_conv', 8, 5, 1);
    b.x = b.b.reshape(b.x, [-1, 5]);
    b.x = b.b.op('Softmax', [b.x], { axis: -1 }, { name: 'sm' });
    const eb = detectOutputEnding(b.finish(5, 'p'));
    assert.equal(eb.activation, 'softmax');
    assert.deepEqual(eb.head, { node: 'logits_conv', op: 'Conv' });
    // Softmax over the channels of [N, C, 1, 1] (opset 18: one axis; the others are 1).
    const c = new NetBuilder([3, 4, 4], 1, 'c').conv('c1', 3, 8, 3).relu().globalAvgPool();
    c.conv('logits_conv', 8, 5, 1);
    c.x = c.b.op('Softmax', [c.x], { axis: 1 }, { name: 'sm' });
    c.x = c.b.op('Flatten', [c.x], { axis: 1 });
    assert.equal(detectOutputEnding(c.finish(5, 'p')).activation, 'softmax');
  });

  it('a Softmax over another axis, and outputs that do not come from a linear head, are named', () => {
    // Per-pixel softmax of a [N, C, H, W] map: not one score per class of the example.
    const seg = new NetBuilder([3, 4, 4], 1, 'seg').conv('c1', 3, 5, 3);
    seg.x = seg.b.op('Softmax', [seg.x], { axis: 1 }, { name: 'sm' });
    const e = detectOutputEnding(seg.finish(5, 'p'));
    assert.equal(e.activation, 'none');
    assert.match(e.ignored ?? '', /Softmax 'sm' normalises over another axis/);
    assert.match(describeEnding(e), /another axis than the classes/);
    // Logits from a Relu (e.g. SqueezeNet's final conv + ReLU + pooling).
    const r = new NetBuilder([3, 4, 4], 1, 'r')
      .conv('c1', 3, 5, 3)
      .relu()
      .globalAvgPool()
      .flatten();
    r.x = r.b.op('Softmax', [r.x], { axis: -1 }, { name: 'sm' });
    const er = detectOutputEnding(r.finish(5, 'p'));
    assert.equal(er.activation, 'softmax');
    assert.equal(er.head, undefined);
    assert.equal(er.other?.op, 'Relu');
    assert.match(describeEnding(er), /come from Relu '.*', not a plain linear head/);
  });

  it('a TF.js Layers classifier with a softmax Dense layer', async () => {
    const m = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [6, 6, 3], filters: 4, kernelSize: 3, activation: 'relu' }),
        tf.layers.globalAveragePooling2d({}),
        tf.layers.dense({ units: 3, activation: 'softmax', name: 'probs' }),
      ],
    });
    const dir = join(root, 'tfjs-softmax');
    await mkdir(dir, { recursive: true });
    await m.save(
      tf.io.withSaveHandler(async (a) => {
        const json = {
          format: 'layers-model',
          modelTopology: a.modelTopology,
          weightsManifest: [{ paths: ['w.bin'], weights: a.weightSpecs ?? [] }],
        };
        await writeFile(join(dir, 'model.json'), JSON.stringify(json));
        await writeFile(join(dir, 'w.bin'), new Uint8Array(a.weightData as ArrayBuffer));
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const g = await importTfjs(join(dir, 'model.json'));
    const e = detectOutputEnding(g);
    assert.equal(e.activation, 'softmax');
    assert.equal(e.units, 3);
    assert.equal(e.head?.op, 'MatMul');
    assert.deepEqual(classifierLoss(e), { kind: 'cross_entropy', reads: 'logits' });
  });
});

interface LossCase {
  name: string;
  op: 'nll' | 'bce_logits';
  attrs: { label_smoothing?: number };
  inputs: [FixtureTensor, FixtureTensor];
  outputs: FixtureTensor[];
  grads: (FixtureTensor | null)[];
}

describe('classifier losses match PyTorch (float64 fixtures)', () => {
  for (const c of loadFixtures<LossCase>('classifier_losses').cases) {
    it(c.name, async () => {
      const g = emptyGraph(c.name);
      const b = new GraphBuilder(g);
      const [pred, labels] = c.inputs;
      const p = b.input('pred', 'float64', pred.dims);
      g.initializers.set('labels', tensor('int64', labels.dims, labels.data));
      const loss = addLoss(
        b,
        p,
        'labels',
        pred.dims,
        { kind: c.op, labelSmoothing: c.attrs.label_smoothing },
        'float64',
      );
      g.outputs.push({ name: loss, dtype: 'float64', shape: [] });
      const { graph, grads } = backward(g, { loss, wrt: ['pred'] });
      graph.outputs.push({ name: grads.get('pred')!, dtype: 'float64', shape: pred.dims });
      const s = await Session.create(graph);
      const out = await s.run({
        pred: { dtype: 'float64', dims: pred.dims, data: Float64Array.from(pred.data) },
      });
      await s.release();
      expectAllClose(out[loss]!.data as Float64Array, c.outputs[0]!.data, {
        rtol: 1e-9,
        what: 'loss',
      });
      expectAllClose(out[grads.get('pred')!]!.data as Float64Array, c.grads[0]!.data, {
        rtol: 1e-8,
        atol: 1e-12,
        what: 'd/dpred',
      });
    });
  }

  it('gradients by finite differences (float64)', async () => {
    for (const [kind, dims, labels] of [
      ['bce_logits', [3, 4], [0, 3, 1]],
      ['bce_logits', [4, 1], [0, 1, 1, 0]],
      ['nll', [3, 4], [2, 0, 1]],
    ] as const) {
      await gradcheck({
        dtype: 'float64',
        inputs: {
          z: { dims: [...dims] },
          y: { dims: [dims[0]], dtype: 'int64', data: [...labels] },
        },
        build: (b, x) =>
          b.reshape(
            addLoss(b, x.z!, x.y!, [...dims], { kind, labelSmoothing: 0.1 }, 'float64'),
            [1],
          ),
      });
    }
  });

  it('BCE with logits stays finite and exact in float32 at |z| = 100', async () => {
    const g = emptyGraph('bce32');
    const b = new GraphBuilder(g);
    const z = b.input('z', 'float32', [4, 1]);
    g.initializers.set('y', tensor('int64', [4], [1, 0, 0, 1]));
    const loss = addLoss(b, z, 'y', [4, 1], { kind: 'bce_logits' }, 'float32');
    g.outputs.push({ name: loss, dtype: 'float32', shape: [] });
    const s = await Session.create(g);
    const out = await s.run({
      z: { dtype: 'float32', dims: [4, 1], data: Float32Array.of(100, -100, 100, -100) },
    });
    await s.release();
    // Two examples right with certainty (loss 0), two wrong by a logit of 100 (loss 100 each).
    expectAllClose(out[loss]!.data as Float32Array, [50], { rtol: 1e-6, what: 'mean BCE' });
  });
});

describe('host-side scores: prediction and loss by output activation', () => {
  it('matches the formulas on hand-computed rows', () => {
    const z = [2, -1, 0.5];
    const lse = Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
    const p = z.map((v) => Math.exp(v - lse));
    expectAllClose([rowLoss(z, 0, 3, 1)], [lse + 1], { rtol: 1e-12, what: 'CE of logits' });
    expectAllClose([rowLoss(p, 0, 3, 1, 'softmax')], [lse + 1], {
      rtol: 1e-12,
      what: 'CE of probabilities',
    });
    expectAllClose([rowLoss(p.map(Math.log), 0, 3, 1, 'log_softmax')], [lse + 1], {
      rtol: 1e-12,
      what: 'NLL of log-probabilities',
    });
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const bce = (-Math.log(1 - sig(2)) - Math.log(sig(-1)) - Math.log(1 - sig(0.5))) / 3;
    expectAllClose([rowLoss(z.map(sig), 0, 3, 1, 'sigmoid')], [bce], {
      rtol: 1e-12,
      what: 'BCE of sigmoid probabilities',
    });
    expectAllClose([rowLoss([-3], 0, 1, 1)], [Math.log1p(Math.exp(3))], {
      rtol: 1e-12,
      what: 'one-unit BCE of a logit',
    });
    assert.deepEqual([...predictRows(p, 1, 3, 'softmax')], [0]);
    assert.deepEqual([...predictRows([0.4, 0.6, -0.2, 0.1], 4, 1, 'sigmoid')], [0, 1, 0, 0]);
    assert.deepEqual([...predictRows([0.4, 0.6, -0.2, 0.1], 4, 1)], [1, 1, 0, 1]);
  });
});

describe('training reads the logits under the activation', () => {
  const rng = new Rng(1);
  const x = rng.uniformArray(8 * 16, 0, 1);
  const y = Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1]);
  async function losses(g: Graph, kind: LossKind, steps = 3) {
    const t = await Trainer.create(g, {
      batchSize: 8,
      loss: { kind },
      optimizer: { kind: 'adamw' },
      groups: [{ name: 'all', params: ['fc1.weight', 'head.weight', 'head.bias'], lr: 1e-2 }],
    });
    const out: number[] = [];
    for (let i = 0; i < steps; i++) out.push((await t.trainStep({ x, y, size: 8 })).loss);
    const ev = await t.evaluate({
      name: 'd',
      images: x,
      labels: y,
      n: 8,
      shape: [1, 4, 4],
      numClasses: 3,
    });
    await t.release();
    return { out, ev, ending: t.train.ending };
  }

  it('Softmax and LogSoftmax classifiers train exactly as the logits model (not softmax twice)', async () => {
    const plain = await losses(classifier(), 'cross_entropy');
    const soft = await losses(classifier('Softmax'), 'cross_entropy');
    const logsoft = await losses(classifier('LogSoftmax'), 'nll');
    assert.equal(soft.ending.lossReadsLogits, true);
    assert.equal(logsoft.ending.lossReadsLogits, false);
    // Same parameters, same data: the same loss at every step (float32 rounding only).
    expectAllClose(soft.out, plain.out, { rtol: 1e-6, what: 'softmax-ended loss' });
    expectAllClose(logsoft.out, plain.out, { rtol: 1e-6, what: 'log-softmax-ended loss' });
    // Validation reads the probabilities as probabilities: the same cross-entropy.
    expectAllClose([soft.ev.loss], [plain.ev.loss], { rtol: 1e-6, what: 'validation loss' });
    assert.equal(soft.ev.accuracy, plain.ev.accuracy);
  });

  it('a one-unit Sigmoid classifier trains with BCE of its logit', async () => {
    const g = classifier('Sigmoid', { classes: 1 });
    const yb = Int32Array.from([0, 1, 1, 0, 1, 0, 0, 1]);
    // Reference: the logits model's outputs, BCE by hand.
    const logits = classifier(undefined, { classes: 1 });
    const s = await Session.create(logits);
    const z = (await s.run({ input: { dtype: 'float32', dims: [8, 1, 4, 4], data: x } }))['out']!
      .data as Float32Array;
    await s.release();
    const bce =
      [...z].reduce(
        (acc, v, i) => acc + Math.max(v, 0) - v * yb[i]! + Math.log1p(Math.exp(-Math.abs(v))),
        0,
      ) / 8;
    const t = await Trainer.create(g, {
      batchSize: 8,
      loss: { kind: 'bce_logits' },
      optimizer: { kind: 'sgd', momentum: 0 },
      groups: [{ name: 'all', params: ['head.weight', 'head.bias'], lr: 0.5 }],
    });
    const first = await t.trainStep({ x, y: yb, size: 8 });
    expectAllClose([first.loss], [bce], { rtol: 1e-5, what: 'first-step BCE' });
    const correct = [...z].filter((v, i) => (v > 0 ? 1 : 0) === yb[i]).length;
    assert.equal(first.correct, correct, 'training accuracy thresholds the logit at 0');
    for (let i = 0; i < 20; i++) await t.trainStep({ x, y: yb, size: 8 });
    const ev = await t.evaluate({
      name: 'd',
      images: x,
      labels: yb,
      n: 8,
      shape: [1, 4, 4],
      numClasses: 2,
    });
    await t.release();
    assert.ok(ev.loss < bce, `BCE fell: ${bce} → ${ev.loss}`);
  });
});

describe('adapt on MNIST: a softmax-ended classifier and the same one without the Softmax', () => {
  it('reach the same accuracy, and the exported model still outputs probabilities', async (t) => {
    const common = {
      batchSize: 32,
      optimizer: 'adamw' as const,
      testLimit: 300,
      valFraction: 0,
      seed: 2,
      latency: { batchSizes: [1], runs: 1 },
    };
    // A pretrained classifier (plain logits), then the same network with a Softmax appended.
    await runMethod({
      ...common,
      method: 'fine-tune',
      base: { graph: mlp({ seed: 4, width: 0.5 }), name: 'mlp', sha256: '0'.repeat(64) },
      data: 'mnist',
      outDir: join(root, 'pretrain'),
      epochs: 3,
      lr: 1e-2,
      limit: 960,
    });
    const plain = decodeModel(await readFile(join(root, 'pretrain', 'model.onnx')));
    const soft = decodeModel(await readFile(join(root, 'pretrain', 'model.onnx')));
    const ident = soft.nodes.at(-1)!;
    assert.equal(ident.outputs[0], soft.outputs[0]!.name);
    soft.nodes.splice(soft.nodes.length - 1, 0, {
      name: 'probs_softmax',
      opType: 'Softmax',
      domain: '',
      inputs: [ident.inputs[0]!],
      outputs: ['probs_in'],
      attrs: { axis: { type: 'int', value: -1 } },
    });
    ident.inputs[0] = 'probs_in';
    // The same adaptation of both to low-contrast digits.
    const run = (graph: Graph, name: string) =>
      runMethod({
        ...common,
        method: 'quadratic-adapt',
        base: { graph, name, sha256: '0'.repeat(64) },
        data: 'mnist:shift=contrast,strength=0.6',
        outDir: join(root, name),
        epochs: 2,
        lr: 3e-3,
        quadLr: 3e-3,
        limit: 640,
        quad: { rank: 2 },
      });
    const a = await run(plain, 'plain');
    const b = await run(soft, 'softmax');
    const accA = a.eval!.accuracy;
    const accB = b.eval!.accuracy;
    t.diagnostic(
      `test accuracy: original ${a.eval!.base!.accuracy}, adapted plain ${accA}, adapted softmax-ended ${accB}`,
    );
    assert.ok(
      accA > a.eval!.base!.accuracy + 0.03,
      `adaptation gained: ${a.eval!.base!.accuracy} → ${accA}`,
    );
    assert.ok(Math.abs(accA - accB) <= 0.02, `accuracy ${accA} vs ${accB}`);
    // Same final training loss: the softmax run trained on the same logits.
    expectAllClose([b.fit.history.at(-1)!.loss], [a.fit.history.at(-1)!.loss], {
      rtol: 1e-3,
      what: 'final epoch loss',
    });
    const info = JSON.parse(await readFile(join(root, 'softmax', 'run.json'), 'utf8')) as RunInfo;
    assert.equal(info.output?.activation, 'softmax');
    assert.equal(info.output?.loss, 'cross_entropy');
    assert.equal(info.output?.lossReads, 'logits');
    // model.onnx keeps the Softmax: its rows are the softmax of the plain run's logits.
    const x = new Rng(9).uniformArray(4 * 784, 0, 1);
    const outOf = async (file: string) => {
      const g = decodeModel(await readFile(file));
      const s = await Session.create(g);
      const r = await s.run({ input: { dtype: 'float32', dims: [4, 1, 28, 28], data: x } });
      await s.release();
      return r[g.outputs[0]!.name]!.data as Float32Array;
    };
    const probs = await outOf(join(root, 'softmax', 'model.onnx'));
    const logits = await outOf(join(root, 'plain', 'model.onnx'));
    for (let i = 0; i < 4; i++) {
      const row = probs.slice(i * 10, i * 10 + 10);
      expectAllClose([row.reduce((s, v) => s + v, 0)], [1], { rtol: 1e-5, what: `row ${i} sum` });
      const z = logits.slice(i * 10, i * 10 + 10);
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const sum = e.reduce((s, v) => s + v, 0);
      expectAllClose(
        row,
        e.map((v) => v / sum),
        { rtol: 0, atol: 2e-3, what: `row ${i} probs` },
      );
    }
  });
});
