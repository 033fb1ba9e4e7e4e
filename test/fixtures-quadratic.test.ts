import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import type { AttrInput } from '../src/ir/builder.js';
import { GraphBuilder } from '../src/ir/builder.js';
import type { Graph } from '../src/ir/graph.js';
import { cloneGraph, emptyGraph } from '../src/ir/graph.js';
import type { DType } from '../src/ir/tensor.js';
import { numel, tensor } from '../src/ir/tensor.js';
import type { QuadratizeOptions } from '../src/passes/quadratize.js';
import { quadratize } from '../src/passes/quadratize.js';
import { readAdapterState } from '../src/passes/quadratic-spec.js';
import { Session } from '../src/runtime/session.js';
import { Rng } from '../src/util/random.js';
import { expectAllClose } from './helpers/allclose.js';
import type { FixtureTensor } from './helpers/fixtures.js';
import { loadFixtures } from './helpers/fixtures.js';

// fixtures/torch/quadratic.json is an independent PyTorch (float64) implementation of DESIGN.md
// §3. Each case's base layer is built as a one-node graph, quadratized with the case's options,
// its quadratic parameters overwritten with the fixture's, and y and the gradients of
// sum(y · dy) with respect to x, W, bias and every quad_* compared. onnxruntime has no float64
// Conv, so everything runs in float32: rtol = 1e-4, atol = 1e-5 cover float32 accumulation over
// these small sums (≤ a few hundred terms of magnitude ≲ 3, i.e. ~1e-6 relative), as in the ops
// fixtures. Then finite differences check the quadratic branch's gradients: float64 for
// Gemm/MatMul (1e-6 relative), float32 for Conv (eps 1e-2, rtol 2e-2, atol 2e-3: float32
// rounding of a loss of magnitude ~10 divided by 2·eps).
const RTOL = 1e-4;
const ATOL = 1e-5;

type Key = 'x' | 'W' | 'bias' | 'quad_a' | 'quad_b' | 'quad_u' | 'quad_gamma';
interface QuadCase {
  name: string;
  layer: 'conv' | 'depthwise' | 'gemm' | 'matmul';
  mode: 'lowrank' | 'neuron';
  phi: 'product' | 'rbf';
  rank: number | null;
  base_attrs: Record<string, AttrInput>;
  quad_attrs: {
    kernel_shape?: number[];
    dilations?: number[];
    pads?: number[];
    strides?: number[];
    group?: number;
  };
  x: FixtureTensor;
  W: FixtureTensor;
  bias: FixtureTensor | null;
  quad_a: FixtureTensor;
  quad_b: FixtureTensor;
  quad_u: FixtureTensor | null;
  quad_gamma: FixtureTensor | null;
  y: FixtureTensor;
  dy: FixtureTensor;
  grads: Record<Key, FixtureTensor | null>;
}

const { cases } = loadFixtures<QuadCase>('quadratic');

const OP = { conv: 'Conv', depthwise: 'Conv', gemm: 'Gemm', matmul: 'MatMul' } as const;

/** The base layer y0 = L(x) as a one-node graph; W and bias are initializers (constants). */
function baseGraph(c: QuadCase, dtype: DType = 'float32'): Graph {
  const g = emptyGraph(c.name);
  const b = new GraphBuilder(g);
  const x = b.input('x', dtype, c.x.dims);
  b.reserve('W');
  g.initializers.set('W', tensor(dtype, c.W.dims, c.W.data));
  const inputs = [x, 'W'];
  if (c.bias) {
    b.reserve('bias');
    g.initializers.set('bias', tensor(dtype, c.bias.dims, c.bias.data));
    inputs.push('bias');
  }
  const y = b.op(OP[c.layer], inputs, c.base_attrs, { name: 'layer', outputs: ['y'] });
  b.output(y, dtype, c.y.dims);
  return g;
}

function options(c: QuadCase): QuadratizeOptions {
  const o: QuadratizeOptions = { mode: c.mode, phi: c.phi, includeHead: true };
  if (c.rank !== null) o.rank = c.rank;
  // The user-set case passes kq/dq; every other case must get the fixture's from the defaults.
  if (c.name.includes('user')) {
    o.kernelSize = c.quad_attrs.kernel_shape;
    o.dilation = c.quad_attrs.dilations;
  }
  return o;
}

const QUAD_KEYS = ['quad_a', 'quad_b', 'quad_u', 'quad_gamma'] as const;

/** The quadratized graph with the fixture's quadratic parameters. */
function quadGraph(c: QuadCase, dtype: DType = 'float32'): Graph {
  const { graph: q, config } = quadratize(baseGraph(c, dtype), options(c));
  const spec = config.targets[0]!;
  if (c.layer === 'conv' || c.layer === 'depthwise') {
    assert.deepEqual(
      {
        kernel_shape: spec.kq,
        dilations: spec.dq,
        pads: spec.pads,
        strides: spec.strides,
        group: spec.group,
      },
      c.quad_attrs,
      'planned conv attributes differ from the fixture',
    );
  }
  for (const k of QUAD_KEYS) {
    const t = c[k];
    const name = `W.${k}`;
    assert.equal(q.initializers.has(name), t !== null, `${name} presence`);
    if (!t) continue;
    assert.deepEqual(q.initializers.get(name)!.dims, t.dims, `${name} shape`);
    q.initializers.set(name, tensor(dtype, t.dims, t.data));
  }
  return q;
}

/** Moves float initializers to graph inputs so they can be fed (perturbed) and differentiated. */
function asInputs(g: Graph): {
  graph: Graph;
  wrt: string[];
  values: Map<string, Float32Array | Float64Array>;
} {
  const out = cloneGraph(g);
  const values = new Map<string, Float32Array | Float64Array>();
  const wrt: string[] = out.inputs.map((v) => v.name);
  for (const [name, t] of [...out.initializers]) {
    if (t.dtype !== 'float32' && t.dtype !== 'float64') continue;
    if (!/^(W|bias)(\.quad_\w+)?$/.test(name)) continue;
    out.initializers.delete(name);
    out.inputs.push({ name, dtype: t.dtype, shape: [...t.dims] });
    values.set(name, t.data as Float32Array);
    wrt.push(name);
  }
  return { graph: out, wrt, values };
}

/** Adds loss = sum(y · dy) and returns the forward graph, the gradient graph and the names. */
function withLoss(g: Graph, dy: ArrayLike<number>, wrt: string[]) {
  const f = cloneGraph(g);
  const b = new GraphBuilder(f);
  const y = f.outputs[0]!;
  const d = b.constant(tensor(y.dtype, y.shape as number[], dy), 'dy');
  const loss = b.op('ReduceSum', [b.mul(y.name, d)], { keepdims: 0 });
  f.outputs = [{ name: loss, dtype: y.dtype, shape: [] }];
  const { graph, grads } = backward(f, { loss, wrt });
  graph.outputs = [
    ...f.outputs,
    ...wrt.map((w) => ({
      name: grads.get(w)!,
      dtype: y.dtype,
      shape: [...(f.inputs.find((v) => v.name === w)?.shape ?? [])],
    })),
  ];
  return { forward: f, train: graph, grads, loss };
}

describe('quadratic term against the PyTorch reference (float32)', () => {
  it('covers conv, depthwise, gemm, matmul; lowrank and neuron; product and rbf; atrous and user kq/dq', () => {
    const has = (p: (c: QuadCase) => boolean) => assert.ok(cases.some(p));
    for (const layer of ['conv', 'depthwise', 'gemm', 'matmul']) has((c) => c.layer === layer);
    has((c) => c.mode === 'neuron');
    has((c) => c.phi === 'rbf');
    has(
      (c) =>
        c.quad_attrs.dilations !== undefined &&
        c.quad_attrs.dilations[0]! > 1 &&
        !c.name.includes('user'),
    );
    has((c) => c.name.includes('user'));
  });

  for (const c of cases) {
    it(c.name, async () => {
      const q = quadGraph(c);
      const { graph, wrt, values } = asInputs(q);
      const { train, grads } = withLoss(graph, c.dy.data, wrt);
      train.outputs.unshift({ name: 'y', dtype: 'float32', shape: c.y.dims });
      const s = await Session.create(train);
      const feeds: Record<string, { dtype: 'float32'; dims: number[]; data: Float32Array }> = {
        x: { dtype: 'float32', dims: c.x.dims, data: Float32Array.from(c.x.data) },
      };
      for (const [name, v] of values) {
        feeds[name] = {
          dtype: 'float32',
          dims: graph.inputs.find((i) => i.name === name)!.shape as number[],
          data: v as Float32Array,
        };
      }
      const out = await s.run(feeds);
      await s.release();
      expectAllClose(out['y']!.data as Float32Array, c.y.data, {
        rtol: RTOL,
        atol: ATOL,
        what: 'y',
      });
      const keyOf = (name: string): Key =>
        name === 'x' || name === 'W' || name === 'bias' ? name : (name.slice(2) as Key);
      for (const w of wrt) {
        const want = c.grads[keyOf(w)];
        assert.ok(want, `no fixture gradient for ${w}`);
        expectAllClose(out[grads.get(w)!]!.data as Float32Array, want.data, {
          rtol: RTOL,
          atol: ATOL,
          what: `d/d${w}`,
        });
      }
      // Every fixture gradient was compared (no parameter missing from the graph).
      const expected = Object.entries(c.grads)
        .filter(([, t]) => t !== null)
        .map(([k]) => k);
      assert.deepEqual(wrt.map(keyOf).sort(), expected.sort());
      assert.ok(readAdapterState(q));
    });
  }
});

/** Central finite differences of the loss against the analytic gradient of every parameter. */
async function fdCheck(
  q: Graph,
  dtype: 'float32' | 'float64',
  eps: number,
  rtol: number,
  atol: number,
  seed: number,
) {
  const { graph, wrt, values } = asInputs(q);
  const rng = new Rng(seed);
  const typed = (xs: number[]) =>
    dtype === 'float64' ? Float64Array.from(xs) : Float32Array.from(xs);
  const dims = (n: string) => graph.inputs.find((v) => v.name === n)!.shape as number[];
  // Random values everywhere (a zero U would make the A/B gradients trivially zero); γ > 0.
  for (const w of wrt) {
    const n = numel(dims(w));
    values.set(
      w,
      typed(
        Array.from({ length: n }, () =>
          w.endsWith('quad_gamma') ? rng.uniform(0.5, 1.5) : rng.normal() * 0.7,
        ),
      ),
    );
  }
  const yShape = graph.outputs[0]!.shape as number[];
  const dy = Array.from({ length: numel(yShape) }, () => rng.normal());
  const { forward, train, grads, loss } = withLoss(graph, dy, wrt);
  const fs = await Session.create(forward);
  const ts = await Session.create(train);
  const feeds = (over?: { name: string; i: number; delta: number }) => {
    const f: Record<string, { dtype: DType; dims: number[]; data: Float32Array | Float64Array }> =
      {};
    for (const w of wrt) {
      let data = values.get(w)!;
      if (over?.name === w) {
        data = data.slice();
        data[over.i] = data[over.i]! + over.delta;
      }
      f[w] = { dtype, dims: dims(w), data };
    }
    return f;
  };
  const analytic = await ts.run(feeds());
  for (const w of wrt) {
    const n = values.get(w)!.length;
    const numeric = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const p = Number((await fs.run(feeds({ name: w, i, delta: eps }), [loss]))[loss]!.data[0]);
      const m = Number((await fs.run(feeds({ name: w, i, delta: -eps }), [loss]))[loss]!.data[0]);
      numeric[i] = (p - m) / (2 * eps);
    }
    expectAllClose(analytic[grads.get(w)!]!.data as Float64Array, numeric, {
      rtol,
      atol,
      what: `d/d${w}`,
    });
  }
  await fs.release();
  await ts.release();
}

/** A one-layer base graph for the finite-difference checks. */
function layer(
  op: 'Gemm' | 'MatMul' | 'Conv',
  dtype: DType,
  xDims: number[],
  wDims: number[],
  yDims: number[],
  attrs: Record<string, AttrInput>,
  bias?: number,
): Graph {
  const rng = new Rng(numel(xDims) + numel(wDims));
  const g = emptyGraph(op);
  const b = new GraphBuilder(g);
  const x = b.input('x', dtype, xDims);
  b.reserve('W');
  g.initializers.set(
    'W',
    tensor(
      dtype,
      wDims,
      Array.from({ length: numel(wDims) }, () => rng.normal() * 0.5),
    ),
  );
  const ins = [x, 'W'];
  if (bias) {
    b.reserve('bias');
    g.initializers.set(
      'bias',
      tensor(
        dtype,
        [bias],
        Array.from({ length: bias }, () => rng.normal()),
      ),
    );
    ins.push('bias');
  }
  const y = b.op(op, ins, attrs, { name: 'layer' });
  b.output(y, dtype, yDims);
  return g;
}

function quadratized(g: Graph, o: QuadratizeOptions): Graph {
  return quadratize(g, { includeHead: true, ...o }).graph;
}

describe('finite-difference gradients of the quadratic term', () => {
  const dense: [string, () => Graph, QuadratizeOptions][] = [
    [
      'Gemm transB = 1, lowrank product',
      () => layer('Gemm', 'float64', [3, 5], [4, 5], [3, 4], { transB: 1 }, 4),
      { rank: 2 },
    ],
    [
      'Gemm transA = 1, transB = 0, α = 0.5, rbf',
      () => layer('Gemm', 'float64', [5, 3], [5, 4], [3, 4], { transA: 1, alpha: 0.5, beta: 2 }, 4),
      { rank: 2, phi: 'rbf' },
    ],
    ['Gemm neuron', () => layer('Gemm', 'float64', [3, 5], [5, 4], [3, 4], {}), { mode: 'neuron' }],
    [
      'MatMul batched 3-D input, rbf',
      () => layer('MatMul', 'float64', [2, 3, 5], [5, 4], [2, 3, 4], {}),
      { rank: 3, phi: 'rbf' },
    ],
    [
      'MatMul neuron',
      () => layer('MatMul', 'float64', [3, 5], [5, 4], [3, 4], {}),
      { mode: 'neuron' },
    ],
  ];
  for (const [name, make, o] of dense) {
    it(`${name} (float64)`, async () => {
      await fdCheck(quadratized(make(), o), 'float64', 1e-6, 1e-6, 1e-7, 3);
    });
  }
  const convs: [string, () => Graph, QuadratizeOptions][] = [
    [
      'Conv 5×5 strided, atrous 3×3 dilation 2, rbf',
      () =>
        layer(
          'Conv',
          'float32',
          [1, 2, 7, 7],
          [3, 2, 5, 5],
          [1, 3, 4, 4],
          { pads: [2, 2, 2, 2], strides: [2, 2] },
          3,
        ),
      { rank: 2, phi: 'rbf' },
    ],
    [
      'depthwise 3×3 with channel multiplier r',
      () =>
        layer('Conv', 'float32', [1, 2, 5, 5], [2, 1, 3, 3], [1, 2, 5, 5], {
          pads: [1, 1, 1, 1],
          group: 2,
        }),
      { rank: 2 },
    ],
  ];
  for (const [name, make, o] of convs) {
    it(`${name} (float32)`, async () => {
      await fdCheck(quadratized(make(), o), 'float32', 1e-2, 2e-2, 2e-3, 5);
    });
  }
});
