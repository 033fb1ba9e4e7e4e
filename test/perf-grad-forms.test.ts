import { emptyGraph } from '../src/ir/graph.js';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import type { GradForms } from '../src/autodiff/registry.js';
import { DEFAULT_GRAD_FORMS } from '../src/autodiff/registry.js';
import type { AttrInput } from '../src/ir/builder.js';
import { GraphBuilder } from '../src/ir/builder.js';
import { inferShapes, staticShape } from '../src/ir/shapes/index.js';
import { numel, tensor } from '../src/ir/tensor.js';
import { Session } from '../src/runtime/session.js';
import { Rng } from '../src/util/random.js';
import { expectAllClose } from './helpers/allclose.js';

// The faster gradient forms (bench/PROFILE.md) against the forms they replace, on the same
// inputs in float32: the 'im2col' and 'auto' Conv weight-gradient strategies against 'conv',
// the stride-1 input gradient as a flipped Conv against ConvTranspose (both sum the same
// products in another order: ≤ 1e-5 of the largest gradient), and the mask form of the MaxPool
// gradient against the scatter form (exactly equal, ties included).

interface Case {
  name: string;
  op: 'Conv' | 'ConvTranspose';
  x: number[];
  w: number[];
  bias?: boolean;
  attrs: Record<string, AttrInput>;
}

interface FixtureCase {
  name: string;
  op: string;
  attrs: Record<string, AttrInput>;
  inputs: ({ dims: number[] } | null)[];
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/torch/ops.json', import.meta.url), 'utf8'),
) as { cases: FixtureCase[] };

const fixtureCases: Case[] = fixture.cases
  .filter((c) => c.op === 'Conv' || c.op === 'ConvTranspose')
  .map((c) => ({
    name: `fixture ${c.name}`,
    op: c.op as 'Conv' | 'ConvTranspose',
    x: c.inputs[0]!.dims,
    w: c.inputs[1]!.dims,
    bias: !!c.inputs[2],
    attrs: c.attrs,
  }));

const extraCases: Case[] = [
  {
    name: 'dilated 8→16 (the benchmark layer, small)',
    op: 'Conv',
    x: [4, 8, 12, 12],
    w: [16, 8, 3, 3],
    bias: true,
    attrs: { dilations: [2, 2], pads: [2, 2, 2, 2] },
  },
  {
    name: 'strided + dilated, asymmetric pads, rectangular kernel',
    op: 'Conv',
    x: [2, 2, 7, 8],
    w: [3, 2, 3, 2],
    attrs: { strides: [2, 3], dilations: [2, 1], pads: [1, 2, 2, 0] },
  },
  {
    name: 'grouped (2 groups, strided)',
    op: 'Conv',
    x: [2, 4, 5, 6],
    w: [6, 2, 3, 3],
    attrs: { group: 2, strides: [2, 1], pads: [1, 1, 0, 1] },
  },
  {
    name: 'grouped, 16 outputs per group (auto picks im2col)',
    op: 'Conv',
    x: [2, 8, 6, 6],
    w: [32, 4, 3, 3],
    attrs: { group: 2, pads: [1, 1, 1, 1] },
  },
  {
    name: 'depthwise, stride 2',
    op: 'Conv',
    x: [2, 3, 5, 5],
    w: [3, 1, 3, 3],
    attrs: { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] },
  },
  {
    name: 'auto_pad SAME_LOWER, even kernel',
    op: 'Conv',
    x: [1, 2, 5, 5],
    w: [2, 2, 2, 2],
    attrs: { auto_pad: 'SAME_LOWER' },
  },
  {
    name: 'stride 3 does not divide (H + pads − k)',
    op: 'Conv',
    x: [1, 2, 8, 7],
    w: [3, 2, 3, 3],
    attrs: { strides: [3, 3] },
  },
  {
    name: 'pads wider than the kernel reach',
    op: 'Conv',
    x: [1, 2, 4, 4],
    w: [2, 2, 2, 2],
    attrs: { strides: [2, 1], pads: [2, 0, 3, 1] },
  },
  {
    name: 'stride 1, pad wider than the kernel reach (ConvTranspose input gradient kept)',
    op: 'Conv',
    x: [1, 2, 4, 4],
    w: [2, 2, 2, 2],
    attrs: { pads: [2, 0, 1, 1] },
  },
  {
    name: '1×1 with 32 outputs (unfold skipped)',
    op: 'Conv',
    x: [2, 4, 5, 5],
    w: [32, 4, 1, 1],
    attrs: {},
  },
  { name: '1-D, dilated', op: 'Conv', x: [2, 3, 9], w: [16, 3, 3], attrs: { dilations: [2] } },
  {
    name: '3-D, strided',
    op: 'Conv',
    x: [1, 2, 5, 4, 4],
    w: [3, 2, 2, 3, 2],
    attrs: { strides: [2, 1, 2], pads: [0, 1, 1, 1, 0, 0] },
  },
  {
    name: 'ConvTranspose grouped, dilated, asymmetric pads',
    op: 'ConvTranspose',
    x: [1, 4, 3, 3],
    w: [4, 1, 3, 3],
    attrs: { group: 2, strides: [2, 2], dilations: [2, 1], pads: [1, 0, 0, 2] },
  },
  {
    name: 'ConvTranspose output_padding past the end pad',
    op: 'ConvTranspose',
    x: [1, 2, 3, 3],
    w: [2, 3, 2, 2],
    attrs: { strides: [3, 3], output_padding: [2, 1] },
  },
];

type Feeds = Record<string, { dtype: 'float32'; dims: number[]; data: Float32Array }>;

/** Gradients of sum(y · dy) of one node with respect to every input, under the current forms. */
async function gradients(
  build: (b: GraphBuilder, v: Record<string, string>) => string,
  feeds: Feeds,
  dyData: (n: number) => Float32Array,
  forms?: GradForms,
): Promise<Record<string, Float32Array>> {
  const g = emptyGraph('forms');
  const b = new GraphBuilder(g);
  const v: Record<string, string> = {};
  for (const [name, f] of Object.entries(feeds)) v[name] = b.input(name, 'float32', f.dims);
  const y = build(b, v);
  const yShape = staticShape(inferShapes(g), y);
  const dy = b.constant(tensor('float32', yShape, dyData(numel(yShape))), 'dy');
  const loss = b.op('ReduceSum', [b.mul(y, dy)], { keepdims: 0 });
  const wrt = Object.keys(feeds);
  const { graph, grads } = backward(g, { loss, wrt, forms });
  for (const w of wrt) {
    graph.outputs.push({ name: grads.get(w)!, dtype: 'float32', shape: feeds[w]!.dims });
  }
  const session = await Session.create(graph);
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(wrt.map((w) => [w, out[grads.get(w)!]!.data as Float32Array]));
  } finally {
    await session.release();
  }
}

function randomFeeds(dims: Record<string, number[]>, seed: number): Feeds {
  const rng = new Rng(seed);
  const feeds: Feeds = {};
  for (const [name, d] of Object.entries(dims)) {
    const data = new Float32Array(numel(d));
    for (let i = 0; i < data.length; i++) data[i] = rng.normal();
    feeds[name] = { dtype: 'float32', dims: d, data };
  }
  return feeds;
}

function randomDy(seed: number) {
  return (n: number) => {
    const rng = new Rng(seed);
    return Float32Array.from({ length: n }, () => rng.normal());
  };
}

/** |a − b| ≤ 1e-5 · max|b| + 1e-5 · |b| elementwise. */
function expectSameGradient(actual: Float32Array, ref: Float32Array, what: string): void {
  const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expectAllClose(actual, ref, { rtol: 1e-5, atol: 1e-5 * scale, what });
}

describe('Conv gradient forms agree (float32)', () => {
  it("defaults: weight gradients 'auto', stride-1 input gradients by Conv, MaxPool by mask", () => {
    assert.deepEqual(DEFAULT_GRAD_FORMS, {
      convWeightGrad: 'auto',
      convInputGrad: 'conv',
      maxPoolMask: true,
    });
  });

  [...fixtureCases, ...extraCases].forEach((c, k) => {
    it(c.name, async () => {
      const cout = c.op === 'Conv' ? c.w[0]! : c.w[1]! * ((c.attrs.group as number) ?? 1);
      const feeds = randomFeeds({ x: c.x, w: c.w, ...(c.bias ? { b: [cout] } : {}) }, 100 + k);
      const build = (b: GraphBuilder, v: Record<string, string>) =>
        b.op(c.op, [v.x!, v.w!, v.b], c.attrs);
      const run = (strategy: GradForms['convWeightGrad'], dx: GradForms['convInputGrad']) =>
        gradients(build, feeds, randomDy(7 + k), { convWeightGrad: strategy, convInputGrad: dx });
      const ref = await run('conv', 'convtranspose');
      for (const [strategy, dx] of [
        ['im2col', 'conv'],
        ['auto', 'conv'],
        ['conv', 'conv'],
      ] as const) {
        const got = await run(strategy, dx);
        for (const name of Object.keys(ref)) {
          expectSameGradient(got[name]!, ref[name]!, `${strategy}/${dx}: d/d${name}`);
        }
      }
    });
  });
});

describe('MaxPool gradient: mask form equals the scatter form exactly', () => {
  const cases: { name: string; x: number[]; attrs: Record<string, AttrInput>; ties?: boolean }[] = [
    { name: 'k2 s2', x: [2, 3, 6, 6], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
    {
      name: 'k2 s2 with ties (rounded values, zero windows)',
      x: [2, 3, 8, 8],
      attrs: { kernel_shape: [2, 2], strides: [2, 2] },
      ties: true,
    },
    {
      name: 'k3×2 with leftover rows and columns, ties',
      x: [1, 2, 7, 9],
      attrs: { kernel_shape: [3, 2], strides: [3, 2] },
      ties: true,
    },
    {
      name: 'ceil_mode on an exact multiple',
      x: [1, 2, 6, 6],
      attrs: { kernel_shape: [3, 3], strides: [3, 3], ceil_mode: 1 },
      ties: true,
    },
    { name: '1-D, ties', x: [2, 2, 9], attrs: { kernel_shape: [3], strides: [3] }, ties: true },
    {
      name: '3-D, ties',
      x: [1, 2, 4, 4, 4],
      attrs: { kernel_shape: [2, 2, 2], strides: [2, 2, 2] },
      ties: true,
    },
    {
      name: 'overlapping k3 s2 (scatter form both times)',
      x: [1, 2, 7, 7],
      attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
      ties: true,
    },
  ];
  cases.forEach((c, k) => {
    it(c.name, async () => {
      const feeds = randomFeeds({ x: c.x }, 300 + k);
      // Ties: few distinct values and many zeros, as after a ReLU on a zero-padded border.
      if (c.ties) feeds.x!.data = feeds.x!.data.map((v) => Math.max(0, Math.round(v)));
      const build = (b: GraphBuilder, v: Record<string, string>) =>
        b.op('MaxPool', [v.x!], c.attrs);
      const ref = await gradients(build, feeds, randomDy(11 + k), { maxPoolMask: false });
      const got = await gradients(build, feeds, randomDy(11 + k));
      const a = got.x!;
      const e = ref.x!;
      assert.equal(a.length, e.length);
      for (let i = 0; i < a.length; i++) assert.ok(a[i] === e[i], `x[${i}]: ${a[i]} != ${e[i]}`);
    });
  });
});
