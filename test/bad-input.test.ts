import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { UserError } from '../src/cli/errors.js';
import { encodeIdx } from '../src/data/idx.js';
import { QuadranetFileError } from '../src/io/errors.js';
import { mlp } from '../src/models/zoo.js';
import { loadModelSource } from '../src/workflow/model-source.js';
import type { RunOptions } from '../src/workflow/run.js';
import { runMethod } from '../src/workflow/run.js';
import { imageInputShape } from '../src/workflow/model-source.js';

const dir = mkdtempSync(join(tmpdir(), 'qn-bad-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An MNIST-format directory of float images, some of them poisoned. */
function idxDir(name: string, poison?: number): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  for (const split of ['train', 't10k']) {
    const n = 80;
    const images = new Float32Array(n * 28 * 28).fill(0.5);
    if (poison !== undefined) images[poison] = NaN;
    writeFileSync(
      join(d, `${split}-images-idx3-ubyte`),
      encodeIdx({ dtype: 'float', dims: [n, 28, 28], data: images }),
    );
    writeFileSync(
      join(d, `${split}-labels-idx1-ubyte`),
      encodeIdx({
        dtype: 'ubyte',
        dims: [n],
        data: Uint8Array.from({ length: n }, (_, i) => i % 10),
      }),
    );
  }
  return d;
}

async function run(over: Partial<RunOptions>) {
  return runMethod({
    method: 'fine-tune',
    base: { graph: mlp(), name: 'arch:mlp', sha256: 'x' },
    data: `idx:${idxDir('clean')}`,
    outDir: join(dir, `run-${Math.random().toString(36).slice(2)}`),
    epochs: 1,
    batchSize: 8,
    lr: 1e-3,
    optimizer: 'adamw',
    seed: 0,
    latency: { batchSizes: [1], runs: 2 },
    ...over,
  });
}

describe('bad input: one clear error, nothing half-written', () => {
  it('NaN in the data is named with its example before training starts', async () => {
    await assert.rejects(
      run({ data: `idx:${idxDir('nan', 3 * 784 + 5)}` }),
      (e: Error) => e instanceof UserError && /train example 3 holds NaN/.test(e.message),
    );
  });
  it('fewer examples than one batch', async () => {
    await assert.rejects(
      run({ batchSize: 512 }),
      (e: Error) => e instanceof UserError && /fewer than one batch of 512/.test(e.message),
    );
  });
  it('an output directory that cannot be created', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    await assert.rejects(
      run({ outDir: join(file, 'sub') }),
      (e: Error) => e instanceof QuadranetFileError && e.message.includes('a-file'),
    );
  });
  it('a model file over the size limit the user set', async () => {
    const p = join(dir, 'm.onnx');
    writeFileSync(p, new Uint8Array(5000));
    await assert.rejects(
      loadModelSource(p, { maxBytes: 1000 }),
      (e: Error) =>
        e instanceof QuadranetFileError && /5000 bytes is over the limit of 1000/.test(e.message),
    );
  });
  it('a model whose input is not float32', () => {
    const g = mlp();
    g.inputs[0]!.dtype = 'uint8';
    assert.throws(
      () => imageInputShape(g, 'u8.onnx'),
      (e: Error) => e instanceof UserError && /u8\.onnx: input 'input' is uint8/.test(e.message),
    );
  });
  it('labels beyond the model\u2019s classes', async () => {
    const g = mlp({ classes: 5 });
    await assert.rejects(
      run({ base: { graph: g, name: 'five.onnx', sha256: 'y' } }),
      (e: Error) => e instanceof UserError && /outputs 5 classes but .* has 10/.test(e.message),
    );
  });
});

describe('data layout for channels-last models (e.g. imported from TF.js)', () => {
  it('transposes NCHW images to NHWC for an [H, W, C] input and only relabels otherwise', async () => {
    const { fitToModel, dataShapeFor } = await import('../src/workflow/run.js');
    const images = Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i);
    const ds = {
      name: 'rgb',
      images,
      labels: Int32Array.from([0, 1]),
      n: 2,
      shape: [3, 2, 2] as [number, number, number],
      numClasses: 2,
    };
    assert.deepEqual(dataShapeFor([2, 2, 3]), [3, 2, 2]);
    assert.deepEqual(dataShapeFor([3, 2, 2]), [3, 2, 2]);
    const nhwc = fitToModel(ds, [2, 2, 3]);
    // pixel (0,0) of image 0: channels 0, 4, 8 in NCHW order
    assert.deepEqual(Array.from(nhwc.images.slice(0, 6)), [0, 4, 8, 1, 5, 9]);
    assert.deepEqual(Array.from(nhwc.images.slice(12, 15)), [12, 16, 20]);
    assert.equal(fitToModel(ds, [3, 2, 2]).images, images);
  });
});
