/** Messages and numbers the CLI shows a new user: they name the flags and forms that exist. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { declaredOpset } from '../src/cli/commands/inspect.js';
import type { Dataset } from '../src/data/dataset.js';
import { DataError } from '../src/data/errors.js';
import type { Graph } from '../src/ir/graph.js';
import { emptyGraph } from '../src/ir/graph.js';
import { encodeModel } from '../src/ir/onnx.js';
import { mlp } from '../src/models/zoo.js';
import { quadratize } from '../src/passes/quadratize.js';
import { accuracyInterval, checkClassifierOutput } from '../src/workflow/evaluate.js';
import { imageInputShape, loadModelSource } from '../src/workflow/model-source.js';
import { expectAllClose } from './helpers/allclose.js';

const labels: Dataset = {
  name: 'folder',
  images: new Float32Array(2 * 3 * 4 * 4),
  labels: Int32Array.of(0, 1),
  n: 2,
  shape: [3, 4, 4],
  numClasses: 2,
};

function withOutput(shape: (number | string)[]): Graph {
  const g = emptyGraph();
  g.outputs = [{ name: 'y', dtype: 'float32', shape }];
  return g;
}

describe('words that match the CLI', () => {
  it('the 95% Wilson interval of an accuracy (reference values)', () => {
    // 3 of 3: (0.4385, 1); 50 of 100: 0.5 ± 0.0962; 0 of 10: (0, 0.2775).
    expectAllClose(accuracyInterval(1, 3), [0.43849, 1], { atol: 5e-5 });
    expectAllClose(accuracyInterval(0.5, 100), [0.40383, 0.59617], { atol: 5e-5 });
    expectAllClose(accuracyInterval(0, 10), [0, 0.27753], { atol: 5e-5 });
  });

  it('class labels on an image-output model point to pairs:', () => {
    const names = { model: 'upscaler.json', data: 'folder:imgs' };
    assert.throws(
      () => checkClassifierOutput(withOutput(['batch', 'height*2', 'width*2', 3]), labels, names),
      (e) =>
        e instanceof DataError &&
        /upscaler\.json: the model outputs \[height\*2,width\*2,3\] per example, not class scores, .*pairs:DIR/.test(
          e.message,
        ),
    );
    // Class scores, with or without unit dims, pass.
    checkClassifierOutput(withOutput(['batch', 10]), labels, names);
    checkClassifierOutput(withOutput(['batch', 1, 1, 10]), labels, names);
  });

  it('an unknown arch: form names the accepted ones; an open input names --input-shape', async () => {
    await assert.rejects(
      () => loadModelSource('arch:mlp:8'),
      /'arch:mlp:8' is not a built-in architecture; write arch:NAME or arch:NAME:CxHxW .*mlp, cnn/,
    );
    const g = withOutput(['batch', 3]);
    g.inputs = [{ name: 'LR', dtype: 'float32', shape: ['batch', 'height', 'width', 3] }];
    assert.throws(
      () => imageInputShape(g, 'm.json'),
      /m\.json: input 'LR' has symbolic dims \[batch,height,width,3\] .*--input-shape/,
    );
  });

  it("inspect reads the file's declared opset without decoding the graph", () => {
    for (const v of [13, 17]) {
      const bytes = readFileSync(
        new URL(`../fixtures/models/torch_cnn_opset${v}.onnx`, import.meta.url),
      );
      assert.equal(declaredOpset(bytes), v);
    }
    assert.equal(declaredOpset(encodeModel(mlp({ seed: 0 }))), 18);
  });

  it("the head's reason names --include-head", () => {
    const head = quadratize(mlp({ seed: 0 }), { dryRun: true }).targets.find((t) => !t.matched);
    assert.match(head!.reason, /--include-head/);
  });
});
