import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import { loadAdapter, saveAdapter } from '../src/workflow/adapter-files.js';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  readAdapterConfig,
} from '../src/io/formats/adapter-config.js';
import { decodeSafetensors } from '../src/io/formats/safetensors.js';
import { QuadranetFileError } from '../src/io/errors.js';
import { GraphBuilder } from '../src/ir/builder.js';
import type { Graph } from '../src/ir/graph.js';
import { cloneGraph, GraphError, emptyGraph } from '../src/ir/graph.js';
import { encodeModel } from '../src/ir/onnx.js';
import type { Tensor } from '../src/ir/tensor.js';
import { numel, tensor } from '../src/ir/tensor.js';
import { cnn, convnext, mlp, resnet } from '../src/models/zoo.js';
import { accountLayers } from '../src/passes/accounting.js';
import { setAdapterEnabled, unload } from '../src/passes/adapter.js';
import { matchLinearBudget } from '../src/passes/linear-budget.js';
import type { QuadratizeOptions } from '../src/passes/quadratize.js';
import { paramCount, quadParamNames, quadratize } from '../src/passes/quadratize.js';
import { QuadratizeError, readAdapterState } from '../src/passes/quadratic-spec.js';
import { headParams, reinitialize } from '../src/passes/reinit.js';
import { Session } from '../src/runtime/session.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';
import { tempDirs } from './helpers/temp.js';

// The baselines QuadraNet V2 is compared against: a linear low-rank adapter Q(x) = U(A(x)) with
// the quadratic adapter's targets, geometry and parameter budget; PyTorch-default
// re-initialisation for from-scratch runs; and the head's parameters for head-only tuning.

const BATCH = 4;

const tempDir = tempDirs('baselines');

function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

function inputShape(g: Graph, batch = BATCH): number[] {
  return g.inputs[0]!.shape.map((d, i) => (i === 0 ? batch : (d as number)));
}

async function forward(g: Graph, x: Float32Array): Promise<Float32Array> {
  const s = await Session.create(g);
  const out = await s.run({
    [g.inputs[0]!.name]: { dtype: 'float32', dims: inputShape(g), data: x },
  });
  await s.release();
  return out[g.outputs[0]!.name]!.data as Float32Array;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function assertSameFunction(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  const tol = 1e-6 * maxAbs(b);
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i]! - b[i]!) > tol)
      assert.fail(`${what}: element ${i} differs: ${a[i]} vs ${b[i]} (tolerance ${tol})`);
  }
}

/** A copy whose adapter parameters are random (as after adaptation). */
function trained(q: Graph, seed = 50): Graph {
  const g = cloneGraph(q);
  let k = seed;
  for (const name of quadParamNames(g)) {
    const t = g.initializers.get(name)!;
    g.initializers.set(name, { ...t, data: randomArray(numel(t.dims), k++, 0.2) });
  }
  return g;
}

function data(g: Graph, name: string): Float32Array {
  return g.initializers.get(name)!.data as Float32Array;
}

interface LinearCase {
  name: string;
  make: () => Graph;
  options: QuadratizeOptions;
  classes: number;
}

const LINEAR_CASES: LinearCase[] = [
  { name: 'mlp (Gemm)', make: () => mlp({ width: 0.25 }), options: { rank: 3 }, classes: 10 },
  {
    name: 'resnet (BN, strided, dilated convs)',
    make: () => resnet({ width: 0.5 }),
    options: { rank: 3 },
    classes: 10,
  },
  {
    name: 'convnext (7×7 depthwise atrous, MatMul), head included',
    make: () => convnext({ width: 0.5, depth: 1 }),
    options: { rank: 2, includeHead: true },
    classes: 10,
  },
];

describe('linear low-rank adapter (φ linear): Q(x) = U(A(x))', () => {
  for (const c of LINEAR_CASES) {
    describe(c.name, () => {
      const base = c.make();
      const before = cloneGraph(base, { tensors: true });
      const res = quadratize(base, { ...c.options, phi: 'linear' });
      const q = res.graph;
      const x = randomArray(numel(inputShape(base)), 11);

      it('has A and U only, with the quadratic adapter’s targets, shapes and geometry', () => {
        assert.deepStrictEqual(base, before);
        const quad = quadratize(base, c.options);
        assert.deepEqual(
          res.config.targets.map((t) => t.node),
          quad.config.targets.map((t) => t.node),
        );
        for (const [i, t] of res.config.targets.entries()) {
          const ref = quad.config.targets[i]!;
          assert.equal(t.phi, 'linear');
          assert.deepEqual(
            t.params.map((p) => p.role),
            ['quad_a', 'quad_u'],
          );
          assert.deepEqual(
            t.params.map((p) => [p.name, p.shape]),
            ref.params.filter((p) => p.role !== 'quad_b').map((p) => [p.name, p.shape]),
          );
          assert.deepEqual(
            [t.kq, t.dq, t.pads, t.strides, t.group],
            [ref.kq, ref.dq, ref.pads, ref.strides, ref.group],
          );
        }
        assert.ok(!quadParamNames(q).some((n) => n.endsWith('.quad_b')));
        assert.ok(!q.nodes.some((n) => n.name.endsWith('/quad/phi')), 'no φ node');
      });

      it('initialises A Kaiming-uniform and U = 0, and computes the base function', async () => {
        for (const n of quadParamNames(q)) {
          const m = maxAbs(data(q, n));
          if (n.endsWith('.quad_u')) assert.equal(m, 0, n);
          else assert.ok(m > 0, n);
        }
        // Same seed, same A as the quadratic adapter's A.
        const quad = quadratize(base, c.options).graph;
        for (const n of quadParamNames(q).filter((p) => p.endsWith('.quad_a')))
          assert.deepEqual(data(q, n), data(quad, n), n);
        assertSameFunction(await forward(q, x), await forward(base, x), 'logits');
      });

      it('U has a non-zero gradient at step 0 (backward)', async () => {
        const g = cloneGraph(q);
        g.inputs[0]!.shape = inputShape(g);
        const b = new GraphBuilder(g);
        const dy = b.constant(
          tensor('float32', [BATCH, c.classes], randomArray(BATCH * c.classes, 5)),
          'dy',
        );
        const loss = b.op('ReduceSum', [b.mul(g.outputs[0]!.name, dy)], { keepdims: 0 });
        const wrt = quadParamNames(q).filter((n) => n.endsWith('.quad_u'));
        const { graph, grads } = backward(g, { loss, wrt });
        graph.outputs = wrt.map((w) => ({
          name: grads.get(w)!,
          dtype: 'float32',
          shape: [...q.initializers.get(w)!.dims],
        }));
        const s = await Session.create(graph);
        const out = await s.run({ input: { dtype: 'float32', dims: inputShape(q), data: x } });
        for (const w of wrt)
          assert.ok(
            maxAbs(out[grads.get(w)!]!.data as Float32Array) > 0,
            `d loss / d ${w} is zero`,
          );
        await s.release();
      });

      it('an adapter step has the base loss and changes only the adapter parameters', async () => {
        const names = quadParamNames(q);
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
          groups: [{ name: 'head', params: headParams(base), lr: 0 }],
        });
        const tq = await Trainer.create(q, {
          ...common,
          groups: [{ name: 'adapter', params: names, lr: 0.5 }],
        });
        const lb = await tb.trainStep(batch);
        const lq = await tq.trainStep(batch);
        assert.ok(
          Math.abs(lb.loss - lq.loss) <= 1e-6 * Math.abs(lb.loss),
          `${lq.loss} vs ${lb.loss}`,
        );
        assert.ok(lq.gradNorm > 0);
        for (const [k, v] of base.initializers)
          assert.deepEqual(tq.params.get(k)!.data, v.data, `base initializer '${k}' changed`);
        for (const n of names.filter((p) => p.endsWith('.quad_u')))
          assert.ok(maxAbs(tq.params.get(n)!.data as Float32Array) > 0, `${n} did not move`);
        await tb.release();
        await tq.release();
      });

      it('unload gives exactly the base; disabled gives the base outputs', async () => {
        const t = trained(q);
        const u = unload(t);
        assert.deepStrictEqual(u, base);
        assert.deepEqual(encodeModel(u), encodeModel(base));
        const yb = await forward(base, x);
        assert.notDeepEqual(await forward(t, x), yb);
        const off = setAdapterEnabled(t, false);
        assert.deepEqual(await forward(off, x), yb);
        assert.deepStrictEqual(setAdapterEnabled(off, true), t);
      });

      it('accounting counts A and U (and no φ)', () => {
        const acc = accountLayers(q);
        assert.equal(
          acc.totals.quadratic.params,
          quadParamNames(q).reduce((s, n) => s + numel(q.initializers.get(n)!.dims), 0),
        );
        assert.ok(acc.totals.quadratic.flops > 0);
      });

      it('saves and loads the adapter (round trip)', async () => {
        const t = trained(q);
        const dir = await tempDir();
        const cfg = await saveAdapter(dir, t);
        assert.equal(cfg.phi, 'linear');
        assert.ok(cfg.targets.every((x) => x.phi === 'linear'));
        const st = decodeSafetensors(await readFile(join(dir, ADAPTER_WEIGHTS_FILE)));
        assert.deepEqual(Object.keys(st.tensors).sort(), quadParamNames(t).sort());
        const loaded = await loadAdapter(dir, base);
        assert.deepStrictEqual(loaded, t);
        assert.deepEqual(await forward(loaded, x), await forward(t, x));
      });
    });
  }

  it('dry run reports the linear plan and builds nothing', () => {
    const base = resnet({ width: 0.5 });
    const r = quadratize(base, { phi: 'linear', dryRun: true });
    assert.deepStrictEqual(r.graph, base);
    assert.ok(r.targets.filter((t) => t.matched).every((t) => t.spec!.params.length === 2));
  });

  it('refuses neuron mode with a one-line error and leaves the input unchanged', () => {
    const base = mlp({ width: 0.25 });
    const before = cloneGraph(base, { tensors: true });
    assert.throws(
      () => quadratize(base, { mode: 'neuron', phi: 'linear' }),
      (e: unknown) =>
        e instanceof QuadratizeError &&
        /phi 'linear' needs mode 'lowrank'/.test(e.message) &&
        !e.message.includes('\n'),
    );
    assert.deepStrictEqual(base, before);
  });

  it('an adapter config claiming linear in neuron mode is refused on load', async () => {
    const base = mlp({ width: 0.25 });
    const dir = await tempDir();
    await saveAdapter(dir, quadratize(base, { phi: 'linear' }).graph);
    const p = join(dir, ADAPTER_CONFIG_FILE);
    const cfg = JSON.parse(await readFile(p, 'utf8')) as { targets: Record<string, unknown>[] };
    cfg.targets[0]!['mode'] = 'neuron';
    cfg.targets[0]!['rank'] = null;
    await writeFile(p, JSON.stringify(cfg));
    await assert.rejects(
      () => readAdapterConfig(dir),
      (e) => e instanceof QuadranetFileError && /phi 'linear' needs mode 'lowrank'/.test(e.message),
    );
  });
});

describe('linear adapter with the quadratic adapter’s parameter budget', () => {
  const MODELS: [string, () => Graph][] = [
    ['cnn', () => cnn()],
    ['resnet', () => resnet()],
    ['convnext', () => convnext()],
  ];
  const totalParams = (g: Graph) => accountLayers(g).totals.quadratic.params;

  for (const [name, make] of MODELS) {
    for (const quadOptions of [{}, { phi: 'rbf', rank: 6 }] as QuadratizeOptions[]) {
      it(`${name} ${JSON.stringify(quadOptions)}: total within 5% (never above), same targets`, () => {
        const base = make();
        const quad = quadratize(base, quadOptions);
        const opts = matchLinearBudget(base, quadOptions);
        assert.equal(opts.phi, 'linear');
        assert.equal(opts.budgetOf, undefined, 'self-contained options');
        const lin = quadratize(base, opts);
        assert.deepEqual(
          lin.config.targets.map((t) => t.node),
          quad.config.targets.map((t) => t.node),
        );
        assert.deepEqual(
          Object.keys(opts.rankOverrides!),
          quad.config.targets.map((t) => `^${t.node.replace(/\./g, '\\.')}$`),
        );
        const qp = totalParams(quad.graph);
        const lp = totalParams(lin.graph);
        assert.ok(lp <= qp, `linear ${lp} > quadratic ${qp}`);
        assert.ok(lp >= 0.95 * qp, `linear ${lp} vs quadratic ${qp}`);
        // Each target is within one rank of its own budget.
        for (const [i, t] of lin.config.targets.entries()) {
          const budget = paramCount(quad.config.targets[i]!);
          const unit = paramCount(t) / t.rank!;
          assert.ok(paramCount(t) <= budget + unit, `${t.node}: ${paramCount(t)} vs ${budget}`);
          assert.ok(paramCount(t) > budget - unit, `${t.node}: ${paramCount(t)} vs ${budget}`);
        }
        // budgetOf directly gives the same ranks.
        const direct = quadratize(base, { phi: 'linear', budgetOf: quadOptions, dryRun: true });
        assert.deepEqual(
          direct.config.targets.map((t) => t.rank),
          lin.config.targets.map((t) => t.rank),
        );
      });
    }
  }

  it("budgetMatch 'target' keeps each target at or below its own budget", () => {
    const base = resnet();
    const quad = quadratize(base, { dryRun: true }).config;
    const lin = quadratize(base, matchLinearBudget(base, {}, 'target')).config;
    for (const [i, t] of lin.targets.entries()) {
      const budget = paramCount(quad.targets[i]!);
      assert.ok(t.rank === 1 || paramCount(t) <= budget, `${t.node}`);
      assert.ok(paramCount(t) + paramCount(t) / t.rank! > budget, `${t.node} could be larger`);
    }
  });

  it('follows the reference’s target selection and neuron-mode budgets', () => {
    const base = resnet({ width: 0.5 });
    const ref: QuadratizeOptions = { mode: 'neuron', targets: ['block2'], exclude: 'down' };
    const opts = matchLinearBudget(base, ref);
    const lin = quadratize(base, opts);
    assert.deepEqual(
      lin.config.targets.map((t) => t.node),
      ['block2.conv1', 'block2.conv2'],
    );
    const qp = totalParams(quadratize(base, ref).graph);
    const lp = totalParams(lin.graph);
    assert.ok(lp <= qp && lp >= 0.95 * qp, `${lp} vs ${qp}`);
  });

  const failures: [string, QuadratizeOptions, RegExp][] = [
    ['rank with budgetOf', { phi: 'linear', budgetOf: {}, rank: 3 }, /do not also give rank/],
    [
      'neuron mode with budgetOf',
      { phi: 'product', mode: 'neuron', budgetOf: {} },
      /budgetOf needs mode 'lowrank'/,
    ],
    [
      'different targets',
      { phi: 'linear', budgetOf: { targets: ['block1'] }, targets: ['block2'] },
      /budgetOf does not adapt it/,
    ],
    [
      'fewer targets',
      // (Not the stem: under the default ranks the reference leaves it out as too dear.)
      { phi: 'linear', budgetOf: {}, exclude: 'block1\\.conv1' },
      /budgetOf adapts 'block1\.conv1', which this adapter does not/,
    ],
    ['budgetMatch alone', { phi: 'linear', budgetMatch: 'target' }, /budgetMatch needs budgetOf/],
    ['a bad reference', { phi: 'linear', budgetOf: { rank: 0 } }, /^budgetOf: rank must be/],
  ];
  for (const [what, opts, msg] of failures) {
    it(`refuses ${what}`, () => {
      assert.throws(
        () => quadratize(resnet({ width: 0.5 }), opts),
        (e: unknown) => e instanceof QuadratizeError && msg.test(e.message),
      );
    });
  }
});

/** Every float initializer of `g` set to random values (as after training). */
function perturbed(g: Graph, seed = 3): Graph {
  const out = cloneGraph(g);
  let k = seed;
  for (const [name, t] of g.initializers)
    if (t.dtype === 'float32')
      out.initializers.set(name, { ...t, data: randomArray(numel(t.dims), k++, 0.5) });
  return out;
}

function structure(g: Graph): unknown {
  return {
    name: g.name,
    nodes: g.nodes,
    inputs: g.inputs,
    outputs: g.outputs,
    opset: g.opset,
    metadata: g.metadata,
    initializers: [...g.initializers].map(([k, t]: [string, Tensor]) => [k, t.dtype, t.dims]),
  };
}

describe('reinitialize: PyTorch default initialisation for from-scratch baselines', () => {
  it('is pure, deterministic, and keeps names, shapes and graph structure', () => {
    const g = perturbed(convnext({ width: 0.5, depth: 1 }));
    const before = cloneGraph(g, { tensors: true });
    const a = reinitialize(g, { seed: 5 });
    assert.deepStrictEqual(g, before);
    assert.deepStrictEqual(a, reinitialize(g, { seed: 5 }));
    assert.deepStrictEqual(structure(a), structure(g));
    const b = reinitialize(g, { seed: 6 });
    assert.notDeepEqual(data(a, 'block0.pwconv1.weight'), data(b, 'block0.pwconv1.weight'));
  });

  it('re-draws every Conv/Gemm/MatMul weight and bias within ±1/√fan_in and resets the norms', () => {
    for (const make of [() => resnet({ width: 0.5 }), () => convnext({ width: 0.5, depth: 1 })]) {
      const g = perturbed(make());
      const r = reinitialize(g, { seed: 1 });
      const fan: Record<string, number> = {};
      for (const n of g.nodes) {
        const w = g.initializers.get(n.inputs[1] ?? '');
        if (!w) continue;
        if (n.opType === 'Conv') fan[n.inputs[1]!] = numel(w.dims.slice(1));
        if (n.opType === 'Gemm') fan[n.inputs[1]!] = w.dims[1]!; // transB = 1
        if (n.opType === 'MatMul') fan[n.inputs[1]!] = w.dims[0]!;
      }
      for (const [name, f] of Object.entries(fan)) {
        const bias = name.replace(/weight$/, 'bias');
        for (const p of [name, ...(g.initializers.has(bias) ? [bias] : [])]) {
          const m = maxAbs(data(r, p));
          assert.notDeepEqual(data(r, p), data(g, p), `${p} unchanged`);
          assert.ok(m <= 1 / Math.sqrt(f) && m > 0.5 / Math.sqrt(f), `${p}: ${m} vs ${f}`);
        }
      }
      for (const n of g.nodes) {
        const want =
          n.opType === 'BatchNormalization'
            ? [1, 0, 0, 1]
            : n.opType === 'LayerNormalization'
              ? [1, 0]
              : [];
        want.forEach((v, i) =>
          assert.ok(
            data(r, n.inputs[i + 1]!).every((x) => x === v),
            `${n.inputs[i + 1]} not ${v}`,
          ),
        );
      }
      // Every float initializer of these models is a parameter or a statistic: all reset.
      for (const [k, t] of g.initializers)
        if (t.dtype === 'float32') assert.notDeepEqual(data(r, k), data(g, k), k);
    }
  });

  it('changes the outputs of a network', async () => {
    const g = resnet({ width: 0.5 });
    const x = randomArray(numel(inputShape(g)), 2);
    const y0 = await forward(g, x);
    const y1 = await forward(reinitialize(g, { seed: 9 }), x);
    assert.ok(maxAbs(y0.map((v, i) => v - y1[i]!)) > 1e-3 * maxAbs(y0));
  });

  it('re-draws quadratic parameters with U ≠ 0 (and γ = 1, neuron A ≠ 0)', async () => {
    const base = resnet({ width: 0.5 });
    const q = quadratize(base, { phi: 'rbf', rank: 2 }).graph;
    const r = reinitialize(q, { seed: 4 });
    assert.deepStrictEqual(structure(r), structure(q));
    assert.deepEqual(readAdapterState(r), readAdapterState(q));
    for (const t of readAdapterState(q)!.targets) {
      for (const p of t.params) {
        const v = data(r, p.name);
        if (p.role === 'quad_gamma') assert.ok(v.every((x) => x === 1));
        else {
          const bound = 1 / Math.sqrt(numel(p.shape.slice(1)));
          assert.ok(maxAbs(v) > 0.5 * bound && maxAbs(v) <= bound, `${p.name}`);
          assert.notDeepEqual(v, data(q, p.name), p.name);
        }
      }
    }
    // With U ≠ 0 the quadratic branch is live: the function differs from the linear reinit.
    const x = randomArray(numel(inputShape(base)), 2);
    const plain = reinitialize(base, { seed: 4 });
    assert.notDeepEqual(await forward(r, x), await forward(plain, x));
    const neuron = reinitialize(quadratize(base, { mode: 'neuron' }).graph, { seed: 1 });
    assert.ok(maxAbs(data(neuron, 'stem.weight.quad_a')) > 0);
    // Gemm/MatMul factors: U's fan-in is the rank.
    const c = reinitialize(quadratize(mlp({ width: 0.25 }), { rank: 4 }).graph, { seed: 1 });
    const u = data(c, 'fc1.weight.quad_u'); // [32, 4], transB = 1
    assert.ok(maxAbs(u) <= 0.5 && maxAbs(u) > 0.25);
  });

  it("scope 'quadratic-random' re-draws only the quadratic parameters", () => {
    const q = quadratize(resnet({ width: 0.5 })).graph;
    const r = reinitialize(q, { seed: 2, scope: 'quadratic-random' });
    const quad = new Set(quadParamNames(q));
    for (const [k, t] of q.initializers) {
      if (quad.has(k)) {
        assert.ok(maxAbs(data(r, k)) > 0, k);
        assert.notDeepEqual(data(r, k), data(q, k), k);
      } else assert.equal(r.initializers.get(k), t, k);
    }
    assert.throws(
      () => reinitialize(resnet({ width: 0.5 }), { seed: 1, scope: 'quadratic-random' }),
      (e: unknown) => e instanceof GraphError && /needs a quadratized graph/.test(e.message),
    );
  });
});

describe('headParams', () => {
  it('finds the head layer’s weight and bias', () => {
    assert.deepEqual(headParams(mlp({ width: 0.25 })), ['head.weight', 'head.bias']);
    assert.deepEqual(headParams(resnet({ width: 0.5 })), ['head.weight', 'head.bias']);
    assert.deepEqual(headParams(convnext({ width: 0.5, depth: 1 })), ['head.weight', 'head.bias']);
  });

  it('includes a MatMul head’s bias Add and, when adapted, the head’s quadratic parameters', () => {
    const g = emptyGraph('mm-head');
    const b = new GraphBuilder(g);
    const x = b.input('input', 'float32', ['batch', 6]);
    for (const [n, d] of [
      ['w1', [6, 5]],
      ['w2', [5, 3]],
      ['b2', [3]],
    ] as const) {
      b.reserve(n);
      g.initializers.set(n, tensor('float32', [...d], randomArray(numel(d), 1)));
    }
    const h = b.relu(b.op('MatMul', [x, 'w1'], {}, { name: 'mm1' }));
    const y = b.add(b.op('MatMul', [h, 'w2'], {}, { name: 'mm2' }), 'b2');
    b.output(b.op('Softmax', [y], { axis: -1 }, { outputs: ['probs'] }), 'float32', ['batch', 3]);
    assert.deepEqual(headParams(g), ['w2', 'b2']);
    const q = quadratize(g, { includeHead: true, rank: 2 }).graph;
    assert.deepEqual(headParams(q), ['w2', 'b2', 'w2.quad_a', 'w2.quad_b', 'w2.quad_u']);
    assert.deepEqual(headParams(quadratize(g, { rank: 2 }).graph), ['w2', 'b2']);
    // reinitialize finds the MatMul bias through the quadratic Add too.
    const r = reinitialize(q, { seed: 3 });
    assert.ok(maxAbs(data(r, 'b2')) <= 1 / Math.sqrt(5));
    assert.notDeepEqual(data(r, 'b2'), data(q, 'b2'));
  });

  it('throws when no output comes from a layer', () => {
    const g = emptyGraph('none');
    const b = new GraphBuilder(g);
    const x = b.input('input', 'float32', ['batch', 3]);
    b.output(b.op('Relu', [x], {}, { outputs: ['y'] }), 'float32', ['batch', 3]);
    assert.throws(() => headParams(g), GraphError);
  });
});
