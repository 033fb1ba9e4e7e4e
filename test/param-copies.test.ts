import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Batch } from '../src/data/dataset.js';
import { cnn } from '../src/models/zoo.js';
import type { HostTensor } from '../src/runtime/session.js';
import { Session, toOrt } from '../src/runtime/session.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';

// Issue #6: "no step may copy all parameters more than once in each direction". On our side a
// step copies parameters zero times: the typed arrays the trainer holds are the very buffers fed
// to onnxruntime, and the buffers onnxruntime returns become the parameters of the next step.
// (onnxruntime-node binds CPU inputs in place and copies each output once into a new
// ArrayBuffer: that is the one copy out.)

describe('train step: parameters are neither copied on the way in nor on the way out', () => {
  it('feeds the held buffers and keeps the returned ones', async () => {
    const model = cnn({ seed: 1, width: 0.5 });
    const params = [...model.initializers.keys()];
    const trainer = await Trainer.create(model, {
      batchSize: 8,
      loss: { kind: 'cross_entropy' },
      optimizer: { kind: 'adamw' },
      groups: [{ name: 'all', params, lr: 1e-3 }],
    });
    const rng = new Rng(3);
    const batch: Batch = {
      x: Float32Array.from({ length: 8 * 28 * 28 }, () => rng.next()),
      y: Int32Array.from({ length: 8 }, (_, i) => i % 10),
      size: 8,
    };
    const seen: { feeds: Record<string, HostTensor>; out: Record<string, HostTensor> }[] = [];
    const run = Session.prototype.run;
    Session.prototype.run = async function (this: Session, feeds, outputs) {
      const out = await run.call(this, feeds, outputs);
      seen.push({ feeds, out });
      return out;
    };
    try {
      for (let step = 0; step < 3; step++) {
        const before = new Map([...trainer.params].map(([k, v]) => [k, v.data]));
        const stateBefore = new Map([...trainer.state].map(([k, v]) => [k, v.data]));
        const r = await trainer.trainStep(batch);
        assert.ok(Number.isFinite(r.loss), `step ${step}: finite loss`);
        const { feeds, out } = seen.at(-1)!;
        for (const p of params) {
          assert.equal(feeds[p]!.data, before.get(p), `${p}: fed the held buffer (step ${step})`);
          // The output the trainer keeps is the session's own buffer, not a copy of it.
          const kept = trainer.params.get(p)!.data;
          assert.ok(
            Object.values(out).some((o) => o.data === kept),
            `${p}: keeps the returned buffer (step ${step})`,
          );
          assert.notEqual(kept, before.get(p), `${p}: replaced, not written into`);
        }
        for (const [k, data] of stateBefore) assert.equal(feeds[k]!.data, data, k);
      }
    } finally {
      Session.prototype.run = run;
    }
    assert.equal(seen.length, 3);
  });

  it('wraps a host tensor for onnxruntime without copying its data', () => {
    const h: HostTensor = { dtype: 'float32', dims: [2, 3], data: new Float32Array(6) };
    assert.equal(toOrt(h).data, h.data);
  });
});
