import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Graph } from '../src/ir/graph.js';
import { cnn, convnext, resnet } from '../src/models/zoo.js';
import { quadParamNames } from '../src/passes/quadratic-spec.js';
import type { QuadratizeOptions } from '../src/passes/quadratize.js';
import { quadratize } from '../src/passes/quadratize.js';
import { quadraticSegments } from '../src/runtime/train-graph.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';

/** Makes U non-zero so every gradient of the branch is exercised. */
function randomizeU(g: Graph, seed: number): Graph {
  const rng = new Rng(seed);
  for (const name of quadParamNames(g)) {
    if (!name.endsWith('quad_u')) continue;
    const t = g.initializers.get(name)!;
    g.initializers.set(name, { ...t, data: rng.uniformArray(t.data.length, -0.1, 0.1) });
  }
  return g;
}

async function stepWith(g: Graph, memoryEfficient: boolean, full: boolean) {
  const params = full
    ? [...g.initializers.keys()].filter(
        (k) => !/running_|\/ints/.test(k) && g.initializers.get(k)!.dtype === 'float32',
      )
    : quadParamNames(g);
  const t = await Trainer.create(g, {
    batchSize: 4,
    loss: { kind: 'cross_entropy' },
    optimizer: { kind: 'sgd', momentum: 0.9 },
    groups: [{ name: 'p', params, lr: 0.1 }],
    batchNorm: 'frozen',
    memoryEfficient,
  });
  const rng = new Rng(3);
  const batch = {
    x: rng.uniformArray(4 * 28 * 28, 0, 1),
    y: Int32Array.from([1, 2, 3, 4]),
    size: 4,
  };
  await t.trainStep(batch);
  const r = await t.trainStep(batch);
  const out = {
    loss: r.loss,
    gradNorm: r.gradNorm,
    params: new Map(t.params),
    graph: t.train.graph,
  };
  await t.release();
  return out;
}

const cases: [string, () => Graph, QuadratizeOptions, boolean][] = [
  ['CNN lowrank product, adapter-only', () => cnn({ seed: 1 }), {}, false],
  ['CNN rbf, full training', () => cnn({ seed: 1 }), { phi: 'rbf' }, true],
  ['ResNet neuron mode', () => resnet({ seed: 2 }), { mode: 'neuron' }, false],
  [
    'ConvNeXt depthwise 7×7 atrous + MatMul',
    () => convnext({ seed: 3, depth: 1 }),
    { phi: 'rbf' },
    false,
  ],
];

describe('memory-efficient backpropagation', () => {
  for (const [name, make, qopts, full] of cases) {
    it(`${name}: recomputes the branches and gives bitwise the same step`, async () => {
      const g = randomizeU(quadratize(make(), { ...qopts, seed: 5 }).graph, 6);
      const plain = await stepWith(g, false, full);
      const eff = await stepWith(g, true, full);
      assert.equal(eff.loss, plain.loss);
      assert.equal(eff.gradNorm, plain.gradNorm);
      for (const [k, v] of plain.params) assert.deepEqual(eff.params.get(k)!.data, v.data, k);
      // Structure: no gradient node reads a branch activation of the forward pass.
      const segs = quadraticSegments(g);
      assert.ok(segs.length > 0);
      const forwardValues = new Set(
        segs.flatMap((s) => s.nodes.flatMap((n) => g.nodes.find((x) => x.name === n)!.outputs)),
      );
      const recomputed = eff.graph.nodes.filter((n) => n.name.startsWith('grad/recompute/'));
      assert.ok(recomputed.length >= segs.length * 2, 'recompute nodes were emitted');
      const readers = eff.graph.nodes.filter(
        (n) =>
          n.name.startsWith('grad/') &&
          !n.name.startsWith('grad/recompute/') &&
          n.inputs.some((i) => forwardValues.has(i)),
      );
      assert.deepEqual(
        readers.map((n) => n.name),
        [],
      );
      const plainReaders = plain.graph.nodes.filter(
        (n) => n.name.startsWith('grad/') && n.inputs.some((i) => forwardValues.has(i)),
      );
      assert.ok(plainReaders.length > 0, 'the plain backward does keep branch activations');
    });
  }
});
