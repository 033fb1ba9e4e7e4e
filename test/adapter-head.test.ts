import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { graphSha256, loadAdapter, saveAdapter } from '../src/workflow/adapter-files.js';
import { cnn } from '../src/models/zoo.js';
import { quadratize } from '../src/passes/quadratize.js';
import { Session } from '../src/runtime/session.js';
import { Rng } from '../src/util/random.js';
import { expectAllClose } from './helpers/allclose.js';

const dir = mkdtempSync(join(tmpdir(), 'qn-head-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('adapter files carry base parameters trained with the adapter (the head)', () => {
  it('saves the head with the quadratic terms and restores both onto the base model', async () => {
    const base = cnn({ seed: 2 });
    const g = quadratize(base, { seed: 1 }).graph;
    const rng = new Rng(5);
    for (const name of ['conv1.weight.quad_u', 'head.weight', 'head.bias']) {
      const t = g.initializers.get(name)!;
      g.initializers.set(name, { ...t, data: rng.uniformArray(t.data.length, -0.2, 0.2) });
    }
    const config = await saveAdapter(dir, g, graphSha256(base), {
      alsoSave: ['head.weight', 'head.bias'],
    });
    assert.deepEqual(
      config.savedBaseParams?.map((p) => p.name),
      ['head.weight', 'head.bias'],
    );
    assert.ok(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')).savedBaseParams);
    const loaded = await loadAdapter(dir, base);
    for (const name of ['head.weight', 'conv1.weight.quad_u'])
      assert.deepEqual(loaded.initializers.get(name)!.data, g.initializers.get(name)!.data, name);
    assert.notDeepEqual(
      base.initializers.get('head.weight')!.data,
      g.initializers.get('head.weight')!.data,
      'base unchanged',
    );
    const x = {
      input: {
        dtype: 'float32' as const,
        dims: [2, 1, 28, 28],
        data: rng.uniformArray(2 * 784, 0, 1),
      },
    };
    const a = await (await Session.create(g)).run(x);
    const b = await (await Session.create(loaded)).run(x);
    expectAllClose(b['logits']!.data as Float32Array, a['logits']!.data as Float32Array, {
      rtol: 0,
      atol: 0,
    });
  });
  it('refuses to save something that is not a base parameter', async () => {
    const g = quadratize(cnn(), {}).graph;
    await assert.rejects(
      saveAdapter(join(dir, 'x'), g, undefined, { alsoSave: ['nope'] }),
      /cannot save 'nope'/,
    );
  });
});
