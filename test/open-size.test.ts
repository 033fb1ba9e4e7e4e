/**
 * Issue #12, item 3: fully convolutional models with an open input size (symbolic height and
 * width, as detection/segmentation/super-resolution models are exported), and dense targets
 * (1-channel masks for 3-channel images, per-pixel cross-entropy and binary cross-entropy).
 * Fixtures: scripts/gen_fcn_models.py (torch.onnx.export with dynamic_axes on N, H, W) and
 * scripts/gen_pixel_loss_fixtures.py.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { backward } from '../src/autodiff/backward.js';
import type { LossKind } from '../src/autodiff/losses.js';
import { addLoss } from '../src/autodiff/losses.js';
import { loadDataset } from '../src/data/spec.js';
import { GraphBuilder } from '../src/ir/builder.js';
import type { Graph } from '../src/ir/graph.js';
import { emptyGraph } from '../src/ir/graph.js';
import { decodeModel } from '../src/ir/onnx.js';
import { importModel } from '../src/io/import/importers.js';
import { MaskAccumulator } from '../src/runtime/regression.js';
import { quadratize } from '../src/passes/quadratize.js';
import { Session } from '../src/runtime/session.js';
import { Rng } from '../src/util/random.js';
import { expectAllClose } from './helpers/allclose.js';
import type { FixtureTensor } from './helpers/fixtures.js';
import { loadFixtures } from './helpers/fixtures.js';
import { mainCaptured } from './helpers/cli.js';

const MODELS = fileURLToPath(new URL('../fixtures/models/', import.meta.url));
const SEG3 = join(MODELS, 'torch_fcn_seg3.onnx');
const BIN = join(MODELS, 'torch_fcn_bin.onnx');

async function run(g: Graph, dims: number[], data: Float32Array): Promise<Float32Array> {
  const s = await Session.create(g);
  try {
    const out = await s.run({ [g.inputs[0]!.name]: { dtype: 'float32', dims, data } });
    return out[g.outputs[0]!.name]!.data as Float32Array;
  } finally {
    await s.release();
  }
}

/** Runs the CLI, capturing its stdout and stderr lines. */
const cli = (...args: string[]) => mainCaptured(args);

const SIZES: [number, number][] = [
  [16, 16],
  [24, 20],
  [32, 32],
];

describe('a fully convolutional model with open height and width', () => {
  it('imports with its open dims and matches PyTorch at two sizes', async () => {
    for (const [file, io] of [
      [SEG3, 'torch_fcn_seg3.io.json'],
      [BIN, 'torch_fcn_bin.io.json'],
    ] as const) {
      const { graph } = await importModel(file);
      assert.deepEqual(graph.inputs[0]!.shape, ['batch', 3, 'height', 'width']);
      const ref = JSON.parse(readFileSync(join(MODELS, io), 'utf8')) as Record<
        string,
        Record<'image' | 'logits', FixtureTensor>
      >;
      for (const [size, c] of Object.entries(ref)) {
        const y = await run(graph, c.image.dims, Float32Array.from(c.image.data));
        expectAllClose(y, c.logits.data, { rtol: 1e-5, atol: 1e-5, what: `${io} ${size}` });
      }
    }
  });

  it('quadratize keeps the symbolic dims: outputs unchanged at 16x16, 24x20 and 32x32', async () => {
    const { graph } = await importModel(SEG3);
    const { graph: q, targets } = quadratize(graph);
    assert.deepEqual(q.inputs[0]!.shape, ['batch', 3, 'height', 'width']);
    assert.deepEqual(q.outputs[0]!.shape, graph.outputs[0]!.shape);
    // The 8-channel stem (3 input channels) is left out: its rank-4 term would cost more.
    assert.match(targets[0]!.reason, /^image stem \(3 input channels\)/);
    const rng = new Rng(3);
    for (const [h, w] of SIZES) {
      const x = rng.uniformArray(2 * 3 * h * w, 0, 1);
      const y0 = await run(graph, [2, 3, h, w], x);
      const y = await run(q, [2, 3, h, w], x);
      assert.equal(y.length, 2 * 3 * h * w);
      const max = Math.max(...Array.from(y0, Math.abs));
      expectAllClose(y, y0, { rtol: 0, atol: 1e-6 * max, what: `${h}x${w}` });
    }
  });

  it('a stride-1 auto_pad SAME conv keeps an open size (its pads do not depend on it)', async () => {
    const g = emptyGraph('same');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', ['batch', 2, 'h', 'w']);
    const rng = new Rng(5);
    const w = (name: string, dims: number[]) => {
      g.initializers.set(name, {
        dtype: 'float32',
        dims,
        data: rng.uniformArray(
          dims.reduce((p, d) => p * d, 1),
          -0.5,
          0.5,
        ),
      });
      return name;
    };
    const h1 = b.op('Conv', [x, w('w1', [4, 2, 3, 3])], { auto_pad: 'SAME_UPPER' }, { name: 'c1' });
    const h2 = b.op(
      'Conv',
      [b.relu(h1), w('w2', [4, 4, 5, 5])],
      { auto_pad: 'SAME_LOWER' },
      { name: 'c2' },
    );
    const y = b.op('Conv', [h2, w('w3', [1, 4, 1, 1])], {}, { name: 'head', outputs: ['y'] });
    g.outputs.push({ name: y, dtype: 'float32', shape: ['batch', 1, 'h', 'w'] });
    const { graph: q, targets } = quadratize(g, { targets: ['Conv'] });
    assert.deepEqual(
      targets.filter((r) => r.matched).map((r) => r.node),
      ['c1', 'c2'],
    );
    for (const [hh, ww] of [
      [7, 9],
      [12, 12],
    ]) {
      const input = rng.uniformArray(2 * hh! * ww!, 0, 1);
      const y0 = await run(g, [1, 2, hh!, ww!], input);
      const y1 = await run(q, [1, 2, hh!, ww!], input);
      const max = Math.max(...Array.from(y0, Math.abs));
      expectAllClose(y1, y0, { rtol: 0, atol: 1e-6 * max, what: `${hh}x${ww}` });
    }
  });

  it('inspect costs the model at 224 by default, or at --input-shape, and says which', async () => {
    const def = await cli('inspect', SEG3, '--latency-runs', '0');
    assert.equal(def.code, 0, def.err);
    assert.match(def.out, /inputs: image \[batch,3,height,width\]/);
    assert.match(
      def.out,
      /input \[3,224,224\] \(open height, width set to the default 224; choose with --input-shape\)/,
    );
    const j224 = JSON.parse((await cli('inspect', SEG3, '--json', '--latency-runs', '0')).out);
    assert.deepEqual(j224.inputShape, [3, 224, 224]);
    assert.equal(j224.inputShapeSource, 'default');
    const given = await cli('inspect', SEG3, '--input-shape', '3x24x20', '--latency-runs', '1');
    assert.equal(given.code, 0, given.err);
    assert.match(given.out, /input \[3,24,20\] \(--input-shape\)/);
    assert.match(given.out, /latency \(2 threads, onnxruntime CPU, input \[3,24,20\]\)/);
    const j = JSON.parse(
      (await cli('inspect', SEG3, '--json', '--latency-runs', '0', '--input-shape', '3x24x20')).out,
    );
    assert.deepEqual(j.inputShape, [3, 24, 20]);
    assert.equal(j.inputShapeSource, 'given');
    // Every layer's cost scales with the pixels: 224·224 / (24·20).
    expectAllClose([j224.flops / j.flops], [(224 * 224) / (24 * 20)], { rtol: 1e-12 });
    const bad = await cli('inspect', SEG3, '--input-shape', '4x24x20', '--latency-runs', '0');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /--input-shape 4x24x20 changes the model's fixed input/);
  });

  it('quadratize writes a model that still takes any size; FLOPs at --input-shape or 224', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qn-open-'));
    try {
      const dry = await cli('quadratize', SEG3, '--dry-run');
      assert.equal(dry.code, 0, dry.err);
      assert.match(
        dry.out,
        /quadratic term: \+[\d.]+k? parameters .* FLOPs \(\+[\d.]+%\) per sample at input \[3,224,224\] \(open height, width set to the default 224/,
      );
      const res = await cli('quadratize', SEG3, '-o', dir, '--input-shape', '3x32x32');
      assert.equal(res.code, 0, res.err);
      assert.match(res.out, /per sample at input \[3,32,32\] \(--input-shape\)/);
      const written = decodeModel(readFileSync(join(dir, 'model.onnx')));
      assert.deepEqual(written.inputs[0]!.shape, ['batch', 3, 'height', 'width']);
      const { graph } = await importModel(SEG3);
      const rng = new Rng(4);
      for (const [h, w] of SIZES) {
        const x = rng.uniformArray(3 * h * w, 0, 1);
        const y0 = await run(graph, [1, 3, h, w], x);
        const y = await run(written, [1, 3, h, w], x);
        const max = Math.max(...Array.from(y0, Math.abs));
        expectAllClose(y, y0, { rtol: 0, atol: 1e-6 * max, what: `written ${h}x${w}` });
      }
      const q = join(dir, 'model.onnx');
      const b = await cli(
        'bench',
        SEG3,
        q,
        '--runs',
        '1',
        '--batch-sizes',
        '1',
        '--json',
        '--input-shape',
        '3x16x16',
      );
      assert.equal(b.code, 0, b.err);
      const jb = JSON.parse(b.out) as { inputShape: number[]; results: { flops: number }[] };
      assert.deepEqual(jb.inputShape, [3, 16, 16]);
      assert.ok(jb.results[1]!.flops > jb.results[0]!.flops);
      const bt = await cli('bench', SEG3, q, '--runs', '1', '--batch-sizes', '1');
      assert.equal(bt.code, 0, bt.err);
      assert.match(bt.out, /^input \[3,224,224\] \(open height, width set to the default 224/);
      const j = JSON.parse((await cli('quadratize', SEG3, '--dry-run', '--json')).out);
      assert.deepEqual(j.overhead.inputShape, [3, 224, 224]);
      assert.equal(j.overhead.inputShapeSource, 'default');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dense losses match PyTorch (float64 fixtures)', () => {
  interface Case {
    name: string;
    kind: LossKind;
    logits: FixtureTensor;
    target: FixtureTensor;
    loss: number;
    grad: FixtureTensor;
  }
  for (const c of loadFixtures<Case>('pixel_losses').cases) {
    it(c.name, async () => {
      const g = emptyGraph(c.name);
      const b = new GraphBuilder(g);
      const z = b.input('z', 'float64', c.logits.dims);
      const t = b.input('t', 'float64', c.target.dims);
      const loss = addLoss(b, z, t, c.logits.dims, { kind: c.kind }, 'float64');
      g.outputs.push({ name: loss, dtype: 'float64', shape: [] });
      const { graph, grads } = backward(g, { loss, wrt: ['z'] });
      graph.outputs.push({ name: grads.get('z')!, dtype: 'float64', shape: c.logits.dims });
      const s = await Session.create(graph);
      try {
        const out = await s.run({
          z: { dtype: 'float64', dims: c.logits.dims, data: Float64Array.from(c.logits.data) },
          t: { dtype: 'float64', dims: c.target.dims, data: Float64Array.from(c.target.data) },
        });
        expectAllClose(out[loss]!.data as Float64Array, [c.loss], { rtol: 1e-12, what: 'loss' });
        expectAllClose(out[grads.get('z')!]!.data as Float64Array, c.grad.data, {
          rtol: 1e-10,
          atol: 1e-15,
          what: 'dz',
        });
      } finally {
        await s.release();
      }
    });
  }
});

describe('MaskAccumulator', () => {
  it('class masks: pixel accuracy, mean IoU and cross-entropy by hand', () => {
    // One example, 2 classes, 4 pixels: logits favour classes [0, 1, 1, 0]; the mask is [0, 1, 0, 0].
    const acc = new MaskAccumulator('classes', 8, 4);
    acc.add([2, 0, 0, 1, /* class 1: */ 0, 1, 2, 0], [0, 1, 0, 0], 1);
    const r = acc.result();
    assert.equal(r.pixelAccuracy, 3 / 4);
    // Class 0: predicted {0, 3}, true {0, 2, 3} → 2/3; class 1: predicted {1, 2}, true {1} → 1/2.
    expectAllClose([r.meanIou!], [(2 / 3 + 1 / 2) / 2], { rtol: 1e-12 });
    const ce = (a: number, b: number) => Math.log(Math.exp(a) + Math.exp(b)) - a;
    expectAllClose([r.loss!], [(ce(2, 0) + ce(1, 0) + ce(0, 2) + ce(1, 0)) / 4], { rtol: 1e-12 });
  });

  it('0/1 masks: logit > 0 is foreground; BCE on logits', () => {
    const acc = new MaskAccumulator('binary', 3, 3);
    acc.add([3, -1, 0.5], [1, 1, 0], 1);
    const r = acc.result();
    assert.equal(r.pixelAccuracy, 1 / 3);
    const bce = (z: number, t: number) => Math.log1p(Math.exp(-z)) + (1 - t) * z;
    expectAllClose([r.loss!], [(bce(3, 1) + bce(-1, 1) + bce(0.5, 0)) / 3], { rtol: 1e-12 });
    // Background: predicted {1}, true {2} → 0; foreground: predicted {0, 2}, true {0, 1} → 1/3.
    expectAllClose([r.meanIou!], [(0 + 1 / 3) / 2], { rtol: 1e-12 });
  });
});

describe('adapt and eval on pairs: with 1-channel masks (open-size model, data resolution)', () => {
  const root = mkdtempSync(join(tmpdir(), 'qn-masks-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const png = (h: number, w: number, f: (x: number, y: number, c: number) => number): Buffer => {
    const p = new PNG({ width: w, height: h });
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = 4 * (y * w + x);
        for (let c = 0; c < 3; c++) p.data[i + c] = f(x, y, c);
        p.data[i + 3] = 255;
      }
    return PNG.sync.write(p);
  };
  // 12 RGB 12×10 images; the class of a pixel is its brightest channel (0, 1, 2); the 0/1 mask
  // says whether the red channel is above 128.
  const [H, W] = [12, 10];
  const rng = new Rng(7);
  for (const kind of ['classes', 'binary'] as const) {
    mkdirSync(join(root, kind, 'input'), { recursive: true });
    mkdirSync(join(root, kind, 'target'));
  }
  for (let i = 0; i < 12; i++) {
    const px = Array.from({ length: H * W * 3 }, () => Math.floor(rng.uniform(0, 256)));
    const at = (x: number, y: number, c: number) => px[3 * (y * W + x) + c]!;
    const img = png(H, W, at);
    const brightest = (x: number, y: number) => {
      const v = [0, 1, 2].map((c) => at(x, y, c));
      return v.indexOf(Math.max(...v));
    };
    for (const kind of ['classes', 'binary'] as const) {
      writeFileSync(join(root, kind, 'input', `${i}.png`), img);
      writeFileSync(
        join(root, kind, 'target', `${i}.png`),
        kind === 'classes'
          ? png(H, W, (x, y) => brightest(x, y))
          : png(H, W, (x, y) => (at(x, y, 0) > 128 ? 255 : 0)),
      );
    }
  }

  it('loads class masks and 0/1 masks as one channel beside 3-channel images', async () => {
    const cls = await loadDataset(`pairs:${join(root, 'classes')}:loss=ce`);
    assert.deepEqual(cls.shape, [3, H, W]);
    assert.deepEqual(cls.targetShape, [1, H, W]);
    assert.equal(cls.masks, 'classes');
    assert.deepEqual([...new Set(cls.targets)].sort(), [0, 1, 2]);
    const bin = await loadDataset(`pairs:${join(root, 'binary')}:loss=bce`);
    assert.equal(bin.masks, 'binary');
    assert.deepEqual([...new Set(bin.targets)].sort(), [0, 1]);
    await assert.rejects(
      loadDataset(`pairs:${join(root, 'binary')}:loss=dice`),
      /loss "dice" must be mse \(image targets\), ce \(class masks/,
    );
  });

  it('a mask without loss= is refused, saying what to use', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qn-masks-run-'));
    try {
      const r = await cli(
        'adapt',
        SEG3,
        '--data',
        `pairs:${join(root, 'classes')}:target_channels=1`,
        '-o',
        dir,
        '--epochs',
        '1',
        '--batch-size',
        '2',
      );
      assert.equal(r.code, 1);
      assert.match(r.err, /the channels differ \(3 vs 1\); for class masks .* use loss=ce/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const [kind, model, spec] of [
    ['classes', SEG3, 'loss=ce'],
    ['binary', BIN, 'loss=bce'],
  ] as const) {
    it(`adapt (${spec}) trains at the data's 12x10, lowers the loss, and writes an open-size model; eval reads it`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'qn-masks-run-'));
      try {
        const data = `pairs:${join(root, kind)}:${spec},test=0.25`;
        const r = await cli(
          'adapt',
          model,
          '--data',
          data,
          '-o',
          dir,
          '--epochs',
          '6',
          '--batch-size',
          '2',
          '--lr',
          '0.01',
          '--seed',
          '1',
        );
        assert.equal(r.code, 0, r.err);
        const history = readFileSync(join(dir, 'history.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { loss: number; valLoss?: number });
        assert.equal(history.length, 6);
        assert.ok(
          history.at(-1)!.loss < history[0]!.loss,
          `train loss ${history[0]!.loss} → ${history.at(-1)!.loss}`,
        );
        const ev = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8')) as {
          accuracy: number;
          loss: number;
          regression: { pixelAccuracy: number; meanIou: number; loss: number };
          base: { loss: number };
        };
        assert.ok(ev.regression.pixelAccuracy >= 0 && ev.regression.pixelAccuracy <= 1);
        assert.equal(ev.accuracy, ev.regression.pixelAccuracy);
        assert.equal(ev.loss, ev.regression.loss);
        assert.ok(ev.loss < ev.base.loss, `test loss ${ev.base.loss} → ${ev.loss}`);
        const written = decodeModel(readFileSync(join(dir, 'model.onnx')));
        assert.deepEqual(written.inputs[0]!.shape, ['batch', 3, 'height', 'width']);
        const y = await run(written, [1, 3, 32, 32], new Float32Array(3 * 32 * 32).fill(0.5));
        assert.equal(y.length, (kind === 'classes' ? 3 : 1) * 32 * 32);
        const e = await cli(
          'eval',
          join(dir, 'model.onnx'),
          '--data',
          data,
          '--json',
          '--runs',
          '1',
        );
        assert.equal(e.code, 0, e.err);
        const j = JSON.parse(e.out) as {
          results: { pixelAccuracy: number; meanIou: number; loss: number }[];
        };
        // The same test split and model as the run's eval.json.
        expectAllClose([j.results[0]!.pixelAccuracy], [ev.regression.pixelAccuracy], {
          rtol: 1e-12,
          what: 'eval pixel accuracy',
        });
        expectAllClose([j.results[0]!.loss], [ev.regression.loss], {
          rtol: 1e-6,
          what: 'eval loss',
        });
        const table = await cli('eval', join(dir, 'model.onnx'), '--data', data, '--runs', '1');
        assert.match(table.out, /: \d+ test examples at the data's size, input \[3,12,10\]/);
        assert.match(
          table.out,
          /pixel accuracy +mean IoU +(cross-entropy|BCE) +MSE of probabilities/,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
