/**
 * Determinism: the same seed, data and thread count give bitwise-identical parameters after N
 * training steps, for one and for two intra-op threads; a different seed gives different ones.
 */

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Dataset } from '../src/data/dataset.js';
import { loadMnist } from '../src/data/mnist.js';
import type { Tensor } from '../src/ir/tensor.js';
import { cnn } from '../src/models/zoo.js';
import { fit } from '../src/runtime/fit.js';
import { Trainer } from '../src/runtime/trainer.js';

const STEPS = 24;

/** Trains a small CNN (conv, pool and dense kernels) for STEPS steps; returns its parameters. */
async function train(ds: Dataset, seed: number, threads: number): Promise<Map<string, Tensor>> {
  const model = cnn({ seed, width: 0.5 });
  const trainer = await Trainer.create(model, {
    batchSize: 16,
    loss: { kind: 'cross_entropy' },
    optimizer: { kind: 'adamw' },
    groups: [{ name: 'all', params: [...model.initializers.keys()], lr: 3e-3, weightDecay: 1e-4 }],
    schedule: { warmupSteps: 4, totalSteps: STEPS },
    clipNorm: 1,
    session: { threads },
  });
  const r = await fit(trainer, { train: ds, epochs: 2, seed, maxSteps: STEPS });
  assert.equal(r.status, 'done');
  assert.equal(trainer.step, STEPS);
  const params = new Map(trainer.params);
  await trainer.release();
  return params;
}

function bytes(t: Tensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** The names of the parameters whose bytes differ. */
function differing(a: Map<string, Tensor>, b: Map<string, Tensor>): string[] {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  return [...a.keys()].filter((k) => !bytes(a.get(k)!).equals(bytes(b.get(k)!)));
}

describe('determinism', () => {
  let ds: Dataset;
  before(async () => {
    ds = await loadMnist({ split: 'train', limit: 320 });
  });

  for (const threads of [1, 2]) {
    it(`threads=${threads}: the same seed and data give bitwise-identical parameters`, async () => {
      const a = await train(ds, 3, threads);
      const b = await train(ds, 3, threads);
      assert.deepEqual(differing(a, b), []);
    });
  }

  it('a different seed gives different parameters', async () => {
    const a = await train(ds, 3, 1);
    const b = await train(ds, 4, 1);
    assert.deepEqual(differing(a, b).sort(), [...a.keys()].sort());
  });
});
