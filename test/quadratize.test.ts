import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import { GraphBuilder } from '../src/ir/builder.js';
import type { Graph } from '../src/ir/graph.js';
import { cloneGraph, GraphError, emptyGraph } from '../src/ir/graph.js';
import { numel, tensor } from '../src/ir/tensor.js';
import { convnext, mlp, resnet } from '../src/models/zoo.js';
import { Session } from '../src/runtime/session.js';
import { Trainer } from '../src/runtime/trainer.js';
import type { QuadratizeOptions } from '../src/passes/quadratize.js';
import { quadParamNames, quadratize } from '../src/passes/quadratize.js';
import { QuadratizeError, readAdapterState } from '../src/passes/quadratic-spec.js';
import { Rng } from '../src/util/random.js';

// The contract of DESIGN.md §3: a quadratized model computes exactly the base function (≤ 1e-6
// of the largest output magnitude) in inference and in the train step, the zero factor gets a
// non-zero gradient at step 0, adapter-mode training changes only quadratic parameters, and a
// conversion that fails throws and leaves its input untouched.

const BATCH = 4;

function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

function inputShape(g: Graph, batch = BATCH): number[] {
  return g.inputs[0]!.shape.map((d, i) => (i === 0 ? batch : (d as number)));
}

async function forward(g: Graph, x: Float32Array, batch = BATCH): Promise<Float32Array> {
  const s = await Session.create(g);
  const out = await s.run({
    [g.inputs[0]!.name]: { dtype: 'float32', dims: inputShape(g, batch), data: x },
  });
  await s.release();
  return out[g.outputs[0]!.name]!.data as Float32Array;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** |a − b| ≤ 1e-6 · max|b| elementwise (DESIGN.md §3's equality). */
function assertSameFunction(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  const tol = 1e-6 * maxAbs(b);
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i]! - b[i]!) > tol)
      assert.fail(`${what}: element ${i} differs: ${a[i]} vs ${b[i]} (tolerance ${tol})`);
  }
}

function snapshot(g: Graph): Graph {
  return cloneGraph(g, { tensors: true });
}

/** Gemm/MatMul model: batched MatMul, Gemm with α/β and transB = 0, Gemm with transA, a head. */
function denseModel(seed = 0): Graph {
  const rng = new Rng(seed);
  const g = emptyGraph('dense');
  const b = new GraphBuilder(g);
  const w = (name: string, dims: number[]) => {
    b.reserve(name);
    g.initializers.set(
      name,
      tensor(
        'float32',
        dims,
        Array.from({ length: numel(dims) }, () => rng.uniform(-0.5, 0.5)),
      ),
    );
    return name;
  };
  const x = b.input('input', 'float32', ['batch', 4, 6]);
  let h = b.relu(
    b.add(b.op('MatMul', [x, w('mm.weight', [6, 8])], {}, { name: 'mm' }), w('mm.bias', [8])),
  );
  h = b.reshape(h, [-1, 8]);
  h = b.relu(
    b.op(
      'Gemm',
      [h, w('g1.weight', [8, 7]), w('g1.bias', [7])],
      { alpha: 0.5, beta: 2 },
      { name: 'g1' },
    ),
  );
  h = b.transpose(h, [1, 0]);
  h = b.op('Tanh', [
    b.op('Gemm', [h, w('g2.weight', [5, 7])], { transA: 1, transB: 1 }, { name: 'g2' }),
  ]);
  h = b.reshape(h, [-1, 20]);
  const y = b.op(
    'Gemm',
    [h, w('head.weight', [3, 20]), w('head.bias', [3])],
    { transB: 1 },
    { name: 'head' },
  );
  b.output(b.op('Identity', [y], {}, { outputs: ['logits'] }), 'float32', ['batch', 3]);
  return g;
}

/** 1-D convs: a 5-tap conv with auto_pad SAME_UPPER (atrous 3 taps, dilation 2) and a 4-tap one. */
function conv1dModel(): Graph {
  const rng = new Rng(4);
  const g = emptyGraph('conv1d');
  const b = new GraphBuilder(g);
  const w = (name: string, dims: number[]) => {
    b.reserve(name);
    g.initializers.set(
      name,
      tensor(
        'float32',
        dims,
        Array.from({ length: numel(dims) }, () => rng.uniform(-0.4, 0.4)),
      ),
    );
    return name;
  };
  const x = b.input('input', 'float32', ['batch', 3, 12]);
  let h = b.relu(
    b.op('Conv', [x, w('a.weight', [4, 3, 5])], { auto_pad: 'SAME_UPPER' }, { name: 'a' }),
  );
  h = b.relu(
    b.op(
      'Conv',
      [h, w('b.weight', [4, 4, 4]), w('b.bias', [4])],
      { auto_pad: 'SAME_LOWER', strides: [2] },
      { name: 'b' },
    ),
  );
  h = b.op('Flatten', [h], { axis: 1 });
  const y = b.op('Gemm', [h, w('head.weight', [3, 24])], { transB: 1 }, { name: 'head' });
  b.output(b.op('Identity', [y], {}, { outputs: ['logits'] }), 'float32', ['batch', 3]);
  return g;
}

/** A grouped (groups 2, not depthwise) conv between two dense convs, with a linear head. */
function groupedModel(): Graph {
  const rng = new Rng(3);
  const g = emptyGraph('grouped');
  const b = new GraphBuilder(g);
  const w = (name: string, dims: number[]) => {
    b.reserve(name);
    g.initializers.set(
      name,
      tensor(
        'float32',
        dims,
        Array.from({ length: numel(dims) }, () => rng.uniform(-0.3, 0.3)),
      ),
    );
    return name;
  };
  const x = b.input('input', 'float32', ['batch', 2, 8, 8]);
  let h = b.relu(
    b.op('Conv', [x, w('c1.weight', [4, 2, 3, 3])], { pads: [1, 1, 1, 1] }, { name: 'c1' }),
  );
  h = b.relu(
    b.op(
      'Conv',
      [h, w('c2.weight', [6, 2, 5, 5]), w('c2.bias', [6])],
      { pads: [2, 2, 2, 2], group: 2, strides: [2, 2] },
      { name: 'c2' },
    ),
  );
  h = b.op('Flatten', [b.op('GlobalAveragePool', [h])], { axis: 1 });
  const y = b.op('Gemm', [h, w('head.weight', [3, 6])], { transB: 1 }, { name: 'head' });
  b.output(b.op('Identity', [y], {}, { outputs: ['logits'] }), 'float32', ['batch', 3]);
  return g;
}

interface ModelCase {
  name: string;
  make: () => Graph;
  options: QuadratizeOptions;
  /** Layers expected to be adapted. */
  expect: string[];
  /** Classes of the output. */
  classes: number;
}

const CASES: ModelCase[] = [
  {
    name: 'mlp',
    make: () => mlp({ width: 0.25 }),
    options: {},
    expect: ['fc1', 'fc2'],
    classes: 10,
  },
  {
    name: 'resnet (BN, strided, dilated, 1×1 shortcut)',
    make: () => resnet({ width: 0.5 }),
    options: { rank: 3 },
    expect: ['stem', 'block1.conv1', 'block1.conv2', 'block2.conv1', 'block2.conv2', 'block2.down'],
    classes: 10,
  },
  {
    name: 'convnext (7×7 depthwise atrous, MatMul MLP), rbf',
    make: () => convnext({ width: 0.5, depth: 1 }),
    options: { phi: 'rbf', rank: 2 },
    expect: ['stem', 'block0.dwconv', 'block0.pwconv1', 'block0.pwconv2'],
    classes: 10,
  },
  {
    name: 'resnet in neuron mode',
    make: () => resnet({ width: 0.5 }),
    options: { mode: 'neuron' },
    expect: ['stem', 'block1.conv1', 'block1.conv2', 'block2.conv1', 'block2.conv2', 'block2.down'],
    classes: 10,
  },
  {
    name: 'dense Gemm/MatMul model (batched MatMul, α/β, transA, transB = 0)',
    make: () => denseModel(),
    options: { rank: 2 },
    expect: ['mm', 'g1', 'g2'],
    classes: 3,
  },
  {
    name: 'grouped conv (groups 2)',
    make: groupedModel,
    options: { rank: 2 },
    expect: ['c1', 'c2'],
    classes: 3,
  },
  {
    name: 'user kq 3 dq 1 on a strided grouped 5×5 (pads shrink to stay centred)',
    make: groupedModel,
    options: { rank: 2, kernelSize: 3, dilation: 1 },
    expect: ['c1', 'c2'],
    classes: 3,
  },
  {
    name: '1-D convs with auto_pad SAME_UPPER / SAME_LOWER',
    make: conv1dModel,
    options: { rank: 2 },
    expect: ['a', 'b'],
    classes: 3,
  },
];

describe('quadratize: the converted model computes the base function', () => {
  for (const c of CASES) {
    describe(c.name, () => {
      const base = c.make();
      const before = snapshot(base);
      const res = quadratize(base, c.options);
      const q = res.graph;
      const x = randomArray(numel(inputShape(base)), 11);

      it('adapts the expected layers and leaves its input untouched', () => {
        assert.deepEqual(
          res.targets.filter((t) => t.matched).map((t) => t.node),
          c.expect,
        );
        assert.deepStrictEqual(base, before);
        assert.deepEqual(
          q.outputs.map((v) => v.name),
          base.outputs.map((v) => v.name),
        );
        for (const [k, v] of base.initializers) assert.equal(q.initializers.get(k), v, k);
      });

      it('gives the same outputs in inference (onnxruntime)', async () => {
        assertSameFunction(await forward(q, x), await forward(base, x), 'logits');
      });

      it('gives the same train-step loss, a non-zero gradient of the zero factor, and an adapter step changes only quadratic parameters', async () => {
        const quadNames = quadParamNames(q);
        assert.ok(quadNames.length > 0);
        const labels = Int32Array.from({ length: BATCH }, (_, i) => i % c.classes);
        const batch = { x, y: labels, size: BATCH };
        const common = {
          batchSize: BATCH,
          loss: { kind: 'cross_entropy' as const },
          optimizer: { kind: 'sgd' as const },
          batchNorm: 'frozen' as const,
          dropout: false,
        };
        const tb = await Trainer.create(base, {
          ...common,
          groups: [
            {
              name: 'all',
              params: [...base.initializers.keys()].filter(
                (k) => base.initializers.get(k)!.dtype === 'float32',
              ),
              lr: 0,
            },
          ],
        });
        const tq = await Trainer.create(q, {
          ...common,
          groups: [{ name: 'quad', params: quadNames, lr: 0.5 }],
        });
        const lb = await tb.trainStep(batch);
        const lq = await tq.trainStep(batch);
        assert.ok(
          Math.abs(lb.loss - lq.loss) <= 1e-6 * Math.abs(lb.loss),
          `loss ${lq.loss} vs base ${lb.loss}`,
        );
        assert.ok(lq.gradNorm > 0, 'the quadratic parameters got no gradient');
        // Only quadratic parameters moved; every base initializer is bitwise unchanged.
        for (const [k, v] of base.initializers) {
          assert.deepEqual(tq.params.get(k)!.data, v.data, `base initializer '${k}' changed`);
        }
        const zeroFactor = c.options.mode === 'neuron' ? 'quad_a' : 'quad_u';
        for (const name of quadNames.filter((n) => n.endsWith(zeroFactor))) {
          assert.ok(maxAbs(tq.params.get(name)!.data as Float32Array) > 0, `${name} did not move`);
        }
        await tb.release();
        await tq.release();
      });

      it(`every ${c.options.mode === 'neuron' ? 'quad_a' : 'quad_u'} has a non-zero gradient at step 0 (backward)`, async () => {
        const g = cloneGraph(q);
        g.inputs[0]!.shape = inputShape(g);
        const b = new GraphBuilder(g);
        const out = g.outputs[0]!.name;
        const dy = b.constant(
          tensor('float32', [BATCH, c.classes], randomArray(BATCH * c.classes, 5)),
          'dy',
        );
        const loss = b.op('ReduceSum', [b.mul(out, dy)], { keepdims: 0 });
        const zeroFactor = c.options.mode === 'neuron' ? 'quad_a' : 'quad_u';
        const wrt = quadParamNames(q).filter((n) => n.endsWith(zeroFactor));
        const { graph, grads } = backward(g, { loss, wrt });
        graph.outputs = wrt.map((w) => ({
          name: grads.get(w)!,
          dtype: 'float32',
          shape: [...q.initializers.get(w)!.dims],
        }));
        const s = await Session.create(graph);
        const res = await s.run({ input: { dtype: 'float32', dims: inputShape(q), data: x } });
        for (const w of wrt)
          assert.ok(
            maxAbs(res[grads.get(w)!]!.data as Float32Array) > 0,
            `d loss / d ${w} is zero`,
          );
        await s.release();
      });
    });
  }

  it('resnet with BatchNorm in training mode (batch statistics): the same train-step loss', async () => {
    const base = resnet({ width: 0.5 });
    const q = quadratize(base).graph;
    const batch = {
      x: randomArray(numel(inputShape(base)), 8),
      y: Int32Array.of(0, 1, 2, 3),
      size: BATCH,
    };
    const common = {
      batchSize: BATCH,
      loss: { kind: 'cross_entropy' as const },
      optimizer: { kind: 'sgd' as const },
      batchNorm: 'train' as const,
      dropout: false,
    };
    const tb = await Trainer.create(base, {
      ...common,
      groups: [{ name: 'all', params: ['head.weight'], lr: 0 }],
    });
    const tq = await Trainer.create(q, {
      ...common,
      groups: [{ name: 'quad', params: quadParamNames(q), lr: 0 }],
    });
    const lb = (await tb.trainStep(batch)).loss;
    const lq = (await tq.trainStep(batch)).loss;
    assert.ok(Math.abs(lb - lq) <= 1e-6 * Math.abs(lb), `loss ${lq} vs base ${lb}`);
    // The running statistics see the same batches, so they move identically.
    for (const k of base.initializers.keys())
      if (k.includes('running'))
        assertSameFunction(
          tq.params.get(k)!.data as Float32Array,
          tb.params.get(k)!.data as Float32Array,
          k,
        );
    await tb.release();
    await tq.release();
  });

  it('random A, B and U do change the outputs (the branch is live)', async () => {
    const base = resnet({ width: 0.5 });
    const q = cloneGraph(quadratize(base, { rank: 2 }).graph);
    let k = 100;
    for (const name of quadParamNames(q)) {
      const t = q.initializers.get(name)!;
      q.initializers.set(name, { ...t, data: randomArray(numel(t.dims), k++, 0.3) });
    }
    const x = randomArray(numel(inputShape(base)), 1);
    const yb = await forward(base, x);
    const yq = await forward(q, x);
    let diff = 0;
    for (let i = 0; i < yb.length; i++) diff = Math.max(diff, Math.abs(yb[i]! - yq[i]!));
    assert.ok(diff > 1e-3 * maxAbs(yb), `outputs barely changed (${diff})`);
  });
});

describe('quadratize: structure, names and initialisation', () => {
  it('names the parameters W.quad_* in ONNX layout (depthwise: channel multiplier r, grouped U)', () => {
    const base = convnext({ width: 0.5, depth: 1 });
    const { graph: q, config } = quadratize(base, { rank: 3, phi: 'rbf' });
    const shape = (n: string) => q.initializers.get(n)?.dims;
    // 16 channels, 7×7 depthwise → atrous 3×3 dilation 3, pads 3.
    assert.deepEqual(shape('block0.dwconv.weight.quad_a'), [48, 1, 3, 3]);
    assert.deepEqual(shape('block0.dwconv.weight.quad_b'), [48, 1, 3, 3]);
    assert.deepEqual(shape('block0.dwconv.weight.quad_u'), [16, 3, 1, 1]);
    assert.deepEqual(shape('block0.dwconv.weight.quad_gamma'), [48]);
    const dw = config.targets.find((t) => t.node === 'block0.dwconv')!;
    assert.deepEqual(
      [dw.kind, dw.kq, dw.dq, dw.pads, dw.group],
      ['depthwise', [3, 3], [3, 3], [3, 3, 3, 3], 16],
    );
    // MatMul n×m = 16×64: A, B are n×r, U is r×m.
    assert.deepEqual(shape('block0.pwconv1.weight.quad_a'), [16, 3]);
    assert.deepEqual(shape('block0.pwconv1.weight.quad_u'), [3, 64]);
    // 2×2 stride-2 stem: even kernel keeps kq = k.
    const stem = config.targets.find((t) => t.node === 'stem')!;
    assert.deepEqual(
      [stem.kq, stem.dq, stem.pads, stem.strides],
      [
        [2, 2],
        [1, 1],
        [0, 0, 0, 0],
        [2, 2],
      ],
    );
  });

  it('Gemm parameters follow the transB convention', () => {
    const { graph: q } = quadratize(denseModel(), { rank: 2, includeHead: true });
    const shape = (n: string) => q.initializers.get(n)?.dims;
    assert.deepEqual(shape('g1.weight.quad_a'), [8, 2]); // transB = 0: n×r
    assert.deepEqual(shape('g1.weight.quad_u'), [2, 7]);
    assert.deepEqual(shape('g2.weight.quad_a'), [2, 7]); // transB = 1: r×n
    assert.deepEqual(shape('g2.weight.quad_u'), [5, 2]);
    assert.deepEqual(shape('head.weight.quad_a'), [2, 20]);
    assert.deepEqual(shape('head.weight.quad_u'), [3, 2]);
  });

  it('keeps the base node untouched and puts the Add (with the original output name) right after it', () => {
    const base = mlp({ width: 0.25 });
    const { graph: q } = quadratize(base);
    const fc1 = q.nodes.findIndex((n) => n.name === 'fc1');
    const orig = base.nodes.find((n) => n.name === 'fc1')!;
    const node = q.nodes[fc1]!;
    assert.deepEqual({ ...node, outputs: [] }, { ...orig, outputs: [] });
    assert.notEqual(node.outputs[0], orig.outputs[0]);
    const state = readAdapterState(q)!;
    const w = state.wiring['fc1']!;
    const add = q.nodes.find((n) => n.name === w.addNode)!;
    assert.equal(add.opType, 'Add');
    assert.deepEqual(add.outputs, orig.outputs);
    assert.deepEqual(add.inputs, [node.outputs[0], w.quadOutput]);
    // The branch and the Add sit right after fc1, so the graph stays topologically ordered.
    assert.deepEqual(
      q.nodes.slice(fc1 + 1, fc1 + 1 + w.nodes.length).map((n) => n.name),
      w.nodes,
    );
    assert.ok(
      q.nodes.every((n) => n.domain === ''),
      'only standard ONNX ops',
    );
  });

  it('initialises A, B Kaiming-uniform (seeded per target), U = 0, γ = 1; neuron mode A = 0', () => {
    const base = resnet({ width: 0.5 });
    const a = quadratize(base, { seed: 7, phi: 'rbf', initScale: 0.5 }).graph;
    const data = (g: Graph, n: string) => g.initializers.get(n)!.data as Float32Array;
    const fanIn = 8 * 9; // block1.conv1 at width 0.5: Cin 8, 3×3
    const bound = 0.5 * Math.sqrt(6 / fanIn);
    const A = data(a, 'block1.conv1.weight.quad_a');
    assert.ok(maxAbs(A) > 0.5 * bound && maxAbs(A) <= bound, `A bound ${maxAbs(A)} vs ${bound}`);
    assert.ok(maxAbs(data(a, 'block1.conv1.weight.quad_b')) > 0);
    assert.equal(maxAbs(data(a, 'block1.conv1.weight.quad_u')), 0);
    assert.ok(data(a, 'block1.conv1.weight.quad_gamma').every((v) => v === 1));
    const again = quadratize(base, {
      seed: 7,
      phi: 'rbf',
      initScale: 0.5,
      targets: ['block1.conv1'],
    }).graph;
    assert.deepEqual(
      data(again, 'block1.conv1.weight.quad_a'),
      A,
      'a target’s init depends on the other targets',
    );
    const other = quadratize(base, { seed: 8, phi: 'rbf', initScale: 0.5 }).graph;
    assert.notDeepEqual(data(other, 'block1.conv1.weight.quad_a'), A);
    const neuron = quadratize(base, { mode: 'neuron' }).graph;
    assert.equal(maxAbs(data(neuron, 'block1.conv1.weight.quad_a')), 0);
    assert.ok(maxAbs(data(neuron, 'block1.conv1.weight.quad_b')) > 0);
    assert.equal(neuron.initializers.has('block1.conv1.weight.quad_u'), false);
  });

  it('supports a weight given as a Constant node', async () => {
    const base = mlp({ width: 0.25 });
    const g = cloneGraph(base);
    const w = g.initializers.get('fc2.weight')!;
    g.initializers.delete('fc2.weight');
    g.nodes.unshift({
      name: 'fc2_w',
      opType: 'Constant',
      domain: '',
      inputs: [],
      outputs: ['fc2.weight'],
      attrs: { value: { type: 'tensor', value: w } },
    });
    const { graph: q, targets } = quadratize(g);
    assert.ok(targets.find((t) => t.node === 'fc2')!.matched);
    const x = randomArray(numel(inputShape(g)), 2);
    assertSameFunction(await forward(q, x), await forward(g, x), 'logits');
  });
});

describe('quadratize: target selection and dry run', () => {
  it('dry run lists every layer with a reason and builds nothing', () => {
    const base = denseModel();
    const g = cloneGraph(base);
    // A MatMul of two activations (no constant weight) and one with the weight on the left.
    const b = new GraphBuilder(g);
    const logits = g.outputs[0]!.name;
    const sq = b.op('MatMul', [b.op('Transpose', [logits]), logits], {}, { name: 'gram' });
    b.reserve('left.weight');
    g.initializers.set('left.weight', tensor('float32', [2, 3], [1, 2, 3, 4, 5, 6]));
    const left = b.op('MatMul', ['left.weight', sq], {}, { name: 'left' });
    b.output(left, 'float32', [2, 3]);
    const before = snapshot(g);
    const res = quadratize(g, { dryRun: true, exclude: 'g2' });
    assert.deepStrictEqual(g, before);
    assert.deepStrictEqual(res.graph, before);
    const reason = Object.fromEntries(
      res.targets.map((t) => [t.node, `${t.matched}: ${t.reason}`]),
    );
    assert.deepEqual(reason, {
      mm: 'true: default target',
      g1: 'true: default target',
      g2: "false: excluded by exclude 'g2'",
      head: "false: head (produces output 'logits'); adapt it with --include-head (includeHead in the API)",
      gram: 'false: weight is not a constant',
      left: 'false: weight is the left operand (W @ x); only x @ W is supported',
    });
    assert.deepEqual(
      res.config.targets.map((t) => t.node),
      ['mm', 'g1'],
    );
  });

  it('selects by op type or regex, excludes, and applies rank overrides', () => {
    const base = resnet({ width: 0.5 });
    const r = quadratize(base, {
      targets: ['block2'],
      exclude: ['down$'],
      rankOverrides: { 'conv2\\.weight': 5 },
    });
    const matched = r.targets.filter((t) => t.matched);
    assert.deepEqual(
      matched.map((t) => [t.node, t.spec!.rank]),
      [
        ['block2.conv1', 4],
        ['block2.conv2', 5],
      ],
    );
    assert.equal(r.targets.find((t) => t.node === 'stem')!.reason, 'not selected by targets');
    const c = quadratize(convnext({ width: 0.5, depth: 1 }), { targets: ['MatMul'], dryRun: true });
    assert.deepEqual(
      c.targets.filter((t) => t.matched).map((t) => t.node),
      ['block0.pwconv1', 'block0.pwconv2'],
    );
  });

  it('adapts the head only when asked, and graph outputs keep their names', async () => {
    const base = mlp({ width: 0.25 });
    const { graph: q, targets } = quadratize(base, { includeHead: true });
    assert.ok(targets.find((t) => t.node === 'head')!.matched);
    assert.deepEqual(q.outputs, base.outputs);
    const x = randomArray(numel(inputShape(base)), 3);
    assertSameFunction(await forward(q, x), await forward(base, x), 'logits');
  });

  it('the user kq/dq override is applied (5×5 → 3×3 dilation 2)', () => {
    const { config } = quadratize(groupedModel(), {
      targets: ['c2'],
      kernelSize: 3,
      dilation: 2,
      dryRun: true,
    });
    const t = config.targets[0]!;
    assert.deepEqual(
      [t.kq, t.dq, t.pads, t.group, t.kind],
      [[3, 3], [2, 2], [2, 2, 2, 2], 2, 'grouped'],
    );
    // kq = 3, dq = 1 on the 5×5: pads shrink by ((5−1)·1 − (3−1)·1)/2 = 1 to keep the window centred.
    const s = quadratize(groupedModel(), {
      targets: ['c2'],
      kernelSize: 3,
      dilation: 1,
      dryRun: true,
    });
    assert.deepEqual(s.config.targets[0]!.pads, [1, 1, 1, 1]);
  });
});

describe('quadratize: failures throw one line and leave the input unchanged', () => {
  /** A 3×3 conv without padding (for the negative-padding case), then a head. */
  function validConv(): Graph {
    const g = emptyGraph('valid');
    const b = new GraphBuilder(g);
    b.reserve('c.weight');
    g.initializers.set('c.weight', tensor('float32', [2, 1, 3, 3], new Array(18).fill(0.1)));
    const x = b.input('input', 'float32', ['batch', 1, 6, 6]);
    const y = b.op('Conv', [x, 'c.weight'], { kernel_shape: [3, 3] }, { name: 'c' });
    b.output(
      b.op('Relu', [b.op('Flatten', [b.op('GlobalAveragePool', [y])])], {}, { outputs: ['out'] }),
      'float32',
      ['batch', 2],
    );
    return g;
  }
  const failures: [string, () => Graph, QuadratizeOptions, RegExp][] = [
    [
      'a kq that needs fractional padding',
      () => resnet({ width: 0.5 }),
      { kernelSize: 2 },
      /node 'stem' \(Conv\).*not a whole number/,
    ],
    [
      'a kq/dq that needs negative padding',
      validConv,
      { kernelSize: 1 },
      /node 'c' \(Conv\).*negative padding/,
    ],
    [
      'a target pattern matching nothing',
      () => resnet({ width: 0.5 }),
      { targets: ['nope'] },
      /targets pattern 'nope' matches no layer/,
    ],
    [
      'an exclude pattern matching nothing',
      () => resnet({ width: 0.5 }),
      { exclude: 'nope' },
      /exclude pattern 'nope'/,
    ],
    [
      'a rank override matching nothing',
      () => resnet({ width: 0.5 }),
      { rankOverrides: { nope: 2 } },
      /rankOverrides pattern 'nope'/,
    ],
    [
      'an invalid regular expression',
      () => resnet({ width: 0.5 }),
      { targets: ['('] },
      /not a valid regular expression/,
    ],
    [
      'rbf in neuron mode (cannot start at zero)',
      () => mlp({ width: 0.25 }),
      { mode: 'neuron', phi: 'rbf' },
      /rbf.*lowrank/,
    ],
    ['rank 0', () => mlp({ width: 0.25 }), { rank: 0 }, /rank must be a whole number/],
    [
      'a user kq for the wrong number of axes',
      () => resnet({ width: 0.5 }),
      { kernelSize: [3, 3, 3] },
      /3 values but the convolution has 2/,
    ],
    [
      'only the head selected',
      () => mlp({ width: 0.25 }),
      { targets: ['head'] },
      /no layer to adapt.*head/,
    ],
    [
      'a graph that is already quadratized',
      () => quadratize(mlp({ width: 0.25 })).graph,
      {},
      /already has a quadratic adapter/,
    ],
  ];
  for (const [what, make, opts, msg] of failures) {
    it(what, () => {
      const g = make();
      const before = snapshot(g);
      assert.throws(
        () => quadratize(g, opts),
        (e: unknown) => {
          assert.ok(e instanceof QuadratizeError && e instanceof GraphError, String(e));
          assert.match(e.message, msg);
          assert.ok(!e.message.includes('\n'));
          return true;
        },
      );
      assert.deepStrictEqual(g, before);
    });
  }

  it('neuron mode keeps the base kernel by default (no atrous)', () => {
    const { config } = quadratize(convnext({ width: 0.5, depth: 1 }), {
      mode: 'neuron',
      targets: ['dwconv'],
      dryRun: true,
    });
    const t = config.targets[0]!;
    assert.deepEqual(
      [t.kq, t.dq, t.params[0]!.shape],
      [
        [7, 7],
        [1, 1],
        [16, 1, 7, 7],
      ],
    );
  });
});
