import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { backward } from '../src/autodiff/backward.js';
import { importModel } from '../src/io/import/importers.js';
import { GraphBuilder } from '../src/ir/builder.js';
import type { Graph } from '../src/ir/graph.js';
import { emptyGraph, GraphError, implicitInputs, topoSort } from '../src/ir/graph.js';
import { decodeModel, encodeModel } from '../src/ir/onnx.js';
import { inferShapes } from '../src/ir/shapes/index.js';
import { tensor } from '../src/ir/tensor.js';
import { inlineConstantIfs } from '../src/passes/control-flow.js';
import { foldConstants } from '../src/passes/fold.js';
import { Session } from '../src/runtime/session.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';
import { prepareMethod } from '../src/workflow/methods.js';
import { expectAllClose } from './helpers/allclose.js';

// Issue #18: an If whose condition folds to a constant is replaced on import by the branch it
// takes; other If nodes stay, run as before, and training refuses them by name. The models are
// scripted PyTorch exports from scripts/gen_export_models.py.

const file = (name: string) =>
  fileURLToPath(new URL(`../fixtures/models/${name}`, import.meta.url));

const rng = new Rng(5);
const X = Float32Array.from({ length: 2 * 3 * 8 * 8 }, () => rng.normal());

/** The model's output on X with onnxruntime, from the original file or from our graph. */
async function outputOf(src: string | Graph): Promise<Float32Array> {
  if (typeof src === 'string') {
    const s = await ort.InferenceSession.create(readFileSync(src));
    const out = await s.run({ input: new ort.Tensor('float32', X, [2, 3, 8, 8]) });
    return out['output']!.data as Float32Array;
  }
  const s = await Session.create(src);
  const out = await s.run({ input: { dtype: 'float32', dims: [2, 3, 8, 8], data: X } });
  await s.release();
  return out['output']!.data as Float32Array;
}

describe('If with a constant condition is folded on import', () => {
  it('torch_if_static.onnx: the taken branch replaces the If, outputs unchanged', async () => {
    const { graph, notes } = await importModel(file('torch_if_static.onnx'));
    const ops = graph.nodes.map((n) => n.opType);
    assert.ok(!ops.includes('If'), `If left: ${ops.join(',')}`);
    assert.ok(ops.includes('Relu') && !ops.includes('Tanh'), `wrong branch: ${ops.join(',')}`);
    assert.equal(notes.folded?.folded['If'], 1);
    expectAllClose(await outputOf(graph), await outputOf(file('torch_if_static.onnx')), {
      rtol: 1e-6,
      atol: 1e-6,
    });
  });

  it('the folded model adapts with falling loss', async () => {
    const { graph } = await importModel(file('torch_if_static.onnx'));
    const prepared = prepareMethod('quadratic-adapt', graph, { lr: 0.02, seed: 1 });
    const trainer = await Trainer.create(prepared.model, {
      batchSize: 2,
      loss: { kind: 'cross_entropy' },
      optimizer: { kind: 'adamw' },
      groups: prepared.groups,
      batchNorm: prepared.batchNorm,
      session: { threads: 1 },
    });
    const batch = { x: X, y: Int32Array.of(1, 3), size: 2 };
    const losses: number[] = [];
    for (let s = 0; s < 15; s++) losses.push((await trainer.trainStep(batch)).loss);
    await trainer.release();
    assert.ok(losses.at(-1)! < 0.7 * losses[0]!, `loss ${losses.join(' ')}`);
  });

  for (const [cond, dtype, branch] of [
    [1, 'bool', 'then'],
    [0, 'bool', 'else'],
    [3, 'int64', 'then'],
    [-3, 'int64', 'else'],
  ] as const) {
    const how = dtype === 'bool' ? `a bool initializer ${cond}` : `Not(Less(${cond}, 0))`;
    it(`${how} takes the ${branch} branch (branch values renamed)`, async () => {
      // y = If(c) then { t = x * 2; t + k } else { x - k }, with k a branch initializer.
      const sub = (op: string, factor: boolean): Graph => {
        const g = emptyGraph(op);
        const b = new GraphBuilder(g);
        g.initializers.set('k', tensor('float32', [], [0.5]));
        const t = factor ? b.mul('x', b.scalar(2)) : 'x';
        b.output(b.op(op, [t, 'k'], {}, { outputs: ['t'] }), 'float32', [2, 3]);
        return g;
      };
      const g = emptyGraph('main');
      const b = new GraphBuilder(g);
      b.input('x', 'float32', [2, 3]);
      g.initializers.set('c0', tensor(dtype, [], [cond]));
      // An integer condition is computed, as exporters do: Not(Less(n, 0)).
      const c = dtype === 'bool' ? 'c0' : b.op('Not', [b.op('Less', ['c0', b.ints([0])])]);
      const [y] = b.opN(
        'If',
        [c],
        {
          then_branch: { type: 'graph', value: sub('Add', true) },
          else_branch: { type: 'graph', value: sub('Sub', false) },
        },
        { outputs: ['y'] },
      );
      b.output(b.op('Relu', [y!], {}, { outputs: ['t'] }), 'float32', [2, 3]);
      const before = await runXY(g);
      const { inlined } = inlineConstantIfs(g);
      assert.equal(inlined.length, 1);
      const folded = foldConstants(decodeModel(encodeModel(g))).graph;
      assert.ok(!folded.nodes.some((n) => n.opType === 'If'));
      expectAllClose(await runXY(folded), before, { rtol: 0, atol: 0 });
      expectAllClose(
        before,
        XY.map((v) => Math.max(0, branch === 'then' ? v * 2 + 0.5 : v - 0.5)),
        { rtol: 1e-6, atol: 1e-6 },
      );
    });
  }
});

const XY = Float32Array.of(0.25, -1, 2, -0.75, 0.1, 1.5);
async function runXY(g: Graph): Promise<Float32Array> {
  const s = await Session.create(g);
  const out = await s.run({ x: { dtype: 'float32', dims: [2, 3], data: XY } });
  await s.release();
  return out[g.outputs[0]!.name]!.data as Float32Array;
}

describe('an If that cannot be folded', () => {
  it('stays, round-trips to onnxruntime with the same outputs, and has inferred shapes', async () => {
    const { graph } = await importModel(file('torch_if_dynamic.onnx'));
    const iff = graph.nodes.find((n) => n.opType === 'If');
    assert.ok(iff, 'the If was folded');
    expectAllClose(await outputOf(graph), await outputOf(file('torch_if_dynamic.onnx')), {
      rtol: 1e-6,
      atol: 1e-6,
    });
    const shapes = inferShapes(graph);
    assert.deepEqual(shapes.values.get(iff.outputs[0]!)?.shape.slice(1), [8, 8, 8]);
  });

  it('training through it is refused in one line naming the node', async () => {
    const { graph } = await importModel(file('torch_if_dynamic.onnx'));
    const iff = graph.nodes.find((n) => n.opType === 'If')!;
    // An explicit rank adapts the 3-channel first conv too (the default ranks skip stems), so
    // the gradient must flow back through the If.
    const prepared = prepareMethod('quadratic-adapt', graph, {
      lr: 0.02,
      seed: 1,
      quad: { rank: 4 },
    });
    await assert.rejects(
      Trainer.create(prepared.model, {
        batchSize: 2,
        loss: { kind: 'cross_entropy' },
        optimizer: { kind: 'adamw' },
        groups: prepared.groups,
        session: { threads: 1 },
      }),
      (e: unknown) =>
        e instanceof GraphError &&
        e.message.includes(`node '${iff.name}' (If)`) &&
        /control flow/.test(e.message) &&
        !e.message.includes('\n'),
    );
  });

  it('layers after it still adapt (targets restricted to them)', async () => {
    const { graph } = await importModel(file('torch_if_dynamic.onnx'));
    const conv2 = graph.nodes.find((n) => n.opType === 'Conv' && n.name.includes('conv2'))!;
    const prepared = prepareMethod('quadratic-adapt', graph, {
      lr: 0.02,
      seed: 1,
      quad: { targets: [conv2.name] },
    });
    const trainer = await Trainer.create(prepared.model, {
      batchSize: 2,
      loss: { kind: 'cross_entropy' },
      optimizer: { kind: 'adamw' },
      groups: prepared.groups,
      batchNorm: prepared.batchNorm,
      session: { threads: 1 },
    });
    const batch = { x: X, y: Int32Array.of(0, 2), size: 2 };
    const losses: number[] = [];
    for (let s = 0; s < 15; s++) losses.push((await trainer.trainStep(batch)).loss);
    await trainer.release();
    assert.ok(losses.at(-1)! < 0.7 * losses[0]!, `loss ${losses.join(' ')}`);
  });

  it('backward names a Loop on the path too', () => {
    const g = emptyGraph('loop');
    const b = new GraphBuilder(g);
    b.input('x', 'float32', [2]);
    const body = emptyGraph('body');
    const y = b.op('Loop', ['', ''], { body: { type: 'graph', value: body } }, { name: 'my_loop' });
    g.nodes.at(-1)!.inputs = ['', '', 'x'];
    const loss = b.op('ReduceSum', [b.mul(y, 'x')], { keepdims: 0 });
    assert.throws(
      () => backward(g, { loss, wrt: ['x'] }),
      (e: unknown) => e instanceof GraphError && /my_loop/.test(e.message),
    );
  });
});

describe('an unfolded If in a quadratized model', () => {
  it('reads the quadratic layer output: runs in order and starts equal to the base model', async () => {
    const { graph } = await importModel(file('torch_if_dynamic.onnx'));
    const prepared = prepareMethod('quadratic-adapt', graph, { lr: 0.02, seed: 1 });
    // The adapted conv's Add comes after the If in node order; the If reads it inside a branch.
    const order = topoSort(prepared.model);
    const at = order.findIndex((n) => n.opType === 'If');
    const reads = implicitInputs(order[at]!);
    assert.ok(reads.length > 0);
    for (const v of reads) {
      const p = order.findIndex((n) => n.outputs.includes(v));
      assert.ok(p >= 0 && p < at, `'${v}' is produced at ${p}, after the If at ${at}`);
    }
    expectAllClose(await outputOf(prepared.model), await outputOf(graph), {
      rtol: 1e-6,
      atol: 1e-6,
    });
  });
});

describe('topoSort and implicit reads', () => {
  it('orders the producer of a value read inside a branch before the If', () => {
    const branch = (op: string): Graph => {
      const g = emptyGraph(op);
      g.nodes.push({
        name: `${op}_n`,
        opType: op,
        domain: '',
        inputs: ['h'],
        outputs: [`${op}_o`],
        attrs: {},
      });
      g.outputs.push({ name: `${op}_o`, dtype: 'float32', shape: [2] });
      return g;
    };
    const g = emptyGraph('t');
    g.inputs.push(
      { name: 'x', dtype: 'float32', shape: [2] },
      { name: 'c', dtype: 'bool', shape: [] },
    );
    g.nodes.push(
      {
        name: 'if',
        opType: 'If',
        domain: '',
        inputs: ['c'],
        outputs: ['y'],
        attrs: {
          then_branch: { type: 'graph', value: branch('Relu') },
          else_branch: { type: 'graph', value: branch('Neg') },
        },
      },
      { name: 'make_h', opType: 'Exp', domain: '', inputs: ['x'], outputs: ['h'], attrs: {} },
    );
    assert.deepEqual(implicitInputs(g.nodes[0]!), ['h']);
    assert.deepEqual(
      topoSort(g).map((n) => n.name),
      ['make_h', 'if'],
    );
  });
});
