import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../src/cli/errors.js';
import { encodeIdx } from '../src/data/idx.js';
import { loadMnist } from '../src/data/mnist.js';
import { loadDataset } from '../src/data/spec.js';
import { loadAdapter } from '../src/workflow/adapter-files.js';
import { ADAPTER_CONFIG_FILE, readAdapterConfig } from '../src/io/formats/adapter-config.js';
import { QuadranetFileError } from '../src/io/errors.js';
import type { Graph } from '../src/ir/graph.js';
import { GraphError } from '../src/ir/graph.js';
import { decodeModel, encodeModel } from '../src/ir/onnx.js';
import { NetBuilder } from '../src/models/net-builder.js';
import { mlp } from '../src/models/zoo.js';
import { quadratize } from '../src/passes/quadratize.js';
import { replaceHead } from '../src/passes/replace-head.js';
import { Session } from '../src/runtime/session.js';
import { Rng } from '../src/util/random.js';
import { classificationMetrics } from '../src/workflow/evaluate.js';
import type { RunOptions } from '../src/workflow/run.js';
import { runMethod } from '../src/workflow/run.js';
import { expectAllClose } from './helpers/allclose.js';

const dir = mkdtempSync(join(tmpdir(), 'qn-classes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function runGraph(g: Graph, dims: number[], seed = 1): Promise<Float32Array> {
  const s = await Session.create(g);
  const x = new Rng(seed).uniformArray(
    dims.reduce((p, d) => p * d, 1),
    0,
    1,
  );
  const r = await s.run({ [g.inputs[0]!.name]: { dtype: 'float32', dims, data: x } });
  await s.release();
  return r[g.outputs[0]!.name]!.data as Float32Array;
}

describe('replaceHead: a new head of another width', () => {
  it('Gemm head (transB = 1): new width, seeded, the rest untouched, pure', async () => {
    const g = mlp({ seed: 1 });
    const before = encodeModel(g);
    const { graph: h, report } = replaceHead(g, { numClasses: 4, seed: 7 });
    assert.deepEqual(report, {
      node: 'head',
      op: 'Gemm',
      from: 10,
      to: 4,
      params: ['head.weight', 'head.bias'],
    });
    assert.deepEqual(h.outputs[0]!.shape, ['batch', 4]);
    assert.deepEqual(h.initializers.get('head.weight')!.dims, [4, 128]);
    assert.deepEqual(h.initializers.get('head.bias')!.dims, [4]);
    assert.equal(h.initializers.get('fc1.weight'), g.initializers.get('fc1.weight'));
    assert.deepEqual(encodeModel(g), before, 'the input graph is unchanged');
    const w = h.initializers.get('head.weight')!.data as Float32Array;
    assert.ok(
      w.every((v) => Math.abs(v) <= 1 / Math.sqrt(128)),
      'uniform ±1/√fan_in',
    );
    assert.ok(new Set(w).size > 500, 'random, not constant');
    const again = replaceHead(g, { numClasses: 4, seed: 7 }).graph;
    assert.deepEqual(again.initializers.get('head.weight')!.data, w, 'same seed, same head');
    const other = replaceHead(g, { numClasses: 4, seed: 8 }).graph;
    assert.notDeepEqual(other.initializers.get('head.weight')!.data, w);
    assert.equal((await runGraph(h, [2, 1, 28, 28])).length, 8);
  });

  it('MatMul + bias Add + Softmax, and a TF.js-style 1×1 conv head → Reshape [-1, C] → Softmax', async () => {
    const d = new NetBuilder([1, 4, 4], 2, 'dense').flatten().dense('fc', 16, 6);
    d.x = d.b.op('Softmax', [d.x], { axis: -1 });
    const { graph: dh, report: dr } = replaceHead(d.finish(6, 'p'), { numClasses: 3, seed: 1 });
    assert.deepEqual(dr.params, ['fc.weight', 'fc.bias']);
    assert.deepEqual(dh.initializers.get('fc.weight')!.dims, [16, 3]);
    assert.deepEqual(dh.initializers.get('fc.bias')!.dims, [3]);
    const p = await runGraph(dh, [2, 1, 4, 4]);
    assert.equal(p.length, 6);
    expectAllClose([p[0]! + p[1]! + p[2]!], [1], { rtol: 1e-6, what: 'still probabilities' });

    const c = new NetBuilder([3, 4, 4], 2, 'conv').conv('c1', 3, 8, 3).relu().globalAvgPool();
    c.conv('logits_conv', 8, 1001, 1);
    c.x = c.b.reshape(c.x, [-1, 1001]);
    c.x = c.b.op('Softmax', [c.x], { axis: -1 });
    const { graph: ch, report: cr } = replaceHead(c.finish(1001, 'p'), { numClasses: 5, seed: 1 });
    assert.equal(cr.node, 'logits_conv');
    assert.deepEqual(ch.initializers.get('logits_conv.weight')!.dims, [5, 8, 1, 1]);
    assert.deepEqual(ch.outputs[0]!.shape, ['batch', 5]);
    assert.equal((await runGraph(ch, [3, 3, 4, 4])).length, 15, 'the Reshape target was rewritten');
  });

  it('refuses what it cannot resize, naming the node', () => {
    const r = new NetBuilder([3, 4, 4], 1, 'r')
      .conv('c1', 3, 5, 3)
      .relu()
      .globalAvgPool()
      .flatten();
    assert.throws(
      () => replaceHead(r.finish(5, 'p'), { numClasses: 2, seed: 0 }),
      (e: Error) => e instanceof GraphError && /comes from Relu/.test(e.message),
    );
    assert.throws(
      () => replaceHead(quadratize(mlp()).graph, { numClasses: 2, seed: 0 }),
      /before adding the quadratic adapter/,
    );
    assert.throws(() => replaceHead(mlp(), { numClasses: 0, seed: 0 }), /≥ 1/);
  });
});

/** MNIST digits 0-3 as an idx directory: a 4-class task. */
async function fourClassDir(): Promise<string> {
  const d = join(dir, 'digits0-3');
  mkdirSync(d, { recursive: true });
  for (const [split, file, limit] of [
    ['train', 'train', 1500],
    ['test', 't10k', 800],
  ] as const) {
    const ds = await loadMnist({ split, limit });
    const keep = [...ds.labels.keys()].filter((i) => ds.labels[i]! < 4);
    const images = new Float32Array(keep.length * 784);
    keep.forEach((k, i) => images.set(ds.images.subarray(k * 784, (k + 1) * 784), i * 784));
    writeFileSync(
      join(d, `${file}-images-idx3-ubyte`),
      encodeIdx({ dtype: 'float', dims: [keep.length, 28, 28], data: images }),
    );
    writeFileSync(
      join(d, `${file}-labels-idx1-ubyte`),
      encodeIdx({
        dtype: 'ubyte',
        dims: [keep.length],
        data: Uint8Array.from(keep, (k) => ds.labels[k]!),
      }),
    );
  }
  return d;
}

describe('class count: a mismatch is refused, --num-classes replaces the head', () => {
  let data: string;
  let pretrained: Graph;
  const sha = 'a'.repeat(64);
  const common = (over: Partial<RunOptions>): RunOptions => ({
    method: 'quadratic-adapt',
    base: { graph: pretrained, name: 'mlp10.onnx', sha256: sha },
    data,
    outDir: join(dir, `run-${Math.random().toString(36).slice(2)}`),
    epochs: 2,
    batchSize: 32,
    lr: 3e-3,
    quadLr: 3e-3,
    optimizer: 'adamw',
    valFraction: 0,
    seed: 3,
    quad: { rank: 2 },
    latency: { batchSizes: [1], runs: 1 },
    ...over,
  });

  before(async () => {
    data = `idx:${await fourClassDir()}`;
    // A 10-class MNIST classifier to transfer from.
    const out = join(dir, 'pretrain');
    await runMethod({
      ...common({}),
      method: 'fine-tune',
      base: { graph: mlp({ seed: 4, width: 0.5 }), name: 'mlp', sha256: sha },
      data: 'mnist',
      outDir: out,
      epochs: 3,
      lr: 1e-2,
      limit: 960,
      testLimit: 100,
    });
    pretrained = decodeModel(readFileSync(join(out, 'model.onnx')));
    writeFileSync(join(dir, 'mlp10.onnx'), encodeModel(pretrained));
  });

  it('a 10-output model on 4-class data: one line naming both counts and the flag', async () => {
    await assert.rejects(runMethod(common({})), (e: Error) => {
      assert.ok(e instanceof UserError, String(e));
      assert.doesNotMatch(e.message, /\n/);
      assert.match(e.message, /outputs 10 classes but .* has 4; add --num-classes 4/);
      return true;
    });
    await assert.rejects(
      runMethod(common({ numClasses: 5 })),
      (e: Error) =>
        e instanceof UserError &&
        /--num-classes 5 .* has 4 classes; use --num-classes 4/.test(e.message),
    );
    await assert.rejects(
      runMethod(common({ numClasses: 4, trainHead: false })),
      (e: Error) => e instanceof UserError && /drop --no-train-head/.test(e.message),
    );
  });

  it('--num-classes 4: a new head trains, model.onnx has 4 outputs and the adapter reloads onto the base', async (t) => {
    const out = join(dir, 'four');
    const notes: string[] = [];
    const r = await runMethod(common({ numClasses: 4, outDir: out, onNote: (l) => notes.push(l) }));
    assert.deepEqual(r.info.head, { node: 'head', op: 'Gemm', from: 10, to: 4, seed: 3 });
    assert.ok(
      notes.some((n) => /replaced head 'head' \(Gemm, 10 → 4 outputs/.test(n)),
      notes.join('\n'),
    );
    const acc = r.eval!.accuracy;
    t.diagnostic(`4-class test accuracy with the new head: ${acc}`);
    assert.ok(acc > 0.9, `accuracy ${acc} (chance 0.25)`);
    assert.equal(r.eval!.base, undefined, 'no side-by-side with a head for other classes');

    const written = decodeModel(readFileSync(join(out, 'model.onnx')));
    assert.deepEqual(written.outputs[0]!.shape.slice(1), [4]);
    const test = await loadDataset(data, { split: 'test' });
    const fromFile = await classificationMetrics(written, { ...test, shape: [1, 28, 28] });
    assert.equal(fromFile.accuracy, acc, 'eval of model.onnx gives the trained accuracy');

    const config = await readAdapterConfig(out);
    assert.deepEqual(config.head, { node: 'head', numClasses: 4, seed: 3 });
    assert.deepEqual(config.savedBaseParams?.find((p) => p.name === 'head.weight')?.shape, [4, 64]);
    // apply: the adapter (with its head) back onto the 10-class base file.
    const base = decodeModel(readFileSync(join(dir, 'mlp10.onnx')));
    const loaded = await loadAdapter(out, base, sha);
    assert.deepEqual(loaded.outputs[0]!.shape.slice(1), [4]);
    const a = await runGraph(loaded, [5, 1, 28, 28]);
    const b = await runGraph(written, [5, 1, 28, 28]);
    expectAllClose(a, b, { rtol: 0, atol: 0, what: 'reloaded adapter vs model.onnx' });
    const fromAdapter = await classificationMetrics(loaded, { ...test, shape: [1, 28, 28] });
    assert.equal(fromAdapter.accuracy, acc);

    // A config whose head record does not fit the base is refused with the file named.
    const cfgPath = join(out, ADAPTER_CONFIG_FILE);
    const raw = JSON.parse(readFileSync(cfgPath, 'utf8'));
    raw.head.node = 'fc1';
    writeFileSync(cfgPath, JSON.stringify(raw));
    await assert.rejects(
      loadAdapter(out, base, sha),
      (e: Error) =>
        e instanceof QuadranetFileError && /its head is 'head', not 'fc1'/.test(e.message),
    );
    raw.head = { node: 'head', numClasses: 0, seed: 1 };
    writeFileSync(cfgPath, JSON.stringify(raw));
    await assert.rejects(loadAdapter(out, base, sha), /head is not \{node, numClasses, seed\}/);
  });

  it('train --method head-only --num-classes 4: model.onnx carries the trained new head', async () => {
    const r = await runMethod(common({ method: 'head-only', numClasses: 4, epochs: 1, lr: 1e-2 }));
    const written = decodeModel(readFileSync(join(r.files.find((f) => f.endsWith('model.onnx'))!)));
    assert.deepEqual(written.outputs[0]!.shape.slice(1), [4]);
    assert.equal(r.files.filter((f) => f.includes('adapter')).length, 0, 'no adapter files');
    assert.ok(r.eval!.accuracy > 0.8, `head-only accuracy ${r.eval!.accuracy} (chance 0.25)`);
  });

  it('CLI: the error names --num-classes, and adapt --num-classes runs; inspect says what the output is', () => {
    const bin = fileURLToPath(new URL('../bin/quadranet.js', import.meta.url));
    const cli = (...args: string[]) => {
      const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: dir });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const model = join(dir, 'mlp10.onnx');
    const bad = cli('adapt', model, '--data', data, '-o', join(dir, 'cli-bad'), '--limit', '64');
    assert.notEqual(bad.status, 0);
    const lines = bad.stderr.split('\n').filter((l) => l.trim() && !/onnxruntime|\[W:/.test(l));
    assert.equal(lines.length, 1, bad.stderr);
    assert.match(lines[0]!, /outputs 10 classes but .* has 4; add --num-classes 4/);
    const ok = cli(
      'adapt',
      model,
      '--data',
      data,
      '-o',
      join(dir, 'cli-ok'),
      '--num-classes',
      '4',
      '--epochs',
      '1',
      '--limit',
      '128',
      '--test-limit',
      '64',
      '--plain',
    );
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /output 'logits' \(4 units\) is taken as logits/);
    assert.match(ok.stderr, /replaced head 'head' \(Gemm, 10 → 4 outputs/);
    const ev = cli('eval', model, '--data', data, '--limit', '64');
    assert.notEqual(ev.status, 0);
    assert.match(ev.stderr, /outputs 10 classes but .* has 4; .*--num-classes 4/);
    assert.doesNotMatch(ev.stderr, /\n\s+at /);
    const insp = cli('inspect', model, '--latency-runs', '0');
    assert.equal(insp.status, 0, insp.stderr);
    assert.match(insp.stdout, /^classifier: output 'logits' \(10 units\) is taken as logits/m);
  });
});
