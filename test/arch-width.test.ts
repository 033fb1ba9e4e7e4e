import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../src/cli/errors.js';
import { loadModelSource } from '../src/workflow/model-source.js';
import { countParams, learnableParams } from '../src/workflow/params.js';

const params = async (spec: string) => {
  const s = await loadModelSource(spec);
  return countParams(s.graph, learnableParams(s.graph));
};

describe('arch: specs with a width', () => {
  it('width=W multiplies the channel counts (parameters grow about W² in conv layers)', async () => {
    for (const arch of ['mlp', 'cnn', 'resnet', 'convnext']) {
      const p1 = await params(`arch:${arch}`);
      assert.equal(await params(`arch:${arch}:width=1`), p1, arch);
      const p2 = await params(`arch:${arch}:width=2`);
      // Layers scale W (input/output layers) to W² (hidden × hidden): between 2× and 4× here.
      assert.ok(p2 > 2 * p1 && p2 <= 4 * p1, `${arch}: ${p1} → ${p2}`);
    }
    // Channel counts are the width-1 ones times W: resnet's head takes 32·W features.
    const g = (await loadModelSource('arch:resnet:width=2')).graph;
    assert.deepEqual(g.initializers.get('head.weight')?.dims, [10, 64]);
  });

  it('combines with an input shape and records the spec as the name; distinct widths hash apart', async () => {
    const a = await loadModelSource('arch:cnn:3x32x32:width=1.5');
    assert.equal(a.name, 'arch:cnn:3x32x32:width=1.5');
    assert.deepEqual(a.graph.inputs[0]!.shape.slice(1), [3, 32, 32]);
    const b = await loadModelSource('arch:cnn:3x32x32');
    assert.notEqual(a.sha256, b.sha256);
  });

  it('a bad width is a one-line user error naming the spec', async () => {
    for (const spec of ['arch:resnet:width=0', 'arch:resnet:width=-1', 'arch:resnet:width=x']) {
      await assert.rejects(loadModelSource(spec), (e: unknown) => {
        assert.ok(e instanceof UserError, spec);
        assert.match((e as Error).message, new RegExp(`^${spec}: `));
        assert.doesNotMatch((e as Error).message, /\n/);
        return true;
      });
    }
    await assert.rejects(
      loadModelSource('arch:resnet:width=2:1x28x28'),
      /arch:NAME\[:CxHxW\]\[:width=W\]/,
    );
  });
});
