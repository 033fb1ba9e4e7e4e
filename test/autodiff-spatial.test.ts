import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import type { AttrInput } from '../src/ir/builder.js';
import { GraphBuilder } from '../src/ir/builder.js';
import { GraphError, emptyGraph } from '../src/ir/graph.js';
import { inferShapes, staticShape } from '../src/ir/shapes/index.js';
import { tensor } from '../src/ir/tensor.js';
import { gradcheck } from './helpers/gradcheck.js';

// Pad and Slice have float64 kernels in onnxruntime and are checked in float64 with the default
// tolerances. Resize has no float64 kernel (onnxruntime 1.30 CPU: NOT_IMPLEMENTED), so it is
// checked in float32; it is linear in each input element, so central differences are exact up to
// float32 rounding: eps = 0.05, rtol = 2e-2, atol = 3e-3.
const F32 = { dtype: 'float32', eps: 0.05, rtol: 2e-2, atol: 3e-3 } as const;
// INT64_MAX is not a JS number (it would round to 2^63 and wrap); any end past the axis clamps.
const BIG = Number.MAX_SAFE_INTEGER;

describe('gradients: Pad (float64 finite differences)', () => {
  const cases: { name: string; x: number[]; pads: number[]; axes?: number[] }[] = [
    { name: 'positive pads on all axes', x: [2, 3, 4], pads: [0, 1, 2, 1, 0, 3] },
    { name: 'negative pads crop', x: [2, 3, 5], pads: [0, -1, 2, 0, 1, -2] },
    {
      name: 'axes input with a negative axis',
      x: [2, 3, 4, 4],
      pads: [1, -1, 2, 1],
      axes: [-1, 1],
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: { x: { dims: c.x } },
        build: (b, v) =>
          b.op(
            'Pad',
            [
              v.x!,
              b.ints(c.pads),
              c.axes ? b.scalar(0, 'float64') : '',
              c.axes ? b.ints(c.axes) : '',
            ],
            {
              mode: 'constant',
            },
          ),
      });
    });
  }
  it('gradient of the constant value', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [2, 3] }, c: { dims: [] } },
      build: (b, v) => b.op('Pad', [v.x!, b.ints([1, -1, 0, 2]), v.c!]),
    });
  });
  it('reflect mode is refused with the node name', () => {
    assert.throws(
      () =>
        differentiate([2, 4], (b, x) =>
          b.op('Pad', [x, b.ints([0, 1, 0, 1])], { mode: 'reflect' }, { name: 'pad_r' }),
        ),
      (e: Error) => e instanceof GraphError && /pad_r/.test(e.message) && /reflect/.test(e.message),
    );
  });
});

/** A Resize with constant scales (roi absent). */
function resize(b: GraphBuilder, x: string, scales: number[], attrs: Record<string, AttrInput>) {
  return b.op('Resize', [x, '', b.constant(tensor('float32', [scales.length], scales))], {
    mode: 'nearest',
    ...attrs,
  });
}

describe('gradients: Resize nearest, integer factors (float32 finite differences)', () => {
  const modes: [string, string][] = [
    ['asymmetric', 'floor'],
    ['half_pixel', 'round_prefer_floor'],
    ['pytorch_half_pixel', 'round_prefer_ceil'],
    ['tf_half_pixel_for_nn', 'floor'],
  ];
  it('asymmetric + round_prefer_floor, factor 2 (still a block copy)', async () => {
    await gradcheck({
      ...F32,
      inputs: { x: { dims: [1, 2, 3, 3] } },
      build: (b, v) =>
        resize(b, v.x!, [1, 1, 2, 2], {
          coordinate_transformation_mode: 'asymmetric',
          nearest_mode: 'round_prefer_floor',
        }),
    });
  });
  for (const [coord, nearest] of modes) {
    it(`${coord} + ${nearest}, scales [1, 1, 2, 3]`, async () => {
      await gradcheck({
        ...F32,
        inputs: { x: { dims: [2, 2, 3, 4] } },
        build: (b, v) =>
          resize(b, v.x!, [1, 1, 2, 3], {
            coordinate_transformation_mode: coord,
            nearest_mode: nearest,
          }),
      });
    });
  }
  it('align_corners, 4 → 8 (happens to be a block copy)', async () => {
    await gradcheck({
      ...F32,
      inputs: { x: { dims: [1, 2, 4, 4] } },
      build: (b, v) =>
        resize(b, v.x!, [1, 1, 2, 2], { coordinate_transformation_mode: 'align_corners' }),
    });
  });
  it('sizes input, factor 3 on one axis', async () => {
    await gradcheck({
      ...F32,
      inputs: { x: { dims: [1, 2, 3, 2] } },
      build: (b, v) =>
        b.op('Resize', [v.x!, '', '', b.ints([1, 2, 9, 2])], {
          mode: 'nearest',
          coordinate_transformation_mode: 'asymmetric',
          nearest_mode: 'floor',
        }),
    });
  });
  const refused: [string, number[], Record<string, AttrInput>, RegExp][] = [
    ['linear mode', [1, 1, 2, 2], { mode: 'linear' }, /linear/],
    [
      'asymmetric + round_prefer_floor with factor 3',
      [1, 1, 3, 3],
      { coordinate_transformation_mode: 'asymmetric', nearest_mode: 'round_prefer_floor' },
      /asymmetric/,
    ],
    [
      'half_pixel + floor',
      [1, 1, 2, 2],
      { coordinate_transformation_mode: 'half_pixel', nearest_mode: 'floor' },
      /half_pixel/,
    ],
    [
      'align_corners with factor 3',
      [1, 1, 3, 3],
      { coordinate_transformation_mode: 'align_corners' },
      /align_corners/,
    ],
    [
      'a fractional scale',
      [1, 1, 1.5, 2],
      { coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' },
      /integer/,
    ],
  ];
  for (const [what, scales, attrs, re] of refused) {
    it(`${what} is refused with the node name`, () => {
      assert.throws(
        () =>
          differentiate([1, 1, 4, 4], (b, x) =>
            b.op(
              'Resize',
              [x, '', b.constant(tensor('float32', [4], scales))],
              { mode: 'nearest', ...attrs },
              { name: 'up_1' },
            ),
          ),
        (e: Error) => e instanceof GraphError && /up_1/.test(e.message) && re.test(e.message),
      );
    });
  }
});

describe('gradients: Slice (float64 finite differences)', () => {
  const cases: {
    name: string;
    x: number[];
    starts: number[];
    ends: number[];
    axes?: number[];
    steps?: number[];
    /** Expected output shape (guards against a case that silently selects nothing). */
    y: number[];
  }[] = [
    { name: 'one axis, axes omitted', x: [5, 3], starts: [1], ends: [4], y: [3, 3] },
    {
      name: 'negative starts/ends, two axes',
      x: [2, 6, 5],
      starts: [-4, 1],
      ends: [-1, BIG],
      axes: [1, -1],
      y: [2, 3, 4],
    },
    { name: 'step 2', x: [2, 7], starts: [1], ends: [7], axes: [1], steps: [2], y: [2, 3] },
    {
      name: 'step 3 with an overhang',
      x: [3, 8],
      starts: [0, 1],
      ends: [3, 8],
      axes: [0, 1],
      steps: [2, 3],
      y: [2, 3],
    },
    {
      name: 'step −1 (reverse)',
      x: [2, 5],
      starts: [-1],
      ends: [-BIG],
      axes: [1],
      steps: [-1],
      y: [2, 5],
    },
    {
      name: 'step −2 from the middle',
      x: [3, 9],
      starts: [7, 2],
      ends: [0, 0],
      axes: [1, 0],
      steps: [-2, -1],
      y: [2, 4],
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: { x: { dims: c.x } },
        build: (b, v) => {
          const y = b.op('Slice', [
            v.x!,
            b.ints(c.starts),
            b.ints(c.ends),
            c.axes ? b.ints(c.axes) : '',
            c.steps ? b.ints(c.steps) : '',
          ]);
          assert.deepEqual(staticShape(inferShapes(b.graph), y), c.y);
          return y;
        },
      });
    });
  }
});

/** Runs `backward` on a one-op graph over x (float32) and returns nothing; for refusals. */
function differentiate(dims: number[], build: (b: GraphBuilder, x: string) => string): void {
  const g = emptyGraph('refuse');
  const b = new GraphBuilder(g);
  b.input('x', 'float32', dims);
  const loss = b.op('ReduceSum', [build(b, 'x')], { keepdims: 0 });
  backward(g, { loss, wrt: ['x'] });
}
