import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import type { AttrInput } from '../src/ir/builder.js';
import { GraphBuilder } from '../src/ir/builder.js';
import type { Graph } from '../src/ir/graph.js';
import { attrInt, GraphError, emptyGraph } from '../src/ir/graph.js';
import { tensor, toNumbers } from '../src/ir/tensor.js';
import { NetBuilder } from '../src/models/net-builder.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';
import { learnableParams } from '../src/workflow/params.js';
import type { HostTensor } from '../src/runtime/session.js';
import { Session } from '../src/runtime/session.js';
import { setTrainingMode, unshareRunningStats } from '../src/passes/training-mode.js';
import { expectAllClose } from './helpers/allclose.js';

// PyTorch float64 references (fixtures/README.md), run here in float32: forward outputs and
// gradients are compared at rtol 1e-4 / atol 1e-5.
const TOL = { rtol: 1e-4, atol: 1e-5 };

interface FixTensor {
  dims: number[];
  data: number[];
}
interface FixCase {
  name: string;
  op: string;
  attrs: Record<string, AttrInput>;
  inputs: (FixTensor | null)[];
  outputs: FixTensor[];
  dy: FixTensor;
  grads: (FixTensor | null)[];
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/torch/ops.json', import.meta.url), 'utf8'),
) as { cases: FixCase[] };

function fixCase(name: string): FixCase {
  const c = fixture.cases.find((k) => k.name === name);
  if (!c) throw new Error(`fixture case ${name} not found`);
  return c;
}

const f32 = (t: FixTensor): HostTensor => ({
  dtype: 'float32',
  dims: t.dims,
  data: Float32Array.from(t.data),
});

/**
 * The case's op on float32 values: inputs with a reference gradient are graph inputs, the other
 * present inputs are initializers named `in<i>`. Returns the graph and the node's output names.
 */
function buildOp(c: FixCase): { graph: Graph; outs: string[]; names: string[] } {
  const g = emptyGraph('fixture');
  const b = new GraphBuilder(g);
  const names = c.inputs.map((t, i) => {
    if (!t) return '';
    const name = `in${i}`;
    if (c.grads[i]) b.input(name, 'float32', t.dims);
    else g.initializers.set(b.reserve(name), tensor('float32', t.dims, t.data));
    return name;
  });
  const outs = b.opN(c.op, names, c.attrs, { outputs: c.outputs.length });
  outs.forEach((o, k) => b.output(o, 'float32', c.outputs[k]!.dims));
  return { graph: g, outs, names };
}

/**
 * Appends loss = Σ(outputs[0] · dy) and its gradients w.r.t. the graph inputs, runs the result
 * and returns every graph output and gradient by name.
 */
async function runWithGrads(
  g: Graph,
  y: string,
  dy: FixTensor,
  feeds: Record<string, HostTensor>,
): Promise<{ values: Record<string, HostTensor>; grads: Map<string, string> }> {
  const b = new GraphBuilder(g);
  const dyName = b.constant(tensor('float32', dy.dims, dy.data), 'dy');
  const loss = b.op('ReduceSum', [b.mul(y, dyName)], { keepdims: 0 });
  const wrt = g.inputs.map((v) => v.name);
  const { graph, grads } = backward(g, { loss, wrt });
  for (const w of wrt) {
    const v = g.inputs.find((i) => i.name === w)!;
    graph.outputs.push({ name: grads.get(w)!, dtype: 'float32', shape: v.shape });
  }
  const s = await Session.create(graph);
  const values = await s.run(feeds);
  await s.release();
  return { values, grads };
}

const CASES = [
  'batchnorm_eval',
  'batchnorm_train',
  'layernorm_last',
  'layernorm_axis1',
  'gelu',
  'gelu_tanh',
  'softmax_axis_last',
  'softmax_axis1',
  'logsoftmax_axis_last',
  'logsoftmax_axis1',
];

describe('PyTorch fixtures: norms and activations, forward and backward (float32)', () => {
  for (const name of CASES) {
    it(name, async () => {
      const c = fixCase(name);
      const { graph, outs, names } = buildOp(c);
      const feeds: Record<string, HostTensor> = {};
      for (const v of graph.inputs) feeds[v.name] = f32(c.inputs[names.indexOf(v.name)]!);
      const { values, grads } = await runWithGrads(graph, outs[0]!, c.dy, feeds);
      outs.forEach((o, k) =>
        expectAllClose(values[o]!.data as Float32Array, c.outputs[k]!.data, {
          ...TOL,
          what: `${name} output ${k}`,
        }),
      );
      let checked = 0;
      c.grads.forEach((ref, i) => {
        if (!ref) return;
        const got = values[grads.get(names[i]!)!]!;
        assert.deepEqual(got.dims, ref.dims);
        expectAllClose(got.data as Float32Array, ref.data, {
          ...TOL,
          what: `${name} d/dinput${i}`,
        });
        checked++;
      });
      assert.ok(checked > 0);
    });
  }
});

/** The batchnorm_train case's BatchNormalization in inference form (no training_mode). */
function bnGraph(c: FixCase): Graph {
  const g = emptyGraph('fixture');
  const b = new GraphBuilder(g);
  const [x, scale, bias, mean, variance] = c.inputs as FixTensor[];
  b.input('x', 'float32', x!.dims);
  g.initializers.set('bn.weight', tensor('float32', scale!.dims, scale!.data));
  g.initializers.set('bn.bias', tensor('float32', bias!.dims, bias!.data));
  g.initializers.set('bn.running_mean', tensor('float32', mean!.dims, mean!.data));
  g.initializers.set('bn.running_var', tensor('float32', variance!.dims, variance!.data));
  const attrs: Record<string, AttrInput> = { epsilon: c.attrs['epsilon']! };
  if (c.attrs['momentum'] !== undefined) attrs['momentum'] = c.attrs['momentum'];
  const y = b.op(
    'BatchNormalization',
    ['x', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'],
    attrs,
    { name: 'bn', outputs: ['y'] },
  );
  b.output(y, 'float32', x!.dims);
  return g;
}

/** A structural snapshot of a graph, to show that a pass left it untouched. */
function snapshot(g: Graph): string {
  return JSON.stringify({
    nodes: g.nodes,
    inputs: g.inputs,
    outputs: g.outputs,
    init: [...g.initializers].map(([k, t]) => [k, t.dtype, t.dims, Array.from(t.data as never)]),
  });
}

describe('setTrainingMode', () => {
  it("batchNorm 'train': batch statistics, running-stat outputs equal PyTorch's", async () => {
    const c = fixCase('batchnorm_train');
    const g = bnGraph(c);
    const before = snapshot(g);
    const { graph, runningStats } = setTrainingMode(g, { batchNorm: 'train', dropout: false });
    assert.notEqual(graph, g);
    assert.equal(snapshot(g), before, 'the input graph is unchanged');
    const bn = graph.nodes.find((n) => n.opType === 'BatchNormalization')!;
    assert.equal(attrInt(bn, 'training_mode', 0), 1);
    assert.equal(bn.outputs.length, 3);
    assert.deepEqual(
      runningStats.map((r) => r.state),
      ['bn.running_mean', 'bn.running_var'],
    );
    assert.deepEqual(
      runningStats.map((r) => r.update),
      bn.outputs.slice(1),
    );
    const names = new Set([...g.initializers.keys(), 'x', 'y', 'bn']);
    for (const r of runningStats) {
      assert.ok(!names.has(r.update), `fresh name ${r.update}`);
      assert.ok(
        graph.outputs.some((o) => o.name === r.update),
        `${r.update} is a graph output`,
      );
    }

    const { values, grads } = await runWithGrads(graph, 'y', c.dy, { x: f32(c.inputs[0]!) });
    expectAllClose(values['y']!.data as Float32Array, c.outputs[0]!.data, { ...TOL, what: 'Y' });
    expectAllClose(values[runningStats[0]!.update]!.data as Float32Array, c.outputs[1]!.data, {
      ...TOL,
      what: 'running mean',
    });
    expectAllClose(values[runningStats[1]!.update]!.data as Float32Array, c.outputs[2]!.data, {
      ...TOL,
      what: 'running var',
    });
    expectAllClose(values[grads.get('x')!]!.data as Float32Array, c.grads[0]!.data, {
      ...TOL,
      what: 'dX',
    });
  });

  it("batchNorm 'frozen': inference mode with the stored statistics", async () => {
    const c = fixCase('batchnorm_eval');
    const trained = setTrainingMode(bnGraph(c), { batchNorm: 'train', dropout: false }).graph;
    // Freezing a trained graph returns it to inference mode and drops the extra outputs.
    const { graph, runningStats } = setTrainingMode(trained, {
      batchNorm: 'frozen',
      dropout: true,
    });
    assert.deepEqual(runningStats, []);
    const bn = graph.nodes.find((n) => n.opType === 'BatchNormalization')!;
    assert.equal(attrInt(bn, 'training_mode', 0), 0);
    assert.deepEqual(bn.outputs, ['y']);
    assert.deepEqual(
      graph.outputs.map((o) => o.name),
      ['y'],
    );
    assert.equal(trained.nodes[0]!.outputs.length, 3, 'the trained graph is unchanged');
    const { values, grads } = await runWithGrads(graph, 'y', c.dy, { x: f32(c.inputs[0]!) });
    expectAllClose(values['y']!.data as Float32Array, c.outputs[0]!.data, { ...TOL, what: 'Y' });
    expectAllClose(values[grads.get('x')!]!.data as Float32Array, c.grads[0]!.data, {
      ...TOL,
      what: 'dX',
    });
  });

  it('Dropout: training mode with a mask when dropout is on, inference mode when off', async () => {
    const g = emptyGraph('fixture');
    const b = new GraphBuilder(g);
    b.input('x', 'float32', [4, 8]);
    const y = b.op('Dropout', ['x', b.scalar(0.25)], {}, { name: 'drop', outputs: ['y'] });
    b.output(y, 'float32', [4, 8]);
    const before = snapshot(g);
    const on = setTrainingMode(g, { batchNorm: 'frozen', dropout: true }).graph;
    assert.equal(snapshot(g), before, 'the input graph is unchanged');
    const d = on.nodes.find((n) => n.opType === 'Dropout')!;
    assert.equal(d.inputs.length, 3);
    const tm = on.initializers.get(d.inputs[2]!)!;
    assert.equal(tm.dtype, 'bool');
    assert.equal(tm.data[0], 1);
    assert.equal(d.outputs.length, 2);
    const mask = d.outputs[1]!;
    on.outputs.push({ name: mask, dtype: 'bool', shape: [4, 8] });
    const xData = Float32Array.from({ length: 32 }, (_, i) => Math.cos(i) + 2);
    const dy = { dims: [4, 8], data: Array.from({ length: 32 }, (_, i) => Math.sin(i)) };
    const { values, grads } = await runWithGrads(on, 'y', dy, {
      x: { dtype: 'float32', dims: [4, 8], data: xData },
    });
    const m = values[mask]!.data as Uint8Array;
    assert.ok(m.some((v) => v === 0) && m.some((v) => v === 1), 'some kept, some dropped');
    expectAllClose(
      values[grads.get('x')!]!.data as Float32Array,
      dy.data.map((v, i) => (v * m[i]!) / 0.75),
      { rtol: 1e-6, atol: 1e-7, what: 'dX' },
    );

    // Switching it off again: no training_mode input, the flag initializer is gone.
    const off = setTrainingMode(on, { batchNorm: 'frozen', dropout: false }).graph;
    const d2 = off.nodes.find((n) => n.opType === 'Dropout')!;
    assert.equal(d2.inputs.length, 2);
    assert.ok(![...off.initializers.values()].some((t) => t.dtype === 'bool'));
    assert.equal(on.nodes.find((n) => n.opType === 'Dropout')!.inputs.length, 3);
    off.outputs = off.outputs.filter((o) => o.name !== mask);
    const r = await runWithGrads(off, 'y', dy, {
      x: { dtype: 'float32', dims: [4, 8], data: xData },
    });
    expectAllClose(r.values['y']!.data as Float32Array, xData, { rtol: 0, what: 'y' });
  });

  it('Dropout: a pre-opset-12 ratio attribute becomes the ratio input', async () => {
    const g = emptyGraph('fixture');
    const b = new GraphBuilder(g);
    b.input('x', 'float64', [4, 8]);
    const y = b.op('Dropout', ['x'], { ratio: 0.25 }, { outputs: ['y'] });
    b.output(y, 'float64', [4, 8]);
    const { graph } = setTrainingMode(g, { batchNorm: 'frozen', dropout: true });
    const d = graph.nodes[0]!;
    assert.equal(d.attrs['ratio'], undefined);
    assert.equal(graph.initializers.get(d.inputs[1]!)!.data[0], 0.25);
    assert.equal(g.nodes[0]!.attrs['ratio']?.value, 0.25, 'the input graph is unchanged');
    graph.outputs.push({ name: d.outputs[1]!, dtype: 'bool', shape: [4, 8] });
    const dy = { dims: [4, 8], data: Array.from({ length: 32 }, (_, i) => i - 10) };
    const feeds = {
      x: { dtype: 'float64' as const, dims: [4, 8], data: new Float64Array(32).fill(1) },
    };
    const bld = new GraphBuilder(graph);
    const dyName = bld.constant(tensor('float64', dy.dims, dy.data), 'dy');
    const loss = bld.op('ReduceSum', [bld.mul('y', dyName)], { keepdims: 0 });
    const bw = backward(graph, { loss, wrt: ['x'] });
    bw.graph.outputs.push({ name: bw.grads.get('x')!, dtype: 'float64', shape: [4, 8] });
    const s = await Session.create(bw.graph);
    const r = await s.run(feeds);
    await s.release();
    const m = r[d.outputs[1]!]!.data as Uint8Array;
    expectAllClose(
      r[bw.grads.get('x')!]!.data as Float64Array,
      dy.data.map((v, i) => (v * m[i]!) / 0.75),
      { rtol: 1e-12, what: 'dX' },
    );
  });

  it('validates before changing anything', () => {
    const c = fixCase('batchnorm_train');
    const g = bnGraph(c);
    // A running mean fed as a graph input cannot be trained.
    const mean = g.initializers.get('bn.running_mean')!;
    g.initializers.delete('bn.running_mean');
    g.inputs.push({ name: 'bn.running_mean', dtype: 'float32', shape: [...mean.dims] });
    const before = snapshot(g);
    assert.throws(
      () => setTrainingMode(g, { batchNorm: 'train', dropout: false }),
      (e: unknown) => e instanceof GraphError && /bn\.running_mean.*initializer/.test(e.message),
    );
    assert.equal(snapshot(g), before);
    assert.throws(
      () => setTrainingMode(g, { batchNorm: 'yes' as 'train', dropout: false }),
      GraphError,
    );
    assert.throws(
      () => setTrainingMode(g, { batchNorm: 'frozen', dropout: 1 as unknown as boolean }),
      GraphError,
    );
    // Two BatchNormalizations sharing one running statistic.
    const h = bnGraph(c);
    const b = new GraphBuilder(h);
    const y2 = b.op('BatchNormalization', [
      'y',
      'bn.weight',
      'bn.bias',
      'bn.running_mean',
      'bn.running_var',
    ]);
    b.output(y2, 'float32', c.inputs[0]!.dims);
    // Exporters merge equal initializers (a fresh DenseNet's zero running means and zero BN
    // biases became one tensor): each node gets its own copy of a running statistic that is
    // read elsewhere, so each updates its own; the bias keeps the original.
    assert.throws(
      () => setTrainingMode(h, { batchNorm: 'train', dropout: false }),
      (e: unknown) => e instanceof GraphError && /shares its running statistic/.test(e.message),
    );
    const shared = snapshot(h);
    const r = setTrainingMode(unshareRunningStats(h), { batchNorm: 'train', dropout: false });
    assert.equal(snapshot(h), shared);
    const states = r.runningStats.map((s) => s.state);
    assert.equal(new Set(states).size, 4, states.join(', '));
    const bns = r.graph.nodes.filter((n) => n.opType === 'BatchNormalization');
    for (const n of bns) {
      for (const k of [3, 4]) {
        expectAllClose(
          r.graph.initializers.get(n.inputs[k]!)!.data,
          h.initializers.get(k === 3 ? 'bn.running_mean' : 'bn.running_var')!.data,
          { rtol: 0, atol: 0 },
        );
      }
    }
    const merged = bnGraph(c);
    const mb = merged.nodes.find((n) => n.opType === 'BatchNormalization')!;
    mb.inputs[3] = 'bn.bias'; // the running mean merged into the bias tensor
    const m = setTrainingMode(unshareRunningStats(merged), { batchNorm: 'train', dropout: false });
    const mn = m.graph.nodes.find((n) => n.opType === 'BatchNormalization')!;
    assert.equal(mn.inputs[2], 'bn.bias');
    assert.notEqual(mn.inputs[3], 'bn.bias');
    assert.ok(!m.runningStats.some((s) => s.state === 'bn.bias'));
    // Nothing shared: the same graph back, no copy.
    const plain = bnGraph(c);
    assert.equal(unshareRunningStats(plain), plain);
  });
});

describe('training BatchNormalization statistics an exporter merged', () => {
  it('each layer updates its own copy; the exported model keeps them apart', async () => {
    const net = new NetBuilder([2, 6, 6], 5)
      .conv('c1', 2, 4, 3)
      .batchNorm('bn1', 4)
      .relu()
      .conv('c2', 4, 4, 3)
      .batchNorm('bn2', 4)
      .relu()
      .flatten()
      .linear('head', 144, 3);
    const g = net.finish(3);
    // As torch.onnx.export leaves equal tensors: bn2 reads bn1's running mean.
    const bn2 = g.nodes.find((n) => n.name === 'bn2')!;
    g.initializers.delete(bn2.inputs[3]!);
    bn2.inputs[3] = 'bn1.running_mean';
    const before = toNumbers(g.initializers.get('bn1.running_mean')!);
    const trainer = await Trainer.create(g, {
      batchSize: 4,
      loss: { kind: 'cross_entropy' },
      optimizer: { kind: 'sgd' },
      groups: [{ name: 'all', params: learnableParams(g), lr: 0.01 }],
      batchNorm: 'train',
    });
    try {
      const rng = new Rng(2);
      await trainer.trainStep({
        x: rng.uniformArray(4 * 72, 0, 1),
        y: Int32Array.of(0, 1, 2, 0),
        size: 4,
      });
      const m = trainer.currentModel();
      const [m1, m2] = m.nodes
        .filter((n) => n.opType === 'BatchNormalization')
        .map((n) => toNumbers(m.initializers.get(n.inputs[3]!)!));
      // Both moved from the shared start, each by its own layer's batch mean.
      assert.notDeepEqual(m1, before);
      assert.notDeepEqual(m2, before);
      assert.notDeepEqual(m1, m2);
    } finally {
      await trainer.release();
    }
  });
});
