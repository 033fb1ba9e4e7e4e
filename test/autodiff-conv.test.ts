import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import type { AttrInput } from '../src/ir/builder.js';
import { GraphBuilder } from '../src/ir/builder.js';
import { GraphError, emptyGraph } from '../src/ir/graph.js';
import { DEFAULT_GRAD_FORMS } from '../src/autodiff/registry.js';
import { gradcheck } from './helpers/gradcheck.js';

// onnxruntime has no float64 kernel for Conv, ConvTranspose, AveragePool or GlobalAveragePool
// (DESIGN.md §6), so those checks run in float32. All of them are linear in each single input
// element, so central differences are exact up to float32 rounding of the loss; a larger step
// (eps = 0.05) keeps that rounding error small relative to the difference, and the tolerances
// are rtol = 2e-2, atol = 3e-3. MaxPool does have a float64 kernel and is checked in float64.
const F32 = { dtype: 'float32', eps: 0.05, rtol: 2e-2, atol: 3e-3 } as const;

interface ConvCase {
  name: string;
  x: number[];
  w: number[];
  bias?: boolean;
  attrs: Record<string, AttrInput>;
}

const convCases: ConvCase[] = [
  {
    name: 'strided',
    x: [2, 3, 6, 6],
    w: [4, 3, 3, 3],
    bias: true,
    attrs: { strides: [2, 2], pads: [1, 1, 1, 1] },
  },
  {
    name: 'dilated',
    x: [1, 2, 6, 6],
    w: [3, 2, 3, 3],
    bias: true,
    attrs: { dilations: [2, 2], pads: [2, 2, 2, 2] },
  },
  {
    name: 'strided + dilated, asymmetric pads, rectangular kernel',
    x: [1, 2, 7, 8],
    w: [3, 2, 3, 2],
    bias: true,
    attrs: { strides: [2, 3], dilations: [2, 1], pads: [1, 2, 2, 0] },
  },
  {
    name: 'grouped (2 groups, strided)',
    x: [2, 4, 5, 6],
    w: [6, 2, 3, 3],
    bias: true,
    attrs: { group: 2, strides: [2, 1], pads: [1, 1, 0, 1] },
  },
  {
    name: 'depthwise, stride 2',
    x: [2, 3, 5, 5],
    w: [3, 1, 3, 3],
    bias: true,
    attrs: { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] },
  },
  {
    name: 'depthwise with channel multiplier 2, dilated',
    x: [1, 2, 5, 5],
    w: [4, 1, 3, 3],
    bias: true,
    attrs: { group: 2, dilations: [2, 2], pads: [2, 2, 2, 2] },
  },
  {
    name: 'auto_pad SAME_UPPER, stride 2 on an odd size',
    x: [1, 2, 7, 7],
    w: [3, 2, 3, 3],
    bias: true,
    attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2] },
  },
  {
    name: 'auto_pad SAME_LOWER, even kernel (odd total padding)',
    x: [1, 2, 5, 5],
    w: [2, 2, 2, 2],
    attrs: { auto_pad: 'SAME_LOWER' },
  },
  {
    name: 'auto_pad VALID, stride 2',
    x: [1, 2, 6, 5],
    w: [2, 2, 3, 3],
    attrs: { auto_pad: 'VALID', strides: [2, 2] },
  },
  { name: '1x1, no bias', x: [2, 3, 4, 4], w: [4, 3, 1, 1], attrs: {} },
  {
    name: 'stride 3 does not divide (H + pads − k)',
    x: [1, 2, 8, 7],
    w: [3, 2, 3, 3],
    bias: true,
    attrs: { strides: [3, 3] },
  },
  {
    name: 'pads wider than the kernel reach',
    x: [1, 2, 4, 4],
    w: [2, 2, 2, 2],
    attrs: { strides: [2, 1], pads: [2, 0, 3, 1] },
  },
  {
    name: '1-D, strided, asymmetric pads',
    x: [2, 3, 9],
    w: [4, 3, 3],
    bias: true,
    attrs: { strides: [2], pads: [1, 0] },
  },
  {
    name: '3-D, strided',
    x: [1, 2, 5, 4, 4],
    w: [3, 2, 2, 3, 2],
    bias: true,
    attrs: { strides: [2, 1, 2], pads: [0, 1, 1, 1, 0, 0] },
  },
  {
    name: '1-D depthwise, dilated',
    x: [2, 3, 8],
    w: [3, 1, 3],
    attrs: { group: 3, dilations: [2], pads: [1, 2] },
  },
];

describe('gradients: Conv (float32 finite differences)', () => {
  for (const c of convCases) {
    it(c.name, async () => {
      await gradcheck({
        ...F32,
        inputs: {
          x: { dims: c.x },
          w: { dims: c.w },
          ...(c.bias ? { b: { dims: [c.w[0]!] } } : {}),
        },
        build: (b, v) => b.op('Conv', [v.x!, v.w!, v.b], c.attrs),
      });
    });
  }

  it('weight-gradient forms: auto by default, an unknown one refused by backward', () => {
    assert.equal(DEFAULT_GRAD_FORMS.convWeightGrad, 'auto');
    const g = emptyGraph('c');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', [1, 2, 5, 5]);
    const w = b.input('w', 'float32', [3, 2, 3, 3]);
    const loss = b.op('ReduceSum', [b.op('Conv', [x, w])], { keepdims: 0 });
    const forms = { convWeightGrad: 'winograd' as 'auto' };
    assert.throws(
      () => backward(g, { loss, wrt: [w], forms }),
      /unknown conv weight-gradient form 'winograd'/,
    );
  });
});

const convTransposeCases: ConvCase[] = [
  {
    name: 'stride 2, pads 1, output_padding 1',
    x: [2, 3, 4, 4],
    w: [3, 2, 3, 3],
    bias: true,
    attrs: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] },
  },
  {
    name: 'grouped, dilated, asymmetric pads',
    x: [1, 4, 3, 3],
    w: [4, 1, 3, 3],
    bias: true,
    attrs: { group: 2, strides: [2, 2], dilations: [2, 1], pads: [1, 0, 0, 2] },
  },
  {
    name: 'grouped, 2 channels per group in and out',
    x: [2, 4, 3, 3],
    w: [4, 2, 2, 2],
    bias: true,
    attrs: { group: 2, strides: [2, 2], pads: [0, 1, 1, 0] },
  },
  {
    name: 'output_padding past the end pad',
    x: [1, 2, 3, 3],
    w: [2, 3, 2, 2],
    attrs: { strides: [3, 3], output_padding: [2, 1] },
  },
  {
    name: 'explicit output_shape with odd total padding',
    x: [1, 2, 3, 3],
    w: [2, 2, 3, 3],
    attrs: { strides: [2, 2], output_shape: [6, 6] },
  },
  {
    name: '1-D, stride 2',
    x: [2, 2, 5],
    w: [2, 3, 3],
    bias: true,
    attrs: { strides: [2], pads: [0, 1] },
  },
];

describe('gradients: ConvTranspose (float32 finite differences)', () => {
  for (const c of convTransposeCases) {
    it(c.name, async () => {
      await gradcheck({
        ...F32,
        inputs: {
          x: { dims: c.x },
          w: { dims: c.w },
          ...(c.bias ? { b: { dims: [c.w[1]! * ((c.attrs.group as number) ?? 1)] } } : {}),
        },
        build: (b, v) => b.op('ConvTranspose', [v.x!, v.w!, v.b], c.attrs),
      });
    });
  }
});

/** Distinct values 0.1 apart in a shuffled order: no near-ties inside any pooling window. */
function distinct(n: number, seed: number): number[] {
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.1);
  let s = seed;
  for (let i = n - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [v[i], v[j]] = [v[j]!, v[i]!];
  }
  return v;
}

describe('gradients: MaxPool (float64 finite differences)', () => {
  const cases: { name: string; x: number[]; attrs: Record<string, AttrInput> }[] = [
    { name: 'k2 s2', x: [2, 2, 6, 6], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
    {
      name: 'k3 s2 p1 on an odd size',
      x: [1, 2, 7, 7],
      attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    },
    {
      name: 'dilated, asymmetric pads',
      x: [1, 2, 6, 6],
      attrs: { kernel_shape: [2, 2], dilations: [2, 2], pads: [1, 0, 0, 1] },
    },
    {
      name: 'ceil_mode 1',
      x: [1, 1, 6, 6],
      attrs: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 },
    },
    {
      name: 'auto_pad SAME_UPPER',
      x: [1, 2, 5, 5],
      attrs: { kernel_shape: [2, 2], strides: [2, 2], auto_pad: 'SAME_UPPER' },
    },
    { name: '1-D', x: [2, 2, 9], attrs: { kernel_shape: [3], strides: [2], pads: [1, 1] } },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const n = c.x.reduce((p, d) => p * d, 1);
      await gradcheck({
        dtype: 'float64',
        inputs: { x: { dims: c.x, data: distinct(n, 7) } },
        build: (b, v) => b.op('MaxPool', [v.x!], c.attrs),
      });
    });
  }
  it('reuses the Indices output when the node has one', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [1, 2, 4, 4], data: distinct(32, 3) } },
      build: (b, v) =>
        b.opN('MaxPool', [v.x!], { kernel_shape: [2, 2], strides: [2, 2] }, { outputs: 2 })[0]!,
    });
  });
});

describe('gradients: AveragePool and GlobalAveragePool (float32 finite differences)', () => {
  const cases: { name: string; x: number[]; attrs: Record<string, AttrInput> }[] = [
    {
      name: 'k3 s1 p1, count_include_pad 0',
      x: [2, 2, 5, 5],
      attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], count_include_pad: 0 },
    },
    {
      name: 'k3 s2, asymmetric pads, count_include_pad 1',
      x: [1, 2, 6, 7],
      attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 0, 2, 1], count_include_pad: 1 },
    },
    {
      name: 'k3 s2, asymmetric pads, count_include_pad 0',
      x: [1, 2, 6, 7],
      attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 0, 2, 1] },
    },
    {
      name: 'non-overlapping k2×3 with a leftover row and column',
      x: [2, 2, 7, 7],
      attrs: { kernel_shape: [2, 3], strides: [2, 3] },
    },
    {
      name: 'auto_pad SAME_UPPER, stride 2',
      x: [1, 2, 5, 5],
      attrs: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' },
    },
    { name: '1-D', x: [2, 3, 8], attrs: { kernel_shape: [3], strides: [2], pads: [1, 0] } },
  ];
  for (const c of cases) {
    it(`AveragePool ${c.name}`, async () => {
      await gradcheck({
        ...F32,
        inputs: { x: { dims: c.x } },
        build: (b, v) => b.op('AveragePool', [v.x!], c.attrs),
      });
    });
  }
  it('AveragePool with ceil_mode windows past the input is refused with the node name', () => {
    const g = emptyGraph('refuse');
    const b = new GraphBuilder(g);
    b.input('x', 'float32', [1, 1, 6, 6]);
    const y = b.op(
      'AveragePool',
      ['x'],
      { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 },
      { name: 'avg_ceil' },
    );
    const loss = b.op('ReduceSum', [y], { keepdims: 0 });
    assert.throws(
      () => backward(g, { loss, wrt: ['x'] }),
      (e: Error) =>
        e instanceof GraphError && /avg_ceil/.test(e.message) && /ceil_mode/.test(e.message),
    );
  });
  it('GlobalAveragePool', async () => {
    await gradcheck({
      ...F32,
      inputs: { x: { dims: [2, 3, 4, 5] } },
      build: (b, v) => b.op('GlobalAveragePool', [v.x!]),
    });
  });
});
