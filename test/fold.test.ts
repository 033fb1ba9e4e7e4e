import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { main } from '../src/cli/main.js';
import { importModel } from '../src/io/import/importers.js';
import { GraphBuilder } from '../src/ir/builder.js';
import type { Graph } from '../src/ir/graph.js';
import { cloneGraph, GraphError, emptyGraph } from '../src/ir/graph.js';
import { decodeModel, encodeModel } from '../src/ir/onnx.js';
import { inferShapes } from '../src/ir/shapes/index.js';
import type { DType } from '../src/ir/tensor.js';
import { int64s, ONNX_DTYPE, scalar, tensor, toNumbers } from '../src/ir/tensor.js';
import { setAdapterEnabled, unload } from '../src/passes/adapter.js';
import {
  describeFold,
  foldConstants,
  foldOnImport,
  FOLD_MAX_ELEMENTS,
} from '../src/passes/fold.js';
import { quadParamNames, quadratize } from '../src/passes/quadratize.js';
import { Session } from '../src/runtime/session.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';
import { expectAllClose } from './helpers/allclose.js';

function randomFloats(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
}

type Feeds = Record<string, { dims: number[]; data: Float32Array }>;

/** Runs a graph on onnxruntime-node; outputs by name. */
async function run(g: Graph, feeds: Feeds): Promise<Record<string, Float32Array>> {
  const s = await Session.create(g);
  const res = await s.run(
    Object.fromEntries(
      Object.entries(feeds).map(([k, v]) => [k, { dtype: 'float32' as const, ...v }]),
    ),
  );
  await s.release();
  return Object.fromEntries(Object.entries(res).map(([k, v]) => [k, v.data as Float32Array]));
}

/** Both graphs on the same feeds: every output equal (folding computes no float math). */
async function sameOutputs(a: Graph, b: Graph, feeds: Feeds): Promise<void> {
  const [ya, yb] = [await run(a, feeds), await run(b, feeds)];
  assert.deepEqual(Object.keys(yb).sort(), Object.keys(ya).sort());
  for (const k of Object.keys(ya)) expectAllClose(yb[k]!, ya[k]!, { rtol: 0, atol: 0, what: k });
}

const ops = (g: Graph) => g.nodes.map((n) => n.opType);

/** Encoded bytes and a deep copy: compared after a pass to prove the input was not modified. */
function snapshot(g: Graph) {
  return { bytes: Buffer.from(encodeModel(g)), nodes: structuredClone(g.nodes) };
}
function assertUnchanged(g: Graph, s: ReturnType<typeof snapshot>): void {
  assert.deepEqual(g.nodes, s.nodes);
  assert.ok(Buffer.from(encodeModel(g)).equals(s.bytes), 'the input graph was modified');
}

/** x [batch?, 3, 4] → Reshape to [d0, 12] via Shape → Gather → Mul → Unsqueeze → Concat. */
function flattenGraph(batch: number | string): Graph {
  const g = emptyGraph('g');
  const b = new GraphBuilder(g);
  const x = b.input('x', 'float32', [batch, 3, 4]);
  const shape = b.op('Shape', [x], {}, { name: 'shape' });
  const d0 = b.op('Gather', [shape, b.constant(scalar(0, 'int64'))], { axis: 0 }, { name: 'g0' });
  const d1 = b.op('Gather', [shape, b.constant(scalar(1, 'int64'))], { axis: 0 }, { name: 'g1' });
  const d2 = b.op('Gather', [shape, b.constant(scalar(2, 'int64'))], { axis: 0 }, { name: 'g2' });
  const flat = b.op('Mul', [d1, d2], {}, { name: 'flat' });
  const target = b.concat([b.unsqueeze(d0, [0]), b.unsqueeze(flat, [0])], 0);
  const y = b.op('Reshape', [b.relu(x), target], {}, { name: 'reshape' });
  b.output(b.op('Identity', [y], {}, { outputs: ['y'] }), 'float32', [batch, 12]);
  return g;
}

describe('foldConstants on small graphs', () => {
  it('removes Identity nodes, rewiring readers; an Identity producing a graph output keeps its name', async () => {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', ['batch', 4]);
    g.initializers.set('w', tensor('float32', [4, 3], randomFloats(12, 1)));
    const w = b.identity('w');
    const h = b.relu(b.identity(b.matmul(x, w)));
    b.output(b.op('Identity', [h], {}, { outputs: ['out'] }), 'float32', ['batch', 3]);
    const before = snapshot(g);
    const r = foldConstants(g);
    assertUnchanged(g, before);
    assert.deepEqual(ops(r.graph), ['MatMul', 'Relu']);
    assert.deepEqual(r.folded, { Identity: 3 });
    assert.deepEqual(r.graph.nodes[0]!.inputs, ['x', 'w']);
    assert.deepEqual(r.graph.nodes[1]!.outputs, ['out']);
    assert.deepEqual(
      r.graph.outputs.map((v) => v.name),
      ['out'],
    );
    await sameOutputs(g, r.graph, { x: { dims: [2, 4], data: randomFloats(8, 2) } });
  });

  it('keeps an Identity that maps a graph input (or another output) to a graph output', async () => {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', [2]);
    const r1 = b.relu(x);
    b.output(r1, 'float32', [2]);
    b.output(b.op('Identity', [x], {}, { outputs: ['copy'] }), 'float32', [2]);
    b.output(b.op('Identity', [r1], {}, { outputs: ['copy2'] }), 'float32', [2]);
    const r = foldConstants(g);
    assert.deepEqual(ops(r.graph), ['Relu', 'Identity', 'Identity']);
    assert.deepEqual(r.folded, {});
    assert.equal(describeFold(r), undefined);
    await sameOutputs(g, r.graph, { x: { dims: [2], data: Float32Array.of(-1, 2) } });
  });

  it('folds a fully static Shape → Gather → Mul → Concat → Reshape chain into an initializer', async () => {
    const g = flattenGraph(2);
    const before = snapshot(g);
    const r = foldConstants(g);
    assertUnchanged(g, before);
    assert.deepEqual(ops(r.graph), ['Relu', 'Reshape']);
    assert.deepEqual(r.folded, {
      Shape: 1,
      Gather: 3,
      Mul: 1,
      Unsqueeze: 2,
      Concat: 1,
      Identity: 1,
    });
    const target = r.graph.initializers.get(r.graph.nodes[1]!.inputs[1]!)!;
    assert.equal(target.dtype, 'int64');
    assert.deepEqual(toNumbers(target), [2, 12]);
    // Only the folded target and nothing else: the Gather indices and Unsqueeze axes are gone.
    assert.deepEqual([...r.graph.initializers.keys()], [r.graph.nodes[1]!.inputs[1]!]);
    assert.equal(r.removedInitializers.length, 5);
    assert.equal(
      describeFold(r),
      'folded 9 nodes (3 Gather, 2 Unsqueeze, 1 Concat, 1 Identity, 1 Mul, 1 Shape)',
    );
    await sameOutputs(g, r.graph, { x: { dims: [2, 3, 4], data: randomFloats(24, 3) } });
  });

  it('keeps Shape of a dynamic batch (and its Gather(0)), folds the Gathers of static dims', async () => {
    const g = flattenGraph('batch');
    const r = foldConstants(g);
    assert.deepEqual(ops(r.graph), ['Shape', 'Gather', 'Unsqueeze', 'Concat', 'Relu', 'Reshape']);
    assert.deepEqual(r.folded, { Gather: 2, Mul: 1, Unsqueeze: 1, Identity: 1 });
    const gather = r.graph.nodes.find((n) => n.opType === 'Gather')!;
    assert.equal(gather.name, 'g0');
    // The static part of the target became the constant [12].
    const concat = r.graph.nodes.find((n) => n.opType === 'Concat')!;
    assert.deepEqual(toNumbers(r.graph.initializers.get(concat.inputs[1]!)!), [12]);
    assert.deepEqual(inferShapes(r.graph).values.get('y')!.shape, ['batch', 12]);
    for (const n of [1, 5]) {
      await sameOutputs(g, r.graph, { x: { dims: [n, 3, 4], data: randomFloats(12 * n, n) } });
    }
  });

  /**
   * One int32/int64 constant expression per folding op, each read by a Cast to float that is
   * a graph output: onnxruntime computes the unfolded graph, and the folded one must match it.
   */
  it('evaluates Gather, Unsqueeze, Squeeze, Concat, Slice, Cast, Mul, Add, Div, Sub and Reshape like onnxruntime', async () => {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', [1]);
    const c = (dtype: DType, dims: number[], values: number[]) =>
      b.constant(tensor(dtype, dims, values));
    const m = c('int64', [2, 3], [1, -2, 3, 40, 5, -6]);
    const v = c('int64', [5], [10, 20, 30, 40, 50]);
    const results: Record<string, string> = {
      gather: b.op('Gather', [m, c('int64', [2], [-1, 0])], { axis: 1 }),
      gatherScalar: b.op('Gather', [v, c('int32', [], [3])], { axis: 0 }),
      unsqueeze: b.op('Unsqueeze', [m, c('int64', [2], [0, -1])]),
      squeeze: b.op('Squeeze', [c('int64', [1, 3, 1], [7, 8, 9]), c('int64', [1], [2])]),
      squeezeAll: b.op('Squeeze', [c('int64', [1, 3, 1], [7, 8, 9])]),
      concat: b.op('Concat', [m, c('int64', [2, 1], [100, 200])], { axis: -1 }),
      slice: b.op('Slice', [
        v,
        c('int64', [1], [-1]),
        c('int64', [1], [-9]),
        c('int64', [1], [0]),
        c('int64', [1], [-2]),
      ]),
      slice2d: b.op('Slice', [
        m,
        c('int64', [2], [0, 1]),
        c('int64', [2], [2, 2 ** 62]),
        c('int64', [2], [0, 1]),
      ]),
      castDown: b.op('Cast', [c('int64', [2], [2 ** 33 + 5, -7])], { to: ONNX_DTYPE.int32 }),
      castUp: b.op('Cast', [c('int32', [2], [7, -8])], { to: ONNX_DTYPE.int64 }),
      add: b.op('Add', [m, c('int64', [2, 1], [1000, 2000])]),
      sub: b.op('Sub', [c('int32', [3], [1, 2, 3]), c('int32', [], [10])]),
      mul: b.op('Mul', [m, c('int64', [3], [2, 3, 4])]),
      div: b.op('Div', [c('int64', [4], [7, -7, 9, -9]), c('int64', [4], [2, 2, -4, -4])]),
      reshape: b.op('Reshape', [m, c('int64', [3], [0, -1, 1])]),
    };
    for (const [name, value] of Object.entries(results)) {
      const f = b.op('Cast', [value], { to: ONNX_DTYPE.float32 }, { outputs: [name] });
      b.output(f, 'float32', inferShapes(g).values.get(value)!.shape);
    }
    b.output(b.relu(x), 'float32', [1]);
    const r = foldConstants(g);
    assert.deepEqual(
      ops(r.graph).filter((op) => op !== 'Cast'),
      ['Relu'],
    );
    assert.equal(ops(r.graph).length, Object.keys(results).length + 1);
    await sameOutputs(g, r.graph, { x: { dims: [1], data: Float32Array.of(1) } });
  });

  it('never computes float math, tensors over the size cap, divisions by zero or bad indices', async () => {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', [3]);
    const fl = b.op('Add', [
      b.constant(tensor('float32', [3], [1, 2, 3])),
      b.constant(tensor('float32', [3], [4, 5, 6])),
    ]);
    const big = b.op('Add', [
      b.constant(int64s(Array.from({ length: FOLD_MAX_ELEMENTS + 1 }, (_, i) => i))),
      b.constant(scalar(1, 'int64')),
    ]);
    const div0 = b.op('Div', [b.constant(int64s([4, 5, 6])), b.constant(int64s([1, 0, 1]))]);
    const oob = b.op('Gather', [b.constant(int64s([4, 5, 6])), b.constant(int64s([3]))]);
    const toFloat = b.op('Cast', [b.constant(int64s([1, 2, 3]))], { to: ONNX_DTYPE.float32 });
    b.output(b.add(b.add(x, fl), toFloat), 'float32', [3]);
    for (const v of [big, div0, oob])
      b.output(b.cast(v, 'float32'), 'float32', inferShapes(g).values.get(v)!.shape);
    const r = foldConstants(g);
    assert.deepEqual(r.folded, {});
    assert.equal(r.graph.nodes.length, g.nodes.length);
    // With a smaller cap even a 3-element int Add is left alone, and with a larger one `big` folds.
    const small = emptyGraph('g');
    const bs = new GraphBuilder(small);
    bs.input('x', 'float32', [1]);
    const sum = bs.op('Add', [bs.constant(int64s([1, 2, 3])), bs.constant(int64s([1, 1, 1]))]);
    bs.output(bs.cast(sum, 'float32'), 'float32', [3]);
    assert.deepEqual(foldConstants(small, { maxElements: 2 }).folded, {});
    assert.deepEqual(foldConstants(small).folded, { Add: 1 });
    assert.deepEqual(foldConstants(g, { maxElements: 4096 }).folded, { Add: 1 });
    assert.throws(() => foldConstants(g, { maxElements: 0 }), RangeError);
  });

  it('leaves a folding-op node that produces a graph output, and nodes of other domains', () => {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    b.input('x', 'float32', [2, 3]);
    b.output(b.op('Shape', ['x'], {}, { outputs: ['shape'] }), 'int64', [2]);
    const n = b.op('Gather', ['shape', b.constant(int64s([0]))], {}, { domain: 'com.example' });
    b.output(n, 'int64', [1]);
    const r = foldConstants(g);
    assert.deepEqual(ops(r.graph), ['Shape', 'Gather']);
    assert.deepEqual(r.folded, {});
  });

  it('refuses an invalid graph with a GraphError; the importer then keeps the graph as decoded', () => {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', [2]);
    b.output(b.op('Add', [x, 'missing'], {}, { name: 'adder' }), 'float32', [2]);
    assert.throws(
      () => foldConstants(g),
      (e: Error) => e instanceof GraphError && /adder/.test(e.message),
    );
    const kept = foldOnImport(g);
    assert.strictEqual(kept.graph, g);
    assert.equal(kept.report, undefined);
  });

  it('leaves a quadratic adapter intact: its disabled Identity is kept, and unload / enable still work', async () => {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', ['batch', 4]);
    g.initializers.set('w1', tensor('float32', [4, 5], randomFloats(20, 5)));
    g.initializers.set('w2', tensor('float32', [5, 3], randomFloats(15, 6)));
    const h = b.relu(b.op('MatMul', [x, 'w1'], {}, { name: 'fc1' }));
    const y = b.op('MatMul', [h, 'w2'], {}, { name: 'fc2' });
    b.output(b.op('Identity', [y], {}, { outputs: ['out'] }), 'float32', ['batch', 3]);
    const q = quadratize(g, { includeHead: true, rank: 2 }).graph;
    const off = setAdapterEnabled(q, false);
    const r = foldConstants(off);
    // The adapter's own (disabled) Identity nodes stay; the model's output Identity is not
    // renamed either, because its input is a value the adapter record names.
    assert.deepEqual(r.folded, {});
    assert.deepEqual(ops(r.graph), ops(off));
    assert.equal(ops(off).filter((op) => op === 'Identity').length, 3);
    const feeds = { x: { dims: [2, 4], data: randomFloats(8, 7) } };
    await sameOutputs(off, r.graph, feeds);
    await sameOutputs(q, setAdapterEnabled(r.graph, true), feeds);
    await sameOutputs(g, unload(r.graph), feeds);
  });
});

// ---------------------------------------------------------------------------------------------
// Models from exporters.

const fixture = (name: string) =>
  fileURLToPath(new URL(`../fixtures/models/${name}`, import.meta.url));

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('models exported by torch.onnx.export, folded on import', () => {
  const io = JSON.parse(readFileSync(fixture('torch_cnn.io.json'), 'utf8'));
  for (const opset of [13, 17]) {
    it(`opset ${opset}: the static Unsqueeze folds, the batch Shape → Gather stays, outputs match PyTorch`, async () => {
      const file = fixture(`torch_cnn_opset${opset}.onnx`);
      const bytes = readFileSync(file);
      const imported = await importModel(file);
      // The adapter's base-model hash is of the file's bytes: folding does not touch it.
      assert.equal(imported.sha256, sha256(bytes));
      const g = imported.graph;
      assert.deepEqual(imported.notes.folded?.folded, { Unsqueeze: 1 });
      assert.deepEqual(ops(g), [
        'Conv',
        'Relu',
        'Conv',
        'Relu',
        'AveragePool',
        'Shape',
        'Gather',
        'Unsqueeze',
        'Concat',
        'Reshape',
        'Gemm',
      ]);
      assert.deepEqual(inferShapes(g).values.get('logits')!.shape, ['batch', 10]);
      const feeds = { input: { dims: io.input.dims, data: Float32Array.from(io.input.data) } };
      const ours = (await run(g, feeds))['logits']!;
      expectAllClose(ours, io.logits.data, { rtol: 1e-4, atol: 1e-5, what: 'vs PyTorch' });
      await sameOutputs(decodeModel(bytes), g, feeds);
    });

    it(`opset ${opset}: a train step builds through the batch Shape → Gather (folded once the batch is fixed)`, async () => {
      const { graph: q } = quadratize(
        (await importModel(fixture(`torch_cnn_opset${opset}.onnx`))).graph,
      );
      await quadStepTrains(q, randomFloats(4 * 16 * 16, 3), Int32Array.of(0, 1, 2, 3));
    });
  }
});

/**
 * A torch export with its `io.json` (batch 2): our outputs are PyTorch's, `quadratize` leaves them
 * unchanged, and one adapter train step runs with a finite loss and a non-zero gradient.
 */
async function matchesPyTorchAndTrains(
  g: Graph,
  io: { input: { dims: number[]; data: number[] }; logits: { data: number[] } },
): Promise<void> {
  const feeds = { input: { dims: io.input.dims, data: Float32Array.from(io.input.data) } };
  const ours = (await run(g, feeds))['logits']!;
  expectAllClose(ours, io.logits.data, { rtol: 1e-4, atol: 1e-5, what: 'vs PyTorch' });
  const { graph: q, targets } = quadratize(g);
  assert.ok(targets.length >= 4, `${targets.length} targets`);
  await sameOutputs(g, q, feeds);
  await quadStepTrains(q, feeds.input.data, Int32Array.of(0, 1));
}

/** One AdamW step on the quadratic parameters of `q`: a finite loss and a non-zero gradient. */
async function quadStepTrains(q: Graph, x: Float32Array, y: Int32Array): Promise<void> {
  const trainer = await Trainer.create(q, {
    batchSize: y.length,
    loss: { kind: 'cross_entropy' },
    optimizer: { kind: 'adamw' },
    groups: [{ name: 'quad', params: quadParamNames(q), lr: 1e-2 }],
  });
  try {
    const r = await trainer.trainStep({ x, y, size: y.length });
    assert.ok(Number.isFinite(r.loss) && r.gradNorm > 0, `loss ${r.loss}, |g| ${r.gradNorm}`);
  } finally {
    await trainer.release();
  }
}

describe('a ShuffleNet-style unit (torch.onnx.export, dynamic batch; scripts/gen_shuffle_model.py)', () => {
  // torch writes `x.view(b, 2, c/2, h, w).transpose(1, 2).reshape(b, -1, h, w)` and
  // `x.chunk(2, 1)` as Slices whose starts/ends come from Shape → Gather(1) of the shuffled
  // tensor: they fold only if the Reshape's -1 is known while the batch is symbolic.
  const file = fixture('torch_shuffle.onnx');
  const io = JSON.parse(readFileSync(fixture('torch_shuffle.io.json'), 'utf8'));

  it('the chunk Slices fold, outputs match PyTorch, a quadratic train step builds', async () => {
    const g = (await importModel(file)).graph;
    const shapes = inferShapes(g);
    const slices = g.nodes.filter((n) => n.opType === 'Slice');
    assert.equal(slices.length, 2);
    for (const n of slices) {
      assert.ok(g.initializers.has(n.inputs[1]!) && g.initializers.has(n.inputs[2]!), n.name);
      assert.deepEqual(shapes.values.get(n.outputs[0]!)!.shape, ['batch', 4, 8, 8]);
    }
    await matchesPyTorchAndTrains(g, io);
  });
});

describe("Swin's and ViT's shape arithmetic (torch.onnx.export, dynamic batch; scripts/gen_window_model.py)", () => {
  // Pads computed with Mod from the shape (one block's pads known only once the previous
  // block's have folded), `B * nh * nw` windows and back, torch.roll, and a class token
  // expanded to the batch through Where(Equal(shape, -1), 1, shape).
  const file = fixture('torch_window.onnx');
  const io = JSON.parse(readFileSync(fixture('torch_window.io.json'), 'utf8'));

  it('the pads fold, shapes are inferred with the batch open, outputs match PyTorch, it trains', async () => {
    const g = (await importModel(file)).graph;
    const pads = g.nodes.filter((n) => n.opType === 'Pad');
    assert.equal(pads.length, 2);
    for (const n of pads) assert.ok(g.initializers.has(n.inputs[1]!), `${n.name} pads folded`);
    const shapes = inferShapes(g);
    assert.deepEqual(shapes.values.get('logits')!.shape, ['batch', 10]);
    const windows = g.nodes.filter(
      (n) => n.opType === 'Reshape' && shapes.values.get(n.outputs[0]!)!.shape[0] === 'batch*9',
    );
    assert.equal(windows.length, 2, 'the two window partitions: [batch*9, 9, 8]');
    await matchesPyTorchAndTrains(g, io);
  });
});

describe('initializers an exporter merged from equal tensors', () => {
  // torch.onnx.export (eval mode) gave a fresh DenseNet one zero tensor for 62 biases, read
  // through Identity nodes; trained as they are, those layers would be tied together.
  it('a repeated-value tensor read by several layers is untied on import; a varied one stays shared', async () => {
    const g = emptyGraph('merged');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', ['batch', 4]);
    g.initializers.set('zeros', tensor('float32', [4], [0, 0, 0, 0]));
    g.initializers.set('tied', tensor('float32', [4, 4], randomFloats(16, 9)));
    g.initializers.set('w1', tensor('float32', [4, 4], randomFloats(16, 7)));
    let h = b.op('Gemm', [x, 'w1', b.op('Identity', ['zeros'])], { transB: 1 });
    h = b.op('Relu', [h]);
    h = b.op('Gemm', [h, 'tied', b.op('Identity', ['zeros'])], { transB: 1 });
    h = b.op('Gemm', [h, 'tied', 'zeros'], { transB: 1 });
    b.output(h, 'float32', ['batch', 4]);
    const dir = mkdtempSync(join(tmpdir(), 'quadranet-merged-'));
    try {
      const file = join(dir, 'merged.onnx');
      writeFileSync(file, encodeModel(g));
      const { graph, notes } = await importModel(file);
      assert.deepEqual(notes.normalized?.untied, [{ name: 'zeros', readers: 3 }]);
      const gemms = graph.nodes.filter((n) => n.opType === 'Gemm');
      const biases = gemms.map((n) => n.inputs[2]!);
      assert.equal(new Set(biases).size, 3, biases.join(', '));
      const weights = gemms.map((n) => n.inputs[1]!);
      assert.deepEqual(weights, ['w1', 'tied', 'tied']);
      await sameOutputs(g, graph, { x: { dims: [2, 4], data: randomFloats(8, 4) } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a tf2onnx-pattern Keras CNN (built with onnx.helper, not an actual tf2onnx export: tf2onnx cannot be installed here)', () => {
  const file = fixture('tf2onnx_style_cnn.onnx');
  const bytes = readFileSync(file);
  const io = JSON.parse(readFileSync(fixture('tf2onnx_style_cnn.io.json'), 'utf8'));
  const feeds = { input_1: { dims: io.input_1.dims, data: Float32Array.from(io.input_1.data) } };

  it('imports and folds: Identity nodes and the static Flatten arithmetic go, the dynamic batch stays', async () => {
    const raw = decodeModel(bytes, { file });
    assert.equal(raw.nodes.filter((n) => n.opType === 'Identity').length, 3);
    assert.equal(raw.nodes.filter((n) => n.opType === 'Gather').length, 3);
    const { graph: g, notes } = await importModel(file);
    const report = notes.folded!;
    assert.deepEqual(report.folded, { Identity: 3, Gather: 3, Mul: 2, Unsqueeze: 1 });
    assert.deepEqual(report.removed, {});
    assert.deepEqual(ops(g), [
      'Transpose',
      'Conv',
      'Relu',
      'Conv',
      'Relu',
      'Transpose',
      // Keras Flatten's batch: Shape → Cast → Slice (StridedSlice) → Squeeze → ...
      'Shape',
      'Cast',
      'Slice',
      'Squeeze',
      'Unsqueeze',
      'Concat',
      'Cast',
      'Reshape',
      'MatMul',
      'Add',
      'Relu',
      'MatMul',
      'Add',
      'Softmax',
    ]);
    // The second Conv reads its kernel directly (it was a Constant read through an Identity),
    // and the Softmax produces the graph output under its original name.
    const conv2 = g.nodes.find((n) => n.name === 'model/conv2d_1/BiasAdd')!;
    assert.ok(g.initializers.has(conv2.inputs[1]!));
    assert.equal(g.nodes.at(-1)!.outputs[0], 'dense_1');
    assert.deepEqual(
      g.outputs.map((v) => v.name),
      ['dense_1'],
    );
    const shapes = inferShapes(g);
    assert.deepEqual(shapes.unsupported, []);
    assert.deepEqual(shapes.values.get('model/flatten/Reshape:0')!.shape, ['unk__47', 400]);
    assert.deepEqual(shapes.values.get('dense_1')!.shape, ['unk__47', 10]);
  });

  it('outputs match the PyTorch reference, and the original file on onnxruntime, at batch 2 and 3', async () => {
    const { graph: g } = await importModel(file);
    const ours = (await run(g, feeds))['dense_1']!;
    expectAllClose(ours, io.dense_1.data, { rtol: 1e-4, atol: 1e-6, what: 'vs PyTorch' });
    const session = await ort.InferenceSession.create(bytes);
    const orig = await session.run({
      input_1: new ort.Tensor('float32', feeds.input_1.data, feeds.input_1.dims),
    });
    // Not bitwise: folding turns Transpose(Constant) chains into new initializers, so onnxruntime
    // may pick other kernels and summation orders; seen 1 ulp apart once in two CI runs.
    expectAllClose(ours, orig['dense_1']!.data as Float32Array, {
      rtol: 1e-6,
      atol: 1e-7,
      what: 'vs original file',
    });
    const x3 = randomFloats(3 * 12 * 12 * 3, 9).map((v) => Math.abs(v));
    const ours3 = (await run(g, { input_1: { dims: [3, 12, 12, 3], data: x3 } }))['dense_1']!;
    const orig3 = await session.run({ input_1: new ort.Tensor('float32', x3, [3, 12, 12, 3]) });
    expectAllClose(ours3, orig3['dense_1']!.data as Float32Array, {
      rtol: 1e-6,
      atol: 1e-7,
      what: 'batch 3',
    });
  });

  it('quadranet inspect lists both convs and the first Dense as adaptable, and says what was folded', async () => {
    const lines: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => void lines.push(args.join(' '));
    let code: number;
    try {
      code = await main(['inspect', file, '--json', '--latency-runs', '0']);
    } finally {
      console.log = log;
    }
    assert.equal(code, 0);
    const j = JSON.parse(lines.join('\n'));
    assert.deepEqual(
      j.layers.map((l: { node: string; adaptable: boolean }) => [l.node, l.adaptable]),
      [
        // The 3-channel stem's rank-4 term would cost more than the layer: not a default target.
        ['model/conv2d/BiasAdd', false],
        ['model/conv2d_1/BiasAdd', true],
        ['model/dense/MatMul', true],
        ['model/dense_1/MatMul', false],
      ],
    );
    assert.match(j.layers[0].reason, /^image stem \(3 input channels\): its term would cost more/);
    assert.deepEqual(j.folded.folded, { Identity: 3, Gather: 3, Mul: 2, Unsqueeze: 1 });
    assert.deepEqual(j.unsupportedForShapes, []);
    lines.length = 0;
    console.log = (...args: unknown[]) => void lines.push(args.join(' '));
    try {
      code = await main(['inspect', file, '--latency-runs', '0']);
    } finally {
      console.log = log;
    }
    assert.equal(code, 0);
    assert.ok(
      lines.includes('on import: folded 9 nodes (3 Gather, 3 Identity, 2 Mul, 1 Unsqueeze)'),
      lines.join('\n'),
    );
  });

  it('--input-shape may not change a fixed input dim (folded constants would go stale)', async () => {
    const errors: string[] = [];
    const err = console.error;
    const log = console.log;
    console.error = (...args: unknown[]) => void errors.push(args.join(' '));
    console.log = () => {};
    try {
      assert.equal(await main(['inspect', file, '--input-shape', '16x16x3']), 1);
      assert.equal(
        await main(['inspect', file, '--input-shape', '12x12x3', '--latency-runs', '0']),
        0,
      );
    } finally {
      console.error = err;
      console.log = log;
    }
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0]!, /--input-shape 16x16x3 changes the model's fixed input \[12,12,3\]/);
  });

  it('quadratize leaves the outputs unchanged, and a few adaptation steps lower the loss', async (t) => {
    const { graph: g } = await importModel(file);
    // Named op types: the 3-channel stem is adapted too (by default it is left out as too dear).
    const { graph: q, targets } = quadratize(g, { targets: ['Conv', 'MatMul'] });
    assert.deepEqual(
      targets.filter((r) => r.matched).map((r) => r.node),
      ['model/conv2d/BiasAdd', 'model/conv2d_1/BiasAdd', 'model/dense/MatMul'],
    );
    const base = (await run(g, feeds))['dense_1']!;
    const yq = (await run(q, feeds))['dense_1']!;
    const max = Math.max(...Array.from(base, Math.abs));
    expectAllClose(yq, base, { rtol: 0, atol: 1e-6 * max, what: 'quadratized' });
    // Cross-entropy wants logits: the Softmax's input becomes the output. The train step has a
    // fixed batch (buildTrainGraph sets it), and with it fixed every shape is static, so the
    // fold removes the whole Flatten arithmetic: the autodiff has no rule for Shape, Gather or
    // Cast (integer ops), so the step cannot be built through them.
    const N = 8;
    const logits = cloneGraph(q);
    const sm = logits.nodes.find((n) => n.opType === 'Softmax')!;
    logits.nodes = logits.nodes.filter((n) => n !== sm);
    logits.outputs = [{ name: sm.inputs[0]!, dtype: 'float32', shape: ['unk__47', 10] }];
    logits.inputs[0]!.shape[0] = N;
    const fixed = foldConstants(logits);
    assert.deepEqual(fixed.folded, {
      Shape: 1,
      Cast: 2,
      Slice: 1,
      Squeeze: 1,
      Unsqueeze: 1,
      Concat: 1,
    });
    assert.ok(!ops(fixed.graph).includes('Shape'));
    // Two synthetic classes: dark images (class 0) and bright ones (class 1).
    const rng = new Rng(12);
    const y = Int32Array.from({ length: N }, (_, i) => i % 2);
    const x = Float32Array.from(
      { length: N * 12 * 12 * 3 },
      (_, i) => 0.6 * y[Math.floor(i / (12 * 12 * 3))]! + 0.4 * rng.next(),
    );
    const trainer = await Trainer.create(fixed.graph, {
      batchSize: N,
      loss: { kind: 'cross_entropy' },
      optimizer: { kind: 'adamw' },
      // The quadratic terms plus the classifier head, as `quadranet adapt` trains by default.
      groups: [
        { name: 'quad', params: quadParamNames(fixed.graph), lr: 3e-2 },
        {
          name: 'head',
          params: [
            'model/dense_1/MatMul/ReadVariableOp:0',
            'model/dense_1/BiasAdd/ReadVariableOp:0',
          ],
          lr: 3e-2,
        },
      ],
    });
    const losses: number[] = [];
    for (let s = 0; s < 6; s++) losses.push((await trainer.trainStep({ x, y, size: N })).loss);
    await trainer.release();
    t.diagnostic(`cross-entropy ${losses.map((l) => l.toFixed(4)).join(' → ')}`);
    assert.ok(losses.every(Number.isFinite));
    assert.ok(losses[5]! < 0.8 * losses[0]!, `loss did not fall: ${losses.join(', ')}`);
  });
});

describe('folding Mod (Swin pads its windows with (w − H % w) % w)', () => {
  for (const [fmod, expected] of [
    [0, [2, -2, -1, 1]], // the divisor's sign, as Python's %
    [1, [-1, 1, -1, 1]], // the dividend's, as C's fmod
  ] as const) {
    it(`fmod = ${fmod}: folded and inferred alike`, () => {
      const g = emptyGraph('mod');
      const b = new GraphBuilder(g);
      const m = b.op(
        'Mod',
        [b.constant(int64s([-7, 7, -7, 7])), b.constant(int64s([3, -3, -3, 3]))],
        { fmod },
      );
      b.output(b.op('Cast', [m], { to: ONNX_DTYPE.float32 }), 'float32', [4]);
      assert.deepEqual(inferShapes(g).constants.get(m), expected);
      const r = foldConstants(g);
      assert.equal(r.folded['Mod'], 1);
      assert.deepEqual(toNumbers(r.graph.initializers.get(m)!), expected);
    });
  }
});
