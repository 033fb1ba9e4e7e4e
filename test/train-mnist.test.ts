import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Dataset } from '../src/data/dataset.js';
import { batches, take } from '../src/data/dataset.js';
import { loadMnist } from '../src/data/mnist.js';
import type { Graph } from '../src/ir/graph.js';
import { cnn, mlp } from '../src/models/zoo.js';
import { Trainer } from '../src/runtime/trainer.js';

/** Trains `model` for `epochs` over `train` and returns the trainer and the per-step losses. */
async function fit(
  model: Graph,
  train: Dataset,
  epochs: number,
  lr: number,
  seed = 0,
  maxSteps = Infinity,
) {
  const params = [...model.initializers.keys()];
  const batchSize = 64;
  const steps = Math.min(maxSteps, epochs * Math.floor(train.n / batchSize));
  const trainer = await Trainer.create(model, {
    batchSize,
    loss: { kind: 'cross_entropy' },
    optimizer: { kind: 'adamw', weightDecay: 0 },
    groups: [{ name: 'all', params, lr }],
    schedule: { warmupSteps: 10, totalSteps: steps },
    session: { threads: 2 },
  });
  const losses: number[] = [];
  for (let e = 0; e < epochs && trainer.step < steps; e++) {
    for (const b of batches(train, { batchSize, shuffle: true, seed: seed + e, dropLast: true })) {
      losses.push((await trainer.trainStep(b)).loss);
      if (trainer.step >= steps) break;
    }
  }
  return { trainer, losses };
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

describe('end-to-end training on real MNIST', () => {
  let train: Dataset;
  let test: Dataset;
  before(async () => {
    train = take(await loadMnist({ split: 'train' }), 20000, 1);
    test = await loadMnist({ split: 'test' });
  });

  it('a small CNN reaches ≥ 97% test accuracy and its loss falls', async () => {
    const { trainer, losses } = await fit(cnn({ seed: 1 }), train, 2, 3e-3);
    const ev = await trainer.evaluate(test);
    assert.ok(
      mean(losses.slice(-20)) < mean(losses.slice(0, 20)) / 4,
      `loss did not fall: ${mean(losses.slice(0, 20))} → ${mean(losses.slice(-20))}`,
    );
    assert.ok(ev.accuracy >= 0.97, `CNN test accuracy ${ev.accuracy}`);
    await trainer.release();
  });

  it('an MLP learns (≥ 93% test accuracy)', async () => {
    const { trainer, losses } = await fit(mlp({ seed: 1 }), train, 2, 2e-3);
    const ev = await trainer.evaluate(test);
    assert.ok(mean(losses.slice(-20)) < mean(losses.slice(0, 20)) / 3);
    assert.ok(ev.accuracy >= 0.93, `MLP test accuracy ${ev.accuracy}`);
    await trainer.release();
  });

  it('the same seed gives bitwise the same losses and parameters', async () => {
    const a = await fit(cnn({ seed: 7 }), train, 1, 1e-3, 3, 15);
    const b = await fit(cnn({ seed: 7 }), train, 1, 1e-3, 3, 15);
    assert.deepEqual(a.losses, b.losses);
    for (const [k, v] of a.trainer.params)
      assert.deepEqual(b.trainer.params.get(k)!.data, v.data, k);
    const c = await fit(cnn({ seed: 8 }), train, 1, 1e-3, 3, 15);
    assert.notDeepEqual(a.losses, c.losses);
    for (const t of [a, b, c]) await t.trainer.release();
  });
});
