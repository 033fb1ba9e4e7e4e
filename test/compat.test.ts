/**
 * The compatibility matrix (docs/compatibility.md, issue #12): small models of the common
 * families exported by `torch.onnx.export` at opsets 7–17, in eval and training mode, plus
 * opset-7/8 files written with onnx.helper (fixtures/compat, made by
 * scripts/gen_compat_models.py; no Python needed here). Each row: the imported model computes
 * PyTorch's eval() output and the original file's output, `inspect`'s import report says what was
 * upgraded or normalised, every Conv/Gemm/MatMul with a weight can take a quadratic term, and for
 * the gradient rows one SGD step (lr 1) through the public Trainer moves every parameter by
 * PyTorch's own gradient.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { Graph, Tensor } from '../src/index.js';
import {
  decodeModel,
  encodeModel,
  importModel,
  OnnxFormatError,
  quadParamNames,
  quadratize,
  Session,
  Trainer,
} from '../src/index.js';
import { GraphBuilder } from '../src/ir/builder.js';
import { emptyGraph } from '../src/ir/graph.js';
import { tensor } from '../src/ir/tensor.js';
import { describeNormalize, transpose } from '../src/passes/normalize-export.js';
import { describeUpgrade } from '../src/passes/upgrade-opset.js';
import { expectAllClose } from './helpers/allclose.js';

interface FixtureTensor {
  dims: number[];
  data: number[];
}
interface Export {
  file: string;
  opset: number;
  mode: 'eval' | 'train';
  /** Training exports: eval() output with the running statistics the export's trace updated. */
  logits?: FixtureTensor;
}
interface Fixture {
  model: string;
  exports: Export[];
  input: FixtureTensor;
  [output: string]: unknown;
  labels?: number[];
  loss?: number;
  grads?: Record<string, FixtureTensor>;
}

const dir = fileURLToPath(new URL('../fixtures/compat/', import.meta.url));
const load = (name: string): Fixture =>
  JSON.parse(readFileSync(`${dir}${name}.json`, 'utf8')) as Fixture;

const MODELS = [
  'cnn',
  'legacy',
  'resnet',
  'mobilenet',
  'efficientnet',
  'vit',
  'legacy_opset7_nearest',
  'legacy_opset8_linear',
];

/** Graph outputs compared, with their fixture key (torch exports name theirs `logits`). */
function outputsOf(fx: Fixture): string[] {
  return fx.model.startsWith('legacy_opset') ? ['probs', 'top', 'top_i'] : ['logits'];
}

async function runGraph(g: Graph, fx: Fixture): Promise<Record<string, ArrayLike<number>>> {
  const session = await Session.create(g);
  const out = await session.run({
    input: { dtype: 'float32', dims: fx.input.dims, data: Float32Array.from(fx.input.data) },
  });
  await session.release();
  const res: Record<string, ArrayLike<number>> = {};
  for (const [k, v] of Object.entries(out))
    res[k] = Array.from(v.data as ArrayLike<number | bigint>, Number);
  return res;
}

async function runOriginal(file: string, fx: Fixture): Promise<Record<string, ArrayLike<number>>> {
  const s = await ort.InferenceSession.create(file);
  const out = await s.run({
    input: new ort.Tensor('float32', Float32Array.from(fx.input.data), fx.input.dims),
  });
  const res: Record<string, ArrayLike<number>> = {};
  for (const [k, v] of Object.entries(out))
    res[k] = Array.from(v.data as ArrayLike<number | bigint>, Number);
  await s.release();
  return res;
}

describe('compatibility matrix: PyTorch exports import with their outputs', () => {
  for (const name of MODELS) {
    const fx = load(name);
    for (const ex of fx.exports) {
      it(`${name} opset ${ex.opset} ${ex.mode}-mode export: PyTorch's eval() output, the file's output, adaptable layers`, async () => {
        const file = `${dir}${ex.file}`;
        const { graph, notes } = await importModel(file);
        // What was upgraded is reported (inspect prints it): every file below 18 is upgraded.
        const up = notes.upgraded;
        assert.ok(up, 'an upgrade report');
        assert.equal(up.fromOpset, ex.opset);
        assert.equal(graph.opset, 18);
        assert.match(describeUpgrade(up), new RegExp(`^upgraded from opset ${ex.opset} to 18`));
        if (ex.opset < 11 && name.startsWith('legacy'))
          assert.ok(
            Object.keys(up.rewritten).some((k) => /Resize/.test(k)),
            `Upsample/Resize-10 rewritten: ${JSON.stringify(up.rewritten)}`,
          );
        const norm = notes.normalized;
        if (ex.mode === 'train' && name !== 'vit')
          assert.ok((norm?.inference['BatchNormalization'] ?? 0) > 0, 'BN put in inference form');
        for (const n of graph.nodes) {
          if (n.opType === 'BatchNormalization') assert.equal(n.outputs.length, 1, n.name);
          assert.notEqual(n.opType, 'Upsample');
        }

        const ours = await runGraph(graph, fx);
        const orig = await runOriginal(file, fx);
        for (const o of outputsOf(fx)) {
          const expected = (o === 'logits' && ex.logits) || (fx[o] as FixtureTensor);
          if (o === 'top_i') {
            assert.deepEqual(Array.from(ours[o]!), expected.data, 'TopK indices');
            continue;
          }
          // PyTorch computed in float64 from the same float32 weights.
          expectAllClose(ours[o]!, expected.data, {
            rtol: 1e-4,
            atol: 1e-5,
            what: `${ex.file} ${o} vs PyTorch`,
          });
          // The upgraded graph computes what onnxruntime computes for the original file (a
          // training export's file normalises with batch statistics: not an inference model).
          if (ex.mode === 'train') continue;
          expectAllClose(ours[o]!, orig[o]!, {
            rtol: 1e-5,
            atol: 1e-6,
            what: `${ex.file} ${o} vs the original file`,
          });
        }

        // Every Conv/Gemm/MatMul with a weight is adaptable (a weight read through Transpose
        // counts as constant): only products of two activations (attention's q·kᵀ, a·v) are
        // refused for their "weight".
        const q = quadratize(graph, { rank: 2 });
        const prod = new Map(graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
        const fromActivations = (w: string | undefined) =>
          !!w && !!prod.get(w)?.inputs.every((i) => !graph.initializers.has(i));
        const refused = q.targets.filter(
          (t) => /weight/.test(t.reason) && !t.matched && !fromActivations(t.weight),
        );
        assert.deepEqual(
          refused.map((t) => `${t.node}: ${t.reason}`),
          [],
        );
        assert.ok(q.targets.some((t) => t.matched));
      });
    }
  }
});

/** PyTorch's gradient in the layout the imported graph stores the parameter in. */
function torchGrad(g: FixtureTensor, perm: number[] | undefined): Tensor {
  const t: Tensor = { dtype: 'float64', dims: g.dims, data: Float64Array.from(g.data) };
  return perm ? transpose(t, perm) : t;
}

describe('compatibility matrix: one SGD step gives PyTorch gradients', () => {
  for (const name of ['resnet', 'mobilenet', 'efficientnet', 'vit']) {
    const fx = load(name);
    for (const ex of fx.exports.filter((e) => e.mode === 'train')) {
      it(`${name} opset ${ex.opset} training-mode export: Δparam = −grad (≤ 1e-3 of the largest, per tensor) and the loss`, async () => {
        const { graph, notes } = await importModel(`${dir}${ex.file}`);
        const grads = fx.grads!;
        const perms = new Map(
          (notes.normalized?.folded ?? [])
            .filter((f) => f.op === 'Transpose')
            .map((f) => [f.name, f.perm!]),
        );
        if (name === 'vit') assert.ok(perms.size >= 6, 'Linear weights stored transposed');
        const params = Object.keys(grads);
        for (const p of params) assert.ok(graph.initializers.has(p), `parameter ${p} imported`);
        const batch = fx.labels!.length;
        const trainer = await Trainer.create(graph, {
          batchSize: batch,
          loss: { kind: 'cross_entropy' },
          optimizer: { kind: 'sgd' },
          groups: [{ name: 'all', params, lr: 1 }],
          batchNorm: 'train',
          dropout: false,
        });
        const step = await trainer.trainStep({
          x: Float32Array.from(fx.input.data),
          y: Int32Array.from(fx.labels!),
          size: batch,
        });
        const after = trainer.currentModel().initializers;
        await trainer.release();
        expectAllClose([step.loss], [fx.loss!], { rtol: 1e-5, atol: 0, what: 'loss' });
        // A gradient that is zero in exact arithmetic (a bias before a batch-statistics
        // BatchNormalization, the key bias of attention) is float rounding on both sides: such
        // tensors are held to 1e-3 of 1e-4 of the model's largest gradient instead.
        const overall = Math.max(...params.flatMap((p) => grads[p]!.data.map(Math.abs)));
        for (const p of params) {
          const g = torchGrad(grads[p]!, perms.get(p));
          const before = graph.initializers.get(p)!;
          assert.deepEqual(after.get(p)!.dims, g.dims, p);
          const delta = Array.from(before.data as Float32Array, (v, i) => {
            return v - Number(after.get(p)!.data[i]);
          });
          const largest = Math.max(...Array.from(g.data as Float64Array, Math.abs));
          expectAllClose(delta, g.data as Float64Array, {
            rtol: 0,
            atol: 1e-3 * Math.max(largest, 1e-4 * overall),
            what: `${ex.file} ${p}`,
          });
        }
      });
    }
  }

  it('vit training-mode export: the Linear layers get quadratic terms named after their weights, and a step trains them', async () => {
    const fx = load('vit');
    const { graph } = await importModel(`${dir}vit_opset13_train.onnx`);
    const q = quadratize(graph, { rank: 2 });
    const matched = q.targets.filter((t) => t.matched && t.op === 'MatMul').map((t) => t.weight);
    for (const w of ['attn.q.weight', 'attn.k.weight', 'attn.v.weight', 'attn.proj.weight'])
      assert.ok(matched.includes(w), `${w} adapted (${matched.join(', ')})`);
    const names = quadParamNames(q.graph);
    assert.ok(names.includes('attn.q.weight.quad_u'), names.join(', '));
    // U = 0: the quadratized model still computes the base model's output.
    const base = await runGraph(graph, fx);
    const quad = await runGraph(q.graph, fx);
    expectAllClose(quad['logits']!, base['logits']!, { rtol: 0, atol: 1e-6, what: 'U = 0' });
    const batch = fx.labels!.length;
    const trainer = await Trainer.create(q.graph, {
      batchSize: batch,
      loss: { kind: 'cross_entropy' },
      optimizer: { kind: 'sgd' },
      groups: [{ name: 'quadratic', params: names, lr: 0.1 }],
    });
    const step = await trainer.trainStep({
      x: Float32Array.from(fx.input.data),
      y: Int32Array.from(fx.labels!),
      size: batch,
    });
    const u = trainer.currentModel().initializers.get('attn.q.weight.quad_u')!;
    await trainer.release();
    expectAllClose([step.loss], [fx.loss!], { rtol: 1e-5, atol: 0, what: 'loss at U = 0' });
    assert.ok(
      Array.from(u.data as Float32Array).some((v) => v !== 0),
      'the zero factor U moved',
    );
  });
});

describe('inspect reports what the import upgraded and normalised', () => {
  const bin = fileURLToPath(new URL('../bin/quadranet.js', import.meta.url));
  const inspect = (file: string, ...args: string[]) =>
    spawnSync(process.execPath, [bin, 'inspect', `${dir}${file}`, '--latency-runs', '1', ...args], {
      encoding: 'utf8',
    });

  it('an opset-7 file: the upgrade and its rewrites, in text and JSON', () => {
    const r = inspect('legacy_opset7_nearest.onnx');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /on import: upgraded from opset 7 to 18 \(.*1 Upsample→Resize/);
    for (const k of ['Slice attrs→inputs', 'Pad attrs→inputs', 'Clip attrs→inputs', 'TopK k→input'])
      assert.ok(r.stdout.includes(`1 ${k}`), k);
    assert.match(r.stdout, /1 Softmax coerce-to-2D→Flatten\/Reshape/);
    const j = JSON.parse(inspect('legacy_opset7_nearest.onnx', '--json').stdout) as {
      upgraded: { fromOpset: number; rewritten: Record<string, number> };
    };
    assert.equal(j.upgraded.fromOpset, 7);
    assert.equal(j.upgraded.rewritten['Upsample→Resize'], 1);
  });

  it('a training-mode export: BatchNormalization and Dropout in inference form; Linear weights stored transposed', async () => {
    const r = inspect('cnn_opset13_train.onnx');
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /on import: training-mode nodes put in inference form \(2 BatchNormalization, 1 Dropout\)/,
    );
    // (The ViT rows have a fixed batch, which the CLI refuses; the report is the same object.)
    const { notes } = await importModel(`${dir}vit_opset13_train.onnx`);
    assert.match(
      describeNormalize(notes.normalized!) ?? '',
      /^6 weight\(s\) stored transposed \(attn\.q\.weight, attn\.k\.weight, attn\.v\.weight and 3 more\)$/,
    );
  });
});

describe('opset upgrade: refusals and rank-free forms', () => {
  /** A one-node opset-`opset` file around `build`'s node (input x [2, 3, 4, 4]). */
  function file(opset: number, build: (b: GraphBuilder, x: string) => string): Uint8Array {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', [2, 3, 4, 4]);
    b.output(build(b, x), 'float32', []);
    return encodeModel(g, { opset });
  }

  it('refuses a per-activation BatchNormalization (spatial 0) in one line naming file and node', () => {
    const bytes = file(7, (b, x) => {
      const c = b.constant(tensor('float32', [3], [1, 1, 1]), 'p');
      return b.op('BatchNormalization', [x, c, c, c, c], { spatial: 0 }, { name: 'bn' });
    });
    assert.throws(
      () => decodeModel(bytes, { file: 'old.onnx' }),
      (e: Error) =>
        e instanceof OnnxFormatError &&
        /^old\.onnx: node 'bn' \(BatchNormalization\): per-activation.*opset 7/.test(e.message) &&
        !e.message.includes('\n'),
    );
  });

  it('refuses nearest scaling that enlarges one axis and shrinks another', () => {
    const bytes = file(7, (b, x) =>
      b.op('Upsample', [x], { scales: [1, 1, 2, 0.5], mode: 'nearest' }, { name: 'up' }),
    );
    assert.throws(() => decodeModel(bytes, { file: 'up.onnx' }), /up\.onnx: node 'up'.*enlarges/);
  });

  it('Softmax over a non-last axis keeps the coerce-to-2D meaning (values vs the original file)', async () => {
    const bytes = file(11, (b, x) => b.op('Softmax', [x], { axis: 2 }, { name: 'sm' }));
    const g = decodeModel(bytes);
    assert.deepEqual(
      g.nodes.map((n) => n.opType),
      ['Flatten', 'Softmax', 'Shape', 'Reshape'],
    );
    const data = Float32Array.from({ length: 96 }, (_, i) => Math.sin(i));
    const fx = { input: { dims: [2, 3, 4, 4], data: Array.from(data) } } as unknown as Fixture;
    const s = await Session.create(g);
    const ours = await s.run({ x: { dtype: 'float32', dims: [2, 3, 4, 4], data } });
    await s.release();
    const o = await ort.InferenceSession.create(bytes);
    const orig = await o.run({ x: new ort.Tensor('float32', data, fx.input.dims) });
    const name = g.outputs[0]!.name;
    expectAllClose(ours[name]!.data as Float32Array, orig[name]!.data as Float32Array, {
      rtol: 1e-6,
      atol: 1e-7,
      what: 'Softmax-11 axis 2',
    });
  });
});
