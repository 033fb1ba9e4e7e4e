import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { main } from '../src/cli/main.js';
import {
  batches,
  createDataset,
  normalize,
  split,
  take,
  type Dataset,
} from '../src/data/dataset.js';
import { DataError } from '../src/data/errors.js';
import { formatDataSpec, loadDataset, parseDataSpec } from '../src/data/spec.js';
import type { Graph } from '../src/ir/graph.js';
import { encodeModel } from '../src/ir/onnx.js';
import { NetBuilder } from '../src/models/net-builder.js';
import { mlp } from '../src/models/zoo.js';
import { loadRun } from '../src/report/load.js';
import { writeReport } from '../src/report/index.js';
import { psnr, PSNR_CAP_DB, regressionMetrics } from '../src/runtime/regression.js';
import { evaluateModel } from '../src/workflow/evaluate.js';
import { runMethod } from '../src/workflow/run.js';
import { expectAllClose } from './helpers/allclose.js';

const tmp = mkdtempSync(join(tmpdir(), 'quadranet-regression-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const DENOISE = 'mnist:shift=noise,strength=0.5,target=clean';

/** An image-to-image model on [1, H, W]: Conv 1→`hidden` 3×3 (+ ReLU + Conv `hidden`→1 3×3). */
function denoiser(hidden = 0, [h, w] = [28, 28], seed = 0): Graph {
  const net = new NetBuilder([1, h, w], seed, 'denoiser');
  if (hidden > 0) net.conv('conv1', 1, hidden, 3).relu().conv('conv2', hidden, 1, 3);
  else net.conv('conv1', 1, 1, 3);
  const out = net.b.op('Identity', [net.x], {}, { outputs: ['restored'] });
  net.graph.outputs.push({ name: out, dtype: 'float32', shape: ['batch', 1, h, w] });
  return net.graph;
}

/** 3×3 convolution with zero padding 1 of one-channel images, in float64 (the test's reference). */
function conv3x3(x: Float32Array, n: number, h: number, w: number, k: Float32Array, b: number) {
  const out = new Float64Array(x.length);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let s = b;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const yy = y + dy;
            const xs = xx + dx;
            if (yy < 0 || yy >= h || xs < 0 || xs >= w) continue;
            s += k[(dy + 1) * 3 + dx + 1]! * x[i * h * w + yy * w + xs]!;
          }
        }
        out[i * h * w + y * w + xx] = s;
      }
    }
  }
  return out;
}

/** A CSV regression file: features a, b and target y = 2a − b + 0.5 (plus a deterministic wiggle). */
function regressionCsv(rows: number): string {
  const lines = ['a,b,y'];
  for (let r = 0; r < rows; r++) {
    const a = ((r * 37) % 101) / 50 - 1;
    const b = ((r * 53) % 89) / 44 - 1;
    lines.push(`${a},${b},${2 * a - b + 0.5}`);
  }
  const file = join(tmp, `reg-${rows}.csv`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** Runs the CLI in-process; returns the exit code and what it printed. */
async function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const status = await main(args);
    return { status, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

describe('regression metrics', () => {
  it('MSE, RMSE, MAE and PSNR of known arrays', () => {
    // One 1×2×2 image: differences 0, 0.5, 0, 1.
    const m = regressionMetrics([0, 0.5, 1, 1], [0, 0, 1, 0], [1, 2, 2]);
    assert.equal(m.n, 1);
    expectAllClose(
      [m.mse, m.rmse, m.mae, m.psnr!, m.meanPsnr!],
      [0.3125, Math.sqrt(0.3125), 0.375, 10 * Math.log10(1 / 0.3125), 5.0514998],
      { rtol: 1e-6 },
    );
    // Two 1×1×2 images: the first exact (PSNR ∞, capped in the mean), the second MSE 0.01 (20 dB).
    const two = regressionMetrics([0.2, 0.4, 0.1, 0.7], [0.2, 0.4, 0.2, 0.6], [1, 1, 2]);
    expectAllClose([two.mse, two.mae], [0.005, 0.05], { rtol: 1e-6 });
    expectAllClose([two.psnr!], [23.0103], { rtol: 1e-5 });
    expectAllClose([two.meanPsnr!], [(PSNR_CAP_DB + 20) / 2], { rtol: 1e-6 });
    // Identical images: infinite PSNR of the global MSE, the cap per image, never NaN.
    const same = regressionMetrics([0.1, 0.9], [0.1, 0.9], [1, 1, 2]);
    assert.equal(same.mse, 0);
    assert.equal(same.psnr, Infinity);
    assert.equal(same.meanPsnr, PSNR_CAP_DB);
    assert.equal(psnr(0), Infinity);
    expectAllClose([psnr(0.01), psnr(0.25, 2)], [20, 20 * Math.log10(4)], { rtol: 1e-9 });
    // Scalar targets: no PSNR.
    const scalar = regressionMetrics([1, 2, 4], [1, 3, 2], [1]);
    expectAllClose([scalar.mse, scalar.mae], [5 / 3, 1], { rtol: 1e-9 });
    assert.equal(scalar.psnr, undefined);
    assert.throws(() => regressionMetrics([1, 2], [1], [1]), /outputs and 1 targets/);
  });
});

describe('datasets with targets', () => {
  const ds = createDataset({
    name: 'toy',
    images: Float32Array.from({ length: 6 * 2 }, (_, i) => i),
    labels: new Int32Array(6),
    shape: [1, 1, 2],
    targets: Float32Array.from({ length: 6 }, (_, i) => 100 + i),
    targetShape: [1],
  });
  /** Each example's target is 100 + its first feature / 2: the pairing survives every operation. */
  const paired = (d: Dataset) => {
    assert.ok(d.targets);
    for (let i = 0; i < d.n; i++) assert.equal(d.targets[i], 100 + d.images[2 * i]! / 2, d.name);
  };

  it('keeps inputs and targets paired through subsets, splits, take, batches and normalize', () => {
    paired(ds);
    const { train, val } = split(ds, { valFraction: 0.5, seed: 3 });
    paired(train);
    paired(val);
    assert.deepEqual(train.targetShape, [1]);
    paired(take(ds, 4, 1));
    const seen: number[] = [];
    for (const b of batches(ds, { batchSize: 4, shuffle: true, seed: 2 })) {
      assert.equal(b.target!.length, b.size);
      for (let k = 0; k < b.size; k++) assert.equal(b.target![k], 100 + b.x[2 * k]! / 2);
      seen.push(...b.target!);
    }
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      [100, 101, 102, 103, 104, 105],
    );
    // normalize changes the inputs only.
    const norm = normalize(ds, { mean: 1, std: 2 });
    assert.deepEqual([...norm.targets!], [...ds.targets!]);
    assert.notDeepEqual([...norm.images], [...ds.images]);
    // Classification data yields no target.
    const plain = createDataset({ ...ds, targets: undefined, targetShape: undefined });
    assert.equal([...batches(plain, { batchSize: 6 })][0]!.target, undefined);
  });

  it('createDataset refuses targets that do not fit', () => {
    const bad: [Partial<Parameters<typeof createDataset>[0]>, RegExp][] = [
      [{ targets: new Float32Array(5) }, /5 target values do not match 6 examples/],
      [{ targetShape: [0] }, /target shape \[0\]/],
      [{ targetShape: undefined }, /targets and their shape must be given together/],
      [{ targets: Float32Array.of(1, 2, NaN, 4, 5, 6) }, /target NaN of example 2/],
    ];
    for (const [patch, re] of bad) {
      assert.throws(
        () => createDataset({ ...ds, ...patch }),
        (e: unknown) => e instanceof DataError && re.test(e.message),
        String(re),
      );
    }
  });
});

describe('regression data specs', () => {
  it('parses csv task=regression and target=clean, and formats them back', () => {
    const c = parseDataSpec('csv:d.csv:label=y,task=regression');
    assert.deepEqual(c, {
      scheme: 'csv',
      text: 'csv:d.csv:label=y,task=regression',
      file: 'd.csv',
      label: 'y',
      task: 'regression',
    });
    const m = parseDataSpec(DENOISE);
    assert.equal(m.target, 'clean');
    assert.deepEqual(m.shift, { kind: 'noise', strength: 0.5 });
    for (const text of [
      'csv:f.csv:label=y,test=0.25,task=regression',
      'mnist:shift=noise,strength=0.5,target=clean',
      'folder:d:size=8x8,shift=blur,strength=1,seed=2,target=clean',
      'idx:/x:shift=rotate,strength=0.3,target=clean',
    ]) {
      const spec = parseDataSpec(text);
      assert.equal(formatDataSpec(spec), text);
      assert.deepEqual({ ...parseDataSpec(formatDataSpec(spec)), text: '' }, { ...spec, text: '' });
    }
  });

  it('rejects bad regression options with one line naming the spec', () => {
    const bad: [string, string][] = [
      ['csv:f:task=ranking', 'task "ranking" must be classification or regression'],
      ['mnist:target=clean', 'target=clean needs a shift to undo'],
      ['mnist:shift=noise,target=noisy', 'target "noisy" must be clean'],
      ['csv:f:shift=noise,target=clean', 'valid options: shift, strength, seed, label'],
      ['idx:d:task=regression', 'valid options: shift, strength, seed, target'],
    ];
    for (const [text, part] of bad) {
      assert.throws(
        () => parseDataSpec(text),
        (e: unknown) =>
          e instanceof DataError && e.message.includes(part) && e.message.includes(text),
        text,
      );
    }
  });

  it('loads a CSV target column as float targets, never standardised', async () => {
    const file = regressionCsv(40);
    const ds = await loadDataset(`csv:${file}:label=y,task=regression,standardize=false`);
    assert.deepEqual(ds.targetShape, [1]);
    assert.equal(ds.numClasses, 1);
    assert.equal(ds.n, 32); // 20% test
    assert.deepEqual(ds.shape, [1, 1, 2]);
    const expected = Array.from({ length: ds.n }, (_, i) => {
      const [a, b] = [ds.images[2 * i]!, ds.images[2 * i + 1]!];
      return 2 * a - b + 0.5;
    });
    expectAllClose(ds.targets!, expected, { rtol: 1e-5, atol: 1e-6 });
    const test = await loadDataset(`csv:${file}:label=y,task=regression`, { split: 'test' });
    assert.equal(test.n, 8);
    // Standardised features, raw targets: each target is one of the file's y values.
    const rows = readFileSync(file, 'utf8').trim().split('\n').slice(1);
    const ys = new Set(rows.map((l) => Math.fround(Number(l.split(',')[2]))));
    for (const t of test.targets!) assert.ok(ys.has(t), `target ${t} is a y of the file`);
  });

  it('refuses a non-numeric target with the file, line and column', async () => {
    const file = join(tmp, 'bad-target.csv');
    writeFileSync(file, 'a,y\n1,0.5\n2,high\n');
    await assert.rejects(
      loadDataset(`csv:${file}:label=y,task=regression`),
      (e: unknown) =>
        e instanceof DataError &&
        e.message ===
          `${file}: line 3, column 'y': target 'high' is not a finite number; ` +
            'task=regression needs a numeric target column (or drop task=regression for class labels)',
    );
    // The same file as classification is fine: 'high' is a class name.
    const cls = await loadDataset(`csv:${file}:label=y,test=0`);
    assert.equal(cls.targets, undefined);
  });

  it('target=clean: shifted inputs, clean targets of the same shape', async () => {
    const clean = await loadDataset('mnist', { split: 'test', limit: 8 });
    const noisy = await loadDataset('mnist:shift=noise,strength=0.5', { split: 'test', limit: 8 });
    const ds = await loadDataset(DENOISE, { split: 'test', limit: 8 });
    assert.deepEqual(ds.targetShape, [1, 28, 28]);
    assert.deepEqual(ds.targets, clean.images);
    assert.deepEqual(ds.images, noisy.images);
    assert.notDeepEqual(ds.images, ds.targets);
  });
});

describe('evaluation and training on regression data', () => {
  it('eval of an image-to-image model gives the MSE and PSNR of a reference computation', async () => {
    const model = denoiser();
    const test = await loadDataset(DENOISE, { split: 'test', limit: 16 });
    const k = model.initializers.get('conv1.weight')!.data as Float32Array;
    const bias = (model.initializers.get('conv1.bias')!.data as Float32Array)[0]!;
    const ref = conv3x3(test.images, test.n, 28, 28, k, bias);
    let sq = 0;
    for (let i = 0; i < ref.length; i++) sq += (ref[i]! - test.targets![i]!) ** 2;
    const mse = sq / ref.length;
    const e = await evaluateModel(model, test, { base: model, latency: { runs: 2 } });
    assert.ok(e.regression);
    expectAllClose([e.regression.mse, e.loss], [mse, mse], { rtol: 1e-4 });
    expectAllClose([e.regression.psnr!], [10 * Math.log10(1 / mse)], { rtol: 1e-5 });
    assert.ok(Number.isNaN(e.accuracy));
    assert.deepEqual(e.confusion, []);
    assert.equal(e.base!.regression!.mse, e.regression.mse);
  });

  it('refuses a model whose output does not match the targets, naming model and data', async () => {
    const test = await loadDataset(DENOISE, { split: 'test', limit: 4 });
    await assert.rejects(
      evaluateModel(mlp(), test, { names: { model: 'arch:mlp', data: DENOISE } }),
      (e: unknown) =>
        e instanceof DataError &&
        e.message.startsWith(
          `arch:mlp: the model outputs [10] per example but '${DENOISE}' has targets of shape [1,28,28]`,
        ) &&
        !e.message.includes('\n'),
    );
  });

  it('train on a CSV regression task: MSE loss falls, history and eval report MSE, report loads it', async () => {
    const file = regressionCsv(320);
    const out = join(tmp, 'run-csv');
    const graph = mlp({ inputShape: [1, 1, 2], classes: 1, width: 0.125, seed: 1 });
    const r = await runMethod({
      method: 'fine-tune',
      base: { graph, name: 'arch:mlp', sha256: '0'.repeat(64) },
      data: `csv:${file}:label=y,task=regression`,
      outDir: out,
      epochs: 4,
      batchSize: 32,
      lr: 2e-2,
      optimizer: 'adamw',
      seed: 0,
      threads: 1,
      latency: { batchSizes: [1], runs: 2 },
    });
    assert.equal(r.fit.status, 'done');
    const h = r.fit.history;
    assert.equal(h.length, 4);
    assert.ok(h[3]!.loss < h[0]!.loss / 2, `loss ${h.map((x) => x.loss)}`);
    assert.ok(h[3]!.valMse! < h[0]!.valMse!, `val MSE ${h.map((x) => x.valMse)}`);
    assert.equal(h[0]!.valAccuracy, undefined);
    assert.equal(h[0]!.trainAccuracy, undefined);
    assert.equal(h[0]!.valPsnr, undefined);
    assert.ok(r.eval!.regression!.mse < r.eval!.base!.regression!.mse);
    const json = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
    assert.equal(json.accuracy, null);
    assert.equal(json.regression.mse, r.eval!.regression!.mse);
    const loaded = await loadRun(out);
    assert.equal(loaded.eval!.regression!.mse, r.eval!.regression!.mse);
    assert.equal(loaded.history[3]!.valMse, h[3]!.valMse);
    const summary = await writeReport([out], join(tmp, 'report.html'));
    assert.equal(summary.runs[0]!.finalAccuracy, null);
    assert.equal(summary.runs[0]!.baseAccuracy, null);
  });

  it('adapt a denoiser on target=clean data: MSE falls, val PSNR in the history', async () => {
    const out = join(tmp, 'run-denoise');
    const graph = denoiser(4);
    const r = await runMethod({
      method: 'quadratic-adapt',
      base: { graph, name: 'denoiser.onnx', sha256: '0'.repeat(64) },
      data: DENOISE,
      outDir: out,
      // Explicit rank: the default ranks leave out the 1-channel stem (its term has more weights
      // than the layer), and the other conv is the head.
      quad: { rank: 4 },
      epochs: 3,
      batchSize: 16,
      lr: 1e-2,
      quadLr: 1e-2,
      optimizer: 'adamw',
      limit: 96,
      testLimit: 16,
      seed: 0,
      threads: 1,
      latency: { batchSizes: [1], runs: 2 },
    });
    assert.equal(r.fit.status, 'done');
    const h = r.fit.history;
    assert.ok(h.at(-1)!.loss < h[0]!.loss, `loss ${h.map((x) => x.loss)}`);
    assert.ok(h.at(-1)!.valPsnr! > h[0]!.valPsnr!, `val PSNR ${h.map((x) => x.valPsnr)}`);
    expectAllClose([h[0]!.valPsnr!], [10 * Math.log10(1 / h[0]!.valMse!)], { rtol: 1e-9 });
    assert.ok(r.eval!.regression!.mse < r.eval!.base!.regression!.mse);
    assert.ok(r.eval!.regression!.psnr! > r.eval!.base!.regression!.psnr!);
  });

  it('CLI eval --json reports mse and psnr; a mismatched model fails with one line', async () => {
    const file = join(tmp, 'denoiser.onnx');
    const model = denoiser();
    writeFileSync(file, encodeModel(model));
    const r = await cli(
      'eval',
      file,
      '--data',
      DENOISE,
      '--limit',
      '16',
      '--json',
      '--runs',
      '2',
      '--batch-sizes',
      '1',
    );
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.n, 16);
    const row = j.results[0];
    assert.equal(row.task, 'regression');
    const test = await loadDataset(DENOISE, { split: 'test', limit: 16 });
    const ref = await evaluateModel(model, test, { latency: { runs: 1, batchSizes: [1] } });
    expectAllClose(
      [row.mse, row.psnr, row.meanPsnr],
      [ref.regression!.mse, ref.regression!.psnr!, ref.regression!.meanPsnr!],
      { rtol: 1e-6 },
    );
    assert.ok(row.rmse > 0 && row.mae > 0 && row.latency.length === 1);
    assert.equal(row.accuracy, undefined);
    // The text table names the metrics.
    const t = await cli('eval', file, '--data', DENOISE, '--limit', '4', '--runs', '1');
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /MSE .*PSNR \(global MSE\).*PSNR \(mean per image\)/);
    assert.match(t.stdout, /\d+\.\d\d dB/);
    // Labelled data keeps the classification fields and no regression ones.
    const cls = await cli(
      'eval',
      'arch:mlp',
      '--data',
      'mnist',
      '--limit',
      '8',
      '--json',
      '--runs',
      '1',
      '--batch-sizes',
      '1',
    );
    assert.equal(cls.status, 0, cls.stderr);
    assert.deepEqual(Object.keys(JSON.parse(cls.stdout).results[0]), [
      'model',
      'n',
      'accuracy',
      'loss',
      'perClassAccuracy',
      'confusion',
      'latency',
      'flops',
    ]);
    const bad = await cli('eval', 'arch:cnn', '--data', DENOISE, '--limit', '4', '--runs', '1');
    assert.equal(bad.status, 1);
    assert.equal(bad.stderr.split('\n').length, 1);
    assert.match(
      bad.stderr,
      /^quadranet: arch:cnn: the model outputs \[10\] per example but 'mnist:shift=noise,strength=0.5,target=clean' has targets of shape \[1,28,28\]/,
    );
  });
});

describe('pairs:DIR (input/ and target/ images matched by name)', () => {
  /** A grayscale PNG whose pixel (x, y) is `f(x, y)` (0–255). */
  const gray = (h: number, w: number, f: (x: number, y: number) => number): Buffer => {
    const p = new PNG({ width: w, height: h });
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = 4 * (y * w + x);
        p.data[i] = p.data[i + 1] = p.data[i + 2] = f(x, y);
        p.data[i + 3] = 255;
      }
    return PNG.sync.write(p);
  };
  const root = mkdtempSync(join(tmpdir(), 'qn-pairs-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  // Five pairs: a 4×4 noisy input and its clean 8×8 target (a 2× super-resolution layout).
  mkdirSync(join(root, 'input'));
  mkdirSync(join(root, 'target'));
  for (let i = 0; i < 5; i++) {
    writeFileSync(
      join(root, 'input', `${i}.png`),
      gray(4, 4, (x, y) => (x * 40 + y * 7 + i) % 256),
    );
    writeFileSync(
      join(root, 'target', `${i}.png`),
      gray(8, 8, (x, y) => (x * 30 + y + 10 * i) % 256),
    );
  }

  it('loads inputs at their size and targets at theirs, paired, split by seed', async () => {
    const spec = `pairs:${root}:channels=1,test=0.4`;
    assert.equal(formatDataSpec(parseDataSpec(spec)), spec);
    const train = await loadDataset(spec);
    const test = await loadDataset(spec, { split: 'test' });
    assert.equal(train.n + test.n, 5);
    assert.equal(test.n, 2);
    assert.deepEqual(train.shape, [1, 4, 4]);
    assert.deepEqual(train.targetShape, [1, 8, 8]);
    // Each input's partner: recover i from input pixel (0, 0) = i, check target pixel (0, 0) = 10 i.
    for (let k = 0; k < train.n; k++) {
      const i = Math.round(train.images[k * 16]! * 255);
      assert.equal(Math.round(train.targets![k * 64]! * 255), 10 * i, `pair ${k}`);
    }
  });

  it('refuses a folder without target/ and an input without its partner, naming them', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'qn-pairs-bad-'));
    try {
      mkdirSync(join(bad, 'input'));
      writeFileSync(
        join(bad, 'input', 'a.png'),
        gray(2, 2, () => 0),
      );
      await assert.rejects(loadDataset(`pairs:${bad}`), /needs input\/ and target\/ subfolders/);
      mkdirSync(join(bad, 'target'));
      writeFileSync(
        join(bad, 'target', 'b.png'),
        gray(2, 2, () => 0),
      );
      await assert.rejects(
        loadDataset(`pairs:${bad}`),
        (e: Error) =>
          e instanceof DataError && /a\.png: no target image of the same name/.test(e.message),
      );
      await assert.rejects(loadDataset(`pairs:${bad}:target=clean`), /unknown option "target"/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});
