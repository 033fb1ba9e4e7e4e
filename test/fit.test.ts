import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Dataset } from '../src/data/dataset.js';
import { take } from '../src/data/dataset.js';
import { loadMnist } from '../src/data/mnist.js';
import { cnn, mlp } from '../src/models/zoo.js';
import { fit } from '../src/runtime/fit.js';
import type { TrainerOptions } from '../src/runtime/trainer.js';
import { Trainer } from '../src/runtime/trainer.js';

const opts = (params: string[], lr = 2e-3): TrainerOptions => ({
  batchSize: 32,
  loss: { kind: 'cross_entropy' },
  optimizer: { kind: 'adamw' },
  groups: [{ name: 'all', params, lr }],
  schedule: { warmupSteps: 3, totalSteps: 40 },
});

describe('fit: epochs, history, checkpoints, resume, divergence', () => {
  let train: Dataset;
  let val: Dataset;
  let dir: string;
  before(async () => {
    const all = await loadMnist({ split: 'train', limit: 3000 });
    train = take(all, 640, 2);
    val = take(all, 200, 3);
    dir = await mkdtemp(join(tmpdir(), 'qn-fit-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('an interrupted and resumed run ends with bitwise the same parameters as an uninterrupted one', async () => {
    const model = cnn({ seed: 4 });
    const params = [...model.initializers.keys()];
    const a = await Trainer.create(model, opts(params));
    const ra = await fit(a, { train, val, epochs: 2, seed: 9, runDir: join(dir, 'a') });
    assert.equal(ra.status, 'done');
    assert.equal(ra.history.length, 2);

    const ac = new AbortController();
    const b1 = await Trainer.create(model, opts(params));
    const rb1 = await fit(b1, {
      train,
      val,
      epochs: 2,
      seed: 9,
      runDir: join(dir, 'b'),
      signal: ac.signal,
      onProgress: (p) => {
        if (p.kind === 'step' && p.step === 27) ac.abort();
      },
    });
    assert.equal(rb1.status, 'interrupted');
    assert.equal(b1.step, 27);
    const b2 = await Trainer.create(model, opts(params));
    const rb2 = await fit(b2, {
      train,
      val,
      epochs: 2,
      seed: 9,
      runDir: join(dir, 'b'),
      resume: true,
    });
    assert.equal(rb2.status, 'done');
    assert.equal(b2.step, a.step);
    for (const [k, v] of a.params)
      assert.deepEqual(b2.params.get(k)!.data, v.data, `parameter ${k}`);
    const lines = (await readFile(join(dir, 'b', 'history.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(lines.length, 2);
    assert.equal(JSON.parse(lines[1]!).valAccuracy, ra.history[1]!.valAccuracy);
    for (const t of [a, b1, b2]) await t.release();
  });

  it('a diverging run stops, rolls the bad step back and says what to change', async () => {
    const model = mlp({ seed: 1 });
    const t = await Trainer.create(model, {
      ...opts([...model.initializers.keys()], 1e30),
      optimizer: { kind: 'sgd' },
    });
    const r = await fit(t, { train, epochs: 1, seed: 1 });
    assert.equal(r.status, 'diverged');
    assert.match(r.message!, /rolled back.*learning rate/);
    for (const [k, v] of t.params)
      assert.ok(Array.from(v.data as Float32Array).every(Number.isFinite), `${k} stayed finite`);
    await t.release();
  });
});
